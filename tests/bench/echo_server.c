/* echo_server: the transport ceiling for `kvctl bench --raw`. A cooked rep0
 * socket with N contexts, each an aio callback loop that answers a request
 * with its own bytes. A request that starts with a ringkv header gets the
 * REPLY flag set so clients accept the answer; anything else goes back as
 * is. No storage, no decoding beyond the header: what remains is nng.
 *
 *   echo_server ADDR [--ctx N]      runs until SIGTERM or SIGINT
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "proto/proto.h"

#define DEFAULT_CTX 128         /* NNG-NOTES: 128 ctx + aio callbacks, 16-18 µs per request */
#define MAX_MSG     (80u << 20) /* as the client: never unlimited (nng 1.5.2's default) */

struct echo_ctx {
    nng_socket sock;
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;
};

/* Set RK_MSG_REPLY in a message that carries a ringkv header. */
static void mark_reply(nng_msg *msg)
{
    uint8_t *p = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    struct rk_proto_hdr h;
    if (len < RK_PROTO_HDR)
        return;
    memcpy(&h, p, sizeof h);
    if (h.magic != RK_PROTO_MAGIC || h.version != RK_PROTO_VERSION ||
        h.body_len != len - RK_PROTO_HDR)
        return;
    h.flags |= RK_MSG_REPLY;
    memcpy(p + offsetof(struct rk_proto_hdr, flags), &h.flags, sizeof h.flags);
}

static void echo_cb(void *arg)
{
    struct echo_ctx *e = arg;
    int rv = nng_aio_result(e->aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return; /* shutting down */
    if (e->sending) {
        if (rv != 0) { /* the requester went away: the message is still ours */
            nng_msg_free(nng_aio_get_msg(e->aio));
            nng_aio_set_msg(e->aio, NULL);
        }
        e->sending = false;
        nng_ctx_recv(e->ctx, e->aio);
        return;
    }
    if (rv != 0) {
        nng_ctx_recv(e->ctx, e->aio);
        return;
    }
    nng_msg *msg = nng_aio_get_msg(e->aio);
    mark_reply(msg);
    e->sending = true;
    nng_aio_set_msg(e->aio, msg);
    nng_ctx_send(e->ctx, e->aio);
}

static int usage(void)
{
    fprintf(stderr, "usage: echo_server ADDR [--ctx N]   (e.g. tcp://127.0.0.1:7499)\n");
    return 2;
}

static int listen_on(nng_socket *sock, const char *addr)
{
    nng_listener l;
    int rv = nng_rep0_open(sock);
    if (rv == 0)
        rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, MAX_MSG);
    if (rv == 0)
        rv = nng_listener_create(&l, *sock, addr);
    if (rv == 0)
        rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, MAX_MSG);
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    if (rv != 0)
        fprintf(stderr, "echo_server: listen %s: %s\n", addr, nng_strerror(rv));
    return rv;
}

static int start_contexts(nng_socket sock, struct echo_ctx *es, int n)
{
    for (int i = 0; i < n; i++) {
        es[i].sock = sock;
        int rv = nng_ctx_open(&es[i].ctx, sock);
        if (rv == 0)
            rv = nng_aio_alloc(&es[i].aio, echo_cb, &es[i]);
        if (rv != 0) {
            fprintf(stderr, "echo_server: context %d: %s\n", i, nng_strerror(rv));
            return rv;
        }
        nng_ctx_recv(es[i].ctx, es[i].aio);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int n = DEFAULT_CTX;
    if (argc != 2 && argc != 4)
        return usage();
    if (argc == 4) {
        n = atoi(argv[3]);
        if (strcmp(argv[2], "--ctx") != 0 || n < 1 || n > 100000)
            return usage();
    }
    /* Block the stop signals before nng starts its threads, which inherit
     * the mask, so that sigwait() below is the only taker. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    nng_socket sock;
    struct echo_ctx *es = calloc((size_t)n, sizeof *es);
    if (es == NULL || listen_on(&sock, argv[1]) != 0)
        return 1;
    if (start_contexts(sock, es, n) != 0)
        return 1;
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    for (int i = 0; i < n; i++)
        if (es[i].aio != NULL)
            nng_aio_stop(es[i].aio);
    nng_close(sock);
    for (int i = 0; i < n; i++)
        if (es[i].aio != NULL)
            nng_aio_free(es[i].aio);
    free(es);
    return 0;
}

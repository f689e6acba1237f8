/* Serving an RBATCH (batch.h) over real nng sockets (inproc): a req0
 * client sends a batch, a raw rep0 "node" splits it, four threads answer
 * the parts in a shuffled order (as the owning workers would), and the
 * client gets one reply carrying one frame per request, each under its
 * rid, with the part's answer (the receipt stamp the node adds is gone);
 * the batch counts once in flight. A batch
 * that is cut or too long is refused with nothing routed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/batch.h"
#include "server/worker_int.h"
#include "util/err.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES  200
#define THREADS 4
#define URL     "inproc://test_batch"

struct node {
    struct rk_shared sh;
    nng_socket client;
    nng_msg *parts[FRAMES];
    int nparts;
};

static void route(void *arg, nng_msg *part)
{
    struct node *n = arg;
    n->parts[n->nparts++] = part;
}

/* Answer part: its request's key, echoed as the value. */
static void answer(nng_msg *part)
{
    struct rk_msg req;
    assert_int_equal(rk_proto_decode(nng_msg_body(part), nng_msg_len(part), &req), 0);
    uint8_t key[64];
    memcpy(key, req.key, req.klen);
    struct rk_msg rep = {.opcode = req.opcode,
                         .flags = RK_MSG_REPLY,
                         .id = req.id,
                         .val = key,
                         .vlen = req.klen,
                         .has_val = true};
    assert_int_equal(rk_proto_msg_encode(part, &rep), 0);
    rk_batch_part_done(part, true);
}

struct worker {
    struct node *n;
    int first;
};

static void *answer_some(void *arg)
{
    struct worker *w = arg;
    /* Every THREADS-th part, from the end: the last part may come first. */
    for (int k = FRAMES - 1 - w->first; k >= 0; k -= THREADS)
        answer(w->n->parts[k]);
    return NULL;
}

static void setup_node(struct node *n)
{
    memset(n, 0, sizeof(*n));
    assert_int_equal(nng_rep0_open_raw(&n->sh.sock), 0);
    assert_int_equal(nng_listen(n->sh.sock, URL, NULL, 0), 0);
    assert_int_equal(nng_req0_open(&n->client), 0);
    assert_int_equal(nng_dial(n->client, URL, NULL, 0), 0);
    assert_int_equal(nng_socket_set_ms(n->client, NNG_OPT_RECVTIMEO, 5000), 0);
}

static nng_msg *batch_request(const uint8_t *frames, size_t len, uint32_t id)
{
    struct rk_msg m = {
        .opcode = RK_OP_RBATCH, .id = id, .val = frames, .vlen = (uint32_t)len, .has_val = true};
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, rk_proto_size(&m)), 0);
    rk_proto_encode(&m, nng_msg_body(msg));
    return msg;
}

/* frames[k]: an RGET of key "key-<k>" under rid 0x80000000 | k. */
static size_t make_frames(uint8_t *buf, int n)
{
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        char key[16];
        int kl = snprintf(key, sizeof(key), "key-%d", k);
        struct rk_msg m = {.opcode = RK_OP_RGET,
                           .id = (uint32_t)k,
                           .key = (const uint8_t *)key,
                           .klen = (uint32_t)kl,
                           .has_key = true};
        off += rk_proto_frame_put(buf + off, 0x80000000u | (uint32_t)k, &m);
    }
    return off;
}

static void test_parts_answered_on_many_threads_make_one_reply(void **state)
{
    (void)state;
    struct node n;
    setup_node(&n);
    static uint8_t frames[FRAMES * 64];
    size_t len = make_frames(frames, FRAMES);
    assert_int_equal(nng_sendmsg(n.client, batch_request(frames, len, 77), 0), 0);

    nng_msg *msg;
    struct rk_msg req;
    assert_int_equal(nng_recvmsg(n.sh.sock, &msg, 0), 0);
    assert_int_equal(rk_reply_stamp(msg), 0); /* as dispatch stamps it */
    assert_int_equal(rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req), 0);
    atomic_store(&n.sh.inflight, 1); /* as dispatch counts it */
    assert_int_equal(rk_batch_split(&n.sh, msg, &req, route, &n), 0);
    assert_int_equal(n.nparts, FRAMES);
    for (int k = 0; k < FRAMES; k++)
        assert_true(rk_batch_is_part(n.parts[k]));

    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){&n, t};
        assert_int_equal(pthread_create(&th[t], NULL, answer_some, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);

    nng_msg *rep;
    struct rk_msg r;
    assert_int_equal(nng_recvmsg(n.client, &rep, 0), 0);
    assert_int_equal(rk_proto_decode(nng_msg_body(rep), nng_msg_len(rep), &r), 0);
    assert_int_equal(r.opcode, RK_OP_RBATCH);
    assert_int_equal(r.id, 77);
    assert_int_equal(r.status, RK_ST_OK);
    assert_int_equal(atomic_load(&n.sh.inflight), 0);
    bool seen[FRAMES] = {false};
    size_t off = 0, flen;
    uint32_t rid;
    const uint8_t *f;
    int count = 0;
    while (rk_proto_frame_next(r.val, r.vlen, &off, &rid, &f, &flen) == 1) {
        uint32_t k = rid & 0x7fffffff;
        assert_true(k < FRAMES && !seen[k]);
        seen[k] = true;
        struct rk_msg fr;
        assert_int_equal(rk_proto_decode(f, flen, &fr), 0);
        char key[16];
        int kl = snprintf(key, sizeof(key), "key-%u", k);
        assert_int_equal(fr.id, k);
        assert_int_equal(fr.vlen, kl);
        assert_memory_equal(fr.val, key, kl);
        count++;
    }
    assert_int_equal(count, FRAMES);
    nng_msg_free(rep);
    nng_close(n.client);
    nng_close(n.sh.sock);
}

/* A part given up (no answer) leaves its frame out; the rest still go. */
static void test_unanswered_part_is_left_out(void **state)
{
    (void)state;
    struct node n;
    setup_node(&n);
    uint8_t frames[3 * 64];
    size_t len = make_frames(frames, 3);
    assert_int_equal(nng_sendmsg(n.client, batch_request(frames, len, 5), 0), 0);
    nng_msg *msg;
    struct rk_msg req;
    assert_int_equal(nng_recvmsg(n.sh.sock, &msg, 0), 0);
    assert_int_equal(rk_reply_stamp(msg), 0); /* as dispatch stamps it */
    assert_int_equal(rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req), 0);
    atomic_store(&n.sh.inflight, 1);
    assert_int_equal(rk_batch_split(&n.sh, msg, &req, route, &n), 0);
    answer(n.parts[0]);
    rk_batch_part_done(n.parts[1], false);
    answer(n.parts[2]);
    nng_msg *rep;
    struct rk_msg r;
    assert_int_equal(nng_recvmsg(n.client, &rep, 0), 0);
    assert_int_equal(rk_proto_decode(nng_msg_body(rep), nng_msg_len(rep), &r), 0);
    size_t off = 0, flen;
    uint32_t rid, rids[3];
    const uint8_t *f;
    int count = 0;
    while (count < 3 && rk_proto_frame_next(r.val, r.vlen, &off, &rid, &f, &flen) == 1)
        rids[count++] = rid;
    assert_int_equal(count, 2);
    assert_int_equal(rids[0], 0x80000000u);
    assert_int_equal(rids[1], 0x80000002u);
    nng_msg_free(rep);
    nng_close(n.client);
    nng_close(n.sh.sock);
}

struct collect {
    nng_msg **parts;
    int n;
};

static void collect_part(void *arg, nng_msg *part)
{
    struct collect *c = arg;
    c->parts[c->n++] = part;
}

static void test_cut_or_oversized_batch_routes_nothing(void **state)
{
    (void)state;
    struct node n;
    memset(&n, 0, sizeof(n));
    static uint8_t frames[(RK_PROTO_MAX_FRAMES + 1) * 32];
    size_t one = make_frames(frames, 1);
    size_t len = one;
    while (len + one <= sizeof(frames))
        memcpy(frames + len, frames, one), len += one;
    assert_true(len / one > RK_PROTO_MAX_FRAMES);
    const size_t lens[] = {one - 1, len, RK_PROTO_MAX_FRAMES * one + 3, 0};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        nng_msg *msg = batch_request(frames, lens[i], 1);
        struct rk_msg req;
        assert_int_equal(rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req), 0);
        assert_int_equal(rk_batch_split(&n.sh, msg, &req, route, &n), RK_EMALFORMED);
        assert_int_equal(n.nparts, 0);
        nng_msg_free(msg);
    }
    /* Exactly the limit is accepted: every frame becomes a part. */
    nng_msg *msg = batch_request(frames, RK_PROTO_MAX_FRAMES * one, 1);
    struct rk_msg req;
    assert_int_equal(rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req), 0);
    struct collect c = {calloc(RK_PROTO_MAX_FRAMES, sizeof(nng_msg *)), 0};
    assert_non_null(c.parts);
    atomic_store(&n.sh.inflight, 1);
    assert_int_equal(rk_batch_split(&n.sh, msg, &req, collect_part, &c), 0);
    assert_int_equal(c.n, RK_PROTO_MAX_FRAMES);
    for (int k = 0; k < c.n; k++) /* none answered: the (unsendable) reply is dropped */
        rk_batch_part_done(c.parts[k], false);
    assert_int_equal(atomic_load(&n.sh.inflight), 0);
    free(c.parts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_answered_on_many_threads_make_one_reply),
        cmocka_unit_test(test_unanswered_part_is_left_out),
        cmocka_unit_test(test_cut_or_oversized_batch_routes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* A raw req0 socket to one peer (nng_peer.h). */
#include "util/nng_peer.h"
#include "util/tls.h"

#include <nng/protocol/reqrep0/req.h>

int rk_nng_peer_open(nng_socket *s, const char *addr, const struct rk_nng_peer_opts *o, int *recvfd)
{
    nng_dialer d;
    int rv = nng_req0_open_raw(s);
    if (rv != 0)
        return rv;
    rv = nng_socket_set_int(*s, NNG_OPT_SENDBUF, o->buf);
    if (rv == 0)
        rv = nng_socket_set_int(*s, NNG_OPT_RECVBUF, o->buf);
    if (rv == 0)
        rv = nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, o->max_msg);
    if (rv == 0)
        rv = rk_tls_node_dialer(&d, *s, addr); /* tls+tcp:// when the node has TLS */
    if (rv == 0) {
        nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, (nng_duration)o->reconn_min_ms);
        nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, (nng_duration)o->reconn_max_ms);
        nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, o->max_msg);
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    }
    if (rv == 0)
        rv = nng_socket_get_int(*s, NNG_OPT_RECVFD, recvfd);
    if (rv != 0)
        nng_close(*s);
    return rv;
}

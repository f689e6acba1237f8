/* A raw req0 socket to one peer, for a libev loop: the one recipe the
 * coordinator's peer batches and anti-entropy both use. */
#ifndef RK_UTIL_NNG_PEER_H
#define RK_UTIL_NNG_PEER_H

#include <nng/nng.h>
#include <stddef.h>

struct rk_nng_peer_opts {
    int buf;                               /* NNG_OPT_SENDBUF and RECVBUF, in messages */
    size_t max_msg;                        /* NNG_OPT_RECVMAXSZ of the socket and its dialer */
    unsigned reconn_min_ms, reconn_max_ms; /* the dialer's back-off */
};

/* Open a raw req0 socket dialling addr (tcp://HOST:PORT; over TLS when
 * the node has it, util/tls.h) without blocking (nng keeps
 * redialling), and give its receive fd (level-triggered: watch it with
 * ev_io). 0, or an nng error with nothing left open. The caller's thread. */
int rk_nng_peer_open(nng_socket *s, const char *addr, const struct rk_nng_peer_opts *o,
                     int *recvfd);

#endif

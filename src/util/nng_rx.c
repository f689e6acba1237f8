/* Bounded non-blocking receive (nng_rx.h). */
#include "util/nng_rx.h"

unsigned rk_nng_rx_batch(nng_socket s, unsigned max, void (*take)(void *arg, nng_msg *msg),
                         void *arg)
{
    unsigned n = 0;
    nng_msg *msg;
    while (n < max && nng_recvmsg(s, &msg, NNG_FLAG_NONBLOCK) == 0) {
        take(arg, msg);
        n++;
    }
    return n;
}

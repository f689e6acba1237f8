/* Draining a socket polled through NNG_OPT_RECVFD from a libev loop. The
 * fd is level-triggered: it stays readable while messages are queued, so
 * a turn may take a bounded batch and leave the rest for the next wake-up
 * (NNG-NOTES: one unbounded turn starves timers and mailboxes). */
#ifndef RK_UTIL_NNG_RX_H
#define RK_UTIL_NNG_RX_H

#include <nng/nng.h>

/* Per wake-up: about a millisecond of work at most, and big enough that a
 * worker's turn collects what arrived during one fdatasync. */
#define RK_NNG_RX_BATCH 64

/* Receives up to max messages from s without blocking and passes each to
 * take(arg, msg), which owns it from then on. Returns how many were
 * taken; stops early when nothing is queued (or another loop took it).
 * The loop's thread. */
unsigned rk_nng_rx_batch(nng_socket s, unsigned max, void (*take)(void *arg, nng_msg *msg),
                         void *arg);

#endif

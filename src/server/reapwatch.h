/* A watch on nng's reaper thread. In nng 1.5.2 it can wedge for good: a
 * TCP pipe closed (e.g. by a failed reply to a client that reset) while its
 * receive callback is pending re-arms a receive on a stopped aio, which
 * never completes, and the reaper waits for it forever (nanomsg/nng#1636,
 * fixed in 1.6.0; NNG-NOTES). Every connection closed after that keeps its
 * descriptor, on every socket of the process. Nothing in nng's API can
 * unstick it, so the server restarts in place when the watch says so. */
#ifndef RK_REAPWATCH_H
#define RK_REAPWATCH_H

#include <stdbool.h>
#include <stdint.h>

/* Hand one probe to the reaper unless one is still on its way: an nng aio
 * with a long sleep, given to nng_aio_reap; the reaper aborts the sleep when
 * it frees the aio, which runs the probe's callback. Main thread. */
void rk_reapwatch_probe(uint64_t now_ns);

/* True when a probe has waited longer than limit_ns (the reaper is stuck). */
bool rk_reapwatch_stuck(uint64_t now_ns, uint64_t limit_ns);

#endif

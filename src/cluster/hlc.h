/* Hybrid logical clock: the version of every write.
 *
 *   version = wall-clock ms (48 bits) << 16 | logical counter (16 bits)
 *
 * One clock per node, shared by its threads (lock-free). Every version it
 * hands out is greater than every version it handed out or observed
 * before, so versions stay monotonic when the wall clock steps back (the
 * step is logged and counted) and order causally across nodes: a node
 * that receives a version from a peer (rk_hlc_observe) never issues a
 * smaller one afterwards. A peer version further ahead of our wall clock
 * than max_skew_ms is refused: accepting it would drag every later version
 * of this node into the future with it.
 *
 * Equal versions from two nodes (same ms and counter) are possible; the
 * storage engine breaks such ties the same way on every replica (see
 * rk_storage_put).
 */
#ifndef RK_HLC_H
#define RK_HLC_H

#include <stdatomic.h>
#include <stdint.h>

#define RK_HLC_LOGICAL_BITS 16
#define RK_HLC_MS(v)        ((v) >> RK_HLC_LOGICAL_BITS)

struct rk_hlc {
    _Atomic uint64_t last;              /* greatest version issued or observed */
    uint64_t max_skew_ms;               /* set once, before sharing */
    _Atomic uint64_t backwards;         /* times the wall clock was found behind */
    _Atomic uint64_t refused;           /* peer versions refused as too far ahead */
    _Atomic uint64_t warned_ms;         /* rate limit of the backwards warning */
    _Atomic uint64_t refused_warned_ms; /* rate limit of the refusal warning */
};

void rk_hlc_init(struct rk_hlc *h, uint64_t max_skew_ms);

/* A new version, greater than any before; wall_ms is the current wall
 * clock (a parameter so tests can move it). Any thread. */
uint64_t rk_hlc_now(struct rk_hlc *h, uint64_t wall_ms);

/* Take a peer's version into account. 0, or RK_EREFUSED (counted, logged
 * once a minute) if it is more than max_skew_ms ahead of wall_ms. Any
 * thread. */
int rk_hlc_observe(struct rk_hlc *h, uint64_t version, uint64_t wall_ms);

#endif

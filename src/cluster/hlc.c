/* Hybrid logical clock (see hlc.h): a compare-and-swap loop on one 64-bit
 * word; the wall clock only ever raises it. */
#include "cluster/hlc.h"
#include "util/err.h"
#include "util/log.h"

#include <stdbool.h>

void rk_hlc_init(struct rk_hlc *h, uint64_t max_skew_ms)
{
    atomic_init(&h->last, 0);
    h->max_skew_ms = max_skew_ms;
    atomic_init(&h->backwards, 0);
    atomic_init(&h->refused, 0);
    atomic_init(&h->warned_ms, 0);
    atomic_init(&h->refused_warned_ms, 0);
}

/* rk_log_due for a warning any thread may write: true for the one caller
 * that may write it now. */
static bool warn_due(_Atomic uint64_t *at, uint64_t wall_ms)
{
    uint64_t prev = atomic_load(at);
    if (wall_ms - prev < RK_LOG_EVERY_MS && prev <= wall_ms)
        return false;
    return atomic_compare_exchange_strong(at, &prev, wall_ms);
}

/* The wall clock is behind versions we already issued: keep counting up
 * from them, and say so (once a minute) since every version now runs ahead
 * of real time. */
static void behind(struct rk_hlc *h, uint64_t wall_ms, uint64_t last)
{
    atomic_fetch_add(&h->backwards, 1);
    if (!warn_due(&h->warned_ms, wall_ms))
        return;
    rk_warn("hlc",
            "wall clock is %llu ms behind the latest version; versions keep counting "
            "from it (check NTP)",
            (unsigned long long)(RK_HLC_MS(last) - wall_ms));
}

uint64_t rk_hlc_now(struct rk_hlc *h, uint64_t wall_ms)
{
    uint64_t pt = wall_ms << RK_HLC_LOGICAL_BITS;
    uint64_t last = atomic_load(&h->last), v;
    do {
        v = pt > last ? pt : last + 1;
    } while (!atomic_compare_exchange_weak(&h->last, &last, v));
    /* More than a second behind is a clock step, not two threads racing
     * within one millisecond. */
    if (pt <= last && RK_HLC_MS(last) > wall_ms + 1000)
        behind(h, wall_ms, last);
    return v;
}

int rk_hlc_observe(struct rk_hlc *h, uint64_t version, uint64_t wall_ms)
{
    if (RK_HLC_MS(version) > wall_ms + h->max_skew_ms) {
        uint64_t n = atomic_fetch_add(&h->refused, 1) + 1;
        if (warn_due(&h->refused_warned_ms, wall_ms))
            rk_warn("hlc",
                    "refused a peer's version %llu ms ahead of this node's clock "
                    "(cluster.max_clock_skew = %llu ms; %llu refused so far): check NTP "
                    "on the coordinator",
                    (unsigned long long)(RK_HLC_MS(version) - wall_ms),
                    (unsigned long long)h->max_skew_ms, (unsigned long long)n);
        return RK_EREFUSED;
    }
    uint64_t last = atomic_load(&h->last);
    while (version > last && !atomic_compare_exchange_weak(&h->last, &last, version))
        ;
    return 0;
}

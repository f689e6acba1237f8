/* Anti-entropy pacing (aepace.h): the shared GCRA budget, the busy
 * back-off and the round order. */
#include "cluster/aepace.h"

#include <string.h>
#include <xxhash.h>

#define NS_PER_S  1000000000ull
#define NS_PER_MS 1000000ull

/* ---- the node's budget ---- */

void rk_ae_budget_init(struct rk_ae_budget *b)
{
    atomic_store(&b->key_tat_ns, 0);
    atomic_store(&b->byte_tat_ns, 0);
}

/* What n units cost at rate per second, in ns, rounded up (never faster
 * than the rate). n <= 2^34 and rate >= 1 keep n * 1e9 in 64 bits: a
 * message is at most 80 MiB (proto.h). */
static uint64_t cost_ns(uint64_t n, uint64_t rate)
{
    return (n * NS_PER_S + rate - 1) / rate;
}

static bool within_burst(uint64_t tat, uint64_t now)
{
    return tat <= now + RK_AE_BURST_MS * NS_PER_MS;
}

static uint64_t later(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Charge n units to tat unconditionally. */
static void charge(atomic_uint_fast64_t *tat, uint64_t now, uint64_t rate, uint64_t n)
{
    uint64_t t = atomic_load(tat);
    while (!atomic_compare_exchange_weak(tat, &t, later(t, now) + cost_ns(n, rate)))
        ;
}

/* Charge one unit if the bucket allows it now; false (nothing charged) if
 * it does not. */
static bool take_one(atomic_uint_fast64_t *tat, uint64_t now, uint64_t rate)
{
    uint64_t t = atomic_load(tat);
    do {
        if (!within_burst(t, now))
            return false;
    } while (!atomic_compare_exchange_weak(tat, &t, later(t, now) + cost_ns(1, rate)));
    return true;
}

bool rk_ae_budget_take(struct rk_ae_budget *b, uint64_t now_ns, uint64_t keys_ps, uint64_t bytes_ps,
                       uint64_t nbytes)
{
    if (bytes_ps && !within_burst(atomic_load(&b->byte_tat_ns), now_ns))
        return false;
    if (keys_ps && !take_one(&b->key_tat_ns, now_ns, keys_ps))
        return false;
    if (bytes_ps) /* checked above; a racing taker may have gone first: one message over */
        charge(&b->byte_tat_ns, now_ns, bytes_ps, nbytes);
    return true;
}

void rk_ae_budget_charge_bytes(struct rk_ae_budget *b, uint64_t now_ns, uint64_t bytes_ps,
                               uint64_t nbytes)
{
    if (bytes_ps && nbytes)
        charge(&b->byte_tat_ns, now_ns, bytes_ps, nbytes);
}

/* ns until tat is within the burst of now. */
static uint64_t wait_for(uint64_t tat, uint64_t now)
{
    uint64_t ok = now + RK_AE_BURST_MS * NS_PER_MS;
    return tat > ok ? tat - ok : 0;
}

uint64_t rk_ae_budget_wait(const struct rk_ae_budget *b, uint64_t now_ns, uint64_t keys_ps,
                           uint64_t bytes_ps)
{
    uint64_t k = keys_ps ? wait_for(atomic_load(&b->key_tat_ns), now_ns) : 0;
    uint64_t y = bytes_ps ? wait_for(atomic_load(&b->byte_tat_ns), now_ns) : 0;
    return later(k, y);
}

/* ---- backing off while the worker is busy ---- */

bool rk_ae_busy(const struct rk_ae_load *l)
{
    return l->queued >= RK_AE_BUSY_QUEUED || l->lag_ms >= RK_AE_BUSY_LAG_MS ||
           (l->inflight_max && l->inflight >= l->inflight_max / 4);
}

uint64_t rk_ae_backoff_wait(struct rk_ae_backoff *b, uint64_t now_ns,
                            void (*load)(void *arg, struct rk_ae_load *out), void *arg)
{
    if (now_ns < b->until_ns)
        return b->until_ns - now_ns;
    struct rk_ae_load l = {0};
    load(arg, &l);
    if (!rk_ae_busy(&l)) {
        b->pause_ns = 0;
        b->went = false;
        return 0;
    }
    const uint64_t max = RK_AE_PAUSE_MAX_MS * NS_PER_MS;
    if (b->pause_ns >= max && !b->went) { /* one burst after a longest pause */
        b->went = true;
        return 0;
    }
    b->pause_ns = b->pause_ns ? b->pause_ns * 2 : RK_AE_PAUSE_MIN_MS * NS_PER_MS;
    if (b->pause_ns > max)
        b->pause_ns = max;
    b->went = false;
    b->until_ns = now_ns + b->pause_ns;
    b->pauses++;
    return b->pause_ns;
}

/* ---- the order of a round ---- */

static void reverse(uint32_t *l, size_t i, size_t j) /* l[i..j) */
{
    while (i + 1 < j) {
        uint32_t t = l[i];
        l[i++] = l[--j];
        l[j] = t;
    }
}

/* l[0..k) and l[k..n) swap places, each keeping its order. */
static void rotate(uint32_t *l, size_t k, size_t n)
{
    reverse(l, 0, k);
    reverse(l, k, n);
    reverse(l, 0, n);
}

size_t rk_ae_round_order(uint32_t partitions, uint32_t nworkers, uint32_t worker, uint32_t start,
                         bool (*replica)(void *arg, uint32_t p),
                         unsigned (*marks)(void *arg, uint32_t p), void *arg, uint32_t *list)
{
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t first = n, wrap = n; /* list[wrap..] are the ones at or after start */
        for (uint32_t p = worker; nworkers && p < partitions; p += nworkers)
            if ((marks(arg, p) != 0) == (pass == 0) && replica(arg, p)) {
                if (p < start)
                    wrap = n + 1;
                list[n++] = p;
            }
        rotate(list + first, wrap - first, n - first);
    }
    return n;
}

uint32_t rk_ae_round_start(const char *node_id, uint32_t partitions)
{
    return partitions ? (uint32_t)(XXH3_64bits(node_id, strlen(node_id)) % partitions) : 0;
}

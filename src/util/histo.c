/* Power-of-two histograms (histo.h). */
#include "util/histo.h"

#include <assert.h>

static_assert(RK_HISTO_MIN_SHIFT + RK_HISTO_BOUNDS - 1 < 64, "bounds fit a u64");

uint64_t rk_histo_bound(unsigned i)
{
    return (uint64_t)1 << (RK_HISTO_MIN_SHIFT + i);
}

unsigned rk_histo_slot(uint64_t v)
{
    if (v <= rk_histo_bound(0))
        return 0;
    /* ceil(log2(v)) for v > 1: the bit length of v - 1. */
    unsigned log2_ceil = 64u - (unsigned)__builtin_clzll(v - 1);
    unsigned i = log2_ceil - RK_HISTO_MIN_SHIFT;
    return i < RK_HISTO_BOUNDS ? i : RK_HISTO_BOUNDS;
}

void rk_histo_record(struct rk_histo *h, uint64_t v)
{
    h->counts[rk_histo_slot(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

void rk_histo_merge(struct rk_histo *into, const struct rk_histo *h)
{
    for (unsigned i = 0; i < RK_HISTO_SLOTS; i++)
        into->counts[i] += h->counts[i];
    into->count += h->count;
    into->sum += h->sum;
    if (h->max > into->max)
        into->max = h->max;
}

/* ceil(x) for 0 <= x < 2^64, without libm. */
static uint64_t ceil_u64(double x)
{
    uint64_t r = (uint64_t)x;
    return (double)r < x ? r + 1 : r;
}

uint64_t rk_histo_quantile(const struct rk_histo *h, double q)
{
    if (h->count == 0)
        return 0;
    q = q < 0 ? 0 : q > 1 ? 1 : q;
    uint64_t rank = ceil_u64(q * (double)h->count);
    rank = rank < 1 ? 1 : rank > h->count ? h->count : rank;
    uint64_t below = 0;
    for (unsigned i = 0; i < RK_HISTO_SLOTS; i++) {
        uint64_t c = h->counts[i];
        if (below + c < rank) {
            below += c;
            continue;
        }
        uint64_t lo = i == 0 ? 0 : rk_histo_bound(i - 1);
        uint64_t hi = i < RK_HISTO_BOUNDS ? rk_histo_bound(i) : h->max;
        hi = hi > lo ? hi : lo;
        /* Rounded up, so the estimate stays above lo: inside the slot. */
        unsigned __int128 span = (unsigned __int128)(hi - lo) * (rank - below);
        uint64_t est = lo + (uint64_t)((span + c - 1) / c);
        return est < h->max ? est : h->max;
    }
    return h->max; /* counts short of count: a torn copy; the largest is safe */
}

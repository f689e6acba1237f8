/* Histograms of non-negative values (latencies in µs, sizes) in fixed
 * power-of-two buckets: recording costs a count-leading-zeros and two
 * increments, so it fits a request's hot path; two histograms merge by
 * adding their counts, so per-thread ones add up to a process's; a
 * quantile is estimated from the counts, to within its bucket.
 *
 * Buckets (the same for every histogram, so any two merge):
 *   slot 0                      [0, 16]
 *   slot i, 1 <= i < BOUNDS     (2^(i+3), 2^(i+4)]      (bound i-1, bound i]
 *   slot BOUNDS (the overflow)  above 2^24
 * With µs as the unit the bounds run from 16 µs to 16.8 s: below 16 µs
 * nothing a client sees is worth telling apart, and a request that takes
 * over 16 s has long been given up (cluster.request_timeout is far less).
 *
 * Threads: a histogram has one writer; readers take a copy the writer
 * publishes (the worker copies it with its other counters). No allocation.
 */
#ifndef RK_UTIL_HISTO_H
#define RK_UTIL_HISTO_H

#include <stdint.h>

#define RK_HISTO_MIN_SHIFT 4u                     /* the first bound: 2^4 = 16 */
#define RK_HISTO_BOUNDS    21u                    /* bounds 2^4 .. 2^24 */
#define RK_HISTO_SLOTS     (RK_HISTO_BOUNDS + 1u) /* one more for values above the last bound */

struct rk_histo {
    uint64_t counts[RK_HISTO_SLOTS]; /* per slot, as above */
    uint64_t count;                  /* sum of counts: values recorded */
    uint64_t max;                    /* the largest value recorded (0 when none) */
    uint64_t sum;                    /* of the values recorded (Prometheus' _sum) */
};

/* Upper bound of slot i (i < RK_HISTO_BOUNDS): 16 << i. */
uint64_t rk_histo_bound(unsigned i);

/* The slot v falls in. */
unsigned rk_histo_slot(uint64_t v);

/* Count v in h. */
void rk_histo_record(struct rk_histo *h, uint64_t v);

/* Add h's counts to into (into's max becomes the larger). */
void rk_histo_merge(struct rk_histo *into, const struct rk_histo *h);

/* The q-quantile (0 <= q <= 1; outside is clamped) of what h counted: the
 * value of rank ceil(q * count) (at least 1), placed within its slot by
 * linear interpolation between the slot's bounds (the overflow slot ends
 * at max), and never above max. It lies in the same slot as the true
 * quantile, so it is off by less than a factor of two. 0 when h is
 * empty. */
uint64_t rk_histo_quantile(const struct rk_histo *h, double q);

#endif

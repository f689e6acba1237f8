/* Power-of-two histograms (util/histo.h): values land in the slot their
 * bounds say, merging equals recording everything in one, and a quantile
 * estimate lies in the same slot as the true quantile, never above the
 * largest value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "util/histo.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_bounds_and_slots(void **state)
{
    (void)state;
    assert_int_equal(rk_histo_bound(0), 16);
    assert_int_equal(rk_histo_bound(1), 32);
    assert_int_equal(rk_histo_bound(RK_HISTO_BOUNDS - 1), 1u << 24);
    assert_int_equal(rk_histo_slot(0), 0);
    assert_int_equal(rk_histo_slot(1), 0);
    assert_int_equal(rk_histo_slot(16), 0); /* a bound belongs to the slot below it */
    assert_int_equal(rk_histo_slot(17), 1);
    assert_int_equal(rk_histo_slot(32), 1);
    assert_int_equal(rk_histo_slot(33), 2);
    assert_int_equal(rk_histo_slot(1000), 6); /* (512, 1024] */
    assert_int_equal(rk_histo_slot(1u << 24), RK_HISTO_BOUNDS - 1);
    assert_int_equal(rk_histo_slot((1u << 24) + 1), RK_HISTO_BOUNDS); /* the overflow */
    assert_int_equal(rk_histo_slot(UINT64_MAX), RK_HISTO_BOUNDS);
    /* Every slot below the overflow is (bound i-1, bound i]. */
    for (unsigned i = 1; i < RK_HISTO_BOUNDS; i++) {
        assert_int_equal(rk_histo_slot(rk_histo_bound(i - 1) + 1), i);
        assert_int_equal(rk_histo_slot(rk_histo_bound(i)), i);
    }
}

static void test_record_counts_and_max(void **state)
{
    (void)state;
    struct rk_histo h = {0};
    assert_int_equal(rk_histo_quantile(&h, 0.5), 0); /* empty */
    rk_histo_record(&h, 5);
    rk_histo_record(&h, 100);
    rk_histo_record(&h, 100);
    rk_histo_record(&h, 50u << 20); /* overflow */
    assert_int_equal(h.count, 4);
    assert_int_equal(h.max, 50u << 20);
    assert_int_equal(h.counts[0], 1);
    assert_int_equal(h.counts[rk_histo_slot(100)], 2);
    assert_int_equal(h.counts[RK_HISTO_BOUNDS], 1);
    uint64_t sum = 0;
    for (unsigned i = 0; i < RK_HISTO_SLOTS; i++)
        sum += h.counts[i];
    assert_int_equal(sum, h.count);
}

static void test_single_value_is_exact(void **state)
{
    (void)state;
    uint64_t vs[] = {0, 1, 16, 17, 700, 1u << 24, (1u << 24) + 9, 40000000};
    for (size_t k = 0; k < sizeof(vs) / sizeof(vs[0]); k++) {
        struct rk_histo h = {0};
        rk_histo_record(&h, vs[k]);
        /* One value: every quantile is the slot's top, clamped to max. */
        assert_int_equal(rk_histo_quantile(&h, 0.0), vs[k]);
        assert_int_equal(rk_histo_quantile(&h, 0.5), vs[k]);
        assert_int_equal(rk_histo_quantile(&h, 1.0), vs[k]);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The true q-quantile of sorted v[0..n): the value of rank ceil(q n). */
static uint64_t true_quantile(const uint64_t *v, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n);
    if ((double)rank < q * (double)n)
        rank++;
    rank = rank < 1 ? 1 : rank;
    return v[rank - 1];
}

/* Values spread over many slots (log-uniform, as latencies are), in
 * random histograms: each estimate is in the true quantile's slot, at
 * most max, and the quantiles never decrease with q. */
static void test_quantile_in_true_slot(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_histo"), rng = seed;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(tu_rand(&rng) % 3000);
        uint64_t *v = malloc(n * sizeof(*v));
        assert_non_null(v);
        struct rk_histo h = {0};
        for (size_t i = 0; i < n; i++) {
            unsigned bits = (unsigned)(tu_rand(&rng) % 27); /* up to 2^26: overflow too */
            v[i] = bits ? tu_rand(&rng) % ((uint64_t)1 << bits) : 0;
            rk_histo_record(&h, v[i]);
        }
        qsort(v, n, sizeof(*v), cmp_u64);
        static const double qs[] = {0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0};
        uint64_t prev = 0;
        for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
            uint64_t want = true_quantile(v, n, qs[k]), got = rk_histo_quantile(&h, qs[k]);
            if (rk_histo_slot(got) != rk_histo_slot(want) || got > h.max || got < prev)
                fail_msg("seed %llu round %d n %zu q %.3f: estimate %llu, true %llu, max %llu, "
                         "previous %llu",
                         (unsigned long long)seed, round, n, qs[k], (unsigned long long)got,
                         (unsigned long long)want, (unsigned long long)h.max,
                         (unsigned long long)prev);
            prev = got;
        }
        assert_int_equal(rk_histo_quantile(&h, 1.0), v[n - 1]); /* the top is the max */
        free(v);
    }
}

/* Merging per-thread histograms equals recording everything in one. */
static void test_merge_equals_one(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_histo merge");
    struct rk_histo all = {0}, merged = {0}, part[4];
    memset(part, 0, sizeof(part));
    for (int i = 0; i < 10000; i++) {
        uint64_t v = tu_rand(&rng) % (1u << (tu_rand(&rng) % 26));
        rk_histo_record(&all, v);
        rk_histo_record(&part[i % 4], v);
    }
    for (int k = 0; k < 4; k++)
        rk_histo_merge(&merged, &part[k]);
    assert_memory_equal(&merged, &all, sizeof(all));
    struct rk_histo empty = {0}, copy = all;
    rk_histo_merge(&copy, &empty); /* an empty histogram adds nothing */
    assert_memory_equal(&copy, &all, sizeof(all));
    assert_int_equal(rk_histo_quantile(&merged, 0.99), rk_histo_quantile(&all, 0.99));
}

/* Quantiles of a known distribution: 90 fast values and 10 slow ones. */
static void test_quantile_known(void **state)
{
    (void)state;
    struct rk_histo h = {0};
    for (int i = 0; i < 90; i++)
        rk_histo_record(&h, 100); /* slot (64, 128] */
    for (int i = 0; i < 10; i++)
        rk_histo_record(&h, 5000); /* slot (4096, 8192] */
    uint64_t p50 = rk_histo_quantile(&h, 0.5), p90 = rk_histo_quantile(&h, 0.9);
    uint64_t p95 = rk_histo_quantile(&h, 0.95), p99 = rk_histo_quantile(&h, 0.99);
    assert_int_equal(h.sum, 90 * 100 + 10 * 5000); /* exact, unlike the quantiles */
    assert_true(p50 > 64 && p50 <= 128);
    assert_true(p90 > 64 && p90 <= 128);
    assert_true(p95 > 4096 && p95 <= 5000);
    assert_true(p99 > 4096 && p99 <= 5000);
    assert_int_equal(rk_histo_quantile(&h, -1), rk_histo_quantile(&h, 0)); /* clamped */
    assert_int_equal(rk_histo_quantile(&h, 2), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_and_slots),      cmocka_unit_test(test_record_counts_and_max),
        cmocka_unit_test(test_single_value_is_exact), cmocka_unit_test(test_quantile_in_true_slot),
        cmocka_unit_test(test_merge_equals_one),      cmocka_unit_test(test_quantile_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

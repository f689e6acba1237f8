/* Anti-entropy pacing (aepace.h) on a simulated clock: the shared budget
 * never lets more than the rate (plus its burst) through in any 2 s
 * window, keys or bytes, one taker or several, and still delivers the
 * rate; two threads draining it at one instant take exactly the burst;
 * the busy back-off doubles its pauses up to the bound, lets one burst go
 * after each longest pause and resets once the worker is idle; a round
 * puts marked partitions first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/aepace.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS     1000000ull
#define SIM_MS 10000u /* simulated run */
#define WINDOW 2000u  /* the window */
#define SLACK  1.10   /* the bound: 10 % over the budget */

/* ---- the budget ---- */

/* Per simulated ms, what greedy takers got: keys and bytes. */
struct sim {
    uint64_t keys[SIM_MS], bytes[SIM_MS];
};

/* The most any WINDOW-ms span of per-ms counts c holds. */
static uint64_t max_window(const uint64_t *c)
{
    uint64_t sum = 0, best = 0;
    for (unsigned t = 0; t < SIM_MS; t++) {
        sum += c[t];
        if (t >= WINDOW)
            sum -= c[t - WINDOW];
        best = sum > best ? sum : best;
    }
    return best;
}

static uint64_t total(const uint64_t *c)
{
    uint64_t s = 0;
    for (unsigned t = 0; t < SIM_MS; t++)
        s += c[t];
    return s;
}

/* takers take in turn, every simulated ms, until the budget says no;
 * size(i) is the bytes of the i-th take. Starts at a clock far from 0, as
 * the monotonic clock is. */
static void run(struct sim *s, unsigned takers, uint64_t keys_ps, uint64_t bytes_ps,
                uint64_t (*size)(uint64_t i))
{
    struct rk_ae_budget b;
    rk_ae_budget_init(&b);
    memset(s, 0, sizeof(*s));
    uint64_t i = 0, base = 123456789ull * MS;
    for (unsigned t = 0; t < SIM_MS; t++) {
        bool any = true;
        while (any) {
            any = false;
            for (unsigned k = 0; k < takers; k++) {
                uint64_t n = size(i);
                if (!rk_ae_budget_take(&b, base + t * MS, keys_ps, bytes_ps, n))
                    continue;
                s->keys[t]++, s->bytes[t] += n, i++;
                any = true;
                assert_true(s->keys[t] < 1000000); /* a limit holds at all */
            }
        }
    }
}

static uint64_t small(uint64_t i)
{
    (void)i;
    return 100;
}

static void check_keys(unsigned takers, uint64_t rate)
{
    static struct sim s;
    run(&s, takers, rate, 0, small);
    uint64_t most = max_window(s.keys), all = total(s.keys);
    double bound = SLACK * (double)rate * WINDOW / 1000.0;
    print_message("%llu keys/s, %u takers: at most %llu in %u ms (bound %.0f), %llu in %u ms\n",
                  (unsigned long long)rate, takers, (unsigned long long)most, WINDOW, bound,
                  (unsigned long long)all, SIM_MS);
    /* One key of granularity for tiny budgets: the bound is rate * (W + burst) + 1. */
    assert_true((double)most <= bound || most <= rate * (WINDOW + RK_AE_BURST_MS) / 1000 + 1);
    /* And it delivers the budget, not a fraction of it. */
    assert_true((double)all >= 0.97 * (double)rate * SIM_MS / 1000.0);
}

static void test_keys_per_window(void **state)
{
    (void)state;
    check_keys(1, 500);
    check_keys(2, 500); /* two workers share the node's budget */
    check_keys(4, 500);
    check_keys(1, 50000);
    check_keys(3, 50000);
    check_keys(1, 7);
}

static uint64_t rnd_state;

static uint64_t random_size(uint64_t i)
{
    (void)i;
    return 100 + tu_rand_below(&rnd_state, 20000);
}

static void test_bytes_per_window(void **state)
{
    (void)state;
    static struct sim s;
    uint64_t seed = tu_seed("test_bytes_per_window");
    rnd_state = seed;
    const uint64_t rate = 1u << 20;
    run(&s, 2, 0, rate, random_size);
    uint64_t most = max_window(s.bytes), all = total(s.bytes);
    print_message("%llu B/s: at most %llu B in %u ms, %llu B in %u ms\n", (unsigned long long)rate,
                  (unsigned long long)most, WINDOW, (unsigned long long)all, SIM_MS);
    assert_true((double)most <= SLACK * (double)rate * WINDOW / 1000.0);
    assert_true((double)all >= 0.95 * (double)rate * SIM_MS / 1000.0);
    /* Both limits at once: the tighter one rules. */
    rnd_state = seed;
    run(&s, 1, 200, rate, random_size); /* ~10 KiB a key: bytes rule */
    assert_true((double)max_window(s.bytes) <= SLACK * (double)rate * WINDOW / 1000.0);
    assert_true(max_window(s.keys) <= 2 * 200 + 11);
    run(&s, 1, 200, rate, small); /* 100 B a key: keys rule */
    assert_true((double)max_window(s.keys) <= SLACK * 200 * WINDOW / 1000.0);
}

static void test_unlimited_and_wait(void **state)
{
    (void)state;
    struct rk_ae_budget b;
    rk_ae_budget_init(&b);
    const uint64_t now = 5000 * MS;
    for (int i = 0; i < 100000; i++)
        assert_true(rk_ae_budget_take(&b, now, 0, 0, 1 << 20));
    assert_int_equal(rk_ae_budget_wait(&b, now, 0, 0), 0);
    /* 100 keys/s: the burst (50 ms) and one more go, then 10 ms apart. */
    int n = 0;
    while (rk_ae_budget_take(&b, now, 100, 0, 1))
        n++;
    assert_int_equal(n, 6);
    uint64_t w = rk_ae_budget_wait(&b, now, 100, 0);
    assert_int_equal(w, 10 * MS);
    assert_false(rk_ae_budget_take(&b, now + w - 1, 100, 0, 1));
    assert_true(rk_ae_budget_take(&b, now + w, 100, 0, 1));
    /* A pulled value charged after the fact holds later takes back. */
    rk_ae_budget_init(&b);
    rk_ae_budget_charge_bytes(&b, now, 1000, 1000); /* one second's worth */
    w = rk_ae_budget_wait(&b, now, 0, 1000);
    assert_int_equal(w, (1000 - RK_AE_BURST_MS) * MS);
    assert_false(rk_ae_budget_take(&b, now + w - 1, 0, 1000, 1));
    assert_true(rk_ae_budget_take(&b, now + w, 0, 1000, 1));
    rk_ae_budget_charge_bytes(&b, now, 0, 1000); /* no limit: nothing to charge */
}

struct drain {
    struct rk_ae_budget *b;
    pthread_barrier_t *go;
    unsigned got;
};

static void *drain_main(void *arg)
{
    struct drain *d = arg;
    pthread_barrier_wait(d->go);
    for (int i = 0; i < 200000; i++)
        d->got += rk_ae_budget_take(d->b, 77 * MS * 1000, 100000, 0, 1);
    return NULL;
}

/* Threads racing on one instant take exactly the burst plus one: the key
 * bucket is taken atomically. */
static void test_threads_take_exactly_the_burst(void **state)
{
    (void)state;
    struct rk_ae_budget b;
    rk_ae_budget_init(&b);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 4);
    struct drain d[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        d[i] = (struct drain){&b, &go, 0};
        assert_int_equal(pthread_create(&th[i], NULL, drain_main, &d[i]), 0);
    }
    unsigned sum = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        sum += d[i].got;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(sum, 100000 * RK_AE_BURST_MS / 1000 + 1);
}

/* ---- the back-off ---- */

struct fake_load {
    struct rk_ae_load l;
    unsigned calls;
};

static void load_of(void *arg, struct rk_ae_load *out)
{
    struct fake_load *f = arg;
    f->calls++;
    *out = f->l;
}

static void test_busy(void **state)
{
    (void)state;
    assert_false(rk_ae_busy(&(struct rk_ae_load){0}));
    assert_false(rk_ae_busy(&(struct rk_ae_load){.queued = RK_AE_BUSY_QUEUED - 1,
                                                 .lag_ms = RK_AE_BUSY_LAG_MS - 1,
                                                 .inflight = 2499,
                                                 .inflight_max = 10000}));
    assert_true(rk_ae_busy(&(struct rk_ae_load){.queued = RK_AE_BUSY_QUEUED}));
    assert_true(rk_ae_busy(&(struct rk_ae_load){.lag_ms = RK_AE_BUSY_LAG_MS}));
    assert_true(rk_ae_busy(&(struct rk_ae_load){.inflight = 2500, .inflight_max = 10000}));
    assert_false(rk_ae_busy(&(struct rk_ae_load){.inflight = 99999})); /* no limit known */
}

static void test_backoff(void **state)
{
    (void)state;
    struct rk_ae_backoff b = {0};
    struct fake_load f = {0};
    uint64_t now = 1000 * MS;
    assert_int_equal(rk_ae_backoff_wait(&b, now, load_of, &f), 0);
    f.l.lag_ms = 80; /* the loop lags: pauses double up to the bound */
    const uint64_t want[] = {50, 100, 200, 400, 800, 1000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        uint64_t w = rk_ae_backoff_wait(&b, now, load_of, &f);
        assert_int_equal(w, want[i] * MS);
        unsigned calls = f.calls;
        /* During the pause nothing goes, and the load is not asked again. */
        assert_int_equal(rk_ae_backoff_wait(&b, now + w / 2, load_of, &f), w - w / 2);
        assert_int_equal(f.calls, calls);
        now += w;
    }
    /* Busy for good: after each longest pause one burst goes. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rk_ae_backoff_wait(&b, now, load_of, &f), 0);
        assert_int_equal(rk_ae_backoff_wait(&b, now, load_of, &f), RK_AE_PAUSE_MAX_MS * MS);
        now += RK_AE_PAUSE_MAX_MS * MS;
    }
    assert_int_equal(b.pauses, 6 + 3);
    /* Idle again: no pause, and the next busy spell starts short. */
    f.l.lag_ms = 0;
    assert_int_equal(rk_ae_backoff_wait(&b, now, load_of, &f), 0);
    assert_int_equal(rk_ae_backoff_wait(&b, now + 1, load_of, &f), 0);
    f.l.queued = RK_AE_BUSY_QUEUED;
    assert_int_equal(rk_ae_backoff_wait(&b, now + 2, load_of, &f), RK_AE_PAUSE_MIN_MS * MS);
}

/* ---- the round order ---- */

struct parts {
    uint8_t marks[64];
};

static bool replica_of(void *arg, uint32_t p)
{
    (void)arg;
    return p % 3 != 0; /* this node holds no replica of every third */
}

static unsigned marks_of(void *arg, uint32_t p)
{
    return ((struct parts *)arg)->marks[p];
}

static void test_round_order(void **state)
{
    (void)state;
    struct parts ps = {0};
    uint32_t list[64];
    /* Worker 1 of 2 owns the odd partitions; every third is not ours. */
    size_t n = rk_ae_round_order(64, 2, 1, 0, replica_of, marks_of, &ps, list);
    uint32_t want[64];
    size_t k = 0;
    for (uint32_t p = 1; p < 64; p += 2)
        if (p % 3 != 0)
            want[k++] = p;
    assert_int_equal(n, k);
    assert_memory_equal(list, want, n * sizeof(list[0]));
    /* Marked ones first, ascending: marks on partitions not owned (6) or
     * not held (9, 21) change nothing. */
    ps.marks[61] = 1, ps.marks[5] = 8, ps.marks[35] = 2, ps.marks[6] = 1, ps.marks[9] = 1;
    ps.marks[21] = 4;
    n = rk_ae_round_order(64, 2, 1, 0, replica_of, marks_of, &ps, list);
    assert_int_equal(n, k);
    assert_int_equal(list[0], 5);
    assert_int_equal(list[1], 35);
    assert_int_equal(list[2], 61);
    for (size_t i = 4; i < n; i++)
        assert_true(list[i - 1] < list[i]); /* the rest, ascending */
    for (size_t i = 3; i < n; i++)
        assert_true(list[i] != 5 && list[i] != 35 && list[i] != 61);
    /* One worker owns all. */
    assert_int_equal(rk_ae_round_order(64, 1, 0, 0, replica_of, marks_of, &ps, list), 42);
    assert_int_equal(list[0], 5);

    /* From a start: each group begins at its first partition at or after
     * it and wraps round, keeping every partition once. */
    n = rk_ae_round_order(64, 2, 1, 40, replica_of, marks_of, &ps, list);
    assert_int_equal(n, k);
    assert_int_equal(list[0], 61); /* marked: 61, then 5, 35 wrapped */
    assert_int_equal(list[1], 5);
    assert_int_equal(list[2], 35);
    assert_int_equal(list[3], 41); /* unmarked: from 41 (40 is not owned) */
    assert_int_equal(list[n - 1], 37);
    uint8_t seen[64] = {0};
    for (size_t i = 0; i < n; i++)
        seen[list[i]]++;
    for (uint32_t p = 0; p < 64; p++)
        assert_int_equal(seen[p], p % 2 == 1 && p % 3 != 0);
    /* A start past every partition, or at the first: plain order. */
    assert_int_equal(rk_ae_round_order(64, 2, 1, 64, replica_of, marks_of, &ps, list), k);
    assert_int_equal(list[3], 1);
    assert_true(rk_ae_round_start("node-1", 256) < 256);
    assert_true(rk_ae_round_start("node-1", 256) != rk_ae_round_start("node-2", 256) ||
                rk_ae_round_start("node-1", 256) != rk_ae_round_start("node-3", 256));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_per_window),
        cmocka_unit_test(test_bytes_per_window),
        cmocka_unit_test(test_unlimited_and_wait),
        cmocka_unit_test(test_threads_take_exactly_the_burst),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_round_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

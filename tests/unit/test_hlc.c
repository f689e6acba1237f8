/* The hybrid logical clock: monotonic under a backwards wall clock, causal
 * across nodes, refuses peers too far ahead, and unique under four threads
 * racing on one clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/hlc.h"
#include "util/err.h"
#include "util/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void test_follows_wall_clock(void **state)
{
    (void)state;
    struct rk_hlc h;
    rk_hlc_init(&h, 500);
    uint64_t a = rk_hlc_now(&h, 1000);
    assert_int_equal(a, 1000ull << 16);
    uint64_t b = rk_hlc_now(&h, 1000); /* same ms: the counter */
    assert_int_equal(b, a + 1);
    uint64_t c = rk_hlc_now(&h, 1001);
    assert_int_equal(c, 1001ull << 16);
}

static void test_wall_clock_backwards(void **state)
{
    (void)state;
    struct rk_hlc h;
    rk_hlc_init(&h, 500);
    uint64_t a = rk_hlc_now(&h, 100000);
    uint64_t b = rk_hlc_now(&h, 50000); /* the clock stepped back 50 s */
    assert_true(b > a);
    assert_int_equal(RK_HLC_MS(b), 100000);
    assert_int_equal(atomic_load(&h.backwards), 1);
    uint64_t c = rk_hlc_now(&h, 100005); /* real time catches up */
    assert_int_equal(c, 100005ull << 16);
}

static void test_observe_is_causal_and_bounded(void **state)
{
    (void)state;
    struct rk_hlc h;
    rk_hlc_init(&h, 500);
    rk_hlc_now(&h, 1000);
    /* A peer 300 ms ahead: accepted, and our next version follows it. */
    uint64_t peer = (1300ull << 16) | 7;
    assert_int_equal(rk_hlc_observe(&h, peer, 1000), 0);
    assert_true(rk_hlc_now(&h, 1000) > peer);
    /* 600 ms ahead: refused, counted, not adopted. */
    uint64_t far = 1601ull << 16;
    assert_int_equal(rk_hlc_observe(&h, far, 1000), RK_EREFUSED);
    assert_int_equal(atomic_load(&h.refused), 1);
    assert_true(rk_hlc_now(&h, 1000) < far);
    /* An older peer version changes nothing. */
    uint64_t before = atomic_load(&h.last);
    assert_int_equal(rk_hlc_observe(&h, 5, 1000), 0);
    assert_int_equal(atomic_load(&h.last), before);
}

#define THREADS    4
#define PER_THREAD 50000
static struct rk_hlc shared;
static uint64_t got[THREADS][PER_THREAD];

static void *taker(void *arg)
{
    uint64_t *out = arg;
    for (int i = 0; i < PER_THREAD; i++)
        out[i] = rk_hlc_now(&shared, 7777 + (uint64_t)(i / 1000));
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_threads_get_unique_increasing_versions(void **state)
{
    (void)state;
    rk_hlc_init(&shared, 500);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, taker, got[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        for (int k = 1; k < PER_THREAD; k++)
            assert_true(got[i][k] > got[i][k - 1]); /* monotonic per thread */
    uint64_t *all = malloc(sizeof(got));
    assert_non_null(all);
    memcpy(all, got, sizeof(got));
    qsort(all, THREADS * PER_THREAD, sizeof(uint64_t), cmp_u64);
    for (size_t k = 1; k < THREADS * PER_THREAD; k++)
        assert_true(all[k] != all[k - 1]); /* unique across threads */
    free(all);
}

int main(void)
{
    rk_log_set_level(RK_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follows_wall_clock),
        cmocka_unit_test(test_wall_clock_backwards),
        cmocka_unit_test(test_observe_is_causal_and_bounded),
        cmocka_unit_test(test_threads_get_unique_increasing_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The event ring (util/events.h): sequence numbers, oldest-first copies of
 * the last K, the ring letting go of the oldest once full, texts cut on a
 * UTF-8 boundary, and writers on many threads losing and duplicating
 * nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/clock.h"
#include "util/events.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reset(void **state)
{
    (void)state;
    rk_events_reset();
    return 0;
}

static void test_empty_and_kinds(void **state)
{
    (void)state;
    struct rk_event out[4];
    assert_int_equal(rk_events_last(out, 4), 0);
    assert_string_equal(rk_event_kind_name(RK_EVENT_MEMBER), "member");
    assert_string_equal(rk_event_kind_name(RK_EVENT_TRANSFER), "transfer");
    assert_string_equal(rk_event_kind_name(RK_EVENT_AE), "ae");
    assert_string_equal(rk_event_kind_name(RK_EVENT_NODE), "node");
    assert_string_equal(rk_event_kind_name(RK_EVENT_KINDS), "?");
}

static void test_seq_order_and_last_k(void **state)
{
    (void)state;
    uint64_t before = rk_clock_wall_ms();
    for (int i = 1; i <= 5; i++)
        rk_event(i % 2 ? RK_EVENT_MEMBER : RK_EVENT_AE, "event %d", i);
    uint64_t after = rk_clock_wall_ms();
    struct rk_event out[8];
    assert_int_equal(rk_events_last(out, 8), 5); /* fewer recorded than asked */
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof(want), "event %d", i + 1);
        assert_int_equal(out[i].seq, (uint64_t)i + 1); /* oldest first, from 1 */
        assert_string_equal(out[i].text, want);
        assert_int_equal(out[i].kind, (i + 1) % 2 ? RK_EVENT_MEMBER : RK_EVENT_AE);
        assert_true(out[i].ms >= before && out[i].ms <= after);
    }
    assert_int_equal(rk_events_last(out, 2), 2); /* the last two, still oldest first */
    assert_int_equal(out[0].seq, 4);
    assert_int_equal(out[1].seq, 5);
    assert_int_equal(rk_events_last(out, 0), 0);
}

/* Past RK_EVENTS_RING the oldest go; seq goes on counting. */
static void test_wraps(void **state)
{
    (void)state;
    int total = 3 * RK_EVENTS_RING + 7;
    for (int i = 1; i <= total; i++)
        rk_event(RK_EVENT_TRANSFER, "n=%d", i);
    struct rk_event *out = calloc(RK_EVENTS_RING + 10, sizeof(*out));
    assert_non_null(out);
    assert_int_equal(rk_events_last(out, RK_EVENTS_RING + 10), RK_EVENTS_RING);
    for (int i = 0; i < RK_EVENTS_RING; i++) {
        int n = total - RK_EVENTS_RING + 1 + i;
        char want[32];
        snprintf(want, sizeof(want), "n=%d", n);
        assert_int_equal(out[i].seq, (uint64_t)n);
        assert_string_equal(out[i].text, want);
    }
    assert_int_equal(rk_events_last(out, 32), 32);
    assert_int_equal(out[0].seq, (uint64_t)total - 31);
    assert_int_equal(out[31].seq, (uint64_t)total);
    free(out);
    rk_events_reset(); /* and a reset starts again at 1 */
    rk_event(RK_EVENT_NODE, "again");
    struct rk_event one;
    assert_int_equal(rk_events_last(&one, 1), 1);
    assert_int_equal(one.seq, 1);
}

/* A long text is cut to 120 bytes, never inside a character. */
static void test_long_text_cut_on_utf8_boundary(void **state)
{
    (void)state;
    char ascii[300];
    memset(ascii, 'a', sizeof(ascii) - 1);
    ascii[sizeof(ascii) - 1] = 0;
    rk_event(RK_EVENT_NODE, "%s", ascii);
    /* 119 ASCII bytes then a 3-byte character: only its first byte fits. */
    char mixed[300];
    memset(mixed, 'b', 119);
    strcpy(mixed + 119, "\xe2\x86\x92 rest");
    rk_event(RK_EVENT_NODE, "%s", mixed);
    /* 118 ASCII bytes then a 2-byte character: it fits whole. */
    char two[300];
    memset(two, 'c', 118);
    strcpy(two + 118, "\xc3\xa9xyz");
    rk_event(RK_EVENT_NODE, "%s", two);
    struct rk_event out[3];
    assert_int_equal(rk_events_last(out, 3), 3);
    assert_int_equal(strlen(out[0].text), RK_EVENT_TEXT - 1);
    assert_int_equal(strlen(out[1].text), 119); /* the cut character dropped */
    assert_memory_equal(out[1].text, mixed, 119);
    assert_int_equal(strlen(out[2].text), 120);
    assert_memory_equal(out[2].text, two, 120); /* ends with the whole é */
}

#define WRITERS 8
#define PER     2000

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER; i++)
        rk_event(RK_EVENT_MEMBER, "w%d %d", id, i);
    return NULL;
}

/* Concurrent writers and a reader: the reader always sees consecutive
 * seqs, each writer's events appear in its own order, and at the end the
 * last seq is the number of events recorded. */
static void test_concurrent_writers(void **state)
{
    (void)state;
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
    struct rk_event out[RK_EVENTS_RING];
    for (int r = 0; r < 200; r++) {
        size_t n = rk_events_last(out, RK_EVENTS_RING);
        int last[WRITERS];
        for (int i = 0; i < WRITERS; i++)
            last[i] = -1;
        for (size_t i = 0; i < n; i++) {
            if (i)
                assert_int_equal(out[i].seq, out[i - 1].seq + 1);
            int w, k;
            assert_int_equal(sscanf(out[i].text, "w%d %d", &w, &k), 2);
            assert_true(w >= 0 && w < WRITERS);
            assert_true(k > last[w]); /* a writer's events in its order */
            last[w] = k;
        }
    }
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(rk_events_last(out, RK_EVENTS_RING), RK_EVENTS_RING);
    assert_int_equal(out[RK_EVENTS_RING - 1].seq, (uint64_t)WRITERS * PER);
    /* No event was stored twice (nor one slot overwritten by two). */
    for (int i = 0; i < RK_EVENTS_RING; i++)
        for (int j = i + 1; j < RK_EVENTS_RING; j++)
            assert_string_not_equal(out[i].text, out[j].text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_empty_and_kinds, reset),
        cmocka_unit_test_setup(test_seq_order_and_last_k, reset),
        cmocka_unit_test_setup(test_wraps, reset),
        cmocka_unit_test_setup(test_long_text_cut_on_utf8_boundary, reset),
        cmocka_unit_test_setup(test_concurrent_writers, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

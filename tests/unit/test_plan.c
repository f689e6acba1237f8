/* kvctl plan's ring difference: a join moves replicas only to the new
 * member, about 1/(M+1) of them, and each move's sources are the current
 * preference list; a leave moves every replica the leaving member held, to
 * members other than it, streaming from it; a remove moves the same but
 * never names the removed member as a source; equal rings move nothing;
 * rings of different shapes are refused. Deterministic fixed ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/plan.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define PARTS 256u
#define NREP  3u

static struct rk_ring *ring_of(size_t first, size_t n, size_t skip)
{
    static char buf[16][32];
    const char *ids[16];
    size_t k = 0;
    for (size_t i = first; i < first + n; i++) {
        if (i == skip)
            continue;
        snprintf(buf[k], sizeof buf[k], "node-%zu", i);
        ids[k] = buf[k];
        k++;
    }
    struct rk_ring *r = NULL;
    assert_int_equal(rk_ring_build(&r, ids, k, PARTS, NREP), 0);
    return r;
}

struct seen {
    const char *must_to;    /* every move goes here (NULL: any) */
    const char *never_to;   /* no move goes here (NULL: none) */
    const char *must_from;  /* every move lists it as a source (NULL: none) */
    const char *never_from; /* no move lists it (NULL: none) */
    const struct rk_ring *before;
    uint64_t moves;
    uint32_t last_part;
};

static void check_move(void *arg, const struct rk_plan_move *m)
{
    struct seen *s = arg;
    assert_true(m->partition >= s->last_part);
    s->last_part = m->partition;
    s->moves++;
    if (s->must_to)
        assert_string_equal(m->to, s->must_to);
    if (s->never_to)
        assert_string_not_equal(m->to, s->never_to);
    bool has_must = s->must_from == NULL;
    const char *pre[NREP];
    size_t npre = rk_ring_preference(s->before, m->partition, pre, NREP);
    assert_true(m->nfrom <= npre);
    for (size_t i = 0; i < m->nfrom; i++) {
        if (s->never_from)
            assert_string_not_equal(m->from[i], s->never_from);
        if (s->must_from && strcmp(m->from[i], s->must_from) == 0)
            has_must = true;
        bool in_pre = false;
        for (size_t j = 0; j < npre; j++)
            in_pre |= strcmp(pre[j], m->from[i]) == 0;
        assert_true(in_pre);
    }
    assert_true(has_must);
}

/* Partitions whose preference list in r holds id. */
static uint32_t held_by(const struct rk_ring *r, const char *id)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < PARTS; p++) {
        const char *ids[NREP];
        size_t k = rk_ring_preference(r, p, ids, NREP);
        for (size_t j = 0; j < k; j++)
            n += strcmp(ids[j], id) == 0;
    }
    return n;
}

static void test_join_moves_a_quarter_to_the_new_member(void **state)
{
    (void)state;
    struct rk_ring *before = ring_of(1, 3, 0), *after = ring_of(1, 4, 0);
    struct seen s = {.must_to = "node-4", .before = before};
    struct rk_plan_totals t;
    assert_int_equal(rk_plan_diff(before, after, NULL, check_move, &s, &t), 0);
    assert_int_equal(s.moves, t.moves);
    assert_int_equal(t.moves, held_by(after, "node-4"));
    assert_int_equal(t.replicas_after, PARTS * NREP);
    double share = rk_plan_moved_share(&t);
    assert_true(share > 0.25 * 0.75 && share < 0.25 * 1.25);
    assert_int_equal(t.partitions_changed, t.moves); /* one new member: one move per partition */
    rk_ring_free(before);
    rk_ring_free(after);
}

static void test_leave_streams_from_the_leaving_member(void **state)
{
    (void)state;
    struct rk_ring *before = ring_of(1, 4, 0), *after = ring_of(1, 4, 2);
    struct seen s = {.never_to = "node-2", .must_from = "node-2", .before = before};
    struct rk_plan_totals t;
    assert_int_equal(rk_plan_diff(before, after, NULL, check_move, &s, &t), 0);
    assert_int_equal(t.moves, held_by(before, "node-2"));
    rk_ring_free(before);
    rk_ring_free(after);
}

static void test_remove_never_streams_from_the_removed_member(void **state)
{
    (void)state;
    struct rk_ring *before = ring_of(1, 4, 0), *after = ring_of(1, 4, 3);
    struct seen s = {.never_to = "node-3", .never_from = "node-3", .before = before};
    struct rk_plan_totals t;
    assert_int_equal(rk_plan_diff(before, after, "node-3", check_move, &s, &t), 0);
    assert_int_equal(t.moves, held_by(before, "node-3"));
    assert_true(t.moves > 0);
    rk_ring_free(before);
    rk_ring_free(after);
}

static void test_same_ring_moves_nothing(void **state)
{
    (void)state;
    struct rk_ring *a = ring_of(1, 3, 0), *b = ring_of(1, 3, 0);
    struct seen s = {.before = a};
    struct rk_plan_totals t;
    assert_int_equal(rk_plan_diff(a, b, NULL, check_move, &s, &t), 0);
    assert_int_equal(t.moves, 0);
    assert_int_equal(t.partitions_changed, 0);
    assert_true(rk_plan_moved_share(&t) == 0.0);
    rk_ring_free(a);
    rk_ring_free(b);
}

static void test_different_shapes_refused(void **state)
{
    (void)state;
    const char *ids[] = {"node-1", "node-2"};
    struct rk_ring *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(rk_ring_build(&a, ids, 2, PARTS, NREP), 0);
    assert_int_equal(rk_ring_build(&b, ids, 2, PARTS * 2, NREP), 0);
    assert_int_equal(rk_ring_build(&c, ids, 2, PARTS, NREP - 1), 0);
    assert_int_equal(rk_plan_diff(a, b, NULL, NULL, NULL, NULL), RK_EINVAL);
    assert_int_equal(rk_plan_diff(a, c, NULL, NULL, NULL, NULL), RK_EINVAL);
    rk_ring_free(a);
    rk_ring_free(b);
    rk_ring_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_moves_a_quarter_to_the_new_member),
        cmocka_unit_test(test_leave_streams_from_the_leaving_member),
        cmocka_unit_test(test_remove_never_streams_from_the_removed_member),
        cmocka_unit_test(test_same_ring_moves_nothing),
        cmocka_unit_test(test_different_shapes_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Member table: merge precedence over every (incarnation, state) pair;
 * refutation; failure detection with and without observer lag, and one
 * missed interval never convicting; remove rules; settings conflicts; five
 * tables exchanging news in random orders converge to one digest; the wire
 * codec round-trips, is little-endian, and every truncation or bad field is
 * MALFORMED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/members.h"
#include "util/err.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETTINGS 0x5E77u

/* Merge rank, written out independently of members.c. */
static const int rank_of[RK_MEMBER_NSTATES] = {
    [RK_MEMBER_ALIVE] = 0, [RK_MEMBER_LEAVING] = 1, [RK_MEMBER_SUSPECT] = 2,
    [RK_MEMBER_DEAD] = 3,  [RK_MEMBER_LEFT] = 4,
};

static struct rk_member entry(const char *id, uint64_t inc, uint8_t state, uint64_t hb)
{
    struct rk_member e = {.incarnation = inc,
                          .state = state,
                          .heartbeat = hb,
                          .settings_digest = SETTINGS,
                          .config_digest = 42};
    snprintf(e.id, sizeof(e.id), "%s", id);
    snprintf(e.client_addr, sizeof(e.client_addr), "tcp://127.0.0.1:7400");
    snprintf(e.peer_addr, sizeof(e.peer_addr), "tcp://127.0.0.1:7500");
    snprintf(e.gossip_addr, sizeof(e.gossip_addr), "tcp://127.0.0.1:7600");
    return e;
}

/* A table whose self is id, at incarnation inc, created at now. */
static struct rk_members *table(const char *id, uint64_t inc, uint64_t now)
{
    struct rk_members *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    struct rk_member self = entry(id, inc, RK_MEMBER_ALIVE, 0);
    assert_int_equal(rk_members_init(t, &self, now), 0);
    return t;
}

static uint8_t merge(struct rk_members *t, struct rk_member in, uint64_t now)
{
    struct rk_member_event ev;
    assert_int_equal(rk_members_merge(t, &in, now, &ev), 0);
    return ev.change;
}

/* ---- merge rules ---- */

/* Every pair of states at lower, equal and higher incarnation, and at equal
 * (incarnation, state) a lower, equal and higher heartbeat: the received
 * entry wins exactly when its (incarnation, rank, heartbeat) is greater. */
static void test_merge_precedence_every_combination(void **state)
{
    for (uint8_t cs = 0; cs < RK_MEMBER_NSTATES; cs++)
        for (uint8_t is = 0; is < RK_MEMBER_NSTATES; is++)
            for (int dinc = -1; dinc <= 1; dinc++)
                for (int dhb = -1; dhb <= 1; dhb++) {
                    struct rk_members *t = table("a", 1, 0);
                    assert_int_equal(merge(t, entry("b", 5, cs, 10), 100), RK_MEMBER_NEW);
                    uint64_t inc = (uint64_t)(5 + dinc), hb = (uint64_t)(10 + dhb);
                    uint8_t got = merge(t, entry("b", inc, is, hb), 200);
                    bool wins = dinc > 0 || (dinc == 0 && rank_of[is] > rank_of[cs]) ||
                                (dinc == 0 && is == cs && dhb > 0);
                    const struct rk_member *b = rk_members_find(t, "b");
                    assert_non_null(b);
                    uint8_t want = !wins      ? RK_MEMBER_NONE
                                   : is != cs ? RK_MEMBER_STATE
                                              : RK_MEMBER_REFRESH;
                    if (got != want)
                        fail_msg("cur %s@5 in %s@%d hb %+d: change %d, want %d",
                                 rk_member_state_name(cs), rk_member_state_name(is), 5 + dinc, dhb,
                                 got, want);
                    assert_int_equal(b->state, wins ? is : cs);
                    assert_int_equal(b->incarnation, wins ? inc : 5);
                    assert_int_equal(b->heartbeat, wins ? hb : 10);
                    assert_int_equal(b->state_since_ms, wins && is != cs ? 200 : 100);
                    /* Heard only from news only the member can make. */
                    bool proof = wins && (is == RK_MEMBER_ALIVE || is == RK_MEMBER_LEAVING);
                    assert_int_equal(b->last_heard_ms, proof ? 200 : 100);
                    free(t);
                }
}

static void test_merge_named_rules(void **state)
{
    struct rk_members *t = table("a", 1, 0);
    merge(t, entry("b", 3, RK_MEMBER_ALIVE, 1), 0);
    /* A suspicion overrides alive at the same incarnation. */
    assert_int_equal(merge(t, entry("b", 3, RK_MEMBER_SUSPECT, 1), 1), RK_MEMBER_STATE);
    /* Alive at the same incarnation does not clear it... */
    assert_int_equal(merge(t, entry("b", 3, RK_MEMBER_ALIVE, 9), 2), RK_MEMBER_NONE);
    /* ...dead overrides it... */
    assert_int_equal(merge(t, entry("b", 3, RK_MEMBER_DEAD, 1), 3), RK_MEMBER_STATE);
    /* ...and only the member's refutation (a higher incarnation) revives it. */
    assert_int_equal(merge(t, entry("b", 4, RK_MEMBER_ALIVE, 1), 4), RK_MEMBER_STATE);
    assert_int_equal(rk_members_find(t, "b")->state, RK_MEMBER_ALIVE);
    /* Left is final at its incarnation. */
    assert_int_equal(merge(t, entry("b", 5, RK_MEMBER_LEFT, 1), 5), RK_MEMBER_STATE);
    assert_int_equal(merge(t, entry("b", 5, RK_MEMBER_DEAD, 7), 6), RK_MEMBER_NONE);
    assert_int_equal(rk_members_find(t, "b")->state, RK_MEMBER_LEFT);
    free(t);
}

static void test_merge_new_members_sorted_and_bounded(void **state)
{
    struct rk_members *t = table("m", 1, 0);
    const char *ids[] = {"z", "b", "q", "a", "mm"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(merge(t, entry(ids[i], 1, RK_MEMBER_ALIVE, 0), 50), RK_MEMBER_NEW);
    assert_int_equal(t->n, 6);
    for (size_t i = 1; i < t->n; i++)
        assert_true(strcmp(t->m[i - 1].id, t->m[i].id) < 0);
    assert_string_equal(t->m[t->self].id, "m");
    assert_int_equal(rk_members_find(t, "q")->last_heard_ms, 50);
    assert_null(rk_members_find(t, "nope"));

    char id[16];
    for (size_t i = t->n; i < RK_MEMBERS_MAX; i++) {
        snprintf(id, sizeof(id), "x%05zu", i);
        assert_int_equal(merge(t, entry(id, 1, RK_MEMBER_ALIVE, 0), 0), RK_MEMBER_NEW);
    }
    struct rk_member one_more = entry("x99999", 1, RK_MEMBER_ALIVE, 0);
    struct rk_member_event ev;
    assert_int_equal(rk_members_merge(t, &one_more, 0, &ev), -ENOBUFS);
    assert_int_equal(t->n, RK_MEMBERS_MAX);

    struct rk_member bad = entry("", 1, RK_MEMBER_ALIVE, 0);
    assert_int_equal(rk_members_merge(t, &bad, 0, &ev), RK_EINVAL);
    bad = entry("x", 1, RK_MEMBER_NSTATES, 0);
    assert_int_equal(rk_members_merge(t, &bad, 0, &ev), RK_EINVAL);
    free(t);
}

/* ---- refutation ---- */

static void test_refutation(void **state)
{
    struct rk_members *t = table("me", 5, 0);
    struct rk_member_event ev;
    struct rk_member in = entry("me", 5, RK_MEMBER_SUSPECT, 99);
    assert_int_equal(rk_members_merge(t, &in, 1, &ev), 0);
    assert_int_equal(ev.change, RK_MEMBER_REFUTED);
    assert_int_equal(ev.incarnation, 6);
    const struct rk_member *me = &t->m[t->self];
    assert_int_equal(me->incarnation, 6);
    assert_int_equal(me->state, RK_MEMBER_ALIVE);
    assert_int_equal(me->heartbeat, 0); /* never taken from others */

    assert_int_equal(merge(t, entry("me", 9, RK_MEMBER_DEAD, 0), 2), RK_MEMBER_REFUTED);
    assert_int_equal(me->incarnation, 10);
    /* Older or equal news that does not outrank us: nothing to refute. */
    assert_int_equal(merge(t, entry("me", 3, RK_MEMBER_DEAD, 0), 3), RK_MEMBER_NONE);
    assert_int_equal(merge(t, entry("me", 10, RK_MEMBER_ALIVE, 50), 3), RK_MEMBER_NONE);
    /* Our previous life at a higher incarnation (a restart): bump above it. */
    assert_int_equal(merge(t, entry("me", 12, RK_MEMBER_ALIVE, 0), 4), RK_MEMBER_REFUTED);
    assert_int_equal(me->incarnation, 13);
    assert_int_equal(merge(t, entry("me", 13, RK_MEMBER_LEFT, 0), 4), RK_MEMBER_REFUTED);
    assert_int_equal(me->incarnation, 14);

    /* A leaving node refutes a suspicion but stays leaving. */
    assert_int_equal(rk_members_leave(t, 5), 0);
    assert_int_equal(me->incarnation, 15);
    assert_int_equal(merge(t, entry("me", 15, RK_MEMBER_SUSPECT, 0), 6), RK_MEMBER_REFUTED);
    assert_int_equal(me->state, RK_MEMBER_LEAVING);
    assert_int_equal(me->incarnation, 16);
    assert_int_equal(rk_members_leave(t, 7), RK_EINVAL);
    assert_int_equal(rk_members_left(t, 7), 0);
    assert_int_equal(me->state, RK_MEMBER_LEFT);
    assert_int_equal(me->incarnation, 17);
    assert_int_equal(merge(t, entry("me", 17, RK_MEMBER_DEAD, 0), 8), RK_MEMBER_NONE);
    free(t);
}

static void test_refute_overflow(void **state)
{
    struct rk_members *t = table("me", 1, 0);
    struct rk_member in = entry("me", UINT64_MAX, RK_MEMBER_DEAD, 0);
    struct rk_member_event ev;
    assert_int_equal(rk_members_merge(t, &in, 0, &ev), -EOVERFLOW);
    assert_int_equal(t->m[t->self].incarnation, 1);
    free(t);
}

/* Incarnations are wall-clock ms: news further ahead of our clock than
 * the bound is refused whole, so a forged LEFT at 2^64-1 cannot evict a
 * member for good, and news about self is always refutable. */
static void test_incarnation_bound(void **state)
{
    const uint64_t now = 1000000, skew = 500;
    struct rk_members *t = table("me", now, now);
    rk_members_bound_incarnations(t, skew);
    struct rk_member_event ev;
    assert_int_equal(merge(t, entry("peer", now, RK_MEMBER_ALIVE, 0), now), RK_MEMBER_NEW);

    struct rk_member in = entry("peer", UINT64_MAX, RK_MEMBER_LEFT, 0);
    assert_int_equal(rk_members_merge(t, &in, now, &ev), RK_EREFUSED);
    assert_string_equal(ev.id, "peer");
    assert_true(ev.incarnation == UINT64_MAX);
    in = entry("peer", now + skew + 1, RK_MEMBER_LEFT, 0);
    assert_int_equal(rk_members_merge(t, &in, now, &ev), RK_EREFUSED);
    assert_int_equal(rk_members_find(t, "peer")->state, RK_MEMBER_ALIVE);
    in = entry("newcomer", now + skew + 1, RK_MEMBER_ALIVE, 0);
    assert_int_equal(rk_members_merge(t, &in, now, &ev), RK_EREFUSED);
    assert_null(rk_members_find(t, "newcomer"));
    /* At the bound it is news like any other. */
    assert_int_equal(merge(t, entry("peer", now + skew, RK_MEMBER_ALIVE, 0), now),
                     RK_MEMBER_REFRESH);

    /* About self: beyond the bound refused, within it refuted. */
    in = entry("me", UINT64_MAX, RK_MEMBER_LEFT, 0);
    assert_int_equal(rk_members_merge(t, &in, now, &ev), RK_EREFUSED);
    assert_true(t->m[t->self].incarnation == now);
    assert_int_equal(merge(t, entry("me", now + skew, RK_MEMBER_LEFT, 0), now), RK_MEMBER_REFUTED);
    assert_true(t->m[t->self].incarnation == now + skew + 1);
    assert_int_equal(t->m[t->self].state, RK_MEMBER_ALIVE);
    /* The clock moves on: what was too far ahead is in bounds later. */
    in = entry("peer", now + 2 * skew, RK_MEMBER_ALIVE, 0);
    assert_int_equal(rk_members_merge(t, &in, now + skew, &ev), 0);
    free(t);
}

/* ---- failure detection ---- */

static void test_tick_transitions(void **state)
{
    struct rk_members *t = table("a", 1, 0);
    merge(t, entry("b", 1, RK_MEMBER_ALIVE, 0), 0);
    merge(t, entry("c", 1, RK_MEMBER_LEAVING, 0), 0);
    struct rk_member_event ev[4];
    size_t k;
    assert_int_equal(rk_members_tick(t, 999, 1000, 3000, 0, ev, 4, &k), 0);
    assert_int_equal(k, 0);
    assert_int_equal(rk_members_tick(t, 1000, 1000, 3000, 0, ev, 4, &k), 0);
    assert_int_equal(k, 2);
    assert_string_equal(ev[0].id, "b");
    assert_int_equal(ev[0].from, RK_MEMBER_ALIVE);
    assert_int_equal(ev[0].to, RK_MEMBER_SUSPECT);
    assert_int_equal(ev[1].from, RK_MEMBER_LEAVING);
    assert_int_equal(rk_members_find(t, "b")->state_since_ms, 1000);
    /* A direct answer does not clear the suspicion; it stops the clock. */
    assert_int_equal(rk_members_heard(t, "c", 2000, 350), 0);
    assert_int_equal(rk_members_find(t, "c")->rtt_us, 350);
    assert_int_equal(rk_members_tick(t, 2999, 1000, 3000, 0, ev, 4, &k), 0);
    assert_int_equal(k, 0);
    assert_int_equal(rk_members_tick(t, 3000, 1000, 3000, 0, ev, 4, &k), 0);
    assert_int_equal(k, 1);
    assert_string_equal(ev[0].id, "b");
    assert_int_equal(ev[0].to, RK_MEMBER_DEAD);
    assert_int_equal(rk_members_find(t, "c")->state, RK_MEMBER_SUSPECT);
    /* Self is never accused; dead stays dead. */
    assert_int_equal(rk_members_tick(t, 100000, 1000, 3000, 0, NULL, 0, &k), 0);
    assert_int_equal(k, 1); /* c only */
    assert_int_equal(t->m[t->self].state, RK_MEMBER_ALIVE);

    /* Silent past dead_after at the first look: straight to dead. */
    merge(t, entry("d", 1, RK_MEMBER_ALIVE, 0), 100000);
    assert_int_equal(rk_members_tick(t, 104000, 1000, 3000, 0, ev, 1, &k), 0);
    assert_int_equal(ev[0].to, RK_MEMBER_DEAD);

    assert_int_equal(rk_members_tick(t, 0, 0, 3000, 0, NULL, 0, NULL), RK_EINVAL);
    assert_int_equal(rk_members_tick(t, 0, 3000, 2999, 0, NULL, 0, NULL), RK_EINVAL);
    assert_int_equal(rk_members_heard(t, "nope", 0, 0), RK_ENOTFOUND);
    free(t);
}

/* Our loop was paused 5 s: nobody is accused for it, in that tick or the
 * next on-time ones; a real silence after the pause is still detected. */
static void test_tick_forgives_observer_lag(void **state)
{
    struct rk_members *t = table("a", 1, 0);
    merge(t, entry("b", 1, RK_MEMBER_ALIVE, 0), 0);
    size_t k;
    assert_int_equal(rk_members_tick(t, 5200, 1000, 3000, 5000, NULL, 0, &k), 0);
    assert_int_equal(k, 0);
    assert_int_equal(rk_members_tick(t, 5400, 1000, 3000, 0, NULL, 0, &k), 0);
    assert_int_equal(k, 0);
    assert_int_equal(rk_members_find(t, "b")->state, RK_MEMBER_ALIVE);
    /* b heard at 0, 5000 forgiven: silence reaches 1000 at 6000. */
    assert_int_equal(rk_members_tick(t, 5999, 1000, 3000, 0, NULL, 0, &k), 0);
    assert_int_equal(k, 0);
    assert_int_equal(rk_members_tick(t, 6000, 1000, 3000, 0, NULL, 0, &k), 0);
    assert_int_equal(k, 1);

    /* Without the lag, the same pause convicts. */
    struct rk_members *u = table("a", 1, 0);
    merge(u, entry("b", 1, RK_MEMBER_ALIVE, 0), 0);
    assert_int_equal(rk_members_tick(u, 5200, 1000, 3000, 0, NULL, 0, &k), 0);
    assert_int_equal(rk_members_find(u, "b")->state, RK_MEMBER_DEAD);
    /* Lag larger than the silence: clamped, never a clock in the future. */
    merge(u, entry("c", 1, RK_MEMBER_ALIVE, 0), 5200);
    assert_int_equal(rk_members_tick(u, 5300, 1000, 3000, 60000, NULL, 0, &k), 0);
    assert_int_equal(rk_members_find(u, "c")->last_heard_ms, 5300);
    free(t);
    free(u);
}

/* Surveys every 200 ms, suspect_after 5 intervals: b misses one answer in
 * every three over 100 rounds and is never suspected. */
static void test_one_missed_interval_never_convicts(void **state)
{
    struct rk_members *t = table("a", 1, 0);
    merge(t, entry("b", 1, RK_MEMBER_ALIVE, 0), 0);
    for (uint64_t r = 1; r <= 100; r++) {
        uint64_t now = r * 200;
        if (r % 3 != 0)
            assert_int_equal(rk_members_heard(t, "b", now, 100), 0);
        size_t k;
        assert_int_equal(rk_members_tick(t, now, 1000, 3000, 0, NULL, 0, &k), 0);
        assert_int_equal(k, 0);
    }
    assert_int_equal(rk_members_find(t, "b")->state, RK_MEMBER_ALIVE);
    free(t);
}

/* A heartbeat rise learned through gossip counts as heard; a suspicion
 * carrying a higher heartbeat does not. */
static void test_gossiped_heartbeat_counts_as_heard(void **state)
{
    struct rk_members *t = table("a", 1, 0);
    merge(t, entry("b", 1, RK_MEMBER_ALIVE, 1), 0);
    assert_int_equal(merge(t, entry("b", 1, RK_MEMBER_ALIVE, 2), 900), RK_MEMBER_REFRESH);
    size_t k;
    assert_int_equal(rk_members_tick(t, 1500, 1000, 3000, 0, NULL, 0, &k), 0);
    assert_int_equal(k, 0);
    assert_int_equal(merge(t, entry("b", 1, RK_MEMBER_ALIVE, 2), 1800), RK_MEMBER_NONE);
    assert_int_equal(rk_members_find(t, "b")->last_heard_ms, 900);
    assert_int_equal(merge(t, entry("b", 1, RK_MEMBER_SUSPECT, 3), 1850), RK_MEMBER_STATE);
    assert_int_equal(rk_members_find(t, "b")->last_heard_ms, 900);
    free(t);
}

/* ---- remove, counts, conflicts ---- */

static void test_remove_rules(void **state)
{
    struct rk_members *t = table("m", 1, 0);
    merge(t, entry("a", 1, RK_MEMBER_ALIVE, 0), 0);
    merge(t, entry("b", 1, RK_MEMBER_SUSPECT, 0), 0);
    merge(t, entry("c", 1, RK_MEMBER_DEAD, 0), 0);
    merge(t, entry("d", 1, RK_MEMBER_LEAVING, 0), 0);
    size_t c[RK_MEMBER_NSTATES];
    rk_members_counts(t, c);
    assert_int_equal(c[RK_MEMBER_ALIVE], 2);
    assert_int_equal(c[RK_MEMBER_SUSPECT] + c[RK_MEMBER_DEAD] + c[RK_MEMBER_LEAVING], 3);

    struct rk_member_event ev = {0};
    assert_int_equal(rk_members_remove(t, "a", false, 10, NULL), RK_EBUSY);
    assert_int_equal(rk_members_remove(t, "b", false, 10, NULL), RK_EBUSY);
    assert_int_equal(rk_members_remove(t, "d", false, 10, NULL), RK_EBUSY);
    assert_int_equal(rk_members_remove(t, "m", true, 10, NULL), RK_EINVAL);
    assert_int_equal(rk_members_remove(t, "zz", true, 10, NULL), RK_ENOTFOUND);
    assert_int_equal(rk_members_remove(t, "c", false, 10, &ev), 0);
    assert_int_equal(ev.change, RK_MEMBER_STATE);
    assert_int_equal(ev.from, RK_MEMBER_DEAD);
    assert_int_equal(ev.to, RK_MEMBER_LEFT);
    assert_int_equal(rk_members_remove(t, "a", true, 20, NULL), 0);
    assert_int_equal(rk_members_find(t, "a")->state, RK_MEMBER_LEFT);
    assert_int_equal(rk_members_find(t, "a")->incarnation,
                     1); /* removal spreads at its incarnation */

    /* The verdict outranks what others say at that incarnation... */
    assert_int_equal(merge(t, entry("c", 1, RK_MEMBER_DEAD, 5), 30), RK_MEMBER_NONE);
    assert_int_equal(rk_members_find(t, "c")->state, RK_MEMBER_LEFT);
    /* ...and another table adopts it by merge. */
    struct rk_members *u = table("x", 1, 0);
    merge(u, entry("c", 1, RK_MEMBER_DEAD, 0), 0);
    assert_int_equal(merge(u, *rk_members_find(t, "c"), 40), RK_MEMBER_STATE);
    assert_int_equal(rk_members_find(u, "c")->state, RK_MEMBER_LEFT);

    /* Reaped once LEFT for the grace period; self never. */
    assert_int_equal(rk_members_reap(t, 15, 10), 0);
    assert_int_equal(rk_members_reap(t, 25, 10), 1); /* c, left at 10 */
    assert_null(rk_members_find(t, "c"));
    assert_int_equal(rk_members_reap(t, 30, 10), 1); /* a, left at 20 */
    assert_int_equal(t->n, 3);
    assert_string_equal(t->m[t->self].id, "m");
    assert_non_null(rk_members_find(t, "b"));
    /* Its departure gossiped again does not bring it back; its return does. */
    assert_int_equal(merge(t, entry("c", 1, RK_MEMBER_LEFT, 0), 40), RK_MEMBER_NONE);
    assert_null(rk_members_find(t, "c"));
    assert_int_equal(merge(t, entry("c", 2, RK_MEMBER_ALIVE, 0), 50), RK_MEMBER_NEW);
    free(u);
    free(t);
}

/* A graceful stop: our entry goes DEAD at a bumped incarnation; a peer
 * adopts it at once and shows it "stopped" (an accusation at the known
 * incarnation shows "dead"); the wire carries plain DEAD; the member's next
 * life (higher incarnation) makes it alive again; a left node cannot stop. */
static void test_stop_announcement(void **state)
{
    (void)state;
    struct rk_members *n3 = table("n3", 100, 0), *n1 = table("n1", 50, 0);
    merge(n1, n3->m[n3->self], 0);
    assert_int_equal(rk_members_stop(n3, 10), 0);
    const struct rk_member *me = &n3->m[n3->self];
    assert_int_equal(me->state, RK_MEMBER_DEAD);
    assert_int_equal(me->incarnation, 101);
    assert_string_equal(rk_member_shown_state(me), "stopped");
    assert_int_equal(rk_members_stop(n3, 11), RK_EINVAL); /* once */

    /* On the wire it is DEAD, and the local flag does not travel. */
    uint8_t buf[RK_MEMBERS_WIRE_ENTRY_MAX + RK_MEMBERS_WIRE_HDR];
    size_t len, n;
    struct rk_member got;
    assert_int_equal(rk_members_encode(me, 1, buf, sizeof(buf), &len), 0);
    assert_int_equal(rk_members_decode(buf, len, &got, 1, &n), 0);
    assert_int_equal(got.state, RK_MEMBER_DEAD);
    assert_false(got.stopped);

    /* The peer adopts it at once, as stopped; a relay of it keeps that. */
    assert_int_equal(merge(n1, got, 20), RK_MEMBER_STATE);
    const struct rk_member *seen = rk_members_find(n1, "n3");
    assert_int_equal(seen->state, RK_MEMBER_DEAD);
    assert_string_equal(rk_member_shown_state(seen), "stopped");
    assert_int_equal(merge(n1, got, 21), RK_MEMBER_NONE);
    assert_string_equal(rk_member_shown_state(rk_members_find(n1, "n3")), "stopped");

    /* An accusation at the incarnation we know is plain dead. */
    merge(n1, entry("n2", 7, RK_MEMBER_ALIVE, 3), 0);
    merge(n1, entry("n2", 7, RK_MEMBER_DEAD, 3), 30);
    assert_string_equal(rk_member_shown_state(rk_members_find(n1, "n2")), "dead");

    /* Its next life refutes: alive, no longer stopped. */
    assert_int_equal(merge(n1, entry("n3", 200, RK_MEMBER_ALIVE, 0), 40), RK_MEMBER_STATE);
    seen = rk_members_find(n1, "n3");
    assert_int_equal(seen->state, RK_MEMBER_ALIVE);
    assert_false(seen->stopped);
    assert_string_equal(rk_member_shown_state(seen), "alive");

    /* Leaving may still stop; left may not. */
    struct rk_members *n4 = table("n4", 1, 0);
    assert_int_equal(rk_members_leave(n4, 1), 0);
    assert_int_equal(rk_members_stop(n4, 2), 0);
    struct rk_members *n5 = table("n5", 1, 0);
    assert_int_equal(rk_members_leave(n5, 1), 0);
    assert_int_equal(rk_members_left(n5, 2), 0);
    assert_int_equal(rk_members_stop(n5, 3), RK_EINVAL);
    free(n1);
    free(n3);
    free(n4);
    free(n5);
}

static void test_settings_conflict_not_merged(void **state)
{
    struct rk_members *t = table("a", 1, 0);
    struct rk_member in = entry("b", 1, RK_MEMBER_ALIVE, 0);
    in.settings_digest = SETTINGS + 1;
    assert_int_equal(merge(t, in, 0), RK_MEMBER_CONFLICT);
    assert_null(rk_members_find(t, "b"));
    merge(t, entry("b", 1, RK_MEMBER_ALIVE, 0), 0);
    in.incarnation = 9;
    assert_int_equal(merge(t, in, 0), RK_MEMBER_CONFLICT);
    assert_int_equal(rk_members_find(t, "b")->incarnation, 1);
    /* News about self with other settings: a conflict, not a refutation. */
    in = entry("a", 7, RK_MEMBER_DEAD, 0);
    in.settings_digest = 1;
    assert_int_equal(merge(t, in, 0), RK_MEMBER_CONFLICT);
    assert_int_equal(t->m[t->self].incarnation, 1);

    assert_int_equal(rk_members_settings_digest("prod", 64, 3),
                     rk_members_settings_digest("prod", 64, 3));
    assert_int_not_equal(rk_members_settings_digest("prod", 64, 3),
                         rk_members_settings_digest("prod", 128, 3));
    assert_int_not_equal(rk_members_settings_digest("prod", 64, 3),
                         rk_members_settings_digest("prod", 64, 5));
    assert_int_not_equal(rk_members_settings_digest("prod", 64, 3),
                         rk_members_settings_digest("test", 64, 3));
    free(t);
}

static void test_digest(void **state)
{
    struct rk_members *t = table("a", 1, 0), *u = table("a", 1, 0);
    merge(t, entry("b", 2, RK_MEMBER_ALIVE, 5), 0);
    merge(t, entry("c", 3, RK_MEMBER_ALIVE, 0), 0);
    merge(u, entry("c", 3, RK_MEMBER_ALIVE, 1), 70); /* other order, heartbeat, time */
    merge(u, entry("b", 2, RK_MEMBER_ALIVE, 0), 90);
    assert_int_equal(rk_members_digest(t), rk_members_digest(u));
    merge(u, entry("b", 2, RK_MEMBER_SUSPECT, 0), 90);
    assert_int_not_equal(rk_members_digest(t), rk_members_digest(u));
    merge(t, entry("b", 2, RK_MEMBER_SUSPECT, 0), 90);
    assert_int_equal(rk_members_digest(t), rk_members_digest(u));
    merge(u, entry("b", 3, RK_MEMBER_SUSPECT, 0), 90);
    assert_int_not_equal(rk_members_digest(t), rk_members_digest(u));
    free(t);
    free(u);
}

/* ---- convergence ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define NODES 5

/* b learns a's table through the wire, entries in a random order. */
static void exchange(struct rk_members *a, struct rk_members *b, uint64_t now)
{
    static uint8_t wire[NODES * RK_MEMBERS_WIRE_ENTRY_MAX + RK_MEMBERS_WIRE_HDR];
    struct rk_member got[NODES];
    size_t len, n;
    assert_int_equal(rk_members_encode(a->m, a->n, wire, sizeof(wire), &len), 0);
    assert_int_equal(rk_members_decode(wire, len, got, NODES, &n), 0);
    assert_int_equal(n, a->n);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rnd() % i);
        struct rk_member tmp = got[i - 1];
        got[i - 1] = got[j];
        got[j] = tmp;
    }
    for (size_t i = 0; i < n; i++)
        merge(b, got[i], now);
}

/* One random disturbance: gossip, a heartbeat, a tick that accuses, or the
 * last node leaving. */
static void disturb(struct rk_members **t, uint64_t now)
{
    size_t a = (size_t)(rnd() % NODES), b = (size_t)(rnd() % NODES);
    switch (rnd() % 8) {
    case 0:
        rk_members_beat(t[a]);
        break;
    case 1:
        assert_int_equal(rk_members_tick(t[a], now + rnd() % 5000, 1000, 3000, 0, NULL, 0, NULL),
                         0);
        break;
    case 2:
        if (rnd() % 10 == 0) {
            if (rk_members_leave(t[NODES - 1], now) < 0)
                rk_members_left(t[NODES - 1], now);
        }
        break;
    default:
        if (a != b)
            exchange(t[a], t[b], now);
    }
}

static void converge_with_seed(uint64_t seed)
{
    rng_state = seed;
    struct rk_members *t[NODES];
    char id[8];
    for (int i = 0; i < NODES; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        t[i] = table(id, 1, 0);
    }
    uint64_t now = 0;
    for (int step = 0; step < 400; step++, now += 10)
        disturb(t, now);
    /* Quiet: only gossip, random pairs in a random order. 400 exchanges
     * give each ordered pair about 20 turns, far more than news needs. */
    for (int k = 0; k < 400; k++) {
        size_t a = (size_t)(rnd() % NODES), b = (size_t)(rnd() % NODES);
        if (a != b)
            exchange(t[a], t[b], now);
    }
    uint64_t d = rk_members_digest(t[0]);
    for (int i = 0; i < NODES; i++) {
        if (rk_members_digest(t[i]) != d)
            fail_msg("seed %llu: table n%d disagrees", (unsigned long long)seed, i);
        assert_int_equal(t[i]->n, NODES);
        /* Everyone holds each node exactly as that node holds itself. */
        for (int j = 0; j < NODES; j++) {
            const struct rk_member *me = &t[j]->m[t[j]->self];
            const struct rk_member *seen = rk_members_find(t[i], me->id);
            assert_non_null(seen);
            assert_int_equal(seen->incarnation, me->incarnation);
            assert_int_equal(seen->state, me->state);
        }
    }
    for (int i = 0; i < NODES; i++)
        free(t[i]);
}

static void test_five_tables_converge(void **state)
{
    for (uint64_t seed = 1; seed <= 20; seed++)
        converge_with_seed(seed);
}

/* The same news merged in two random orders leaves identical tables, field
 * for field: the merge is a max over a total order. */
static void test_merge_order_independent(void **state)
{
    rng_state = 99;
    static struct rk_member pool[400];
    const char *ids[] = {"b", "c", "d", "e"};
    for (size_t i = 0; i < 400; i++) {
        pool[i] = entry(ids[rnd() % 4], rnd() % 4, (uint8_t)(rnd() % RK_MEMBER_NSTATES), rnd() % 4);
        pool[i].config_digest = rnd();                    /* tells apart entries with equal keys */
        pool[i].heartbeat = pool[i].heartbeat * 1000 + i; /* keys unique */
    }
    struct rk_members *t = table("a", 1, 0), *u = table("a", 1, 0);
    for (size_t i = 0; i < 400; i++)
        merge(t, pool[i], 0);
    for (size_t i = 400; i > 1; i--) {
        size_t j = (size_t)(rnd() % i);
        struct rk_member tmp = pool[i - 1];
        pool[i - 1] = pool[j];
        pool[j] = tmp;
    }
    for (size_t i = 0; i < 400; i++)
        merge(u, pool[i], 0);
    assert_int_equal(t->n, 5);
    assert_int_equal(u->n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(t->m[i].id, u->m[i].id);
        assert_int_equal(t->m[i].incarnation, u->m[i].incarnation);
        assert_int_equal(t->m[i].state, u->m[i].state);
        assert_int_equal(t->m[i].heartbeat, u->m[i].heartbeat);
        assert_int_equal(t->m[i].config_digest, u->m[i].config_digest);
    }
    assert_int_equal(rk_members_digest(t), rk_members_digest(u));
    free(t);
    free(u);
}

/* ---- wire codec ---- */

static struct rk_member sample(int i)
{
    struct rk_member e =
        entry("x", (uint64_t)i * 0x0102030405060708ull, (uint8_t)(i % 5), UINT64_MAX - (uint64_t)i);
    if (i == 0) {
        memset(e.id, 'i', RK_MEMBER_ID_MAX);
        e.id[RK_MEMBER_ID_MAX] = '\0';
        memset(e.peer_addr, 'p', RK_MEMBER_ADDR_MAX);
        e.peer_addr[RK_MEMBER_ADDR_MAX] = '\0';
        e.client_addr[0] = '\0';
    } else {
        snprintf(e.id, sizeof(e.id), "node-%d", i);
    }
    e.settings_digest = 0xA0A0A0A0A0A0A0A0ull ^ (uint64_t)i;
    e.config_digest = (uint64_t)i;
    e.last_heard_ms = 123; /* local: not sent */
    e.rtt_us = 9;
    return e;
}

static void test_codec_round_trip(void **state)
{
    struct rk_member in[3] = {sample(0), sample(1), sample(2)}, out[3];
    uint8_t buf[3 * RK_MEMBERS_WIRE_ENTRY_MAX + RK_MEMBERS_WIRE_HDR];
    size_t len, n;
    assert_int_equal(rk_members_encode(in, 3, buf, sizeof(buf), &len), 0);
    assert_int_equal(rk_members_decode(buf, len, out, 3, &n), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(out[i].id, in[i].id);
        assert_string_equal(out[i].client_addr, in[i].client_addr);
        assert_string_equal(out[i].peer_addr, in[i].peer_addr);
        assert_string_equal(out[i].gossip_addr, in[i].gossip_addr);
        assert_int_equal(out[i].incarnation, in[i].incarnation);
        assert_int_equal(out[i].heartbeat, in[i].heartbeat);
        assert_int_equal(out[i].settings_digest, in[i].settings_digest);
        assert_int_equal(out[i].config_digest, in[i].config_digest);
        assert_int_equal(out[i].state, in[i].state);
        assert_int_equal(out[i].last_heard_ms, 0);
        assert_int_equal(out[i].rtt_us, 0);
    }
    /* Re-encoding gives the same bytes. */
    uint8_t again[sizeof(buf)];
    size_t len2;
    assert_int_equal(rk_members_encode(out, 3, again, sizeof(again), &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
    /* An empty list is a bare header. */
    assert_int_equal(rk_members_encode(in, 0, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, RK_MEMBERS_WIRE_HDR);
    assert_int_equal(rk_members_decode(buf, len, out, 0, &n), 0);
    assert_int_equal(n, 0);
}

/* Bytes written by hand: little-endian, in the documented order. */
static void test_codec_layout(void **state)
{
    struct rk_member e = {.id = "ab",
                          .peer_addr = "p",
                          .incarnation = 0x0102030405060708ull,
                          .heartbeat = 1,
                          .settings_digest = 2,
                          .config_digest = 3,
                          .state = RK_MEMBER_DEAD};
    uint8_t want[] = {
        1, 0, 1, 0, 2, 'a', 'b', 0, 1, 'p', 0, 8, 7, 6, 5, 4, 3, 2, 1, 1, 0, 0,
        0, 0, 0, 0, 0, 2,   0,   0, 0, 0,   0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, RK_MEMBER_DEAD};
    uint8_t buf[64];
    size_t len;
    assert_int_equal(rk_members_encode(&e, 1, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    /* Too small a buffer, at every size. */
    for (size_t cap = 0; cap < sizeof(want); cap++)
        assert_int_equal(rk_members_encode(&e, 1, buf, cap, &len), -ENOBUFS);
}

static int decode_exact(const uint8_t *buf, size_t len, struct rk_member *out, size_t cap)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    size_t n = 99;
    int rc = rk_members_decode(copy, len, out, cap, &n);
    free(copy);
    if (rc < 0)
        assert_int_equal(n, 0);
    return rc;
}

static void test_codec_rejects_bad_input(void **state)
{
    struct rk_member in[3] = {sample(0), sample(1), sample(2)}, out[3];
    uint8_t buf[3 * RK_MEMBERS_WIRE_ENTRY_MAX + RK_MEMBERS_WIRE_HDR + 1];
    size_t len;
    assert_int_equal(rk_members_encode(in, 3, buf, sizeof(buf), &len), 0);
    for (size_t l = 0; l < len; l++)
        if (decode_exact(buf, l, out, 3) != RK_EMALFORMED)
            fail_msg("truncation to %zu of %zu bytes was not MALFORMED", l, len);
    buf[len] = 0;
    assert_int_equal(decode_exact(buf, len + 1, out, 3), RK_EMALFORMED); /* trailing */
    assert_int_equal(decode_exact(buf, len, out, 2), -ENOBUFS);

    uint8_t b[sizeof(buf)];
#define MUTATE(at, val, want)                                                                      \
    do {                                                                                           \
        memcpy(b, buf, len);                                                                       \
        b[at] = (uint8_t)(val);                                                                    \
        assert_int_equal(decode_exact(b, len, out, 3), want);                                      \
    } while (0)
    MUTATE(0, 2, RK_EUNSUPPORTED);                  /* version */
    MUTATE(1, 1, RK_EMALFORMED);                    /* reserved */
    MUTATE(2, 2, RK_EMALFORMED);                    /* count short: trailing bytes */
    MUTATE(3, 0x10, RK_EMALFORMED);                 /* count over the bound */
    MUTATE(4, 0, RK_EMALFORMED);                    /* empty id */
    MUTATE(4, RK_MEMBER_ID_MAX + 1, RK_EMALFORMED); /* id too long */
    MUTATE(5, 0, RK_EMALFORMED);                    /* NUL inside the id */
    MUTATE(5, '\n', RK_EMALFORMED);                 /* a line break: forged log lines */
    MUTATE(5, 0x1b, RK_EMALFORMED);                 /* a terminal escape */
    MUTATE(5, ' ', RK_EMALFORMED);                  /* outside RK_IDENT_CHARSET */
    MUTATE(4 + 1 + RK_MEMBER_ID_MAX + 1, RK_MEMBER_ADDR_MAX + 1, RK_EMALFORMED); /* peer addr */
    size_t first = 4 + 1 + RK_MEMBER_ID_MAX + 1 + 0 + 1 + RK_MEMBER_ADDR_MAX + 1 +
                   strlen(in[0].gossip_addr) + RK_MEMBERS_WIRE_FIXED;
    MUTATE(first - 1, RK_MEMBER_NSTATES, RK_EMALFORMED); /* state */
    MUTATE(first - 1, RK_MEMBER_LEFT, 0);
#undef MUTATE

    struct rk_member bad = sample(1);
    bad.state = 9;
    assert_int_equal(rk_members_encode(&bad, 1, buf, sizeof(buf), &len), RK_EINVAL);
    assert_int_equal(rk_members_encode(in, RK_MEMBERS_MAX + 1, buf, sizeof(buf), &len), RK_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_precedence_every_combination),
        cmocka_unit_test(test_merge_named_rules),
        cmocka_unit_test(test_merge_new_members_sorted_and_bounded),
        cmocka_unit_test(test_refutation),
        cmocka_unit_test(test_refute_overflow),
        cmocka_unit_test(test_incarnation_bound),
        cmocka_unit_test(test_tick_transitions),
        cmocka_unit_test(test_tick_forgives_observer_lag),
        cmocka_unit_test(test_one_missed_interval_never_convicts),
        cmocka_unit_test(test_gossiped_heartbeat_counts_as_heard),
        cmocka_unit_test(test_remove_rules),
        cmocka_unit_test(test_settings_conflict_not_merged),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_five_tables_converge),
        cmocka_unit_test(test_merge_order_independent),
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_layout),
        cmocka_unit_test(test_codec_rejects_bad_input),
        cmocka_unit_test(test_stop_announcement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Placement with pending owners: rk_place_compute's Serve, Pending and
 * partners (placement.h); the per-partition lists rk_view_build makes
 * from a member table and a holdings lookup (view.h); a node's holdings
 * bitmap, its wire codec and its file (holdings.h); and what gossip keeps
 * of the other members' holdings and placement digests (peerhold.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/holdings.h"
#include "cluster/members.h"
#include "cluster/peerhold.h"
#include "cluster/placement.h"
#include "cluster/ring.h"
#include "cluster/view.h"
#include "testutil.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- rk_place_compute ---- */

/* The members that hold the partition, by id: a holds function. */
struct held_by {
    const char *const *ids;
    size_t n;
};

static bool holds_listed(void *arg, const char *id)
{
    const struct held_by *h = arg;
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->ids[i], id) == 0)
            return true;
    return false;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* out for Pref pref, walk walk, 3 replicas and the holders held. */
static void place3(const char *const *pref, size_t npref, const char *const *walk, size_t nwalk,
                   const char *const *held, size_t nheld, struct rk_place *out)
{
    struct held_by h = {held, nheld};
    rk_place_compute(pref, npref, walk, nwalk, 3, holds_listed, &h, out);
}

/* Fail unless got[0..n) names want[0..nwant) in order. */
static void assert_ids(const char *const *got, size_t n, const char *const *want, size_t nwant,
                       const char *what)
{
    if (n != nwant)
        fail_msg("%s: %zu members, want %zu", what, n, nwant);
    for (size_t i = 0; i < n; i++)
        if (strcmp(got[i], want[i]) != 0)
            fail_msg("%s[%zu] = %s, want %s", what, i, got[i], want[i]);
}

static void test_place_all_hold_serve_is_pref(void **state)
{
    (void)state;
    static const char *const pref[] = {"a", "b", "c"}, *const walk[] = {"a", "b", "c", "d"};
    static const char *const held[] = {"a", "b", "c", "d"};
    struct rk_place pl;
    place3(pref, 3, walk, 4, held, 4, &pl);
    assert_ids(pl.serve, pl.nserve, pref, 3, "serve"); /* d holds too, but Pref is full */
    assert_int_equal(pl.npend, 0);
    /* No walk given (the view's shortcut when Pref holds): the same. */
    place3(pref, 3, NULL, 0, held, 4, &pl);
    assert_ids(pl.serve, pl.nserve, pref, 3, "serve without walk");
    assert_int_equal(pl.npend, 0);
    /* The ids point into pref. */
    assert_ptr_equal(pl.serve[1], pref[1]);
}

static void test_place_one_joiner_pairs_with_displaced_owner(void **state)
{
    (void)state;
    /* n joined; the walk goes on with the owners it pushed out (d, e). */
    static const char *const pref[] = {"a", "n", "b"}, *const walk[] = {"a", "n", "b", "d", "e"};
    static const char *const held[] = {"a", "b", "d", "e"};
    static const char *const serve[] = {"a", "b", "d"}, *const pend[] = {"n"};
    struct rk_place pl;
    place3(pref, 3, walk, 5, held, 4, &pl);
    assert_ids(pl.serve, pl.nserve, serve, 3, "serve");
    assert_ids(pl.pend, pl.npend, pend, 1, "pend");
    assert_int_equal(pl.partner[0], 2); /* d: the holder outside Pref it replaces */
}

static void test_place_two_joiners_distinct_partners_last_first(void **state)
{
    (void)state;
    static const char *const pref[] = {"n1", "a", "n2"}, *const walk[] = {"n1", "a", "n2",
                                                                          "d",  "e", "f"};
    static const char *const held[] = {"a", "d", "e", "f"};
    static const char *const serve[] = {"a", "d", "e"}, *const pend[] = {"n1", "n2"};
    struct rk_place pl;
    place3(pref, 3, walk, 6, held, 4, &pl);
    assert_ids(pl.serve, pl.nserve, serve, 3, "serve");
    assert_ids(pl.pend, pl.npend, pend, 2, "pend");
    /* The last holder outside Pref (e) goes to the first pending member,
     * the one before it (d) to the second: never the same one twice. */
    assert_int_equal(pl.partner[0], 2);
    assert_int_equal(pl.partner[1], 1);
}

static void test_place_removal_has_no_partner(void **state)
{
    (void)state;
    /* x was removed (holds nothing any more): c takes its place with no
     * holder to pair with, and Serve is short. */
    static const char *const pref[] = {"a", "b", "c"}, *const walk[] = {"a", "b", "c", "x"};
    static const char *const held[] = {"a", "b"};
    static const char *const serve[] = {"a", "b"}, *const pend[] = {"c"};
    struct rk_place pl;
    place3(pref, 3, walk, 4, held, 2, &pl);
    assert_ids(pl.serve, pl.nserve, serve, 2, "serve");
    assert_ids(pl.pend, pl.npend, pend, 1, "pend");
    assert_int_equal(pl.partner[0], -1);
    /* Two pending, one holder outside Pref: the first gets it, the second none. */
    static const char *const pref2[] = {"n1", "a", "n2"}, *const walk2[] = {"n1", "a", "n2", "d"};
    static const char *const held2[] = {"a", "d"};
    static const char *const serve2[] = {"a", "d"};
    place3(pref2, 3, walk2, 4, held2, 2, &pl);
    assert_ids(pl.serve, pl.nserve, serve2, 2, "serve (two pending, one holder outside)");
    assert_int_equal(pl.npend, 2);
    assert_int_equal(pl.partner[0], 1);
    assert_int_equal(pl.partner[1], -1);
}

static void test_place_outside_holders_in_walk_order_up_to_replicas(void **state)
{
    (void)state;
    /* Only a of Pref holds; d, f and g hold outside it (e does not). */
    static const char *const pref[] = {"a", "b", "c"}, *const walk[] = {"a", "b", "c", "d",
                                                                        "e", "f", "g"};
    static const char *const held[] = {"g", "f", "d", "a"}; /* order of no meaning */
    static const char *const serve[] = {"a", "d", "f"}, *const pend[] = {"b", "c"};
    struct rk_place pl;
    place3(pref, 3, walk, 7, held, 4, &pl);
    assert_ids(pl.serve, pl.nserve, serve, 3, "serve"); /* g: past replicas */
    assert_ids(pl.pend, pl.npend, pend, 2, "pend");
    assert_int_equal(pl.partner[0], 2); /* b replaces f */
    assert_int_equal(pl.partner[1], 1); /* c replaces d */
    /* A Pref longer than replicas is cut to it: c is neither serving nor pending. */
    struct held_by h = {held, 4};
    rk_place_compute(pref, 3, walk, 7, 2, holds_listed, &h, &pl);
    static const char *const serve2[] = {"a", "d"}, *const pend2[] = {"b"};
    assert_ids(pl.serve, pl.nserve, serve2, 2, "serve (replicas 2)");
    assert_ids(pl.pend, pl.npend, pend2, 1, "pend (replicas 2)");
    assert_int_equal(pl.partner[0], 1);
}

static void test_place_nobody_holds_all_pending(void **state)
{
    (void)state;
    static const char *const pref[] = {"a", "b", "c"}, *const walk[] = {"a", "b", "c", "d"};
    struct rk_place pl;
    place3(pref, 3, walk, 4, NULL, 0, &pl);
    assert_int_equal(pl.nserve, 0);
    assert_ids(pl.pend, pl.npend, pref, 3, "pend");
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(pl.partner[k], -1);
}

/* ---- rk_view_build with holdings ---- */

#define VPARTS 64u
#define VREPL  3u

/* A member table: ids[0] is this node; states[i] each member's state. */
static struct rk_members *table(const char *const *ids, const uint8_t *states, size_t n)
{
    uint64_t settings = rk_members_settings_digest("t", VPARTS, VREPL);
    struct rk_members *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        struct rk_member m = {.incarnation = 1, .state = states[i], .settings_digest = settings};
        snprintf(m.id, sizeof(m.id), "%s", ids[i]);
        snprintf(m.peer_addr, sizeof(m.peer_addr), "tcp://127.0.0.1:%zu", 1000 + i);
        if (i == 0)
            assert_int_equal(rk_members_init(t, &m, 1000), 0);
        else
            assert_int_equal(rk_members_merge(t, &m, 1000, NULL), 0);
    }
    assert_int_equal(t->n, n);
    return t;
}

/* The holdings lookup of a view build: member i's holdings, or NULL
 * (unknown) where known[i] is false. */
struct hold_table {
    const char *const *ids;
    size_t n;
    struct rk_holdings h[8];
    bool known[8];
};

static const struct rk_holdings *lookup(void *arg, const char *id)
{
    struct hold_table *ht = arg;
    for (size_t i = 0; i < ht->n; i++)
        if (strcmp(ht->ids[i], id) == 0)
            return ht->known[i] ? &ht->h[i] : NULL;
    return NULL;
}

static void hold_table_init(struct hold_table *ht, const char *const *ids, size_t n)
{
    memset(ht, 0, sizeof(*ht));
    assert_true(n <= NELEM(ht->h));
    ht->ids = ids, ht->n = n;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rk_holdings_init(&ht->h[i], VPARTS), 0);
        ht->known[i] = true;
    }
}

static void hold_table_fini(struct hold_table *ht)
{
    for (size_t i = 0; i < ht->n; i++)
        rk_holdings_fini(&ht->h[i]);
}

/* Member i holds the partitions whose preference list in ring r has it. */
static void hold_as_placed(struct hold_table *ht, size_t i, const struct rk_ring *r)
{
    const char *pref[RK_RING_REPLICAS_MAX];
    for (uint32_t p = 0; p < VPARTS; p++) {
        size_t np = rk_ring_preference(r, p, pref, RK_RING_REPLICAS_MAX);
        for (size_t k = 0; k < np; k++)
            if (strcmp(pref[k], ht->ids[i]) == 0)
                rk_holdings_set(&ht->h[i], p, true);
    }
}

static struct rk_view *build(const struct rk_members *t, struct hold_table *ht)
{
    struct rk_view_in in = {.holdings = lookup, .arg = ht, .agreed = true};
    struct rk_view *v = rk_view_build(t, VPARTS, VREPL, &in);
    assert_non_null(v);
    return v;
}

static const char *serve_id(const struct rk_view *v, uint32_t p, size_t k)
{
    return v->m[v->part[p].serve[k]].id;
}

/* Is id in partition p's preference list of ring r? */
static bool in_ring_pref(const struct rk_ring *r, uint32_t p, const char *id)
{
    const char *pref[RK_RING_REPLICAS_MAX];
    size_t np = rk_ring_preference(r, p, pref, RK_RING_REPLICAS_MAX);
    for (size_t k = 0; k < np; k++)
        if (strcmp(pref[k], id) == 0)
            return true;
    return false;
}

static bool in_pref(const struct rk_view *v, uint32_t p, const char *id)
{
    return in_ring_pref(v->ring, p, id);
}

/* Partition p of v serves exactly the preference list of r, in order. */
static void assert_serves_pref_of(const struct rk_view *v, uint32_t p, const struct rk_ring *r)
{
    const char *pref[RK_RING_REPLICAS_MAX];
    size_t np = rk_ring_preference(r, p, pref, RK_RING_REPLICAS_MAX);
    if (v->part[p].nserve != np)
        fail_msg("partition %u: %u serving, want %zu", p, v->part[p].nserve, np);
    for (size_t k = 0; k < np; k++)
        if (strcmp(serve_id(v, p, k), pref[k]) != 0)
            fail_msg("partition %u: serve[%zu] = %s, want %s", p, k, serve_id(v, p, k), pref[k]);
}

static void test_view_joiner_pending_until_it_holds(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1", "node-2", "node-3", "node-4", "node-5"};
    static const uint8_t states[] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_ALIVE,
                                     RK_MEMBER_ALIVE, RK_MEMBER_ALIVE};
    const size_t joiner = 4;
    struct rk_members *t = table(ids, states, 5);
    struct rk_ring *old;
    assert_int_equal(rk_ring_build(&old, ids, 4, VPARTS, VREPL), 0);
    struct hold_table ht;
    hold_table_init(&ht, ids, 5);
    for (size_t i = 0; i < joiner; i++)
        hold_as_placed(&ht, i, old); /* node-5 holds nothing yet */
    struct rk_view *v = build(t, &ht);
    assert_true(v->heard_all);
    uint32_t joined = 0, first = VPARTS;
    for (uint32_t p = 0; p < VPARTS; p++) {
        const struct rk_view_part *vp = &v->part[p];
        /* Serve keeps the old owners, in their old order (the joiner only
         * entered the walks, so the old list is the new walk without it). */
        assert_serves_pref_of(v, p, old);
        if (!in_pref(v, p, "node-5")) {
            assert_int_equal(vp->npend, 0);
            continue;
        }
        assert_int_equal(vp->npend, 1);
        assert_string_equal(v->m[vp->pend[0]].id, "node-5");
        /* Its partner: the old owner it pushed out of Pref, the last served. */
        assert_int_equal(vp->partner[0], 2);
        assert_false(in_pref(v, p, serve_id(v, p, 2)));
        if (joined++ == 0)
            first = p;
    }
    if (joined == 0)
        fail_msg("node-5 is in no preference list of %u partitions", VPARTS);
    rk_view_release(v);

    /* It received partition `first`: there Serve = Pref, elsewhere no change. */
    rk_holdings_set(&ht.h[joiner], first, true);
    v = build(t, &ht);
    assert_serves_pref_of(v, first, v->ring);
    assert_int_equal(v->part[first].npend, 0);
    for (uint32_t p = 0; p < VPARTS; p++) {
        if (p == first)
            continue;
        assert_serves_pref_of(v, p, old);
        assert_int_equal(v->part[p].npend, in_pref(v, p, "node-5") ? 1 : 0);
    }
    rk_view_release(v);

    /* Every partition received: Serve = Pref everywhere. */
    for (uint32_t p = 0; p < VPARTS; p++)
        rk_holdings_set(&ht.h[joiner], p, true);
    v = build(t, &ht);
    for (uint32_t p = 0; p < VPARTS; p++) {
        assert_serves_pref_of(v, p, v->ring);
        assert_int_equal(v->part[p].npend, 0);
    }
    rk_view_release(v);
    rk_ring_free(old);
    hold_table_fini(&ht);
    free(t);
}

static void test_view_leaving_member_serves_until_successor_holds(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1", "node-2", "node-3", "node-4"};
    static const uint8_t states[] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_ALIVE,
                                     RK_MEMBER_LEAVING};
    struct rk_members *t = table(ids, states, 4);
    struct rk_ring *old;
    assert_int_equal(rk_ring_build(&old, ids, 4, VPARTS, VREPL), 0);
    struct hold_table ht;
    hold_table_init(&ht, ids, 4);
    for (size_t i = 0; i < 4; i++)
        hold_as_placed(&ht, i, old);
    struct rk_view *v = build(t, &ht);
    uint32_t handed = 0;
    for (uint32_t p = 0; p < VPARTS; p++) {
        const struct rk_view_part *vp = &v->part[p];
        assert_false(in_pref(v, p, "node-4")); /* out of the placement ring */
        if (!in_ring_pref(old, p, "node-4")) {
            assert_serves_pref_of(v, p, v->ring);
            assert_int_equal(vp->npend, 0);
            continue;
        }
        /* The member of 1..3 that was not an owner is pending, paired with
         * node-4, which serves until then. */
        assert_int_equal(vp->nserve, 3);
        assert_int_equal(vp->npend, 1);
        assert_false(in_ring_pref(old, p, v->m[vp->pend[0]].id));
        assert_int_equal(vp->partner[0], 2);
        assert_string_equal(serve_id(v, p, 2), "node-4");
        handed++;
    }
    if (handed == 0)
        fail_msg("node-4 owned none of %u partitions", VPARTS);
    rk_view_release(v);
    rk_ring_free(old);
    hold_table_fini(&ht);
    free(t);
}

static void test_view_heard_all_needs_every_up_member(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1", "node-2", "node-3", "node-4"};
    static const uint8_t states[] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_ALIVE,
                                     RK_MEMBER_DEAD};
    struct rk_members *t = table(ids, states, 4);
    struct hold_table ht;
    hold_table_init(&ht, ids, 4);
    for (size_t i = 0; i < 4; i++)
        for (uint32_t p = 0; p < VPARTS; p++)
            rk_holdings_set(&ht.h[i], p, true);
    /* A dead member's holdings unknown: every up member was heard. */
    ht.known[3] = false;
    struct rk_view *v = build(t, &ht);
    assert_true(v->heard_all);
    rk_view_release(v);
    /* An alive one's unknown: not heard, and it is named. It holds nothing
     * here meanwhile: pending wherever it is in Pref (the dead one is
     * known again, so node-3 is the only member pending). */
    ht.known[3] = true;
    ht.known[2] = false;
    v = build(t, &ht);
    assert_false(v->heard_all);
    assert_string_equal(v->unheard, "node-3");
    uint32_t pending = 0;
    for (uint32_t p = 0; p < VPARTS; p++) {
        if (!in_pref(v, p, "node-3"))
            continue;
        assert_int_equal(v->part[p].npend, 1);
        assert_string_equal(v->m[v->part[p].pend[0]].id, "node-3");
        pending++;
    }
    assert_true(pending > 0);
    rk_view_release(v);
    /* This node's own holdings unknown do not matter to heard_all, but it
     * holds nothing then. */
    ht.known[2] = true;
    ht.known[0] = false;
    v = build(t, &ht);
    assert_true(v->heard_all);
    for (uint32_t p = 0; p < VPARTS; p++)
        assert_false(rk_view_holds(v, p));
    rk_view_release(v);
    hold_table_fini(&ht);
    free(t);
}

/* ---- holdings ---- */

#define HPARTS 20u /* not a multiple of 8: the bitmap's last byte is partly used */

static void holdings_sample(struct rk_holdings *h)
{
    assert_int_equal(rk_holdings_init(h, HPARTS), 0);
    static const uint32_t set[] = {0, 3, 7, 8, 15, 19};
    for (size_t i = 0; i < NELEM(set); i++)
        rk_holdings_set(h, set[i], true);
    h->version = 0x0102030405060708ull;
    h->genesis_digest = 0xA1B2C3D4E5F60718ull;
    h->genesis_ms = 1700000000123ull;
}

static void assert_holdings_equal(const struct rk_holdings *a, const struct rk_holdings *b)
{
    assert_int_equal(a->parts, b->parts);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->genesis_digest, b->genesis_digest);
    assert_int_equal(a->genesis_ms, b->genesis_ms);
    for (uint32_t p = 0; p < a->parts; p++)
        if (rk_holdings_has(a, p) != rk_holdings_has(b, p))
            fail_msg("partition %u: held %d, want %d", p, rk_holdings_has(b, p),
                     rk_holdings_has(a, p));
}

static void test_holdings_set_count_and_wire_round_trip(void **state)
{
    (void)state;
    struct rk_holdings h, d;
    holdings_sample(&h);
    assert_int_equal(rk_holdings_count(&h), 6);
    assert_true(rk_holdings_has(&h, 19));
    assert_false(rk_holdings_has(&h, 20)); /* past the end */
    rk_holdings_set(&h, 20, true);         /* ignored */
    rk_holdings_set(&h, 3, false);
    assert_false(rk_holdings_has(&h, 3));
    assert_int_equal(rk_holdings_count(&h), 5);
    size_t len = rk_holdings_wire_len(HPARTS);
    assert_int_equal(len, RK_HOLDINGS_WIRE_FIXED + 3);
    uint8_t buf[64];
    rk_holdings_encode(&h, buf);
    assert_int_equal(rk_holdings_init(&d, HPARTS), 0);
    assert_rc(rk_holdings_decode(&d, buf, len), 0);
    assert_holdings_equal(&h, &d);
    /* copy: the same, into its own bitmap */
    struct rk_holdings c;
    assert_int_equal(rk_holdings_init(&c, HPARTS), 0);
    rk_holdings_copy(&c, &h);
    assert_ptr_not_equal(c.held, h.held);
    assert_holdings_equal(&h, &c);
    rk_holdings_fini(&c);
    rk_holdings_fini(&d);
    rk_holdings_fini(&h);
}

static void test_holdings_decode_refuses_bad_input(void **state)
{
    (void)state;
    struct rk_holdings h, d;
    holdings_sample(&h);
    size_t len = rk_holdings_wire_len(HPARTS);
    uint8_t buf[64];
    rk_holdings_encode(&h, buf);
    assert_int_equal(rk_holdings_init(&d, HPARTS), 0);
    assert_rc(rk_holdings_decode(&d, buf, len - 1), RK_EMALFORMED);
    assert_rc(rk_holdings_decode(&d, buf, len + 1), RK_EMALFORMED);
    assert_rc(rk_holdings_decode(&d, buf, RK_HOLDINGS_WIRE_FIXED - 1), RK_EMALFORMED);
    assert_rc(rk_holdings_decode(&d, buf, 0), RK_EMALFORMED);
    rk_holdings_fini(&d);
    /* Another partition count, though of the same length (24 bits also
     * take 3 bytes). */
    assert_int_equal(rk_holdings_wire_len(24), len);
    assert_int_equal(rk_holdings_init(&d, 24), 0);
    assert_rc(rk_holdings_decode(&d, buf, len), RK_EMALFORMED);
    rk_holdings_fini(&d);
    rk_holdings_fini(&h);
}

static void test_holdings_decode_clears_bits_past_the_end(void **state)
{
    (void)state;
    struct rk_holdings h, d;
    holdings_sample(&h);
    size_t len = rk_holdings_wire_len(HPARTS);
    uint8_t buf[64];
    rk_holdings_encode(&h, buf);
    buf[len - 1] |= 0xF0; /* bits 20..23: no such partitions */
    assert_int_equal(rk_holdings_init(&d, HPARTS), 0);
    assert_rc(rk_holdings_decode(&d, buf, len), 0);
    assert_int_equal(rk_holdings_count(&d), rk_holdings_count(&h));
    assert_int_equal(d.held[2] & 0xF0, 0);
    assert_holdings_equal(&h, &d);
    rk_holdings_fini(&d);
    rk_holdings_fini(&h);
}

static void test_holdings_bump_strictly_increases(void **state)
{
    (void)state;
    struct rk_holdings h;
    assert_int_equal(rk_holdings_init(&h, HPARTS), 0);
    assert_int_equal(h.version, 0);
    rk_holdings_bump(&h, 1000);
    assert_int_equal(h.version, 1000);
    rk_holdings_bump(&h, 500); /* the wall clock went back */
    assert_int_equal(h.version, 1001);
    rk_holdings_bump(&h, 1001); /* caught up, not past */
    assert_int_equal(h.version, 1002);
    rk_holdings_bump(&h, 1002);
    assert_int_equal(h.version, 1003);
    rk_holdings_bump(&h, 5000);
    assert_int_equal(h.version, 5000);
    rk_holdings_fini(&h);
}

static void test_holdings_file(void **state)
{
    (void)state;
    char dir[512], path[600];
    assert_int_equal(tu_mkdtemp(dir, sizeof(dir), "holdings"), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, RK_HOLDINGS_FILE);
    struct rk_holdings h, d;
    holdings_sample(&h);
    assert_int_equal(rk_holdings_init(&d, HPARTS), 0);
    assert_rc(rk_holdings_load(&d, dir), RK_ENOTFOUND); /* a first start */
    assert_rc(rk_holdings_save(&h, dir), 0);
    assert_rc(rk_holdings_load(&d, dir), 0);
    assert_holdings_equal(&h, &d);
    /* Saved again over the old file: the new contents. */
    rk_holdings_set(&h, 1, true);
    rk_holdings_bump(&h, 1);
    assert_rc(rk_holdings_save(&h, dir), 0);
    assert_rc(rk_holdings_load(&d, dir), 0);
    assert_holdings_equal(&h, &d);
    /* Any byte flipped, wherever it is: corrupt. */
    int64_t size = tu_file_size(path);
    assert_true(size > (int64_t)rk_holdings_wire_len(HPARTS));
    for (int64_t off = 0; off < size; off++) {
        assert_int_equal(tu_flip_bit(path, (uint64_t)off, (unsigned)(off % 8)), 0);
        int rc = rk_holdings_load(&d, dir);
        if (rc != RK_ECORRUPT)
            fail_msg("byte %lld flipped: load = %d (%s), want RK_ECORRUPT", (long long)off, rc,
                     rk_strerror(rc));
        assert_int_equal(tu_flip_bit(path, (uint64_t)off, (unsigned)(off % 8)), 0);
    }
    assert_rc(rk_holdings_load(&d, dir), 0);
    /* Another partition count: corrupt (the node refuses to start). */
    struct rk_holdings other;
    assert_int_equal(rk_holdings_init(&other, 64), 0);
    assert_rc(rk_holdings_load(&other, dir), RK_ECORRUPT);
    rk_holdings_fini(&other);
    /* One byte too many: corrupt. */
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fputc(0, fp), 0);
    assert_int_equal(fclose(fp), 0);
    assert_rc(rk_holdings_load(&d, dir), RK_ECORRUPT);
    /* Cut short: corrupt. */
    assert_int_equal(tu_truncate(path, (uint64_t)size - 1), 0);
    assert_rc(rk_holdings_load(&d, dir), RK_ECORRUPT);
    assert_int_equal(unlink(path), 0);
    assert_rc(rk_holdings_load(&d, dir), RK_ENOTFOUND);
    rk_holdings_fini(&d);
    rk_holdings_fini(&h);
    assert_int_equal(tu_rmrf(dir), 0);
}

/* ---- peerhold ---- */

#define PPARTS 16u

/* h's wire encoding in buf (at least rk_holdings_wire_len(PPARTS)). */
static size_t encoded(uint64_t version, const uint32_t *held, size_t n, uint8_t *buf)
{
    struct rk_holdings h;
    assert_int_equal(rk_holdings_init(&h, PPARTS), 0);
    for (size_t i = 0; i < n; i++)
        rk_holdings_set(&h, held[i], true);
    h.version = version;
    rk_holdings_encode(&h, buf);
    rk_holdings_fini(&h);
    return rk_holdings_wire_len(PPARTS);
}

static void test_peerhold_take_and_get(void **state)
{
    (void)state;
    struct rk_peerhold *ph;
    assert_int_equal(rk_peerhold_create(&ph, PPARTS), 0);
    assert_null(rk_peerhold_get(ph, "node-2"));
    uint8_t buf[64];
    static const uint32_t held[] = {1, 4, 15};
    size_t len = encoded(7, held, 3, buf);
    bool changed = false;
    assert_rc(rk_peerhold_take(ph, "node-2", 42, buf, len, &changed), 0);
    assert_true(changed);
    const struct rk_holdings *g = rk_peerhold_get(ph, "node-2");
    assert_non_null(g);
    assert_int_equal(g->version, 7);
    assert_int_equal(rk_holdings_count(g), 3);
    assert_true(rk_holdings_has(g, 1) && rk_holdings_has(g, 4) && rk_holdings_has(g, 15));
    assert_null(rk_peerhold_get(ph, "node-3"));
    /* The same message again: nothing to rebuild. */
    assert_rc(rk_peerhold_take(ph, "node-2", 42, buf, len, &changed), 0);
    assert_false(changed);
    /* A new placement digest alone: changed. */
    assert_rc(rk_peerhold_take(ph, "node-2", 43, buf, len, &changed), 0);
    assert_true(changed);
    /* A new holdings version: changed, and the new bits are there. */
    static const uint32_t more[] = {1, 2, 4, 15};
    len = encoded(8, more, 4, buf);
    assert_rc(rk_peerhold_take(ph, "node-2", 43, buf, len, &changed), 0);
    assert_true(changed);
    g = rk_peerhold_get(ph, "node-2");
    assert_int_equal(g->version, 8);
    assert_true(rk_holdings_has(g, 2));
    /* An older peer that sends no holdings: the digest still counts. */
    assert_rc(rk_peerhold_take(ph, "node-3", 43, NULL, 0, &changed), 0);
    assert_true(changed);
    assert_null(rk_peerhold_get(ph, "node-3"));
    rk_peerhold_free(ph);
}

static void test_peerhold_refuses_malformed_holdings(void **state)
{
    (void)state;
    struct rk_peerhold *ph;
    assert_int_equal(rk_peerhold_create(&ph, PPARTS), 0);
    uint8_t buf[64];
    static const uint32_t held[] = {3};
    size_t len = encoded(7, held, 1, buf);
    bool changed = false;
    assert_rc(rk_peerhold_take(ph, "node-2", 42, buf, len, &changed), 0);
    /* Cut short, and under a new digest: refused, nothing changed. */
    changed = true;
    assert_rc(rk_peerhold_take(ph, "node-2", 99, buf, len - 1, &changed), RK_EMALFORMED);
    assert_false(changed);
    assert_rc(rk_peerhold_take(ph, "node-2", 42, buf, len, &changed), 0);
    assert_false(changed); /* the digest stayed 42 */
    /* Another partition count. */
    struct rk_holdings other;
    uint8_t big[64];
    assert_int_equal(rk_holdings_init(&other, 64), 0);
    other.version = 9;
    rk_holdings_encode(&other, big);
    changed = true;
    assert_rc(rk_peerhold_take(ph, "node-2", 42, big, rk_holdings_wire_len(64), &changed),
              RK_EMALFORMED);
    assert_false(changed);
    rk_holdings_fini(&other);
    const struct rk_holdings *g = rk_peerhold_get(ph, "node-2");
    assert_non_null(g);
    assert_int_equal(g->version, 7);
    assert_true(rk_holdings_has(g, 3));
    /* A malformed first message leaves the member unknown. */
    assert_rc(rk_peerhold_take(ph, "node-3", 42, buf, 3, &changed), RK_EMALFORMED);
    assert_null(rk_peerhold_get(ph, "node-3"));
    rk_peerhold_free(ph);
}

static struct rk_members *ptable(const char *const *ids, const uint8_t *states, size_t n)
{
    uint64_t settings = rk_members_settings_digest("t", PPARTS, VREPL);
    struct rk_members *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        struct rk_member m = {
            .incarnation = 1 + i, .state = states[i], .settings_digest = settings};
        snprintf(m.id, sizeof(m.id), "%s", ids[i]);
        if (i == 0)
            assert_int_equal(rk_members_init(t, &m, 1000), 0);
        else
            assert_int_equal(rk_members_merge(t, &m, 1000, NULL), 0);
    }
    return t;
}

/* Member id of t takes state at a higher incarnation (its own news). */
static void set_state(struct rk_members *t, const char *id, uint8_t state)
{
    const struct rk_member *cur = rk_members_find(t, id);
    assert_non_null(cur);
    struct rk_member m = *cur;
    m.incarnation++;
    m.state = state;
    struct rk_member_event ev;
    assert_int_equal(rk_members_merge(t, &m, 2000, &ev), 0);
    assert_int_equal(rk_members_find(t, id)->state, state);
}

static void test_peerhold_prune(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1", "node-2"};
    static const uint8_t alive[] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE};
    struct rk_members *t = ptable(ids, alive, 2);
    struct rk_peerhold *ph;
    assert_int_equal(rk_peerhold_create(&ph, PPARTS), 0);
    uint8_t buf[64];
    static const uint32_t held[] = {0};
    size_t len = encoded(1, held, 1, buf);
    bool changed;
    static const char *const heard[] = {"node-2", "node-3", "node-4", "node-5"};
    for (size_t i = 0; i < NELEM(heard); i++)
        assert_rc(rk_peerhold_take(ph, heard[i], 5, buf, len, &changed), 0);
    rk_peerhold_prune(ph, t);
    assert_non_null(rk_peerhold_get(ph, "node-2"));
    for (size_t i = 1; i < NELEM(heard); i++)
        assert_null(rk_peerhold_get(ph, heard[i]));
    /* node-3 heard again: a new entry, changed. */
    assert_rc(rk_peerhold_take(ph, "node-3", 5, buf, len, &changed), 0);
    assert_true(changed);
    assert_non_null(rk_peerhold_get(ph, "node-3"));
    rk_peerhold_free(ph);
    free(t);
}

static void test_place_digest(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1", "node-2", "node-3"};
    static const uint8_t alive[] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_ALIVE};
    static const uint8_t mixed[] = {RK_MEMBER_ALIVE, RK_MEMBER_SUSPECT, RK_MEMBER_DEAD};
    static const char *const other_self[] = {"node-3", "node-1", "node-2"};
    struct rk_members *a = ptable(ids, alive, 3), *b = ptable(other_self, alive, 3);
    uint64_t d = rk_place_digest(a);
    assert_int_equal(rk_place_digest(b), d); /* the same members, seen from another node */
    free(b);
    /* Suspicion and death move no partition: the same digest. */
    b = ptable(ids, mixed, 3);
    assert_int_equal(rk_place_digest(b), d);
    free(b);
    /* Leaving changes placement; so does left, differently. */
    set_state(a, "node-3", RK_MEMBER_LEAVING);
    uint64_t leaving = rk_place_digest(a);
    assert_int_not_equal(leaving, d);
    set_state(a, "node-3", RK_MEMBER_LEFT);
    uint64_t left = rk_place_digest(a);
    assert_int_not_equal(left, d);
    assert_int_not_equal(left, leaving);
    /* A left member counts as absent. */
    b = ptable(ids, alive, 2);
    assert_int_equal(rk_place_digest(b), left);
    free(b);
    free(a);
}

static void test_peerhold_agreed(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1", "node-2", "node-3", "node-4", "node-5"};
    static const uint8_t states[] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_SUSPECT,
                                     RK_MEMBER_DEAD, RK_MEMBER_LEAVING};
    struct rk_members *t = ptable(ids, states, 5);
    uint64_t place = rk_place_digest(t);
    struct rk_peerhold *ph;
    assert_int_equal(rk_peerhold_create(&ph, PPARTS), 0);
    char who[RK_MEMBER_ID_MAX + 1] = "";
    bool changed;
    /* Nobody heard yet. */
    assert_false(rk_peerhold_agreed(ph, t, place, who, sizeof(who)));
    assert_string_equal(who, "node-2");
    assert_rc(rk_peerhold_take(ph, "node-2", place, NULL, 0, &changed), 0);
    /* node-3 is suspect, still up: its digest is needed. */
    assert_false(rk_peerhold_agreed(ph, t, place, who, sizeof(who)));
    assert_string_equal(who, "node-3");
    assert_rc(rk_peerhold_take(ph, "node-3", place + 1, NULL, 0, &changed), 0);
    assert_false(rk_peerhold_agreed(ph, t, place, who, sizeof(who)));
    assert_string_equal(who, "node-3"); /* it places differently */
    assert_rc(rk_peerhold_take(ph, "node-3", place, NULL, 0, &changed), 0);
    /* node-4 is dead: not waited for; node-5 is leaving: it is. */
    assert_false(rk_peerhold_agreed(ph, t, place, who, sizeof(who)));
    assert_string_equal(who, "node-5");
    assert_rc(rk_peerhold_take(ph, "node-5", place, NULL, 0, &changed), 0);
    assert_true(rk_peerhold_agreed(ph, t, place, who, sizeof(who)));
    /* An up member that changes its mind breaks the agreement again. */
    assert_rc(rk_peerhold_take(ph, "node-2", place ^ 1, NULL, 0, &changed), 0);
    assert_false(rk_peerhold_agreed(ph, t, place, who, sizeof(who)));
    assert_string_equal(who, "node-2");
    /* Agreement is about others: self needs no entry. */
    assert_null(rk_peerhold_get(ph, "node-1"));
    rk_peerhold_free(ph);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place_all_hold_serve_is_pref),
        cmocka_unit_test(test_place_one_joiner_pairs_with_displaced_owner),
        cmocka_unit_test(test_place_two_joiners_distinct_partners_last_first),
        cmocka_unit_test(test_place_removal_has_no_partner),
        cmocka_unit_test(test_place_outside_holders_in_walk_order_up_to_replicas),
        cmocka_unit_test(test_place_nobody_holds_all_pending),
        cmocka_unit_test(test_view_joiner_pending_until_it_holds),
        cmocka_unit_test(test_view_leaving_member_serves_until_successor_holds),
        cmocka_unit_test(test_view_heard_all_needs_every_up_member),
        cmocka_unit_test(test_holdings_set_count_and_wire_round_trip),
        cmocka_unit_test(test_holdings_decode_refuses_bad_input),
        cmocka_unit_test(test_holdings_decode_clears_bits_past_the_end),
        cmocka_unit_test(test_holdings_bump_strictly_increases),
        cmocka_unit_test(test_holdings_file),
        cmocka_unit_test(test_peerhold_take_and_get),
        cmocka_unit_test(test_peerhold_refuses_malformed_holdings),
        cmocka_unit_test(test_peerhold_prune),
        cmocka_unit_test(test_place_digest),
        cmocka_unit_test(test_peerhold_agreed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

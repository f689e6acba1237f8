/* Unit tests of the anti-entropy hash trees (cluster/aetree.h): the entry
 * hash is the documented one, leaves spread by the key hash's top bits, and
 * a tree kept up to date by the storage engine's change observer always
 * equals a tree built from scratch at the same cut: after random puts,
 * overwrites, deletes and TTLs, after a failed commit's undo, after merge
 * drops tombstones and expired records. Also the cut/next_expiry rule,
 * order independence, and inner nodes equal iff leaves are. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SF_TAG "aetree"
#include "storage_fixture.h"

#include "cluster/aetree.h"

#include <xxhash.h>

#define PARTS 16
#define PINNED_USER42                                                                              \
    0x9777a081c90b29e8ull /* entry_hash("user:42", 0x0123456789abcdef, live, 1700000000000) */ /* partitions of the test stores (all owned by one worker) */

/* ---- helpers ---- */

static void set_init(struct rk_aetrees *ts)
{
    assert_rc(rk_aetrees_init(ts, PARTS, 1, 0), 0);
}

/* Fail unless tree a (maintained) equals a tree built from s at a's cut. */
static void check_tree(rk_storage *s, const struct rk_aetree *a, const char *when)
{
    struct rk_aetree *b = malloc(sizeof(*b));
    assert_non_null(b);
    rk_aetree_init(b, a->partition, a->cut_ms);
    rk_aetree_build(b, s, a->cut_ms);
    for (uint32_t i = 0; i < RK_AETREE_LEAVES; i++)
        if (a->leaf[i] != b->leaf[i])
            fail_msg("%s: partition %u leaf %u: maintained %016" PRIx64 ", rebuilt %016" PRIx64,
                     when, a->partition, i, a->leaf[i], b->leaf[i]);
    if (a->entries != b->entries)
        fail_msg("%s: partition %u: %" PRIu64 " entries maintained, %" PRIu64 " rebuilt", when,
                 a->partition, a->entries, b->entries);
    /* next_expiry only falls between builds: early is allowed, late never */
    if (a->next_expiry_ms > b->next_expiry_ms)
        fail_msg("%s: partition %u: next_expiry %" PRIu64 " later than rebuilt %" PRIu64, when,
                 a->partition, a->next_expiry_ms, b->next_expiry_ms);
    assert_int_equal(rk_aetree_root(a), rk_aetree_root(b));
    free(b);
}

static void check_all(rk_storage *s, struct rk_aetrees *ts, const char *when)
{
    for (uint32_t i = 0; i < ts->n; i++)
        check_tree(s, &ts->t[i], when);
}

/* A store observed by a tree set built at now_ms (empty or not). */
static rk_storage *open_observed(const char *dir, const struct rk_storage_opts *o,
                                 struct rk_aetrees *ts)
{
    rk_storage *s = open_ok(dir, o, NULL);
    set_init(ts);
    assert_rc(rk_aetrees_build(ts, s, now_ms, false, NULL), 0);
    rk_storage_set_observer(s, rk_aetrees_observe, ts);
    return s;
}

static int step_all(rk_storage *s)
{
    int n = 0, rc;
    while ((rc = rk_storage_step(s)) == 1)
        if (++n > 200000)
            fail_msg("rk_storage_step still busy after %d steps", n);
    assert_rc(rc, 0);
    return n;
}

/* ---- the hash and the leaves ---- */

/* The documented layout, byte by byte: key || version u64 LE || tombstone
 * u8 || expiry u64 LE, XXH3_64 with seed 0x52414521. */
static uint64_t golden(const char *key, size_t klen, uint64_t ver, int tomb, uint64_t exp)
{
    uint8_t buf[2048];
    memcpy(buf, key, klen);
    for (int i = 0; i < 8; i++)
        buf[klen + (size_t)i] = (uint8_t)(ver >> (8 * i));
    buf[klen + 8] = (uint8_t)tomb;
    for (int i = 0; i < 8; i++)
        buf[klen + 9 + (size_t)i] = (uint8_t)(exp >> (8 * i));
    return XXH3_64bits_withSeed(buf, klen + 17, 0x52414521u);
}

static void test_entry_hash_is_the_documented_one(void **state)
{
    (void)state;
    uint64_t ver = 0x0123456789abcdefull, exp = 1700000000000ull;
    assert_int_equal(rk_aetree_entry_hash("user:42", 7, ver, false, exp),
                     golden("user:42", 7, ver, 0, exp));
    assert_int_equal(rk_aetree_entry_hash("user:42", 7, ver, true, 0),
                     golden("user:42", 7, ver, 1, 0));
    /* every field counts */
    uint64_t h = rk_aetree_entry_hash("k", 1, 5, false, 0);
    assert_true(h != rk_aetree_entry_hash("k", 1, 6, false, 0));
    assert_true(h != rk_aetree_entry_hash("k", 1, 5, true, 0));
    assert_true(h != rk_aetree_entry_hash("k", 1, 5, false, 1000));
    assert_true(h != rk_aetree_entry_hash("j", 1, 5, false, 0));
    /* keys longer than the stack buffer take the streaming path: same value */
    char big[1500];
    uint64_t rng = tu_seed("test_entry_hash_is_the_documented_one");
    for (size_t n = 200; n <= sizeof(big); n += 97) {
        for (size_t i = 0; i < n; i++)
            big[i] = (char)tu_rand(&rng);
        if (rk_aetree_entry_hash(big, (uint32_t)n, ver, n & 1, exp) !=
            golden(big, n, ver, (int)(n & 1), exp))
            fail_msg("entry hash of a %zu-byte key differs from the documented one", n);
    }
    /* the streaming path once more after the stack was dirtied by other
     * calls (a seeded reset of an uncleared state used a stale secret) */
    for (int i = 0; i < 50; i++) {
        memset(big, i, sizeof(big));
        uint64_t want = golden(big, sizeof(big), ver, 0, exp);
        assert_int_equal(rk_aetree_entry_hash(big, sizeof(big), ver, false, exp), want);
    }
    /* pinned (XXH3 of xxhash 0.8): a change of layout, seed or hash shows here */
    assert_int_equal(rk_aetree_entry_hash("user:42", 7, ver, false, exp), PINNED_USER42);
}

static void test_leaf_is_top_ten_bits_and_spreads(void **state)
{
    (void)state;
    static uint32_t count[RK_AETREE_LEAVES];
    char key[32];
    uint32_t inpart = 0;
    /* the keys of one partition of 256 (low bits) still fill every leaf */
    for (uint32_t i = 0; inpart < 64 * RK_AETREE_LEAVES; i++) {
        int n = snprintf(key, sizeof(key), "key-%u", i);
        uint64_t h = XXH3_64bits(key, (size_t)n);
        uint32_t leaf = rk_aetree_leaf_of(key, (uint32_t)n);
        assert_int_equal(leaf, (uint32_t)(h >> 54));
        assert_true(leaf < RK_AETREE_LEAVES);
        if ((h & 255) != 7)
            continue;
        count[leaf]++;
        inpart++;
    }
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t i = 0; i < RK_AETREE_LEAVES; i++) {
        lo = count[i] < lo ? count[i] : lo;
        hi = count[i] > hi ? count[i] : hi;
    }
    print_message("64 keys per leaf expected: min %u, max %u\n", lo, hi);
    assert_true(lo >= 32 && hi <= 110); /* binomial(65536, 1/1024): sd 8 */
}

/* ---- exactness against a real engine ---- */

/* One random operation on m's keys; commits now and then. */
static void random_op(rk_storage *s, struct tu_model *m, uint64_t *rng, uint32_t *ops)
{
    uint32_t id = (uint32_t)tu_rand_below(rng, m->n);
    uint64_t r = tu_rand_below(rng, 100);
    int rc;
    if (r < 50) {
        rc = tu_put(s, m, id, next_ver(), 0);
    } else if (r < 70) {
        rc = tu_del(s, m, id, next_ver());
    } else if (r < 90) { /* a TTL from already past to a minute ahead */
        uint64_t exp = now_ms - 5000 + tu_rand_below(rng, 65000);
        rc = tu_put(s, m, id, next_ver(), exp);
    } else { /* stale: an older version is refused, the index unchanged */
        rc = m->kv[id].present && m->kv[id].version > 1 ? tu_put(s, m, id, m->kv[id].version - 1, 0)
                                                        : tu_put(s, m, id, next_ver(), 0);
        if (rc == RK_ESTALE)
            rc = 0;
    }
    assert_rc(rc, 0);
    if (tu_rand_below(rng, 8) == 0)
        assert_rc(rk_storage_commit(s), 0);
    now_ms += tu_rand_below(rng, 300);
    (*ops)++;
}

static void test_random_changes_keep_tree_equal_to_rebuild(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 64 << 10;
    uint64_t rng = tu_seed("test_random_changes_keep_tree_equal_to_rebuild");
    tu_model_init(&f->m, 600, PARTS, 10, 200);
    struct rk_aetrees ts;
    rk_storage *s = open_observed(f->dir, &o, &ts);
    uint32_t ops = 0;
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 500; i++)
            random_op(s, &f->m, &rng, &ops);
        check_all(s, &ts, "after random changes");
        if (round % 3 == 2) { /* some trees went stale as the clock moved */
            uint64_t keys;
            assert_rc(rk_aetrees_build(&ts, s, now_ms, true, &keys), 0);
            for (uint32_t i = 0; i < ts.n; i++)
                assert_false(rk_aetree_stale(&ts.t[i], now_ms));
            check_all(s, &ts, "after rebuilding the stale trees");
        }
        assert_rc(rk_storage_commit(s), 0); /* background work waits for commits */
        step_all(s);                        /* index files, merges: relocations are not changes */
        check_all(s, &ts, "after background steps");
    }
    assert_rc(rk_storage_commit(s), 0);
    /* reopening and building from the recovered index gives the same trees */
    struct rk_aetrees *again = calloc(1, sizeof(*again));
    assert_rc(rk_aetrees_build(&ts, s, now_ms, false, NULL), 0);
    assert_rc(rk_storage_close(s), 0);
    s = open_observed(f->dir, &o, again);
    for (uint32_t i = 0; i < ts.n; i++)
        assert_memory_equal(ts.t[i].leaf, again->t[i].leaf, sizeof(ts.t[i].leaf));
    assert_rc(rk_storage_close(s), 0);
    rk_aetrees_fini(again);
    free(again);
    rk_aetrees_fini(&ts);
    f->ok = true;
}

/* Stage overwrites, new keys, deletes and TTLs; the commit fails; the trees
 * are back to what they were, bit for bit. */
static void failed_commit_restores(struct fx *f, enum rk_io_op op, int err, int want)
{
    struct rk_storage_opts o;
    test_opts(&o);
    tu_model_init(&f->m, 200, PARTS, 10, 300);
    struct rk_aetrees ts;
    rk_storage *s = open_observed(f->dir, &o, &ts);
    put_ids(s, &f->m, 0, 100, 1);
    assert_rc(rk_storage_commit(s), 0);
    struct rk_aetree *before = malloc(ts.n * sizeof(*before));
    memcpy(before, ts.t, ts.n * sizeof(*before));
    for (uint32_t id = 0; id < 200; id += 3)
        assert_rc(tu_put(s, &f->m, id, next_ver(), id % 2 ? now_ms + 9000 : 0), 0);
    for (uint32_t id = 1; id < 100; id += 7)
        assert_rc(tu_del(s, &f->m, id, next_ver()), 0);
    assert_true(memcmp(before, ts.t, ts.n * sizeof(*before)) != 0);
    check_all(s, &ts, "staged");
    rk_io_fault_arm(op, 1, err);
    int rc = rk_storage_commit(s);
    rk_io_fault_arm(op, 0, 0);
    if (rc != want && rc != -err)
        fail_msg("commit = %d (%s), want %d", rc, rk_strerror(rc), want);
    assert_int_equal(rk_storage_staged(s), 0);
    for (uint32_t i = 0; i < ts.n; i++) { /* next_expiry may have fallen: early is fine */
        assert_memory_equal(before[i].leaf, ts.t[i].leaf, sizeof(before[i].leaf));
        assert_int_equal(before[i].entries, ts.t[i].entries);
    }
    check_all(s, &ts, "after the undo");
    free(before);
    rc = rk_storage_close(s);
    assert_true(rc == 0 || rc == RK_EREADONLY); /* a store that refuses writes says so */
    rk_aetrees_fini(&ts);
    f->ok = true;
}

static void test_undo_after_enospc(void **state)
{
    failed_commit_restores(*state, RK_IO_WRITE, ENOSPC, RK_ENOSPACE);
}

static void test_undo_after_fsync_error(void **state)
{
    failed_commit_restores(*state, RK_IO_SYNC, EIO, RK_EREADONLY);
}

static void test_merge_purge_keeps_tree_exact(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 32 << 10;
    o.tombstone_grace_ms = 10000;
    tu_model_init(&f->m, 1500, PARTS, 50, 200);
    struct rk_aetrees ts;
    rk_storage *s = open_observed(f->dir, &o, &ts);
    uint32_t ops = 0;
    for (uint32_t id = 0; id < f->m.n; id++) {
        uint64_t exp = id % 3 == 0 ? now_ms + 2000 : 0; /* a third expire in 2 s */
        assert_rc(tu_put(s, &f->m, id, next_ver(), exp), 0);
        commit_every(s, &ops, 50);
    }
    for (uint32_t id = 1; id < f->m.n; id += 3) { /* another third deleted */
        assert_rc(tu_del(s, &f->m, id, next_ver()), 0);
        commit_every(s, &ops, 50);
    }
    assert_rc(rk_storage_commit(s), 0);
    step_all(s);
    struct rk_storage_stats st0, st1;
    rk_storage_stats(s, &st0);
    now_ms += 2000 + o.tombstone_grace_ms + 1000; /* past expiry and grace */
    put_ids(s, &f->m, 2, f->m.n, 3);              /* new segments, so the old ones can merge */
    assert_rc(rk_storage_commit(s), 0);
    step_all(s);
    rk_storage_stats(s, &st1);
    print_message("tombstones %" PRIu64 " -> %" PRIu64 ", merges %" PRIu64 "\n", st0.tombstones,
                  st1.tombstones, st1.merges);
    assert_true(st1.tombstones < st0.tombstones); /* merge did drop some */
    /* trees still cut at the start: the expired records were members and
     * left as merge dropped them */
    check_all(s, &ts, "after merge dropped records");
    assert_true(rk_aetree_stale(&ts.t[0], now_ms));
    assert_rc(rk_aetrees_build(&ts, s, now_ms, true, NULL), 0);
    check_all(s, &ts, "rebuilt after merge");
    assert_rc(rk_storage_close(s), 0);
    rk_aetrees_fini(&ts);
    f->ok = true;
}

/* ---- the membership rule ---- */

static void test_expiring_entry_stays_until_rebuild(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    tu_model_init(&f->m, 64, 1, 10, 50);
    struct rk_aetrees ts;
    rk_storage *s = open_observed(f->dir, &o, &ts);
    struct rk_aetree *t = rk_aetrees_get(&ts, 0);
    put_ids(s, &f->m, 0, 10, 1);
    assert_rc(rk_storage_commit(s), 0);
    uint64_t root_without = rk_aetree_root(t), entries_without = t->entries;
    assert_int_equal(t->next_expiry_ms, UINT64_MAX);
    assert_false(rk_aetree_stale(t, now_ms + 1000000));

    uint64_t exp = now_ms + 5000;
    assert_rc(tu_put(s, &f->m, 20, next_ver(), exp), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_int_equal(t->entries, entries_without + 1);
    assert_int_equal(t->next_expiry_ms, exp); /* whole seconds: exp is */
    uint64_t root_with = rk_aetree_root(t);
    assert_true(root_with != root_without);

    /* iteration reports the TTL and a tombstone as the index keeps them */
    assert_rc(tu_del(s, &f->m, 3, next_ver()), 0);
    struct rk_storage_iter it;
    struct rk_record r;
    uint32_t tombs = 0, ttl = 0;
    rk_storage_iter_init(&it, 0, false);
    while (rk_storage_iter_next(s, &it, &r) == 1) {
        tombs += r.tombstone;
        ttl += r.expiry_ms == exp;
    }
    assert_int_equal(tombs, 1);
    assert_int_equal(ttl, 1);
    assert_rc(tu_put(s, &f->m, 3, next_ver(), 0), 0); /* back as it was, new version */
    root_with = rk_aetree_root(t);

    now_ms = exp - 1;
    assert_false(rk_aetree_stale(t, now_ms));
    now_ms = exp; /* expired now: the tree is stale but still holds it */
    assert_true(rk_aetree_stale(t, now_ms));
    assert_int_equal(rk_aetree_root(t), root_with);
    check_tree(s, t, "expired, before the rebuild");
    assert_rc(rk_aetrees_build(&ts, s, now_ms, true, NULL), 0);
    assert_false(rk_aetree_stale(t, now_ms));
    assert_int_equal(t->entries, entries_without);
    assert_int_equal(t->cut_ms, now_ms);
    check_tree(s, t, "rebuilt");

    /* an overwrite of the expired record: old was not a member, new is */
    assert_rc(tu_put(s, &f->m, 20, next_ver(), 0), 0);
    assert_int_equal(t->entries, entries_without + 1);
    check_tree(s, t, "expired record overwritten");
    assert_rc(rk_storage_close(s), 0);
    rk_aetrees_fini(&ts);
    f->ok = true;
}

/* ---- order, inner nodes ---- */

struct ent {
    char key[24];
    uint32_t klen;
    struct rk_storage_entry e;
};

static void test_insertion_order_does_not_matter(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_insertion_order_does_not_matter");
    enum { N = 5000 };
    struct ent *v = calloc(N, sizeof(*v));
    struct rk_aetree *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    rk_aetree_init(a, 3, 1000);
    rk_aetree_init(b, 3, 1000);
    for (uint32_t i = 0; i < N; i++) {
        v[i].klen = (uint32_t)snprintf(v[i].key, sizeof(v[i].key), "k%u", i);
        v[i].e = (struct rk_storage_entry){.version = tu_rand(&rng),
                                           .expiry_ms = i % 4 ? 0 : 500 + tu_rand_below(&rng, 2000),
                                           .partition = 3,
                                           .tombstone = i % 5 == 0};
        rk_aetree_apply(a, v[i].key, v[i].klen, NULL, &v[i].e);
    }
    for (uint32_t i = N - 1; i > 0; i--) { /* Fisher-Yates */
        uint32_t j = (uint32_t)tu_rand_below(&rng, i + 1);
        struct ent x = v[i];
        v[i] = v[j];
        v[j] = x;
    }
    for (uint32_t i = 0; i < N; i++)
        rk_aetree_apply(b, v[i].key, v[i].klen, NULL, &v[i].e);
    assert_memory_equal(a->leaf, b->leaf, sizeof(a->leaf));
    assert_int_equal(a->entries, b->entries);
    assert_int_equal(a->next_expiry_ms, b->next_expiry_ms);
    assert_int_equal(rk_aetree_root(a), rk_aetree_root(b));
    /* and removing everything, in yet another order, gives the empty tree */
    for (uint32_t i = 0; i < N; i++)
        rk_aetree_apply(b, v[(i * 7919) % N].key, v[(i * 7919) % N].klen, &v[(i * 7919) % N].e,
                        NULL);
    assert_int_equal(b->entries, 0);
    assert_int_equal(rk_aetree_root(b), 0);
    for (uint32_t i = 0; i < RK_AETREE_LEAVES; i++)
        assert_int_equal(b->leaf[i], 0);
    free(v);
    free(a);
    free(b);
}

static void test_inner_nodes_equal_iff_leaves_equal(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_inner_nodes_equal_iff_leaves_equal");
    struct rk_aetree *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    rk_aetree_init(a, 0, 1);
    assert_int_equal(rk_aetree_root(a), 0); /* empty: 0, like an empty partition */
    for (uint32_t m = 0; m < RK_AETREE_MIDS; m++)
        assert_int_equal(rk_aetree_mid(a, m), 0);
    for (uint32_t i = 0; i < RK_AETREE_LEAVES; i++)
        a->leaf[i] = i % 3 ? tu_rand(&rng) : 0;
    a->entries = RK_AETREE_LEAVES;
    *b = *a;
    uint64_t ma[RK_AETREE_MIDS], mb[RK_AETREE_MIDS];
    assert_int_equal(rk_aetree_root(a), rk_aetree_root(b));
    for (int trial = 0; trial < 200; trial++) {
        uint32_t leaf = (uint32_t)tu_rand_below(&rng, RK_AETREE_LEAVES);
        b->leaf[leaf] ^= 1ull << tu_rand_below(&rng, 64);
        rk_aetree_mids(a, ma);
        rk_aetree_mids(b, mb);
        for (uint32_t m = 0; m < RK_AETREE_MIDS; m++) {
            if (m == leaf / RK_AETREE_FANOUT)
                assert_true(ma[m] != mb[m]);
            else
                assert_int_equal(ma[m], mb[m]);
        }
        assert_true(rk_aetree_root(a) != rk_aetree_root(b));
        b->leaf[leaf] = a->leaf[leaf];
        assert_int_equal(rk_aetree_root(a), rk_aetree_root(b));
    }
    /* one non-zero leaf under a mid is enough to make it non-zero */
    rk_aetree_init(b, 0, 1);
    b->leaf[77] = 1;
    b->entries = 1;
    assert_true(rk_aetree_mid(b, 77 / RK_AETREE_FANOUT) != 0);
    assert_int_equal(rk_aetree_mid(b, 0), 0);
    assert_true(rk_aetree_root(b) != 0);
    free(a);
    free(b);
}

static void test_tree_set_owns_its_partitions(void **state)
{
    (void)state;
    struct rk_aetrees ts;
    assert_rc(rk_aetrees_init(&ts, 256, 3, 1), 0);
    assert_int_equal(ts.n, 85); /* 1, 4, ..., 253 */
    for (uint32_t p = 0; p < 256; p++) {
        struct rk_aetree *t = rk_aetrees_get(&ts, p);
        if (p % 3 == 1)
            assert_true(t && t->partition == p);
        else
            assert_null(t);
    }
    assert_null(rk_aetrees_get(&ts, 256));
    struct rk_storage_entry e = {.version = 9, .partition = 5};
    rk_aetrees_observe(&ts, "x", 1, NULL, &e); /* partition 5: worker 2's */
    assert_int_equal(ts.foreign, 1);
    e.partition = 4;
    rk_aetrees_observe(&ts, "x", 1, NULL, &e);
    assert_int_equal(rk_aetrees_get(&ts, 4)->entries, 1);
    assert_int_equal(rk_aetrees_bytes(&ts), 85 * sizeof(struct rk_aetree));
    rk_aetrees_fini(&ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_hash_is_the_documented_one),
        cmocka_unit_test(test_leaf_is_top_ten_bits_and_spreads),
        FX_TEST(test_random_changes_keep_tree_equal_to_rebuild),
        FX_TEST(test_undo_after_enospc),
        FX_TEST(test_undo_after_fsync_error),
        FX_TEST(test_merge_purge_keeps_tree_exact),
        FX_TEST(test_expiring_entry_stays_until_rebuild),
        cmocka_unit_test(test_insertion_order_does_not_matter),
        cmocka_unit_test(test_inner_nodes_equal_iff_leaves_equal),
        cmocka_unit_test(test_tree_set_owns_its_partitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

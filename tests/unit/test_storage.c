/* Unit tests of the storage engine's API contract (storage.h): reads and
 * writes, versions and equal-version ties, tombstones, TTL, limits, reopen
 * with and without index files, the data-dir lock, iteration, group commit,
 * and the write-error paths (injected ENOSPC and fsync failures, and a real
 * full tmpfs). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SF_TAG "storage"
#include "storage_fixture.h"

#include "storage/record.h" /* rk_record_rank: which of two equal versions wins */

static int put_raw(rk_storage *s, const void *key, uint32_t klen, const void *val, uint32_t vlen,
                   uint64_t version, uint64_t expiry, uint16_t partition, uint64_t *cur)
{
    struct rk_record r = {0};
    r.key = key;
    r.klen = klen;
    r.val = val;
    r.vlen = vlen;
    r.version = version;
    r.expiry_ms = expiry;
    r.partition = partition;
    return rk_storage_put(s, &r, cur);
}

/* Fill a store with n keys, overwrite a third and delete a tenth of them,
 * committing every 50 operations; the model records the result. */
static void fill(rk_storage *s, struct tu_model *m, uint32_t n)
{
    static const struct {
        uint32_t from, step;
        bool del;
    } passes[] = {{0, 1, false}, {0, 3, false}, {1, 10, true}};
    uint32_t ops = 0;
    for (size_t p = 0; p < sizeof(passes) / sizeof(passes[0]); p++) {
        for (uint32_t id = passes[p].from; id < n; id += passes[p].step) {
            if (passes[p].del)
                assert_rc(tu_del(s, m, id, next_ver()), 0);
            else
                assert_rc(tu_put(s, m, id, next_ver(), 0), 0);
            commit_every(s, &ops, 50);
        }
    }
    assert_rc(rk_storage_commit(s), 0);
}

static uint32_t model_tombs(const struct tu_model *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n; i++)
        n += m->kv[i].present && m->kv[i].tomb;
    return n;
}

/* The stats of s, after checking its key and tombstone counts. */
static struct rk_storage_stats stats_with(rk_storage *s, uint64_t keys, uint64_t tombstones)
{
    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(st.keys, keys);
    assert_int_equal(st.tombstones, tombstones);
    return st;
}

/* The number of records a full iteration with values returns; none of
 * them may have the key absent (if set). */
static int iter_count(rk_storage *s, const char *absent, uint32_t alen)
{
    struct rk_storage_iter it;
    struct rk_record r;
    rk_storage_iter_init(&it, -1, true);
    int n = 0, rc;
    while ((rc = rk_storage_iter_next(s, &it, &r)) == 1) {
        if (absent)
            assert_false(r.klen == alen && memcmp(r.key, absent, alen) == 0);
        n++;
    }
    assert_rc(rc, 0);
    return n;
}

static void seg64_opts(struct rk_storage_opts *o)
{
    test_opts(o);
    o->segment_size = 64 << 10;
}

/* A store of several sealed segments (64 KiB each), closed cleanly. */
static void build_segmented(const char *dir, struct tu_model *m, int *nsegs)
{
    struct rk_storage_opts o;
    seg64_opts(&o);
    tu_model_init(m, 3000, 16, 100, 1500);
    rk_storage *s = open_ok(dir, &o, NULL);
    fill(s, m, m->n);
    assert_rc(rk_storage_close(s), 0);
    struct tu_seg segs[256];
    *nsegs = tu_segments(dir, segs, 256);
    if (*nsegs < 4)
        fail_msg("expected several segments with segment_size 64 KiB, found %d", *nsegs);
}

/* ---- basic reads and writes ---- */

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m;
    tu_model_init(&m, 200, 16, 1, 3000);

    put_ids(s, &m, 0, m.n, 1);
    assert_int_equal(rk_storage_staged(s), 200);
    assert_model(s, &m, 0); /* staged puts are visible at once */
    assert_rc(rk_storage_commit(s), 0);
    assert_int_equal(rk_storage_staged(s), 0);
    assert_model(s, &m, 0);
    assert_int_equal(stats_with(s, 200, 0).puts, 200);

    char key[TU_KEY_CAP];
    struct rk_record r;
    assert_rc(rk_storage_get(s, "key-9999999", 11, 0, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, key, tu_key(key, 5) - 1, 0, &r), RK_ENOTFOUND); /* prefix */
    assert_rc(rk_storage_close(s), 0);

    struct rk_storage_report rep;
    s = open_ok(f->dir, &o, &rep);
    assert_int_equal(rep.keys, 200);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_overwrite_newer_wins(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m;
    tu_model_init(&m, 50, 4, 10, 500);

    put_ids(s, &m, 0, m.n, 1);
    assert_rc(rk_storage_commit(s), 0);
    /* a newer version in a later commit */
    put_ids(s, &m, 0, m.n, 2);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_model(s, &m, 0);
    /* two versions of one key in the same batch: the last one wins */
    for (uint32_t id = 0; id < m.n; id += 5) {
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    }
    assert_rc(rk_storage_commit(s), 0);
    assert_model(s, &m, 0);

    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(st.keys, m.n);
    assert_true(st.dead_bytes > 0);
    close_reopen_check(s, f->dir, &o, &m, 0);
    tu_model_free(&m);
    f->ok = true;
}

/* A put of key "k" (partition 3) at version that must be refused as stale,
 * reporting want_cur as the version stored. */
static void put_stale(rk_storage *s, const char *val, uint64_t version, uint64_t want_cur)
{
    uint64_t cur = 0;
    assert_rc(put_raw(s, "k", 1, val, (uint32_t)strlen(val), version, 0, 3, &cur), RK_ESTALE);
    assert_int_equal(cur, want_cur);
}

static void test_stale_put_rejected(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);

    uint64_t v1 = next_ver(), v2 = next_ver(), v3 = next_ver();
    assert_rc(put_raw(s, "k", 1, "second", 6, v2, 0, 3, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    struct rk_storage_stats st0, st1;
    rk_storage_stats(s, &st0);

    put_stale(s, "first", v1, v2);
    put_stale(s, "second", v2, v2); /* equal version, the same write again */
    uint64_t cur = 0;
    assert_rc(rk_storage_del(s, "k", 1, 3, v1, &cur), RK_ESTALE);
    assert_int_equal(cur, v2);
    assert_rc(put_raw(s, "k", 1, "first", 5, v1, 0, 3, NULL), RK_ESTALE); /* cur may be NULL */
    assert_int_equal(rk_storage_staged(s), 0);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.stale_puts, st0.stale_puts + 4);

    struct rk_record r;
    assert_rc(rk_storage_get(s, "k", 1, 0, &r), 0);
    assert_int_equal(r.version, v2);
    assert_int_equal(r.vlen, 6);
    assert_memory_equal(r.val, "second", 6);

    /* staged but uncommitted versions count too */
    assert_rc(put_raw(s, "k", 1, "third", 5, v3, 0, 3, NULL), 0);
    put_stale(s, "third", v3, v3);
    assert_rc(rk_storage_close(s), 0);

    /* and versions survive a reopen */
    s = open_ok(f->dir, &o, NULL);
    put_stale(s, "second", v2, v3);
    assert_rc(rk_storage_get(s, "k", 1, 0, &r), 0);
    assert_int_equal(r.version, v3);
    assert_memory_equal(r.val, "third", 5);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* key reads as absent, and with RK_GET_TOMBSTONES as a tombstone of
 * version, which is left in *r. */
static void get_tombstone(rk_storage *s, const char *key, uint32_t klen, uint64_t version,
                          struct rk_record *r)
{
    assert_rc(rk_storage_get(s, key, klen, 0, r), RK_ENOTFOUND);
    memset(r, 0, sizeof(*r));
    assert_rc(rk_storage_get(s, key, klen, RK_GET_TOMBSTONES, r), 0);
    assert_true(r->tombstone);
    assert_int_equal(r->version, version);
}

static void test_delete_tombstone(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);

    uint64_t v1 = next_ver(), v2 = next_ver(), v3 = next_ver(), v4 = next_ver();
    struct rk_record r;
    assert_rc(put_raw(s, "doomed", 6, "value", 5, v1, 0, 7, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_del(s, "doomed", 6, 7, v3, NULL), 0);
    assert_rc(rk_storage_get(s, "doomed", 6, 0, &r), RK_ENOTFOUND); /* staged delete */
    assert_rc(rk_storage_commit(s), 0);
    get_tombstone(s, "doomed", 6, v3, &r);
    assert_int_equal(r.partition, 7);
    assert_int_equal(r.klen, 6);
    assert_memory_equal(r.key, "doomed", 6);

    /* the tombstone's version guards against older puts */
    uint64_t cur = 0;
    assert_rc(put_raw(s, "doomed", 6, "zombie", 6, v2, 0, 7, &cur), RK_ESTALE);
    assert_int_equal(cur, v3);
    assert_rc(rk_storage_del(s, "doomed", 6, 7, v3, &cur), RK_ESTALE);

    /* deleting a key never written still records a tombstone */
    assert_rc(rk_storage_del(s, "never", 5, 1, v2, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    get_tombstone(s, "never", 5, v2, &r);
    stats_with(s, 0, 2);
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    get_tombstone(s, "doomed", 6, v3, &r);
    /* a newer put brings the key back */
    assert_rc(put_raw(s, "doomed", 6, "reborn", 6, v4, 0, 7, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_get(s, "doomed", 6, 0, &r), 0);
    assert_false(r.tombstone);
    assert_int_equal(r.version, v4);
    assert_memory_equal(r.val, "reborn", 6);
    stats_with(s, 1, 1);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* ---- equal versions: the tie-break every replica applies alike ---- */

static int put_str(rk_storage *s, const char *key, const char *val, uint64_t version, uint64_t *cur)
{
    return put_raw(s, key, (uint32_t)strlen(key), val, (uint32_t)strlen(val), version, 0, 1, cur);
}

/* Two values of key i for one version: lo ranks below hi (record.h). */
static void tie_pair(uint32_t i, char lo[32], char hi[32])
{
    snprintf(lo, 32, "value-a-%u", i);
    snprintf(hi, 32, "value-b-%u", i);
    if (rk_record_rank(false, lo, (uint32_t)strlen(lo), 0) >
        rk_record_rank(false, hi, (uint32_t)strlen(hi), 0)) {
        char t[32];
        memcpy(t, lo, 32);
        memcpy(lo, hi, 32);
        memcpy(hi, t, 32);
    }
}

/* key reads as val at version. */
static void get_str(rk_storage *s, const char *key, const char *val, uint64_t version)
{
    struct rk_record r;
    assert_rc(rk_storage_get(s, key, (uint32_t)strlen(key), 0, &r), 0);
    assert_int_equal(r.version, version);
    assert_int_equal(r.vlen, strlen(val));
    assert_memory_equal(r.val, val, r.vlen);
}

/* Close s and reopen dir twice, through the index files and by scanning the
 * segments, calling check on each; returns the store open by scanning. */
static rk_storage *reopen_both_ways(rk_storage *s, const char *dir, const struct rk_storage_opts *o,
                                    void (*check)(rk_storage *, void *), void *arg)
{
    assert_rc(rk_storage_close(s), 0);
    struct rk_storage_report rep;
    s = open_ok(dir, o, &rep);
    assert_true(rep.from_index_files > 0);
    check(s, arg);
    assert_rc(rk_storage_close(s), 0);
    assert_true(tu_remove_suffix(dir, ".rkh") > 0);
    s = open_ok(dir, o, &rep);
    assert_int_equal(rep.from_index_files, 0);
    check(s, arg);
    return s;
}

struct tie_keys {
    uint64_t v, w;
    char lo[32], hi[32];
};

static void check_tie_keys(rk_storage *s, void *arg)
{
    const struct tie_keys *t = arg;
    get_str(s, "k", t->hi, t->v);
    for (int i = 1; i <= 4; i++) {
        char key[8];
        snprintf(key, sizeof(key), "s%d", i);
        get_str(s, key, t->hi, t->w);
    }
}

/* A put of an equal version replaces the stored record only when it ranks
 * higher; the stored one is read from disk, the open block, or a block
 * sealed earlier in the same batch (also when the cache dropped it). */
static void test_equal_version_higher_rank_wins(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.block_cache_size = 1; /* a sealed block of the batch is read back from the batch */
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tie_keys t = {.v = next_ver(), .w = next_ver()};
    tie_pair(0, t.lo, t.hi);
    uint64_t cur = 0;

    assert_rc(put_str(s, "k", t.lo, t.v, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    struct rk_storage_stats st0, st1;
    rk_storage_stats(s, &st0);
    assert_rc(put_str(s, "k", t.hi, t.v, &cur), 0);
    get_str(s, "k", t.hi, t.v);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(put_str(s, "k", t.lo, t.v, &cur), RK_ESTALE);
    assert_int_equal(cur, t.v);
    cur = 0;
    assert_rc(put_str(s, "k", t.hi, t.v, &cur), RK_ESTALE); /* a duplicate */
    assert_int_equal(cur, t.v);
    get_str(s, "k", t.hi, t.v);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.puts, st0.puts + 1);
    assert_int_equal(st1.stale_puts, st0.stale_puts + 2);

    /* Both puts staged in one batch, in either order: against the open block
     * (s1, s2), and against a block sealed since (s3, s4). */
    assert_rc(put_str(s, "s1", t.lo, t.w, NULL), 0);
    assert_rc(put_str(s, "s1", t.hi, t.w, NULL), 0);
    assert_rc(put_str(s, "s2", t.hi, t.w, NULL), 0);
    assert_rc(put_str(s, "s2", t.lo, t.w, NULL), RK_ESTALE);
    assert_rc(put_str(s, "s3", t.lo, t.w, NULL), 0);
    assert_rc(put_str(s, "s4", t.hi, t.w, NULL), 0);
    static char filler[4000];
    memset(filler, 'x', sizeof(filler) - 1);
    for (int i = 0; i < 12; i++) { /* 48 KB: past the 16 KiB block target */
        char key[16];
        snprintf(key, sizeof(key), "fill-%d", i);
        assert_rc(put_str(s, key, filler, next_ver(), NULL), 0);
    }
    assert_rc(put_str(s, "s3", t.hi, t.w, NULL), 0);
    assert_rc(put_str(s, "s4", t.lo, t.w, NULL), RK_ESTALE);
    check_tie_keys(s, &t);
    assert_rc(rk_storage_commit(s), 0);
    check_tie_keys(s, &t);

    s = reopen_both_ways(s, f->dir, &o, check_tie_keys, &t);
    assert_rc(put_str(s, "k", t.lo, t.v, NULL), RK_ESTALE); /* read from disk */
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

#define TIE_KEYS 300

/* Key i gets two records of one version, lo and hi (or lo and a delete
 * when i % 5 == 4), hi first or last; some pairs in one batch, some not. */
static void put_tie(rk_storage *s, uint32_t i, uint64_t v, bool hi_first)
{
    char key[32], lo[32], hi[32];
    snprintf(key, sizeof(key), "tie-%u", i);
    tie_pair(i, lo, hi);
    bool del = i % 5 == 4;
    for (int n = 0; n < 2; n++) {
        bool winner = (n == 0) == hi_first;
        int rc = winner && del ? rk_storage_del(s, key, (uint32_t)strlen(key), 1, v, NULL)
                               : put_str(s, key, winner ? hi : lo, v, NULL);
        assert_rc(rc, n == 0 || winner ? 0 : RK_ESTALE);
        if (i % 3 == 0)
            assert_rc(rk_storage_commit(s), 0);
    }
}

static void check_ties(rk_storage *s, void *arg)
{
    const uint64_t *v = arg;
    for (uint32_t i = 0; i < TIE_KEYS; i++) {
        char key[32], lo[32], hi[32];
        snprintf(key, sizeof(key), "tie-%u", i);
        tie_pair(i, lo, hi);
        if (i % 5 == 4) {
            struct rk_record r;
            get_tombstone(s, key, (uint32_t)strlen(key), v[i], &r);
        } else {
            get_str(s, key, hi, v[i]);
        }
    }
}

/* Two replicas receiving the same two writes of one version in opposite
 * orders end up alike: the higher rank, or the delete. */
static void test_equal_version_ties_order_independent(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    char da[600], db[600];
    fx_path(f, "a", da, sizeof(da), true);
    fx_path(f, "b", db, sizeof(db), true);
    uint64_t *v = calloc(TIE_KEYS, sizeof(uint64_t));
    f->buf = v;
    for (uint32_t i = 0; i < TIE_KEYS; i++)
        v[i] = next_ver();
    rk_storage *a = open_ok(da, &o, NULL), *b = open_ok(db, &o, NULL);
    for (uint32_t i = 0; i < TIE_KEYS; i++) {
        put_tie(a, i, v[i], false);
        put_tie(b, i, v[i], true);
    }
    assert_rc(rk_storage_commit(a), 0);
    assert_rc(rk_storage_commit(b), 0);

    struct rk_storage_iter ia;
    struct rk_record ra, rb;
    rk_storage_iter_init(&ia, -1, true);
    int n = 0;
    while (rk_storage_iter_next(a, &ia, &ra) == 1) { /* record by record */
        assert_rc(rk_storage_get(b, ra.key, ra.klen, RK_GET_TOMBSTONES, &rb), 0);
        assert_int_equal(rb.version, ra.version);
        assert_int_equal(rb.tombstone, ra.tombstone);
        assert_int_equal(rb.vlen, ra.vlen);
        assert_memory_equal(rb.val, ra.val, ra.vlen);
        n++;
    }
    assert_int_equal(n, TIE_KEYS);
    check_ties(a, v);
    check_ties(b, v);
    a = reopen_both_ways(a, da, &o, check_ties, v);
    b = reopen_both_ways(b, db, &o, check_ties, v);
    assert_rc(rk_storage_close(a), 0);
    assert_rc(rk_storage_close(b), 0);
    f->ok = true;
}

static void check_tomb_ties(rk_storage *s, void *arg)
{
    const uint64_t *v = arg;
    struct rk_record r;
    get_tombstone(s, "k1", 2, *v, &r);
    get_tombstone(s, "k2", 2, *v, &r);
}

/* A delete wins a tie with a value, either way round; a delete of an equal
 * version is the same delete again. */
static void test_equal_version_tombstone_wins(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    uint64_t v = next_ver(), cur = 0;
    struct rk_record r;

    assert_rc(put_str(s, "k1", "value", v, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_del(s, "k1", 2, 1, v, NULL), 0);
    get_tombstone(s, "k1", 2, v, &r);
    assert_rc(rk_storage_del(s, "k1", 2, 1, v, &cur), RK_ESTALE);
    assert_int_equal(cur, v);
    assert_rc(put_str(s, "k1", "value", v, NULL), RK_ESTALE);

    assert_rc(rk_storage_del(s, "k2", 2, 1, v, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    cur = 0;
    assert_rc(put_str(s, "k2", "value", v, &cur), RK_ESTALE);
    assert_int_equal(cur, v);
    check_tomb_ties(s, &v);
    stats_with(s, 0, 2);

    s = reopen_both_ways(s, f->dir, &o, check_tomb_ties, &v);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* A tie needs the stored record; when its block fails its checksum that
 * copy is lost here, and a put at the same version replaces it: read
 * repair and anti-entropy rewrite a damaged record this way. Other
 * versions need no read. */
static void test_equal_version_unreadable_record(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    uint64_t v0 = next_ver(), v = next_ver(), v2 = next_ver(), cur = 0;
    char val[200];
    tu_json(val, sizeof(val) - 1, 7);
    val[sizeof(val) - 1] = 0;
    assert_rc(put_str(s, "k", val, v, NULL), 0);
    assert_rc(rk_storage_close(s), 0);

    struct tu_seg seg[4];
    struct tu_block blk[4];
    assert_int_equal(tu_segments(f->dir, seg, 4), 1);
    assert_int_equal(tu_blocks(seg[0].path, blk, 4), 1);
    assert_rc(tu_flip_bit(seg[0].path, blk[0].off + TU_BLOCK_HEADER + blk[0].stored_len / 2, 2), 0);
    s = open_ok(f->dir, &o, NULL); /* through the index file: the block is not read */
    struct rk_record r;
    assert_rc(rk_storage_get(s, "k", 1, 0, &r), RK_ECORRUPT);

    assert_rc(put_str(s, "k", val, v, &cur), 0); /* the repair: same version, same value */
    assert_int_equal(rk_storage_staged(s), 1);
    assert_rc(rk_storage_commit(s), 0);
    get_str(s, "k", val, v);
    assert_rc(put_str(s, "k", "older", v0, &cur), RK_ESTALE);
    assert_int_equal(cur, v);
    assert_rc(put_str(s, "k", "newer", v2, NULL), 0);
    get_str(s, "k", "newer", v2);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

static void test_ttl_with_fake_clock(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    uint64_t t0 = now_ms;
    struct rk_record r;

    assert_rc(put_raw(s, "short", 5, "s", 1, next_ver(), t0 + 1000, 0, NULL), 0);
    assert_rc(put_raw(s, "long", 4, "l", 1, next_ver(), t0 + 5000, 0, NULL), 0);
    assert_rc(put_raw(s, "forever", 7, "f", 1, next_ver(), 0, 0, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);

    assert_rc(rk_storage_get(s, "short", 5, 0, &r), 0);
    assert_int_equal(r.expiry_ms, t0 + 1000);
    now_ms = t0 + 999;
    assert_rc(rk_storage_get(s, "short", 5, 0, &r), 0);
    now_ms = t0 + 1001;
    assert_rc(rk_storage_get(s, "short", 5, 0, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, "short", 5, RK_GET_TOMBSTONES, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, "long", 4, 0, &r), 0);
    assert_rc(rk_storage_get(s, "forever", 7, 0, &r), 0);

    /* iteration skips the expired record */
    assert_int_equal(iter_count(s, "short", 5), 2);
    assert_rc(rk_storage_close(s), 0);

    /* still expired after a reopen; the clock, not the open, decides */
    s = open_ok(f->dir, &o, NULL);
    assert_rc(rk_storage_get(s, "short", 5, 0, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, "long", 4, 0, &r), 0);
    now_ms = t0 + 5001;
    assert_rc(rk_storage_get(s, "long", 4, 0, &r), RK_ENOTFOUND);
    now_ms = t0 + 100ull * 365 * 24 * 3600 * 1000;
    assert_rc(rk_storage_get(s, "forever", 7, 0, &r), 0);
    /* a newer put over an expired key is readable */
    assert_rc(put_raw(s, "short", 5, "again", 5, next_ver(), 0, 0, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_get(s, "short", 5, 0, &r), 0);
    assert_memory_equal(r.val, "again", 5);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* ---- binary keys, empty values, limits ---- */

struct bin {
    const char *key;
    uint32_t klen;
    const char *val;
    uint32_t vlen;
};

static void check_bins(rk_storage *s, const struct bin *b, int n, const unsigned char *big)
{
    struct rk_record r;
    for (int i = 0; i < n; i++) {
        int rc = rk_storage_get(s, b[i].key, b[i].klen, 0, &r);
        if (rc != 0)
            fail_msg("binary key #%d: get = %d (%s)", i, rc, rk_strerror(rc));
        assert_int_equal(r.klen, b[i].klen);
        assert_memory_equal(r.key, b[i].key, b[i].klen);
        assert_int_equal(r.vlen, b[i].vlen);
        if (b[i].vlen)
            assert_memory_equal(r.val, b[i].val, b[i].vlen);
    }
    assert_rc(rk_storage_get(s, big, 256, 0, &r), 0);
    assert_int_equal(r.klen, 256);
    assert_memory_equal(r.key, big, 256);
    assert_int_equal(r.vlen, 0);
    assert_rc(rk_storage_get(s, "a\0d", 3, 0, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, "a\0b\0", 4, 0, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, big, 255, 0, &r), RK_ENOTFOUND);
}

static void test_binary_keys_and_empty_values(void **state)
{
    struct fx *f = *state;
    static const struct bin b[] = {
        {"a", 1, "plain a", 7},    {"a\0", 2, "a-nul", 5}, {"a\0b", 3, "", 0},
        {"a\0c", 3, "x\0y", 3},    {"\0", 1, "", 0},       {"\0\0\0", 3, "three nuls", 10},
        {"b\xff\x80", 3, "\0", 1},
    };
    const int nb = (int)(sizeof(b) / sizeof(b[0]));
    unsigned char big[256];
    for (int i = 0; i < 256; i++)
        big[i] = (unsigned char)i;

    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    for (int i = 0; i < nb; i++)
        assert_rc(put_raw(s, b[i].key, b[i].klen, b[i].val, b[i].vlen, next_ver(), 0, 0, NULL), 0);
    assert_rc(put_raw(s, big, 256, "", 0, next_ver(), 0, 0, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    check_bins(s, b, nb, big);
    assert_int_equal(iter_count(s, NULL, 0), nb + 1);
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    check_bins(s, b, nb, big);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

static void test_limits(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.max_key_size = 64;
    o.max_value_size = 4096;
    rk_storage *s = open_ok(f->dir, &o, NULL);
    char key[100], val[5000];
    memset(key, 'k', sizeof(key));
    memset(val, 'v', sizeof(val));

    assert_rc(put_raw(s, "base", 4, "v", 1, next_ver(), 0, 0, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    struct rk_storage_stats st0, st1;
    rk_storage_stats(s, &st0);
    uint64_t digest = tu_dir_digest(f->dir);

    assert_rc(put_raw(s, key, 65, "v", 1, next_ver(), 0, 0, NULL), RK_ETOOLARGE);
    assert_rc(put_raw(s, key, 10, val, 4097, next_ver(), 0, 0, NULL), RK_ETOOLARGE);
    assert_rc(put_raw(s, key, 65, val, 4097, next_ver(), 0, 0, NULL), RK_ETOOLARGE);
    assert_rc(rk_storage_del(s, key, 65, 0, next_ver(), NULL), RK_ETOOLARGE);
    assert_int_equal(rk_storage_staged(s), 0);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.puts, st0.puts);
    assert_int_equal(st1.keys, st0.keys);
    assert_true(tu_dir_digest(f->dir) == digest);
    struct rk_record r;
    assert_rc(rk_storage_get(s, key, 65, 0, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, key, 10, 0, &r), RK_ENOTFOUND);

    /* exactly at the limits is fine */
    assert_rc(put_raw(s, key, 64, val, 4096, next_ver(), 0, 0, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_get(s, key, 64, 0, &r), 0);
    assert_int_equal(r.vlen, 4096);
    assert_memory_equal(r.val, val, 4096);
    assert_rc(rk_storage_close(s), 0);

    /* Configured limits above the format's hard limits: open refuses them,
     * or clamps them; a key too long for the 16-bit length field is never
     * taken either way. */
    test_opts(&o);
    o.max_key_size = RK_STORAGE_KEY_MAX + 1;
    struct rk_storage_report rep;
    int rc = tu_open(&s, f->dir, &o, &rep);
    if (rc == 0) {
        char *huge = calloc(1, RK_STORAGE_KEY_MAX + 1);
        memset(huge, 'h', RK_STORAGE_KEY_MAX + 1);
        rc = put_raw(s, huge, RK_STORAGE_KEY_MAX + 1, "v", 1, next_ver(), 0, 0, NULL);
        int rc2 = rk_storage_commit(s);
        int rc3 = rk_storage_close(s);
        free(huge);
        if (rc != RK_ETOOLARGE)
            fail_msg("max_key_size %u was accepted at open, and then a %u-byte key was "
                     "taken: put = %d (%s), commit = %d, close = %d",
                     RK_STORAGE_KEY_MAX + 1, RK_STORAGE_KEY_MAX + 1, rc, rk_strerror(rc), rc2, rc3);
    } else {
        assert_rc(rc, RK_EINVAL);
    }
    f->ok = true;
}

/* ---- reopen ---- */

/* Open a store made by build_segmented and check its report (nsegs
 * segments, of which scanned were read block by block and the others
 * loaded from their index files) and its contents. */
static rk_storage *open_segmented(const char *dir, const struct rk_storage_opts *o,
                                  const struct tu_model *m, int nsegs, int scanned,
                                  struct rk_storage_report *rep)
{
    rk_storage *s = open_ok(dir, o, rep);
    assert_int_equal(rep->segments, nsegs);
    assert_int_equal(rep->scanned, scanned);
    assert_int_equal(rep->from_index_files, nsegs - scanned);
    assert_int_equal(rep->keys, tu_live(m, now_ms));
    assert_model(s, m, 0);
    return s;
}

static void test_reopen_after_clean_close(void **state)
{
    struct fx *f = *state;
    struct tu_model m;
    int nsegs;
    build_segmented(f->dir, &m, &nsegs);

    struct rk_storage_opts o;
    seg64_opts(&o);
    struct rk_storage_report rep;
    /* every segment was sealed at close: none is scanned */
    rk_storage *s = open_segmented(f->dir, &o, &m, nsegs, 0, &rep);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.quarantined, 0);
    struct rk_storage_stats st = stats_with(s, tu_live(&m, now_ms), model_tombs(&m));
    assert_true(st.segments >= (uint64_t)nsegs);
    /* and once more, with the segment created by the previous open */
    close_reopen_check(s, f->dir, &o, &m, 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_reopen_without_index_files(void **state)
{
    struct fx *f = *state;
    struct tu_model m;
    int nsegs;
    build_segmented(f->dir, &m, &nsegs);
    assert_int_equal(tu_remove_suffix(f->dir, ".rkh"), nsegs);

    struct rk_storage_opts o;
    seg64_opts(&o);
    struct rk_storage_report rep;
    rk_storage *s = open_segmented(f->dir, &o, &m, nsegs, nsegs, &rep);
    assert_int_equal(rep.torn_bytes, 0);
    close_reopen_check(s, f->dir, &o, &m, 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_reopen_with_corrupt_index_file(void **state)
{
    struct fx *f = *state;
    struct tu_model m;
    int nsegs;
    build_segmented(f->dir, &m, &nsegs);

    /* damage three index files: in the middle, the last byte, the first */
    struct tu_seg segs[256];
    assert_int_equal(tu_segments(f->dir, segs, 256), nsegs);
    const char *h[3] = {segs[nsegs / 2].index_file, segs[0].index_file, segs[nsegs - 1].index_file};
    int64_t sz;
    sz = tu_file_size(h[0]);
    assert_true(sz > 0);
    assert_rc(tu_flip_bit(h[0], (uint64_t)sz / 2, 3), 0);
    sz = tu_file_size(h[1]);
    assert_true(sz > 0);
    assert_rc(tu_flip_bit(h[1], (uint64_t)sz - 1, 0), 0);
    assert_rc(tu_flip_bit(h[2], 0, 7), 0);

    struct rk_storage_opts o;
    seg64_opts(&o);
    struct rk_storage_report rep;
    rk_storage *s = open_segmented(f->dir, &o, &m, nsegs, 3, &rep);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_second_open_is_locked(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    assert_rc(put_raw(s, "k", 1, "v", 1, next_ver(), 0, 0, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);

    rk_storage *s2;
    struct rk_storage_report rep;
    assert_rc(tu_open(&s2, f->dir, &o, &rep), RK_ELOCKED);
    char want[64];
    snprintf(want, sizeof(want), "is locked by pid %ld", (long)getpid());
    if (!strstr(rep.error, want) || !strstr(rep.error, f->dir))
        fail_msg("rep.error \"%s\" should name %s and contain \"%s\"", rep.error, f->dir, want);

    /* the failed open did not disturb the owner */
    struct rk_record r;
    assert_rc(rk_storage_get(s, "k", 1, 0, &r), 0);
    assert_rc(put_raw(s, "k2", 2, "v", 1, next_ver(), 0, 0, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    assert_rc(rk_storage_get(s, "k2", 2, 0, &r), 0);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* ---- iteration ---- */

static void iterate_and_check(rk_storage *s, const struct tu_model *m, int32_t partition,
                              bool values)
{
    uint8_t *seen = calloc(m->n, 1);
    struct rk_storage_iter it;
    struct rk_record r;
    rk_storage_iter_init(&it, partition, values);
    int rc;
    uint32_t n = 0;
    static char val[TU_VAL_CAP];
    while ((rc = rk_storage_iter_next(s, &it, &r)) == 1) {
        char key[TU_KEY_CAP + 1];
        uint32_t id;
        assert_true(r.klen < sizeof(key));
        memcpy(key, r.key, r.klen);
        key[r.klen] = '\0';
        if (sscanf(key, "key-%" SCNu32, &id) != 1 || id >= m->n)
            fail_msg("iteration returned unknown key \"%s\"", key);
        if (seen[id]++)
            fail_msg("iteration returned %s twice", key);
        const struct tu_kv *kv = &m->kv[id];
        if (!kv->present || (kv->expiry && kv->expiry < now_ms))
            fail_msg("iteration returned %s, which is absent or expired", key);
        if (partition >= 0)
            assert_int_equal(r.partition, partition);
        assert_int_equal(r.partition, id % m->partitions);
        assert_int_equal(r.version, kv->version);
        assert_int_equal(r.tombstone, kv->tomb);
        if (values && !kv->tomb) {
            uint32_t vlen = tu_val(m, val, id, kv->version);
            assert_int_equal(r.vlen, vlen);
            assert_memory_equal(r.val, val, vlen);
        }
        n++;
    }
    assert_rc(rc, 0);
    assert_rc(rk_storage_iter_next(s, &it, &r), 0); /* stays at the end */
    for (uint32_t id = 0; id < m->n; id++) {
        const struct tu_kv *kv = &m->kv[id];
        bool want = kv->present && !(kv->expiry && kv->expiry < now_ms) &&
                    (partition < 0 || id % m->partitions == (uint32_t)partition);
        if (want && !seen[id])
            fail_msg("iteration (partition %d) missed key-%07u", partition, id);
    }
    free(seen);
}

/* Per-partition keys and bytes (rk_storage_partition_size) equal the model's
 * live keys and record sizes in each partition: after puts, overwrites and
 * deletes, and again after a reopen, which rebuilds them from recovery. */
static void check_partition_sizes(rk_storage *s, const struct tu_model *m)
{
    static char val[TU_VAL_CAP];
    uint64_t keys = 0, bytes = 0;
    for (uint32_t p = 0; p < m->partitions; p++) {
        uint64_t want_k = 0, want_b = 0, k, b;
        for (uint32_t id = p; id < m->n; id += m->partitions) {
            const struct tu_kv *kv = &m->kv[id];
            if (!kv->present || kv->tomb)
                continue;
            char key[TU_KEY_CAP];
            want_k++;
            want_b += rk_rec_size(tu_key(key, id), tu_val(m, val, id, kv->version));
        }
        rk_storage_partition_size(s, (uint16_t)p, &k, &b);
        assert_int_equal(k, want_k);
        assert_int_equal(b, want_b);
        keys += k;
        bytes += b;
    }
    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(keys, st.keys);
    assert_true(bytes <= st.live_bytes); /* which counts tombstones too */
    uint64_t k, b;
    rk_storage_partition_size(s, (uint16_t)m->partitions, &k, &b); /* unused partition */
    assert_int_equal(k + b, 0);
}

static void test_partition_sizes(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m;
    tu_model_init(&m, 600, 16, 1, 3000);
    fill(s, &m, m.n);
    check_partition_sizes(s, &m);
    assert_rc(rk_storage_close(s), 0);
    s = open_ok(f->dir, &o, NULL);
    check_partition_sizes(s, &m);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_iteration(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    seg64_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m;
    tu_model_init(&m, 600, 8, 50, 1000);
    fill(s, &m, m.n);
    for (uint32_t id = 2; id < m.n; id += 20)
        assert_rc(tu_put(s, &m, id, next_ver(), now_ms + 1000), 0);
    assert_rc(rk_storage_commit(s), 0);
    now_ms += 2000; /* those 30 are expired now */

    iterate_and_check(s, &m, -1, false);
    iterate_and_check(s, &m, -1, true);
    iterate_and_check(s, &m, 3, true);
    iterate_and_check(s, &m, 7, false);

    struct rk_storage_iter it;
    struct rk_record r;
    rk_storage_iter_init(&it, 9, false); /* a partition with no keys */
    assert_rc(rk_storage_iter_next(s, &it, &r), 0);
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    iterate_and_check(s, &m, -1, true);
    iterate_and_check(s, &m, 5, true);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

/* ---- dropping a partition ---- */

/* What the change observer saw of a drop of partition part. */
struct drop_seen {
    uint16_t part;
    uint32_t calls;   /* every call */
    uint32_t removed; /* entries of part removed (old set, new NULL) */
};

static void see_drop(void *arg, const void *key, uint32_t klen, const struct rk_storage_entry *old,
                     const struct rk_storage_entry *new_)
{
    (void)key, (void)klen;
    struct drop_seen *d = arg;
    d->calls++;
    d->removed += old && !new_ && old->partition == d->part;
}

/* Index entries (keys and tombstones) of partition part in m. */
static uint32_t model_entries(const struct tu_model *m, uint32_t part)
{
    uint32_t n = 0;
    for (uint32_t id = part; id < m->n; id += m->partitions)
        n += m->kv[id].present;
    return n;
}

static void test_drop_partition(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m, after;
    tu_model_init(&m, 400, 8, 1, 500);
    fill(s, &m, m.n); /* values, overwrites and tombstones in every partition */
    const uint16_t part = 3;
    struct drop_seen d = {.part = part};
    rk_storage_set_observer(s, see_drop, &d);

    /* A put staged and not committed: refused, nothing dropped. */
    assert_rc(tu_put(s, &m, part, next_ver(), 0), 0);
    d.calls = 0;
    assert_rc((int)rk_storage_drop_partition(s, part), RK_EBUSY);
    assert_int_equal(d.calls, 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_model(s, &m, 0);

    uint32_t entries = model_entries(&m, part);
    assert_true(entries > 0);
    assert_int_equal(rk_storage_drop_partition(s, part), entries);
    assert_int_equal(d.removed, entries); /* once per entry, and nothing else */
    assert_int_equal(d.calls, entries);
    uint64_t keys, bytes;
    rk_storage_partition_size(s, part, &keys, &bytes);
    assert_int_equal(keys + bytes, 0);

    /* Gone from get (tombstones too) and from iteration; the other
     * partitions untouched, sizes included. */
    tu_model_copy(&after, &m);
    for (uint32_t id = part; id < m.n; id += m.partitions) {
        char key[TU_KEY_CAP];
        struct rk_record r;
        assert_rc(rk_storage_get(s, key, tu_key(key, id), RK_GET_TOMBSTONES, &r), RK_ENOTFOUND);
        after.kv[id].present = false;
    }
    assert_model(s, &after, 0);
    check_partition_sizes(s, &after);
    iterate_and_check(s, &after, -1, true);
    iterate_and_check(s, &after, part, false);

    /* Nothing left to drop. */
    d.calls = 0;
    assert_int_equal(rk_storage_drop_partition(s, part), 0);
    assert_int_equal(d.calls, 0);

    /* The reopen: test_drop_partition_records_back_after_reopen. */
    rk_storage_set_observer(s, NULL, NULL);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&after);
    tu_model_free(&m);
    f->ok = true;
}

/* How the records of partition part of m came back after a reopen. */
struct drop_back {
    uint32_t same, older, missing, other;
};

static struct drop_back drop_back_of(rk_storage *s, const struct tu_model *m, uint32_t part)
{
    struct drop_back b = {0};
    for (uint32_t id = part; id < m->n; id += m->partitions) {
        const struct tu_kv *kv = &m->kv[id];
        char key[TU_KEY_CAP];
        struct rk_record r;
        if (!kv->present)
            continue;
        int rc = rk_storage_get(s, key, tu_key(key, id), RK_GET_TOMBSTONES, &r);
        if (rc == RK_ENOTFOUND)
            b.missing++;
        else if (rc == 0 && r.version == kv->version && r.tombstone == kv->tomb)
            b.same++;
        else if (rc == 0 && r.version < kv->version)
            b.older++;
        else
            b.other++;
    }
    return b;
}

/* storage.h: after a drop, close and reopen, records of the partition may
 * be back (segments indexed before the drop, or scanned), some at an older
 * version (a key rewritten after its segment was indexed), never a version
 * that was not written; the other partitions are untouched; and dropping
 * again after the open, as the node does for every partition it does not
 * hold, leaves nothing of it. */
static void test_drop_partition_records_back_after_reopen(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    seg64_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m;
    tu_model_init(&m, 1200, 8, 100, 400);
    const uint16_t part = 5;
    /* Every key, over several sealed segments, indexed (as the node's
     * background steps do); then half of the partition's keys again. */
    uint32_t ops = 0;
    for (uint32_t id = 0; id < m.n; id++) {
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
        commit_every(s, &ops, 50);
    }
    assert_rc(rk_storage_commit(s), 0);
    int rc, steps = 0;
    while ((rc = rk_storage_step(s)) == 1)
        assert_true(++steps < 100000);
    assert_rc(rc, 0);
    for (uint32_t id = part; id < m.n; id += 2 * m.partitions)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    uint32_t entries = model_entries(&m, part);
    assert_int_equal(rk_storage_drop_partition(s, part), entries);
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    struct drop_back b = drop_back_of(s, &m, part);
    print_message("partition %u dropped, closed and reopened: of its %u records %u came back as "
                  "they were, %u at an older version, %u not at all\n",
                  part, entries, b.same, b.older, b.missing);
    assert_int_equal(b.other, 0);
    assert_int_equal(b.same + b.older + b.missing, entries);
    assert_true(b.same + b.older > 0); /* the case the owner's drop after open is for */
    int64_t again = rk_storage_drop_partition(s, part);
    assert_int_equal(again, b.same + b.older);
    for (uint32_t id = part; id < m.n; id += m.partitions)
        m.kv[id].present = false;
    assert_model(s, &m, 0);
    check_partition_sizes(s, &m);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

/* ---- write errors ---- */

static void test_commit_enospc_undoes_batch(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m, staged;
    tu_model_init(&m, 20, 4, 10, 400);
    put_ids(s, &m, 0, 10, 1);
    assert_rc(rk_storage_commit(s), 0);

    /* a batch of overwrites, new keys and a delete; its write fails */
    tu_model_copy(&staged, &m);
    uint64_t vers[20];
    for (uint32_t id = 0; id < 20; id += 2) {
        vers[id] = next_ver();
        assert_rc(tu_put(s, &staged, id, vers[id], 0), 0);
    }
    vers[1] = next_ver();
    assert_rc(tu_del(s, &staged, 1, vers[1]), 0);
    assert_model(s, &staged, 0);
    rk_io_fault_arm(RK_IO_WRITE, 1, ENOSPC);
    assert_rc(rk_storage_commit(s), RK_ENOSPACE);
    rk_io_fault_arm(RK_IO_WRITE, 0, 0);
    assert_int_equal(rk_storage_staged(s), 0);
    assert_model(s, &m, 0); /* the older values are back, new keys absent */
    assert_string_equal(rk_storage_write_error(s), "");

    /* the same versions are not stale: they were never stored */
    tu_model_free(&staged);
    for (uint32_t id = 0; id < 20; id += 2)
        assert_rc(tu_put(s, &m, id, vers[id], 0), 0);
    assert_rc(tu_del(s, &m, 1, vers[1]), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_model(s, &m, 0);
    close_reopen_check(s, f->dir, &o, &m, 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_fsync_error_makes_store_readonly(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.fsync = RK_FSYNC_ALWAYS;
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m, staged;
    tu_model_init(&m, 20, 4, 10, 400);
    put_ids(s, &m, 0, 10, 1);
    assert_rc(rk_storage_commit(s), 0);
    assert_string_equal(rk_storage_write_error(s), "");

    tu_model_copy(&staged, &m);
    put_ids(s, &staged, 0, 20, 3);
    rk_io_fault_arm(RK_IO_SYNC, 1, EIO);
    int rc = rk_storage_commit(s);
    rk_io_fault_arm(RK_IO_SYNC, 0, 0);
    if (rc != RK_EREADONLY && rc != -EIO)
        fail_msg("commit after fsync EIO = %d (%s), want RK_EREADONLY or -EIO", rc,
                 rk_strerror(rc));
    assert_int_equal(rk_storage_staged(s), 0);
    assert_model(s, &m, 0); /* undone; earlier data readable */
    assert_true(strlen(rk_storage_write_error(s)) > 0);

    /* no write is taken any more, even with the fault gone */
    assert_rc(tu_put(s, &m, 15, next_ver(), 0), RK_EREADONLY);
    assert_rc(tu_del(s, &m, 2, next_ver()), RK_EREADONLY);
    assert_int_equal(rk_storage_staged(s), 0);
    assert_model(s, &m, 0);
    rc = rk_storage_commit(s);
    assert_true(rc == 0 || rc == RK_EREADONLY);
    assert_true(strlen(rk_storage_write_error(s)) > 0);
    rk_storage_close(s); /* may report the error; s is freed regardless */

    /* A new open starts clean and has the acknowledged data. The failed
     * batch reached the file before its fsync failed, so each of its keys
     * may hold either version now. */
    s = open_ok(f->dir, &o, NULL);
    assert_string_equal(rk_storage_write_error(s), "");
    for (uint32_t id = 0; id < m.n; id++) {
        char why[1024], why2[1024];
        if (tu_check_key(s, &m, id, now_ms, 0, why, sizeof(why)) != 0 &&
            tu_check_key(s, &staged, id, now_ms, 0, why2, sizeof(why2)) != 0)
            fail_msg("after reopen: %s; nor the failed batch's value: %s", why, why2);
    }
    assert_rc(tu_put(s, &m, 15, next_ver(), 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&staged);
    tu_model_free(&m);
    f->ok = true;
}

/* A real full disk: a child process in its own mount namespace mounts a
 * 1 MiB tmpfs, fills it through the store until commit says RK_ENOSPACE,
 * checks that nothing committed was lost, grows the tmpfs and checks that
 * writes resume. Exit status 0 = pass, 77 = mount not permitted, other =
 * the failing step (described on stderr). */
static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int enter_mount_namespace(void)
{
    if (geteuid() == 0)
        return unshare(CLONE_NEWNS);
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return -1;
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "0 %ld 1", (long)uid);
    if (write_file("/proc/self/uid_map", map) < 0)
        return -1;
    snprintf(map, sizeof(map), "0 %ld 1", (long)gid);
    return write_file("/proc/self/gid_map", map);
}

static void enospc_child(const char *mnt)
{
    if (enter_mount_namespace() < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
        fprintf(stderr, "enospc child: cannot mount a tmpfs: %s\n", strerror(errno));
        _exit(77);
    }
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/data", mnt);
    TU_CHILD_CHECK(mkdir(dir, 0750) == 0, 2, "%s", strerror(errno));

    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 256 << 10;
    rk_storage *s;
    struct rk_storage_report rep;
    int rc = tu_open(&s, dir, &o, &rep);
    TU_CHILD_CHECK(rc == 0, 3, "open: %s: %s", rk_strerror(rc), rep.error);

    struct tu_model m;
    tu_model_init(&m, 20000, 16, 800, 1200);
    uint32_t next = 0, batch = 8;
    for (;;) {
        TU_CHILD_CHECK(next + batch <= m.n, 4, "1 MiB tmpfs never filled after %u puts", next);
        for (uint32_t i = 0; i < batch; i++) {
            rc = tu_put(s, &m, next + i, next_ver(), 0);
            TU_CHILD_CHECK(rc == 0, 5, "put: %s", rk_strerror(rc));
        }
        rc = rk_storage_commit(s);
        if (rc == RK_ENOSPACE)
            break;
        TU_CHILD_CHECK(rc == 0, 6, "commit: %d (%s)", rc, rk_strerror(rc));
        next += batch;
    }
    fprintf(stderr, "enospc child: disk full after %u committed puts\n", next);
    TU_CHILD_CHECK(next > 0, 7, "the first commit already failed");
    TU_CHILD_CHECK(rk_storage_staged(s) == 0, 8, "%u puts still staged", rk_storage_staged(s));
    for (uint32_t i = 0; i < batch; i++)
        m.kv[next + i].present = false; /* the failed batch was undone */
    char why[1024];
    TU_CHILD_CHECK(tu_check(s, &m, now_ms, 0, why, sizeof(why)) == 0, 9, "%s", why);
    TU_CHILD_CHECK(rk_storage_write_error(s)[0] == '\0', 10, "write error \"%s\"",
                   rk_storage_write_error(s));

    /* free space; the failed batch and more go through */
    TU_CHILD_CHECK(mount(NULL, mnt, NULL, MS_REMOUNT, "size=16m") == 0, 11, "remount: %s",
                   strerror(errno));
    for (uint32_t round = 0; round < 20; round++) {
        for (uint32_t i = 0; i < batch; i++) {
            rc = tu_put(s, &m, next + i, next_ver(), 0);
            TU_CHILD_CHECK(rc == 0, 12, "put after remount: %s", rk_strerror(rc));
        }
        rc = rk_storage_commit(s);
        TU_CHILD_CHECK(rc == 0, 13, "commit after remount, round %u: %d (%s)", round, rc,
                       rk_strerror(rc));
        next += batch;
    }
    int steps = 0;
    while ((rc = rk_storage_step(s)) == 1)
        TU_CHILD_CHECK(++steps < 100000, 14, "step never idles");
    TU_CHILD_CHECK(rc == 0, 14, "step: %d (%s)", rc, rk_strerror(rc));
    TU_CHILD_CHECK(tu_check(s, &m, now_ms, 0, why, sizeof(why)) == 0, 15, "%s", why);
    rc = rk_storage_close(s);
    TU_CHILD_CHECK(rc == 0, 16, "close: %s", rk_strerror(rc));
    rc = tu_open(&s, dir, &o, &rep);
    TU_CHILD_CHECK(rc == 0, 17, "reopen: %s: %s", rk_strerror(rc), rep.error);
    TU_CHILD_CHECK(tu_check(s, &m, now_ms, 0, why, sizeof(why)) == 0, 18, "%s", why);
    TU_CHILD_CHECK(rk_storage_close(s) == 0, 19, "close");
    tu_model_free(&m);
    _exit(0);
}

static void test_real_enospc_on_small_tmpfs(void **state)
{
    struct fx *f = *state;
    char mnt[600];
    fx_path(f, "mnt", mnt, sizeof(mnt), true);
    pid_t pid = fx_fork();
    if (pid == 0)
        enospc_child(mnt);
    int status = fx_wait(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        f->ok = true;
        skip();
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("tmpfs ENOSPC child failed: " TU_STATUS_FMT " (see its stderr)",
                 TU_STATUS_ARGS(status));
    f->ok = true;
}

/* ---- stats ---- */

/* The stats of s, after checking the fsyncs and synced puts since st0. */
static struct rk_storage_stats synced_since(rk_storage *s, const struct rk_storage_stats *st0,
                                            uint64_t fsyncs, uint64_t synced_puts)
{
    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(st.fsyncs, st0->fsyncs + fsyncs);
    assert_int_equal(st.synced_puts, st0->synced_puts + synced_puts);
    return st;
}

static void test_group_commit_stats(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.fsync = RK_FSYNC_ALWAYS;
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m;
    tu_model_init(&m, 64, 4, 100, 300);
    struct rk_storage_stats st0;
    rk_storage_stats(s, &st0);
    put_ids(s, &m, 0, 64, 1);
    assert_int_equal(rk_storage_staged(s), 64);
    assert_rc(rk_storage_commit(s), 0);
    struct rk_storage_stats st1 = synced_since(s, &st0, 1, 64);
    assert_int_equal(st1.commits, st0.commits + 1);
    assert_int_equal(st1.puts, st0.puts + 64);
    assert_int_equal(st1.keys, 64);
    assert_true(st1.disk_bytes > st0.disk_bytes);
    assert_true(st1.raw_bytes >= st1.live_bytes);
    assert_true(st1.live_bytes > 0);

    /* an empty commit syncs nothing */
    assert_rc(rk_storage_commit(s), 0);
    struct rk_storage_stats st2 = synced_since(s, &st1, 0, 0);

    /* reads are counted */
    assert_model(s, &m, 0);
    rk_storage_stats(s, &st2);
    assert_true(st2.gets >= st1.gets + 64);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_fsync_interval_and_never(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.fsync = RK_FSYNC_INTERVAL;
    o.fsync_interval_ms = 600000; /* never due during this test */
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m;
    tu_model_init(&m, 30, 4, 10, 200);
    struct rk_storage_stats st0, st1;
    rk_storage_stats(s, &st0);
    assert_true(rk_storage_sync_due_ms(s) == UINT64_MAX); /* nothing unsynced */
    put_ids(s, &m, 0, 10, 1);
    assert_rc(rk_storage_commit(s), 0);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.fsyncs, st0.fsyncs); /* deferred to the timer */
    uint64_t due = rk_storage_sync_due_ms(s);
    assert_true(due > 0 && due <= 600000);
    put_ids(s, &m, 10, 20, 1);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_sync(s), 0);
    st1 = synced_since(s, &st0, 1, 20);
    assert_true(rk_storage_sync_due_ms(s) == UINT64_MAX);
    assert_rc(rk_storage_sync(s), 0); /* nothing to do */
    rk_storage_stats(s, &st0);
    assert_int_equal(st0.fsyncs, st1.fsyncs);
    assert_rc(rk_storage_close(s), 0);

    test_opts(&o);
    o.fsync = RK_FSYNC_NEVER;
    s = open_ok(f->dir, &o, NULL);
    assert_model(s, &m, 0);
    rk_storage_stats(s, &st0);
    put_ids(s, &m, 20, 30, 1);
    assert_rc(rk_storage_commit(s), 0);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.fsyncs, st0.fsyncs);
    assert_true(rk_storage_sync_due_ms(s) == UINT64_MAX);
    close_reopen_check(s, f->dir, &o, &m, 0);
    tu_model_free(&m);
    f->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_round_trip),
        FX_TEST(test_overwrite_newer_wins),
        FX_TEST(test_stale_put_rejected),
        FX_TEST(test_delete_tombstone),
        FX_TEST(test_equal_version_higher_rank_wins),
        FX_TEST(test_equal_version_ties_order_independent),
        FX_TEST(test_equal_version_tombstone_wins),
        FX_TEST(test_equal_version_unreadable_record),
        FX_TEST(test_ttl_with_fake_clock),
        FX_TEST(test_binary_keys_and_empty_values),
        FX_TEST(test_limits),
        FX_TEST(test_reopen_after_clean_close),
        FX_TEST(test_reopen_without_index_files),
        FX_TEST(test_reopen_with_corrupt_index_file),
        FX_TEST(test_second_open_is_locked),
        FX_TEST(test_partition_sizes),
        FX_TEST(test_iteration),
        FX_TEST(test_drop_partition),
        FX_TEST(test_drop_partition_records_back_after_reopen),
        FX_TEST(test_commit_enospc_undoes_batch),
        FX_TEST(test_fsync_error_makes_store_readonly),
        FX_TEST(test_real_enospc_on_small_tmpfs),
        FX_TEST(test_group_commit_stats),
        FX_TEST(test_fsync_interval_and_never),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

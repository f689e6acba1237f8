/* Unit tests of the storage engine's API contract (storage.h): reads and
 * writes, versions, tombstones, TTL, limits, reopen with and without hint
 * files, the data-dir lock, iteration, group commit, and the write-error
 * paths (injected ENOSPC and fsync failures, and a real full tmpfs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

#include "storage.h"
#include "testutil.h"
#include "util/err.h"
#include "util/io.h"

/* ---- fixture: one temp data dir per test, kept when the test fails ---- */

struct fx {
    char dir[512];
    bool ok; /* set as the test's last statement */
};

static uint64_t now_ms;   /* the engine's wall clock (opts.now_ms) */
static uint64_t last_ver; /* last version handed out by next_ver */

static uint64_t fake_now(void)
{
    return now_ms;
}

/* An HLC-like version: wall ms << 16 | logical, strictly increasing. */
static uint64_t next_ver(void)
{
    uint64_t v = now_ms << 16;
    if (v <= last_ver)
        v = last_ver + 1;
    last_ver = v;
    return v;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f || tu_mkdtemp(f->dir, sizeof(f->dir), "storage") < 0)
        return -1;
    now_ms = 1700000000000ull;
    last_ver = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int op = 0; op < RK_IO_NOPS; op++)
        rk_io_fault_arm((enum rk_io_op)op, 0, 0);
    rk_log_set_sink(NULL, NULL);
    if (f->ok)
        tu_rmrf(f->dir);
    else
        fprintf(stderr, "test failed: data dir kept in %s\n", f->dir);
    free(f);
    return 0;
}

static void test_opts(struct rk_storage_opts *o)
{
    rk_storage_opts_default(o);
    o->now_ms = fake_now;
}

static rk_storage *open_ok(const char *dir, const struct rk_storage_opts *o,
                           struct rk_storage_report *rep)
{
    struct rk_storage_report r;
    if (!rep)
        rep = &r;
    memset(rep, 0, sizeof(*rep));
    rk_storage *s = NULL;
    int rc = rk_storage_open(&s, dir, o, rep);
    if (rc != 0)
        fail_msg("open %s = %d (%s): %s", dir, rc, rk_strerror(rc), rep->error);
    assert_non_null(s);
    return s;
}

#define assert_model(s, m, flags)                                                                  \
    do {                                                                                           \
        char why_[1024];                                                                           \
        if (tu_check((s), (m), now_ms, (flags), why_, sizeof(why_)) != 0)                          \
            fail_msg("%s", why_);                                                                  \
    } while (0)

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
    uint32_t ops = 0;
    for (uint32_t id = 0; id < n; id++) {
        assert_rc(tu_put(s, m, id, next_ver(), 0), 0);
        if (++ops % 50 == 0)
            assert_rc(rk_storage_commit(s), 0);
    }
    for (uint32_t id = 0; id < n; id += 3) {
        assert_rc(tu_put(s, m, id, next_ver(), 0), 0);
        if (++ops % 50 == 0)
            assert_rc(rk_storage_commit(s), 0);
    }
    for (uint32_t id = 1; id < n; id += 10) {
        assert_rc(tu_del(s, m, id, next_ver()), 0);
        if (++ops % 50 == 0)
            assert_rc(rk_storage_commit(s), 0);
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

/* A store of several sealed segments (64 KiB each), closed cleanly. */
static void build_segmented(const char *dir, struct tu_model *m, int *nsegs)
{
    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 64 << 10;
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

    for (uint32_t id = 0; id < m.n; id++)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    assert_int_equal(rk_storage_staged(s), 200);
    assert_model(s, &m, 0); /* staged puts are visible at once */
    assert_rc(rk_storage_commit(s), 0);
    assert_int_equal(rk_storage_staged(s), 0);
    assert_model(s, &m, 0);

    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(st.keys, 200);
    assert_int_equal(st.puts, 200);
    assert_int_equal(st.tombstones, 0);

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

    for (uint32_t id = 0; id < m.n; id++)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    /* a newer version in a later commit */
    for (uint32_t id = 0; id < m.n; id += 2)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
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
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
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

    uint64_t cur = 0;
    assert_rc(put_raw(s, "k", 1, "first", 5, v1, 0, 3, &cur), RK_ESTALE);
    assert_int_equal(cur, v2);
    cur = 0;
    assert_rc(put_raw(s, "k", 1, "other", 5, v2, 0, 3, &cur), RK_ESTALE); /* equal version */
    assert_int_equal(cur, v2);
    cur = 0;
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
    cur = 0;
    assert_rc(put_raw(s, "k", 1, "again", 5, v3, 0, 3, &cur), RK_ESTALE);
    assert_int_equal(cur, v3);
    assert_rc(rk_storage_close(s), 0);

    /* and versions survive a reopen */
    s = open_ok(f->dir, &o, NULL);
    cur = 0;
    assert_rc(put_raw(s, "k", 1, "second", 6, v2, 0, 3, &cur), RK_ESTALE);
    assert_int_equal(cur, v3);
    assert_rc(rk_storage_get(s, "k", 1, 0, &r), 0);
    assert_int_equal(r.version, v3);
    assert_memory_equal(r.val, "third", 5);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
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
    assert_rc(rk_storage_get(s, "doomed", 6, 0, &r), RK_ENOTFOUND);
    memset(&r, 0, sizeof(r));
    assert_rc(rk_storage_get(s, "doomed", 6, RK_GET_TOMBSTONES, &r), 0);
    assert_true(r.tombstone);
    assert_int_equal(r.version, v3);
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
    assert_rc(rk_storage_get(s, "never", 5, 0, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, "never", 5, RK_GET_TOMBSTONES, &r), 0);
    assert_true(r.tombstone);
    assert_int_equal(r.version, v2);

    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.tombstones, 2);
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    assert_rc(rk_storage_get(s, "doomed", 6, 0, &r), RK_ENOTFOUND);
    assert_rc(rk_storage_get(s, "doomed", 6, RK_GET_TOMBSTONES, &r), 0);
    assert_true(r.tombstone);
    assert_int_equal(r.version, v3);
    /* a newer put brings the key back */
    assert_rc(put_raw(s, "doomed", 6, "reborn", 6, v4, 0, 7, NULL), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_get(s, "doomed", 6, 0, &r), 0);
    assert_false(r.tombstone);
    assert_int_equal(r.version, v4);
    assert_memory_equal(r.val, "reborn", 6);
    rk_storage_stats(s, &st);
    assert_int_equal(st.keys, 1);
    assert_int_equal(st.tombstones, 1);
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
    struct rk_storage_iter it;
    rk_storage_iter_init(&it, -1, true);
    int n = 0, rc;
    while ((rc = rk_storage_iter_next(s, &it, &r)) == 1) {
        assert_false(r.klen == 5 && memcmp(r.key, "short", 5) == 0);
        n++;
    }
    assert_rc(rc, 0);
    assert_int_equal(n, 2);
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

    struct rk_storage_iter it;
    struct rk_record r;
    rk_storage_iter_init(&it, -1, true);
    int n = 0, rc;
    while ((rc = rk_storage_iter_next(s, &it, &r)) == 1)
        n++;
    assert_rc(rc, 0);
    assert_int_equal(n, nb + 1);
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
    s = NULL;
    int rc = rk_storage_open(&s, f->dir, &o, &rep);
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

static void test_reopen_after_clean_close(void **state)
{
    struct fx *f = *state;
    struct tu_model m;
    int nsegs;
    build_segmented(f->dir, &m, &nsegs);

    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 64 << 10;
    struct rk_storage_report rep;
    rk_storage *s = open_ok(f->dir, &o, &rep);
    assert_int_equal(rep.segments, nsegs);
    assert_int_equal(rep.from_hints, nsegs); /* every segment was sealed at close */
    assert_int_equal(rep.scanned, 0);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(rep.keys, tu_live(&m, now_ms));
    assert_model(s, &m, 0);
    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(st.keys, tu_live(&m, now_ms));
    assert_int_equal(st.tombstones, model_tombs(&m));
    assert_true(st.segments >= (uint64_t)nsegs);
    assert_rc(rk_storage_close(s), 0);

    /* and once more, with the segment created by the previous open */
    s = open_ok(f->dir, &o, &rep);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_reopen_without_hint_files(void **state)
{
    struct fx *f = *state;
    struct tu_model m;
    int nsegs;
    build_segmented(f->dir, &m, &nsegs);
    assert_int_equal(tu_remove_suffix(f->dir, ".rkh"), nsegs);

    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 64 << 10;
    struct rk_storage_report rep;
    rk_storage *s = open_ok(f->dir, &o, &rep);
    assert_int_equal(rep.segments, nsegs);
    assert_int_equal(rep.scanned, nsegs);
    assert_int_equal(rep.from_hints, 0);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.keys, tu_live(&m, now_ms));
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, &rep);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_reopen_with_corrupt_hint_file(void **state)
{
    struct fx *f = *state;
    struct tu_model m;
    int nsegs;
    build_segmented(f->dir, &m, &nsegs);

    /* damage three hint files: in the middle, the last byte, the first */
    struct tu_seg segs[256];
    assert_int_equal(tu_segments(f->dir, segs, 256), nsegs);
    const char *h[3] = {segs[nsegs / 2].hint, segs[0].hint, segs[nsegs - 1].hint};
    int64_t sz;
    sz = tu_file_size(h[0]);
    assert_true(sz > 0);
    assert_rc(tu_flip_bit(h[0], (uint64_t)sz / 2, 3), 0);
    sz = tu_file_size(h[1]);
    assert_true(sz > 0);
    assert_rc(tu_flip_bit(h[1], (uint64_t)sz - 1, 0), 0);
    assert_rc(tu_flip_bit(h[2], 0, 7), 0);

    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 64 << 10;
    struct rk_storage_report rep;
    rk_storage *s = open_ok(f->dir, &o, &rep);
    assert_int_equal(rep.segments, nsegs);
    assert_int_equal(rep.scanned, 3);
    assert_int_equal(rep.from_hints, nsegs - 3);
    assert_int_equal(rep.keys, tu_live(&m, now_ms));
    assert_model(s, &m, 0);
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

    rk_storage *s2 = NULL;
    struct rk_storage_report rep;
    memset(&rep, 0, sizeof(rep));
    assert_rc(rk_storage_open(&s2, f->dir, &o, &rep), RK_ELOCKED);
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

static void test_iteration(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 64 << 10;
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

/* ---- write errors ---- */

static void test_commit_enospc_undoes_batch(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m, staged;
    tu_model_init(&m, 20, 4, 10, 400);
    for (uint32_t id = 0; id < 10; id++)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
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
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);
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
    for (uint32_t id = 0; id < 10; id++)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_string_equal(rk_storage_write_error(s), "");

    tu_model_copy(&staged, &m);
    for (uint32_t id = 0; id < 20; id += 3)
        assert_rc(tu_put(s, &staged, id, next_ver(), 0), 0);
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
#define CHILD_CHECK(cond, code, ...)                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "enospc child: step %d failed: %s: ", code, #cond);                    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            _exit(code);                                                                           \
        }                                                                                          \
    } while (0)

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
    CHILD_CHECK(mkdir(dir, 0750) == 0, 2, "%s", strerror(errno));

    struct rk_storage_opts o;
    test_opts(&o);
    o.segment_size = 256 << 10;
    rk_storage *s = NULL;
    struct rk_storage_report rep;
    int rc = rk_storage_open(&s, dir, &o, &rep);
    CHILD_CHECK(rc == 0, 3, "open: %s: %s", rk_strerror(rc), rep.error);

    struct tu_model m;
    tu_model_init(&m, 20000, 16, 800, 1200);
    uint32_t next = 0, batch = 8;
    for (;;) {
        CHILD_CHECK(next + batch <= m.n, 4, "1 MiB tmpfs never filled after %u puts", next);
        for (uint32_t i = 0; i < batch; i++) {
            rc = tu_put(s, &m, next + i, next_ver(), 0);
            CHILD_CHECK(rc == 0, 5, "put: %s", rk_strerror(rc));
        }
        rc = rk_storage_commit(s);
        if (rc == RK_ENOSPACE)
            break;
        CHILD_CHECK(rc == 0, 6, "commit: %d (%s)", rc, rk_strerror(rc));
        next += batch;
    }
    fprintf(stderr, "enospc child: disk full after %u committed puts\n", next);
    CHILD_CHECK(next > 0, 7, "the first commit already failed");
    CHILD_CHECK(rk_storage_staged(s) == 0, 8, "%u puts still staged", rk_storage_staged(s));
    for (uint32_t i = 0; i < batch; i++)
        m.kv[next + i].present = false; /* the failed batch was undone */
    char why[1024];
    CHILD_CHECK(tu_check(s, &m, now_ms, 0, why, sizeof(why)) == 0, 9, "%s", why);
    CHILD_CHECK(rk_storage_write_error(s)[0] == '\0', 10, "write error \"%s\"",
                rk_storage_write_error(s));

    /* free space; the failed batch and more go through */
    CHILD_CHECK(mount(NULL, mnt, NULL, MS_REMOUNT, "size=16m") == 0, 11, "remount: %s",
                strerror(errno));
    for (uint32_t round = 0; round < 20; round++) {
        for (uint32_t i = 0; i < batch; i++) {
            rc = tu_put(s, &m, next + i, next_ver(), 0);
            CHILD_CHECK(rc == 0, 12, "put after remount: %s", rk_strerror(rc));
        }
        rc = rk_storage_commit(s);
        CHILD_CHECK(rc == 0, 13, "commit after remount, round %u: %d (%s)", round, rc,
                    rk_strerror(rc));
        next += batch;
    }
    int steps = 0;
    while ((rc = rk_storage_step(s)) == 1)
        CHILD_CHECK(++steps < 100000, 14, "step never idles");
    CHILD_CHECK(rc == 0, 14, "step: %d (%s)", rc, rk_strerror(rc));
    CHILD_CHECK(tu_check(s, &m, now_ms, 0, why, sizeof(why)) == 0, 15, "%s", why);
    rc = rk_storage_close(s);
    CHILD_CHECK(rc == 0, 16, "close: %s", rk_strerror(rc));
    rc = rk_storage_open(&s, dir, &o, &rep);
    CHILD_CHECK(rc == 0, 17, "reopen: %s: %s", rk_strerror(rc), rep.error);
    CHILD_CHECK(tu_check(s, &m, now_ms, 0, why, sizeof(why)) == 0, 18, "%s", why);
    CHILD_CHECK(rk_storage_close(s) == 0, 19, "close");
    tu_model_free(&m);
    _exit(0);
}

static void test_real_enospc_on_small_tmpfs(void **state)
{
    struct fx *f = *state;
    char mnt[600];
    snprintf(mnt, sizeof(mnt), "%s/mnt", f->dir);
    assert_int_equal(mkdir(mnt, 0750), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        enospc_child(mnt);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        f->ok = true;
        skip();
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("tmpfs ENOSPC child failed: %s %d (see its stderr)",
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    f->ok = true;
}

/* ---- stats ---- */

static void test_group_commit_stats(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    test_opts(&o);
    o.fsync = RK_FSYNC_ALWAYS;
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct tu_model m;
    tu_model_init(&m, 64, 4, 100, 300);
    struct rk_storage_stats st0, st1;
    rk_storage_stats(s, &st0);
    for (uint32_t id = 0; id < 64; id++)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    assert_int_equal(rk_storage_staged(s), 64);
    assert_rc(rk_storage_commit(s), 0);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.fsyncs, st0.fsyncs + 1);
    assert_int_equal(st1.synced_puts, st0.synced_puts + 64);
    assert_int_equal(st1.commits, st0.commits + 1);
    assert_int_equal(st1.puts, st0.puts + 64);
    assert_int_equal(st1.keys, 64);
    assert_true(st1.disk_bytes > st0.disk_bytes);
    assert_true(st1.raw_bytes >= st1.live_bytes);
    assert_true(st1.live_bytes > 0);

    /* an empty commit syncs nothing */
    assert_rc(rk_storage_commit(s), 0);
    struct rk_storage_stats st2;
    rk_storage_stats(s, &st2);
    assert_int_equal(st2.fsyncs, st1.fsyncs);
    assert_int_equal(st2.synced_puts, st1.synced_puts);

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
    for (uint32_t id = 0; id < 10; id++)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.fsyncs, st0.fsyncs); /* deferred to the timer */
    uint64_t due = rk_storage_sync_due_ms(s);
    assert_true(due > 0 && due <= 600000);
    for (uint32_t id = 10; id < 20; id++)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_sync(s), 0);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.fsyncs, st0.fsyncs + 1);
    assert_int_equal(st1.synced_puts, st0.synced_puts + 20);
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
    for (uint32_t id = 20; id < 30; id++)
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.fsyncs, st0.fsyncs);
    assert_true(rk_storage_sync_due_ms(s) == UINT64_MAX);
    assert_rc(rk_storage_close(s), 0);
    s = open_ok(f->dir, &o, NULL);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_newer_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_put_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_tombstone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_with_fake_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys_and_empty_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_clean_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_without_hint_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_with_corrupt_hint_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_is_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_enospc_undoes_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_error_makes_store_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_enospc_on_small_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_interval_and_never, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

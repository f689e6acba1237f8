/* Merge tests of the storage engine: rk_storage_step() reclaims dead bytes
 * without changing what any key reads, drops tombstones and expired records
 * only past tombstone_grace_ms (on a test-controlled clock) and without
 * resurrecting older values, survives kill -9 at random moments, and keeps
 * the newest values of puts interleaved with its steps, and the winners of
 * equal-version ties put before, during and after it; with a purge
 * watermark (opts.purge_before_ms) a tombstone past the grace period waits
 * for its partition's watermark, held ones cost index walks, not rewrites. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SF_TAG "merge"
#include "storage_fixture.h"

#include "storage/record.h" /* rk_record_rank: which of two equal versions wins */

static void merge_opts(struct rk_storage_opts *o)
{
    test_opts(o);
    o->segment_size = 128 << 10;
}

/* Run background work until idle; returns the number of steps. */
static int step_all(rk_storage *s)
{
    int n = 0, rc;
    while ((rc = rk_storage_step(s)) == 1) {
        if (++n > 200000)
            fail_msg("rk_storage_step still busy after %d steps", n);
    }
    assert_rc(rc, 0);
    return n;
}

static uint64_t seg_file_bytes(const char *dir)
{
    struct tu_seg *segs = calloc(1024, sizeof(*segs));
    int n = tu_segments(dir, segs, 1024);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += (uint64_t)tu_file_size(segs[i].path);
    free(segs);
    return sum;
}

/* 2000 keys; 80% overwritten three times; 5% deleted. Closed. */
static void prepare(const char *dir, struct tu_model *m)
{
    struct rk_storage_opts o;
    merge_opts(&o);
    tu_model_init(m, 2000, 16, 100, 600);
    rk_storage *s = open_ok(dir, &o, NULL);
    uint32_t ops = 0;
    for (uint32_t id = 0; id < m->n; id++) {
        assert_rc(tu_put(s, m, id, next_ver(), 0), 0);
        commit_every(s, &ops, 40);
    }
    for (int round = 0; round < 3; round++) {
        for (uint32_t id = 0; id < m->n; id++) {
            if (id % 5 == 0)
                continue;
            assert_rc(tu_put(s, m, id, next_ver(), 0), 0);
            commit_every(s, &ops, 40);
        }
    }
    for (uint32_t id = 1; id < m->n; id += 20) {
        assert_rc(tu_del(s, m, id, next_ver()), 0);
        commit_every(s, &ops, 40);
    }
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_close(s), 0);
}

static void test_merge_reclaims_space(void **state)
{
    struct fx *f = *state;
    struct tu_model m;
    prepare(f->dir, &m);
    struct rk_storage_opts o;
    merge_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct rk_storage_stats st0, st1;
    rk_storage_stats(s, &st0);
    uint64_t files0 = seg_file_bytes(f->dir);
    assert_model(s, &m, 0);
    if (st0.dead_bytes <= st0.live_bytes)
        fail_msg("premise: dead_bytes %" PRIu64 " should exceed live_bytes %" PRIu64
                 " before merging",
                 st0.dead_bytes, st0.live_bytes);

    int steps = step_all(s);
    rk_storage_stats(s, &st1);
    uint64_t files1 = seg_file_bytes(f->dir);
    print_message("merge: %d steps; dead %" PRIu64 " -> %" PRIu64 ", disk %" PRIu64 " -> %" PRIu64
                  ", files %" PRIu64 " -> %" PRIu64 ", segments %" PRIu64 " -> %" PRIu64 "\n",
                  steps, st0.dead_bytes, st1.dead_bytes, st0.disk_bytes, st1.disk_bytes, files0,
                  files1, st0.segments, st1.segments);
    assert_true(st1.merges > st0.merges);
    assert_true(st1.merged_bytes_in > st1.merged_bytes_out);
    assert_true(st1.dead_bytes < st0.dead_bytes / 2);
    assert_true(st1.disk_bytes < st0.disk_bytes);
    assert_true(files1 < files0);
    assert_int_equal(st1.keys, st0.keys);
    assert_int_equal(st1.tombstones, st0.tombstones); /* within the grace period */
    assert_int_equal(st1.live_bytes, st0.live_bytes);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);

    struct rk_storage_report rep;
    s = open_ok(f->dir, &o, &rep);
    assert_int_equal(rep.keys, tu_live(&m, now_ms));
    assert_model(s, &m, 0);
    step_all(s); /* nothing left worth merging; must stay correct */
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

static void test_merge_drops_old_tombstones_and_expired(void **state)
{
    struct fx *f = *state;
    const uint64_t grace = 10000, ttl = 1000;
    struct rk_storage_opts o;
    merge_opts(&o);
    o.tombstone_grace_ms = grace;
    struct tu_model m;
    tu_model_init(&m, 2000, 16, 100, 600);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    uint32_t ops = 0;

    /* 1: keys 0..999 without expiry */
    for (uint32_t id = 0; id < 1000; id++) {
        assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
        commit_every(s, &ops, 40);
    }
    /* 2: delete a quarter, give another quarter a TTL (over older values
     * that never expire), mixed with scratch keys overwritten in 3 so these
     * segments are mostly dead */
    uint32_t ndel = 0, nexp = 0;
    for (uint32_t id = 0; id < 1000; id++) {
        if (id % 4 == 0) {
            assert_rc(tu_del(s, &m, id, next_ver()), 0);
            ndel++;
        } else if (id % 4 == 1) {
            assert_rc(tu_put(s, &m, id, next_ver(), now_ms + ttl), 0);
            nexp++;
        } else {
            continue;
        }
        for (uint32_t k = 0; k < 2; k++)
            assert_rc(tu_put(s, &m, 1000 + (id / 4) * 2 + k, next_ver(), 0), 0);
        commit_every(s, &ops, 20);
    }
    assert_rc(rk_storage_commit(s), 0);
    /* 3: overwrite the scratch keys and another quarter of 1 */
    for (uint32_t id = 0; id < 2000; id++) {
        if (id >= 1000 || id % 4 == 2) {
            assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
            commit_every(s, &ops, 40);
        }
    }
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_close(s), 0); /* seal everything */

    /* within the grace period a full merge keeps every tombstone and the
     * records that have not expired */
    s = open_ok(f->dir, &o, NULL);
    struct rk_storage_stats st0, st1, st2;
    rk_storage_stats(s, &st0);
    assert_int_equal(st0.tombstones, ndel);
    step_all(s);
    rk_storage_stats(s, &st1);
    assert_int_equal(st1.tombstones, ndel);
    assert_int_equal(st1.keys, st0.keys);
    assert_model(s, &m, 0);
    assert_rc(rk_storage_close(s), 0);

    /* past expiry + grace both go, and nothing older comes back */
    now_ms += ttl + grace + 1000;
    s = open_ok(f->dir, &o, NULL);
    assert_model(s, &m, 0);
    rk_storage_stats(s, &st1);
    step_all(s);
    rk_storage_stats(s, &st2);
    print_message("past grace: tombstones %" PRIu64 " -> %" PRIu64 ", keys %" PRIu64 " -> %" PRIu64
                  " (live %u)\n",
                  st1.tombstones, st2.tombstones, st1.keys, st2.keys, tu_live(&m, now_ms));
    if (st2.tombstones >= st1.tombstones)
        fail_msg("tombstones older than the grace period were not dropped: %" PRIu64 " -> %" PRIu64,
                 st1.tombstones, st2.tombstones);
    if (st2.keys >= st1.keys)
        fail_msg("expired records were not dropped: keys %" PRIu64 " -> %" PRIu64, st1.keys,
                 st2.keys);
    assert_true(st2.keys >= tu_live(&m, now_ms));
    assert_model(s, &m, TU_CHECK_PURGED_OK);
    assert_rc(rk_storage_close(s), 0);

    struct rk_storage_report rep;
    s = open_ok(f->dir, &o, &rep);
    assert_model(s, &m, TU_CHECK_PURGED_OK);
    struct rk_storage_stats st3;
    rk_storage_stats(s, &st3);
    assert_int_equal(st3.tombstones, st2.tombstones);
    step_all(s);
    assert_model(s, &m, TU_CHECK_PURGED_OK);
    assert_rc(rk_storage_close(s), 0);
    tu_model_free(&m);
    f->ok = true;
}

/* A child opens a copy of the prepared store and merges until killed. It
 * writes 'O' once open and 'D' when the merge is done. */
static void merge_child(const char *dir, int wfd)
{
    alarm(60);
    struct rk_storage_opts o;
    merge_opts(&o);
    rk_storage *s;
    struct rk_storage_report rep;
    int rc = tu_open(&s, dir, &o, &rep);
    TU_CHILD_CHECK(rc == 0, 2, "open: %s: %s", rk_strerror(rc), rep.error);
    TU_CHILD_CHECK(write(wfd, "O", 1) == 1, 3, "pipe write: %s", strerror(errno));
    while ((rc = rk_storage_step(s)) == 1) {
    }
    TU_CHILD_CHECK(rc == 0, 4, "step: %d (%s)", rc, rk_strerror(rc));
    TU_CHILD_CHECK(write(wfd, "D", 1) == 1, 5, "pipe write: %s", strerror(errno));
    _exit(0);
}

static void test_kill9_during_merge(void **state)
{
    struct fx *f = *state;
    uint64_t seed = tu_seed("kill9_merge"), rng = seed;
    char data[600], orig[600];
    fx_path(f, "data", data, sizeof(data), false);
    fx_path(f, "orig", orig, sizeof(orig), true);
    struct tu_model m;
    prepare(orig, &m);
    struct rk_storage_opts o;
    merge_opts(&o);

    /* how long a whole merge takes here */
    assert_rc(tu_copy_dir(orig, data), 0);
    rk_storage *s = open_ok(data, &o, NULL);
    uint64_t t0 = tu_mono_us();
    step_all(s);
    uint64_t span = tu_mono_us() - t0 + 500;
    assert_rc(rk_storage_close(s), 0);

    int mid = 0, iters = 0;
    while (mid < 20) {
        if (++iters > 100)
            fail_msg("seed %" PRIu64 ": only %d of %d kills landed during a merge", seed, mid,
                     iters - 1);
        assert_rc(tu_copy_dir(orig, data), 0);
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fx_fork();
        if (pid == 0) {
            close(pfd[0]);
            merge_child(data, pfd[1]);
        }
        close(pfd[1]);
        char c = 0;
        ssize_t n = read(pfd[0], &c, 1);
        uint64_t delay = tu_rand_below(&rng, span);
        if (n == 1)
            tu_usleep(delay);
        kill(pid, SIGKILL);
        int status = fx_wait(pid);
        bool done = false;
        while (read(pfd[0], &c, 1) == 1)
            done |= c == 'D';
        close(pfd[0]);
        if (n != 1 || (WIFEXITED(status) && WEXITSTATUS(status) != 0))
            fail_msg("merge child failed before the kill: " TU_STATUS_FMT, TU_STATUS_ARGS(status));
        if (!done) {
            mid++;
        } else {
            span = span * 3 / 4 + 1; /* finished first: aim earlier */
        }

        char ctx[96];
        snprintf(ctx, sizeof(ctx), "seed %" PRIu64 " kill after %" PRIu64 "us", seed, delay);
        struct rk_storage_report rep;
        s = open_ok_ctx(data, &o, &rep, ctx);
        assert_model_at(s, &m, now_ms, 0, "%s", ctx);
        assert_int_equal(rep.keys, tu_live(&m, now_ms));
        step_all(s); /* finish what the killed merge left */
        assert_model_at(s, &m, now_ms, 0, "%s, merge finished", ctx);
        assert_rc(rk_storage_close(s), 0);
        s = open_ok(data, &o, NULL);
        assert_model_at(s, &m, now_ms, 0, "%s, reopened", ctx);
        assert_rc(rk_storage_close(s), 0);
    }
    print_message("kill9 during merge: %d of %d kills mid-merge (full merge %" PRIu64 "us)\n", mid,
                  iters, span);
    tu_model_free(&m);
    f->ok = true;
}

static void test_puts_interleaved_with_merge(void **state)
{
    struct fx *f = *state;
    uint64_t seed = tu_seed("interleaved"), rng = seed;
    struct tu_model m;
    prepare(f->dir, &m);
    struct rk_storage_opts o;
    merge_opts(&o);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct rk_storage_stats st;

    int rc = 1, i;
    for (i = 0; i < 3000 && (rc == 1 || i < 200); i++) {
        rc = rk_storage_step(s);
        if (rc < 0)
            fail_msg("seed %" PRIu64 " iteration %d: step = %d (%s)", seed, i, rc, rk_strerror(rc));
        for (int k = 0; k < 4; k++) {
            uint32_t id = (uint32_t)tu_rand_below(&rng, m.n);
            if (tu_rand_below(&rng, 8) == 0)
                assert_rc(tu_del(s, &m, id, next_ver()), 0);
            else
                assert_rc(tu_put(s, &m, id, next_ver(), 0), 0);
        }
        if (i % 2 == 0)
            assert_rc(rk_storage_commit(s), 0); /* some steps see staged puts */
        if (i % 25 == 0)
            assert_model_at(s, &m, now_ms, 0, "seed %" PRIu64 " iteration %d (mid-merge)", seed, i);
    }
    rk_storage_stats(s, &st);
    print_message("interleaved: %d iterations, %" PRIu64 " merges\n", i, st.merges);
    assert_true(st.merges > 0);
    assert_rc(rk_storage_commit(s), 0);
    step_all(s);
    assert_model(s, &m, 0);
    close_reopen_check(s, f->dir, &o, &m, 0);
    tu_model_free(&m);
    f->ok = true;
}

/* ---- equal-version ties across merges and reopens ---- */

#define TIE_KEYS 600
#define TIE_VLEN 300

/* Tie key i: two values for one version, lo ranking below hi; the winner
 * is a delete instead of hi when i % 5 == 4. */
static void tie_vals(uint32_t i, char *key, char *lo, char *hi)
{
    snprintf(key, 32, "tie-%u", i);
    tu_json(lo, TIE_VLEN, 2 * (uint64_t)i + 1);
    tu_json(hi, TIE_VLEN, 2 * (uint64_t)i + 2);
    if (rk_record_rank(false, lo, TIE_VLEN, 0) > rk_record_rank(false, hi, TIE_VLEN, 0)) {
        char t[TIE_VLEN];
        memcpy(t, lo, TIE_VLEN);
        memcpy(lo, hi, TIE_VLEN);
        memcpy(hi, t, TIE_VLEN);
    }
}

/* The first (n = 0) or second record of tie key i at version v, then a
 * commit. Odd keys get the winner first, so their second put is refused. */
static void tie_put(rk_storage *s, uint32_t i, uint64_t v, int n)
{
    char key[32], lo[TIE_VLEN], hi[TIE_VLEN];
    tie_vals(i, key, lo, hi);
    bool winner = (n == 0) == (i % 2 == 1);
    struct rk_record r = {.key = key,
                          .klen = (uint32_t)strlen(key),
                          .val = winner ? hi : lo,
                          .vlen = TIE_VLEN,
                          .version = v,
                          .partition = 1,
                          .tombstone = winner && i % 5 == 4};
    assert_rc(rk_storage_put(s, &r, NULL), n == 0 || winner ? 0 : RK_ESTALE);
    assert_rc(rk_storage_commit(s), 0);
}

static void check_ties(rk_storage *s, const uint64_t *v, const char *when)
{
    for (uint32_t i = 0; i < TIE_KEYS; i++) {
        char key[32], lo[TIE_VLEN], hi[TIE_VLEN];
        tie_vals(i, key, lo, hi);
        struct rk_record r = {0};
        int rc = rk_storage_get(s, key, (uint32_t)strlen(key), RK_GET_TOMBSTONES, &r);
        bool is_lo = !r.tombstone && r.vlen == TIE_VLEN && memcmp(r.val, lo, TIE_VLEN) == 0;
        bool is_hi = !r.tombstone && r.vlen == TIE_VLEN && memcmp(r.val, hi, TIE_VLEN) == 0;
        const char *got = r.tombstone ? "a tombstone"
                          : is_lo     ? "the losing value"
                                      : "another value";
        if (rc != 0 || r.version != v[i] || r.tombstone != (i % 5 == 4) || (!r.tombstone && !is_hi))
            fail_msg("%s: %s = %d, version %" PRIu64 " (want %" PRIu64 "), %s", when, key, rc,
                     r.version, v[i], got);
    }
}

/* Close s, reopen through the index files, then by scanning; both must keep
 * every tie's winner. Returns the store, open. */
static rk_storage *reopen_check_ties(rk_storage *s, const char *dir,
                                     const struct rk_storage_opts *o, const uint64_t *v)
{
    assert_rc(rk_storage_close(s), 0);
    s = open_ok(dir, o, NULL);
    check_ties(s, v, "reopened through index files");
    assert_rc(rk_storage_close(s), 0);
    tu_remove_suffix(dir, ".rkh");
    s = open_ok(dir, o, NULL);
    check_ties(s, v, "reopened by scanning");
    return s;
}

/* The first record of every tie sits in small-block segments that a merge
 * repacks; the second arrives before the merge, between its steps (after
 * the copy and before the index moves, after it moves, around the index
 * files of its outputs), and after it. The winner of each tie must hold,
 * then and after reopening: a merge output holds copies as old as its
 * inputs but gets a newer id than the segment that took the puts. */
static void test_equal_version_ties_survive_merge(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    merge_opts(&o);
    uint64_t *v = calloc(TIE_KEYS, sizeof(uint64_t));
    f->buf = v;
    rk_storage *s = open_ok(f->dir, &o, NULL);
    for (uint32_t i = 0; i < TIE_KEYS; i++) {
        v[i] = next_ver();
        tie_put(s, i, v[i], 0); /* one record a block: worth repacking */
    }
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    struct rk_storage_stats st0, st1;
    rk_storage_stats(s, &st0);
    for (uint32_t i = 0; i < TIE_KEYS; i += 3)
        tie_put(s, i, v[i], 1);
    uint32_t next = 1;
    int rc, steps = 0;
    while ((rc = rk_storage_step(s)) == 1) {
        if (++steps > 100000)
            fail_msg("rk_storage_step still busy after %d steps", steps);
        if (next < TIE_KEYS) {
            tie_put(s, next, v[next], 1);
            next += 3;
        }
    }
    assert_rc(rc, 0);
    for (; next < TIE_KEYS; next += 3)
        tie_put(s, next, v[next], 1);
    for (uint32_t i = 2; i < TIE_KEYS; i += 3)
        tie_put(s, i, v[i], 1);
    rk_storage_stats(s, &st1);
    print_message("ties: %d steps, %" PRIu64 " merges\n", steps, st1.merges - st0.merges);
    assert_true(st1.merges > st0.merges);
    check_ties(s, v, "after the merge");

    s = reopen_check_ties(s, f->dir, &o, v);
    step_all(s); /* merge what the second puts left */
    check_ties(s, v, "after a second merge");
    s = reopen_check_ties(s, f->dir, &o, v);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* ---- the purge watermark (opts.purge_before_ms) ---- */

#define WM_PARTS 4
#define WM_KEYS  800

/* What the fake anti-entropy answers per partition, and how often it was
 * asked. */
static uint64_t wm_of[WM_PARTS];
static uint64_t wm_calls;

static uint64_t fake_watermark(void *arg, uint16_t partition)
{
    assert_ptr_equal(arg, wm_of);
    assert_true(partition < WM_PARTS);
    wm_calls++;
    return wm_of[partition];
}

static void wm_set(uint64_t v)
{
    for (int p = 0; p < WM_PARTS; p++)
        wm_of[p] = v;
}

/* Deleted in the second batch: a quarter of the keys, in every partition. */
static bool wm_deleted(uint32_t id)
{
    return (id / WM_PARTS) % 4 == 0;
}

/* Given a TTL of 1 s in the second batch: another quarter. */
static bool wm_expiring(uint32_t id)
{
    return (id / WM_PARTS) % 4 == 1;
}

/* WM_KEYS keys over WM_PARTS partitions; 1 s later a quarter deleted and
 * a quarter rewritten with a 1 s TTL (over older values that never
 * expire), then the rest overwritten so the old segments are dead.
 * Closed, so every segment is sealed. Returns the deletes' wall ms (every
 * tombstone's version is of that ms). */
static uint64_t wm_prepare(const char *dir, const struct rk_storage_opts *o, struct tu_model *m)
{
    tu_model_init(m, WM_KEYS, WM_PARTS, 100, 600);
    rk_storage *s = open_ok(dir, o, NULL);
    uint32_t ops = 0;
    for (uint32_t id = 0; id < WM_KEYS; id++) {
        assert_rc(tu_put(s, m, id, next_ver(), 0), 0);
        commit_every(s, &ops, 40);
    }
    assert_rc(rk_storage_commit(s), 0);
    now_ms += 1000;
    uint64_t t_del = now_ms;
    for (uint32_t id = 0; id < WM_KEYS; id++) {
        if (wm_deleted(id))
            assert_rc(tu_del(s, m, id, next_ver()), 0);
        else if (wm_expiring(id))
            assert_rc(tu_put(s, m, id, next_ver(), now_ms + 1000), 0);
        else
            continue;
        commit_every(s, &ops, 20);
    }
    assert_rc(rk_storage_commit(s), 0);
    assert_true(last_ver >> 16 == t_del); /* one ms of versions: one death time */
    for (uint32_t id = 0; id < WM_KEYS; id++) {
        if (!wm_deleted(id) && !wm_expiring(id)) {
            assert_rc(tu_put(s, m, id, next_ver(), 0), 0);
            commit_every(s, &ops, 40);
        }
    }
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_close(s), 0);
    return t_del;
}

/* Tombstones of the deleted keys still held in partition p (-1: all);
 * fails if a deleted key reads as anything but its tombstone or absent. */
static uint32_t tombstones_in(rk_storage *s, const struct tu_model *m, int p)
{
    uint32_t n = 0;
    for (uint32_t id = 0; id < m->n; id++) {
        if (!wm_deleted(id) || (p >= 0 && id % WM_PARTS != (uint32_t)p))
            continue;
        char key[TU_KEY_CAP];
        struct rk_record r;
        int rc = rk_storage_get(s, key, tu_key(key, id), RK_GET_TOMBSTONES, &r);
        if (rc == RK_ENOTFOUND)
            continue;
        if (rc != 0 || !r.tombstone || r.version != m->kv[id].version)
            fail_msg("%s: get = %d tombstone %d version %" PRIu64 ", want its tombstone %" PRIu64
                     " or nothing (an older value came back?)",
                     key, rc, rc == 0 && r.tombstone, rc == 0 ? r.version : 0, m->kv[id].version);
        n++;
    }
    return n;
}

static void wm_opts(struct rk_storage_opts *o, bool with_watermark)
{
    merge_opts(o);
    o->tombstone_grace_ms = 10000;
    o->purge_before_ms = with_watermark ? fake_watermark : NULL;
    o->purge_arg = with_watermark ? wm_of : NULL;
}

/* A tombstone past the grace period survives merges while it is not older
 * than its partition's watermark, goes once the watermark passes it (per
 * partition, strictly before), and a held one costs index walks, not
 * rewrites. Expired records do not wait for the watermark. */
static void test_watermark_holds_tombstones_past_grace(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    wm_opts(&o, true);
    wm_set(0); /* no replica has exchanged yet */
    uint64_t t_del = wm_prepare(f->dir, &o, &f->m);
    struct tu_model *m = &f->m;
    uint32_t ndel = 0, nexp = 0;
    for (uint32_t id = 0; id < WM_KEYS; id++)
        ndel += wm_deleted(id), nexp += wm_expiring(id);

    /* Within the grace period the watermark alone lets nothing go. */
    wm_set(UINT64_MAX);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    struct rk_storage_stats st;
    step_all(s);
    rk_storage_stats(s, &st);
    assert_int_equal(tombstones_in(s, m, -1), ndel);
    assert_int_equal(st.tombstones_purged, 0);
    assert_int_equal(st.tombstones_held, 0);
    assert_true(st.merges > 0); /* small blocks were repacked: merges ran */

    /* Past the grace period, watermark before the deletes: all held. */
    wm_set(0);
    now_ms = t_del + o.tombstone_grace_ms + 2000; /* past the TTLs' grace too */
    wm_calls = 0;
    step_all(s);
    rk_storage_stats(s, &st);
    print_message("watermark 0: tombstones %" PRIu64 " (held %" PRIu64 "), expired purged %" PRIu64
                  ", watermark asked %" PRIu64 " times\n",
                  st.tombstones, st.tombstones_held, st.expired_purged, wm_calls);
    assert_int_equal(tombstones_in(s, m, -1), ndel);
    assert_int_equal(st.tombstones, ndel);
    assert_int_equal(st.tombstones_held, ndel);
    assert_int_equal(st.tombstones_purged, 0);
    assert_int_equal(st.expired_purged, nexp); /* they do not wait */
    assert_true(wm_calls > 0 && wm_calls <= 64 * (uint64_t)WM_PARTS);
    assert_model(s, m, TU_CHECK_PURGED_OK);

    /* Held, they are not rewritten again and again: nothing more until the
     * recheck, then one look (an index walk) and still no merge. */
    uint64_t merges = st.merges;
    wm_calls = 0;
    now_ms += RK_STORAGE_PURGE_RECHECK_MS / 2;
    assert_int_equal(step_all(s), 0);
    assert_int_equal(wm_calls, 0);
    now_ms += RK_STORAGE_PURGE_RECHECK_MS;
    assert_true(step_all(s) > 0);
    rk_storage_stats(s, &st);
    assert_true(wm_calls > 0);
    assert_int_equal(st.merges, merges);
    assert_int_equal(st.tombstones_held, ndel);

    /* Partitions 0 and 1 exchanged with everyone after the deletes; 2 and 3
     * only at the very ms they were written: not after, so still held. */
    wm_of[0] = wm_of[1] = t_del + 1;
    wm_of[2] = wm_of[3] = t_del;
    now_ms += RK_STORAGE_PURGE_RECHECK_MS;
    step_all(s);
    rk_storage_stats(s, &st);
    uint32_t left[WM_PARTS];
    for (int p = 0; p < WM_PARTS; p++)
        left[p] = tombstones_in(s, m, p);
    print_message("watermark past partitions 0, 1: tombstones left %u %u %u %u, purged %" PRIu64
                  "\n",
                  left[0], left[1], left[2], left[3], st.tombstones_purged);
    assert_int_equal(left[0] + left[1], 0);
    assert_int_equal(left[2] + left[3], ndel / 2);
    assert_int_equal(st.tombstones_purged, ndel / 2);
    assert_int_equal(st.tombstones_held, ndel / 2);
    assert_true(st.merges > merges);
    assert_model(s, m, TU_CHECK_PURGED_OK);

    /* Once it passes them all, every tombstone goes, and after a reopen no
     * older value of a deleted key is back. */
    wm_set(t_del + 1);
    now_ms += RK_STORAGE_PURGE_RECHECK_MS;
    step_all(s);
    rk_storage_stats(s, &st);
    assert_int_equal(tombstones_in(s, m, -1), 0);
    assert_int_equal(st.tombstones, 0);
    assert_int_equal(st.tombstones_purged, ndel);
    assert_int_equal(st.tombstones_held, 0);
    assert_model(s, m, TU_CHECK_PURGED_OK);
    assert_rc(rk_storage_close(s), 0);
    s = open_ok(f->dir, &o, NULL);
    assert_int_equal(tombstones_in(s, m, -1), 0);
    assert_model(s, m, TU_CHECK_PURGED_OK);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* A held tombstone is not forgotten across a restart: the store reopened
 * with the watermark still behind keeps it, and drops it once it passes. */
static void test_watermark_held_across_reopen(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    wm_opts(&o, true);
    wm_set(0);
    uint64_t t_del = wm_prepare(f->dir, &o, &f->m);
    now_ms = t_del + o.tombstone_grace_ms + 2000;
    rk_storage *s = open_ok(f->dir, &o, NULL);
    step_all(s);
    uint32_t ndel = tombstones_in(s, &f->m, -1);
    assert_true(ndel > 0);
    assert_rc(rk_storage_close(s), 0);

    s = open_ok(f->dir, &o, NULL);
    step_all(s);
    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(tombstones_in(s, &f->m, -1), ndel);
    assert_int_equal(st.tombstones_held, ndel);
    wm_set(t_del + 1);
    now_ms += RK_STORAGE_PURGE_RECHECK_MS;
    step_all(s);
    rk_storage_stats(s, &st);
    assert_int_equal(tombstones_in(s, &f->m, -1), 0);
    assert_int_equal(st.tombstones_purged, ndel);
    assert_model(s, &f->m, TU_CHECK_PURGED_OK);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* Without a watermark callback the grace period alone decides. */
static void test_no_watermark_grace_alone_decides(void **state)
{
    struct fx *f = *state;
    struct rk_storage_opts o;
    wm_opts(&o, false);
    uint64_t t_del = wm_prepare(f->dir, &o, &f->m);
    uint32_t ndel = 0;
    for (uint32_t id = 0; id < WM_KEYS; id++)
        ndel += wm_deleted(id);
    now_ms = t_del + o.tombstone_grace_ms - 1; /* one ms short */
    rk_storage *s = open_ok(f->dir, &o, NULL);
    step_all(s);
    assert_int_equal(tombstones_in(s, &f->m, -1), ndel);
    now_ms = t_del + o.tombstone_grace_ms + 2000;
    wm_calls = 0;
    step_all(s);
    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(tombstones_in(s, &f->m, -1), 0);
    assert_int_equal(st.tombstones_purged, ndel);
    assert_int_equal(st.tombstones_held, 0);
    assert_int_equal(wm_calls, 0);
    assert_model(s, &f->m, TU_CHECK_PURGED_OK);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_merge_reclaims_space),
        FX_TEST(test_merge_drops_old_tombstones_and_expired),
        FX_TEST(test_kill9_during_merge),
        FX_TEST(test_puts_interleaved_with_merge),
        FX_TEST(test_equal_version_ties_survive_merge),
        FX_TEST(test_watermark_holds_tombstones_past_grace),
        FX_TEST(test_watermark_held_across_reopen),
        FX_TEST(test_no_watermark_grace_alone_decides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Anti-entropy progress: a round trip keeps everything; every truncation
 * and every bit flip of the file is refused with a warning (a fresh start,
 * never a half-trusted file); marks clear only once every other replica
 * exchanged after them; the tombstone watermark is the oldest start of a
 * completed exchange (ok, every key it decided to move taken); a round in progress is still in
 * progress after a reload; saves are bounded. */
#define SF_TAG "aeprogress"
#include "storage_fixture.h"

#include <errno.h>

#include "cluster/aeprogress.h"
#include "util/fsutil.h"

#define T0    1700000000000ull
#define PARTS 16u

static const char *const all3[] = {"node-1", "node-2", "node-3"};
static const char *const peers2[] = {"node-2", "node-3"};

static struct rk_aeprogress *open_p(const char *dir, uint32_t workers, uint32_t worker)
{
    struct rk_aeprogress *p = NULL;
    assert_rc(rk_aeprogress_open(&p, dir, PARTS, workers, worker), 0);
    assert_non_null(p);
    return p;
}

static void exchange(struct rk_aeprogress *p, uint32_t part, const char *peer, uint64_t start,
                     enum rk_ae_result res, uint64_t pulled)
{
    struct rk_ae_exchange x = {.started_ms = start,
                               .finished_ms = start + 5,
                               .result = res,
                               .leaves_differing = (uint32_t)pulled,
                               .keys_pulled = pulled,
                               .keys_pushed = 1,
                               .bytes = 100 * pulled};
    assert_rc(rk_aeprogress_record(p, part, peer, &x), 0);
}

/* Everything p shows, as one string (malloc'd): summary and each owned partition. */
static char *render(const struct rk_aeprogress *p)
{
    struct rk_jbuf b = {0};
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(p, &s);
    rk_jadd(&b, "{");
    rk_aeprogress_json_summary(&s, T0 + 1000, &b);
    for (uint32_t part = 0; part < PARTS; part++) {
        rk_jadd(&b, ",");
        rk_aeprogress_json_partition(p, part, "node-1", all3, 3, &b);
    }
    rk_jadd(&b, "}");
    assert_false(b.oom);
    return b.p;
}

/* A worker with a round in progress, marks, exchanges; saved. */
static struct rk_aeprogress *sample(const char *dir)
{
    struct rk_aeprogress *p = open_p(dir, 1, 0);
    rk_aeprogress_round_start(p, T0, PARTS);
    exchange(p, 3, "node-2", T0 + 10, RK_AE_OK, 7);
    exchange(p, 3, "node-3", T0 + 20, RK_AE_UNREACHABLE, 0);
    exchange(p, 9, "node-3", T0 + 30, RK_AE_OK, 0);
    assert_rc(rk_aeprogress_mark(p, 5, RK_AE_MARK_HINT | RK_AE_MARK_REQUEST, T0 + 40), 0);
    assert_rc(rk_aeprogress_save(p, T0 + 50), 0);
    return p;
}

static void assert_fresh(const struct rk_aeprogress *p)
{
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(p, &s);
    assert_int_equal(s.round, 0);
    assert_false(s.in_progress);
    assert_int_equal(s.marked, 0);
    assert_int_equal(s.totals.repaired, 0);
    assert_int_equal(rk_aeprogress_marks(p, 5), 0);
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress *p = sample(f->dir);
    char *before = render(p);
    rk_aeprogress_close(p);
    p = open_p(f->dir, 1, 0);
    char *after = render(p);
    assert_string_equal(before, after);
    assert_non_null(strstr(after, "\"marks\":[\"hint\",\"request\"]"));
    assert_non_null(strstr(after, "\"node\":\"node-3\",\"result\":\"unreachable\""));
    free(before);
    free(after);
    rk_aeprogress_close(p);
    f->ok = true;
}

static void test_missing_file_is_fresh_and_silent(void **state)
{
    struct fx *f = *state;
    struct tu_log l;
    tu_log_capture(&l);
    struct rk_aeprogress *p = open_p(f->dir, 1, 0);
    bool quiet = !l.buf || !strstr(l.buf, "ignoring");
    tu_log_release(&l);
    assert_true(quiet);
    assert_fresh(p);
    assert_false(rk_aeprogress_dirty(p));
    assert_rc(rk_aeprogress_save(p, T0), 0); /* clean: no file written */
    char path[600];
    fx_path(f, RK_AEPROGRESS_FILE, path, sizeof(path), false);
    assert_true(tu_file_size(path) < 0);
    rk_aeprogress_close(p);
    f->ok = true;
}

static void put_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Open with the file holding b[0..n): must be a fresh start and one
 * warning naming the file. */
static void assert_refused(const struct fx *f, const uint8_t *b, size_t n, const char *what)
{
    char path[600];
    fx_path(f, RK_AEPROGRESS_FILE, path, sizeof(path), false);
    put_file(path, b, n);
    struct tu_log l;
    tu_log_capture(&l);
    struct rk_aeprogress *p = open_p(f->dir, 1, 0);
    bool warned = l.buf && strstr(l.buf, "ignoring") && strstr(l.buf, RK_AEPROGRESS_FILE) &&
                  strchr(l.buf, '\n') == strrchr(l.buf, '\n');
    tu_log_release(&l);
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(p, &s);
    rk_aeprogress_close(p);
    if (!warned || s.round != 0 || s.marked != 0 || s.totals.repaired != 0)
        fail_msg("%s: not refused (round %llu, marked %u)", what, (unsigned long long)s.round,
                 s.marked);
}

static void test_every_truncation_and_bit_flip_refused(void **state)
{
    struct fx *f = *state;
    rk_aeprogress_close(sample(f->dir));
    char path[600], what[64];
    fx_path(f, RK_AEPROGRESS_FILE, path, sizeof(path), false);
    uint8_t good[4096];
    size_t n = 0;
    assert_rc(rk_fs_read_file(path, good, sizeof(good), &n), 0);
    assert_true(n > 152);
    for (size_t len = 0; len < n; len++) {
        snprintf(what, sizeof(what), "truncated to %zu of %zu", len, n);
        assert_refused(f, good, len, what);
    }
    uint8_t bad[4096];
    for (size_t bit = 0; bit < n * 8; bit++) {
        memcpy(bad, good, n);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        snprintf(what, sizeof(what), "bit %zu flipped", bit);
        assert_refused(f, bad, n, what);
    }
    memcpy(bad, good, n);
    bad[n] = 0; /* one byte too many */
    assert_refused(f, bad, n + 1, "a byte appended");
    f->ok = true;
}

static void test_layout_mismatch_refused(void **state)
{
    struct fx *f = *state;
    rk_aeprogress_close(sample(f->dir));
    struct tu_log l;
    tu_log_capture(&l);
    struct rk_aeprogress *p = open_p(f->dir, 2, 1); /* written by worker 0 of 1 */
    bool named = l.buf && strstr(l.buf, "worker 0 of 1");
    tu_log_release(&l);
    assert_true(named);
    assert_fresh(p);
    rk_aeprogress_close(p);
    f->ok = true;
}

static void test_marks_clear_only_after_every_peer(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress *p = open_p(f->dir, 1, 0);
    exchange(p, 4, "node-2", T0, RK_AE_OK, 0); /* before the mark: does not count */
    assert_rc(rk_aeprogress_mark(p, 4, RK_AE_MARK_SEGMENT, T0 + 100), 0);
    assert_false(rk_aeprogress_clear(p, 4, peers2, 2));
    exchange(p, 4, "node-2", T0 + 100, RK_AE_OK, 0); /* started at the mark: may miss it */
    assert_false(rk_aeprogress_clear(p, 4, peers2, 2));
    exchange(p, 4, "node-2", T0 + 200, RK_AE_OK, 0);
    exchange(p, 4, "node-3", T0 + 210, RK_AE_UNREACHABLE, 0);
    assert_false(rk_aeprogress_clear(p, 4, peers2, 2));
    assert_int_equal(rk_aeprogress_marks(p, 4), RK_AE_MARK_SEGMENT);
    exchange(p, 4, "node-3", T0 + 300, RK_AE_OK, 0);
    /* marked again before clearing: the new mark needs new exchanges */
    assert_rc(rk_aeprogress_mark(p, 4, RK_AE_MARK_CORRUPT, T0 + 400), 0);
    assert_false(rk_aeprogress_clear(p, 4, peers2, 2));
    exchange(p, 4, "node-2", T0 + 500, RK_AE_OK, 0);
    exchange(p, 4, "node-3", T0 + 500, RK_AE_OK, 0);
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(p, &s);
    assert_int_equal(s.marked, 1);
    assert_true(rk_aeprogress_clear(p, 4, peers2, 2));
    assert_int_equal(rk_aeprogress_marks(p, 4), 0);
    rk_aeprogress_summary(p, &s);
    assert_int_equal(s.marked, 0);
    assert_true(rk_aeprogress_clear(p, 4, peers2, 2)); /* not marked: nothing to wait for */
    rk_aeprogress_close(p);
    f->ok = true;
}

static void test_watermark(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress *p = open_p(f->dir, 1, 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 0), UINT64_MAX);
    exchange(p, 2, "node-2", T0 + 50, RK_AE_OK, 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), 0); /* node-3 never */
    exchange(p, 2, "node-3", T0 + 20, RK_AE_OK, 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), T0 + 20);
    exchange(p, 2, "node-3", T0 + 90, RK_AE_REFUSED, 0); /* a failure keeps the last success */
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), T0 + 20);
    exchange(p, 2, "node-3", T0 + 95, RK_AE_OK, 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), T0 + 50);
    const char *other[] = {"node-2", "node-4"}; /* a new replica: not exchanged yet */
    assert_int_equal(rk_aeprogress_watermark(p, 2, other, 2), 0);
    rk_aeprogress_close(p);
    f->ok = true;
}

/* An exchange that ended ok but left keys it decided to move untaken (a
 * push of a tombstone refused, a move never sent) has not carried every
 * delete over: it counts for the round, not for the watermark or a mark. */
static void test_incomplete_exchange_does_not_move_the_watermark(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress *p = open_p(f->dir, 1, 0);
    exchange(p, 2, "node-2", T0 + 10, RK_AE_OK, 0);
    exchange(p, 2, "node-3", T0 + 20, RK_AE_OK, 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), T0 + 10);
    assert_rc(rk_aeprogress_mark(p, 2, RK_AE_MARK_HINT, T0 + 30), 0);
    rk_aeprogress_round_start(p, T0 + 35, PARTS);
    struct rk_ae_exchange x = {.started_ms = T0 + 40,
                               .finished_ms = T0 + 45,
                               .result = RK_AE_OK,
                               .keys_pushed = 3,
                               .keys_failed = 1};
    assert_rc(rk_aeprogress_record(p, 2, "node-2", &x), 0);
    x.started_ms = T0 + 50, x.finished_ms = T0 + 55;
    assert_rc(rk_aeprogress_record(p, 2, "node-3", &x), 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), T0 + 10);
    assert_false(rk_aeprogress_clear(p, 2, peers2, 2));
    assert_true(rk_aeprogress_compared(p, 2)); /* the round went on */
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(p, &s);
    assert_int_equal(s.pushed, 6);
    /* Complete ones move it on. */
    x.keys_failed = 0;
    x.started_ms = T0 + 60, x.finished_ms = T0 + 65;
    assert_rc(rk_aeprogress_record(p, 2, "node-2", &x), 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), T0 + 20);
    x.started_ms = T0 + 70, x.finished_ms = T0 + 75;
    assert_rc(rk_aeprogress_record(p, 2, "node-3", &x), 0);
    assert_int_equal(rk_aeprogress_watermark(p, 2, peers2, 2), T0 + 60);
    assert_true(rk_aeprogress_clear(p, 2, peers2, 2));
    rk_aeprogress_close(p);
    f->ok = true;
}

static void test_round_resumes_after_reload(void **state)
{
    struct fx *f = *state;
    rk_aeprogress_close(sample(f->dir));
    struct rk_aeprogress *p = open_p(f->dir, 1, 0);
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(p, &s);
    assert_int_equal(s.round, 1);
    assert_true(s.in_progress);
    assert_int_equal(s.started_ms, T0);
    assert_int_equal(s.compared, 2); /* partitions 3 and 9 */
    assert_int_equal(s.total, PARTS);
    assert_true(rk_aeprogress_compared(p, 3));
    assert_true(rk_aeprogress_compared(p, 9));
    assert_false(rk_aeprogress_compared(p, 5));
    assert_int_equal(s.totals.repaired, 7 + 1 + 1 + 1);
    exchange(p, 5, "node-2", T0 + 60, RK_AE_OK, 0);
    rk_aeprogress_round_finish(p, T0 + 70);
    rk_aeprogress_summary(p, &s);
    assert_false(s.in_progress);
    assert_int_equal(s.totals.rounds, 1);
    assert_false(rk_aeprogress_compared(p, 3)); /* no round running */
    rk_aeprogress_round_start(p, T0 + 80, PARTS);
    rk_aeprogress_summary(p, &s);
    assert_int_equal(s.round, 2);
    assert_int_equal(s.compared, 0);
    assert_int_equal(s.pulled, 0);
    assert_false(rk_aeprogress_compared(p, 3));
    rk_aeprogress_close(p);
    f->ok = true;
}

static void test_saves_are_bounded(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress *p = open_p(f->dir, 1, 0);
    assert_false(rk_aeprogress_save_due(p, T0));
    rk_aeprogress_round_start(p, T0, PARTS); /* a round boundary: at once */
    assert_true(rk_aeprogress_save_due(p, T0));
    assert_rc(rk_aeprogress_save(p, T0), 0);
    exchange(p, 1, "node-2", T0, RK_AE_OK, 3); /* counters: wait for the interval */
    assert_false(rk_aeprogress_save_due(p, T0 + 1));
    assert_false(rk_aeprogress_save_due(p, T0 + RK_AEPROGRESS_SAVE_MS - 1));
    assert_true(rk_aeprogress_save_due(p, T0 + RK_AEPROGRESS_SAVE_MS));
    assert_rc(rk_aeprogress_mark(p, 1, RK_AE_MARK_REQUEST, T0 + 2), 0); /* a mark: at once */
    assert_true(rk_aeprogress_save_due(p, T0 + 2));
    assert_rc(rk_aeprogress_save(p, T0 + 2), 0);
    assert_false(rk_aeprogress_dirty(p));
    rk_aeprogress_close(p);
    f->ok = true;
}

static void test_bad_arguments_refused(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress *p = NULL;
    assert_rc(rk_aeprogress_open(&p, f->dir, 0, 1, 0), RK_EINVAL);
    assert_rc(rk_aeprogress_open(&p, f->dir, PARTS, 2, 2), RK_EINVAL);
    p = open_p(f->dir, 2, 1); /* owns the odd partitions */
    struct rk_ae_exchange x = {.result = RK_AE_OK};
    assert_rc(rk_aeprogress_record(p, 2, "node-2", &x), RK_EINVAL);
    assert_rc(rk_aeprogress_record(p, PARTS + 1, "node-2", &x), RK_EINVAL);
    assert_rc(rk_aeprogress_record(p, 3, "", &x), RK_EINVAL);
    char longid[RK_AEPROGRESS_ID + 1];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_rc(rk_aeprogress_record(p, 3, longid, &x), RK_EINVAL);
    x.result = RK_AE_NEVER;
    assert_rc(rk_aeprogress_record(p, 3, "node-2", &x), RK_EINVAL);
    assert_rc(rk_aeprogress_mark(p, 2, RK_AE_MARK_HINT, T0), RK_EINVAL);
    assert_rc(rk_aeprogress_mark(p, 3, 0, T0), RK_EINVAL);
    assert_rc(rk_aeprogress_mark(p, 3, 0x10, T0), RK_EINVAL);
    assert_false(rk_aeprogress_dirty(p));
    rk_aeprogress_close(p);
    f->ok = true;
}

/* More peers than slots: the least recently heard one makes room. */
static void test_peer_slots_recycle_the_oldest(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress *p = open_p(f->dir, 1, 0);
    char id[16];
    for (unsigned i = 0; i < RK_AEPROGRESS_PEERS + 1; i++) {
        snprintf(id, sizeof(id), "n-%u", i);
        exchange(p, 0, id, T0 + i, RK_AE_OK, 0);
    }
    const char *first[] = {"n-0"}, *last[] = {"n-16"};
    assert_int_equal(rk_aeprogress_watermark(p, 0, first, 1), 0);
    assert_int_equal(rk_aeprogress_watermark(p, 0, last, 1), T0 + 16);
    assert_rc(rk_aeprogress_save(p, T0), 0);
    rk_aeprogress_close(p);
    p = open_p(f->dir, 1, 0);
    assert_int_equal(rk_aeprogress_watermark(p, 0, last, 1), T0 + 16);
    rk_aeprogress_close(p);
    f->ok = true;
}

/* A peer's latest exchange over every partition of two workers: the one
 * that ended last gives result and last_ms, ok_ms is the latest completed
 * one's start; peers not asked for are left out, ones never met stay
 * "never". */
static void test_peers_latest_over_workers(void **state)
{
    struct fx *f = *state;
    char d0[1024], d1[1024];
    fx_path(f, "w0", d0, sizeof(d0), true);
    fx_path(f, "w1", d1, sizeof(d1), true);
    struct rk_aeprogress *w0 = open_p(d0, 2, 0), *w1 = open_p(d1, 2, 1);
    exchange(w0, 0, "node-2", T0 + 10, RK_AE_OK, 1);
    exchange(w0, 0, "node-3", T0 + 50, RK_AE_UNREACHABLE, 0);
    exchange(w0, 2, "node-2", T0 + 30, RK_AE_REFUSED, 0);
    exchange(w1, 1, "node-2", T0 + 20, RK_AE_OK, 2);
    exchange(w1, 1, "node-4", T0 + 100, RK_AE_OK, 0);   /* not asked for */
    const char *ids[] = {"node-2", "node-3", "node-5"}; /* sorted */
    struct rk_aeprogress_last last[3] = {{0}};
    rk_aeprogress_peers_latest(w0, ids, 3, last);
    assert_int_equal(last[0].result, RK_AE_REFUSED); /* ended at T0+35, after the ok one */
    assert_int_equal(last[0].last_ms, T0 + 35);
    assert_int_equal(last[0].ok_ms, T0 + 10);
    rk_aeprogress_peers_latest(w1, ids, 3, last); /* the node's: both workers folded */
    assert_int_equal(last[0].result, RK_AE_REFUSED);
    assert_int_equal(last[0].last_ms, T0 + 35);
    assert_int_equal(last[0].ok_ms, T0 + 20); /* worker 1's completed one started later */
    assert_int_equal(last[1].result, RK_AE_UNREACHABLE);
    assert_int_equal(last[1].last_ms, T0 + 55);
    assert_int_equal(last[1].ok_ms, 0);
    assert_int_equal(last[2].result, RK_AE_NEVER);
    assert_int_equal(last[2].last_ms, 0);
    rk_aeprogress_close(w0);
    rk_aeprogress_close(w1);
    f->ok = true;
}

/* The round's rates and ETA, the same numbers the AE reply prints. */
static void test_rates(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress_summary s = {.round = 3,
                                      .in_progress = true,
                                      .started_ms = T0,
                                      .compared = 2,
                                      .total = 10,
                                      .pulled = 30,
                                      .pushed = 20,
                                      .bytes = 1000};
    struct rk_aeprogress_rates r;
    rk_aeprogress_rates(&s, T0 + 10000, &r);
    assert_true(r.has_eta);
    assert_true(r.keys_per_second == 5.0 && r.bytes_per_second == 100.0);
    assert_true(r.eta_s == 40.0); /* 8 partitions left at 2 per 10 s */
    struct rk_jbuf b = {0};
    rk_aeprogress_json_summary(&s, T0 + 10000, &b);
    assert_non_null(strstr(b.p, "\"keys_per_second\":5.0,\"bytes_per_second\":100.0,\"eta_s\":40"));
    free(b.p);
    s.in_progress = false; /* over: rates up to its finish, no ETA */
    s.finished_ms = T0 + 20000;
    rk_aeprogress_rates(&s, T0 + 99000, &r);
    assert_false(r.has_eta);
    assert_true(r.keys_per_second == 2.5);
    s.compared = 0, s.in_progress = true; /* nothing done yet: no ETA */
    rk_aeprogress_rates(&s, T0 + 10000, &r);
    assert_false(r.has_eta);
    f->ok = true;
}

/* A partition's row shows its own worker's round, whatever the others'
 * (each worker runs its rounds; the node's is the lowest of them). */
static void test_partition_shows_its_workers_round(void **state)
{
    struct fx *f = *state;
    struct rk_aeprogress *p = open_p(f->dir, 2, 1);
    rk_aeprogress_round_start(p, T0, PARTS / 2);
    exchange(p, 3, "node-2", T0 + 10, RK_AE_OK, 1);
    rk_aeprogress_round_finish(p, T0 + 50);
    rk_aeprogress_round_start(p, T0 + 100, PARTS / 2);
    struct rk_jbuf b = {0};
    rk_aeprogress_json_partition(p, 3, "node-1", all3, 3, &b);
    assert_false(b.oom);
    char want[200];
    snprintf(want, sizeof(want),
             "\"compared_in_round\":1,\"watermark_ms\":0,\"worker\":1,\"worker_round\":"
             "{\"number\":2,\"in_progress\":true,\"started_ms\":%llu,\"finished_ms\":%llu},"
             "\"peers\":[",
             T0 + 100, T0 + 50);
    assert_non_null(strstr(b.p, want));
    free(b.p);
    rk_aeprogress_close(p);
    f->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_round_trip),
        FX_TEST(test_missing_file_is_fresh_and_silent),
        FX_TEST(test_every_truncation_and_bit_flip_refused),
        FX_TEST(test_layout_mismatch_refused),
        FX_TEST(test_marks_clear_only_after_every_peer),
        FX_TEST(test_incomplete_exchange_does_not_move_the_watermark),
        FX_TEST(test_watermark),
        FX_TEST(test_round_resumes_after_reload),
        FX_TEST(test_saves_are_bounded),
        FX_TEST(test_bad_arguments_refused),
        FX_TEST(test_peer_slots_recycle_the_oldest),
        FX_TEST(test_peers_latest_over_workers),
        FX_TEST(test_partition_shows_its_workers_round),
        FX_TEST(test_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

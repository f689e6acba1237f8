/* Anti-entropy marks: mark/test/clear/count/each; the set survives a
 * reopen; a save writes only when something changed; a file that is
 * damaged, of another version or for another partition count is ignored
 * with a warning. And the hint store's use of them: a hint refused past
 * max_bytes or dropped past max_age marks its key's partition, and the
 * mark survives a reopen of the store. */
#define SF_TAG "aemarks"
#include "storage_fixture.h"

#include <errno.h>

#include "cluster/aemarks.h"
#include "cluster/hints.h"
#include "cluster/ring.h"
#include "util/fsutil.h"

/* ---- helpers ---- */

static struct rk_aemarks *open_marks(const char *dir, uint32_t partitions)
{
    struct rk_aemarks *m = NULL;
    assert_rc(rk_aemarks_open(&m, dir, partitions), 0);
    assert_non_null(m);
    return m;
}

static void marks_path(const struct fx *f, char *out, size_t cap)
{
    fx_path(f, RK_AEMARKS_FILE, out, cap, false);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A file of marks 3 and 200 of 256, saved and closed. */
static void write_sample(const struct fx *f)
{
    struct rk_aemarks *m = open_marks(f->dir, 256);
    assert_true(rk_aemarks_mark(m, 3));
    assert_true(rk_aemarks_mark(m, 200));
    assert_rc(rk_aemarks_save(m), 0);
    rk_aemarks_close(m);
}

/* Open f->dir for 256 partitions expecting an empty set and a warning
 * that names the file and contains want. */
static void assert_ignored(const struct fx *f, const char *want)
{
    struct tu_log l;
    tu_log_capture(&l);
    struct rk_aemarks *m = open_marks(f->dir, 256);
    bool empty = rk_aemarks_count(m) == 0 && !rk_aemarks_test(m, 3);
    bool logged =
        l.buf && strstr(l.buf, "ignoring") && strstr(l.buf, RK_AEMARKS_FILE) && strstr(l.buf, want);
    char line[512];
    snprintf(line, sizeof(line), "%s", l.buf ? l.buf : "");
    tu_log_release(&l);
    rk_aemarks_close(m);
    if (!empty || !logged)
        fail_msg("want an empty set and a warning with \"%s\"; log: %s", want, line);
}

struct seen {
    uint32_t parts[16];
    uint32_t n;
    struct rk_aemarks *clear; /* clear each partition visited, when set */
};

static void collect(uint32_t part, void *arg)
{
    struct seen *s = arg;
    if (s->n < 16)
        s->parts[s->n] = part;
    s->n++;
    if (s->clear)
        rk_aemarks_clear(s->clear, part);
}

/* ---- the set ---- */

static void test_mark_test_clear_count(void **state)
{
    struct fx *f = *state;
    char path[600];
    marks_path(f, path, sizeof(path));
    struct rk_aemarks *m = open_marks(f->dir, 256);
    assert_int_equal(rk_aemarks_partitions(m), 256);
    assert_int_equal(rk_aemarks_count(m), 0);
    assert_false(rk_aemarks_dirty(m));
    assert_true(rk_aemarks_mark(m, 17));
    assert_true(rk_aemarks_dirty(m));
    assert_false(rk_aemarks_mark(m, 17)); /* already marked */
    assert_true(rk_aemarks_mark(m, 0));
    assert_true(rk_aemarks_mark(m, 255));
    assert_false(rk_aemarks_mark(m, 256)); /* out of range: ignored */
    assert_false(rk_aemarks_test(m, 256));
    assert_int_equal(rk_aemarks_count(m), 3);
    assert_true(rk_aemarks_test(m, 0) && rk_aemarks_test(m, 17) && rk_aemarks_test(m, 255));
    assert_false(rk_aemarks_test(m, 1) || rk_aemarks_test(m, 16) || rk_aemarks_test(m, 18));

    struct seen s = {0};
    assert_int_equal(rk_aemarks_each(m, collect, &s), 3);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.parts[0], 0);
    assert_int_equal(s.parts[1], 17);
    assert_int_equal(s.parts[2], 255);

    assert_true(rk_aemarks_clear(m, 17));
    assert_false(rk_aemarks_clear(m, 17));
    assert_false(rk_aemarks_clear(m, 9999));
    assert_int_equal(rk_aemarks_count(m), 2);
    assert_false(rk_aemarks_test(m, 17));

    /* fn may clear what it is given: the repair loop of anti-entropy. */
    s = (struct seen){.clear = m};
    assert_int_equal(rk_aemarks_each(m, collect, &s), 2);
    assert_int_equal(rk_aemarks_count(m), 0);
    assert_int_equal(rk_aemarks_each(m, collect, &s), 0);
    assert_false(exists(path)); /* nothing saved yet */
    rk_aemarks_close(m);
    rk_aemarks_close(NULL);
    f->ok = true;
}

static void test_bad_partition_counts_refused(void **state)
{
    struct fx *f = *state;
    struct rk_aemarks *m = NULL;
    assert_rc(rk_aemarks_open(&m, f->dir, 0), RK_EINVAL);
    assert_rc(rk_aemarks_open(&m, f->dir, 3), RK_EINVAL);
    assert_rc(rk_aemarks_open(&m, f->dir, 65536 * 2), RK_EINVAL);
    assert_null(m);
    f->ok = true;
}

static void test_persists_across_reopen(void **state)
{
    struct fx *f = *state;
    write_sample(f);
    struct rk_aemarks *m = open_marks(f->dir, 256);
    assert_int_equal(rk_aemarks_count(m), 2);
    assert_true(rk_aemarks_test(m, 3) && rk_aemarks_test(m, 200));
    assert_false(rk_aemarks_dirty(m));
    /* A clear is saved too. */
    assert_true(rk_aemarks_clear(m, 3));
    assert_rc(rk_aemarks_save(m), 0);
    rk_aemarks_close(m);
    m = open_marks(f->dir, 256);
    assert_int_equal(rk_aemarks_count(m), 1);
    assert_true(rk_aemarks_test(m, 200));
    rk_aemarks_close(m);
    f->ok = true;
}

/* The extremes of the bitmap: one partition (a byte with 7 unused bits)
 * and 65536 (8 KiB), every bit set. */
static void test_extreme_partition_counts_round_trip(void **state)
{
    struct fx *f = *state;
    const uint32_t counts[] = {1, 8, 65536};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        struct rk_aemarks *m = open_marks(f->dir, counts[c]);
        for (uint32_t p = 0; p < counts[c]; p++)
            rk_aemarks_mark(m, p);
        assert_rc(rk_aemarks_save(m), 0);
        rk_aemarks_close(m);
        m = open_marks(f->dir, counts[c]);
        assert_int_equal(rk_aemarks_count(m), counts[c]);
        assert_true(rk_aemarks_test(m, counts[c] - 1));
        assert_int_equal(rk_aemarks_each(m, collect, &(struct seen){0}), counts[c]);
        rk_aemarks_close(m);
    }
    f->ok = true;
}

static void test_save_only_when_dirty(void **state)
{
    struct fx *f = *state;
    char path[600];
    marks_path(f, path, sizeof(path));
    struct rk_aemarks *m = open_marks(f->dir, 256);
    assert_rc(rk_aemarks_save(m), 0);
    assert_false(exists(path)); /* nothing marked: nothing written */
    assert_true(rk_aemarks_mark(m, 5));
    assert_rc(rk_aemarks_save(m), 0);
    assert_true(exists(path));
    assert_false(rk_aemarks_dirty(m));
    /* The proof that a clean save does no I/O: the file removed behind its
     * back is not written again until something changes. */
    assert_int_equal(unlink(path), 0);
    assert_rc(rk_aemarks_save(m), 0);
    assert_false(rk_aemarks_mark(m, 5));
    assert_false(rk_aemarks_clear(m, 6));
    assert_rc(rk_aemarks_save(m), 0);
    assert_false(exists(path));
    assert_true(rk_aemarks_mark(m, 6));
    assert_rc(rk_aemarks_save(m), 0);
    assert_true(exists(path));
    rk_aemarks_close(m);
    f->ok = true;
}

/* A failed save keeps the set dirty, and the next save retries. */
static void test_failed_save_stays_dirty(void **state)
{
    struct fx *f = *state;
    char sub[600];
    fx_path(f, "gone", sub, sizeof(sub), true);
    struct rk_aemarks *m = open_marks(sub, 256);
    assert_true(rk_aemarks_mark(m, 1));
    assert_int_equal(rmdir(sub), 0);
    assert_rc(rk_aemarks_save(m), -ENOENT);
    assert_true(rk_aemarks_dirty(m));
    assert_int_equal(mkdir(sub, 0750), 0);
    assert_rc(rk_aemarks_save(m), 0);
    assert_false(rk_aemarks_dirty(m));
    rk_aemarks_close(m);
    m = open_marks(sub, 256);
    assert_true(rk_aemarks_test(m, 1));
    rk_aemarks_close(m);
    f->ok = true;
}

static void test_partition_count_mismatch_ignored(void **state)
{
    struct fx *f = *state;
    struct rk_aemarks *m = open_marks(f->dir, 512);
    assert_true(rk_aemarks_mark(m, 3));
    assert_rc(rk_aemarks_save(m), 0);
    rk_aemarks_close(m);
    assert_ignored(f, "written for 512 partitions, expected 256");
    f->ok = true;
}

static void test_damaged_files_ignored(void **state)
{
    struct fx *f = *state;
    char path[600];
    marks_path(f, path, sizeof(path));
    const uint64_t bitmap = 16, sum = 16 + 32;

    write_sample(f);
    assert_rc(tu_flip_bit(path, bitmap + 1, 4), 0); /* a mark appears */
    assert_ignored(f, "checksum");

    write_sample(f);
    assert_rc(tu_flip_bit(path, sum + 7, 0), 0);
    assert_ignored(f, "checksum");

    write_sample(f);
    assert_rc(tu_truncate(path, sum), 0); /* checksum cut off */
    assert_ignored(f, "48 bytes, expected 56");

    write_sample(f);
    assert_rc(tu_truncate(path, 5), 0); /* shorter than the header */
    assert_ignored(f, "not an anti-entropy marks file");

    write_sample(f);
    assert_rc(tu_truncate(path, 0), 0);
    assert_ignored(f, "not an anti-entropy marks file");

    write_sample(f);
    assert_rc(tu_flip_bit(path, 0, 0), 0); /* magic */
    assert_ignored(f, "not an anti-entropy marks file");

    write_sample(f);
    assert_rc(tu_flip_bit(path, 4, 1), 0); /* version 3 */
    assert_ignored(f, "format version 3");

    write_sample(f);
    assert_rc(tu_truncate(path, 1 << 20), 0); /* far too long to read */
    assert_ignored(f, rk_strerror(-EFBIG));

    /* Garbage anywhere: every change to the file is refused (a changed byte
     * breaks the checksum or a field checked before it; one written past
     * the end makes the file too long). Random bytes may also equal those
     * they overwrite (a 1-byte write does 1 time in 256): such a write
     * changed nothing, so one of its bits is flipped and the file must
     * still be refused. */
    uint64_t rng = tu_seed("damaged_files_ignored");
    struct tu_log l;
    tu_log_capture(&l); /* fifty warnings: not for the test's output */
    for (int i = 0; i < 50; i++) {
        write_sample(f);
        uint8_t before[64], after[64];
        size_t lb = 0, la = 0;
        assert_rc(rk_fs_read_file(path, before, sizeof(before), &lb), 0);
        uint64_t off = tu_rand_below(&rng, sum + 8), len = 1 + tu_rand_below(&rng, 8);
        assert_rc(tu_garbage(path, off, len, &rng), 0);
        assert_rc(rk_fs_read_file(path, after, sizeof(after), &la), 0);
        if (la == lb && memcmp(before, after, la) == 0)
            assert_rc(tu_flip_bit(path, off, (unsigned)tu_rand_below(&rng, 8)), 0);
        tu_log_clear(&l);
        struct rk_aemarks *m = open_marks(f->dir, 256);
        uint32_t n = rk_aemarks_count(m);
        rk_aemarks_close(m);
        if (n != 0 || !l.buf || !strstr(l.buf, "ignoring"))
            fail_msg("garbage of %llu bytes at %llu (run %d): %u marks loaded, want the file "
                     "ignored with a warning",
                     (unsigned long long)len, (unsigned long long)off, i, n);
    }
    tu_log_release(&l);

    /* An ignored file is replaced by the next save. */
    struct rk_aemarks *m = open_marks(f->dir, 256);
    assert_true(rk_aemarks_mark(m, 9));
    assert_rc(rk_aemarks_save(m), 0);
    rk_aemarks_close(m);
    m = open_marks(f->dir, 256);
    assert_int_equal(rk_aemarks_count(m), 1);
    assert_true(rk_aemarks_test(m, 9));
    rk_aemarks_close(m);
    f->ok = true;
}

/* ---- the hint store's marks ---- */

#define PARTS 256u

static struct rk_hints *open_hints(const char *dir, uint64_t max_bytes, uint64_t max_age_ms)
{
    struct rk_storage_opts o;
    test_opts(&o);
    struct rk_hints *h = NULL;
    char err[600] = "";
    int rc = rk_hints_open(&h, dir, &o, PARTS, max_bytes, max_age_ms, err, sizeof(err));
    if (rc != 0)
        fail_msg("rk_hints_open %s = %d: %s", dir, rc, err);
    return h;
}

static struct rk_record record(const char *key, uint64_t version)
{
    return (struct rk_record){.key = key,
                              .klen = (uint32_t)strlen(key),
                              .val = "value",
                              .vlen = 5,
                              .version = version,
                              .partition = (uint16_t)rk_ring_partition_of(key, strlen(key), PARTS)};
}

static uint64_t marked(struct rk_hints *h)
{
    struct rk_hints_stats st;
    rk_hints_stats(h, &st);
    return st.partitions_marked;
}

static void test_refused_hint_marks_its_partition(void **state)
{
    struct fx *f = *state;
    char dir[600], path[700];
    fx_path(f, "hints-0", dir, sizeof(dir), false);
    snprintf(path, sizeof(path), "%s/%s", dir, RK_AEMARKS_FILE);
    const char *key = "user:42";
    uint32_t p = rk_ring_partition_of(key, strlen(key), PARTS);

    struct tu_log l;
    tu_log_capture(&l);
    struct rk_hints *h = open_hints(dir, 1, 3600000); /* 1 byte: every hint refused */
    struct rk_record r = record(key, next_ver());
    assert_rc(rk_hints_add(h, "node-3", &r, next_ver()), RK_EBUSY);
    assert_rc(rk_hints_add(h, "node-3", &r, next_ver()), RK_EBUSY); /* same partition */
    struct rk_hints_stats st;
    rk_hints_stats(h, &st);
    assert_int_equal(st.dropped_full, 2);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.partitions_marked, 1);
    assert_true(rk_aemarks_test(rk_hints_marks(h), p));
    char want[160];
    snprintf(want, sizeof(want),
             "partition %u marked for anti-entropy: hints for node-3 dropped "
             "(over hints.max_bytes_per_target)",
             p);
    bool logged = l.buf && strstr(l.buf, want);
    tu_log_release(&l);
    assert_true(logged);

    /* Saved by the next commit, not only at close. */
    assert_false(exists(path));
    assert_rc(rk_hints_commit(h), 0);
    assert_true(exists(path));
    rk_hints_close(h);

    /* The store opens with the marks file beside its segments. */
    h = open_hints(dir, 1, 3600000);
    assert_int_equal(marked(h), 1);
    assert_true(rk_aemarks_test(rk_hints_marks(h), p));
    rk_hints_close(h);
    f->ok = true;
}

static void test_marks_saved_at_close(void **state)
{
    struct fx *f = *state;
    char dir[600];
    fx_path(f, "hints-1", dir, sizeof(dir), false);
    struct rk_hints *h = open_hints(dir, 1, 3600000);
    struct rk_record r = record("k", next_ver());
    assert_rc(rk_hints_add(h, "node-2", &r, next_ver()), RK_EBUSY);
    rk_hints_close(h); /* no commit */
    h = open_hints(dir, 1 << 20, 3600000);
    assert_int_equal(marked(h), 1);
    rk_hints_close(h);
    f->ok = true;
}

static void never(const struct rk_hint *hint, void *arg)
{
    fail_msg("a hint past max_age was delivered");
}

static void test_expired_hint_marks_its_partition(void **state)
{
    struct fx *f = *state;
    char dir[600];
    fx_path(f, "hints-2", dir, sizeof(dir), false);
    const char *key = "order:7";
    struct rk_hints *h = open_hints(dir, 1 << 20, 1);
    /* The hint's age is that of the record's version: 1 s after the epoch. */
    struct rk_record r = record(key, 1000ull << 16);
    assert_rc(rk_hints_add(h, "node-4", &r, next_ver()), 0);
    assert_rc(rk_hints_commit(h), 0);
    assert_int_equal(marked(h), 0);
    assert_int_equal(rk_hints_each(h, "node-4", 10, never, NULL), 0);
    struct rk_hints_stats st;
    rk_hints_stats(h, &st);
    assert_int_equal(st.dropped_old, 1);
    assert_int_equal(st.partitions_marked, 1);
    assert_true(rk_aemarks_test(rk_hints_marks(h), rk_ring_partition_of(key, strlen(key), PARTS)));
    rk_hints_close(h);
    h = open_hints(dir, 1 << 20, 1);
    assert_int_equal(marked(h), 1);
    rk_hints_close(h);
    f->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_mark_test_clear_count),
        FX_TEST(test_bad_partition_counts_refused),
        FX_TEST(test_persists_across_reopen),
        FX_TEST(test_extreme_partition_counts_round_trip),
        FX_TEST(test_save_only_when_dirty),
        FX_TEST(test_failed_save_stays_dirty),
        FX_TEST(test_partition_count_mismatch_ignored),
        FX_TEST(test_damaged_files_ignored),
        FX_TEST(test_refused_hint_marks_its_partition),
        FX_TEST(test_marks_saved_at_close),
        FX_TEST(test_expired_hint_marks_its_partition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

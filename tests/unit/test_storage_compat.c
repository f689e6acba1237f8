/* The on-disk format does not change under our feet: fixtures/storage-v1/ is
 * a data dir written by the engine of commit f4f9ff6 (three sealed segments
 * and their index files, then called hint files; made by
 * fixtures/make_storage_v1.c from fixtures/storage_v1_recipe.h). Today's
 * engine opens it through its index files without scanning a segment, and
 * by scanning when they are gone; reads back every record; rebuilds the
 * index files byte for byte; and the same writes made today give the very
 * same files. */
#define SF_TAG "compat"
#include "storage_fixture.h"

#include "fixtures/storage_v1_recipe.h"
#include "util/fsutil.h"

#define V1_DIR  RK_FIXTURES_DIR "/storage-v1"
#define V1_SEGS 3                             /* seg-0..2.rks, each with its .rkh */
#define V1_LIVE (V1_KEYS - (V1_KEYS + 4) / 5) /* every fifth key is deleted */

/* Read a whole small file into buf (cap bytes); its length or fail. */
static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    int rc = rk_fs_read_file(path, buf, cap, &len);
    if (rc != 0)
        fail_msg("read %s: %s", path, rk_strerror(rc));
    return len;
}

/* Fail unless the file name in dir has the bytes of the fixture's. */
static void assert_same_file(const char *dir, const char *name)
{
    static uint8_t a[1 << 16], b[1 << 16];
    char pa[1100], pb[1100];
    snprintf(pa, sizeof(pa), "%s/%s", V1_DIR, name);
    snprintf(pb, sizeof(pb), "%s/%s", dir, name);
    size_t la = slurp(pa, a, sizeof(a)), lb = slurp(pb, b, sizeof(b));
    if (la != lb || memcmp(a, b, la) != 0)
        fail_msg("%s differs from %s (%zu and %zu bytes)", pb, pa, lb, la);
}

static void assert_same_files(const char *dir)
{
    struct tu_seg segs[8];
    assert_int_equal(tu_segments(V1_DIR, segs, 8), V1_SEGS);
    for (int i = 0; i < V1_SEGS; i++) {
        assert_same_file(dir, segs[i].name);
        assert_same_file(dir, strrchr(segs[i].index_file, '/') + 1);
    }
}

/* Every key of the recipe reads back as written (tombstones included), and
 * iteration returns exactly one record per key. */
static void assert_v1_contents(rk_storage *s)
{
    for (uint32_t id = 0; id < V1_KEYS; id++) {
        char key[16], val[128];
        uint32_t klen = v1_key(key, id), r = v1_final_round(id);
        struct rk_record got;
        int rc = rk_storage_get(s, key, klen, RK_GET_TOMBSTONES, &got);
        if (rc != 0)
            fail_msg("get %s: %s", key, rk_strerror(rc));
        assert_int_equal(got.version, v1_version(id, r));
        assert_int_equal(got.partition, id % V1_PARTITIONS);
        assert_int_equal(got.tombstone, r == 2);
        if (r == 2)
            continue;
        uint32_t vlen = v1_val(val, id, r);
        assert_int_equal(got.expiry_ms, v1_expiry(id));
        assert_int_equal(got.vlen, vlen);
        assert_memory_equal(got.val, val, vlen);
    }
    struct rk_storage_iter it;
    rk_storage_iter_init(&it, -1, true);
    struct rk_record rec;
    uint32_t n = 0;
    int rc;
    while ((rc = rk_storage_iter_next(s, &it, &rec)) == 1)
        n++;
    assert_rc(rc, 0);
    assert_int_equal(n, V1_KEYS);
}

static rk_storage *open_copy(const struct fx *f, struct rk_storage_report *rep)
{
    struct rk_storage_opts o;
    v1_opts(&o);
    return open_ok(f->dir, &o, rep);
}

static void test_v1_opens_through_index_files(void **state)
{
    struct fx *f = *state;
    assert_rc(tu_copy_dir(V1_DIR, f->dir), 0);
    struct rk_storage_report rep;
    rk_storage *s = open_copy(f, &rep);
    assert_int_equal(rep.segments, V1_SEGS);
    assert_int_equal(rep.from_index_files, V1_SEGS);
    assert_int_equal(rep.scanned, 0); /* no segment was read block by block */
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.keys, V1_LIVE);
    struct rk_storage_stats st;
    rk_storage_stats(s, &st);
    assert_int_equal(st.cache_misses, 0); /* nor any block read yet */
    assert_v1_contents(s);
    assert_rc(rk_storage_close(s), 0);
    assert_same_files(f->dir); /* opening and reading changed no byte */
    f->ok = true;
}

static void test_v1_opens_by_scanning_without_index_files(void **state)
{
    struct fx *f = *state;
    assert_rc(tu_copy_dir(V1_DIR, f->dir), 0);
    assert_int_equal(tu_remove_suffix(f->dir, ".rkh"), V1_SEGS);
    struct rk_storage_report rep;
    rk_storage *s = open_copy(f, &rep);
    assert_int_equal(rep.segments, V1_SEGS);
    assert_int_equal(rep.from_index_files, 0);
    assert_int_equal(rep.scanned, V1_SEGS);
    assert_int_equal(rep.keys, V1_LIVE);
    assert_v1_contents(s);
    assert_rc(rk_storage_close(s), 0); /* writes the missing index files */
    assert_same_files(f->dir);         /* as the old engine wrote them */

    /* The old segments load through the rebuilt index files; only the
     * empty segment the first open made active is scanned. */
    s = open_copy(f, &rep);
    assert_int_equal(rep.segments, V1_SEGS + 1);
    assert_int_equal(rep.from_index_files, V1_SEGS);
    assert_int_equal(rep.scanned, 1);
    assert_v1_contents(s);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* The same writes made by today's engine give the fixture's bytes. */
static void test_v1_recipe_writes_the_same_bytes(void **state)
{
    struct fx *f = *state;
    struct rk_storage_report rep;
    rk_storage *s = open_copy(f, &rep);
    assert_int_equal(rep.segments, 0);
    assert_rc(v1_write(s), 0);
    assert_rc(rk_storage_close(s), 0);
    assert_int_equal(tu_count_names(f->dir, ".rks", NULL, 0), V1_SEGS);
    assert_same_files(f->dir);
    f->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_v1_opens_through_index_files),
        FX_TEST(test_v1_opens_by_scanning_without_index_files),
        FX_TEST(test_v1_recipe_writes_the_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

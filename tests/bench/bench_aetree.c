/* Anti-entropy tree benchmark (cluster/aetree.h): the build of every
 * partition's tree from a reopened store's index (1M keys of 100 B in 256
 * partitions by default), memory per tree, the cost of comparing the roots
 * of all partitions of two equal tree sets, and what the storage observer
 * adds to each put (puts/s with and without it, fsync "never" so the disk
 * does not hide it). Prints figures, never pass/fail. */
#include "cluster/aetree.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#define KEY_FMT      "key-%012llu" /* 16-byte keys, as bench_storage */
#define BATCH        256           /* puts per commit: a busy loop turn */
#define VERSION_BASE (1700000000000ull << 16)
#define ROOT_REPS    200 /* root comparisons timed (median taken) */

struct cfg {
    uint64_t keys, obs_keys;
    uint32_t vsize, partitions;
    const char *base;
};

static double ms_since(uint64_t t0)
{
    return (double)(rk_clock_mono_ns() - t0) / 1e6;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_aetree: %s: %s\n", what, rk_strerror(rc));
    exit(1);
}

static rk_storage *open_store(const char *dir)
{
    struct rk_storage_opts o;
    rk_storage_opts_default(&o);
    o.fsync = RK_FSYNC_NEVER;
    rk_storage *s;
    int rc = rk_storage_open(&s, dir, &o, NULL);
    if (rc < 0)
        die(dir, rc);
    return s;
}

/* Put keys [from, to) at versions vbase + i, with vsize-byte values, each
 * key in its ring partition. */
static void put_range(rk_storage *s, const struct cfg *c, uint64_t from, uint64_t to,
                      uint64_t vbase)
{
    char key[32], val[4096];
    memset(val, 'v', sizeof(val));
    for (uint64_t i = from; i < to; i++) {
        int n = snprintf(key, sizeof(key), KEY_FMT, (unsigned long long)i);
        memcpy(val, &i, sizeof(i)); /* distinct values, as real ones */
        struct rk_record r = {.key = key,
                              .klen = (uint32_t)n,
                              .val = val,
                              .vlen = c->vsize,
                              .version = vbase + i,
                              .partition =
                                  (uint16_t)(XXH3_64bits(key, (size_t)n) & (c->partitions - 1))};
        int rc = rk_storage_put(s, &r, NULL);
        if (rc == 0 && (i + 1) % BATCH == 0)
            rc = rk_storage_commit(s);
        if (rc < 0)
            die("put", rc);
    }
    int rc = rk_storage_commit(s);
    if (rc < 0)
        die("commit", rc);
}

static void bench_build(const struct cfg *c, struct rk_aetrees *ts)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/build", c->base);
    rk_storage *s = open_store(dir);
    uint64_t t0 = rk_clock_mono_ns();
    put_range(s, c, 0, c->keys, VERSION_BASE);
    printf("load: %llu keys of %u B in %.0f ms\n", (unsigned long long)c->keys, c->vsize,
           ms_since(t0));
    rk_storage_close(s);
    s = open_store(dir); /* the index as a restart finds it */
    if (rk_aetrees_init(ts, c->partitions, 1, 0) < 0)
        die("trees", -1);
    uint64_t keys = 0;
    t0 = rk_clock_mono_ns();
    if (rk_aetrees_build(ts, s, rk_clock_wall_ms(), false, &keys) < 0)
        die("build", -1);
    double ms = ms_since(t0);
    printf("tree_build_ms: %.1f (%llu keys, %u partitions, %.1f M keys/s)\n", ms,
           (unsigned long long)keys, ts->n, (double)keys / ms / 1000.0);
    struct rk_aetree one = {.partition = 0};
    t0 = rk_clock_mono_ns();
    rk_aetree_build(&one, s, rk_clock_wall_ms());
    printf("one_partition_rebuild_ms: %.2f (its own entries: the index lists them per partition)\n",
           ms_since(t0));
    rk_storage_close(s);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Compare the roots of every partition of ts with a copy: an in-sync round. */
static void bench_roots(const struct rk_aetrees *ts)
{
    struct rk_aetree *copy = malloc(ts->n * sizeof(*copy));
    memcpy(copy, ts->t, ts->n * sizeof(*copy));
    static uint64_t ns[ROOT_REPS];
    uint32_t differ = 0;
    for (int r = 0; r < ROOT_REPS; r++) {
        uint64_t t0 = rk_clock_mono_ns();
        for (uint32_t i = 0; i < ts->n; i++)
            differ += rk_aetree_root(&ts->t[i]) != rk_aetree_root(&copy[i]);
        ns[r] = rk_clock_mono_ns() - t0;
    }
    qsort(ns, ROOT_REPS, sizeof(ns[0]), cmp_u64);
    printf("root_compare_us: %.1f for %u partitions, both sides (%.2f us per partition; %u "
           "differ)\n",
           (double)ns[ROOT_REPS / 2] / 1e3, ts->n, (double)ns[ROOT_REPS / 2] / 1e3 / ts->n, differ);
    printf("tree_bytes: %zu per partition (%zu for %u partitions)\n", sizeof(struct rk_aetree),
           rk_aetrees_bytes(ts), ts->n);
    free(copy);
}

/* puts/s into a fresh store, observed by a tree set or not. */
static double put_rate(const struct cfg *c, bool observe, int run)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/obs-%d-%d", c->base, observe, run);
    rk_storage *s = open_store(dir);
    struct rk_aetrees ts;
    if (rk_aetrees_init(&ts, c->partitions, 1, 0) < 0)
        die("trees", -1);
    rk_aetrees_build(&ts, s, rk_clock_wall_ms(), false, NULL);
    if (observe)
        rk_storage_set_observer(s, rk_aetrees_observe, &ts);
    uint64_t t0 = rk_clock_mono_ns();
    put_range(s, c, 0, c->obs_keys, VERSION_BASE); /* inserts */
    put_range(s, c, c->obs_keys / 2, c->obs_keys,
              VERSION_BASE + c->obs_keys); /* and overwrites: out and in */
    double secs = ms_since(t0) / 1000.0;
    rk_storage_close(s);
    rk_aetrees_fini(&ts);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return (double)(c->obs_keys + c->obs_keys / 2) / secs;
}

static double median3(const double v[3])
{
    double lo = v[0] < v[1] ? v[0] : v[1], hi = v[0] < v[1] ? v[1] : v[0];
    return v[2] < lo ? lo : v[2] > hi ? hi : v[2];
}

static void bench_observer(const struct cfg *c)
{
    double off[3], on[3];
    for (int r = 0; r < 3; r++) { /* alternate, so drift hits both alike */
        off[r] = put_rate(c, false, r);
        on[r] = put_rate(c, true, r);
    }
    double a = median3(off), b = median3(on);
    printf("puts_per_s_without_observer: %.0f\n", a);
    printf("puts_per_s_with_observer: %.0f\n", b);
    printf("observer_ns_per_put: %.0f (%.1f%% of a put)\n", 1e9 / b - 1e9 / a,
           100.0 * (1e9 / b - 1e9 / a) / (1e9 / a));
}

/* The tree update alone: one overwrite = two entry hashes and a leaf hash. */
static void bench_apply(void)
{
    struct rk_aetree *t = calloc(1, sizeof(*t));
    rk_aetree_init(t, 0, 1);
    char key[32];
    enum { N = 2000000 };
    uint64_t t0 = rk_clock_mono_ns();
    for (uint64_t i = 0; i < N; i++) {
        int n = snprintf(key, sizeof(key), KEY_FMT, (unsigned long long)(i & 65535));
        struct rk_storage_entry old = {.version = i}, new_ = {.version = i + 1};
        rk_aetree_apply(t, key, (uint32_t)n, i < 65536 ? NULL : &old, &new_);
        t->entries = 1; /* the XOR is nonsense here; keep invariant 1 quiet */
    }
    printf("apply_ns: %.0f per change (snprintf of the key included)\n",
           (double)(rk_clock_mono_ns() - t0) / N);
    free(t);
}

int main(int argc, char **argv)
{
    struct cfg c = {.keys = 1000000, .obs_keys = 500000, .vsize = 100, .partitions = 256};
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/ringkv-bench-aetree-XXXXXX",
             getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "/tmp");
    static const struct option opts[] = {{"keys", 1, 0, 'k'},
                                         {"obs-keys", 1, 0, 'o'},
                                         {"vsize", 1, 0, 'v'},
                                         {"partitions", 1, 0, 'p'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "k:o:v:p:", opts, NULL)) != -1) {
        if (ch == 'k')
            c.keys = strtoull(optarg, NULL, 10);
        else if (ch == 'o')
            c.obs_keys = strtoull(optarg, NULL, 10);
        else if (ch == 'v')
            c.vsize = (uint32_t)strtoul(optarg, NULL, 10);
        else if (ch == 'p')
            c.partitions = (uint32_t)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (!c.partitions || (c.partitions & (c.partitions - 1)) || c.vsize > 4096) {
        fprintf(stderr, "bench_aetree: --partitions must be a power of 2, --vsize <= 4096\n");
        return 2;
    }
    c.base = mkdtemp(tmpl);
    if (!c.base)
        die("mkdtemp", -1);
    rk_log_set_level(RK_LOG_WARN);
    struct rk_aetrees ts;
    bench_build(&c, &ts);
    bench_roots(&ts);
    rk_aetrees_fini(&ts);
    bench_apply();
    bench_observer(&c);
    rmdir(c.base);
    return 0;
}

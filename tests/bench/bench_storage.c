/* Storage benchmark: one thread, one rk_storage at a time, 16-byte keys and
 * JSON-like values. Measures put rates under each fsync policy, get rates
 * (random and hot set), compression after background repack beside the lz4
 * CLI on the same bytes, the commit path's fdatasync cost against a raw
 * fdatasync, reopen time with and without index files, and index memory per
 * key. It prints each figure beside its target and never fails on a missed
 * target: see README.md for what each figure means. */
#include "gen_json.h"
#include "storage/storage.h"
#include "util/err.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY_LEN       16                       /* the key size under test */
#define VERSION_BASE  (1700000000000ull << 16) /* HLC: 2023-11-14 wall ms, logical 0 */
#define POOL_BYTES    (32u << 20)              /* distinct values kept in memory, see make_pool */
#define POOL_MIN      16u   /* ... at least (values over 2 MiB fill a block alone) */
#define SCAN_CHUNK    1024  /* ops between clock reads in timed loops */
#define VERIFY_SAMPLE 10000 /* gets whose value is compared after loading */
#define FSYNC_ROUNDS  8     /* raw and commit-path fsync samples alternate this often */
#define MICRO_WRITE   4096  /* bytes per raw pwrite+fdatasync */
#define MAX_NOTES     24
#define MAX_INFO      40

struct cfg {
    uint64_t keys;
    uint32_t vsize;
    uint32_t batch;
    uint64_t hot;
    uint64_t gets;
    double phase_secs;    /* time cap of each fixed-time or capped phase */
    uint64_t b1_puts;     /* fsync=never batch-1 phase: at most this many puts */
    uint32_t fsync_iters; /* samples of each fsync kind */
    uint64_t lz4_max;     /* bytes written for the lz4 CLI comparison */
    double step_secs;     /* give up on background work after this long */
    const char *base;
    bool keep;
    bool json;
    enum rk_log_level log_level; /* the engine's log lines below this are dropped */
};

enum fig {
    FIG_PUT_NEVER_BATCH,
    FIG_PUT_NEVER_B1,
    FIG_PUT_ALWAYS_B1,
    FIG_PUT_ALWAYS_BATCH,
    FIG_GET_RANDOM,
    FIG_GET_HOT,
    FIG_GET_RANDOM_REPACKED,
    FIG_RATIO_LOADED,
    FIG_RATIO,
    FIG_LZ4_RATIO,
    FIG_RATIO_VS_LZ4,
    FIG_REPACK_S,
    FIG_RATIO_RESEALED,
    FIG_REPACK_RESEALED_S,
    FIG_FDATASYNC_US,
    FIG_COMMIT_US,
    FIG_FSYNC_RATIO,
    FIG_REOPEN_INDEX_S,
    FIG_REOPEN_VERIFY_S,
    FIG_REOPEN_SCAN_S,
    FIG_INDEX_PER_KEY,
    FIG_RSS_PER_KEY,
    FIG_COUNT
};

enum cmp { CMP_NONE, CMP_AT_LEAST, CMP_AT_MOST };

struct fig_def {
    const char *name;  /* JSON key */
    const char *label; /* human line; "#" is replaced by the batch size */
    int prec;          /* decimals printed */
    enum cmp cmp;
    double target;
    bool small_only; /* the target is stated for 100-byte values only */
};

static const struct fig_def figs[FIG_COUNT] = {
    [FIG_PUT_NEVER_BATCH] = {"put_never_batch_per_s", "puts/s  fsync=never  batch=#", 0,
                             CMP_AT_LEAST, 500000, true},
    [FIG_PUT_NEVER_B1] = {"put_never_b1_per_s", "puts/s  fsync=never  batch=1", 0},
    [FIG_PUT_ALWAYS_B1] = {"put_always_b1_per_s", "puts/s  fsync=always batch=1", 0},
    [FIG_PUT_ALWAYS_BATCH] = {"put_always_batch_per_s", "puts/s  fsync=always batch=#", 0},
    [FIG_GET_RANDOM] = {"get_random_per_s", "gets/s  random, all keys", 0},
    [FIG_GET_HOT] = {"get_hot_per_s", "gets/s  hot set", 0, CMP_AT_LEAST, 1000000},
    [FIG_GET_RANDOM_REPACKED] = {"get_random_repacked_per_s", "gets/s  random, reopened+repacked",
                                 0},
    [FIG_RATIO_LOADED] = {"ratio_loaded", "compression raw/disk, as written", 2},
    [FIG_RATIO] = {"ratio", "compression raw/disk, after repack", 2, CMP_AT_LEAST, 2.3},
    [FIG_LZ4_RATIO] = {"lz4_cli_ratio", "lz4 CLI -b1 -B16384, key+value bytes", 2},
    [FIG_RATIO_VS_LZ4] = {"ratio_vs_lz4", "our ratio / lz4 CLI ratio", 2},
    [FIG_REPACK_S] = {"repack_s", "background work until idle, s", 2},
    [FIG_RATIO_RESEALED] = {"ratio_resealed", "compression, reopened + repacked", 2, CMP_AT_LEAST,
                            2.3},
    [FIG_REPACK_RESEALED_S] = {"repack_resealed_s", "background work after reopen, s", 2},
    [FIG_FDATASYNC_US] = {"fdatasync_us", "raw 4 KiB pwrite+fdatasync, median us", 1},
    [FIG_COMMIT_US] = {"commit_always_us", "commit of 1 put, fsync=always, median us", 1},
    [FIG_FSYNC_RATIO] = {"fsync_ratio", "commit / raw fdatasync", 2, CMP_AT_MOST, 1.1},
    [FIG_REOPEN_INDEX_S] = {"reopen_index_s", "reopen with index files, s", 3, CMP_AT_MOST, 1.0},
    [FIG_REOPEN_VERIFY_S] = {"reopen_verify_s", "reopen with index files, verify (ringkvd), s", 3},
    [FIG_REOPEN_SCAN_S] = {"reopen_scan_s", "reopen without index files (scan), s", 3},
    [FIG_INDEX_PER_KEY] = {"index_bytes_per_key", "index bytes/key beyond the key", 1, CMP_AT_MOST,
                           64},
    [FIG_RSS_PER_KEY] = {"rss_bytes_per_key", "RSS delta/key beyond the key", 1, CMP_AT_MOST, 64},
};

struct info {
    const char *name;
    double v;
};

struct bench {
    struct cfg cfg;
    double fig[FIG_COUNT];
    bool have[FIG_COUNT];
    struct info info[MAX_INFO];
    int ninfo;
    char notes[MAX_NOTES][256];
    int nnotes;
    int nerrors;
    FILE *out;      /* human-readable lines */
    char dir[4096]; /* this run's private directory under cfg.base */
    char *pool;     /* pool_n values of cfg.vsize bytes */
    uint32_t pool_n;
    uint64_t version;
    uint64_t rng;
};

/* ---- small helpers ---------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(struct bench *b)
{
    b->rng += 0x9e3779b97f4a7c15ull;
    return rk_genjson_mix(b->rng);
}

/* Key i: 16 lowercase hex digits of a bijective mix of i, so keys are unique
 * and spread the way hashed ids are. Written by hand: it sits in timed loops. */
static void make_key(char *k, uint64_t i)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t x = rk_genjson_mix(i);

    for (int j = KEY_LEN - 1; j >= 0; j--) {
        k[j] = hex[x & 15];
        x >>= 4;
    }
}

static const char *value_of(const struct bench *b, uint64_t i)
{
    return b->pool + (size_t)(i % b->pool_n) * b->cfg.vsize;
}

static void note(struct bench *b, const char *fmt, ...)
{
    va_list ap;

    if (b->nnotes == MAX_NOTES)
        return;
    va_start(ap, fmt);
    vsnprintf(b->notes[b->nnotes], sizeof(b->notes[0]), fmt, ap);
    va_end(ap);
    fprintf(b->out, "  note: %s\n", b->notes[b->nnotes]);
    b->nnotes++;
}

static void fail(struct bench *b, const char *what, int rc)
{
    b->nerrors++;
    note(b, "ERROR %s: %s (%d)", what, rk_strerror(rc), rc);
}

static void info(struct bench *b, const char *name, double v)
{
    for (int i = 0; i < b->ninfo; i++) {
        if (strcmp(b->info[i].name, name) == 0) {
            b->info[i].v = v;
            return;
        }
    }
    if (b->ninfo < MAX_INFO)
        b->info[b->ninfo++] = (struct info){name, v};
}

static bool target_applies(const struct bench *b, enum fig f)
{
    return figs[f].cmp != CMP_NONE && !(figs[f].small_only && b->cfg.vsize > 100);
}

static bool target_met(enum fig f, double v)
{
    return figs[f].cmp == CMP_AT_LEAST ? v >= figs[f].target : v <= figs[f].target;
}

static void label_of(const struct bench *b, enum fig f, char *buf, size_t len)
{
    const char *hash = strchr(figs[f].label, '#');

    if (!hash) {
        snprintf(buf, len, "%s", figs[f].label);
        return;
    }
    snprintf(buf, len, "%.*s%u%s", (int)(hash - figs[f].label), figs[f].label, b->cfg.batch,
             hash + 1);
}

/* Record figure f and print its line with the target verdict. */
static void set_fig(struct bench *b, enum fig f, double v)
{
    char label[96];

    b->fig[f] = v;
    b->have[f] = true;
    label_of(b, f, label, sizeof(label));
    fprintf(b->out, "  %-44s %14.*f", label, figs[f].prec, v);
    if (target_applies(b, f))
        fprintf(b->out, "   target %s %.10g: %s",
                figs[f].cmp == CMP_AT_LEAST ? ">=" : "<=", figs[f].target,
                target_met(f, v) ? "ok" : "MISSED");
    fputc('\n', b->out);
    fflush(b->out);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place; returns the value at quantile q (0.5 = median). */
static double quantile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    return v[(size_t)(q * (double)(n - 1) + 0.5)];
}

static uint64_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int rkh_removed;

static int rm_index_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    size_t n = strlen(path);

    if (flag == FTW_F && n > 4 && strcmp(path + n - 4, ".rkh") == 0 && unlink(path) == 0)
        rkh_removed++;
    return 0;
}

/* Delete every index file (*.rkh) under dir; returns how many. */
static int remove_index_files(const char *dir)
{
    rkh_removed = 0;
    nftw(dir, rm_index_file, 16, FTW_PHYS);
    return rkh_removed;
}

/* Flush the file system holding dir (syncfs, not the whole machine). */
static void sync_fs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);

    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

static void subdir(const struct bench *b, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", b->dir, name);
}

/* ---- store operations ------------------------------------------------- */

static int open_store_v(struct bench *b, rk_storage **s, const char *dir, enum rk_fsync policy,
                        bool verify, struct rk_storage_report *rep)
{
    struct rk_storage_opts o;
    int rc;

    rk_storage_opts_default(&o);
    o.fsync = policy;
    o.verify = verify;
    if (o.max_value_size < b->cfg.vsize)
        o.max_value_size = b->cfg.vsize;
    rc = rk_storage_open(s, dir, &o, rep);
    if (rc != 0)
        note(b, "open %s: %s", dir, rep && rep->error[0] ? rep->error : rk_strerror(rc));
    return rc;
}

static int open_store(struct bench *b, rk_storage **s, const char *dir, enum rk_fsync policy,
                      struct rk_storage_report *rep)
{
    return open_store_v(b, s, dir, policy, false, rep);
}

static int put_one(struct bench *b, rk_storage *s, uint64_t i)
{
    char key[KEY_LEN];
    struct rk_record r = {0};

    make_key(key, i);
    r.key = key;
    r.klen = KEY_LEN;
    r.val = value_of(b, i);
    r.vlen = b->cfg.vsize;
    r.version = VERSION_BASE + ++b->version;
    r.partition = (uint16_t)(rk_genjson_mix(i ^ 0x5a5a) & 255);
    return rk_storage_put(s, &r, NULL);
}

/* Put keys [first, first + n) in commits of batch puts, stopping early once
 * secs have passed (secs <= 0: never). *done counts committed puts. */
static int put_run(struct bench *b, rk_storage *s, uint64_t first, uint64_t n, uint32_t batch,
                   double secs, uint64_t *done)
{
    double t0 = now_s();
    int rc;

    *done = 0;
    while (*done < n) {
        uint64_t k = n - *done < batch ? n - *done : batch;
        for (uint64_t j = 0; j < k; j++) {
            rc = put_one(b, s, first + *done + j);
            if (rc != 0)
                return rc;
        }
        rc = rk_storage_commit(s);
        if (rc != 0)
            return rc;
        *done += k;
        if (secs > 0 && now_s() - t0 >= secs)
            break;
    }
    return 0;
}

/* Timed put phase: returns puts/s, or -1 after reporting the error. */
static double put_rate(struct bench *b, rk_storage *s, uint64_t first, uint64_t n, uint32_t batch,
                       double secs, const char *what)
{
    uint64_t done = 0;
    double t0 = now_s();
    int rc = put_run(b, s, first, n, batch, secs, &done);
    double dt = now_s() - t0;

    if (rc != 0) {
        fail(b, what, rc);
        return -1;
    }
    return dt > 0 ? (double)done / dt : 0;
}

/* count gets of keys drawn uniformly from [first, first + range), stopping
 * after secs. Returns gets/s; misses counts RK_ENOTFOUND and errors. */
static double get_rate(struct bench *b, rk_storage *s, uint64_t first, uint64_t range,
                       uint64_t count, double secs, uint64_t *misses)
{
    char key[KEY_LEN];
    struct rk_record r;
    uint64_t done = 0;
    double t0 = now_s(), dt;

    *misses = 0;
    while (done < count) {
        for (int j = 0; j < SCAN_CHUNK && done < count; j++, done++) {
            make_key(key, first + rnd(b) % range);
            if (rk_storage_get(s, key, KEY_LEN, 0, &r) != 0)
                (*misses)++;
        }
        if (now_s() - t0 >= secs)
            break;
    }
    dt = now_s() - t0;
    return dt > 0 ? (double)done / dt : 0;
}

/* Compare the values of n keys spread over [0, keys) with what was put.
 * Returns the number of mismatches (absent, wrong length or bytes). */
static uint64_t verify(struct bench *b, rk_storage *s, uint64_t n, const char *when)
{
    char key[KEY_LEN];
    struct rk_record r;
    uint64_t bad = 0, first_bad = 0;
    int first_rc = 0;
    uint64_t step = b->cfg.keys / n ? b->cfg.keys / n : 1;

    for (uint64_t i = 0; i < b->cfg.keys; i += step) {
        make_key(key, i);
        int rc = rk_storage_get(s, key, KEY_LEN, 0, &r);
        if (rc == 0 && r.vlen == b->cfg.vsize && memcmp(r.val, value_of(b, i), r.vlen) == 0)
            continue;
        if (bad++ == 0) {
            first_bad = i;
            first_rc = rc;
        }
    }
    if (bad)
        note(b, "ERROR verify %s: %llu of %llu keys wrong; first key #%llu: %s", when,
             (unsigned long long)bad, (unsigned long long)(b->cfg.keys / step),
             (unsigned long long)first_bad, first_rc ? rk_strerror(first_rc) : "wrong value");
    b->nerrors += bad != 0;
    return bad;
}

static double stats_ratio(rk_storage *s, struct rk_storage_stats *st)
{
    rk_storage_stats(s, st);
    return st->disk_bytes ? (double)st->raw_bytes / (double)st->disk_bytes : 0;
}

/* ---- phases: scratch store and fdatasync ------------------------------ */

#define SCRATCH_FIRST (1ull << 40) /* scratch keys never collide with the main set */

/* Raw fdatasync cost beside the commit path's, sampled in alternating rounds
 * so that drift in the device (writeback, thermal) hits both alike. */
static void phase_fsync_compare(struct bench *b, rk_storage *s, uint64_t *next_key)
{
    char path[4200];
    static char block[MICRO_WRITE];
    uint32_t per = b->cfg.fsync_iters / FSYNC_ROUNDS ? b->cfg.fsync_iters / FSYNC_ROUNDS : 1;
    size_t n = (size_t)per * FSYNC_ROUNDS, nr = 0, nc = 0;
    double *raw = calloc(n, sizeof(double)), *com = calloc(n, sizeof(double));
    int fd = -1, rc;

    subdir(b, "fsync.dat", path, sizeof(path));
    memset(block, 'x', sizeof(block));
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (!raw || !com || fd < 0) {
        fail(b, "fsync micro: open or alloc", -errno);
        goto out;
    }
    rc = fallocate(fd, 0, 0, (off_t)n * MICRO_WRITE);
    if (rc != 0)
        note(b, "fallocate %s: %s (raw fdatasync runs on a growing file)", path, strerror(errno));
    fdatasync(fd);
    for (int round = 0; round < FSYNC_ROUNDS; round++) {
        for (uint32_t j = 0; j < per; j++, nr++) {
            double t0 = now_s();
            if (pwrite(fd, block, sizeof(block), (off_t)nr * MICRO_WRITE) != MICRO_WRITE ||
                fdatasync(fd) != 0) {
                fail(b, "fsync micro: pwrite/fdatasync", -errno);
                goto out;
            }
            raw[nr] = (now_s() - t0) * 1e6;
        }
        for (uint32_t j = 0; j < per; j++, nc++) {
            rc = put_one(b, s, (*next_key)++);
            double t0 = now_s();
            if (rc == 0)
                rc = rk_storage_commit(s);
            com[nc] = (now_s() - t0) * 1e6;
            if (rc != 0) {
                fail(b, "commit fsync=always", rc);
                goto out;
            }
        }
    }
    set_fig(b, FIG_FDATASYNC_US, quantile(raw, nr, 0.5));
    info(b, "fdatasync_p99_us", quantile(raw, nr, 0.99));
    set_fig(b, FIG_COMMIT_US, quantile(com, nc, 0.5));
    info(b, "commit_always_p99_us", quantile(com, nc, 0.99));
    if (b->fig[FIG_FDATASYNC_US] > 0)
        set_fig(b, FIG_FSYNC_RATIO, b->fig[FIG_COMMIT_US] / b->fig[FIG_FDATASYNC_US]);
out:
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    free(raw);
    free(com);
}

/* fsync=never with one put per commit, then fsync=always at batch 1 and at
 * the batch size, each for a fixed time, then the fdatasync comparison. A
 * scratch store keeps this data out of the main store's figures. */
static void phase_scratch(struct bench *b)
{
    char dir[4200];
    rk_storage *s;
    uint64_t next = SCRATCH_FIRST, n;
    double v;
    int rc;

    subdir(b, "scratch", dir, sizeof(dir));
    if (open_store(b, &s, dir, RK_FSYNC_NEVER, NULL) != 0)
        return;
    n = b->cfg.b1_puts < b->cfg.keys ? b->cfg.b1_puts : b->cfg.keys;
    v = put_rate(b, s, next, n, 1, b->cfg.phase_secs, "put fsync=never batch=1");
    next += n;
    if (v >= 0)
        set_fig(b, FIG_PUT_NEVER_B1, v);
    if ((rc = rk_storage_close(s)) != 0)
        fail(b, "close scratch store", rc);

    sync_fs(dir); /* start the fsync phases with no dirty backlog from the above */
    if (open_store(b, &s, dir, RK_FSYNC_ALWAYS, NULL) != 0)
        return;
    n = 20000; /* fixed time, but at most 20k commits: ~3 s at 150 us each */
    v = put_rate(b, s, next, n, 1, b->cfg.phase_secs, "put fsync=always batch=1");
    next += n;
    if (v >= 0)
        set_fig(b, FIG_PUT_ALWAYS_B1, v);
    v = put_rate(b, s, next, n * b->cfg.batch, b->cfg.batch, b->cfg.phase_secs,
                 "put fsync=always batch");
    next += n * b->cfg.batch;
    if (v >= 0)
        set_fig(b, FIG_PUT_ALWAYS_BATCH, v);
    phase_fsync_compare(b, s, &next);
    if ((rc = rk_storage_close(s)) != 0)
        fail(b, "close scratch store", rc);
    rm_tree(dir);
}

/* ---- phases: main store ----------------------------------------------- */

/* Load every key under fsync=never in commits of cfg.batch; figures for the
 * put rate, memory per key and compression as written. */
static int phase_load(struct bench *b, rk_storage **out, const char *dir)
{
    struct rk_storage_stats st;
    rk_storage *s;
    double v, keys = (double)b->cfg.keys;
    uint64_t rss0, rss1;

    if (open_store(b, &s, dir, RK_FSYNC_NEVER, NULL) != 0)
        return -1;
    malloc_trim(0); /* hand the scratch store's freed heap back, or the load reuses it unseen */
    rss0 = rss_bytes();
    v = put_rate(b, s, 0, b->cfg.keys, b->cfg.batch, 0, "load");
    rss1 = rss_bytes();
    if (v < 0) {
        rk_storage_close(s);
        return -1;
    }
    set_fig(b, FIG_PUT_NEVER_BATCH, v);
    double ratio = stats_ratio(s, &st);
    if (st.keys != b->cfg.keys)
        note(b, "ERROR stats.keys = %llu after loading %llu keys", (unsigned long long)st.keys,
             (unsigned long long)b->cfg.keys);
    set_fig(b, FIG_INDEX_PER_KEY, (double)st.index_bytes / keys - KEY_LEN);
    set_fig(b, FIG_RSS_PER_KEY, ((double)rss1 - (double)rss0) / keys - KEY_LEN);
    info(b, "rss_delta_mib", ((double)rss1 - (double)rss0) / (1 << 20));
    info(b, "cache_bytes_after_load", (double)st.cache_bytes);
    info(b, "rss_minus_cache_bytes_per_key",
         ((double)rss1 - (double)rss0 - (double)st.cache_bytes) / keys - KEY_LEN);
    info(b, "segments_after_load", (double)st.segments);
    info(b, "disk_mib_after_load", (double)st.disk_bytes / (1 << 20));
    set_fig(b, FIG_RATIO_LOADED, ratio);
    *out = s;
    return 0;
}

/* Random gets over all keys; with hot, over the first cfg.hot keys (written
 * together, so they share few blocks) after one untimed pass to warm the
 * block cache. */
static void phase_gets(struct bench *b, rk_storage *s, enum fig f, bool hot)
{
    uint64_t range = hot ? b->cfg.hot : b->cfg.keys, misses;
    double v;

    if (range > b->cfg.keys)
        range = b->cfg.keys;
    if (hot)
        get_rate(b, s, 0, range, range, b->cfg.phase_secs, &misses);
    v = get_rate(b, s, 0, range, b->cfg.gets, b->cfg.phase_secs, &misses);
    set_fig(b, f, v);
    if (misses) {
        b->nerrors++;
        note(b, "ERROR %llu gets failed (not found or error) of keys that were put",
             (unsigned long long)misses);
    }
}

/* What one repack phase reports. */
struct repack_figs {
    enum fig time, ratio;
    const char *steps, *segments, *disk_mib;
};

static const struct repack_figs after_load = {FIG_REPACK_S, FIG_RATIO, "repack_steps",
                                              "segments_after_repack", "disk_mib_after_repack"};
static const struct repack_figs after_reopen = {
    FIG_REPACK_RESEALED_S, FIG_RATIO_RESEALED, "repack_resealed_steps",
    "segments_after_resealed_repack", "disk_mib_after_resealed_repack"};

/* Run rk_storage_step until idle: the background repack of sealed segments
 * into full lz4 blocks, and the index files. Figures: its duration and the
 * ratio it leaves. */
static void phase_repack(struct bench *b, rk_storage *s, const struct repack_figs *rf)
{
    struct rk_storage_stats st;
    uint64_t steps = 0;
    double t0 = now_s(), dt;
    int rc;

    while ((rc = rk_storage_step(s)) == 1 && now_s() - t0 < b->cfg.step_secs)
        steps++;
    dt = now_s() - t0;
    info(b, rf->steps, (double)steps);
    if (rc < 0) {
        fail(b, "rk_storage_step", rc);
        return;
    }
    if (rc == 1)
        note(b, "background work still pending after %.0f s (%llu steps); stopped there", dt,
             (unsigned long long)steps);
    else
        set_fig(b, rf->time, dt);
    set_fig(b, rf->ratio, stats_ratio(s, &st));
    info(b, rf->segments, (double)st.segments);
    info(b, rf->disk_mib, (double)st.disk_bytes / (1 << 20));
    info(b, "raw_mib", (double)st.raw_bytes / (1 << 20));
    info(b, "merges", (double)st.merges);
    info(b, "index_files_written", (double)st.index_files_written);
}

/* Time one open of dir (verify: every block read and checked, as ringkvd
 * opens); rep says how it recovered. */
static double timed_open(struct bench *b, rk_storage **s, const char *dir, bool verify,
                         struct rk_storage_report *rep)
{
    double t0 = now_s();

    if (open_store_v(b, s, dir, RK_FSYNC_NEVER, verify, rep) != 0)
        return -1;
    if (rep->keys != b->cfg.keys)
        note(b, "ERROR reopen found %llu keys, %llu were put", (unsigned long long)rep->keys,
             (unsigned long long)b->cfg.keys);
    return now_s() - t0;
}

/* Reopen the closed main store with its index files, then again after
 * deleting them, so that every segment is scanned. Page cache is warm. */
static void phase_reopen(struct bench *b, const char *dir)
{
    struct rk_storage_report rep;
    rk_storage *s;
    double dt;

    if ((dt = timed_open(b, &s, dir, false, &rep)) < 0)
        return;
    set_fig(b, FIG_REOPEN_INDEX_S, dt);
    info(b, "reopen_segments", rep.segments);
    info(b, "reopen_from_index_files", rep.from_index_files);
    if (rep.from_index_files == 0)
        note(b, "reopen used no index file (%u segments, %u scanned)", rep.segments, rep.scanned);
    verify(b, s, 1000, "after reopen");
    /* Open sealed the segment that was active, so step now repacks it too. */
    phase_repack(b, s, &after_reopen);
    phase_gets(b, s, FIG_GET_RANDOM_REPACKED, false);
    rk_storage_close(s);

    /* The repacked store opened both ways, so the two compare. */
    if ((dt = timed_open(b, &s, dir, false, &rep)) < 0)
        return;
    info(b, "reopen_index_repacked_s", dt);
    rk_storage_close(s);
    if ((dt = timed_open(b, &s, dir, true, &rep)) < 0)
        return;
    set_fig(b, FIG_REOPEN_VERIFY_S, dt);
    rk_storage_close(s);

    info(b, "index_files_removed", remove_index_files(dir));
    if ((dt = timed_open(b, &s, dir, false, &rep)) < 0)
        return;
    set_fig(b, FIG_REOPEN_SCAN_S, dt);
    info(b, "reopen_scan_scanned", rep.scanned);
    verify(b, s, 1000, "after scan reopen");
    rk_storage_close(s);
}

static int main_store(struct bench *b)
{
    char dir[4200];
    rk_storage *s;
    int rc;

    subdir(b, "main", dir, sizeof(dir));
    if (phase_load(b, &s, dir) != 0)
        return -1;
    info(b, "verify_mismatches", (double)verify(b, s, VERIFY_SAMPLE, "after load"));
    phase_gets(b, s, FIG_GET_RANDOM, false);
    phase_gets(b, s, FIG_GET_HOT, true);
    phase_repack(b, s, &after_load);
    double t0 = now_s();
    if ((rc = rk_storage_close(s)) != 0)
        fail(b, "close main store", rc);
    info(b, "close_s", now_s() - t0);
    phase_reopen(b, dir);
    rm_tree(dir);
    return 0;
}

/* ---- lz4 CLI reference ------------------------------------------------ */

/* Run argv with stdout and stderr into buf; returns the exit status or -1. */
static int run_capture(char *const argv[], char *buf, size_t len)
{
    int p[2], status = -1;
    size_t got = 0;
    ssize_t n;
    pid_t pid;

    if (pipe(p) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    while (pid > 0 && (n = read(p[0], buf + got, len - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(p[0]);
    if (pid > 0 && waitpid(pid, &status, 0) != pid)
        status = -1;
    return status;
}

/* lz4 -b prints progress lines ending in "... -> N (R.RRR), ..."; the last
 * parenthesised number is the final ratio. */
static double parse_lz4_ratio(const char *out)
{
    double ratio = 0, r;
    const char *p = out;

    while ((p = strchr(p, '(')) != NULL) {
        char close;
        if (sscanf(p, "(%lf%c", &r, &close) == 2 && close == ')')
            ratio = r;
        p++;
    }
    return ratio;
}

/* The main store's key+value bytes, in write order, through lz4 -b1 with the
 * engine's 16 KiB block size; at most cfg.lz4_max bytes (a sample of the
 * same stationary stream when the data set is larger). */
static void phase_lz4(struct bench *b)
{
    char path[4200], key[KEY_LEN], out[8192];
    uint64_t n = b->cfg.lz4_max / (KEY_LEN + b->cfg.vsize);
    FILE *f;

    if (n > b->cfg.keys)
        n = b->cfg.keys;
    subdir(b, "lz4.dat", path, sizeof(path));
    if (!(f = fopen(path, "w"))) {
        fail(b, "lz4 input file", -errno);
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        make_key(key, i);
        fwrite(key, 1, KEY_LEN, f);
        fwrite(value_of(b, i), 1, b->cfg.vsize, f);
    }
    if (fclose(f) != 0) {
        fail(b, "lz4 input file", -errno);
        unlink(path);
        return;
    }
    info(b, "lz4_sample_mib", (double)(n * (KEY_LEN + b->cfg.vsize)) / (1 << 20));
    char *argv[] = {"lz4", "-b1", "-i1", "-B16384", path, NULL};
    int status = run_capture(argv, out, sizeof(out));
    double r = parse_lz4_ratio(out);
    unlink(path);
    if (status != 0 || r <= 0) {
        note(b, "lz4 CLI failed (status %d; is the lz4 package installed?)", status);
        return;
    }
    set_fig(b, FIG_LZ4_RATIO, r);
    if (b->have[FIG_RATIO_RESEALED] || b->have[FIG_RATIO])
        set_fig(b, FIG_RATIO_VS_LZ4,
                (b->have[FIG_RATIO_RESEALED] ? b->fig[FIG_RATIO_RESEALED] : b->fig[FIG_RATIO]) / r);
}

/* ---- output ----------------------------------------------------------- */

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_json(const struct bench *b)
{
    const struct cfg *c = &b->cfg;
    const char *sep = "";

    printf("{\"bench\":\"storage\",\"value_size\":%u,\"keys\":%llu,\"batch\":%u,"
           "\"hot_keys\":%llu,\"figures\":{",
           c->vsize, (unsigned long long)c->keys, c->batch, (unsigned long long)c->hot);
    for (int f = 0; f < FIG_COUNT; f++, sep = ",") {
        printf("%s\"%s\":", sep, figs[f].name);
        b->have[f] ? printf("%.10g", b->fig[f]) : printf("null");
    }
    printf("},\"targets\":{");
    sep = "";
    for (int f = 0; f < FIG_COUNT; f++) {
        if (!target_applies(b, f))
            continue;
        printf("%s\"%s\":\"%s %.10g\"", sep, figs[f].name,
               figs[f].cmp == CMP_AT_LEAST ? ">=" : "<=", figs[f].target);
        sep = ",";
    }
    printf("},\"info\":{");
    for (int i = 0; i < b->ninfo; i++)
        printf("%s\"%s\":%.10g", i ? "," : "", b->info[i].name, b->info[i].v);
    printf("},\"errors\":%d,\"notes\":[", b->nerrors);
    for (int i = 0; i < b->nnotes; i++) {
        if (i)
            putchar(',');
        json_str(b->notes[i]);
    }
    printf("]}\n");
}

static void print_missed(const struct bench *b)
{
    char label[96];
    int missed = 0;

    for (int f = 0; f < FIG_COUNT; f++) {
        if (!target_applies(b, f) || (b->have[f] && target_met(f, b->fig[f])))
            continue;
        label_of(b, f, label, sizeof(label));
        fprintf(b->out, "%s %s%s", missed++ ? "," : "  targets missed:", label,
                b->have[f] ? "" : " (not measured)");
    }
    fprintf(b->out, missed ? "\n" : "  all targets met\n");
}

/* ---- setup ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_storage [options]\n"
               "  --keys N          keys in the main store (1000000)\n"
               "  --value-size N    value bytes (100)\n"
               "  --batch N         puts per commit (64)\n"
               "  --hot N           hot-set keys (10000)\n"
               "  --gets N          gets per get phase (1000000)\n"
               "  --secs S          time cap of each fixed-time phase (2)\n"
               "  --b1-puts N       fsync=never batch=1 puts (200000)\n"
               "  --fsync-iters N   samples of raw and commit-path fdatasync each (2000)\n"
               "  --lz4-mb N        MiB of data given to the lz4 CLI (128)\n"
               "  --step-secs S     give up on background work after S seconds (20)\n"
               "  --dir DIR         where to create the run's data dir ($TMPDIR or /tmp)\n"
               "  --keep            keep the data dir\n"
               "  --json            one JSON object on stdout; the human lines go to stderr\n"
               "  --log-level L     the engine's log level: debug|info|warn|error (warn)\n");
}

/* A positive number; counts may be written 1e6. */
static bool num_arg(const char *s, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' && *out > 0;
}

static const struct option longopts[] = {
    {"keys", 1, 0, 'k'},    {"value-size", 1, 0, 'v'},
    {"batch", 1, 0, 'b'},   {"hot", 1, 0, 'H'},
    {"gets", 1, 0, 'g'},    {"secs", 1, 0, 's'},
    {"b1-puts", 1, 0, '1'}, {"fsync-iters", 1, 0, 'f'},
    {"lz4-mb", 1, 0, 'l'},  {"step-secs", 1, 0, 'S'},
    {"dir", 1, 0, 'd'},     {"keep", 0, 0, 'K'},
    {"json", 0, 0, 'j'},    {"log-level", 1, 0, 'L'},
    {"help", 0, 0, 'h'},    {0, 0, 0, 0},
};

/* Apply option o; -1 when its value is malformed. */
static int set_opt(struct cfg *c, int o, const char *arg)
{
    double v = 0;

    if (strchr("kvbHgs1flS", o) && !num_arg(arg, &v))
        return -1;
    switch (o) {
    case 'k':
        c->keys = (uint64_t)v;
        break;
    case 'v':
        c->vsize = v < RK_STORAGE_VALUE_MAX ? (uint32_t)v : RK_STORAGE_VALUE_MAX;
        break;
    case 'b':
        c->batch = (uint32_t)v;
        break;
    case 'H':
        c->hot = (uint64_t)v;
        break;
    case 'g':
        c->gets = (uint64_t)v;
        break;
    case 's':
        c->phase_secs = v;
        break;
    case '1':
        c->b1_puts = (uint64_t)v;
        break;
    case 'f':
        c->fsync_iters = v < FSYNC_ROUNDS ? FSYNC_ROUNDS : (uint32_t)v;
        break;
    case 'l':
        c->lz4_max = (uint64_t)(v * (1 << 20));
        break;
    case 'S':
        c->step_secs = v;
        break;
    case 'd':
        c->base = arg;
        break;
    case 'K':
        c->keep = true;
        break;
    case 'j':
        c->json = true;
        break;
    case 'L':
        return rk_log_parse_level(arg, &c->log_level) == 0 ? 0 : -1;
    }
    return 0;
}

static int parse_args(struct cfg *c, int argc, char **argv)
{
    int o, idx = 0;

    while ((o = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        if (o == 'h') {
            usage(stdout);
            exit(0);
        }
        if (o == '?') {
            usage(stderr);
            return -1;
        }
        if (set_opt(c, o, optarg) != 0) {
            fprintf(stderr, "bench_storage: --%s %s: want %s\n", longopts[idx].name, optarg,
                    o == 'L' ? "debug, info, warn or error" : "a positive number");
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench_storage: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Distinct values, cycled by key number: generating JSON inside the timed
 * put loops would measure the generator. POOL_BYTES of them keep every
 * 16 KiB block (and lz4's 64 KiB window) free of repeats. */
static int make_pool(struct bench *b)
{
    uint64_t n = POOL_BYTES / b->cfg.vsize;

    if (n < POOL_MIN)
        n = POOL_MIN;
    if (n > b->cfg.keys)
        n = b->cfg.keys;
    b->pool_n = (uint32_t)n;
    b->pool = malloc((size_t)n * b->cfg.vsize);
    if (!b->pool)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        rk_genjson_fill(b->pool + (size_t)i * b->cfg.vsize, b->cfg.vsize, i);
    return 0;
}

static const char *fs_name(const char *dir)
{
    struct statfs sf;

    if (statfs(dir, &sf) != 0)
        return "unknown";
    switch ((unsigned long)sf.f_type) {
    case 0xEF53:
        return "ext4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x01021994:
        return "tmpfs";
    case 0x794c7630:
        return "overlayfs";
    default:
        return "other";
    }
}

static int setup(struct bench *b)
{
    const char *fs;

    if (!b->cfg.base)
        b->cfg.base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(b->dir, sizeof(b->dir), "%s/rk_bench.XXXXXX", b->cfg.base);
    if (!mkdtemp(b->dir)) {
        fprintf(stderr, "bench_storage: mkdtemp %s: %s (is --dir writable?)\n", b->dir,
                strerror(errno));
        return -1;
    }
    if (make_pool(b) != 0) {
        fprintf(stderr, "bench_storage: out of memory for the value pool\n");
        rm_tree(b->dir);
        return -1;
    }
    fs = fs_name(b->dir);
    fprintf(b->out,
            "bench_storage: %llu keys x %u B values (16 B keys), batch %u, hot set %llu\n"
            "  data dir %s (%s)\n",
            (unsigned long long)b->cfg.keys, b->cfg.vsize, b->cfg.batch,
            (unsigned long long)b->cfg.hot, b->dir, fs);
    if (b->cfg.keys < 1000000)
        note(b, "%llu keys, fewer than the 1M of the stated targets",
             (unsigned long long)b->cfg.keys);
    if (strcmp(fs, "tmpfs") == 0)
        note(b, "data dir on tmpfs: fdatasync is a no-op there, fsync figures mean nothing");
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;

    b.cfg = (struct cfg){
        .keys = 1000000,
        .vsize = 100,
        .batch = 64,
        .hot = 10000,
        .gets = 1000000,
        .phase_secs = 2,
        .b1_puts = 200000,
        .fsync_iters = 2000,
        .lz4_max = 128u << 20,
        .step_secs = 20,
        .log_level = RK_LOG_WARN,
    };
    if (parse_args(&b.cfg, argc, argv) != 0)
        return 1;
    b.out = b.cfg.json ? stderr : stdout;
    rk_log_set_level(b.cfg.log_level);
    if (setup(&b) != 0)
        return 1;
    phase_scratch(&b);
    main_store(&b);
    phase_lz4(&b);
    print_missed(&b);
    if (b.cfg.json)
        print_json(&b);
    if (b.cfg.keep)
        fprintf(b.out, "  kept %s\n", b.dir);
    else
        rm_tree(b.dir);
    free(b.pool);
    return b.nerrors ? 2 : 0;
}

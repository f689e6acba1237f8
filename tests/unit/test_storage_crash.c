/* Crash-safety tests of the storage engine: a torn tail cut at hundreds of
 * offsets inside the last group-commit batch, kill -9 of a writer at random
 * moments with every acknowledged write checked afterwards, and a flipped
 * bit in a sealed segment (refused, detected on read, or quarantined with
 * repair). Writers run in forked children, which report through their exit
 * status and never call cmocka. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SF_TAG "crash"
#include "storage_fixture.h"

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wait_child_ok(pid_t pid, const char *what)
{
    int status = fx_wait(pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s child failed: " TU_STATUS_FMT " (see its stderr)", what,
                 TU_STATUS_ARGS(status));
}

/* ==== torn tail ==== */

#define TORN_FIRST       100u /* keys written and closed in a first session */
#define TORN_BATCHES     20u  /* committed batches in the crashing session */
#define TORN_PER         10u  /* records per batch */
#define TORN_LAST        40u  /* records of ~1 KiB in the torn batch: several blocks */
#define TORN_TOTAL       (TORN_FIRST + TORN_BATCHES * TORN_PER + TORN_LAST)
#define TORN_VERSION(id) ((1700000000000ull << 16) + 1 + (id))

static void torn_opts(struct rk_storage_opts *o)
{
    rk_storage_opts_default(o);
    o->segment_size = 1 << 20; /* small preallocation: the dir is copied 200+ times */
}

/* Writes ids [from, TORN_TOTAL) in batches and exits without closing. */
static void torn_child(const char *dir, struct tu_model *m)
{
    struct rk_storage_opts o;
    torn_opts(&o);
    rk_storage *s;
    struct rk_storage_report rep;
    int rc = tu_open(&s, dir, &o, &rep);
    TU_CHILD_CHECK(rc == 0, 2, "open: %s: %s", rk_strerror(rc), rep.error);
    uint32_t id = TORN_FIRST;
    for (uint32_t b = 0; b <= TORN_BATCHES; b++) {
        uint32_t n = b < TORN_BATCHES ? TORN_PER : TORN_LAST;
        for (uint32_t i = 0; i < n; i++, id++) {
            rc = tu_put(s, m, id, TORN_VERSION(id), 0);
            TU_CHILD_CHECK(rc == 0, 3, "put: %s", rk_strerror(rc));
        }
        rc = rk_storage_commit(s);
        TU_CHILD_CHECK(rc == 0, 4, "commit: %s", rk_strerror(rc));
    }
    _exit(0);
}

/* Offsets to cut at: block boundaries and their neighbours, evenly spaced
 * ones, and random ones, all inside [first, end). */
static int torn_offsets(uint64_t *off, int cap, const struct tu_block *b, int nb, uint64_t first,
                        uint64_t end, uint64_t *rng)
{
    int n = 0;
    for (int i = 0; i < nb && n + 6 < cap; i++) {
        uint64_t d[] = {b[i].off,      b[i].off + 1,  b[i].off + 31,
                        b[i].off + 32, b[i].off + 33, b[i].off + 32 + b[i].stored_len - 1};
        for (size_t j = 0; j < sizeof(d) / sizeof(d[0]); j++)
            off[n++] = d[j];
    }
    uint64_t span = end - first;
    for (int i = 0; i < 150 && n < cap; i++)
        off[n++] = first + span * (uint64_t)i / 150;
    while (n < cap)
        off[n++] = first + tu_rand_below(rng, span);
    return n;
}

static bool log_names(const char *log, const char *name, uint64_t off)
{
    char dec[32], hex[32], hex0[32];
    snprintf(dec, sizeof(dec), "%" PRIu64, off);
    snprintf(hex, sizeof(hex), "%" PRIx64, off);
    snprintf(hex0, sizeof(hex0), "0x%" PRIx64, off);
    for (const char *l = log; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[1100];
        snprintf(line, sizeof(line), "%.*s", (int)(len < 1099 ? len : 1099), l);
        /* the file by name, or by its id as the engine prints it */
        char id[17];
        snprintf(id, sizeof(id), "%.16s", name + 4);
        bool file = strstr(line, name) || strstr(line, id);
        bool at = strstr(line, dec) || strstr(line, hex0);
        (void)hex;
        if (file && at)
            return true;
        l = nl ? nl + 1 : NULL;
    }
    return false;
}

static void test_torn_tail_all_or_nothing(void **state)
{
    struct fx *f = *state;
    uint64_t rng = tu_seed("torn_tail");
    char data[600], orig[600];
    fx_path(f, "data", data, sizeof(data), true);
    fx_path(f, "orig", orig, sizeof(orig), false);

    struct rk_storage_opts o;
    torn_opts(&o);
    struct tu_model m;
    tu_model_init(&m, TORN_TOTAL, 8, 900, 1100);
    rk_storage *s = open_ok_ctx(data, &o, NULL, "first session");
    for (uint32_t id = 0; id < TORN_FIRST; id++)
        assert_rc(tu_put(s, &m, id, TORN_VERSION(id), 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_close(s), 0);

    pid_t pid = fx_fork();
    if (pid == 0)
        torn_child(data, &m);
    wait_child_ok(pid, "torn-tail writer");
    for (uint32_t id = TORN_FIRST; id < TORN_TOTAL; id++)
        m.kv[id] = (struct tu_kv){TORN_VERSION(id), 0, true, false};
    assert_rc(tu_copy_dir(data, orig), 0);

    /* find the last batch: after the last-but-one commit block */
    struct tu_seg segs[64];
    int ns = tu_segments(orig, segs, 64);
    assert_true(ns >= 2);
    const struct tu_seg *newest = &segs[ns - 1];
    struct tu_block blk[256];
    int nb = tu_blocks(newest->path, blk, 256);
    assert_true(nb > 0);
    if (!(blk[nb - 1].flags & TU_BLOCK_COMMIT))
        fail_msg("last block of %s lacks the commit flag", newest->name);
    int k = nb - 1;
    while (k > 0 && !(blk[k - 1].flags & TU_BLOCK_COMMIT))
        k--;
    int ncommits = 0;
    for (int i = 0; i < nb; i++)
        ncommits += (blk[i].flags & TU_BLOCK_COMMIT) != 0;
    assert_int_equal(ncommits, TORN_BATCHES + 1);
    if (nb - k < 2)
        fail_msg("the last batch (%u records of ~1 KiB) fits one block; expected several",
                 TORN_LAST);
    uint64_t first = blk[k].off;
    uint64_t end = blk[nb - 1].off + TU_BLOCK_HEADER + blk[nb - 1].stored_len;

    struct tu_model want;
    tu_model_copy(&want, &m);
    for (uint32_t id = TORN_TOTAL - TORN_LAST; id < TORN_TOTAL; id++)
        want.kv[id].present = false;

    uint64_t offs[240];
    int noff = torn_offsets(offs, 240, &blk[k], nb - k, first, end, &rng);
    char newest_data[700];
    snprintf(newest_data, sizeof(newest_data), "%s/%s", data, newest->name);
    struct tu_log log;
    tu_log_capture(&log);
    for (int i = 0; i < noff; i++) {
        uint64_t off = offs[i];
        bool garbage = (i % 4 == 3) || off == first;
        assert_rc(tu_copy_dir(orig, data), 0);
        if (garbage)
            assert_rc(tu_garbage(newest_data, off, end - off, &rng), 0);
        else
            assert_rc(tu_truncate(newest_data, off), 0);

        tu_log_clear(&log);
        char ctx[128];
        snprintf(ctx, sizeof(ctx), "%s at %" PRIu64 " (batch %" PRIu64 "..%" PRIu64 ")",
                 garbage ? "garbage" : "truncate", off, first, end);
        struct rk_storage_report rep;
        rk_storage *t = open_ok_ctx(data, &o, &rep, ctx);
        /* all of [first, off) is cut; zero bytes at its very end look like
         * preallocation and need not be counted */
        if (rep.torn_bytes == 0 || (!garbage && rep.torn_bytes > off - first) ||
            rep.torn_bytes > end - first)
            fail_msg("%s: torn_bytes %" PRIu64, ctx, rep.torn_bytes);
        if (!log_names(log.buf, newest->name, first))
            fail_msg("%s: no log line names %s and offset %" PRIu64 "; log:\n%s", ctx, newest->name,
                     first, log.buf);
        assert_model_at(t, &want, wall_ms(), 0, "%s", ctx);
        assert_int_equal(rep.keys, TORN_TOTAL - TORN_LAST);

        if (i % 10 == 0) {
            /* the cut is durable: new writes land after it, nothing returns */
            assert_rc(tu_put(t, &want, 0, TORN_VERSION(TORN_TOTAL) + (uint64_t)i, 0), 0);
            assert_rc(rk_storage_commit(t), 0);
            assert_rc(rk_storage_close(t), 0);
            t = open_ok_ctx(data, &o, &rep, "reopen after torn tail");
            assert_int_equal(rep.torn_bytes, 0);
            assert_model_at(t, &want, wall_ms(), 0, "reopen after %s", ctx);
            want.kv[0] = m.kv[0];
        }
        assert_rc(rk_storage_close(t), 0);
    }
    tu_log_release(&log);
    tu_model_free(&want);
    tu_model_free(&m);
    f->ok = true;
}

/* ==== kill -9 of a writer ==== */

struct ack {
    uint32_t id;
    uint32_t tomb;
    uint64_t version;
};

#define CRASH_KEYS 2000u

static void crash_opts(struct rk_storage_opts *o)
{
    rk_storage_opts_default(o);
    o->fsync = RK_FSYNC_ALWAYS;
    o->segment_size = 256 << 10;
}

/* Puts and deletes random keys in batches of 1-16, acknowledging each
 * committed batch on wfd, until killed. */
static void crash_child(const char *dir, int wfd, uint64_t rng, uint64_t base, struct tu_model *m)
{
    alarm(60); /* never outlive a parent that died */
    struct rk_storage_opts o;
    crash_opts(&o);
    rk_storage *s;
    struct rk_storage_report rep;
    int rc = tu_open(&s, dir, &o, &rep);
    TU_CHILD_CHECK(rc == 0, 2, "open: %s: %s", rk_strerror(rc), rep.error);
    uint64_t seq = 0;
    for (;;) {
        struct ack acks[16];
        uint32_t n = 1 + (uint32_t)tu_rand_below(&rng, 16);
        for (uint32_t i = 0; i < n; i++) {
            struct ack *a = &acks[i];
            a->id = (uint32_t)tu_rand_below(&rng, m->n);
            a->version = base + ++seq;
            a->tomb = tu_rand_below(&rng, 10) == 0;
            rc = a->tomb ? tu_del(s, m, a->id, a->version) : tu_put(s, m, a->id, a->version, 0);
            TU_CHILD_CHECK(rc == 0, 3, "%s key %u version %" PRIu64 ": %s", a->tomb ? "del" : "put",
                           a->id, a->version, rk_strerror(rc));
        }
        rc = rk_storage_commit(s);
        TU_CHILD_CHECK(rc == 0, 4, "commit: %d (%s)", rc, rk_strerror(rc));
        ssize_t w = write(wfd, acks, n * sizeof(acks[0]));
        TU_CHILD_CHECK(w == (ssize_t)(n * sizeof(acks[0])), 5, "pipe write: %s", strerror(errno));
        rc = rk_storage_step(s);
        TU_CHILD_CHECK(rc >= 0, 6, "step: %d (%s)", rc, rk_strerror(rc));
        TU_CHILD_CHECK(seq < (1u << 23), 7, "never killed");
    }
}

struct crash_ctx {
    uint64_t seed;
    int cycle;
    uint64_t delay_us;
    char text[96]; /* "seed S cycle C delay Dus", prefixes failure messages */
};

static void apply_acks(struct tu_model *acked, const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i + sizeof(struct ack) <= len; i += sizeof(struct ack)) {
        struct ack a;
        memcpy(&a, buf + i, sizeof(a));
        assert_true(a.id < acked->n);
        struct tu_kv *kv = &acked->kv[a.id];
        if (a.version > kv->version)
            *kv = (struct tu_kv){a.version, 0, true, a.tomb != 0};
    }
}

/* Reads acknowledgements until deadline_us (0 = until EOF). */
static void read_acks(int rfd, struct tu_model *acked, uint64_t deadline_us, unsigned char *pend,
                      size_t *npend)
{
    for (;;) {
        int timeout = -1;
        if (deadline_us) {
            uint64_t now = tu_mono_us();
            if (now >= deadline_us)
                return;
            timeout = (int)((deadline_us - now + 999) / 1000);
        }
        struct pollfd p = {rfd, POLLIN, 0};
        int pr = poll(&p, 1, timeout);
        if (pr < 0 && errno == EINTR)
            continue;
        assert_true(pr >= 0);
        if (pr == 0)
            continue;
        ssize_t n = read(rfd, pend + *npend, 4096);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            return; /* EOF: the child is gone */
        *npend += (size_t)n;
        size_t whole = *npend / sizeof(struct ack) * sizeof(struct ack);
        apply_acks(acked, pend, whole);
        memmove(pend, pend + whole, *npend - whole);
        *npend -= whole;
    }
}

/* Every acknowledged write must be there; a newer version may be there too
 * (committed but killed before its acknowledgement), and then must be
 * intact. The model is updated to what the store holds. */
static void crash_verify(rk_storage *s, struct tu_model *acked, const struct crash_ctx *c)
{
    static char val[TU_VAL_CAP];
    for (uint32_t id = 0; id < acked->n; id++) {
        struct tu_kv *kv = &acked->kv[id];
        char key[TU_KEY_CAP];
        uint32_t klen = tu_key(key, id);
        struct rk_record r;
        int rc = rk_storage_get(s, key, klen, RK_GET_TOMBSTONES, &r);
        if (rc == RK_ENOTFOUND && !kv->present)
            continue;
        if (rc != 0)
            fail_msg("%s: %s: get = %d (%s), acknowledged version %" PRIu64 " tombstone %d",
                     c->text, key, rc, rk_strerror(rc), kv->version, kv->tomb);
        if (kv->present &&
            (r.version < kv->version || (r.version == kv->version && r.tombstone != kv->tomb)))
            fail_msg("%s: %s: found version %" PRIu64 " tombstone %d, acknowledged version %" PRIu64
                     " tombstone %d",
                     c->text, key, r.version, r.tombstone, kv->version, kv->tomb);
        if (!r.tombstone) {
            uint32_t vlen = tu_val(acked, val, id, r.version);
            if (r.vlen != vlen || memcmp(r.val, val, vlen) != 0 || r.expiry_ms != 0 ||
                r.partition != id % acked->partitions)
                fail_msg("%s: %s version %" PRIu64 ": wrong value (vlen %u, want %u) or metadata",
                         c->text, key, r.version, r.vlen, vlen);
        }
        *kv = (struct tu_kv){r.version, 0, true, r.tombstone};
    }
}

static void test_kill9_keeps_acknowledged_writes(void **state)
{
    struct fx *f = *state;
    struct crash_ctx c = {.seed = tu_seed("kill9")};
    uint64_t rng = c.seed;
    int cycles = 50;
    const char *env = getenv("RINGKV_CRASH_CYCLES");
    if (env && atoi(env) > 0)
        cycles = atoi(env);

    struct tu_model acked;
    tu_model_init(&acked, CRASH_KEYS, 16, 20, 2000);
    struct rk_storage_opts o;
    crash_opts(&o);
    uint64_t base = 0;
    unsigned char *pend = malloc(8192);
    int killed_mid = 0;
    for (c.cycle = 0; c.cycle < cycles; c.cycle++) {
        uint64_t b = wall_ms() << 16;
        base = b > base + (1u << 24) ? b : base + (1u << 24);
        c.delay_us = tu_rand_below(&rng, 50000);
        snprintf(c.text, sizeof(c.text), "seed %" PRIu64 " cycle %d delay %" PRIu64 "us", c.seed,
                 c.cycle, c.delay_us);
        uint64_t child_rng = tu_rand(&rng);
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fx_fork();
        if (pid == 0) {
            close(pfd[0]);
            crash_child(f->dir, pfd[1], child_rng, base, &acked);
        }
        close(pfd[1]);
        size_t npend = 0;
        read_acks(pfd[0], &acked, tu_mono_us() + c.delay_us, pend, &npend);
        kill(pid, SIGKILL);
        read_acks(pfd[0], &acked, 0, pend, &npend);
        close(pfd[0]);
        int status = fx_wait(pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("%s: writer ended by itself: " TU_STATUS_FMT " (see stderr)", c.text,
                     TU_STATUS_ARGS(status));
        killed_mid++;

        rk_storage *s = open_ok_ctx(f->dir, &o, NULL, c.text);
        crash_verify(s, &acked, &c);
        assert_rc(rk_storage_close(s), 0);
    }
    struct tu_seg *segs = calloc(4096, sizeof(*segs));
    int ns = tu_segments(f->dir, segs, 4096);
    free(segs);
    print_message("kill9: %d cycles, %u keys known, %d segment files\n", killed_mid,
                  tu_live(&acked, wall_ms()), ns);
    free(pend);
    tu_model_free(&acked);
    f->ok = true;
}

/* ==== a flipped bit in a sealed segment ==== */

#define FLIP_KEYS   1500u
#define SEG_UNKNOWN UINT64_MAX

static void flip_opts(struct rk_storage_opts *o, bool repair)
{
    rk_storage_opts_default(o);
    o->segment_size = 64 << 10;
    o->repack_below = 0; /* keep the layout we made */
    o->repair = repair;
}

static uint64_t newest_seg(const char *dir)
{
    struct tu_seg segs[256];
    int n = tu_segments(dir, segs, 256);
    assert_true(n > 0);
    return segs[n - 1].id;
}

/* Each key written once, in batches of 20; seg_of[id] = the segment it went
 * to when the newest segment was the same before and after its commit. */
static void flip_build(const char *dir, struct tu_model *m, uint64_t *seg_of)
{
    struct rk_storage_opts o;
    flip_opts(&o, false);
    rk_storage *s = open_ok_ctx(dir, &o, NULL, "build");
    for (uint32_t id = 0; id < m->n; id += 20) {
        uint64_t before = newest_seg(dir);
        uint32_t end = id + 20 < m->n ? id + 20 : m->n;
        for (uint32_t j = id; j < end; j++)
            assert_rc(tu_put(s, m, j, (1700000000000ull << 16) + j, 0), 0);
        assert_rc(rk_storage_commit(s), 0);
        uint64_t after = newest_seg(dir);
        for (uint32_t j = id; j < end; j++)
            seg_of[j] = before == after ? before : SEG_UNKNOWN;
    }
    assert_rc(rk_storage_close(s), 0);
}

/* After repair: keys of the quarantined segment are gone, keys elsewhere
 * are intact, keys of unknown place either. Returns the keys present. */
static uint64_t flip_check_repaired(rk_storage *s, const struct tu_model *m, const uint64_t *seg_of,
                                    uint64_t target)
{
    uint64_t present = 0;
    char why[1024];
    for (uint32_t id = 0; id < m->n; id++) {
        char key[TU_KEY_CAP];
        struct rk_record r;
        int rc = rk_storage_get(s, key, tu_key(key, id), 0, &r);
        if (seg_of[id] == target && rc != RK_ENOTFOUND)
            fail_msg("key-%07u was in the quarantined segment, get = %d (%s)", id, rc,
                     rk_strerror(rc));
        if (seg_of[id] != target && seg_of[id] != SEG_UNKNOWN &&
            tu_check_key(s, m, id, 0, 0, why, sizeof(why)) != 0)
            fail_msg("key outside the quarantined segment: %s", why);
        if (seg_of[id] == SEG_UNKNOWN && rc != RK_ENOTFOUND &&
            tu_check_key(s, m, id, 0, 0, why, sizeof(why)) != 0)
            fail_msg("%s", why);
        present += rc == 0;
    }
    return present;
}

/* seg_records: the records in the damaged segment, from its block headers. */
static void flip_repair_open(const char *dir, const struct tu_model *m, const uint64_t *seg_of,
                             const struct tu_seg *target, uint64_t seg_records)
{
    struct rk_storage_opts o;
    flip_opts(&o, true);
    struct rk_storage_report rep;
    rk_storage *s = open_ok_ctx(dir, &o, &rep, "repair");
    uint64_t present = flip_check_repaired(s, m, seg_of, target->id);
    assert_rc(rk_storage_close(s), 0);
    assert_int_equal(rep.quarantined, 1);
    assert_int_equal(rep.keys, present);
    assert_true(present < m->n);
    /* the whole segment is moved aside, so every record in it is lost */
    uint64_t in_target = 0;
    for (uint32_t id = 0; id < m->n; id++)
        in_target += seg_of[id] == target->id;
    assert_true(seg_records >= in_target);
    if (rep.records_lost != seg_records)
        fail_msg("records_lost %" PRIu64 ", but %s, which was quarantined, held %" PRIu64
                 " records (%" PRIu64 " keys known to be only there)",
                 rep.records_lost, target->name, seg_records, in_target);

    /* moved aside, not deleted: the operator (or anti-entropy) decides */
    assert_true(tu_file_size(target->path) < 0);
    char aside[256] = "";
    if (tu_count_names(dir, "corrupt", aside, sizeof(aside)) != 1)
        fail_msg("expected one file named *corrupt* in %s", dir);
    char idhex[17];
    snprintf(idhex, sizeof(idhex), "%.16s", target->name + 4);
    if (!strstr(aside, idhex))
        fail_msg("quarantined file \"%s\" does not name segment %s", aside, idhex);

    /* a later plain open does not trip over it */
    flip_opts(&o, false);
    s = open_ok_ctx(dir, &o, &rep, "open after repair");
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(flip_check_repaired(s, m, seg_of, target->id), present);
    assert_rc(rk_storage_close(s), 0);
}

static void test_bit_flip_in_sealed_segment(void **state)
{
    struct fx *f = *state;
    uint64_t rng = tu_seed("bit_flip");
    char data[600], copy[600];
    fx_path(f, "data", data, sizeof(data), true);
    fx_path(f, "flipped", copy, sizeof(copy), false);
    struct tu_model *mp = &f->m;
    tu_model_init(mp, FLIP_KEYS, 16, 200, 800);
    uint64_t *seg_of = f->buf = calloc(FLIP_KEYS, sizeof(*seg_of));
    flip_build(data, mp, seg_of);

    /* a sealed segment, not the newest, holding keys we can name */
    struct tu_seg segs[256];
    int ns = tu_segments(data, segs, 256);
    if (ns < 4)
        fail_msg("expected several segments with segment_size 64 KiB, found %d", ns);
    const struct tu_seg *target = NULL;
    for (int i = ns / 2; i >= 0 && !target; i--) {
        for (uint32_t id = 0; id < FLIP_KEYS; id++) {
            if (seg_of[id] == segs[i].id) {
                target = &segs[i];
                break;
            }
        }
    }
    assert_non_null(target);
    struct tu_block blk[256];
    int nb = tu_blocks(target->path, blk, 256);
    assert_true(nb > 0);
    uint64_t seg_records = 0;
    for (int i = 0; i < nb; i++)
        seg_records += blk[i].count;
    const struct tu_block *b = &blk[tu_rand_below(&rng, (uint64_t)nb)];
    uint64_t at = b->off + TU_BLOCK_HEADER + tu_rand_below(&rng, b->stored_len);
    unsigned bit = (unsigned)tu_rand_below(&rng, 8);
    print_message("flipping bit %u at %" PRIu64 " of %s (block at %" PRIu64 ")\n", bit, at,
                  target->name, b->off);
    assert_rc(tu_flip_bit(target->path, at, bit), 0);
    assert_rc(tu_copy_dir(data, copy), 0);

    /* 1. plain open: refuse, or open and never return a wrong value */
    struct rk_storage_opts o;
    flip_opts(&o, false);
    struct rk_storage_report rep;
    rk_storage *s;
    int rc = tu_open(&s, data, &o, &rep);
    if (rc == RK_ECORRUPT) {
        if (!strstr(rep.error, target->name))
            fail_msg("RK_ECORRUPT, but rep.error \"%s\" does not name %s", rep.error, target->name);
    } else {
        assert_rc(rc, 0);
        uint32_t bad = 0;
        char why[1024];
        for (uint32_t id = 0; id < FLIP_KEYS; id++) {
            char key[TU_KEY_CAP];
            struct rk_record r;
            rc = rk_storage_get(s, key, tu_key(key, id), 0, &r);
            if (rc == RK_ECORRUPT && (seg_of[id] == target->id || seg_of[id] == SEG_UNKNOWN)) {
                bad++;
                continue;
            }
            if (tu_check_key(s, mp, id, 0, 0, why, sizeof(why)) != 0)
                fail_msg("after a bit flip in %s: %s", target->name, why);
        }
        if (bad == 0)
            fail_msg("no get reported RK_ECORRUPT after a bit flip in block %" PRIu64 " of %s",
                     b->off, target->name);
        assert_rc(rk_storage_close(s), 0);
    }

    /* 2. repair quarantines the segment */
    flip_repair_open(data, mp, seg_of, target, seg_records);

    /* 3. without its index file, the damage is found at open */
    assert_rc(tu_copy_dir(copy, data), 0);
    struct tu_seg t2 = *target;
    snprintf(t2.path, sizeof(t2.path), "%s/%s", data, t2.name);
    snprintf(t2.index_file, sizeof(t2.index_file), "%s/%.20s.rkh", data, t2.name);
    assert_int_equal(unlink(t2.index_file), 0);
    assert_rc(tu_open(&s, data, &o, &rep), RK_ECORRUPT);
    if (!strstr(rep.error, t2.name))
        fail_msg("rep.error \"%s\" does not name %s", rep.error, t2.name);
    flip_repair_open(data, mp, seg_of, &t2, seg_records);

    f->ok = true;
}

/* ==== regression: kill -9 while a new segment file is being created ====
 * The kill -9 test found stores that would not open ("bad header") after
 * the writer died between creating the next segment file and writing its
 * header: the newest file was empty, or preallocated zeros. Such a file
 * holds no acknowledged data; open must succeed with everything intact. */

static void test_unfinished_segment_creation_after_crash(void **state)
{
    struct fx *f = *state;
    char data[600];
    fx_path(f, "data", data, sizeof(data), true);
    struct rk_storage_opts o;
    crash_opts(&o);
    struct tu_model *m = &f->m;
    tu_model_init(m, 300, 8, 100, 2000);
    rk_storage *s = open_ok_ctx(data, &o, NULL, "build");
    for (uint32_t id = 0; id < m->n; id++) {
        assert_rc(tu_put(s, m, id, (1700000000000ull << 16) + id, 0), 0);
        if (id % 30 == 29)
            assert_rc(rk_storage_commit(s), 0);
    }
    assert_rc(rk_storage_close(s), 0);

    /* A new segment is built as seg-<id>.rks.tmp and renamed only once its
     * header is durable: a kill -9 during creation leaves an empty or
     * zero-filled .tmp file, which open must discard. */
    for (int form = 0; form < 2; form++) {
        struct tu_seg segs[64];
        int ns = tu_segments(data, segs, 64);
        assert_true(ns > 0);
        char path[1100];
        snprintf(path, sizeof(path), "%s/seg-%016" PRIx64 ".rks.tmp", data, segs[ns - 1].id + 1);
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        assert_true(fd >= 0);
        if (form == 1)
            assert_int_equal(ftruncate(fd, (off_t)o.segment_size), 0);
        close(fd);

        char ctx[96];
        snprintf(ctx, sizeof(ctx),
                 "with %s newest segment (as left by kill -9 during its creation)",
                 form ? "a zero-filled" : "an empty");
        s = open_ok_ctx(data, &o, NULL, ctx);
        assert_model_at(s, m, wall_ms(), 0, "%s", ctx);
        assert_int_equal(access(path, F_OK), -1); /* the stray .tmp is gone */
        assert_rc(rk_storage_close(s), 0);
    }
    f->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_torn_tail_all_or_nothing),
        FX_TEST(test_kill9_keeps_acknowledged_writes),
        FX_TEST(test_bit_flip_in_sealed_segment),
        FX_TEST(test_unfinished_segment_creation_after_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

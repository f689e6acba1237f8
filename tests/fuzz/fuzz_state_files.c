/* Fuzz target for the cluster layer's state files in a node's data dir:
 * ae-marks (aemarks.h), ae-progress (aeprogress.h), holdings and
 * holdings.peers (holdings.h, peerhold.h). The first input byte is a mode:
 * bits 0-1 pick the file, bit 2 rewrites the trailing XXH3 checksum (and
 * ae-progress's length field) so mutations get past it; the rest is the
 * file. The layout a loader is opened with (partitions, workers) is read
 * from the file where it says, so the loader gets as far as it can.
 *
 * Properties: loading never crashes, leaks or reads out of bounds; a file
 * that is refused leaves the state fresh (nothing half taken); a loaded
 * state, saved and loaded again, is the same state (the second save writes
 * the same bytes as the first); an accepted ae-marks or holdings file is
 * saved back with the same bitmap, a holdings file byte for byte. */
#include "fuzz.h"
#include "cluster/aemarks.h"
#include "cluster/aeprogress.h"
#include "cluster/holdings.h"
#include "cluster/peerhold.h"
#include "util/err.h"
#include "util/le.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

enum { F_MARKS, F_PROGRESS, F_HOLDINGS, F_PEERS };
#define FIXUP 4u

static bool power_of_two(uint32_t n, uint32_t max)
{
    return n >= 1 && n <= max && (n & (n - 1)) == 0;
}

/* The file's bytes in the scratch dir; NULL when it does not exist. */
static uint8_t *saved(const char *name, size_t *len)
{
    return rk_fuzz_get_file(name, len);
}

/* ---- ae-marks ---- */

static uint32_t marks_set(const struct rk_aemarks *m, uint8_t *bits)
{
    uint32_t n = 0, p = rk_aemarks_partitions(m);
    memset(bits, 0, (p + 7) / 8);
    for (uint32_t i = 0; i < p; i++)
        if (rk_aemarks_test(m, i)) {
            bits[i / 8] |= (uint8_t)(1u << (i % 8));
            n++;
        }
    return n;
}

static void marks(const uint8_t *d, size_t n)
{
    uint32_t parts = n >= 12 ? rk_le_get32(d + 8) : 0;
    parts = power_of_two(parts, 65536) ? parts : 256;
    rk_fuzz_put_file(RK_AEMARKS_FILE, d, n);
    unsigned w0 = rk_fuzz_warnings();
    struct rk_aemarks *a, *b;
    CHECK(rk_aemarks_open(&a, rk_fuzz_dir(), parts) == 0);
    bool accepted = rk_fuzz_warnings() == w0;
    static uint8_t sa[65536 / 8], sb[65536 / 8];
    uint32_t count = marks_set(a, sa);
    CHECK(count == rk_aemarks_count(a) && !rk_aemarks_dirty(a));
    CHECK(accepted || count == 0);
    /* Dirty without a change (a mark and its undoing), so save writes. */
    if (!rk_aemarks_clear(a, 0))
        CHECK(rk_aemarks_mark(a, 0) && rk_aemarks_clear(a, 0));
    else
        CHECK(rk_aemarks_mark(a, 0));
    CHECK(rk_aemarks_save(a) == 0 && !rk_aemarks_dirty(a));
    size_t len;
    uint8_t *file = saved(RK_AEMARKS_FILE, &len);
    CHECK(file != NULL);
    if (accepted && parts % 8 == 0) /* the bitmap as it was read (padding is not checked) */
        CHECK(len == n && memcmp(file + 16, d + 16, parts / 8) == 0);
    free(file);
    w0 = rk_fuzz_warnings();
    CHECK(rk_aemarks_open(&b, rk_fuzz_dir(), parts) == 0);
    CHECK(rk_fuzz_warnings() == w0);
    CHECK(marks_set(b, sb) == count && memcmp(sa, sb, (parts + 7) / 8) == 0);
    rk_aemarks_close(a);
    rk_aemarks_close(b);
}

/* ---- ae-progress ---- */

static void summary_json(const struct rk_aeprogress *p, struct rk_jbuf *b)
{
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(p, &s);
    rk_aeprogress_json_summary(&s, 5000, b);
}

static void progress(const uint8_t *d, size_t n)
{
    uint32_t parts = n >= 24 ? rk_le_get32(d + 12) : 0, workers = n >= 24 ? rk_le_get32(d + 16) : 0,
             worker = n >= 24 ? rk_le_get32(d + 20) : 0;
    if (parts == 0 || parts > 65536 || workers == 0 || workers > 256 || worker >= workers ||
        worker >= parts)
        parts = 256, workers = 4, worker = 1;
    rk_fuzz_put_file(RK_AEPROGRESS_FILE, d, n);
    unsigned w0 = rk_fuzz_warnings();
    struct rk_aeprogress *a, *b;
    CHECK(rk_aeprogress_open(&a, rk_fuzz_dir(), parts, workers, worker) == 0);
    bool accepted = rk_fuzz_warnings() == w0;
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(a, &s);
    uint32_t marked = 0;
    for (uint32_t p = worker; p < parts; p += workers)
        marked += rk_aeprogress_marks(a, p) != 0;
    CHECK(s.marked == marked && s.compared <= s.total);
    if (!accepted) {
        static const struct rk_aeprogress_summary fresh;
        CHECK(memcmp(&s, &fresh, sizeof(s)) == 0);
    }
    /* One change, made again after the reload: a mark (idempotent). */
    CHECK(rk_aeprogress_mark(a, worker, RK_AE_MARK_HINT, 4000) == 0);
    CHECK(rk_aeprogress_save(a, 4000) == 0 && !rk_aeprogress_dirty(a));
    size_t l1, l2;
    uint8_t *f1 = saved(RK_AEPROGRESS_FILE, &l1);
    CHECK(f1 != NULL && (!accepted || l1 <= n + 40)); /* at most the mark's entry more */
    w0 = rk_fuzz_warnings();
    CHECK(rk_aeprogress_open(&b, rk_fuzz_dir(), parts, workers, worker) == 0);
    CHECK(rk_fuzz_warnings() == w0);
    CHECK(rk_aeprogress_mark(b, worker, RK_AE_MARK_HINT, 4000) == 0);
    CHECK(rk_aeprogress_save(b, 4000) == 0);
    uint8_t *f2 = saved(RK_AEPROGRESS_FILE, &l2);
    CHECK(f2 != NULL && l1 == l2 && memcmp(f1, f2, l1) == 0);
    struct rk_jbuf ja = {0}, jb = {0};
    summary_json(a, &ja);
    summary_json(b, &jb);
    CHECK(!ja.oom && !jb.oom && ja.len == jb.len && memcmp(ja.p, jb.p, ja.len) == 0);
    free(ja.p);
    free(jb.p);
    free(f1);
    free(f2);
    rk_aeprogress_close(a);
    rk_aeprogress_close(b);
}

/* ---- holdings ---- */

static bool same_holdings(const struct rk_holdings *a, const struct rk_holdings *b)
{
    return a->parts == b->parts && a->version == b->version &&
           a->genesis_digest == b->genesis_digest && a->genesis_ms == b->genesis_ms &&
           memcmp(a->held, b->held, (a->parts + 7) / 8) == 0;
}

static void holdings(const uint8_t *d, size_t n)
{
    uint32_t parts = n >= 8 ? rk_le_get32(d + 4) : 0;
    parts = parts >= 1 && parts <= 65536 ? parts : 256;
    rk_fuzz_put_file(RK_HOLDINGS_FILE, d, n);
    struct rk_holdings h, fresh, again;
    CHECK(rk_holdings_init(&h, parts) == 0 && rk_holdings_init(&fresh, parts) == 0 &&
          rk_holdings_init(&again, parts) == 0);
    int rc = rk_holdings_load(&h, rk_fuzz_dir());
    CHECK(rc == 0 || rc == RK_ECORRUPT);
    CHECK(rk_holdings_count(&h) <= parts);
    if (rc != 0) {
        CHECK(same_holdings(&h, &fresh)); /* nothing taken */
    } else {
        CHECK(rk_holdings_save(&h, rk_fuzz_dir()) == 0);
        size_t len;
        uint8_t *file = saved(RK_HOLDINGS_FILE, &len);
        CHECK(file != NULL);
        if (parts % 8 == 0)
            CHECK(len == n && memcmp(file, d, n) == 0);
        free(file);
        CHECK(rk_holdings_load(&again, rk_fuzz_dir()) == 0 && same_holdings(&h, &again));
        /* The wire form of the same state decodes to it too (gossip). */
        uint8_t *wire = malloc(rk_holdings_wire_len(parts));
        CHECK(wire != NULL);
        rk_holdings_encode(&h, wire);
        CHECK(rk_holdings_decode(&fresh, wire, rk_holdings_wire_len(parts)) == 0 &&
              same_holdings(&h, &fresh));
        free(wire);
    }
    rk_holdings_fini(&h);
    rk_holdings_fini(&fresh);
    rk_holdings_fini(&again);
}

/* ---- holdings.peers ---- */

/* The ids the file names, as far as it can be walked (to look them up). */
static size_t file_ids(const uint8_t *d, size_t n, uint32_t parts, char ids[][RK_MEMBER_ID_MAX + 1],
                       size_t cap)
{
    size_t k = 0, o = 8, wl = rk_holdings_wire_len(parts);
    while (k < cap && n >= 8 && o < n - 8) {
        size_t il = d[o];
        if (il == 0 || il > RK_MEMBER_ID_MAX || n - 8 - o < 1 + il)
            break;
        memcpy(ids[k], d + o + 1, il);
        ids[k++][il] = '\0';
        o += 1 + il + wl;
    }
    return k;
}

static void peers(const uint8_t *d, size_t n)
{
    uint32_t parts = 256;
    if (n >= 9 && n - 9 >= (size_t)d[8] + 4) {
        uint32_t p = rk_le_get32(d + 9 + d[8]);
        parts = p >= 1 && p <= 65536 ? p : parts;
    }
    rk_fuzz_put_file(RK_PEERHOLD_FILE, d, n);
    struct rk_peerhold *a, *b;
    CHECK(rk_peerhold_create(&a, parts) == 0 && rk_peerhold_create(&b, parts) == 0);
    int rc = rk_peerhold_load(a, rk_fuzz_dir());
    CHECK(rc == 0 || rc == RK_ECORRUPT);
    static char ids[64][RK_MEMBER_ID_MAX + 1];
    size_t nids = file_ids(d, n, parts, ids, 64);
    if (rc != 0) {
        for (size_t i = 0; i < nids; i++)
            CHECK(rk_peerhold_get(a, ids[i]) == NULL); /* nothing taken */
    } else {
        for (size_t i = 0; i < nids; i++) {
            const struct rk_holdings *h = rk_peerhold_get(a, ids[i]);
            CHECK(h != NULL && h->parts == parts && rk_holdings_count(h) <= parts);
        }
        size_t l1, l2;
        CHECK(rk_peerhold_save(a, rk_fuzz_dir()) == 0);
        uint8_t *f1 = saved(RK_PEERHOLD_FILE, &l1);
        CHECK(f1 != NULL && rk_peerhold_load(b, rk_fuzz_dir()) == 0);
        CHECK(rk_peerhold_save(b, rk_fuzz_dir()) == 0);
        uint8_t *f2 = saved(RK_PEERHOLD_FILE, &l2);
        CHECK(f2 != NULL && l1 == l2 && memcmp(f1, f2, l1) == 0);
        for (size_t i = 0; i < nids; i++)
            CHECK(same_holdings(rk_peerhold_get(a, ids[i]), rk_peerhold_get(b, ids[i])));
        free(f1);
        free(f2);
    }
    rk_peerhold_free(a);
    rk_peerhold_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1;
    uint8_t *d = malloc(n ? n : 1); /* exact size: a read past the file is caught */
    CHECK(d != NULL);
    memcpy(d, data + 1, n);
    if ((mode & FIXUP) && n >= 8) {
        if ((mode & 3) == F_PROGRESS && n >= 12)
            rk_le_put32(d + 8, (uint32_t)n);
        rk_le_put64(d + n - 8, XXH3_64bits(d, n - 8));
    }
    rk_fuzz_clear();
    static void (*const load[])(const uint8_t *, size_t) = {marks, progress, holdings, peers};
    load[mode & 3](d, n);
    free(d);
    return 0;
}

/* ---- seeds: each file as the code writes it ---- */

static uint8_t *with_mode(uint8_t mode, const char *name, size_t *len)
{
    size_t n;
    uint8_t *f = rk_fuzz_get_file(name, &n), *b = f ? malloc(1 + n) : NULL;
    if (b) {
        b[0] = mode;
        memcpy(b + 1, f, n);
        *len = 1 + n;
    }
    free(f);
    rk_fuzz_clear();
    return b;
}

static uint8_t *marks_file(size_t *len)
{
    struct rk_aemarks *m;
    if (rk_aemarks_open(&m, rk_fuzz_dir(), 64) != 0)
        return NULL;
    rk_aemarks_mark(m, 3);
    rk_aemarks_mark(m, 40);
    rk_aemarks_mark(m, 63);
    rk_aemarks_save(m);
    rk_aemarks_close(m);
    return with_mode(F_MARKS | FIXUP, RK_AEMARKS_FILE, len);
}

static uint8_t *progress_file(size_t *len)
{
    struct rk_aeprogress *p;
    if (rk_aeprogress_open(&p, rk_fuzz_dir(), 64, 4, 1) != 0)
        return NULL;
    rk_aeprogress_round_start(p, 1000, 16);
    struct rk_ae_exchange ok = {.started_ms = 1100,
                                .finished_ms = 1200,
                                .result = RK_AE_OK,
                                .leaves_differing = 3,
                                .keys_pulled = 5,
                                .keys_pushed = 1,
                                .bytes = 900};
    struct rk_ae_exchange down = {
        .started_ms = 1300, .finished_ms = 1400, .result = RK_AE_UNREACHABLE};
    rk_aeprogress_record(p, 1, "node-2", &ok);
    rk_aeprogress_record(p, 1, "node-3", &down);
    rk_aeprogress_record(p, 5, "node-2", &ok);
    rk_aeprogress_mark(p, 9, RK_AE_MARK_HINT | RK_AE_MARK_REQUEST, 1500);
    rk_aeprogress_save(p, 2000);
    rk_aeprogress_close(p);
    return with_mode(F_PROGRESS | FIXUP, RK_AEPROGRESS_FILE, len);
}

static void example_holdings(struct rk_holdings *h, uint32_t parts, uint64_t version)
{
    for (uint32_t p = 0; p < parts; p += 3)
        rk_holdings_set(h, p, true);
    h->version = version;
    h->genesis_digest = 0x1122334455667788ull;
    h->genesis_ms = 1700000000000ull;
}

static uint8_t *holdings_file(size_t *len)
{
    struct rk_holdings h;
    if (rk_holdings_init(&h, 64) != 0)
        return NULL;
    example_holdings(&h, 64, 1700000000123ull);
    rk_holdings_save(&h, rk_fuzz_dir());
    rk_holdings_fini(&h);
    return with_mode(F_HOLDINGS | FIXUP, RK_HOLDINGS_FILE, len);
}

static uint8_t *peers_file(size_t *len)
{
    struct rk_peerhold *ph;
    struct rk_holdings h;
    if (rk_peerhold_create(&ph, 64) != 0 || rk_holdings_init(&h, 64) != 0)
        return NULL;
    uint8_t wire[RK_HOLDINGS_WIRE_FIXED + 8];
    bool changed;
    example_holdings(&h, 64, 7);
    rk_holdings_encode(&h, wire);
    rk_peerhold_take(ph, "node-2", 1, wire, sizeof(wire), &changed);
    rk_holdings_set(&h, 1, true);
    h.version = 8;
    rk_holdings_encode(&h, wire);
    rk_peerhold_take(ph, "node-3", 1, wire, sizeof(wire), &changed);
    rk_peerhold_save(ph, rk_fuzz_dir());
    rk_peerhold_free(ph);
    rk_holdings_fini(&h);
    return with_mode(F_PEERS | FIXUP, RK_PEERHOLD_FILE, len);
}

uint8_t *rk_fuzz_seed(size_t *len)
{
    return progress_file(len);
}

void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    static uint8_t *(*const make[])(size_t *) = {marks_file, progress_file, holdings_file,
                                                 peers_file};
    static const char *const names[] = {"ae-marks", "ae-progress", "holdings", "holdings-peers"};
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        uint8_t *b = make[i](&len);
        if (!b)
            continue;
        put(names[i], b, len);
        b[0] &= (uint8_t)~FIXUP; /* the same file checked as it is */
        char name[64];
        snprintf(name, sizeof(name), "%s-as-on-disk", names[i]);
        put(name, b, len);
        free(b);
    }
}

/* Fuzz target for the hint store's records (hints.h): what a worker reads
 * back from data_dir/hints-<worker> at open (counting every target's
 * pending hints) and at delivery (splitting each stored key into target and
 * record key, each value into kind, version, expiry and value). The store
 * itself is a storage engine (its files are fuzz_storage_open's and
 * fuzz_blocks' business); here its records are arbitrary. The first input
 * byte is a mode: bit 0 keeps hints a day (else a century: none is too
 * old). The rest is a list of records, each: key length u8, key, value
 * length u8, value, flags u8 (bit 0: a tombstone); each is stored in the
 * partition its key's target (the bytes before the first NUL) would have.
 *
 * Properties: no crash, leak or out-of-bounds read; the targets' counts
 * add up to the store's pending figures; a hint handed out for a target
 * is that target's, with its key and value inside the stored record;
 * delivering every hint handed out takes exactly them off the counts; and
 * a store reopened counts what was left. */
#include "fuzz.h"
#include "cluster/hints.h"
#include "util/le.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define PARTS    64
#define DAY      86400000ull
#define SEG_SIZE (64u << 10) /* preallocated at every open: keep it small */

static struct rk_hints_target targets[64];

struct got {
    const char *target;
    size_t n;
    struct {
        uint8_t key[256];
        uint32_t klen;
        uint64_t lv;
    } h[64];
    bool bad;
};

static void on_hint(const struct rk_hint *h, void *arg)
{
    struct got *g = arg;
    CHECK(h->key != NULL && h->val != NULL && h->klen < 256 && h->vlen < 256);
    if (g->n < 64) {
        memcpy(g->h[g->n].key, h->key, h->klen);
        g->h[g->n].klen = h->klen;
        g->h[g->n].lv = h->local_version;
        g->n++;
    }
}

static void totals(struct rk_hints *h, struct rk_hints_stats *st, size_t *nt)
{
    rk_hints_stats(h, st);
    *nt = rk_hints_targets(h, targets, 64);
    uint64_t count = 0, bytes = 0;
    for (size_t i = 0; i < *nt && i < 64; i++) {
        CHECK(targets[i].count > 0 && rk_hints_pending(h, targets[i].id) == targets[i].count);
        count += targets[i].count, bytes += targets[i].bytes;
    }
    if (*nt <= 64)
        CHECK(count == st->pending && bytes == st->pending_bytes);
}

/* Lays the records down in dir as the hint store's engine would hold them. */
static bool store(const char *dir, const uint8_t *d, size_t n)
{
    struct rk_storage_opts o;
    rk_storage_opts_default(&o);
    o.fsync = RK_FSYNC_NEVER;
    o.segment_size = SEG_SIZE;
    rk_storage *s;
    CHECK(rk_storage_open(&s, dir, &o, NULL) == 0);
    size_t off = 0;
    uint64_t lv = 1000;
    while (n - off >= 3) {
        size_t kl = d[off];
        if (n - off < 1 + kl + 1)
            break;
        const uint8_t *k = d + off + 1;
        size_t vl = d[off + 1 + kl];
        if (n - off < 2 + kl + vl + 1)
            break;
        const uint8_t *v = d + off + 2 + kl;
        uint8_t flags = d[off + 2 + kl + vl];
        off += 3 + kl + vl;
        const uint8_t *nul = memchr(k, 0, kl);
        size_t tl = nul ? (size_t)(nul - k) : kl;
        struct rk_record r = {.key = k,
                              .klen = (uint32_t)kl,
                              .val = v,
                              .vlen = (uint32_t)vl,
                              .version = lv++ << 16,
                              .tombstone = flags & 1,
                              .partition = (uint16_t)XXH3_64bits(k, tl)};
        if (kl > 0)
            rk_storage_put(s, &r, NULL);
    }
    bool ok = rk_storage_commit(s) == 0;
    rk_storage_close(s);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint64_t max_age = data[0] & 1 ? DAY : 100 * 365 * DAY;
    rk_fuzz_clear();
    char dir[700], err[512];
    snprintf(dir, sizeof(dir), "%s/hints-0", rk_fuzz_dir());
    if (!store(dir, data + 1, size - 1))
        return 0;
    struct rk_storage_opts o;
    rk_storage_opts_default(&o);
    o.segment_size = SEG_SIZE;
    struct rk_hints *h;
    CHECK(rk_hints_open(&h, dir, &o, PARTS, 1u << 20, max_age, err, sizeof(err)) == 0);
    struct rk_hints_stats st, after;
    size_t nt;
    totals(h, &st, &nt);
    uint64_t handed = 0;
    for (size_t i = 0; i < nt && i < 64; i++) {
        static struct got g;
        char id[RK_HINTS_ID_MAX + 1];
        memcpy(id, targets[i].id, sizeof(id)); /* the table is rewritten by the next totals() */
        uint64_t before = rk_hints_pending(h, id);
        struct rk_hints_stats s0, s1;
        rk_hints_stats(h, &s0);
        g.n = 0;
        size_t n = rk_hints_each(h, id, 64, on_hint, &g);
        rk_hints_stats(h, &s1);
        uint64_t dropped =
            (s1.dropped_old - s0.dropped_old) + (s1.dropped_damaged - s0.dropped_damaged);
        CHECK(n == g.n && n + dropped <= before && rk_hints_pending(h, id) == before - dropped);
        for (size_t k = 0; k < g.n; k++)
            rk_hints_delivered(h, id, g.h[k].key, g.h[k].klen, g.h[k].lv, (uint64_t)1 << 60 | k);
        CHECK(rk_hints_pending(h, id) == before - dropped - n);
        /* Every hint fitted in one pass: none may stay pending (one that
         * can be neither delivered nor dropped would, for ever). */
        if (before <= 64)
            CHECK(rk_hints_pending(h, id) == 0);
        handed += n;
    }
    totals(h, &after, &nt);
    CHECK(after.delivered == handed);
    CHECK(rk_hints_commit(h) == 0);
    rk_hints_close(h);
    /* Reopened: the same counts. */
    CHECK(rk_hints_open(&h, dir, &o, PARTS, 1u << 20, max_age, err, sizeof(err)) == 0);
    struct rk_hints_stats again;
    totals(h, &again, &nt);
    CHECK(again.pending == after.pending && again.pending_bytes == after.pending_bytes);
    rk_hints_close(h);
    return 0;
}

/* Hints as rk_hints_add stores them: target, NUL, key; kind, version,
 * expiry, value. */
static size_t put_hint(uint8_t *b, const char *target, const char *key, bool tomb, const char *val)
{
    size_t tl = strlen(target), kl = strlen(key), vl = tomb ? 0 : strlen(val), o = 0;
    b[o++] = (uint8_t)(tl + 1 + kl);
    memcpy(b + o, target, tl);
    b[o + tl] = 0;
    memcpy(b + o + tl + 1, key, kl);
    o += tl + 1 + kl;
    b[o++] = (uint8_t)(17 + vl);
    b[o] = tomb ? 1 : 0;
    rk_le_put64(b + o + 1, 1765000000000ull << 16);
    rk_le_put64(b + o + 9, tomb ? 0 : 1800000000000ull);
    memcpy(b + o + 17, val, vl);
    o += 17 + vl;
    b[o++] = 0;
    return o;
}

uint8_t *rk_fuzz_seed(size_t *len)
{
    uint8_t *b = malloc(1024);
    if (!b)
        return NULL;
    size_t n = 0;
    b[n++] = 0;
    n += put_hint(b + n, "node-2", "user:1", false, "{\"n\":1}");
    n += put_hint(b + n, "node-2", "user:2", true, "");
    n += put_hint(b + n, "node-3", "user:1", false, "{\"n\":2}");
    n += put_hint(b + n, "node-2", "user:1", false, "{\"n\":3}"); /* replaces the first */
    *len = n;
    return b;
}

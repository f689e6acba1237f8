/* Anti-entropy progress (see aeprogress.h): a worker's round, totals and a
 * row per owned partition, encoded whole on save and checked whole on
 * load, in the manner of aemarks.c. */
#include "cluster/aeprogress.h"
#include "util/assert.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/le.h"
#include "util/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MAGIC   0x50414B52u /* "RKAP" read as a little-endian u32 */
#define VERSION 1           /* bumped on any change of the layout */
#define HDR_LEN                                                                                    \
    32u /* magic, version, flags, pad 2, length, partitions, workers,                              \
           worker, entries, pad 4 */
#define ROUND_LEN                                                                                  \
    64u                /* number, started, finished, compared u32, total u32, leaves,              \
                          pulled, pushed, bytes */
#define TOTALS_LEN 56u /* rounds, compared, leaves, pulled, pushed, repaired, bytes */
#define FIXED_LEN  (HDR_LEN + ROUND_LEN + TOTALS_LEN)
#define ENTRY_LEN                                                                                  \
    40u                    /* partition u32, marks u8, peers u8, pad 2, marked, round, repaired,   \
                              leaves */
#define PEER_LEN    29u    /* after the id: ok_ms, last_ms, result u8, leaves u32, keys u64 */
#define SUM_LEN     8u     /* XXH3_64 of everything before it */
#define FLAG_ACTIVE 1u     /* a round is in progress */
#define PARTS_MAX   65536u /* the engine's 16-bit partition field */

static_assert(FIXED_LEN == 152, "header, round and totals");
static_assert(RK_AEPROGRESS_ID <= 256, "a peer id's length is one byte on disk");

struct peer {
    char id[RK_AEPROGRESS_ID];
    uint64_t ok_ms;   /* start of the last successful exchange; 0 = none */
    uint64_t last_ms; /* end of the last exchange, whatever its result */
    uint8_t result;   /* of the last exchange */
    uint32_t leaves;  /* leaves differing in the last exchange */
    uint64_t keys;    /* keys pulled + pushed in the last exchange */
};

struct part {
    uint64_t marked_ms; /* when the mark was last set; valid while marks != 0 */
    uint64_t round;     /* the round it was last compared in (0: never) */
    uint64_t repaired;  /* keys pulled + pushed for it, ever */
    uint64_t leaves;    /* leaves differing, summed over its exchanges, ever */
    uint8_t marks;      /* RK_AE_MARK_* */
    uint8_t npeers;
    struct peer *peers; /* RK_AEPROGRESS_PEERS, allocated with the first */
};

struct rk_aeprogress {
    char *dir;
    uint32_t partitions, workers, worker, owned;
    struct rk_aeprogress_summary s; /* round, totals; marked kept in step with marks */
    uint64_t gen, saved_gen, saved_ms;
    bool urgent; /* a change that a save should not hold back */
    struct part parts[];
};

static struct part *part_of(struct rk_aeprogress *p, uint32_t part)
{
    if (part >= p->partitions || part % p->workers != p->worker)
        return NULL;
    return &p->parts[part / p->workers];
}

static const struct part *cpart_of(const struct rk_aeprogress *p, uint32_t part)
{
    return part_of((struct rk_aeprogress *)p, part);
}

static uint32_t part_number(const struct rk_aeprogress *p, size_t i)
{
    return (uint32_t)i * p->workers + p->worker;
}

static void changed(struct rk_aeprogress *p, bool urgent)
{
    p->gen++;
    p->urgent = p->urgent || urgent;
}

/* ---- encoding ---- */

static bool entry_kept(const struct part *e)
{
    return e->marks || e->npeers || e->round || e->repaired || e->leaves;
}

static size_t encoded_len(const struct rk_aeprogress *p, uint32_t *entries)
{
    size_t n = FIXED_LEN + SUM_LEN;
    *entries = 0;
    for (size_t i = 0; i < p->owned; i++) {
        const struct part *e = &p->parts[i];
        if (!entry_kept(e))
            continue;
        (*entries)++;
        n += ENTRY_LEN;
        for (unsigned k = 0; k < e->npeers; k++)
            n += 1 + strlen(e->peers[k].id) + PEER_LEN;
    }
    return n;
}

static uint8_t *put64s(uint8_t *o, const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++, o += 8)
        rk_le_put64(o, v[i]);
    return o;
}

static void encode_fixed(const struct rk_aeprogress *p, uint8_t *o, size_t len, uint32_t entries)
{
    const struct rk_aeprogress_summary *s = &p->s;
    memset(o, 0, FIXED_LEN);
    rk_le_put32(o, MAGIC);
    o[4] = VERSION;
    o[5] = s->in_progress ? FLAG_ACTIVE : 0;
    rk_le_put32(o + 8, (uint32_t)len);
    rk_le_put32(o + 12, p->partitions);
    rk_le_put32(o + 16, p->workers);
    rk_le_put32(o + 20, p->worker);
    rk_le_put32(o + 24, entries);
    uint8_t *r = put64s(o + HDR_LEN, (uint64_t[]){s->round, s->started_ms, s->finished_ms}, 3);
    rk_le_put32(r, s->compared);
    rk_le_put32(r + 4, s->total);
    r = put64s(r + 8, (uint64_t[]){s->leaves, s->pulled, s->pushed, s->bytes}, 4);
    put64s(r,
           (uint64_t[]){s->totals.rounds, s->totals.compared, s->totals.leaves, s->totals.pulled,
                        s->totals.pushed, s->totals.repaired, s->totals.bytes},
           7);
}

static uint8_t *encode_entry(const struct part *e, uint32_t part, uint8_t *o)
{
    rk_le_put32(o, part);
    o[4] = e->marks;
    o[5] = e->npeers;
    o[6] = o[7] = 0;
    o = put64s(o + 8, (uint64_t[]){e->marked_ms, e->round, e->repaired, e->leaves}, 4);
    for (unsigned k = 0; k < e->npeers; k++) {
        const struct peer *q = &e->peers[k];
        size_t il = strlen(q->id);
        *o++ = (uint8_t)il;
        memcpy(o, q->id, il);
        o = put64s(o + il, (uint64_t[]){q->ok_ms, q->last_ms}, 2);
        *o++ = q->result;
        rk_le_put32(o, q->leaves);
        rk_le_put64(o + 4, q->keys);
        o += 12;
    }
    return o;
}

/* The whole file for p, malloc'd, its length in *len; NULL if out of memory. */
static uint8_t *encode(const struct rk_aeprogress *p, size_t *len)
{
    uint32_t entries;
    size_t n = encoded_len(p, &entries);
    uint8_t *buf = malloc(n), *o;
    if (!buf)
        return NULL;
    encode_fixed(p, buf, n, entries);
    o = buf + FIXED_LEN;
    for (size_t i = 0; i < p->owned; i++)
        if (entry_kept(&p->parts[i]))
            o = encode_entry(&p->parts[i], part_number(p, i), o);
    RK_ASSERT((size_t)(o - buf) == n - SUM_LEN);
    rk_le_put64(o, XXH3_64bits(buf, n - SUM_LEN));
    *len = n;
    return buf;
}

/* ---- decoding: every length checked before it is read ---- */

struct rd {
    const uint8_t *p;
    size_t left;
};

static bool take(struct rd *r, size_t n, const uint8_t **at)
{
    if (r->left < n)
        return false;
    *at = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static void get64s(const uint8_t *in, uint64_t *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *v[i] = rk_le_get64(in + 8 * i);
}

/* Header checks; 0 or RK_ECORRUPT with why. */
static int check_header(const struct rk_aeprogress *p, const uint8_t *b, size_t len, char *why,
                        size_t wl)
{
    if (len < HDR_LEN || rk_le_get32(b) != MAGIC)
        return snprintf(why, wl, "not an anti-entropy progress file"), RK_ECORRUPT;
    if (b[4] != VERSION)
        return snprintf(why, wl, "format version %u, expected %u", b[4], VERSION), RK_ECORRUPT;
    if (rk_le_get32(b + 8) != len || len < FIXED_LEN + SUM_LEN)
        return snprintf(why, wl, "%zu bytes, the header says %u (truncated?)", len,
                        rk_le_get32(b + 8)),
               RK_ECORRUPT;
    if (rk_le_get64(b + len - SUM_LEN) != XXH3_64bits(b, len - SUM_LEN))
        return snprintf(why, wl, "checksum mismatch"), RK_ECORRUPT;
    uint32_t parts = rk_le_get32(b + 12), workers = rk_le_get32(b + 16), w = rk_le_get32(b + 20);
    if (parts != p->partitions || workers != p->workers || w != p->worker)
        return snprintf(why, wl,
                        "written for %u partitions, worker %u of %u; expected %u, worker %u of %u",
                        parts, w, workers, p->partitions, p->worker, p->workers),
               RK_ECORRUPT;
    if (b[5] & ~FLAG_ACTIVE)
        return snprintf(why, wl, "unknown flags 0x%02x", b[5]), RK_ECORRUPT;
    return 0;
}

static void decode_fixed(struct rk_aeprogress_summary *s, const uint8_t *b)
{
    const uint8_t *r = b + HDR_LEN;
    s->in_progress = b[5] & FLAG_ACTIVE;
    get64s(r, (uint64_t *const[]){&s->round, &s->started_ms, &s->finished_ms}, 3);
    s->compared = rk_le_get32(r + 24);
    s->total = rk_le_get32(r + 28);
    get64s(r + 32, (uint64_t *const[]){&s->leaves, &s->pulled, &s->pushed, &s->bytes}, 4);
    get64s(r + ROUND_LEN,
           (uint64_t *const[]){&s->totals.rounds, &s->totals.compared, &s->totals.leaves,
                               &s->totals.pulled, &s->totals.pushed, &s->totals.repaired,
                               &s->totals.bytes},
           7);
}

static int decode_peer(struct rd *r, struct peer *q, char *why, size_t wl)
{
    const uint8_t *a, *id;
    if (!take(r, 1, &a) || *a == 0 || *a >= RK_AEPROGRESS_ID)
        return snprintf(why, wl, "a peer record is cut short or has a bad id length"), RK_ECORRUPT;
    size_t il = *a;
    if (!take(r, il, &id) || memchr(id, 0, il) || !take(r, PEER_LEN, &a))
        return snprintf(why, wl, "a peer record is cut short"), RK_ECORRUPT;
    memcpy(q->id, id, il);
    q->id[il] = '\0';
    get64s(a, (uint64_t *const[]){&q->ok_ms, &q->last_ms}, 2);
    q->result = a[16];
    q->leaves = rk_le_get32(a + 17);
    q->keys = rk_le_get64(a + 21);
    if (q->result >= RK_AE_RESULTS)
        return snprintf(why, wl, "peer %s: unknown result %u", q->id, q->result), RK_ECORRUPT;
    return 0;
}

/* One entry; *prev is the partition of the one before (entries are in
 * ascending order, so a repeat is caught). */
static int decode_entry(struct rk_aeprogress *p, struct rd *r, int64_t *prev, char *why, size_t wl)
{
    const uint8_t *a;
    if (!take(r, ENTRY_LEN, &a))
        return snprintf(why, wl, "an entry is cut short"), RK_ECORRUPT;
    uint32_t part = rk_le_get32(a);
    struct part *e = part_of(p, part);
    if (!e || (int64_t)part <= *prev || (a[4] & ~RK_AE_MARK_ALL) || a[5] > RK_AEPROGRESS_PEERS)
        return snprintf(why, wl, "entry for partition %u is invalid, repeated or out of order",
                        part),
               RK_ECORRUPT;
    *prev = part;
    e->marks = a[4];
    get64s(a + 8, (uint64_t *const[]){&e->marked_ms, &e->round, &e->repaired, &e->leaves}, 4);
    if (a[5] && !(e->peers = calloc(RK_AEPROGRESS_PEERS, sizeof(*e->peers))))
        return -ENOMEM;
    for (unsigned k = 0; k < a[5]; k++, e->npeers++) {
        int rc = decode_peer(r, &e->peers[k], why, wl);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Back to a fresh start (a file that failed half-way leaves nothing). */
static void reset(struct rk_aeprogress *p)
{
    for (size_t i = 0; i < p->owned; i++) {
        free(p->parts[i].peers);
        memset(&p->parts[i], 0, sizeof(p->parts[i]));
    }
    memset(&p->s, 0, sizeof(p->s));
}

static int decode(struct rk_aeprogress *p, const uint8_t *b, size_t len, char *why, size_t wl)
{
    int rc = check_header(p, b, len, why, wl);
    if (rc < 0)
        return rc;
    decode_fixed(&p->s, b);
    struct rd r = {b + FIXED_LEN, len - FIXED_LEN - SUM_LEN};
    uint32_t entries = rk_le_get32(b + 24);
    int64_t prev = -1;
    for (uint32_t i = 0; i < entries && rc == 0; i++)
        rc = decode_entry(p, &r, &prev, why, wl);
    if (rc == 0 && r.left)
        rc = (snprintf(why, wl, "%zu bytes after the last entry", r.left), RK_ECORRUPT);
    if (rc == 0 && p->s.compared > p->s.total)
        rc = (snprintf(why, wl, "round compared %u of %u partitions", p->s.compared, p->s.total),
              RK_ECORRUPT);
    p->s.marked = 0;
    for (size_t i = 0; i < p->owned && rc == 0; i++)
        p->s.marked += p->parts[i].marks != 0;
    return rc;
}

/* Bytes the largest valid file for p can take: a bound on what load reads. */
static size_t file_max(const struct rk_aeprogress *p)
{
    size_t peer = 1 + (RK_AEPROGRESS_ID - 1) + PEER_LEN;
    return FIXED_LEN + SUM_LEN + (size_t)p->owned * (ENTRY_LEN + RK_AEPROGRESS_PEERS * peer);
}

/* The file at path, malloc'd (*len bytes); 0, -ENOENT, -EFBIG or -errno. */
static int read_all(const struct rk_aeprogress *p, const char *path, uint8_t **out, size_t *len)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size > file_max(p))
        return -EFBIG;
    size_t cap = (size_t)st.st_size + 1; /* one more: a file that grew shows as too long */
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    int rc = rk_fs_read_file(path, buf, cap, len);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

/* Load dir/ae-progress into p; any problem but a missing file is logged
 * once and leaves p fresh. */
static void load(struct rk_aeprogress *p)
{
    char path[RK_PATH_MAX], why[200] = "";
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = rk_fs_path(path, p->dir, RK_AEPROGRESS_FILE);
    if (rc == 0)
        rc = read_all(p, path, &buf, &len);
    if (rc == 0)
        rc = decode(p, buf, len, why, sizeof(why));
    free(buf);
    if (rc < 0)
        reset(p);
    if (rc < 0 && rc != -ENOENT)
        rk_warn("aeprogress",
                "ignoring %s/%s: %s; anti-entropy starts a fresh round and its marks are lost",
                p->dir, RK_AEPROGRESS_FILE, why[0] ? why : rk_strerror(rc));
}

static struct rk_aeprogress *alloc(const char *dir, uint32_t partitions, uint32_t workers,
                                   uint32_t worker)
{
    uint32_t owned = (partitions - worker + workers - 1) / workers;
    struct rk_aeprogress *p = calloc(1, sizeof(*p) + (size_t)owned * sizeof(struct part));
    if (!p)
        return NULL;
    p->dir = strdup(dir);
    if (!p->dir) {
        free(p);
        return NULL;
    }
    p->partitions = partitions, p->workers = workers, p->worker = worker, p->owned = owned;
    return p;
}

int rk_aeprogress_open(struct rk_aeprogress **out, const char *dir, uint32_t partitions,
                       uint32_t workers, uint32_t worker)
{
    if (partitions == 0 || partitions > PARTS_MAX || workers == 0 || worker >= workers ||
        worker >= partitions)
        return RK_EINVAL;
    struct rk_aeprogress *p = alloc(dir, partitions, workers, worker);
    if (!p)
        return -ENOMEM;
    load(p);
    *out = p;
    return 0;
}

void rk_aeprogress_close(struct rk_aeprogress *p)
{
    if (!p)
        return;
    reset(p);
    free(p->dir);
    free(p);
}

int rk_aeprogress_clone(struct rk_aeprogress **out, const struct rk_aeprogress *p)
{
    struct rk_aeprogress *c = alloc(p->dir, p->partitions, p->workers, p->worker);
    if (!c)
        return -ENOMEM;
    c->s = p->s;
    c->gen = p->gen, c->saved_gen = p->saved_gen, c->saved_ms = p->saved_ms;
    for (size_t i = 0; i < p->owned; i++) {
        c->parts[i] = p->parts[i];
        c->parts[i].peers = NULL;
        if (!p->parts[i].peers)
            continue;
        c->parts[i].peers = malloc(RK_AEPROGRESS_PEERS * sizeof(struct peer));
        if (!c->parts[i].peers) {
            c->parts[i].npeers = 0;
            rk_aeprogress_close(c);
            return -ENOMEM;
        }
        memcpy(c->parts[i].peers, p->parts[i].peers, RK_AEPROGRESS_PEERS * sizeof(struct peer));
    }
    *out = c;
    return 0;
}

uint64_t rk_aeprogress_generation(const struct rk_aeprogress *p)
{
    return p->gen;
}

/* ---- rounds, exchanges, marks ---- */

void rk_aeprogress_round_start(struct rk_aeprogress *p, uint64_t now_ms, uint32_t total)
{
    struct rk_aeprogress_summary *s = &p->s;
    s->round++;
    s->in_progress = true;
    s->started_ms = now_ms;
    s->compared = 0;
    s->total = total;
    s->leaves = s->pulled = s->pushed = s->bytes = 0;
    changed(p, true);
}

void rk_aeprogress_round_finish(struct rk_aeprogress *p, uint64_t now_ms)
{
    if (!p->s.in_progress)
        return;
    p->s.in_progress = false;
    p->s.finished_ms = now_ms;
    p->s.totals.rounds++;
    changed(p, true);
}

bool rk_aeprogress_compared(const struct rk_aeprogress *p, uint32_t part)
{
    const struct part *e = cpart_of(p, part);
    return e && p->s.in_progress && e->round == p->s.round;
}

/* The record for peer in e, made (or taken from the least recently heard
 * peer, when all slots are used) if there is none. NULL: out of memory. */
static struct peer *peer_slot(struct part *e, const char *peer)
{
    if (!e->peers && !(e->peers = calloc(RK_AEPROGRESS_PEERS, sizeof(*e->peers))))
        return NULL;
    unsigned oldest = 0;
    for (unsigned k = 0; k < e->npeers; k++) {
        if (strcmp(e->peers[k].id, peer) == 0)
            return &e->peers[k];
        if (e->peers[k].last_ms < e->peers[oldest].last_ms)
            oldest = k;
    }
    unsigned k = e->npeers < RK_AEPROGRESS_PEERS ? e->npeers++ : oldest;
    memset(&e->peers[k], 0, sizeof(e->peers[k]));
    snprintf(e->peers[k].id, sizeof(e->peers[k].id), "%s", peer);
    return &e->peers[k];
}

static void count_exchange(struct rk_aeprogress *p, struct part *e, const struct rk_ae_exchange *x)
{
    struct rk_aeprogress_summary *s = &p->s;
    uint64_t keys = x->keys_pulled + x->keys_pushed;
    s->leaves += x->leaves_differing, s->totals.leaves += x->leaves_differing;
    s->pulled += x->keys_pulled, s->totals.pulled += x->keys_pulled;
    s->pushed += x->keys_pushed, s->totals.pushed += x->keys_pushed;
    s->bytes += x->bytes, s->totals.bytes += x->bytes;
    s->totals.repaired += keys;
    e->repaired += keys;
    e->leaves += x->leaves_differing;
    if (x->result == RK_AE_OK && s->in_progress && e->round != s->round) {
        e->round = s->round; /* compared once per round, however many peers */
        s->compared += s->compared < s->total;
        s->totals.compared++;
    }
}

int rk_aeprogress_record(struct rk_aeprogress *p, uint32_t part, const char *peer,
                         const struct rk_ae_exchange *x)
{
    struct part *e = part_of(p, part);
    size_t il = peer ? strlen(peer) : 0;
    if (!e || il == 0 || il >= RK_AEPROGRESS_ID || x->result == RK_AE_NEVER ||
        x->result >= RK_AE_RESULTS)
        return RK_EINVAL;
    struct peer *q = peer_slot(e, peer);
    if (!q)
        return -ENOMEM;
    q->last_ms = x->finished_ms;
    q->result = (uint8_t)x->result;
    q->leaves = x->leaves_differing;
    q->keys = x->keys_pulled + x->keys_pushed;
    if (x->result == RK_AE_OK && x->keys_failed == 0) /* completed: see aeprogress.h */
        q->ok_ms = x->started_ms;
    count_exchange(p, e, x);
    changed(p, false);
    return 0;
}

int rk_aeprogress_mark(struct rk_aeprogress *p, uint32_t part, unsigned why, uint64_t now_ms)
{
    struct part *e = part_of(p, part);
    if (!e || !(why & RK_AE_MARK_ALL) || (why & ~RK_AE_MARK_ALL))
        return RK_EINVAL;
    p->s.marked += e->marks == 0;
    e->marks |= (uint8_t)why;
    e->marked_ms = now_ms;
    changed(p, true);
    return 0;
}

unsigned rk_aeprogress_marks(const struct rk_aeprogress *p, uint32_t part)
{
    const struct part *e = cpart_of(p, part);
    return e ? e->marks : 0;
}

static const struct peer *find_peer(const struct part *e, const char *id)
{
    for (unsigned k = 0; k < e->npeers; k++)
        if (strcmp(e->peers[k].id, id) == 0)
            return &e->peers[k];
    return NULL;
}

bool rk_aeprogress_clear(struct rk_aeprogress *p, uint32_t part, const char *const *peers, size_t n)
{
    struct part *e = part_of(p, part);
    if (!e || !e->marks)
        return true;
    for (size_t i = 0; i < n; i++) {
        const struct peer *q = find_peer(e, peers[i]);
        if (!q || q->ok_ms <= e->marked_ms) /* started at or before the mark: may miss it */
            return false;
    }
    e->marks = 0;
    e->marked_ms = 0;
    p->s.marked--;
    changed(p, true);
    return true;
}

uint64_t rk_aeprogress_watermark(const struct rk_aeprogress *p, uint32_t part,
                                 const char *const *peers, size_t n)
{
    const struct part *e = cpart_of(p, part);
    uint64_t w = UINT64_MAX;
    for (size_t i = 0; e && i < n; i++) {
        const struct peer *q = find_peer(e, peers[i]);
        uint64_t t = q ? q->ok_ms : 0;
        w = t < w ? t : w;
    }
    return e ? w : 0;
}

/* ---- figures and JSON ---- */

void rk_aeprogress_summary(const struct rk_aeprogress *p, struct rk_aeprogress_summary *s)
{
    *s = p->s;
}

void rk_aeprogress_summary_add(struct rk_aeprogress_summary *into,
                               const struct rk_aeprogress_summary *w, bool first)
{
    if (first) {
        *into = *w;
        return;
    }
    into->round = w->round < into->round ? w->round : into->round;
    into->in_progress = into->in_progress || w->in_progress;
    if (w->started_ms && (!into->started_ms || w->started_ms < into->started_ms))
        into->started_ms = w->started_ms; /* the node's round began with its first worker's */
    into->finished_ms = w->finished_ms > into->finished_ms ? w->finished_ms : into->finished_ms;
    into->compared += w->compared, into->total += w->total;
    into->leaves += w->leaves, into->pulled += w->pulled, into->pushed += w->pushed;
    into->bytes += w->bytes;
    into->totals.rounds =
        w->totals.rounds < into->totals.rounds ? w->totals.rounds : into->totals.rounds;
    into->totals.compared += w->totals.compared, into->totals.leaves += w->totals.leaves;
    into->totals.pulled += w->totals.pulled, into->totals.pushed += w->totals.pushed;
    into->totals.repaired += w->totals.repaired, into->totals.bytes += w->totals.bytes;
    into->marked += w->marked;
}

void rk_aeprogress_rates(const struct rk_aeprogress_summary *s, uint64_t now_ms,
                         struct rk_aeprogress_rates *r)
{
    uint64_t end = s->in_progress ? now_ms : s->finished_ms;
    double secs = s->started_ms && end > s->started_ms ? (double)(end - s->started_ms) / 1000.0 : 0;
    double keys = (double)(s->pulled + s->pushed);
    r->keys_per_second = secs > 0 ? keys / secs : 0.0;
    r->bytes_per_second = secs > 0 ? (double)s->bytes / secs : 0.0;
    r->has_eta = s->in_progress && s->compared > 0 && secs > 0;
    r->eta_s = r->has_eta ? (double)(s->total - s->compared) * secs / s->compared : 0.0;
}

static void rates_json(const struct rk_aeprogress_summary *s, uint64_t now_ms, struct rk_jbuf *b)
{
    struct rk_aeprogress_rates r;
    rk_aeprogress_rates(s, now_ms, &r);
    rk_jadd(b, ",\"keys_per_second\":%.1f,\"bytes_per_second\":%.1f,\"eta_s\":", r.keys_per_second,
            r.bytes_per_second);
    if (r.has_eta)
        rk_jadd(b, "%.0f", r.eta_s);
    else
        rk_jadd(b, "null"); /* unknown until a partition is done, or no round running */
}

static int cmp_id(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

void rk_aeprogress_peers_latest(const struct rk_aeprogress *p, const char *const *ids, size_t n,
                                struct rk_aeprogress_last *out)
{
    for (size_t i = 0; i < p->owned; i++) {
        const struct part *e = &p->parts[i];
        for (unsigned k = 0; k < e->npeers; k++) {
            const struct peer *q = &e->peers[k];
            const char *const *at = bsearch(q->id, ids, n, sizeof(*ids), cmp_id);
            if (!at || q->result == RK_AE_NEVER)
                continue;
            struct rk_aeprogress_last *o = &out[at - ids];
            if (o->result == RK_AE_NEVER || q->last_ms > o->last_ms) {
                o->last_ms = q->last_ms;
                o->result = q->result;
            }
            o->ok_ms = q->ok_ms > o->ok_ms ? q->ok_ms : o->ok_ms;
        }
    }
}

void rk_aeprogress_json_summary(const struct rk_aeprogress_summary *s, uint64_t now_ms,
                                struct rk_jbuf *b)
{
    rk_jadd(b,
            "\"round\":{\"number\":%llu,\"in_progress\":%s,\"started_ms\":%llu,"
            "\"finished_ms\":%llu,\"partitions_compared\":%u,\"partitions_total\":%u,"
            "\"leaves_differing\":%llu,\"keys_pulled\":%llu,\"keys_pushed\":%llu,\"bytes\":%llu",
            (unsigned long long)s->round, s->in_progress ? "true" : "false",
            (unsigned long long)s->started_ms, (unsigned long long)s->finished_ms, s->compared,
            s->total, (unsigned long long)s->leaves, (unsigned long long)s->pulled,
            (unsigned long long)s->pushed, (unsigned long long)s->bytes);
    rates_json(s, now_ms, b);
    rk_jadd(b,
            "},\"totals\":{\"rounds\":%llu,\"partitions_compared\":%llu,"
            "\"leaves_differing\":%llu,\"keys_pulled\":%llu,\"keys_pushed\":%llu,"
            "\"keys_repaired\":%llu,\"bytes\":%llu},\"marked_partitions\":%u",
            (unsigned long long)s->totals.rounds, (unsigned long long)s->totals.compared,
            (unsigned long long)s->totals.leaves, (unsigned long long)s->totals.pulled,
            (unsigned long long)s->totals.pushed, (unsigned long long)s->totals.repaired,
            (unsigned long long)s->totals.bytes, s->marked);
}

static void marks_json(unsigned marks, struct rk_jbuf *b)
{
    static const char *const names[] = {"hint", "segment", "corrupt", "request"};
    rk_jadd(b, "[");
    for (unsigned i = 0, n = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (marks & (1u << i))
            rk_jadd(b, "%s\"%s\"", n++ ? "," : "", names[i]);
    rk_jadd(b, "]");
}

static void peer_json(const struct peer *q, const char *id, struct rk_jbuf *b)
{
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, id);
    rk_jadd(b,
            ",\"result\":\"%s\",\"ok_ms\":%llu,\"last_ms\":%llu,\"leaves_differing\":%u,"
            "\"keys_repaired\":%llu}",
            rk_ae_result_name(q ? q->result : RK_AE_NEVER), (unsigned long long)(q ? q->ok_ms : 0),
            (unsigned long long)(q ? q->last_ms : 0), q ? q->leaves : 0,
            (unsigned long long)(q ? q->keys : 0));
}

/* The most recent exchange of e with any of the peers (NULL: none). */
static const struct peer *latest(const struct part *e, const char *self,
                                 const char *const *replicas, size_t n)
{
    const struct peer *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct peer *q = strcmp(replicas[i], self) ? find_peer(e, replicas[i]) : NULL;
        if (q && q->result != RK_AE_NEVER && (!best || q->last_ms > best->last_ms))
            best = q;
    }
    return best;
}

/* "worker":W,"worker_round":{...}: the round of the worker p that owns the
 * partition, from the same copy as the partition's figures. */
static void worker_round_json(const struct rk_aeprogress *p, struct rk_jbuf *b)
{
    const struct rk_aeprogress_summary *s = &p->s;
    rk_jadd(b,
            "\"worker\":%u,\"worker_round\":{\"number\":%llu,\"in_progress\":%s,"
            "\"started_ms\":%llu,\"finished_ms\":%llu}",
            p->worker, (unsigned long long)s->round, s->in_progress ? "true" : "false",
            (unsigned long long)s->started_ms, (unsigned long long)s->finished_ms);
}

void rk_aeprogress_json_partition(const struct rk_aeprogress *p, uint32_t part, const char *self,
                                  const char *const *replicas, size_t n, struct rk_jbuf *b)
{
    static const struct part none;
    const struct part *e = cpart_of(p, part);
    e = e ? e : &none;
    const char *peers[RK_AEPROGRESS_PEERS];
    size_t np = 0;
    rk_jadd(b, "{\"partition\":%u,\"replicas\":[", part);
    for (size_t i = 0; i < n; i++) {
        rk_jadd(b, "%s", i ? "," : "");
        rk_jstr(b, replicas[i]);
        if (strcmp(replicas[i], self) != 0 && np < RK_AEPROGRESS_PEERS)
            peers[np++] = replicas[i];
    }
    const struct peer *last = latest(e, self, replicas, n);
    rk_jadd(b, "],\"marks\":");
    marks_json(e->marks, b);
    rk_jadd(b,
            ",\"marked_ms\":%llu,\"last_exchange_ms\":%llu,\"last_result\":\"%s\","
            "\"leaves_differing\":%llu,\"keys_repaired\":%llu,\"compared_in_round\":%llu,"
            "\"watermark_ms\":%llu,",
            (unsigned long long)e->marked_ms, (unsigned long long)(last ? last->last_ms : 0),
            rk_ae_result_name(last ? last->result : RK_AE_NEVER), (unsigned long long)e->leaves,
            (unsigned long long)e->repaired, (unsigned long long)e->round,
            (unsigned long long)rk_aeprogress_watermark(p, part, peers, np));
    worker_round_json(p, b);
    rk_jadd(b, ",\"peers\":[");
    for (size_t i = 0; i < np; i++) {
        rk_jadd(b, "%s", i ? "," : "");
        peer_json(find_peer(e, peers[i]), peers[i], b);
    }
    rk_jadd(b, "]}");
}

const char *rk_ae_result_name(enum rk_ae_result r)
{
    static const char *const names[RK_AE_RESULTS] = {"never", "ok", "unreachable", "refused",
                                                     "aborted"};
    return (unsigned)r < RK_AE_RESULTS ? names[r] : "unknown";
}

/* ---- saving ---- */

bool rk_aeprogress_dirty(const struct rk_aeprogress *p)
{
    return p->gen != p->saved_gen;
}

bool rk_aeprogress_save_due(const struct rk_aeprogress *p, uint64_t now_ms)
{
    return rk_aeprogress_dirty(p) &&
           (p->urgent || now_ms < p->saved_ms || now_ms - p->saved_ms >= RK_AEPROGRESS_SAVE_MS);
}

int rk_aeprogress_save(struct rk_aeprogress *p, uint64_t now_ms)
{
    if (!rk_aeprogress_dirty(p))
        return 0;
    size_t len;
    uint8_t *buf = encode(p, &len);
    if (!buf)
        return -ENOMEM;
    int rc = rk_fs_write_file(p->dir, RK_AEPROGRESS_FILE, buf, len);
    free(buf);
    if (rc == 0) {
        p->saved_gen = p->gen;
        p->saved_ms = now_ms;
        p->urgent = false;
    }
    return rc;
}

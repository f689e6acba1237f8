/* Hint store (see hints.h): a storage engine plus per-target counts kept
 * in memory (rebuilt at open by one pass over the store), and the
 * anti-entropy marks of partitions whose hints were dropped. */
#include "cluster/hints.h"
#include "util/le.h"
#include "cluster/members.h"
#include "cluster/ring.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define HDR 17u /* kind u8, version u64, expiry u64 */
/* Marks are saved at most this often: each save is two fsyncs on the
 * worker's loop, and a burst of drops can mark many partitions in a row.
 * The same window as the store's own fsync interval (see hints.h): a mark
 * lost to a crash within it waits for a full anti-entropy pass. */
#define MARKS_SAVE_EVERY_NS 100000000ull

static_assert(RK_HINTS_ID_MAX == RK_MEMBER_ID_MAX, "a hint's target is a node id");

struct target {
    char id[RK_MEMBER_ID_MAX + 1];
    uint64_t count, bytes;
    uint64_t full_log_ms;
};

struct rk_hints {
    char *dir;
    rk_storage *store;
    uint64_t max_bytes, max_age_ms;
    struct target *t;
    size_t nt;
    struct rk_hints_stats st;
    uint8_t *buf;
    size_t cap;
    struct rk_aemarks *marks;
    uint64_t marks_saved_ns; /* rate limit of saves */
    uint64_t mark_log_ms;    /* rate limit of the "marked" warning */
    uint64_t marks_unlogged; /* partitions marked since that warning */
    uint64_t save_log_ms;    /* rate limit of the save-failure warning */
};

static uint16_t part_of(const char *target)
{
    return (uint16_t)XXH3_64bits(target, strlen(target));
}

static struct target *target(struct rk_hints *h, const char *id, bool create)
{
    for (size_t i = 0; i < h->nt; i++)
        if (strcmp(h->t[i].id, id) == 0)
            return &h->t[i];
    if (!create)
        return NULL;
    struct target *nt = realloc(h->t, (h->nt + 1) * sizeof(*nt));
    if (!nt)
        return NULL;
    h->t = nt;
    struct target *t = &h->t[h->nt++];
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    return t;
}

/* Split a stored key into target and record key; false if malformed. */
static bool split(const struct rk_record *r, const char **tgt, const void **key, uint32_t *klen)
{
    const char *k = r->key;
    const char *nul = memchr(k, 0, r->klen);
    if (!nul || nul == k || nul - k > RK_MEMBER_ID_MAX)
        return false;
    *tgt = k;
    *key = nul + 1;
    *klen = r->klen - (uint32_t)(nul - k) - 1;
    return true;
}

/* Account for every pending hint once, at open, by its whole size (key and
 * value, as rk_hints_add counts it and delivery forgets it), so the bound
 * and the figures hold across a restart. A hint whose block is unreadable
 * counts its key only, as drop_damaged forgets it. */
static int load_counts(struct rk_hints *h)
{
    struct rk_storage_iter it;
    struct rk_record r;
    int rc;
    rk_storage_iter_init(&it, -1, true);
    while ((rc = rk_storage_iter_next(h->store, &it, &r)) != 0) {
        if (rc == RK_ECORRUPT)
            r.vlen = 0; /* r names the record (storage.h); delivery drops it */
        else if (rc < 0)
            return rc;
        const char *tgt;
        const void *key;
        uint32_t klen;
        if (r.tombstone || !split(&r, &tgt, &key, &klen))
            continue;
        char id[RK_MEMBER_ID_MAX + 1];
        snprintf(id, sizeof(id), "%.*s", (int)strnlen(tgt, RK_MEMBER_ID_MAX), tgt);
        struct target *t = target(h, id, true);
        if (!t)
            return -ENOMEM;
        t->count++;
        t->bytes += r.klen + r.vlen;
        h->st.pending++;
        h->st.pending_bytes += r.klen + r.vlen;
    }
    return rc;
}

int rk_hints_open(struct rk_hints **out, const char *dir, const struct rk_storage_opts *base,
                  uint32_t partitions, uint64_t max_bytes, uint64_t max_age_ms, char *err,
                  size_t errlen)
{
    struct rk_hints *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    struct rk_storage_opts o = *base;
    o.fsync = RK_FSYNC_INTERVAL; /* see hints.h */
    o.fsync_interval_ms = 100;
    o.max_key_size = base->max_key_size + RK_MEMBER_ID_MAX + 1;
    o.max_value_size = base->max_value_size + HDR;
    struct rk_storage_report rep;
    int rc = rk_storage_open(&h->store, dir, &o, &rep);
    if (rc == 0)
        rc = load_counts(h);
    if (rc < 0) {
        snprintf(err, errlen, "hint store %s: %s", dir, rep.error[0] ? rep.error : rk_strerror(rc));
        rk_hints_close(h);
        return rc;
    }
    /* After the store: it creates dir and holds the lock on it. */
    h->dir = strdup(dir);
    rc = h->dir ? rk_aemarks_open(&h->marks, dir, partitions) : -ENOMEM;
    if (rc < 0) {
        snprintf(err, errlen, "anti-entropy marks in %s (%u partitions): %s", dir, partitions,
                 rk_strerror(rc));
        rk_hints_close(h);
        return rc;
    }
    h->max_bytes = max_bytes;
    h->max_age_ms = max_age_ms;
    *out = h;
    return 0;
}

void rk_hints_close(struct rk_hints *h)
{
    if (!h)
        return;
    if (h->marks) { /* before the store lets go of the dir's lock */
        int rc = rk_aemarks_save(h->marks);
        if (rc < 0)
            rk_warn("hints", "cannot save anti-entropy marks (%u partitions) in %s/%s: %s",
                    rk_aemarks_count(h->marks), h->dir, RK_AEMARKS_FILE, rk_strerror(rc));
        rk_aemarks_close(h->marks);
    }
    if (h->store)
        rk_storage_close(h->store);
    free(h->dir);
    free(h->t);
    free(h->buf);
    free(h);
}

static void forget(struct rk_hints *h, const char *tgt, uint64_t bytes);

/* A hint for key was dropped (why names the bound): mark the key's
 * partition for anti-entropy. A partition's first mark is logged, at most
 * one line a minute per store; the rest are counted into the next line. */
static void mark_dropped(struct rk_hints *h, const char *tgt, const void *key, uint32_t klen,
                         const char *why)
{
    uint32_t p = rk_ring_partition_of(key, klen, rk_aemarks_partitions(h->marks));
    if (!rk_aemarks_mark(h->marks, p))
        return;
    uint64_t now = rk_clock_wall_ms();
    if (!rk_log_due(&h->mark_log_ms, now)) {
        h->marks_unlogged++;
        return;
    }
    char more[96] = "";
    if (h->marks_unlogged)
        snprintf(more, sizeof(more), "; %llu more partitions marked since the last such line",
                 (unsigned long long)h->marks_unlogged);
    h->marks_unlogged = 0;
    rk_warn("hints", "partition %u marked for anti-entropy: hints for %s dropped (%s)%s", p, tgt,
            why, more);
}

static int reserve(struct rk_hints *h, size_t n)
{
    if (n <= h->cap)
        return 0;
    uint8_t *b = realloc(h->buf, n);
    if (!b)
        return -ENOMEM;
    h->buf = b;
    h->cap = n;
    return 0;
}

int rk_hints_add(struct rk_hints *h, const char *tgt, const struct rk_record *r, uint64_t lv)
{
    size_t tl = strlen(tgt), kl = tl + 1 + r->klen, vl = HDR + (r->tombstone ? 0 : r->vlen);
    struct target *t = target(h, tgt, true);
    if (!t)
        return -ENOMEM;
    if (t->bytes + kl + vl > h->max_bytes) {
        h->st.dropped_full++;
        uint64_t now = rk_clock_wall_ms();
        if (rk_log_due(&t->full_log_ms, now)) {
            rk_warn("hints",
                    "hints for %s reached hints.max_bytes_per_target (%llu bytes); "
                    "further writes for it are left to anti-entropy",
                    tgt, (unsigned long long)h->max_bytes);
        }
        mark_dropped(h, tgt, r->key, r->klen, "over hints.max_bytes_per_target");
        return RK_EBUSY;
    }
    if (reserve(h, kl + vl) < 0)
        return -ENOMEM;
    uint8_t *k = h->buf, *v = h->buf + kl;
    memcpy(k, tgt, tl);
    k[tl] = 0;
    memcpy(k + tl + 1, r->key, r->klen);
    v[0] = r->tombstone ? 1 : 0;
    rk_le_put64(v + 1, r->version);
    rk_le_put64(v + 9, r->expiry_ms);
    if (!r->tombstone)
        memcpy(v + HDR, r->val, r->vlen);
    struct rk_record hr = {.key = k,
                           .klen = (uint32_t)kl,
                           .val = v,
                           .vlen = (uint32_t)vl,
                           .version = lv,
                           .partition = part_of(tgt)},
                     old;
    /* A newer hint for the same key replaces the older one: count it once. */
    uint64_t replaced = rk_storage_get(h->store, k, (uint32_t)kl, 0, &old) == 0
                            ? (uint64_t)old.klen + old.vlen + 1
                            : 0;
    int rc = rk_storage_put(h->store, &hr, NULL);
    if (rc < 0)
        return rc;
    if (replaced)
        forget(h, tgt, replaced - 1);
    t->count++;
    t->bytes += kl + vl;
    h->st.stored++;
    h->st.pending++;
    h->st.pending_bytes += kl + vl;
    return 0;
}

/* Save dirty marks unless saved less than MARKS_SAVE_EVERY_NS ago. A
 * failed save leaves them dirty for the next turn; logged once a minute. */
static void save_marks(struct rk_hints *h)
{
    uint64_t now = rk_clock_mono_ns();
    if (now - h->marks_saved_ns < MARKS_SAVE_EVERY_NS)
        return;
    h->marks_saved_ns = now;
    int rc = rk_aemarks_save(h->marks);
    uint64_t wall = rk_clock_wall_ms();
    if (rc < 0 && rk_log_due(&h->save_log_ms, wall)) {
        rk_warn("hints", "cannot save anti-entropy marks (%u partitions) in %s/%s: %s; retrying",
                rk_aemarks_count(h->marks), h->dir, RK_AEMARKS_FILE, rk_strerror(rc));
    }
}

int rk_hints_commit(struct rk_hints *h)
{
    bool staged = rk_storage_staged(h->store) > 0;
    int rc = staged ? rk_storage_commit(h->store) : 0;
    if (rc == 0 && rk_storage_sync_due_ms(h->store) == 0)
        rc = rk_storage_sync(h->store);
    if (staged)
        rk_storage_step(h->store); /* merges away delivered hints over time */
    if (rk_aemarks_dirty(h->marks))
        save_marks(h);
    return rc;
}

int rk_hints_flush(struct rk_hints *h)
{
    int rc = rk_storage_staged(h->store) ? rk_storage_commit(h->store) : 0;
    return rc == 0 ? rk_storage_sync(h->store) : rc;
}

uint64_t rk_hints_pending(const struct rk_hints *h, const char *tgt)
{
    for (size_t i = 0; i < h->nt; i++)
        if (strcmp(h->t[i].id, tgt) == 0)
            return h->t[i].count;
    return 0;
}

static void forget(struct rk_hints *h, const char *tgt, uint64_t bytes)
{
    struct target *t = target(h, tgt, false);
    if (t) {
        t->count -= t->count ? 1 : 0;
        t->bytes -= t->bytes >= bytes ? bytes : t->bytes;
    }
    h->st.pending -= h->st.pending ? 1 : 0;
    h->st.pending_bytes -= h->st.pending_bytes >= bytes ? bytes : h->st.pending_bytes;
}

/* A hint that cannot be delivered (its block is corrupt, or its value is
 * shorter than the header every hint starts with) is dropped, so it does
 * not stop every later hint of its target at each attempt nor stay
 * pending for ever, and its key's partition is marked for anti-entropy as
 * for any dropped hint. bytes: what it counts in pending_bytes (its key's
 * length only when the value is unreadable, as load_counts counts it). */
static void drop_damaged(struct rk_hints *h, const char *tgt, const struct rk_record *r,
                         const char *why, uint64_t bytes)
{
    size_t tl = strlen(tgt);
    h->st.dropped_damaged++;
    mark_dropped(h, tgt, (const uint8_t *)r->key + tl + 1, r->klen - (uint32_t)tl - 1, why);
    rk_storage_del(h->store, r->key, r->klen, r->partition, r->version + 1, NULL);
    forget(h, tgt, bytes);
}

size_t rk_hints_each(struct rk_hints *h, const char *tgt, size_t cap,
                     void (*fn)(const struct rk_hint *hint, void *arg), void *arg)
{
    struct rk_storage_iter it;
    struct rk_record r;
    size_t n = 0, tl = strlen(tgt);
    uint64_t now = rk_clock_wall_ms();
    int rc;
    rk_storage_iter_init(&it, part_of(tgt), true);
    while (n < cap && (rc = rk_storage_iter_next(h->store, &it, &r)) != 0) {
        bool ours = r.klen > tl && memcmp(r.key, tgt, tl) == 0 && ((const uint8_t *)r.key)[tl] == 0;
        if (rc == RK_ECORRUPT && ours) { /* r names it (storage.h): drop it, go on */
            drop_damaged(h, tgt, &r, "unreadable: corrupt block", r.klen);
            continue;
        }
        if (rc < 0)
            break; /* an I/O error: the next delivery attempt tries again */
        if (r.tombstone || !ours)
            continue;
        if (r.vlen < HDR) {
            drop_damaged(h, tgt, &r, "damaged: shorter than a hint's header", r.klen + r.vlen);
            continue;
        }
        const uint8_t *v = r.val;
        struct rk_hint hint = {.key = (const uint8_t *)r.key + tl + 1,
                               .klen = r.klen - (uint32_t)tl - 1,
                               .val = v + HDR,
                               .vlen = r.vlen - HDR,
                               .tombstone = v[0] == 1,
                               .version = rk_le_get64(v + 1),
                               .expiry_ms = rk_le_get64(v + 9),
                               .local_version = r.version};
        if (now > (hint.version >> 16) + h->max_age_ms) {
            h->st.dropped_old++;
            mark_dropped(h, tgt, hint.key, hint.klen, "older than hints.max_age");
            rk_storage_del(h->store, r.key, r.klen, r.partition, r.version + 1, NULL);
            forget(h, tgt, r.klen + r.vlen);
            continue;
        }
        fn(&hint, arg);
        n++;
    }
    return n;
}

void rk_hints_delivered(struct rk_hints *h, const char *tgt, const void *key, uint32_t klen,
                        uint64_t lv, uint64_t dv)
{
    size_t tl = strlen(tgt), kl = tl + 1 + klen;
    if (reserve(h, kl) < 0)
        return;
    memcpy(h->buf, tgt, tl);
    h->buf[tl] = 0;
    memcpy(h->buf + tl + 1, key, klen);
    struct rk_record r;
    /* A newer hint for the key may have replaced the one delivered. */
    if (rk_storage_get(h->store, h->buf, (uint32_t)kl, 0, &r) != 0 || r.version != lv)
        return;
    uint64_t bytes = r.klen + r.vlen;
    if (rk_storage_del(h->store, h->buf, (uint32_t)kl, part_of(tgt), dv, NULL) == 0) {
        forget(h, tgt, bytes);
        h->st.delivered++;
    }
}

void rk_hints_stats(const struct rk_hints *h, struct rk_hints_stats *out)
{
    *out = h->st;
    out->partitions_marked = rk_aemarks_count(h->marks);
}

size_t rk_hints_targets(const struct rk_hints *h, struct rk_hints_target *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nt; i++) {
        const struct target *t = &h->t[i];
        if (!t->count)
            continue; /* delivered: the entry stays for the next hint */
        if (n < cap) {
            snprintf(out[n].id, sizeof(out[n].id), "%s", t->id);
            out[n].count = t->count;
            out[n].bytes = t->bytes;
        }
        n++;
    }
    return n;
}

struct rk_aemarks *rk_hints_marks(struct rk_hints *h)
{
    return h->marks;
}

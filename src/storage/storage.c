/* Storage engine facade: open/recovery, the group-commit write path, reads
 * through the block cache, index jobs and the background step.
 *
 * Segment life cycle (arrows name the functions that move them):
 *
 *   create ──► ACTIVE ──roll()/open──► SEALED ──index_job_step()──► INDEXED
 *                                                                       │ merge
 *              merge: OUTPUT ──(apply)──► SEALED                        ▼
 *                                                                   (unlinked)
 *
 * Invariants:
 * 1. The index holds exactly one entry per key: its newest version. Versions
 *    decide, not arrival order; an older put is refused (RK_ESTALE) and
 *    never written. At an equal version the record of strictly higher rank
 *    (rk_record_rank: a delete, else a digest of the value) replaces the
 *    stored one, so every replica keeps the same one whatever the arrival
 *    order; it is appended after the record it replaces, so recovery's
 *    "later in log order wins on an equal version" agrees (recovery.c).
 * 2. A put's index change is visible at once and recorded in the undo log
 *    until its batch commits; a failed commit rolls every change back, so
 *    the index never points at bytes that were not written.
 * 3. Only the active segment is written by puts; only SEALED/INDEXED segments
 *    are read in bulk; only INDEXED ones are merged.
 * 4. An index file omits records that were dead when it was built, so the
 *    record that superseded them is synced before the index file is finished.
 */
#include "storage/storage_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/grow.h"
#include "util/fsutil.h"
#include "util/io.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INDEX_STEP_ENTRIES 65536 /* index entries examined per index step: ~1 ms */

void rk_storage_opts_default(struct rk_storage_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->segment_size = 64ull << 20;
    o->fsync = RK_FSYNC_ALWAYS;
    o->fsync_interval_ms = 10;
    o->compression = true;
    o->max_key_size = 1024;
    o->max_value_size = 1u << 20;
    o->block_cache_size = 32ull << 20;
    o->merge_dead_ratio = 0.4;
    o->repack_below = 12 * 1024;
    o->tombstone_grace_ms = 24ull * 3600 * 1000;
}

uint64_t rk_storage_now_ms(const rk_storage *s)
{
    return s->o.now_ms ? s->o.now_ms() : rk_clock_wall_ms();
}

/* One writer (the owner), so a relaxed load and store is enough and costs
 * no locked instruction on the write path. */
static void psize_add(struct rk_storage_psize *ps, uint64_t keys, uint64_t bytes)
{
    atomic_store_explicit(&ps->keys, atomic_load_explicit(&ps->keys, memory_order_relaxed) + keys,
                          memory_order_relaxed);
    atomic_store_explicit(&ps->bytes,
                          atomic_load_explicit(&ps->bytes, memory_order_relaxed) + bytes,
                          memory_order_relaxed);
}

void rk_storage_partition_size(const rk_storage *s, uint16_t partition, uint64_t *keys,
                               uint64_t *bytes)
{
    struct rk_storage_psize *ps = &s->psize[partition];
    *keys = atomic_load_explicit(&ps->keys, memory_order_relaxed);
    *bytes = atomic_load_explicit(&ps->bytes, memory_order_relaxed);
}

void rk_storage_account(rk_storage *s, const struct rk_ix_entry *e, int sign)
{
    struct seg *g = &s->segs[e->seg];
    uint64_t d = (uint64_t)(int64_t)sign * e->len;
    if (e->flags & RK_REC_TOMBSTONE) {
        g->tomb_bytes += d;
        s->ntomb += (uint64_t)(int64_t)sign;
    } else {
        g->live_bytes += d;
        psize_add(&s->psize[e->partition], (uint64_t)(int64_t)sign, d);
    }
    /* When a merge could first drop something here. Never raised on removal:
     * a stale early time costs one needless merge, which recomputes it. */
    if (sign > 0 && ((e->flags & RK_REC_TOMBSTONE) || e->expiry_s) &&
        rk_storage_death_ms(e) + s->o.tombstone_grace_ms < g->next_drop_ms)
        g->next_drop_ms = rk_storage_death_ms(e) + s->o.tombstone_grace_ms;
}

int rk_storage_seg_slot(rk_storage *s, uint32_t *slot)
{
    for (uint32_t i = 0; i < s->nsegs; i++) {
        if (s->segs[i].state == SEG_FREE) {
            *slot = i;
            goto found;
        }
    }
    struct seg *ns = realloc(s->segs, (s->nsegs + 1) * sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    s->segs = ns;
    *slot = s->nsegs++;
found:
    memset(&s->segs[*slot], 0, sizeof(struct seg));
    s->segs[*slot].fd = -1;
    s->segs[*slot].next_drop_ms = UINT64_MAX;
    return 0;
}

void rk_storage_seg_drop(rk_storage *s, uint32_t slot)
{
    struct seg *g = &s->segs[slot];
    char path[4096];
    rk_cache_drop_seg(&s->cache, slot);
    if (g->fd >= 0)
        close(g->fd);
    rk_seg_path(path, sizeof(path), s->dir, g->id, "rkh");
    unlink(path);
    rk_seg_path(path, sizeof(path), s->dir, g->id, g->tmp_name ? "rks.tmp" : "rks");
    unlink(path);
    memset(g, 0, sizeof(*g));
    g->fd = -1;
}

/* ---- reads ---- */

static uint8_t *cache_alloc(void *arg, uint32_t len)
{
    void **a = arg;
    return rk_cache_insert(a[0], (uint32_t)(uintptr_t)a[1], (uint32_t)(uintptr_t)a[2], len);
}

/* The raw payload of block `block` of segment slot seg, from the open block,
 * the batch buffer, the cache or disk (verified), and its length in
 * *raw_len: an index entry is only as good as its index file, so readers
 * bound what they decode by the block, not by the entry. Borrowed. */
static int block_raw(rk_storage *s, uint32_t seg, uint32_t block, const uint8_t **raw,
                     uint32_t *raw_len)
{
    struct seg *g = &s->segs[seg];
    if (seg == s->active && block >= g->end) {
        uint64_t open_off = g->end + s->wlen;
        if (block == open_off) {
            *raw = s->blk;
            *raw_len = s->blen;
            return 0;
        }
    }
    *raw = rk_cache_get(&s->cache, seg, block, raw_len);
    if (*raw)
        return 0;
    if (seg == s->active && block >= g->end) { /* sealed in this batch, evicted */
        struct rk_blk_hdr h;
        memcpy(&h, s->wbuf + (block - g->end), sizeof(h));
        uint8_t *dst = rk_cache_insert(&s->cache, seg, block, h.raw_len);
        if (!dst)
            return -ENOMEM;
        *raw = dst;
        *raw_len = h.raw_len;
        return rk_blk_open(&h, s->wbuf + (block - g->end) + sizeof(h), dst);
    }
    void *arg[3] = {&s->cache, (void *)(uintptr_t)seg, (void *)(uintptr_t)block};
    struct rk_blk_hdr h;
    uint8_t *dst = NULL;
    int rc = rk_seg_read_block(g->fd, block, g->end, &h, cache_alloc, arg, &dst);
    if (rc < 0) {
        if (dst)
            rk_cache_drop_block(&s->cache, seg, block);
        return rc;
    }
    *raw = dst;
    *raw_len = h.raw_len;
    return 0;
}

/* ---- damage found by reads ---- */

/* Where (seg_id, block) is or would go in the sorted list s->bad. */
static size_t bad_pos(const rk_storage *s, uint64_t seg_id, uint32_t block, bool *found)
{
    size_t lo = 0, hi = s->nbad;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct bad_block *b = &s->bad[mid];
        if (b->seg_id < seg_id || (b->seg_id == seg_id && b->block < block))
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->nbad && s->bad[lo].seg_id == seg_id && s->bad[lo].block == block;
    return lo;
}

/* The partitions with a current record (not a tombstone: its index entry
 * is all a reader needs) in block `block` of slot seg into parts; how many
 * records. One pass over the index: paid once per damaged block. */
static uint64_t block_partitions(const rk_storage *s, uint32_t seg, uint32_t block, uint8_t *parts)
{
    uint64_t n = 0;
    for (uint32_t id = 0; id < s->ix.high; id++) {
        const struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
        if (!e->key || e->seg != seg || e->block != block || (e->flags & RK_REC_TOMBSTONE))
            continue;
        parts[e->partition / 8] |= (uint8_t)(1u << (e->partition % 8));
        n++;
    }
    return n;
}

void rk_storage_damage_found(rk_storage *s, uint32_t seg, uint32_t block)
{
    struct seg *g = &s->segs[seg];
    bool found;
    size_t at = bad_pos(s, g->id, block, &found);
    uint8_t *parts = NULL;
    if (found)
        return;
    /* Without memory the block is not remembered: the next read reports
     * it again, better than never. */
    if ((s->o.on_damage && !(parts = calloc(RK_STORAGE_PARTITIONS_MAX / 8, 1))) ||
        rk_grow(&s->bad, &s->cbad, s->nbad + 1, sizeof(*s->bad), 16, 0) < 0) {
        free(parts);
        return;
    }
    memmove(&s->bad[at + 1], &s->bad[at], (s->nbad - at) * sizeof(*s->bad));
    s->bad[at] = (struct bad_block){g->id, block};
    s->nbad++;
    if (!g->has_bad_blocks)
        rk_error("storage",
                 "corrupt block in %s/seg-%016llx.rks offset=%u: checksum mismatch; its records "
                 "cannot be read here until written again (later damage in this segment is "
                 "not logged; repair at the next open moves the segment aside)",
                 s->dir, (unsigned long long)g->id, block);
    g->has_bad_blocks = true;
    if (!parts)
        return;
    struct rk_storage_damage d = {
        .kind = RK_DAMAGE_UNREADABLE, .segment = g->id, .offset = block, .partitions = parts};
    d.records = block_partitions(s, seg, block, parts);
    s->o.on_damage(s->o.damage_arg, &d);
    free(parts);
}

/* Whether a read already found block `block` of slot seg damaged. */
static bool bad_known(const rk_storage *s, uint32_t seg, uint32_t block)
{
    bool found = false;
    if (s->segs[seg].has_bad_blocks)
        bad_pos(s, s->segs[seg].id, block, &found);
    return found;
}

static bool expired(uint32_t expiry_s, uint64_t now)
{
    return expiry_s && now >= (uint64_t)expiry_s * 1000;
}

/* Fill out from entry e, reading the record when a value is wanted. */
static int entry_record(rk_storage *s, const struct rk_ix_entry *e, bool value,
                        struct rk_record *out)
{
    out->key = e->key;
    out->klen = e->klen;
    out->version = e->version;
    out->partition = e->partition;
    out->tombstone = (e->flags & RK_REC_TOMBSTONE) != 0;
    out->expiry_ms = (uint64_t)e->expiry_s * 1000;
    out->val = "";
    out->vlen = 0;
    if (!value || out->tombstone)
        return 0;
    const uint8_t *raw, *k, *v;
    uint32_t raw_len;
    int rc = block_raw(s, e->seg, e->block, &raw, &raw_len);
    struct rk_rec_hdr h;
    /* The record ends within the entry's length and within the block, and
     * is the entry's: key, version, and a value (a delete's record served
     * as a value would bring the key back). */
    uint64_t end = (uint64_t)e->off + e->len;
    if (rc == 0 && (end > raw_len || rk_rec_decode(raw, (uint32_t)end, e->off, &h, &k, &v) < 0 ||
                    h.klen != e->klen || h.version != e->version || (h.flags & RK_REC_TOMBSTONE) ||
                    memcmp(k, e->key, e->klen) != 0))
        rc = RK_ECORRUPT;
    if (rc == RK_ECORRUPT)
        rk_storage_damage_found(s, e->seg, e->block);
    if (rc < 0)
        return rc;
    out->val = v;
    out->vlen = h.vlen;
    out->expiry_ms = h.expiry_ms;
    return 0;
}

int rk_storage_get(rk_storage *s, const void *key, uint32_t klen, unsigned flags,
                   struct rk_record *out)
{
    s->st.gets++;
    if (klen == 0 || klen > RK_STORAGE_KEY_MAX)
        return RK_ENOTFOUND;
    uint32_t id = rk_index_find(&s->ix, key, klen, rk_index_hash(key, klen));
    if (id == RK_IX_NONE)
        return RK_ENOTFOUND;
    const struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
    uint64_t now = rk_storage_now_ms(s);
    if (e->flags & RK_REC_TOMBSTONE) {
        if (!(flags & RK_GET_TOMBSTONES))
            return RK_ENOTFOUND;
        return entry_record(s, e, false, out);
    }
    if (expired(e->expiry_s, now))
        return RK_ENOTFOUND;
    int rc = entry_record(s, e, true, out);
    if (rc == 0 && out->expiry_ms && now >= out->expiry_ms)
        return RK_ENOTFOUND;
    return rc;
}

/* ---- staging (group commit) ---- */

void rk_storage_batch_abort(rk_storage *s);

/* rk_grow for the engine's 32-bit capacities. */
static int grow32(void *p, uint32_t *cap, size_t need, size_t elem)
{
    size_t c = *cap;
    int rc = rk_grow(p, &c, need, elem, 16, UINT32_MAX);
    *cap = (uint32_t)c;
    return rc;
}

/* Seal the open block into the batch buffer; the block stays readable
 * through the cache (or the batch buffer if evicted). */
static int close_block(rk_storage *s, uint16_t flags)
{
    if (rk_grow(&s->wbuf, &s->wcap, s->wlen + rk_blk_bound(s->blen), 1, 16, 0) < 0 ||
        grow32(&s->closed, &s->cclosed, s->nclosed + 1, sizeof(uint32_t)) < 0)
        return -ENOMEM;
    uint64_t off = s->segs[s->active].end + s->wlen;
    uint8_t *c = rk_cache_insert(&s->cache, s->active, (uint32_t)off, s->blen);
    if (c)
        memcpy(c, s->blk, s->blen);
    s->closed[s->nclosed++] = (uint32_t)off;
    s->wlen += rk_blk_seal(s->wbuf + s->wlen, s->blk, s->blen, s->bcount, flags, s->o.compression);
    s->blen = s->bcount = 0;
    return 0;
}

/* Append a record to the open block; *block and *off say where it will live. */
static int stage(rk_storage *s, const struct rk_rec_hdr *h, const void *key, const void *val,
                 uint32_t *block, uint32_t *off)
{
    uint32_t size = rk_rec_size(h->klen, h->vlen);
    if (s->blen > 0 && s->blen + size > RK_BLOCK_TARGET && close_block(s, 0) < 0)
        return -ENOMEM;
    if (grow32(&s->blk, &s->bcap, s->blen + size, 1) < 0)
        return -ENOMEM;
    uint64_t pos = s->segs[s->active].end + s->wlen;
    if (pos > UINT32_MAX - size)
        return RK_ENOSPACE; /* offsets are 32-bit: a segment stays below 4 GiB */
    rk_rec_encode(s->blk + s->blen, h, key, val);
    *block = (uint32_t)pos;
    *off = s->blen;
    s->blen += size;
    s->bcount++;
    s->batch_rec += size;
    return 0;
}

static int check_put(const rk_storage *s, const struct rk_record *r)
{
    if (s->werr)
        return RK_EREADONLY;
    if (r->klen == 0)
        return RK_EINVAL;
    if (r->klen > s->o.max_key_size || r->klen > RK_STORAGE_KEY_MAX)
        return RK_ETOOLARGE;
    if (!r->tombstone && (r->vlen > s->o.max_value_size || r->vlen > RK_STORAGE_VALUE_MAX))
        return RK_ETOOLARGE;
    return 0;
}

/* Whether r replaces the stored entry e: 1 yes, 0 stale, or the error that
 * kept the stored record from being read. Only an exact version tie reads
 * it (from the batch, the cache or disk, as a get does); an older put is
 * refused on the index alone. A stored record whose block fails its
 * checksum is lost on this replica: the put replaces it, which is how read
 * repair and anti-entropy rewrite a damaged record (in a new block). */
static int supersedes(rk_storage *s, const struct rk_ix_entry *e, const struct rk_record *r)
{
    if (r->version != e->version)
        return r->version > e->version;
    struct rk_record old;
    int rc = entry_record(s, e, true, &old); /* a tombstone is not read */
    if (rc == RK_ECORRUPT)
        return 1;
    if (rc < 0)
        return rc;
    uint64_t mine = rk_record_rank(r->tombstone, r->val, r->vlen, r->expiry_ms);
    uint64_t theirs = rk_record_rank(old.tombstone, old.val, old.vlen, old.expiry_ms);
    return rk_record_newer(r->version, mine, e->version, theirs);
}

int rk_storage_put(rk_storage *s, const struct rk_record *r, uint64_t *cur)
{
    int rc = check_put(s, r);
    if (rc < 0)
        return rc;
    uint32_t hash = rk_index_hash(r->key, r->klen);
    uint32_t id = rk_index_find(&s->ix, r->key, r->klen, hash);
    if (id != RK_IX_NONE) {
        const struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
        rc = supersedes(s, e, r);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (cur)
                *cur = e->version;
            s->st.stale_puts++;
            return RK_ESTALE;
        }
    }
    if (grow32(&s->undo, &s->cundo, s->nundo + 1, sizeof(struct undo)) < 0)
        return -ENOMEM;
    struct rk_rec_hdr h = {
        .version = r->version,
        .expiry_ms = r->tombstone ? 0 : r->expiry_ms,
        .vlen = r->tombstone ? 0 : r->vlen,
        .klen = (uint16_t)r->klen,
        .partition = r->partition,
        .flags = r->tombstone ? RK_REC_TOMBSTONE : 0,
    };
    uint32_t block, off;
    rc = stage(s, &h, r->key, r->val, &block, &off);
    if (rc < 0)
        return rc;
    struct undo *u = &s->undo[s->nundo];
    u->created = id == RK_IX_NONE;
    if (u->created) {
        rc = rk_index_insert(&s->ix, r->key, r->klen, hash, h.partition, &id);
        if (rc < 0)
            return rc; /* the staged bytes become a dead record */
    } else {
        /* A key keeps its partition; moving it (a caller that changed its
         * mind) is not undone by an abort, so it happens first. */
        rc = rk_index_set_partition(&s->ix, id, h.partition);
        if (rc < 0)
            return rc;
        u->old = *rk_index_entry(&s->ix, id);
        rk_storage_account(s, &u->old, -1);
    }
    u->id = id;
    s->nundo++;
    struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
    e->version = h.version;
    e->seg = s->active;
    e->block = block;
    e->off = off;
    e->len = rk_rec_size(h.klen, h.vlen);
    e->expiry_s = h.expiry_ms ? (uint32_t)((h.expiry_ms + 999) / 1000) : 0;
    e->flags = h.flags;
    rk_storage_account(s, e, +1);
    rk_storage_notify(s, u->created ? NULL : &u->old, e);
    s->st.puts++;
    return 0;
}

int rk_storage_del(rk_storage *s, const void *key, uint32_t klen, uint16_t partition,
                   uint64_t version, uint64_t *cur)
{
    struct rk_record r = {
        .key = key, .klen = klen, .version = version, .partition = partition, .tombstone = true};
    return rk_storage_put(s, &r, cur);
}

int64_t rk_storage_drop_partition(rk_storage *s, uint16_t partition)
{
    if (s->nundo)
        return RK_EBUSY;
    int64_t n = 0;
    uint32_t id = rk_index_first(&s->ix, partition);
    while (id != RK_IX_NONE) {
        uint32_t next = rk_index_next(&s->ix, id);
        struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
        rk_storage_account(s, e, -1);
        rk_storage_notify(s, e, NULL);
        rk_index_remove(&s->ix, id);
        n++;
        id = next;
    }
    return n;
}

uint32_t rk_storage_staged(const rk_storage *s)
{
    return s->nundo;
}

/* Undo every staged put (newest first) and forget the batch's bytes. */
void rk_storage_batch_abort(rk_storage *s)
{
    while (s->nundo > 0) {
        struct undo *u = &s->undo[--s->nundo];
        struct rk_ix_entry *e = rk_index_entry(&s->ix, u->id);
        rk_storage_account(s, e, -1);
        if (u->created) {
            rk_storage_notify(s, e, NULL);
            rk_index_remove(&s->ix, u->id);
        } else {
            rk_storage_notify(s, e, &u->old);
            *e = u->old;
            rk_storage_account(s, e, +1);
        }
    }
    for (uint32_t i = 0; i < s->nclosed; i++)
        rk_cache_drop_block(&s->cache, s->active, s->closed[i]);
    s->wlen = s->blen = s->bcount = s->nclosed = 0;
    s->batch_rec = 0;
}

static void batch_done(rk_storage *s)
{
    struct seg *g = &s->segs[s->active];
    for (uint32_t i = 0; i < s->nclosed; i++) {
        struct rk_blk_hdr h;
        memcpy(&h, s->wbuf + (s->closed[i] - g->end), sizeof(h));
        g->raw_bytes += h.raw_len;
    }
    g->nblocks += s->nclosed;
    g->rec_bytes += s->batch_rec;
    g->end += s->wlen;
    s->wlen = s->nclosed = 0;
    s->batch_rec = 0;
    s->nundo = 0;
}

static int refuse_writes(rk_storage *s, int err, const char *what)
{
    struct seg *g = &s->segs[s->active];
    s->werr = err;
    snprintf(s->werr_msg, sizeof(s->werr_msg),
             "%s %s/seg-%016llx.rks failed: %s; writes are refused until restart", what, s->dir,
             (unsigned long long)g->id, rk_strerror(err));
    rk_error("storage", "%s", s->werr_msg);
    return RK_EREADONLY;
}

int rk_storage_datasync(rk_storage *s)
{
    if (!s->dirty)
        return 0;
    uint64_t t0 = rk_clock_mono_ns();
    int rc = rk_io_datasync(s->segs[s->active].fd);
    if (rc < 0)
        return refuse_writes(s, rc, "fdatasync");
    rk_histo_record(&s->st.fsync_us, (rk_clock_mono_ns() - t0) / 1000);
    s->dirty = false;
    s->st.fsyncs++;
    s->st.synced_puts += s->unsynced_puts;
    s->unsynced_puts = 0;
    return 0;
}

static int roll(rk_storage *s);

/* Write the staged batch; sync it here unless the caller syncs (nosync). */
static int commit(rk_storage *s, bool nosync)
{
    if (s->nundo == 0)
        return s->werr ? RK_EREADONLY : 0;
    struct seg *g = &s->segs[s->active];
    int rc = close_block(s, RK_BLK_COMMIT);
    if (rc == 0)
        rc = rk_io_pwrite(g->fd, s->wbuf, s->wlen, g->end);
    if (rc < 0) {
        uint32_t n = s->nundo;
        rk_storage_batch_abort(s);
        if (rc == -ENOSPC || rc == -EDQUOT || rc == RK_ENOSPACE) {
            rk_warn("storage", "write seg=%016llx: no space left; %u puts refused",
                    (unsigned long long)g->id, n);
            return RK_ENOSPACE;
        }
        if (rc == -ENOMEM)
            return rc;
        return refuse_writes(s, rc, "write");
    }
    if (!s->dirty)
        s->dirty_since_ns = rk_clock_mono_ns();
    s->dirty = true;
    s->unsynced_puts += s->nundo;
    if ((s->o.fsync == RK_FSYNC_ALWAYS && !nosync) ||
        (s->o.fsync == RK_FSYNC_INTERVAL &&
         rk_clock_mono_ns() - s->dirty_since_ns >= s->o.fsync_interval_ms * 1000000)) {
        rc = rk_storage_datasync(s);
        if (rc < 0) {
            rk_storage_batch_abort(s);
            return rc;
        }
    }
    s->st.commits++;
    batch_done(s);
    if (g->end >= s->o.segment_size)
        roll(s);
    return 0;
}

int rk_storage_commit(rk_storage *s)
{
    return commit(s, false);
}

int rk_storage_commit_nosync(rk_storage *s)
{
    return commit(s, true);
}

int rk_storage_sync_begin(rk_storage *s, int *fd, uint64_t *puts)
{
    *fd = -1;
    *puts = 0;
    if (s->werr)
        return RK_EREADONLY;
    if (!s->dirty)
        return 0;
    *fd = dup(s->segs[s->active].fd); /* stays valid even if the segment rolls meanwhile */
    if (*fd < 0)
        return -errno;
    *puts = s->unsynced_puts;
    s->unsynced_puts = 0;
    s->dirty = false; /* later writes set it again and need a sync of their own */
    return 0;
}

void rk_storage_sync_end(rk_storage *s, uint64_t puts, int rc, uint64_t us)
{
    if (rc < 0) {
        if (!s->werr)
            refuse_writes(s, rc, "fdatasync");
        return;
    }
    rk_histo_record(&s->st.fsync_us, us);
    s->st.fsyncs++;
    s->st.synced_puts += puts;
}

int rk_storage_sync(rk_storage *s)
{
    if (s->werr)
        return RK_EREADONLY;
    return rk_storage_datasync(s);
}

uint64_t rk_storage_sync_due_ms(const rk_storage *s)
{
    if (s->o.fsync != RK_FSYNC_INTERVAL || !s->dirty)
        return UINT64_MAX;
    uint64_t age = (rk_clock_mono_ns() - s->dirty_since_ns) / 1000000;
    return age >= s->o.fsync_interval_ms ? 0 : s->o.fsync_interval_ms - age;
}

/* Truncate a segment to its data and make that durable. */
int rk_storage_seal_file(rk_storage *s, uint32_t slot)
{
    struct seg *g = &s->segs[slot];
    if (ftruncate(g->fd, (off_t)g->end) < 0)
        return -errno;
    return rk_io_fsync(g->fd);
}

int rk_storage_new_active(rk_storage *s)
{
    uint32_t slot;
    int fd;
    int rc = rk_storage_seg_slot(s, &slot);
    if (rc < 0)
        return rc;
    rc = rk_seg_create(s->dir, s->next_id, s->next_order, 0, s->o.segment_size, false, &fd);
    if (rc < 0)
        return rc;
    struct seg *g = &s->segs[slot];
    g->id = s->next_id++;
    g->order = s->next_order++;
    g->fd = fd;
    g->state = SEG_ACTIVE;
    g->end = sizeof(struct rk_seg_hdr);
    s->active = slot;
    return 0;
}

/* Seal the full active segment and start the next. The old one is synced
 * and truncated first, so only the newest segment can ever have a torn tail.
 * If the new file cannot be created (disk full) appends continue on the old
 * one, past its preallocation, and the roll is retried after later commits. */
static int roll(rk_storage *s)
{
    uint32_t old = s->active;
    int rc = rk_storage_datasync(s);
    if (rc == 0)
        rc = rk_storage_seal_file(s, old);
    if (rc < 0)
        return refuse_writes(s, rc, "seal");
    rc = rk_storage_new_active(s);
    if (rc < 0) {
        uint64_t now = rk_clock_mono_ns();
        if (now - s->roll_warned_ns > 60ull * 1000000000) {
            rk_warn("storage", "cannot start a new segment in %s: %s; appending to the current one",
                    s->dir, rk_strerror(rc));
            s->roll_warned_ns = now;
        }
        return rc;
    }
    s->segs[old].state = SEG_SEALED;
    return 0;
}

/* ---- index jobs ---- */

static int index_job_start(rk_storage *s)
{
    for (uint32_t i = 0; i < s->nsegs; i++) {
        if (s->segs[i].state != SEG_SEALED)
            continue;
        char path[4096];
        rk_seg_path(path, sizeof(path), s->dir, s->segs[i].id, "rkh");
        int rc = rk_index_file_begin(&s->ij.w, path);
        if (rc < 0)
            return rc;
        s->ij.on = true;
        s->ij.seg = i;
        s->ij.cursor = 0;
        s->ij.count = 0;
        return 1;
    }
    return 0;
}

static int index_job_finish(rk_storage *s)
{
    struct seg *g = &s->segs[s->ij.seg];
    /* Invariant 4: whatever superseded the records this index file omits
     * must be durable before the index file is. */
    int rc = rk_storage_datasync(s);
    struct rk_index_file_hdr h = {
        .magic = RK_INDEX_FILE_MAGIC,
        .format = 1,
        .seg_id = g->id,
        .count = s->ij.count,
        .seg_end = g->end,
        .rec_bytes = g->rec_bytes,
        .raw_bytes = g->raw_bytes,
        .nblocks = g->nblocks,
    };
    if (rc == 0)
        rc = rk_index_file_finish(&s->ij.w, &h, s->dir);
    else
        rk_index_file_abort(&s->ij.w);
    s->ij.on = false;
    if (rc < 0)
        return rc;
    g->state = SEG_INDEXED;
    s->st.index_files_written++;
    return 0;
}

/* Add the next batch of the segment's current entries to its index file. */
static int index_job_step(rk_storage *s)
{
    struct index_job *j = &s->ij;
    uint32_t stop = j->cursor + INDEX_STEP_ENTRIES;
    for (; j->cursor < s->ix.high && j->cursor < stop; j->cursor++) {
        const struct rk_ix_entry *e = rk_index_entry(&s->ix, j->cursor);
        if (!e->key || e->seg != j->seg)
            continue;
        struct rk_index_file_ent ie = {
            .version = e->version,
            .expiry_ms = (uint64_t)e->expiry_s * 1000,
            .block = e->block,
            .off = e->off,
            .len = e->len,
            .klen = e->klen,
            .partition = e->partition,
            .flags = e->flags,
        };
        int rc = rk_index_file_add(&j->w, &ie, e->key);
        if (rc == 0)
            rc = rk_index_file_flush(&j->w, false);
        if (rc < 0) {
            rk_index_file_abort(&j->w);
            j->on = false;
            return rc;
        }
        j->count++;
    }
    if (j->cursor < s->ix.high)
        return 1;
    return index_job_finish(s);
}

int rk_storage_index_flush(rk_storage *s)
{
    for (;;) {
        if (!s->ij.on) {
            int rc = index_job_start(s);
            if (rc <= 0)
                return rc;
        }
        int rc = index_job_step(s);
        if (rc < 0)
            return rc;
    }
}

int rk_storage_step(rk_storage *s)
{
    if (s->nundo > 0)
        return 1; /* the index holds uncommitted changes: commit first */
    if (!s->ij.on) {
        int rc = index_job_start(s);
        if (rc < 0)
            return rc;
    }
    if (s->ij.on) {
        int rc = index_job_step(s);
        return rc < 0 ? rc : 1;
    }
    return rk_merge_step(s);
}

/* ---- iteration, stats ---- */

void rk_storage_iter_init(struct rk_storage_iter *it, int32_t partition, bool values)
{
    it->next = 0;
    it->started = false;
    it->partition = partition;
    it->values = values;
    it->at_ms = 0;
}

void rk_storage_iter_init_at(struct rk_storage_iter *it, int32_t partition, bool values,
                             uint64_t at_ms)
{
    rk_storage_iter_init(it, partition, values);
    it->at_ms = at_ms;
}

/* The iteration's next live entry, or NULL at its end. A partition walks
 * its list; an id found off that list (removed, perhaps reused, since it
 * was read as the next one) ends it rather than wandering elsewhere. */
static const struct rk_ix_entry *iter_step(rk_storage *s, struct rk_storage_iter *it)
{
    if (it->partition < 0) {
        while (it->next < s->ix.high) {
            const struct rk_ix_entry *e = rk_index_entry(&s->ix, it->next++);
            if (e->key)
                return e;
        }
        return NULL;
    }
    if (!it->started) {
        it->next = rk_index_first(&s->ix, (uint16_t)it->partition);
        it->started = true;
    }
    if (it->next == RK_IX_NONE || it->next >= s->ix.high)
        return NULL;
    const struct rk_ix_entry *e = rk_index_entry(&s->ix, it->next);
    if (!e->key || e->partition != (uint32_t)it->partition) {
        it->next = RK_IX_NONE;
        return NULL;
    }
    it->next = rk_index_next(&s->ix, it->next);
    return e;
}

int rk_storage_iter_next(rk_storage *s, struct rk_storage_iter *it, struct rk_record *out)
{
    uint64_t now = it->at_ms ? it->at_ms : rk_storage_now_ms(s);
    const struct rk_ix_entry *e;
    while ((e = iter_step(s, it)) != NULL) {
        if (!(e->flags & RK_REC_TOMBSTONE) && expired(e->expiry_s, now))
            continue;
        int rc = entry_record(s, e, it->values, out);
        return rc < 0 ? rc : 1;
    }
    return 0;
}

int64_t rk_storage_unreadable(rk_storage *s, uint16_t partition, rk_storage_visit_fn fn, void *arg)
{
    uint64_t now = rk_storage_now_ms(s);
    int64_t n = 0;
    for (uint32_t id = 0; id < s->ix.high; id++) {
        const struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
        struct rk_record r;
        if (!e->key || e->partition != partition || (e->flags & RK_REC_TOMBSTONE) ||
            expired(e->expiry_s, now) || !s->segs[e->seg].has_bad_blocks)
            continue;
        if (!bad_known(s, e->seg, e->block)) { /* damage near it: read it to know */
            int rc = entry_record(s, e, true, &r);
            if (rc == 0)
                continue;
            if (rc != RK_ECORRUPT)
                return rc;
        }
        entry_record(s, e, false, &r);
        fn(arg, &r);
        n++;
    }
    return n;
}

void rk_storage_stats(const rk_storage *s, struct rk_storage_stats *st)
{
    *st = s->st;
    st->keys = s->ix.used - s->ntomb;
    st->tombstones = s->ntomb;
    st->index_bytes = rk_index_bytes(&s->ix);
    st->cache_bytes = s->cache.bytes;
    st->cache_hits = s->cache.hits;
    st->cache_misses = s->cache.misses;
    for (uint32_t i = 0; i < s->nsegs; i++) {
        const struct seg *g = &s->segs[i];
        if (g->state == SEG_FREE || g->state == SEG_OUTPUT)
            continue;
        st->segments++;
        st->disk_bytes += g->end;
        st->raw_bytes +=
            g->raw_bytes + sizeof(struct rk_seg_hdr) + g->nblocks * sizeof(struct rk_blk_hdr);
        st->live_bytes += g->live_bytes + g->tomb_bytes;
        st->dead_bytes += g->rec_bytes - g->live_bytes - g->tomb_bytes;
        st->tombstones_held += g->purge_held;
    }
}

void rk_storage_set_observer(rk_storage *s, rk_storage_observer_fn fn, void *arg)
{
    s->obs = fn;
    s->obs_arg = fn ? arg : NULL;
}

const char *rk_storage_write_error(const rk_storage *s)
{
    return s->werr_msg;
}

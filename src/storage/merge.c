/* Merge: rewrite the current records of sealed segments into new segments
 * of full 16 KiB lz4 blocks, dropping superseded records, and tombstones
 * and expired records past the grace period. It serves two purposes with
 * one mechanism: reclaiming dead space, and repacking segments written in
 * small group-commit batches (tiny blocks compress poorly).
 *
 *   plan() ─► COPY (≤ 1 MiB of input per step) ─► SYNC (outputs fsynced,
 *   renamed, dir fsynced) ─► APPLY (≤ 64k index updates per step) ─► UNLINK
 *
 * Invariants:
 * 1. Inputs stay untouched and readable until every index entry that
 *    pointed into them has been moved; outputs are complete, synced and
 *    renamed before that. A crash at any point leaves either the inputs, or
 *    the inputs and the outputs (duplicate records of equal version, which
 *    recovery treats as one).
 * 2. A record is moved only if the index still points at that exact place
 *    (segment slot, block, offset): puts during a merge always win.
 * 3. A tombstone (or expired record) may be dropped only when no segment
 *    outside the merge could still hold an older record of its key, i.e.
 *    every segment of lower or equal order is an input; otherwise dropping
 *    it would resurrect that older record at the next open. Inputs are
 *    unlinked oldest first for the same reason.
 * 4. Merge never chooses between records of a key: it copies the one the
 *    index points at, inputs in order and blocks in file order, and outputs
 *    take the inputs' largest order. A record that supersedes a copy (a
 *    newer version, or an equal version of higher rank put during the
 *    merge: storage.c invariant 1) lives in a segment of higher order, so
 *    recovery, which meets segments by order and lets the later of two
 *    equal versions win (recovery.c), keeps it rather than the copy.
 * 5. With a purge watermark (opts.purge_before_ms), a tombstone past the
 *    grace period is dropped only when written before its partition's
 *    watermark. A due segment is first looked at by a purge check, an
 *    index walk in bounded steps (no I/O): only if it holds something
 *    droppable now is it merged; otherwise its next_drop_ms moves to the
 *    next grace expiry in it or, for a tombstone the watermark holds, to
 *    RK_STORAGE_PURGE_RECHECK_MS later. So a tombstone held for days
 *    (a replica down) costs one index walk per recheck, never a rewrite of
 *    every older segment, and is never forgotten.
 *
 * Expired records do not wait for the watermark: anti-entropy never moves
 * them (they are not in the hash trees, and exchanges skip them both
 * ways), so no later exchange could carry one to a replica that lacks it;
 * holding it back would protect nothing. Before it expires it moves like
 * any record, and the grace period counts from its expiry.
 */
#include "storage/storage_int.h"
#include "util/err.h"
#include "util/grow.h"
#include "util/fsutil.h"
#include "util/io.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STEP_INPUT_BYTES (1u << 20) /* bounds one step to ~1 ms of I/O and lz4 */
#define STEP_APPLY       65536
#define STEP_CHECK       65536 /* index entries a purge check step examines: ~1 ms */
#define DROP             UINT32_MAX
#define WM_BITS          10 /* 1024 watermarks remembered per step (hashed by partition) */

enum phase { COPY, SYNC, APPLY, UNLINK };

struct reloc {
    uint32_t id;
    uint32_t old_seg, old_block, old_off;
    uint32_t new_seg, new_block, new_off; /* new_seg == DROP: remove the entry */
};

/* Watermarks asked during one step: the callback runs at most once per
 * partition per step, however many of its tombstones the step meets. */
struct wm_cache {
    uint32_t tag[1u << WM_BITS]; /* partition + 1; 0 = empty */
    uint64_t val[1u << WM_BITS];
};

struct rk_merge {
    enum phase phase;
    uint32_t *in; /* input slots, ascending order */
    uint32_t nin, cur;
    bool reading;
    struct rk_blkreader rd;
    uint64_t min_outside_order; /* tombstones of lower order may go */
    uint64_t out_order;
    uint32_t *out;
    uint32_t nout;
    size_t cout;
    uint8_t *blk, *sealbuf;
    uint32_t blen, bcount;
    size_t bcap;
    struct reloc *rel;
    size_t nrel, crel, apply_pos;
    uint64_t bytes_in, bytes_out;
    struct wm_cache wm;
};

static uint64_t watermark(const rk_storage *s, struct wm_cache *c, uint16_t partition)
{
    /* Fibonacci hashing: a worker's partitions (every nworkers-th) spread
     * over the slots instead of landing on a few. */
    unsigned i = (uint32_t)(partition * 2654435761u) >> (32 - WM_BITS);
    if (c->tag[i] != (uint32_t)partition + 1) {
        c->tag[i] = (uint32_t)partition + 1;
        c->val[i] = s->o.purge_before_ms(s->o.purge_arg, partition);
    }
    return c->val[i];
}

/* Whether a record of an entry that stopped being a value at death_ms
 * (rk_storage_death_ms) may go at now, the grace period past: expired
 * records may (see the top), a tombstone once written before its
 * partition's watermark. */
static bool purge_allowed(const rk_storage *s, struct wm_cache *c, bool tombstone,
                          uint16_t partition, uint64_t death_ms)
{
    return !tombstone || !s->o.purge_before_ms || death_ms < watermark(s, c, partition);
}

/* Whether something in g may be dropped at now: its grace period passed
 * and, with a watermark, a purge check found something droppable. */
static bool drop_due(const rk_storage *s, const struct seg *g, uint64_t now)
{
    return now >= g->next_drop_ms && (!s->o.purge_before_ms || g->purge_ok);
}

/* Whether a segment is worth rewriting. Tombstones count only below
 * tomb_limit: a segment that merges refuse to read (corrupt) and that is
 * older than a tombstone would block dropping it forever, and re-merging
 * the tombstone's segment each step would spin. */
static bool wanted(const rk_storage *s, const struct seg *g, uint64_t now, uint64_t tomb_limit)
{
    if (g->state != SEG_INDEXED || g->no_merge || g->rec_bytes == 0)
        return false;
    uint64_t dead = g->rec_bytes - g->live_bytes - g->tomb_bytes;
    if ((double)dead >= s->o.merge_dead_ratio * (double)g->rec_bytes)
        return true;
    if (s->o.compression && s->o.repack_below && g->nblocks &&
        g->raw_bytes / g->nblocks < s->o.repack_below && !(g->flags & RK_SEG_F_MERGED))
        return true;
    return drop_due(s, g, now) && g->order < tomb_limit;
}

/* The lowest order of a segment merges refuse to read: tombstones above
 * it cannot go (invariant 3). UINT64_MAX when there is none. */
static uint64_t tomb_limit(const rk_storage *s)
{
    uint64_t limit = UINT64_MAX;
    for (uint32_t i = 0; i < s->nsegs; i++)
        if (s->segs[i].state != SEG_FREE && s->segs[i].no_merge && s->segs[i].order < limit)
            limit = s->segs[i].order;
    return limit;
}

/* ---- purge checks (invariant 5) ---- */

/* Start a check of every segment whose grace time came and that no check
 * cleared yet. false when there is none. */
static bool check_start(rk_storage *s)
{
    uint64_t now = rk_storage_now_ms(s), limit = tomb_limit(s);
    bool any = false;
    for (uint32_t i = 0; i < s->nsegs; i++) {
        struct seg *g = &s->segs[i];
        if (g->state != SEG_INDEXED || g->no_merge || g->order >= limit || now < g->next_drop_ms ||
            g->purge_ok)
            continue;
        g->purge_checking = any = true;
        g->purge_next = UINT64_MAX;
        g->purge_held = 0;
    }
    s->pc = (struct purge_check){.on = any, .cursor = 0, .now_ms = now};
    return any;
}

/* One entry of a segment under check: droppable now, held back by the
 * watermark (counted; looked at again later), or due later. */
static void check_entry(rk_storage *s, struct wm_cache *c, const struct rk_ix_entry *e)
{
    struct seg *g = &s->segs[e->seg];
    bool tomb = (e->flags & RK_REC_TOMBSTONE) != 0;
    if (!g->purge_checking || (!tomb && !e->expiry_s))
        return;
    uint64_t death = rk_storage_death_ms(e), due = death + s->o.tombstone_grace_ms, next = due;
    if (due <= s->pc.now_ms) {
        if (purge_allowed(s, c, tomb, e->partition, death)) {
            g->purge_ok = true;
            return;
        }
        g->purge_held++;
        next = s->pc.now_ms + RK_STORAGE_PURGE_RECHECK_MS;
    }
    if (next < g->purge_next)
        g->purge_next = next;
}

static void check_finish(rk_storage *s)
{
    for (uint32_t i = 0; i < s->nsegs; i++) {
        struct seg *g = &s->segs[i];
        if (!g->purge_checking)
            continue;
        g->purge_checking = false;
        if (!g->purge_ok) /* nothing to drop yet: not merged for it until then */
            g->next_drop_ms = g->purge_next;
    }
    s->pc.on = false;
}

/* One bounded step of the purge check: 1 while it runs, 0 when no segment
 * needs one (nothing allocated: close may come at any point). */
static int check_step(rk_storage *s)
{
    struct purge_check *pc = &s->pc;
    struct wm_cache c = {0};
    if (!pc->on && !check_start(s))
        return 0;
    uint32_t stop = pc->cursor + STEP_CHECK;
    for (; pc->cursor < s->ix.high && pc->cursor < stop; pc->cursor++) {
        const struct rk_ix_entry *e = rk_index_entry(&s->ix, pc->cursor);
        if (e->key)
            check_entry(s, &c, e);
    }
    if (pc->cursor >= s->ix.high)
        check_finish(s);
    return 1;
}

static int add_input(struct rk_merge *m, uint32_t slot)
{
    uint32_t *n = realloc(m->in, (m->nin + 1) * sizeof(uint32_t));
    if (!n)
        return -ENOMEM;
    m->in = n;
    m->in[m->nin++] = slot;
    return 0;
}

static int cmp_order(const void *a, const void *b, void *arg)
{
    const struct seg *segs = arg;
    uint64_t x = segs[*(const uint32_t *)a].order, y = segs[*(const uint32_t *)b].order;
    return x < y ? -1 : x > y;
}

/* Choose inputs: the wanted segments, in order, up to about four segments
 * of input; when tombstones or expired records are due, every older
 * segment too (invariant 3). */
static int plan(rk_storage *s, struct rk_merge *m)
{
    uint64_t now = rk_storage_now_ms(s), budget = 4 * s->o.segment_size, total = 0;
    uint64_t tomb_below = 0, limit = tomb_limit(s); /* tomb_below: merge every order below it */
    for (uint32_t i = 0; i < s->nsegs; i++) {
        const struct seg *g = &s->segs[i];
        if (wanted(s, g, now, limit) && drop_due(s, g, now) && g->order < limit &&
            g->order >= tomb_below)
            tomb_below = g->order + 1;
    }
    for (uint32_t i = 0; i < s->nsegs; i++) {
        const struct seg *g = &s->segs[i];
        bool older = g->state == SEG_INDEXED && !g->no_merge && g->order < tomb_below;
        if (!older && (!wanted(s, g, now, limit) || total >= budget))
            continue;
        int rc = add_input(m, i);
        if (rc < 0)
            return rc;
        total += g->live_bytes + g->tomb_bytes;
    }
    if (m->nin > 1)
        qsort_r(m->in, m->nin, sizeof(uint32_t), cmp_order, s->segs);
    m->min_outside_order = UINT64_MAX;
    for (uint32_t i = 0; i < s->nsegs; i++) {
        const struct seg *g = &s->segs[i];
        bool input = false;
        for (uint32_t j = 0; j < m->nin; j++)
            input |= m->in[j] == i;
        if (g->state != SEG_FREE && !input && g->order < m->min_outside_order)
            m->min_outside_order = g->order;
        if (input && g->order > m->out_order)
            m->out_order = g->order;
    }
    return (int)m->nin;
}

static void merge_free(rk_storage *s)
{
    struct rk_merge *m = s->merge;
    if (m->reading)
        rk_blkreader_fini(&m->rd);
    free(m->in);
    free(m->out);
    free(m->blk);
    free(m->sealbuf);
    free(m->rel);
    free(m);
    s->merge = NULL;
}

void rk_merge_abort(rk_storage *s)
{
    struct rk_merge *m = s->merge;
    if (!m)
        return;
    if (m->phase <= SYNC) { /* outputs not referenced yet: remove them */
        for (uint32_t i = 0; i < m->nout; i++)
            rk_storage_seg_drop(s, m->out[i]);
    } else {
        /* APPLY started: the index points into both; finish it now. */
        while (rk_merge_step(s) > 0 && s->merge)
            ;
    }
    if (s->merge)
        merge_free(s);
}

static int new_output(rk_storage *s, struct rk_merge *m)
{
    uint32_t slot;
    int fd;
    int rc = rk_storage_seg_slot(s, &slot);
    if (rc == 0 && rk_grow(&m->out, &m->cout, (size_t)m->nout + 1, sizeof(*m->out), 4, 0) < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = rk_seg_create(s->dir, s->next_id, m->out_order, RK_SEG_F_MERGED, 0, true, &fd);
    if (rc < 0)
        return rc;
    struct seg *g = &s->segs[slot];
    g->id = s->next_id++;
    g->order = m->out_order;
    g->flags = RK_SEG_F_MERGED;
    g->fd = fd;
    g->state = SEG_OUTPUT;
    g->tmp_name = true;
    g->end = sizeof(struct rk_seg_hdr);
    m->out[m->nout++] = slot;
    return 0;
}

/* Write the open output block; roll to a new output past segment_size. */
static int flush_block(rk_storage *s, struct rk_merge *m)
{
    if (m->bcount == 0)
        return 0;
    uint8_t *nb = realloc(m->sealbuf, rk_blk_bound(m->blen));
    if (!nb)
        return -ENOMEM;
    m->sealbuf = nb;
    struct seg *g = &s->segs[m->out[m->nout - 1]];
    uint32_t n =
        rk_blk_seal(m->sealbuf, m->blk, m->blen, m->bcount, RK_BLK_COMMIT, s->o.compression);
    int rc = rk_io_pwrite(g->fd, m->sealbuf, n, g->end);
    if (rc < 0)
        return rc == -ENOSPC ? RK_ENOSPACE : rc;
    g->end += n;
    g->raw_bytes += m->blen;
    g->nblocks++;
    m->bytes_out += n;
    m->blen = m->bcount = 0;
    if (g->end >= s->o.segment_size)
        return new_output(s, m);
    return 0;
}

static int add_reloc(struct rk_merge *m, const struct reloc *r)
{
    if (rk_grow(&m->rel, &m->crel, m->nrel + 1, sizeof(*m->rel), 4096, 0) < 0)
        return -ENOMEM;
    m->rel[m->nrel++] = *r;
    return 0;
}

static bool droppable(const rk_storage *s, struct rk_merge *m, const struct seg *in,
                      const struct rk_rec_hdr *h, uint16_t partition, uint64_t now)
{
    if (in->order >= m->min_outside_order)
        return false;
    uint64_t death;
    bool tomb = (h->flags & RK_REC_TOMBSTONE) != 0;
    if (tomb)
        death = h->version >> 16;
    else if (h->expiry_ms)
        death = h->expiry_ms;
    else
        return false;
    return death + s->o.tombstone_grace_ms <= now &&
           purge_allowed(s, &m->wm, tomb, partition, death);
}

/* Copy (or drop) one record if it is still the current one for its key. */
static int copy_record(rk_storage *s, struct rk_merge *m, uint32_t in, uint32_t block, uint32_t off,
                       const struct rk_rec_hdr *h, const uint8_t *rec, const uint8_t *key,
                       uint64_t now)
{
    uint32_t id = rk_index_find(&s->ix, key, h->klen, rk_index_hash(key, h->klen));
    if (id == RK_IX_NONE)
        return 0;
    const struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
    if (e->seg != in || e->block != block || e->off != off)
        return 0; /* superseded: the bytes are dead */
    struct reloc r = {.id = id, .old_seg = in, .old_block = block, .old_off = off};
    if (droppable(s, m, &s->segs[in], h, e->partition, now)) {
        r.new_seg = DROP;
        return add_reloc(m, &r);
    }
    if (m->blen > 0 && m->blen + e->len > RK_BLOCK_TARGET) {
        int rc = flush_block(s, m);
        if (rc < 0)
            return rc;
    }
    if (rk_grow(&m->blk, &m->bcap, (size_t)m->blen + e->len, 1, RK_BLOCK_TARGET, 0) < 0)
        return -ENOMEM;
    memcpy(m->blk + m->blen, rec, e->len);
    struct seg *out = &s->segs[m->out[m->nout - 1]];
    r.new_seg = m->out[m->nout - 1];
    r.new_block = (uint32_t)out->end;
    r.new_off = m->blen;
    out->rec_bytes += e->len;
    m->blen += e->len;
    m->bcount++;
    return add_reloc(m, &r);
}

static int copy_block(rk_storage *s, struct rk_merge *m, uint32_t in, uint32_t block,
                      const struct rk_blk_hdr *h, const uint8_t *raw, uint64_t now)
{
    uint32_t off = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        struct rk_rec_hdr rh;
        const uint8_t *k, *v;
        int n = rk_rec_decode(raw, h->raw_len, off, &rh, &k, &v);
        if (n < 0)
            return n;
        int rc = copy_record(s, m, in, block, off, &rh, raw + off, k, now);
        if (rc < 0)
            return rc;
        off += (uint32_t)n;
    }
    return 0;
}

static int copy_step(rk_storage *s, struct rk_merge *m)
{
    uint64_t now = rk_storage_now_ms(s), done = 0;
    memset(&m->wm, 0, sizeof(m->wm)); /* watermarks move: ask afresh each step */
    while (m->cur < m->nin && done < STEP_INPUT_BYTES) {
        uint32_t in = m->in[m->cur];
        struct seg *g = &s->segs[in];
        if (!m->reading) {
            int rc = rk_blkreader_init(&m->rd, g->fd, sizeof(struct rk_seg_hdr), g->end);
            if (rc < 0)
                return rc;
            m->reading = true;
        }
        struct rk_blk_hdr h;
        const uint8_t *raw;
        uint32_t block = (uint32_t)m->rd.off;
        int n = rk_blkreader_next(&m->rd, &h, &raw);
        if (n < 0) {
            if (n == RK_ECORRUPT) {
                rk_storage_damage_found(s, in, block); /* its records' partitions */
                g->no_merge = true;
                rk_error("storage",
                         "merge: segment %016llx is corrupt at offset %u; "
                         "it is left as it is (restart with repair to move it aside)",
                         (unsigned long long)g->id, block);
            }
            return n;
        }
        if (n == 0) {
            rk_blkreader_fini(&m->rd);
            m->reading = false;
            m->cur++;
            continue;
        }
        int rc = copy_block(s, m, in, block, &h, raw, now);
        if (rc < 0)
            return rc;
        done += sizeof(h) + h.stored_len;
        m->bytes_in += sizeof(h) + h.stored_len;
    }
    if (m->cur < m->nin)
        return 1;
    int rc = flush_block(s, m);
    if (rc == 0)
        m->phase = SYNC;
    return rc < 0 ? rc : 1;
}

/* Outputs durable under their final names before the index points there. */
static int sync_step(rk_storage *s, struct rk_merge *m)
{
    for (uint32_t i = 0; i < m->nout; i++) {
        struct seg *g = &s->segs[m->out[i]];
        if (g->end == sizeof(struct rk_seg_hdr)) { /* nothing was live: no file */
            rk_storage_seg_drop(s, m->out[i]);
            m->out[i--] = m->out[--m->nout];
            continue;
        }
        char from[RK_PATH_MAX], to[RK_PATH_MAX];
        int rc = rk_storage_seal_file(s, m->out[i]);
        rk_seg_path(from, sizeof(from), s->dir, g->id, "rks.tmp");
        rk_seg_path(to, sizeof(to), s->dir, g->id, "rks");
        if (rc == 0 && rename(from, to) < 0)
            rc = -errno;
        if (rc < 0)
            return rc;
        g->tmp_name = false;
        g->next_drop_ms = UINT64_MAX;
    }
    int rc = rk_fs_sync_dir(s->dir);
    if (rc == 0)
        m->phase = APPLY;
    return rc < 0 ? rc : 1;
}

static void apply_one(rk_storage *s, const struct reloc *r)
{
    struct rk_ix_entry *e = rk_index_entry(&s->ix, r->id);
    if (!e->key || e->seg != r->old_seg || e->block != r->old_block || e->off != r->old_off)
        return; /* replaced by a put since the copy (invariant 2) */
    rk_storage_account(s, e, -1);
    if (r->new_seg == DROP) {
        if (e->flags & RK_REC_TOMBSTONE)
            s->st.tombstones_purged++;
        else
            s->st.expired_purged++;
        rk_storage_notify(s, e, NULL); /* the only change merge makes to what the index says */
        rk_index_remove(&s->ix, r->id);
        return;
    }
    e->seg = r->new_seg;
    e->block = r->new_block;
    e->off = r->new_off;
    rk_storage_account(s, e, +1);
}

static int apply_step(rk_storage *s, struct rk_merge *m)
{
    size_t stop = m->apply_pos + STEP_APPLY;
    for (; m->apply_pos < m->nrel && m->apply_pos < stop; m->apply_pos++)
        apply_one(s, &m->rel[m->apply_pos]);
    if (m->apply_pos == m->nrel)
        m->phase = UNLINK;
    return 1;
}

static int unlink_step(rk_storage *s, struct rk_merge *m)
{
    for (uint32_t i = 0; i < m->nin; i++) /* ascending order: invariant 3 */
        rk_storage_seg_drop(s, m->in[i]);
    /* Only now may index jobs read the outputs' entries from the index. */
    for (uint32_t i = 0; i < m->nout; i++)
        s->segs[m->out[i]].state = SEG_SEALED;
    int rc = rk_fs_sync_dir(s->dir);
    s->st.merges++;
    s->st.merged_bytes_in += m->bytes_in;
    s->st.merged_bytes_out += m->bytes_out;
    rk_info("storage", "merged %u segments into %u: %llu bytes in, %llu out", m->nin, m->nout,
            (unsigned long long)m->bytes_in, (unsigned long long)m->bytes_out);
    merge_free(s);
    return rc < 0 ? rc : 1;
}

int rk_merge_step(rk_storage *s)
{
    if (s->werr)
        return 0;
    if (!s->merge && s->o.purge_before_ms) {
        int rc = check_step(s); /* before any plan: it decides what is due */
        if (rc != 0)
            return rc;
    }
    if (!s->merge) {
        struct rk_merge *m = calloc(1, sizeof(*m));
        if (!m)
            return -ENOMEM;
        s->merge = m;
        int rc = plan(s, m);
        if (rc > 0)
            rc = new_output(s, m) < 0 ? -1 : 1;
        if (rc <= 0) {
            merge_free(s);
            return rc;
        }
    }
    struct rk_merge *m = s->merge;
    int rc;
    switch (m->phase) {
    case COPY:
        rc = copy_step(s, m);
        break;
    case SYNC:
        rc = sync_step(s, m);
        break;
    case APPLY:
        rc = apply_step(s, m);
        break;
    default:
        rc = unlink_step(s, m);
        break;
    }
    if (rc < 0 && s->merge && s->merge->phase <= SYNC) {
        rk_warn("storage", "merge abandoned: %s", rk_strerror(rc));
        rk_merge_abort(s);
    }
    return rc;
}

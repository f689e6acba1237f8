/* Private state of the storage engine, shared by storage.c (open, read and
 * write paths, index jobs) and merge.c (background rewrite). Nothing outside
 * the engine includes this. */
#ifndef RK_STORAGE_INT_H
#define RK_STORAGE_INT_H

#include "storage/cache.h"
#include "storage/index.h"
#include "storage/segment.h"
#include "storage/storage.h"
#include "util/fsutil.h"

#include <stdatomic.h>

/* The longest name the engine gives a file in its dir, with the '/':
 * "/seg-<16 hex>.rks.corrupt.tmp" and the like (rk_storage_open refuses a
 * dir too long for it, so every path fits RK_PATH_MAX). */
#define RK_STORAGE_NAME_MAX 64

enum seg_state {
    SEG_FREE,    /* slot unused */
    SEG_ACTIVE,  /* receives appends */
    SEG_SEALED,  /* immutable, index file not yet written */
    SEG_INDEXED, /* immutable with an index file: may be merged */
    SEG_OUTPUT,  /* being written by merge, not referenced by the index yet */
};

struct seg {
    uint64_t id, order;
    uint32_t flags; /* RK_SEG_F_* */
    uint8_t state;
    bool no_merge;       /* a merge found it corrupt: never read it again in bulk */
    bool tmp_name;       /* still named *.rks.tmp (merge output before its rename) */
    bool has_bad_blocks; /* a read found a bad block in it (logged once, not per read) */
    int fd;
    uint64_t end;        /* end of data (next append offset when active) */
    uint64_t rec_bytes;  /* raw bytes of all records in it */
    uint64_t live_bytes; /* raw bytes of current, non-tombstone records */
    uint64_t tomb_bytes; /* raw bytes of current tombstones */
    uint64_t raw_bytes;  /* decompressed payload bytes of its blocks */
    uint64_t nblocks;
    uint64_t next_drop_ms; /* earliest time a merge could drop a tombstone in it
                              (or look again at one the watermark held back) */
    /* The purge check (merge.c; only with opts.purge_before_ms): */
    bool purge_checking; /* due, being looked at by the check under way */
    bool purge_ok;       /* the last check found something merge may drop */
    uint64_t purge_next; /* check under way: when to look next */
    uint64_t purge_held; /* tombstones held back by the watermark at the last check */
};

struct undo {
    uint32_t id;
    bool created;
    struct rk_ix_entry old;
};

struct index_job {
    bool on;
    uint32_t seg;
    uint32_t cursor; /* next index entry id to examine */
    uint64_t count;
    struct rk_index_file_writer w;
};

/* A walk over the index deciding whether due segments hold anything a
 * merge may drop now (merge.c, purge checks). */
struct purge_check {
    bool on;
    uint32_t cursor; /* next index entry id to examine */
    uint64_t now_ms; /* the one time every entry is judged at */
};

struct rk_merge;

/* A block a read found damaged (rk_storage_damage_found). */
struct bad_block {
    uint64_t seg_id; /* ids are never reused, slots are */
    uint32_t block;
};

struct rk_storage {
    char *dir;
    int lock_fd;
    struct rk_storage_opts o;
    struct rk_index ix;
    struct rk_cache cache;
    uint64_t ntomb;

    struct seg *segs;
    uint32_t nsegs; /* slots in use or free below this */
    uint32_t active;
    uint64_t next_id, next_order;

    /* The batch being staged (group commit). */
    uint8_t *wbuf; /* sealed blocks, to be written at segs[active].end */
    size_t wlen, wcap;
    uint8_t *blk; /* the open block's raw payload */
    uint32_t blen, bcap, bcount;
    uint32_t *closed; /* file offsets of blocks sealed in this batch */
    uint32_t nclosed, cclosed;
    struct undo *undo;
    uint32_t nundo, cundo;
    uint64_t batch_rec;

    bool dirty; /* written but not fdatasynced */
    uint64_t dirty_since_ns;
    uint64_t unsynced_puts;
    uint64_t roll_warned_ns;
    int werr; /* nonzero: writes refused */
    char werr_msg[256];

    struct index_job ij;
    struct purge_check pc;
    struct rk_merge *merge;
    struct rk_storage_stats st;

    /* Keys (not tombstones) and their record bytes per partition, kept by
     * rk_storage_account; RK_STORAGE_PARTITIONS_MAX entries (1 MiB of
     * address space, touched only for partitions in use). Written by the
     * owner only, read by any thread (rk_storage_partition_size). */
    struct rk_storage_psize *psize;

    rk_storage_observer_fn obs; /* NULL: no observer (rk_storage_set_observer) */
    void *obs_arg;

    struct bad_block *bad; /* sorted by (seg_id, block); each reported once */
    size_t nbad, cbad;
};

struct rk_storage_psize {
    _Atomic uint64_t keys, bytes;
};

uint64_t rk_storage_now_ms(const rk_storage *s);

static inline struct rk_storage_entry rk_storage_entry_of(const struct rk_ix_entry *e)
{
    return (struct rk_storage_entry){.version = e->version,
                                     .expiry_ms = (uint64_t)e->expiry_s * 1000,
                                     .partition = e->partition,
                                     .tombstone = (e->flags & RK_REC_TOMBSTONE) != 0};
}

/* Tell the observer, if any, that a key's entry went from old to new
 * (either may be NULL, not both; the key is read from whichever is not).
 * Every index change after open goes through here: call it while both
 * entries (and the key) are still valid. */
static inline void rk_storage_notify(rk_storage *s, const struct rk_ix_entry *old,
                                     const struct rk_ix_entry *new_)
{
    if (!s->obs)
        return;
    struct rk_storage_entry o, n;
    const struct rk_ix_entry *k = new_ ? new_ : old;
    if (old)
        o = rk_storage_entry_of(old);
    if (new_)
        n = rk_storage_entry_of(new_);
    s->obs(s->obs_arg, k->key, k->klen, old ? &o : NULL, new_ ? &n : NULL);
}

/* A read of block `block` of segment slot seg failed its checksum (or a
 * record in it did not match the index): remember it and, the first time
 * only, log (once per segment) and report the partitions indexed there to
 * on_damage (storage.h). Any read path that meets damage calls this. */
void rk_storage_damage_found(rk_storage *s, uint32_t seg, uint32_t block);
/* When an entry stops being a value: a tombstone's write (its version's
 * wall ms), an expiring record's expiry; 0 for a record that never expires. */
static inline uint64_t rk_storage_death_ms(const struct rk_ix_entry *e)
{
    return (e->flags & RK_REC_TOMBSTONE) ? e->version >> 16 : (uint64_t)e->expiry_s * 1000;
}

/* Bytes a current entry counts toward its segment's live / tombstone totals. */
void rk_storage_account(rk_storage *s, const struct rk_ix_entry *e, int sign);

/* Allocate a segment slot (state SEG_FREE → caller sets it). -ENOMEM. */
int rk_storage_seg_slot(rk_storage *s, uint32_t *slot);

/* Close and unlink a segment and its index file, free its slot. */
void rk_storage_seg_drop(rk_storage *s, uint32_t slot);

/* Durability helpers shared with recovery.c. */
int rk_storage_datasync(rk_storage *s); /* fdatasync active if dirty; refuse writes on error */
int rk_storage_seal_file(rk_storage *s, uint32_t slot); /* truncate to end + fsync */
int rk_storage_new_active(rk_storage *s);               /* create the next active segment */
int rk_storage_index_flush(rk_storage *s);              /* write every pending index file now */
void rk_storage_batch_abort(rk_storage *s);             /* undo all staged puts */

/* Merge: one bounded step (1 = more to do, 0 = nothing to merge, <0 error),
 * and abandon a merge in progress (close): outputs removed, inputs kept. */
int rk_merge_step(rk_storage *s);
void rk_merge_abort(rk_storage *s);

#endif

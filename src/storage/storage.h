/* The per-worker storage engine: lz4-compressed log-structured segments with
 * an in-memory hash index, group commit, index files, crash recovery and
 * incremental merge. One rk_storage belongs to one thread: no call here is
 * thread-safe, and none blocks on anything but local disk I/O.
 *
 * Write path (group commit): rk_storage_put()/rk_storage_del() stage records
 * and update the index at once (later reads and puts in the same loop turn
 * see them); rk_storage_commit() appends every staged record with one write
 * and, under fsync "always", one fdatasync. Only after commit returns 0 may
 * the caller acknowledge those puts. If commit fails, every put staged since
 * the previous commit is undone.
 *
 * Background work (sealing index files, repacking and merging sealed
 * segments) advances only inside rk_storage_step(), one bounded step per
 * call, so the owner interleaves it with requests. */
#ifndef RK_STORAGE_H
#define RK_STORAGE_H

#include "util/fsync.h"
#include "util/histo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rk_storage rk_storage;

/* Hard limits of the on-disk format (the configured limits must be lower). */
#define RK_STORAGE_KEY_MAX        65535u      /* 16-bit key length field */
#define RK_STORAGE_VALUE_MAX      (64u << 20) /* one record must fit one block */
#define RK_STORAGE_PARTITIONS_MAX 65536u      /* 16-bit partition field */

/* ---- damage reports ----
 * Records this replica lost or cannot read, so its owner can have them
 * copied back from other replicas. Which partitions they belong to is what
 * the owner needs: the records themselves are gone or untrusted. */
enum rk_storage_damage_kind {
    RK_DAMAGE_QUARANTINED, /* open with repair moved a damaged segment aside:
                              its records are lost here */
    RK_DAMAGE_UNREADABLE,  /* a read found a block that fails its checksum
                              (or a record that does not match the index):
                              its records stay in the index, unreadable,
                              until a put at their version replaces them */
};

struct rk_storage_damage {
    enum rk_storage_damage_kind kind;
    uint64_t segment; /* id of the segment file (seg-<id>.rks) */
    uint64_t offset;  /* where the damage is (QUARANTINED: where reading first failed) */
    uint64_t records; /* records lost (QUARANTINED) or indexed in the block (UNREADABLE) */
    /* Bit p of partitions[p / 8] (RK_STORAGE_PARTITIONS_MAX bits) is set
     * for every partition with a record there: for QUARANTINED from the
     * segment's index file when it loads, else from the records scanned;
     * for UNREADABLE from the index entries pointing into the block. */
    const uint8_t *partitions;
    /* QUARANTINED without a loadable index file: the damaged blocks (and a
     * torn or unreadable rest) held records nobody can name, so records of
     * ANY partition may be lost; the bitmap names only those scanned. */
    bool all_partitions;
};

/* Called synchronously on the owner's thread: QUARANTINED during
 * rk_storage_open, once per segment moved aside; UNREADABLE during the
 * read that found the damage (a get, a put at an equal version, an
 * iteration with values, rk_storage_unreadable, a merge step), at most
 * once per block for the life of the rk_storage. d and its bitmap are
 * borrowed for the call. fn must not call into the store. */
typedef void (*rk_storage_damage_fn)(void *arg, const struct rk_storage_damage *d);

struct rk_storage_opts {
    uint64_t segment_size;       /* roll the active segment past this; default 64 MiB */
    enum rk_fsync fsync;         /* default RK_FSYNC_ALWAYS */
    uint64_t fsync_interval_ms;  /* RK_FSYNC_INTERVAL: max age of unsynced data; 10 */
    bool compression;            /* lz4 blocks; default true */
    uint32_t max_key_size;       /* default 1 KiB */
    uint32_t max_value_size;     /* default 1 MiB */
    uint64_t block_cache_size;   /* bytes of decompressed blocks kept; 32 MiB */
    double merge_dead_ratio;     /* merge a sealed segment past this dead share; 0.4 */
    uint32_t repack_below;       /* rewrite sealed segments whose mean block holds
                                    fewer raw bytes than this (small batches);
                                    0 = never; default 12 KiB */
    uint64_t tombstone_grace_ms; /* keep tombstones and expired records this
                                    long before merge may drop them; 1 day */
    bool repair;                 /* verify every segment at open; move corrupt
                                    ones aside instead of refusing to open */
    uint64_t (*now_ms)(void);    /* wall clock for expiry and grace; NULL = real */

    /* Read every block of every segment at open and check its checksum,
     * also of segments loaded through their index file (bit rot is found
     * at start, not by the first read of it): damage refuses to open unless
     * repair. Costs one read of the data. Default false. */
    bool verify;
    /* Damage reports (see above); NULL = none. damage_arg is passed to it. */
    rk_storage_damage_fn on_damage;
    void *damage_arg;
    /* The purge watermark of a partition (NULL = the grace period alone
     * decides): a tombstone past the grace period is dropped only if it was
     * written (its version's wall ms) strictly before purge_before_ms(
     * purge_arg, its partition); UINT64_MAX lets every one go, 0 none. The
     * owner answers "every other replica has seen what was written before
     * this" (the anti-entropy watermark); the answer should never decrease.
     * Expired records do not wait for it (merge.c says why).
     * Threads: called on the owner's thread, only inside rk_storage_step
     * (a merge's purge check and copy steps; an answer is reused for the
     * rest of its step), never during open or close; it must not call
     * into the store. A tombstone it holds back is looked at again
     * RK_STORAGE_PURGE_RECHECK_MS later, by walking the index, not by
     * rewriting segments. */
    uint64_t (*purge_before_ms)(void *arg, uint16_t partition);
    void *purge_arg;
};

/* How long a tombstone held back by purge_before_ms waits before merge
 * asks again (one in-memory index walk per look while any is held). */
#define RK_STORAGE_PURGE_RECHECK_MS 5000u

/* Fill o with the defaults above. */
void rk_storage_opts_default(struct rk_storage_opts *o);

/* A record as the engine sees it. As an output, key and val are borrowed:
 * valid until the next call on the same rk_storage. */
struct rk_record {
    const void *key;
    uint32_t klen;
    const void *val;
    uint32_t vlen;
    uint64_t version;   /* HLC: 48-bit wall ms << 16 | 16-bit logical */
    uint64_t expiry_ms; /* absolute wall ms; 0 = never */
    uint16_t partition;
    bool tombstone;
};

/* What open found; every field is filled on success and on failure. */
struct rk_storage_report {
    uint32_t segments;         /* segment files loaded */
    uint32_t from_index_files; /* ... of which through their index file */
    uint32_t scanned;          /* ... of which by reading their blocks */
    uint64_t torn_bytes;       /* cut from the tail of the newest segment */
    uint32_t quarantined;      /* segments moved aside (repair mode) */
    uint64_t records_lost;     /* records in quarantined segments */
    uint64_t keys;             /* live keys after open */
    char error[512];           /* one line when open failed */
};

/* Open (creating if needed) the store in dir, which it locks with flock.
 * Recovery loads index files, scans segments without a valid one, verifies
 * every block it reads (every block of every segment with opts->verify or
 * opts->repair), cuts a torn tail off the newest segment (logging file,
 * offset and bytes dropped) and refuses corruption anywhere else with
 * RK_ECORRUPT ("segment FILE: corrupt block at offset N ..." in rep->error)
 * unless opts->repair: then the damaged segment is renamed *.rks.corrupt
 * (its index file removed), logged with the records lost, counted in rep
 * and reported to opts->on_damage; a segment whose header is damaged is
 * moved aside the same way. A locked dir gives RK_ELOCKED and
 * "data dir X is locked by pid N" in rep->error. rep may be NULL. */
int rk_storage_open(rk_storage **out, const char *dir, const struct rk_storage_opts *opts,
                    struct rk_storage_report *rep);

/* Commit staged puts, sync, write pending index files, release the lock and
 * free s. Returns the first error met (s is freed regardless). */
int rk_storage_close(rk_storage *s);

/* Stage a put (r->tombstone = a delete). Checks limits before any I/O:
 * RK_ETOOLARGE. A record older than the stored one, or of the same version
 * and not of a strictly higher rk_record_rank (record.h: a delete wins a
 * tie, else a digest of value and expiry decides, alike on every replica),
 * is ignored: RK_ESTALE, with the stored version in *cur (cur may be NULL).
 * Only a version tie reads the stored record; if its block fails its
 * checksum (RK_ECORRUPT) the put replaces it (the way a damaged record is
 * repaired); another read error (-errno) is returned and nothing is staged.
 * RK_EREADONLY after an fsync error. r's memory is copied. */
int rk_storage_put(rk_storage *s, const struct rk_record *r, uint64_t *cur);

/* Stage a tombstone for key at version. Same results as rk_storage_put. */
int rk_storage_del(rk_storage *s, const void *key, uint32_t klen, uint16_t partition,
                   uint64_t version, uint64_t *cur);

/* Append everything staged since the last commit (one write) and sync it per
 * the fsync policy. 0: durable per policy, the puts may be acknowledged.
 * RK_ENOSPACE: disk full, the staged puts are undone, later commits retry.
 * RK_EREADONLY or -errno from fsync: the staged puts are undone and the store
 * refuses writes from now on (rk_storage_write_error says why). */
int rk_storage_commit(rk_storage *s);

/* Pipelined group commit (fsync "always" with the fdatasync off the loop):
 * rk_storage_commit_nosync() is rk_storage_commit() without the fdatasync
 * (same results; the staged puts are written, not yet durable, and must not
 * be acknowledged). rk_storage_sync_begin() then hands out a dup of the
 * active segment's fd (*fd = -1 when nothing is unsynced) and the number of
 * puts it covers; any thread may fdatasync it, after which the owner closes
 * it and reports the result and how long the fdatasync took (µs) with
 * rk_storage_sync_end(): 0 makes every put
 * written before sync_begin durable; an error makes the store refuse writes
 * (never retried as success). Puts written while a sync runs need the next
 * one. A failed sync does not undo the index: those puts may or may not be
 * on disk, and their callers must be told they failed. */
int rk_storage_commit_nosync(rk_storage *s);
int rk_storage_sync_begin(rk_storage *s, int *fd, uint64_t *puts);
void rk_storage_sync_end(rk_storage *s, uint64_t puts, int rc, uint64_t us);

/* Number of puts staged and not yet committed. */
uint32_t rk_storage_staged(const rk_storage *s);

#define RK_GET_TOMBSTONES 1u /* report tombstones instead of RK_ENOTFOUND */

/* Look key up. 0 with *out filled (borrowed); RK_ENOTFOUND when absent,
 * expired, or a tombstone (unless flags has RK_GET_TOMBSTONES: then 0 with
 * out->tombstone set); RK_ECORRUPT when its block fails its checksum (the
 * bad bytes are never returned). */
int rk_storage_get(rk_storage *s, const void *key, uint32_t klen, unsigned flags,
                   struct rk_record *out);

/* The records of partition whose stored copy cannot be read: for each
 * current record (tombstones and records expired now are skipped: their
 * index entry says all there is) in a block known to be damaged, or whose
 * read fails with RK_ECORRUPT, fn(arg, r) with r filled as by an iteration
 * without values (borrowed for the call; fn must not call into s). Only
 * segments where a read already found damage are read (through the block
 * cache; newly found damage is reported to on_damage): a block is checked
 * when damage is known to be near it, never the whole store. Cost: one pass
 * over the index, plus the reads of that partition's records in damaged
 * segments. Returns how many records were reported, or a read error other
 * than RK_ECORRUPT (the walk stops). */
typedef void (*rk_storage_visit_fn)(void *arg, const struct rk_record *r);
int64_t rk_storage_unreadable(rk_storage *s, uint16_t partition, rk_storage_visit_fn fn, void *arg);

/* fdatasync the active segment now if it has unsynced data (for the
 * "interval" policy's timer). 0 or an error as for commit. */
int rk_storage_sync(rk_storage *s);

/* Milliseconds until unsynced data is older than fsync_interval_ms (0 = a
 * sync is due now; UINT64_MAX = nothing unsynced or not "interval"). */
uint64_t rk_storage_sync_due_ms(const rk_storage *s);

/* One bounded step of background work: writing an index file chunk, or
 * copying up to about 1 MiB of a merge. Returns 1 if more work is pending,
 * 0 when idle, or a negative error (the step is abandoned, data intact). */
int rk_storage_step(rk_storage *s);

/* Iteration over the current record of every key (tombstones included,
 * expired records skipped), optionally one partition's. A record present for
 * the whole iteration is returned exactly once; records put or removed while
 * iterating may or may not be seen. Without values, expiry_ms is the index's
 * (rounded up to whole seconds, as the change observer reports it); with
 * values, the record's own. The struct is the caller's memory. */
struct rk_storage_iter {
    uint32_t next;     /* private: next index entry (id order, or the partition's list) */
    bool started;      /* private: next holds the partition list's position */
    int32_t partition; /* -1 = all */
    bool values;       /* read values too (costs a block read each) */
    uint64_t at_ms;    /* skip records expired at this wall time; 0 = the
                          engine's clock at each call */
};

void rk_storage_iter_init(struct rk_storage_iter *it, int32_t partition, bool values);
/* The same, judging expiry at the fixed time at_ms for the whole iteration
 * (a record with expiry_ms <= at_ms is skipped; tombstones never are), so a
 * caller that needs "every entry alive at at_ms" gets exactly that even if
 * the engine's clock moves on meanwhile. at_ms must not be 0. */
void rk_storage_iter_init_at(struct rk_storage_iter *it, int32_t partition, bool values,
                             uint64_t at_ms);
/* 1 with *out filled (borrowed), 0 at the end, or a negative error. One
 * partition costs its own entries (the index keeps a list per partition);
 * all partitions cost the whole index. Puts during the iteration are safe
 * (a key's entry stays where it is, a new key may or may not be seen); an
 * entry removed meanwhile (a merge dropping it, an aborted batch) may end a
 * partition's iteration early. */
int rk_storage_iter_next(rk_storage *s, struct rk_storage_iter *it, struct rk_record *out);

struct rk_storage_stats {
    uint64_t keys; /* index entries that are not tombstones */
    uint64_t tombstones;
    uint64_t segments;
    uint64_t disk_bytes;  /* bytes of segment data on disk (stored form) */
    uint64_t raw_bytes;   /* the same data uncompressed */
    uint64_t live_bytes;  /* raw bytes of current records */
    uint64_t dead_bytes;  /* raw bytes of superseded records */
    uint64_t index_bytes; /* memory held by the index (slots, entries, keys) */
    uint64_t cache_bytes;
    uint64_t puts, gets, stale_puts;
    uint64_t commits, fsyncs, synced_puts; /* synced_puts / fsyncs = group size */
    struct rk_histo fsync_us;              /* how long each successful fdatasync took */
    uint64_t cache_hits, cache_misses;
    uint64_t merges, merged_bytes_in, merged_bytes_out;
    uint64_t index_files_written; /* index files finished (.rkh) */
    uint64_t tombstones_purged;   /* tombstones merge dropped (past the grace period) */
    uint64_t expired_purged;      /* expired records merge dropped */
    uint64_t tombstones_held;     /* past the grace period but held back by
                                     purge_before_ms at the last look (a gauge) */
};

void rk_storage_stats(const rk_storage *s, struct rk_storage_stats *st);

/* Forget every record of partition: their index entries go (the
 * observer is told of each), so reads find nothing and the next merge
 * reclaims their space. Nothing durable says so: after the next open some
 * of the partition's records may be back, some at an older version (a
 * segment indexed at close is loaded through an index file that reflects
 * the drop, one indexed before it or scanned is not), so the owner drops
 * the partition again after every open while it does not want it (the
 * node's holdings say so). Only between batches (rk_storage_staged() ==
 * 0): RK_EBUSY otherwise. Returns the number of entries dropped. */
int64_t rk_storage_drop_partition(rk_storage *s, uint16_t partition);

/* Index entries of partition that are not tombstones (expired ones count
 * until a merge drops them, as in rk_storage_stats.keys) and the raw bytes
 * of their records (like rk_storage_stats.live_bytes, without tombstones). Kept as
 * running counters, so O(1). Any thread, unlike the rest of the API: the
 * counters are atomics the owner updates, so another thread reads a value
 * at most a few writes old; s must stay open meanwhile. */
void rk_storage_partition_size(const rk_storage *s, uint16_t partition, uint64_t *keys,
                               uint64_t *bytes);

/* ---- change observer ----
 * The owner may register one observer to follow the index: it is called on
 * EVERY change of an index entry after open, synchronously, on the owner's
 * thread: a put staged (insert or replace), a staged put undone by a failed
 * commit (the change reversed), a tombstone or expired record dropped by
 * merge. Moves that keep what an entry says (merge relocating a record)
 * are not reported. Recovery inside rk_storage_open runs before any
 * observer can be set: the owner builds its view from iteration after open.
 * old is the entry replaced or removed (NULL: the key was absent), new the
 * entry now current (NULL: removed); key and both entries are borrowed for
 * the call. The observer must not call into s. Costs one indirect call per
 * change when set, nothing when not. */
struct rk_storage_entry {
    uint64_t version;
    uint64_t expiry_ms; /* as the index keeps it: rounded up to whole seconds; 0 = never */
    uint16_t partition;
    bool tombstone;
};

typedef void (*rk_storage_observer_fn)(void *arg, const void *key, uint32_t klen,
                                       const struct rk_storage_entry *old,
                                       const struct rk_storage_entry *new_);

/* Register fn(arg, ...) (NULL: none). Replaces any earlier observer. */
void rk_storage_set_observer(rk_storage *s, rk_storage_observer_fn fn, void *arg);

/* Why writes are refused (empty when they are not). */
const char *rk_storage_write_error(const rk_storage *s);

#endif

/* Hinted handoff: writes a coordinator could not place on a replica (down,
 * unreachable, timed out), kept for that replica until it is back.
 *
 * Each worker keeps its hints in its own storage engine instance
 * (data_dir/hints-<worker>), so they survive a restart of the holder:
 *   key     = target node id, NUL, the record's key
 *   value   = kind u8 (0 put, 1 delete), version u64, expiry_ms u64, value
 *   version = a fresh HLC version of this node (not the record's), so a
 *             newer hint for the same key and target always replaces an
 *             older one, and deleting a delivered hint always wins
 *   partition = 16 bits of XXH3(target): iterating one target's hints
 *             touches only its own index entries' partition
 * The hint store commits with fsync = "interval" (100 ms): a hint lost in
 * a machine crash within that window is a replica anti-entropy will
 * repair; hints never count toward W, so no acknowledged write depends on
 * one.
 *
 * Bounds per target: max_bytes of pending hints (past it a hint is
 * refused, logged and counted) and max_age (older hints are dropped at
 * delivery, counted). A dropped hint marks its key's partition for
 * anti-entropy instead (aemarks.h), in data_dir/hints-<worker>/ae-marks
 * beside the store (the engine ignores files that are not its own); the
 * first mark of a partition is logged.
 *
 * Threads: one hint store per worker, used on that worker's loop only.
 */
#ifndef RK_HINTS_H
#define RK_HINTS_H

#include "cluster/aemarks.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rk_hints;

#define RK_HINTS_ID_MAX 63 /* a target's id: a node id (RK_MEMBER_ID_MAX) */

struct rk_hint {
    const void *key;
    uint32_t klen;
    const void *val;
    uint32_t vlen;
    uint64_t version, expiry_ms, local_version;
    bool tombstone;
};

struct rk_hints_stats {
    uint64_t stored, delivered, dropped_full, dropped_old, pending, pending_bytes;
    uint64_t dropped_damaged;   /* unreadable (a corrupt block): dropped, partition marked */
    uint64_t partitions_marked; /* marked for anti-entropy now (not cumulative) */
};

/* Open the hint store in dir (created if missing) and its anti-entropy
 * marks for partitions partitions (the cluster's count: a power of two up
 * to 65536). 0 or an error, described in err. */
int rk_hints_open(struct rk_hints **out, const char *dir, const struct rk_storage_opts *base,
                  uint32_t partitions, uint64_t max_bytes, uint64_t max_age_ms, char *err,
                  size_t errlen);
/* Commit and sync the store, save the marks, free h. */
void rk_hints_close(struct rk_hints *h);

/* Keep r for target under local version lv. 0, RK_EBUSY when the target's
 * bound is reached (counted, logged once a minute, r's partition marked
 * for anti-entropy), or a storage error. */
int rk_hints_add(struct rk_hints *h, const char *target, const struct rk_record *r, uint64_t lv);

/* Commit what was added and save new anti-entropy marks (call once per
 * loop turn; marks are saved at most every 100 ms, each save an fsync). */
int rk_hints_commit(struct rk_hints *h);

/* Commit and fdatasync now: a fallback node acknowledges a hinted write
 * only once it is durable (rare: only while a replica is down). */
int rk_hints_flush(struct rk_hints *h);

/* Hints waiting for target. */
uint64_t rk_hints_pending(const struct rk_hints *h, const char *target);

/* Up to cap hints for target, oldest first in storage order; each is
 * passed to fn with arg. Hints past max_age are dropped instead (their
 * partitions marked for anti-entropy). Returns how many were passed. */
size_t rk_hints_each(struct rk_hints *h, const char *target, size_t cap,
                     void (*fn)(const struct rk_hint *hint, void *arg), void *arg);

/* The hint under local version lv was delivered: forget it (dv: a fresh
 * local version for the deletion). */
void rk_hints_delivered(struct rk_hints *h, const char *target, const void *key, uint32_t klen,
                        uint64_t lv, uint64_t dv);

void rk_hints_stats(const struct rk_hints *h, struct rk_hints_stats *out);

/* Hints pending for one target node. */
struct rk_hints_target {
    char id[RK_HINTS_ID_MAX + 1];
    uint64_t count, bytes;
};

/* The targets with hints pending (up to cap, in no set order) into out;
 * returns how many there are in all, which may be more than cap. */
size_t rk_hints_targets(const struct rk_hints *h, struct rk_hints_target *out, size_t cap);

/* The partitions marked for anti-entropy, owned by h (valid until
 * rk_hints_close): anti-entropy clears a mark once it has repaired the
 * partition; rk_hints_commit saves the change. Same thread as h. */
struct rk_aemarks *rk_hints_marks(struct rk_hints *h);

#endif

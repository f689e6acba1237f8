/* Anti-entropy hash trees: for each partition a worker owns, the XOR of an
 * entry hash over the partition's storage index entries, in 1024 leaves by
 * key hash, kept exact on every index change (the storage observer) and
 * compared top-down between replicas (the exchange, aexchange.h).
 *
 * DESIGN
 *
 *   leaf_of(key)  = XXH3_64bits(key) >> 54        top 10 bits; the partition
 *                                                 uses the low bits, so the
 *                                                 leaves of one partition fill
 *                                                 evenly
 *   entry_hash(e) = XXH3_64bits_withSeed(key || version u64 LE || tombstone u8
 *                                        || expiry_ms u64 LE, 0x52414521)
 *   leaf[i]       = XOR of entry_hash(e) over the members e with leaf_of = i
 *   mid[j]        = XXH3_64bits(leaf[32j .. 32j+31] as u64 LE), 0 if all 0
 *   root          = XXH3_64bits(mid[0 .. 31] as u64 LE),          0 if all 0
 *
 * Membership. e is a member iff e.expiry_ms == 0 || e.expiry_ms > cut_ms,
 * where cut_ms is the wall time of the tree's last build. Tombstones are
 * entries (a delete must propagate like a put). expiry_ms is the index's
 * (rounded up to whole seconds), which is also what iteration without values
 * and the observer report, and what every replica derives alike from the
 * same record.
 *
 * Why the XOR stays exact. Between two builds membership is a pure function
 * of (entry, cut_ms): it does not depend on the clock. So for each index
 * change old -> new the observer XORs out old if old was a member and XORs
 * in new if new is one, and the tree stays equal to the one a build at the
 * same cut_ms would give (XOR is its own inverse and commutes: insertion
 * order does not matter; an undo is the reverse change, which cancels). The
 * clock only matters through next_expiry_ms, the smallest expiry_ms > cut_ms
 * of any member: once now >= next_expiry_ms, some member has expired and the
 * tree says more than the live data, so it is stale and must be rebuilt
 * (from the index, never reading values) before it is compared, so expired
 * records leave the tree and are never repaired. next_expiry_ms only falls
 * between builds (a member leaving never raises it): a stale mark may come
 * early, which costs one needless rebuild, never late.
 *
 * Invariants (RK_ASSERT):
 * 1. entries counts the members; it never goes below 0, and entries == 0
 *    implies every leaf (so the root) is 0.
 * 2. A tree set holds exactly the partitions p < partitions with
 *    p % nworkers == worker, tree i being partition worker + i * nworkers.
 *
 * Threads: a tree and a tree set belong to the worker that owns the
 * partitions' storage; nothing here locks. */
#ifndef RK_CLUSTER_AETREE_H
#define RK_CLUSTER_AETREE_H

#include "storage/storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RK_AETREE_LEAVES 1024u /* 2^10: ~1k keys per leaf at 1M keys in one partition */
#define RK_AETREE_FANOUT 32u   /* leaves per mid node, and mids under the root */
#define RK_AETREE_MIDS   (RK_AETREE_LEAVES / RK_AETREE_FANOUT)
#define RK_AETREE_SEED   0x52414521u /* "RAE!": entry hashes differ from other XXH3 uses */

/* The tree of one partition. Plain memory owned by its worker. */
struct rk_aetree {
    uint64_t leaf[RK_AETREE_LEAVES];
    uint64_t entries;        /* members XORed in (invariant 1) */
    uint64_t cut_ms;         /* wall time of the last build: decides membership */
    uint64_t next_expiry_ms; /* smallest member expiry > cut_ms; UINT64_MAX if none */
    uint16_t partition;
};

/* The entry hash (see DESIGN): the one definition, used by trees and by the
 * exchange when it compares key lists. Any thread. */
uint64_t rk_aetree_entry_hash(const void *key, uint32_t klen, uint64_t version, bool tombstone,
                              uint64_t expiry_ms);

/* The leaf of key: XXH3_64bits(key) >> 54, in [0, RK_AETREE_LEAVES). */
uint32_t rk_aetree_leaf_of(const void *key, uint32_t klen);

/* An empty tree of partition p, as if built at cut_ms from an empty index. */
void rk_aetree_init(struct rk_aetree *t, uint16_t partition, uint64_t cut_ms);

/* Whether an entry with this expiry is a member of t (expiry 0 = never). */
bool rk_aetree_member(const struct rk_aetree *t, uint64_t expiry_ms);

/* Apply one index change of a key of t's partition: old out if it is a
 * member, new in if it is one (either may be NULL). O(1). */
void rk_aetree_apply(struct rk_aetree *t, const void *key, uint32_t klen,
                     const struct rk_storage_entry *old, const struct rk_storage_entry *new_);

/* Rebuild t from s's index entries of its partition, with cut_ms = now_ms
 * (not 0): no values are read, but the pass visits the whole index (a few
 * ms per million keys). The owner's thread. */
void rk_aetree_build(struct rk_aetree *t, rk_storage *s, uint64_t now_ms);

/* True when some member may have expired: t must be rebuilt before it is
 * compared (now_ms >= next_expiry_ms). */
bool rk_aetree_stale(const struct rk_aetree *t, uint64_t now_ms);

/* Inner levels, computed on demand (32 leaf reads per mid, 1024 per root). */
uint64_t rk_aetree_mid(const struct rk_aetree *t, uint32_t mid);
void rk_aetree_mids(const struct rk_aetree *t, uint64_t mids[RK_AETREE_MIDS]);
uint64_t rk_aetree_root(const struct rk_aetree *t);

/* ---- the trees of one worker ---- */

/* One tree per partition the worker owns (partition p belongs to worker
 * p % nworkers). Owned by that worker; the storage observer it registers
 * takes this set as its argument. */
struct rk_aetrees {
    uint32_t partitions, nworkers, worker;
    uint32_t n;          /* trees: the partitions this worker owns */
    struct rk_aetree *t; /* t[i]: partition worker + i * nworkers (invariant 2) */
    uint64_t foreign;    /* changes and entries of partitions not ours: ignored */
    uint64_t build_ms;   /* duration of the last rk_aetrees_build */
};

/* Allocate the (empty, cut at 0) trees of worker `worker` of nworkers over
 * `partitions` partitions. 0 or -ENOMEM. fini frees them (ts may be zeroed
 * memory that init never filled). */
int rk_aetrees_init(struct rk_aetrees *ts, uint32_t partitions, uint32_t nworkers, uint32_t worker);
void rk_aetrees_fini(struct rk_aetrees *ts);

/* The tree of partition p, or NULL when p is not this worker's. Borrowed:
 * valid until fini. */
struct rk_aetree *rk_aetrees_get(struct rk_aetrees *ts, uint32_t partition);

/* Rebuild every tree of the set from s in one pass over the index, at cut
 * now_ms (not 0); only the stale ones (at now_ms) when only_stale. *keys
 * (may be NULL) gets the members counted, build_ms the time taken. 0, or
 * -ENOMEM with every tree as it was. */
int rk_aetrees_build(struct rk_aetrees *ts, rk_storage *s, uint64_t now_ms, bool only_stale,
                     uint64_t *keys);

/* The storage observer (rk_storage_observer_fn) with arg = the set: routes
 * each change to the tree of its entries' partitions. */
void rk_aetrees_observe(void *arg, const void *key, uint32_t klen,
                        const struct rk_storage_entry *old, const struct rk_storage_entry *new_);

/* Memory held by the set's trees. */
size_t rk_aetrees_bytes(const struct rk_aetrees *ts);

#endif

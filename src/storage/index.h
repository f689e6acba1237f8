/* The in-memory key index: key -> where its current record lives, with its
 * version, expiry and size. Open addressing (linear probing) over a slot
 * array of 32-bit entry ids; entries live in fixed-size chunks so an id stays
 * valid until the entry is removed; keys live in a size-class slab. The
 * entries of each partition are also on a doubly linked list (links kept
 * beside the entries, not in them, so copying an entry never copies links):
 * walking one partition costs its own entries, not the whole index (hash
 * tree rebuilds, anti-entropy key lists, hint delivery, transfers). About
 * 56 B per entry + 4-8 B of slots + the key rounded up to 8 bytes.
 * Single-threaded: owned by one rk_storage. */
#ifndef RK_INDEX_H
#define RK_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define RK_IX_NONE UINT32_MAX

struct rk_ix_entry {
    uint64_t version;
    uint8_t *key;      /* NULL: entry is free */
    uint32_t hash;     /* high 32 bits of XXH3_64(key); the low bits pick partitions */
    uint32_t seg;      /* segment slot (storage.c's table) */
    uint32_t block;    /* file offset of the block holding the record */
    uint32_t off;      /* offset of the record in the block's raw payload */
    uint32_t len;      /* record size in the raw payload */
    uint32_t expiry_s; /* expiry rounded up to seconds; 0 = none */
    uint16_t klen;
    uint16_t partition; /* change only through rk_index_set_partition */
    uint8_t flags;      /* RK_REC_TOMBSTONE */
};

struct rk_ix_slab; /* private */

struct rk_index {
    uint32_t *slots; /* entry id + 1; 0 = empty */
    uint32_t mask;   /* slots - 1 */
    uint32_t used;   /* entries in use */
    struct rk_ix_entry **chunks;
    uint32_t **links; /* per chunk: next and prev id on the partition's list */
    uint32_t nchunks;
    uint32_t *phead;    /* first entry id of each partition (RK_IX_NONE: none) */
    uint32_t nphead;    /* partitions phead covers (grown on demand) */
    uint32_t high;      /* ids below this have been handed out */
    uint32_t free_head; /* free entry list through .seg, RK_IX_NONE = empty */
    struct rk_ix_slab *slab;
    size_t key_bytes; /* slab + large-key memory */
};

int rk_index_init(struct rk_index *ix);
void rk_index_fini(struct rk_index *ix);

/* Hash used for lookups: see rk_ix_entry.hash. */
uint32_t rk_index_hash(const void *key, uint32_t klen);

/* Id of key's entry, or RK_IX_NONE. */
uint32_t rk_index_find(const struct rk_index *ix, const void *key, uint32_t klen, uint32_t hash);

/* Add an entry for key (which must be absent) in partition, copying the
 * key. The entry's other fields are zero. Returns 0 with *id set, or
 * -ENOMEM. */
int rk_index_insert(struct rk_index *ix, const void *key, uint32_t klen, uint32_t hash,
                    uint16_t partition, uint32_t *id);

/* Move entry id to partition's list (a no-op when it is there already).
 * -ENOMEM leaves it where it was. */
int rk_index_set_partition(struct rk_index *ix, uint32_t id, uint16_t partition);

/* Remove entry id and free its key. */
void rk_index_remove(struct rk_index *ix, uint32_t id);

/* The first entry of partition's list, or RK_IX_NONE; then the one after
 * id (a live entry), or RK_IX_NONE. Newest insertions come first. */
uint32_t rk_index_first(const struct rk_index *ix, uint16_t partition);
uint32_t rk_index_next(const struct rk_index *ix, uint32_t id);

/* Entry by id (borrowed; moves never, freed by remove). Ids < ix->high. */
static inline struct rk_ix_entry *rk_index_entry(const struct rk_index *ix, uint32_t id)
{
    return &ix->chunks[id >> 12][id & 4095];
}

/* Memory held: slots, entry chunks, keys. */
size_t rk_index_bytes(const struct rk_index *ix);

#endif

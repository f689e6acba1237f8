/* Block cache: decompressed block payloads keyed by (segment slot, block
 * offset), least recently used evicted past a byte budget. Gets on a hot set
 * then cost one hash lookup instead of a pread + lz4 decode. Single-threaded,
 * owned by one rk_storage. */
#ifndef RK_CACHE_H
#define RK_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct rk_cache_ent;

struct rk_cache {
    struct rk_cache_ent **buckets;
    uint32_t mask;
    uint32_t count;
    size_t bytes, cap;
    struct rk_cache_ent *lru_head, *lru_tail; /* head = most recent */
    uint64_t hits, misses;
};

int rk_cache_init(struct rk_cache *c, size_t cap);
void rk_cache_fini(struct rk_cache *c);

/* Raw payload of a cached block (borrowed until the next insert), or NULL. */
const uint8_t *rk_cache_get(struct rk_cache *c, uint32_t seg, uint32_t block, uint32_t *len);

/* Room for a block of len bytes; the caller fills it and the block is cached
 * from then on. May evict others. NULL on allocation failure. */
uint8_t *rk_cache_insert(struct rk_cache *c, uint32_t seg, uint32_t block, uint32_t len);

/* Forget one block (its bytes were not valid, or will be reused). */
void rk_cache_drop_block(struct rk_cache *c, uint32_t seg, uint32_t block);

/* Drop every block of segment slot seg (the segment is gone). */
void rk_cache_drop_seg(struct rk_cache *c, uint32_t seg);

#endif

/* Hash index: linear probing with backward-shift deletion (no tombstone
 * slots, so probe lengths stay short after many removals). */
#include "storage/index.h"
#include "util/assert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define CHUNK_SHIFT   12 /* 4096 entries = 192 KiB per chunk */
#define CHUNK_ENTRIES (1u << CHUNK_SHIFT)
#define SLAB_CHUNK    (256u * 1024)
#define SLAB_CLASSES  64 /* keys up to 512 bytes come from the slab, in 8-byte classes */

struct rk_ix_slab {
    void *free[SLAB_CLASSES + 1]; /* per class: freed keys, linked through their first 8 bytes */
    uint8_t *cur;                 /* bump allocation in the newest chunk */
    size_t left;
    void **chunks;
    size_t nchunks;
};

uint32_t rk_index_hash(const void *key, uint32_t klen)
{
    return (uint32_t)(XXH3_64bits(key, klen) >> 32);
}

int rk_index_init(struct rk_index *ix)
{
    memset(ix, 0, sizeof(*ix));
    ix->mask = 1023;
    ix->slots = calloc(ix->mask + 1, sizeof(uint32_t));
    ix->slab = calloc(1, sizeof(*ix->slab));
    ix->free_head = RK_IX_NONE;
    if (!ix->slots || !ix->slab) {
        free(ix->slots);
        free(ix->slab);
        return -ENOMEM;
    }
    return 0;
}

void rk_index_fini(struct rk_index *ix)
{
    for (uint32_t id = 0; id < ix->high; id++) {
        struct rk_ix_entry *e = rk_index_entry(ix, id);
        if (e->key && (e->klen + 7u) / 8 > SLAB_CLASSES)
            free(e->key);
    }
    for (uint32_t i = 0; i < ix->nchunks; i++) {
        free(ix->chunks[i]);
        free(ix->links[i]);
    }
    free(ix->chunks);
    free(ix->links);
    free(ix->phead);
    if (ix->slab) {
        for (size_t i = 0; i < ix->slab->nchunks; i++)
            free(ix->slab->chunks[i]);
        free(ix->slab->chunks);
        free(ix->slab);
    }
    free(ix->slots);
    memset(ix, 0, sizeof(*ix));
}

static uint8_t *key_alloc(struct rk_index *ix, uint32_t klen)
{
    uint32_t cls = (klen + 7u) / 8;
    if (cls > SLAB_CLASSES) {
        ix->key_bytes += klen;
        return malloc(klen);
    }
    struct rk_ix_slab *sl = ix->slab;
    size_t sz = (size_t)cls * 8;
    if (sl->free[cls]) {
        uint8_t *p = sl->free[cls];
        memcpy(&sl->free[cls], p, sizeof(void *));
        return p;
    }
    if (sl->left < sz) {
        void **nc = realloc(sl->chunks, (sl->nchunks + 1) * sizeof(void *));
        if (!nc)
            return NULL;
        sl->chunks = nc;
        uint8_t *c = malloc(SLAB_CHUNK);
        if (!c)
            return NULL;
        sl->chunks[sl->nchunks++] = c;
        sl->cur = c;
        sl->left = SLAB_CHUNK;
        ix->key_bytes += SLAB_CHUNK;
    }
    uint8_t *p = sl->cur;
    sl->cur += sz;
    sl->left -= sz;
    return p;
}

static void key_free(struct rk_index *ix, uint8_t *key, uint32_t klen)
{
    uint32_t cls = (klen + 7u) / 8;
    if (cls > SLAB_CLASSES) {
        ix->key_bytes -= klen;
        free(key);
        return;
    }
    memcpy(key, &ix->slab->free[cls], sizeof(void *));
    ix->slab->free[cls] = key;
}

uint32_t rk_index_find(const struct rk_index *ix, const void *key, uint32_t klen, uint32_t hash)
{
    for (uint32_t i = hash & ix->mask;; i = (i + 1) & ix->mask) {
        uint32_t s = ix->slots[i];
        if (s == 0)
            return RK_IX_NONE;
        const struct rk_ix_entry *e = rk_index_entry(ix, s - 1);
        if (e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return s - 1;
    }
}

static void slot_place(uint32_t *slots, uint32_t mask, uint32_t hash, uint32_t id)
{
    uint32_t i = hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = id + 1;
}

/* Double the slot array when 3/4 full, keeping probe sequences short. */
static int grow(struct rk_index *ix)
{
    uint32_t nmask = ix->mask * 2 + 1;
    uint32_t *ns = calloc((size_t)nmask + 1, sizeof(uint32_t));
    if (!ns)
        return -ENOMEM;
    for (uint32_t i = 0; i <= ix->mask; i++) {
        uint32_t s = ix->slots[i];
        if (s)
            slot_place(ns, nmask, rk_index_entry(ix, s - 1)->hash, s - 1);
    }
    free(ix->slots);
    ix->slots = ns;
    ix->mask = nmask;
    return 0;
}

static int entry_alloc(struct rk_index *ix, uint32_t *id)
{
    if (ix->free_head != RK_IX_NONE) {
        *id = ix->free_head;
        ix->free_head = rk_index_entry(ix, *id)->seg;
        return 0;
    }
    if (ix->high == ix->nchunks * CHUNK_ENTRIES) {
        struct rk_ix_entry **nc = realloc(ix->chunks, (ix->nchunks + 1) * sizeof(*nc));
        if (!nc)
            return -ENOMEM;
        ix->chunks = nc;
        uint32_t **nl = realloc(ix->links, (ix->nchunks + 1) * sizeof(*nl));
        if (!nl)
            return -ENOMEM;
        ix->links = nl;
        nc[ix->nchunks] = calloc(CHUNK_ENTRIES, sizeof(struct rk_ix_entry));
        nl[ix->nchunks] = malloc(CHUNK_ENTRIES * 2 * sizeof(uint32_t));
        if (!nc[ix->nchunks] || !nl[ix->nchunks]) {
            free(nc[ix->nchunks]);
            free(nl[ix->nchunks]);
            return -ENOMEM;
        }
        ix->nchunks++;
    }
    *id = ix->high++;
    return 0;
}

/* ---- the partition lists ---- */

static uint32_t *link_of(const struct rk_index *ix, uint32_t id)
{
    return &ix->links[id >> CHUNK_SHIFT][(id & (CHUNK_ENTRIES - 1)) * 2]; /* [0] next, [1] prev */
}

/* phead covering partition p: 0 or -ENOMEM. */
static int heads_cover(struct rk_index *ix, uint16_t p)
{
    if (p < ix->nphead)
        return 0;
    uint32_t n = ix->nphead ? ix->nphead : 64;
    while (n <= p)
        n *= 2;
    uint32_t *h = realloc(ix->phead, (size_t)n * sizeof(*h));
    if (!h)
        return -ENOMEM;
    for (uint32_t i = ix->nphead; i < n; i++)
        h[i] = RK_IX_NONE;
    ix->phead = h;
    ix->nphead = n;
    return 0;
}

static void link_in(struct rk_index *ix, uint32_t id, uint16_t p)
{
    uint32_t *l = link_of(ix, id), head = ix->phead[p];
    l[0] = head;
    l[1] = RK_IX_NONE;
    if (head != RK_IX_NONE)
        link_of(ix, head)[1] = id;
    ix->phead[p] = id;
    rk_index_entry(ix, id)->partition = p;
}

static void link_out(struct rk_index *ix, uint32_t id)
{
    uint32_t *l = link_of(ix, id);
    if (l[1] != RK_IX_NONE)
        link_of(ix, l[1])[0] = l[0];
    else
        ix->phead[rk_index_entry(ix, id)->partition] = l[0];
    if (l[0] != RK_IX_NONE)
        link_of(ix, l[0])[1] = l[1];
}

int rk_index_set_partition(struct rk_index *ix, uint32_t id, uint16_t partition)
{
    if (rk_index_entry(ix, id)->partition == partition)
        return 0;
    if (heads_cover(ix, partition) < 0)
        return -ENOMEM;
    link_out(ix, id);
    link_in(ix, id, partition);
    return 0;
}

uint32_t rk_index_first(const struct rk_index *ix, uint16_t partition)
{
    return partition < ix->nphead ? ix->phead[partition] : RK_IX_NONE;
}

uint32_t rk_index_next(const struct rk_index *ix, uint32_t id)
{
    return link_of(ix, id)[0];
}

int rk_index_insert(struct rk_index *ix, const void *key, uint32_t klen, uint32_t hash,
                    uint16_t partition, uint32_t *id)
{
    if ((uint64_t)(ix->used + 1) * 4 > (uint64_t)(ix->mask + 1) * 3 && grow(ix) < 0)
        return -ENOMEM;
    if (heads_cover(ix, partition) < 0)
        return -ENOMEM;
    uint8_t *k = key_alloc(ix, klen);
    if (!k)
        return -ENOMEM;
    if (entry_alloc(ix, id) < 0) {
        key_free(ix, k, klen);
        return -ENOMEM;
    }
    memcpy(k, key, klen);
    struct rk_ix_entry *e = rk_index_entry(ix, *id);
    memset(e, 0, sizeof(*e));
    e->key = k;
    e->klen = (uint16_t)klen;
    e->hash = hash;
    /* At most 3/4 full (grow): slot_place finds a free slot. */
    RK_ASSERT((uint64_t)ix->used * 4 < (uint64_t)(ix->mask + 1) * 3);
    slot_place(ix->slots, ix->mask, hash, *id);
    link_in(ix, *id, (uint16_t)partition);
    ix->used++;
    return 0;
}

void rk_index_remove(struct rk_index *ix, uint32_t id)
{
    struct rk_ix_entry *e = rk_index_entry(ix, id);
    /* A live entry, or the probe below never finds its slot. */
    RK_ASSERT(id < ix->high && ix->used > 0 && e->key != NULL);
    uint32_t i = e->hash & ix->mask;
    while (ix->slots[i] != id + 1)
        i = (i + 1) & ix->mask;
    /* Backward shift: pull later members of the probe run into the hole so
     * no lookup ever stops early at it. */
    for (uint32_t j = (i + 1) & ix->mask;; j = (j + 1) & ix->mask) {
        uint32_t s = ix->slots[j];
        if (s == 0)
            break;
        uint32_t home = rk_index_entry(ix, s - 1)->hash & ix->mask;
        /* s may move to i only if its home is not in the (i, j] range */
        if (((j - home) & ix->mask) >= ((j - i) & ix->mask)) {
            ix->slots[i] = s;
            i = j;
        }
    }
    ix->slots[i] = 0;
    link_out(ix, id);
    key_free(ix, e->key, e->klen);
    memset(e, 0, sizeof(*e));
    e->seg = ix->free_head;
    ix->free_head = id;
    ix->used--;
}

size_t rk_index_bytes(const struct rk_index *ix)
{
    return ((size_t)ix->mask + 1) * sizeof(uint32_t) +
           (size_t)ix->nchunks * CHUNK_ENTRIES *
               (sizeof(struct rk_ix_entry) + 2 * sizeof(uint32_t)) +
           (size_t)ix->nphead * sizeof(uint32_t) + ix->key_bytes;
}

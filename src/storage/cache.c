/* Block cache: chained hash + intrusive LRU list. */
#include "storage/cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rk_cache_ent {
    struct rk_cache_ent *hnext, *prev, *next;
    uint32_t seg, block, len;
    uint8_t raw[];
};

static uint32_t slot(const struct rk_cache *c, uint32_t seg, uint32_t block)
{
    uint64_t k = ((uint64_t)seg << 32 | block) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 40) & c->mask;
}

int rk_cache_init(struct rk_cache *c, size_t cap)
{
    memset(c, 0, sizeof(*c));
    c->cap = cap;
    c->mask = 4095;
    c->buckets = calloc(c->mask + 1, sizeof(*c->buckets));
    return c->buckets ? 0 : -ENOMEM;
}

void rk_cache_fini(struct rk_cache *c)
{
    struct rk_cache_ent *e = c->lru_head;
    while (e) {
        struct rk_cache_ent *n = e->next;
        free(e);
        e = n;
    }
    free(c->buckets);
    memset(c, 0, sizeof(*c));
}

static void lru_unlink(struct rk_cache *c, struct rk_cache_ent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct rk_cache *c, struct rk_cache_ent *e)
{
    e->next = c->lru_head;
    e->prev = NULL;
    if (c->lru_head)
        c->lru_head->prev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

static void remove_ent(struct rk_cache *c, struct rk_cache_ent *e)
{
    struct rk_cache_ent **pp = &c->buckets[slot(c, e->seg, e->block)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->bytes -= sizeof(*e) + e->len;
    c->count--;
    free(e);
}

const uint8_t *rk_cache_get(struct rk_cache *c, uint32_t seg, uint32_t block, uint32_t *len)
{
    for (struct rk_cache_ent *e = c->buckets[slot(c, seg, block)]; e; e = e->hnext) {
        if (e->seg == seg && e->block == block) {
            if (c->lru_head != e) {
                lru_unlink(c, e);
                lru_push(c, e);
            }
            c->hits++;
            *len = e->len;
            return e->raw;
        }
    }
    c->misses++;
    return NULL;
}

static void grow(struct rk_cache *c)
{
    uint32_t nmask = c->mask * 2 + 1;
    struct rk_cache_ent **nb = calloc((size_t)nmask + 1, sizeof(*nb));
    if (!nb)
        return; /* longer chains, still correct */
    struct rk_cache_ent **old = c->buckets;
    uint32_t omask = c->mask;
    c->buckets = nb;
    c->mask = nmask;
    for (uint32_t i = 0; i <= omask; i++) {
        for (struct rk_cache_ent *e = old[i], *n; e; e = n) {
            n = e->hnext;
            uint32_t s = slot(c, e->seg, e->block);
            e->hnext = nb[s];
            nb[s] = e;
        }
    }
    free(old);
}

uint8_t *rk_cache_insert(struct rk_cache *c, uint32_t seg, uint32_t block, uint32_t len)
{
    for (struct rk_cache_ent *e = c->buckets[slot(c, seg, block)]; e; e = e->hnext) {
        if (e->seg == seg && e->block == block) {
            remove_ent(c, e);
            break;
        }
    }
    /* Keep the newest block even when it alone exceeds the budget: the
     * caller reads from it right after. */
    while (c->lru_tail && c->bytes + sizeof(struct rk_cache_ent) + len > c->cap)
        remove_ent(c, c->lru_tail);
    struct rk_cache_ent *e = malloc(sizeof(*e) + len);
    if (!e)
        return NULL;
    e->seg = seg;
    e->block = block;
    e->len = len;
    uint32_t s = slot(c, seg, block);
    e->hnext = c->buckets[s];
    c->buckets[s] = e;
    lru_push(c, e);
    c->bytes += sizeof(*e) + len;
    if (++c->count > c->mask + 1)
        grow(c);
    return e->raw;
}

void rk_cache_drop_seg(struct rk_cache *c, uint32_t seg)
{
    struct rk_cache_ent *e = c->lru_head;
    while (e) {
        struct rk_cache_ent *n = e->next;
        if (e->seg == seg)
            remove_ent(c, e);
        e = n;
    }
}

void rk_cache_drop_block(struct rk_cache *c, uint32_t seg, uint32_t block)
{
    for (struct rk_cache_ent *e = c->buckets[slot(c, seg, block)]; e; e = e->hnext) {
        if (e->seg == seg && e->block == block) {
            remove_ent(c, e);
            return;
        }
    }
}

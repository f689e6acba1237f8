/* Anti-entropy hash trees (aetree.h): the entry hash, leaf placement, the
 * O(1) update on every storage index change, builds from the index, and the
 * inner levels computed on demand. The design block is in aetree.h. */
#include "cluster/aetree.h"
#include "util/assert.h"
#include "util/clock.h"
#include "util/le.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack, for long keys */
#include <xxhash.h>

#define ENTRY_TAIL 17u  /* version u64 + tombstone u8 + expiry u64 */
#define SHORT_KEY  240u /* keys up to this hash from one stack buffer (most do) */

uint64_t rk_aetree_entry_hash(const void *key, uint32_t klen, uint64_t version, bool tombstone,
                              uint64_t expiry_ms)
{
    uint8_t tail[ENTRY_TAIL];
    rk_le_put64(tail, version);
    tail[8] = tombstone ? 1 : 0;
    rk_le_put64(tail + 9, expiry_ms);
    if (klen <= SHORT_KEY) {
        uint8_t buf[SHORT_KEY + ENTRY_TAIL];
        memcpy(buf, key, klen);
        memcpy(buf + klen, tail, ENTRY_TAIL);
        return XXH3_64bits_withSeed(buf, klen + ENTRY_TAIL, RK_AETREE_SEED);
    }
    /* Streaming gives the same value as one call over the concatenation. */
    XXH3_state_t st;
    /* A state on the stack must be cleared before a seeded reset: reset
     * skips deriving the secret when the stale seed field already matches. */
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset_withSeed(&st, RK_AETREE_SEED);
    XXH3_64bits_update(&st, key, klen);
    XXH3_64bits_update(&st, tail, ENTRY_TAIL);
    return XXH3_64bits_digest(&st);
}

uint32_t rk_aetree_leaf_of(const void *key, uint32_t klen)
{
    return (uint32_t)(XXH3_64bits(key, klen) >> 54); /* 64 - 10 bits: RK_AETREE_LEAVES */
}

void rk_aetree_init(struct rk_aetree *t, uint16_t partition, uint64_t cut_ms)
{
    memset(t->leaf, 0, sizeof(t->leaf));
    t->entries = 0;
    t->cut_ms = cut_ms;
    t->next_expiry_ms = UINT64_MAX;
    t->partition = partition;
}

bool rk_aetree_member(const struct rk_aetree *t, uint64_t expiry_ms)
{
    return expiry_ms == 0 || expiry_ms > t->cut_ms;
}

void rk_aetree_apply(struct rk_aetree *t, const void *key, uint32_t klen,
                     const struct rk_storage_entry *old, const struct rk_storage_entry *new_)
{
    bool out = old && rk_aetree_member(t, old->expiry_ms);
    bool in = new_ && rk_aetree_member(t, new_->expiry_ms);
    if (!out && !in)
        return;
    uint64_t *leaf = &t->leaf[rk_aetree_leaf_of(key, klen)];
    if (out) {
        RK_ASSERT(t->entries > 0); /* invariant 1: a member leaves that was counted in */
        *leaf ^= rk_aetree_entry_hash(key, klen, old->version, old->tombstone, old->expiry_ms);
        t->entries--;
    }
    if (in) {
        *leaf ^= rk_aetree_entry_hash(key, klen, new_->version, new_->tombstone, new_->expiry_ms);
        t->entries++;
        if (new_->expiry_ms && new_->expiry_ms < t->next_expiry_ms)
            t->next_expiry_ms = new_->expiry_ms;
    }
}

/* XOR one member found by iteration into t. */
static void add_record(struct rk_aetree *t, const struct rk_record *r)
{
    struct rk_storage_entry e = {.version = r->version,
                                 .expiry_ms = r->expiry_ms,
                                 .partition = r->partition,
                                 .tombstone = r->tombstone};
    rk_aetree_apply(t, r->key, r->klen, NULL, &e);
}

/* Iteration without values reads no block, so it cannot fail: a failure
 * here would leave a tree that later changes could not keep exact. */
static void iterate_all(rk_storage *s, struct rk_storage_iter *it,
                        void (*fn)(void *arg, const struct rk_record *r), void *arg)
{
    struct rk_record r;
    int rc;
    while ((rc = rk_storage_iter_next(s, it, &r)) == 1)
        fn(arg, &r);
    RK_ASSERT(rc == 0);
}

static void add_one(void *arg, const struct rk_record *r)
{
    add_record(arg, r);
}

void rk_aetree_build(struct rk_aetree *t, rk_storage *s, uint64_t now_ms)
{
    RK_ASSERT(now_ms != 0); /* 0 would mean "the engine's clock" to the iterator */
    rk_aetree_init(t, t->partition, now_ms);
    /* Expiry judged at now_ms for the whole pass: the iterator then skips
     * exactly the non-members, even if the clock moves on meanwhile. */
    struct rk_storage_iter it;
    rk_storage_iter_init_at(&it, t->partition, false, now_ms);
    iterate_all(s, &it, add_one, t);
}

bool rk_aetree_stale(const struct rk_aetree *t, uint64_t now_ms)
{
    return now_ms >= t->next_expiry_ms;
}

/* XXH3 of n hashes as u64 LE; 0 when they are all 0 (an empty subtree). */
static uint64_t node_hash(const uint64_t *h, uint32_t n)
{
    uint8_t buf[RK_AETREE_FANOUT * 8];
    uint64_t any = 0;
    for (uint32_t i = 0; i < n; i++) {
        any |= h[i];
        rk_le_put64(buf + 8 * i, h[i]);
    }
    return any ? XXH3_64bits(buf, 8 * n) : 0;
}

uint64_t rk_aetree_mid(const struct rk_aetree *t, uint32_t mid)
{
    RK_ASSERT(mid < RK_AETREE_MIDS);
    return node_hash(&t->leaf[mid * RK_AETREE_FANOUT], RK_AETREE_FANOUT);
}

void rk_aetree_mids(const struct rk_aetree *t, uint64_t mids[RK_AETREE_MIDS])
{
    for (uint32_t i = 0; i < RK_AETREE_MIDS; i++)
        mids[i] = rk_aetree_mid(t, i);
}

uint64_t rk_aetree_root(const struct rk_aetree *t)
{
    uint64_t mids[RK_AETREE_MIDS];
    rk_aetree_mids(t, mids);
    uint64_t root = node_hash(mids, RK_AETREE_MIDS);
    RK_ASSERT(t->entries != 0 || root == 0); /* invariant 1 */
    return root;
}

/* ---- the trees of one worker ---- */

int rk_aetrees_init(struct rk_aetrees *ts, uint32_t partitions, uint32_t nworkers, uint32_t worker)
{
    RK_ASSERT(nworkers > 0 && worker < nworkers && partitions <= RK_STORAGE_PARTITIONS_MAX);
    memset(ts, 0, sizeof(*ts));
    ts->partitions = partitions;
    ts->nworkers = nworkers;
    ts->worker = worker;
    ts->n = worker < partitions ? (partitions - worker + nworkers - 1) / nworkers : 0;
    if (ts->n) {
        ts->t = malloc((size_t)ts->n * sizeof(*ts->t));
        if (!ts->t)
            return -ENOMEM;
    }
    for (uint32_t i = 0; i < ts->n; i++)
        rk_aetree_init(&ts->t[i], (uint16_t)(worker + i * nworkers), 0);
    return 0;
}

void rk_aetrees_fini(struct rk_aetrees *ts)
{
    free(ts->t);
    ts->t = NULL;
    ts->n = 0;
}

struct rk_aetree *rk_aetrees_get(struct rk_aetrees *ts, uint32_t partition)
{
    if (partition >= ts->partitions || partition % ts->nworkers != ts->worker)
        return NULL;
    struct rk_aetree *t = &ts->t[partition / ts->nworkers];
    RK_ASSERT(t->partition == partition); /* invariant 2 */
    return t;
}

/* The trees to rebuild (all, or the stale ones), reset to empty at now_ms.
 * Returns a flag per tree (freed by the caller) or NULL (-ENOMEM). */
static bool *reset_trees(struct rk_aetrees *ts, uint64_t now_ms, bool only_stale)
{
    bool *redo = calloc(ts->n ? ts->n : 1, sizeof(bool));
    if (!redo)
        return NULL;
    for (uint32_t i = 0; i < ts->n; i++) {
        redo[i] = !only_stale || rk_aetree_stale(&ts->t[i], now_ms);
        if (redo[i])
            rk_aetree_init(&ts->t[i], ts->t[i].partition, now_ms);
    }
    return redo;
}

struct build_pass {
    struct rk_aetrees *ts;
    const bool *redo;
    uint64_t members;
};

static void add_routed(void *arg, const struct rk_record *r)
{
    struct build_pass *b = arg;
    struct rk_aetree *t = rk_aetrees_get(b->ts, r->partition);
    if (!t) {
        b->ts->foreign++;
        return;
    }
    if (b->redo[t - b->ts->t]) {
        add_record(t, r);
        b->members++;
    }
}

int rk_aetrees_build(struct rk_aetrees *ts, rk_storage *s, uint64_t now_ms, bool only_stale,
                     uint64_t *keys)
{
    RK_ASSERT(now_ms != 0); /* 0 would mean "the engine's clock" to the iterator */
    uint64_t t0 = rk_clock_mono_ns();
    bool *redo = reset_trees(ts, now_ms, only_stale);
    if (!redo)
        return -ENOMEM; /* nothing was reset */
    /* One pass over the index for every tree: a pass per partition would
     * visit the whole index once per partition. */
    struct build_pass b = {.ts = ts, .redo = redo};
    struct rk_storage_iter it;
    rk_storage_iter_init_at(&it, -1, false, now_ms);
    iterate_all(s, &it, add_routed, &b);
    free(redo);
    ts->build_ms = (rk_clock_mono_ns() - t0) / 1000000;
    if (keys)
        *keys = b.members;
    return 0;
}

void rk_aetrees_observe(void *arg, const void *key, uint32_t klen,
                        const struct rk_storage_entry *old, const struct rk_storage_entry *new_)
{
    struct rk_aetrees *ts = arg;
    /* The partition of a key never changes; route old and new separately
     * anyway, so a stray entry cannot unbalance a tree it was never in. */
    if (old && new_ && old->partition == new_->partition) {
        struct rk_aetree *t = rk_aetrees_get(ts, new_->partition);
        if (t)
            rk_aetree_apply(t, key, klen, old, new_);
        else
            ts->foreign++;
        return;
    }
    const struct rk_storage_entry *e[2] = {old, new_};
    for (int i = 0; i < 2; i++) {
        if (!e[i])
            continue;
        struct rk_aetree *t = rk_aetrees_get(ts, e[i]->partition);
        if (!t)
            ts->foreign++;
        else
            rk_aetree_apply(t, key, klen, i == 0 ? e[i] : NULL, i == 1 ? e[i] : NULL);
    }
}

size_t rk_aetrees_bytes(const struct rk_aetrees *ts)
{
    return (size_t)ts->n * sizeof(struct rk_aetree);
}

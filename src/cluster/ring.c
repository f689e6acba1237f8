/* The partition ring: tokens, partition positions, preference lists,
 * counts and the agreement digest. Pure: no I/O, clocks or threads. The
 * design (token derivation, positions, the choice of RK_RING_VNODES) is in
 * ring.h, because other nodes depend on it.
 *
 * Invariants of a built ring:
 *  1. ids[0..n) sorted bytewise, distinct; member i is ids[i].
 *  2. tok[0..n * RK_RING_VNODES) sorted by (value, member), so equal token
 *     values from different members fall in id order.
 *  3. pref[p * replicas ..] holds plen = min(replicas, n) distinct member
 *     indices, the first plen of partition p's walk; slots past plen are 0.
 *  4. Nothing changes after rk_ring_build returns.
 */
#include "ring.h"

#include "members.h"
#include "util/assert.h"
#include "util/err.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static_assert(RK_RING_MEMBERS_MAX == RK_MEMBERS_MAX, "a ring holds any member table");
static_assert(RK_RING_ID_MAX == RK_MEMBER_ID_MAX, "ring ids are member ids");
static_assert(RK_RING_MEMBERS_MAX <= UINT16_MAX + 1, "member indices are u16");
static_assert((uint64_t)RK_RING_MEMBERS_MAX * RK_RING_VNODES <= SIZE_MAX / 16, "tokens fit");

struct token {
    uint64_t value;
    uint16_t member; /* index into ids */
};

struct rk_ring {
    uint32_t partitions;
    uint32_t replicas;
    size_t n;
    size_t plen;                     /* min(replicas, n) */
    char (*ids)[RK_RING_ID_MAX + 1]; /* n, sorted */
    size_t ntok;                     /* n * RK_RING_VNODES */
    struct token *tok;               /* ntok, sorted */
    uint16_t *pref;                  /* partitions * replicas */
    uint32_t *primary;               /* n */
    uint32_t *replica;               /* n */
    uint64_t digest;
};

uint32_t rk_ring_partition_of(const void *key, size_t len, uint32_t partitions)
{
    return (uint32_t)(XXH3_64bits(key, len) & (uint64_t)(partitions - 1));
}

/* ---- tokens and positions ---- */

/* The derivation in ring.h: XXH3_64bits(id || i as u32 LE). */
static uint64_t token_of(const char *id, size_t len, uint32_t i)
{
    uint8_t buf[RK_RING_ID_MAX + 4];
    memcpy(buf, id, len);
    for (int b = 0; b < 4; b++)
        buf[len + (size_t)b] = (uint8_t)(i >> (8 * b));
    return XXH3_64bits(buf, len + 4);
}

static int cmp_token(const void *a, const void *b)
{
    const struct token *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return (x->member > y->member) - (x->member < y->member);
}

/* p * (2^64 / partitions). The step is computed as UINT64_MAX / P + 1,
 * which is exact for a power of two and wraps to 0 for P = 1 (position 0). */
static uint64_t position_of(const struct rk_ring *r, uint32_t p)
{
    return (uint64_t)p * (UINT64_MAX / r->partitions + 1);
}

/* Index of the first token >= pos, wrapping to 0 past the last. ntok > 0. */
static size_t first_at_or_after(const struct rk_ring *r, uint64_t pos)
{
    size_t lo = 0, hi = r->ntok;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->tok[mid].value < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == r->ntok ? 0 : lo;
}

/* The first `want` distinct members clockwise from partition p's position,
 * as indices into out. Returns how many were found: min(want, n). */
static size_t walk_idx(const struct rk_ring *r, uint32_t p, uint16_t *out, size_t want)
{
    if (r->ntok == 0 || want == 0)
        return 0;
    uint64_t seen[RK_RING_MEMBERS_MAX / 64] = {0};
    size_t k = 0, at = first_at_or_after(r, position_of(r, p));
    for (size_t j = 0; j < r->ntok && k < want; j++) {
        uint16_t m = r->tok[at].member;
        if (!(seen[m / 64] >> (m % 64) & 1)) {
            seen[m / 64] |= UINT64_C(1) << (m % 64);
            out[k++] = m;
        }
        if (++at == r->ntok)
            at = 0;
    }
    return k;
}

/* ---- build ---- */

static bool is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static int check_args(struct rk_ring **out, const char *const *ids, size_t n, uint32_t partitions,
                      uint32_t replicas)
{
    if (!out || (n > 0 && !ids) || n > RK_RING_MEMBERS_MAX)
        return RK_EINVAL;
    if (!is_pow2(partitions) || partitions > RK_RING_PARTITIONS_MAX)
        return RK_EINVAL;
    if (replicas == 0 || replicas > RK_RING_REPLICAS_MAX)
        return RK_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!ids[i])
            return RK_EINVAL;
        size_t l = strnlen(ids[i], RK_RING_ID_MAX + 1);
        if (l == 0 || l > RK_RING_ID_MAX)
            return RK_EINVAL;
    }
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Copies and sorts the ids; RK_EINVAL on a duplicate. */
static int set_ids(struct rk_ring *r, const char *const *ids)
{
    for (size_t i = 0; i < r->n; i++)
        strcpy(r->ids[i], ids[i]); /* length checked in check_args */
    qsort(r->ids, r->n, sizeof(r->ids[0]), cmp_id);
    for (size_t i = 1; i < r->n; i++) {
        if (strcmp(r->ids[i - 1], r->ids[i]) == 0)
            return RK_EINVAL;
    }
    return 0;
}

static void set_tokens(struct rk_ring *r)
{
    size_t k = 0;
    for (size_t m = 0; m < r->n; m++) {
        size_t len = strlen(r->ids[m]);
        for (uint32_t i = 0; i < RK_RING_VNODES; i++)
            r->tok[k++] = (struct token){token_of(r->ids[m], len, i), (uint16_t)m};
    }
    qsort(r->tok, r->ntok, sizeof(r->tok[0]), cmp_token);
}

static void set_preferences(struct rk_ring *r)
{
    for (uint32_t p = 0; p < r->partitions; p++) {
        uint16_t *list = &r->pref[(size_t)p * r->replicas];
        size_t got = walk_idx(r, p, list, r->plen);
        RK_ASSERT(got == r->plen); /* plen = min(replicas, members): every list fills */
        for (size_t k = 0; k < r->plen; k++) {
            if (k == 0)
                r->primary[list[k]]++;
            r->replica[list[k]]++;
        }
    }
}

static void set_digest(struct rk_ring *r)
{
    uint8_t buf[2 * RK_RING_REPLICAS_MAX > 1 + RK_RING_ID_MAX ? 2 * RK_RING_REPLICAS_MAX
                                                              : 1 + RK_RING_ID_MAX];
    for (int b = 0; b < 4; b++) {
        buf[b] = (uint8_t)(r->partitions >> (8 * b));
        buf[4 + b] = (uint8_t)(r->replicas >> (8 * b));
    }
    uint64_t h = XXH3_64bits(buf, 8);
    for (size_t i = 0; i < r->n; i++) {
        size_t l = strlen(r->ids[i]);
        buf[0] = (uint8_t)l;
        memcpy(buf + 1, r->ids[i], l);
        h = XXH3_64bits_withSeed(buf, 1 + l, h);
    }
    for (uint32_t p = 0; p < r->partitions; p++) {
        const uint16_t *list = &r->pref[(size_t)p * r->replicas];
        for (size_t k = 0; k < r->plen; k++) {
            buf[2 * k] = (uint8_t)list[k];
            buf[2 * k + 1] = (uint8_t)(list[k] >> 8);
        }
        h = XXH3_64bits_withSeed(buf, 2 * r->plen, h);
    }
    r->digest = h;
}

/* The ring's arrays, zeroed. calloc(0) may return NULL: only a nonzero
 * request that yields NULL is a failure. */
static int alloc_arrays(struct rk_ring *r)
{
    size_t nn = r->n ? r->n : 1;
    r->ids = calloc(nn, sizeof(r->ids[0]));
    r->tok = calloc(r->ntok ? r->ntok : 1, sizeof(r->tok[0]));
    r->pref = calloc((size_t)r->partitions * r->replicas, sizeof(r->pref[0]));
    r->primary = calloc(nn, sizeof(r->primary[0]));
    r->replica = calloc(nn, sizeof(r->replica[0]));
    if (!r->ids || !r->tok || !r->pref || !r->primary || !r->replica)
        return -ENOMEM;
    return 0;
}

int rk_ring_build(struct rk_ring **out, const char *const *ids, size_t n, uint32_t partitions,
                  uint32_t replicas)
{
    int rc = check_args(out, ids, n, partitions, replicas);
    if (rc < 0) {
        if (out)
            *out = NULL;
        return rc;
    }
    *out = NULL;
    struct rk_ring *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->partitions = partitions;
    r->replicas = replicas;
    r->n = n;
    r->plen = n < replicas ? n : replicas;
    r->ntok = n * RK_RING_VNODES;
    if ((rc = alloc_arrays(r)) < 0 || (rc = set_ids(r, ids)) < 0)
        goto fail;
    set_tokens(r);
    set_preferences(r);
    set_digest(r);
    *out = r;
    return 0;
fail:
    rk_ring_free(r);
    return rc;
}

void rk_ring_free(struct rk_ring *r)
{
    if (!r)
        return;
    free(r->ids);
    free(r->tok);
    free(r->pref);
    free(r->primary);
    free(r->replica);
    free(r);
}

/* ---- reads ---- */

size_t rk_ring_preference(const struct rk_ring *r, uint32_t partition, const char **ids_out,
                          size_t cap)
{
    if (partition >= r->partitions)
        return 0;
    const uint16_t *list = &r->pref[(size_t)partition * r->replicas];
    size_t k = r->plen < cap ? r->plen : cap;
    for (size_t i = 0; i < k; i++)
        ids_out[i] = r->ids[list[i]];
    return k;
}

size_t rk_ring_walk(const struct rk_ring *r, uint32_t partition, const char **ids_out, size_t cap)
{
    if (partition >= r->partitions)
        return 0;
    uint16_t idx[RK_RING_MEMBERS_MAX];
    size_t k = walk_idx(r, partition, idx, cap < r->n ? cap : r->n);
    for (size_t i = 0; i < k; i++)
        ids_out[i] = r->ids[idx[i]];
    return k;
}

size_t rk_ring_members(const struct rk_ring *r)
{
    return r->n;
}

const char *rk_ring_member_id(const struct rk_ring *r, size_t i)
{
    return i < r->n ? r->ids[i] : NULL;
}

uint32_t rk_ring_partitions(const struct rk_ring *r)
{
    return r->partitions;
}

uint32_t rk_ring_replicas(const struct rk_ring *r)
{
    return r->replicas;
}

void rk_ring_counts(const struct rk_ring *r, size_t i, uint32_t *primary, uint32_t *replica)
{
    *primary = i < r->n ? r->primary[i] : 0;
    *replica = i < r->n ? r->replica[i] : 0;
}

uint64_t rk_ring_digest(const struct rk_ring *r)
{
    return r->digest;
}

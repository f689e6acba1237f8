/* Recently taken MACs, two generations per stripe (design in replay.h). */
#include "util/replay.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing, linear probing; 0 marks an empty slot (a prefix of 0
 * is stored as 1: one in 2^64 prefixes shares a slot's meaning). */
struct set {
    uint64_t *slot;
    size_t cap, n; /* cap: a power of two, or 0 */
};

struct stripe {
    pthread_mutex_t mu;
    struct set cur, prev;
    uint64_t gen_start_ms; /* when cur began */
};

struct rk_replay {
    uint64_t window_ms;
    struct stripe s[RK_REPLAY_STRIPES];
};

struct rk_replay *rk_replay_new(uint64_t window_ms)
{
    struct rk_replay *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->window_ms = window_ms ? window_ms : 1;
    for (size_t i = 0; i < RK_REPLAY_STRIPES; i++)
        pthread_mutex_init(&r->s[i].mu, NULL);
    return r;
}

void rk_replay_free(struct rk_replay *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < RK_REPLAY_STRIPES; i++) {
        free(r->s[i].cur.slot);
        free(r->s[i].prev.slot);
        pthread_mutex_destroy(&r->s[i].mu);
    }
    free(r);
}

static bool set_has(const struct set *s, uint64_t k)
{
    if (!s->cap)
        return false;
    for (size_t i = k & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == k)
            return true;
        if (s->slot[i] == 0)
            return false;
    }
}

static void set_put(struct set *s, uint64_t k)
{
    size_t i = k & (s->cap - 1);
    while (s->slot[i] != 0)
        i = (i + 1) & (s->cap - 1);
    s->slot[i] = k;
    s->n++;
}

/* Room for one more entry at most half full: false when that would pass
 * the cap or memory ran out. */
static bool set_room(struct set *s)
{
    if (s->cap && (s->n + 1) * 2 <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap * 2 : 64;
    if (cap / 2 > RK_REPLAY_STRIPE_MAX)
        return false;
    struct set g = {calloc(cap, sizeof(uint64_t)), cap, 0};
    if (!g.slot)
        return false;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i])
            set_put(&g, s->slot[i]);
    free(s->slot);
    *s = g;
    return true;
}

static void set_clear(struct set *s)
{
    free(s->slot);
    *s = (struct set){0};
}

/* Move the generations on to now: every 2W the current one ages. */
static void age(struct stripe *st, uint64_t window_ms, uint64_t now_ms)
{
    uint64_t gen = 2 * window_ms;
    if (now_ms < st->gen_start_ms + gen)
        return;
    set_clear(&st->prev);
    if (now_ms < st->gen_start_ms + 2 * gen) {
        st->prev = st->cur;
        st->cur = (struct set){0};
        st->gen_start_ms += gen;
    } else { /* idle for two generations: both are past */
        set_clear(&st->cur);
        st->gen_start_ms = now_ms;
    }
}

enum rk_replay_result rk_replay_take(struct rk_replay *r, const uint8_t *mac, uint64_t now_ms)
{
    uint64_t k;
    memcpy(&k, mac, sizeof(k));
    if (k == 0)
        k = 1;
    /* The low bits pick the slot; the stripe comes from the high ones. */
    struct stripe *st = &r->s[(k >> 58) % RK_REPLAY_STRIPES];
    enum rk_replay_result res = RK_REPLAY_NEW;
    pthread_mutex_lock(&st->mu);
    age(st, r->window_ms, now_ms);
    if (set_has(&st->cur, k) || set_has(&st->prev, k))
        res = RK_REPLAY_SEEN;
    else if (!set_room(&st->cur))
        res = RK_REPLAY_FULL;
    else
        set_put(&st->cur, k);
    pthread_mutex_unlock(&st->mu);
    return res;
}

size_t rk_replay_size(struct rk_replay *r, uint64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < RK_REPLAY_STRIPES; i++) {
        pthread_mutex_lock(&r->s[i].mu);
        age(&r->s[i], r->window_ms, now_ms);
        n += r->s[i].cur.n + r->s[i].prev.n;
        pthread_mutex_unlock(&r->s[i].mu);
    }
    return n;
}

/* Per-client-address token buckets (ratelimit.h). */
#include "util/ratelimit.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MICRO 1000000ull /* a token, in the millionths buckets count in */

struct bucket {
    struct rk_rl_addr addr;
    uint64_t tokens;  /* millionths of a token */
    uint64_t last_ns; /* when tokens were last brought up to date */
    uint64_t requests, limited;
    bool used;
};

struct stripe {
    pthread_mutex_t mu;
    struct bucket b[RK_RL_WAYS];
    struct bucket overflow; /* shared by newcomers while every bucket refills */
} __attribute__((aligned(64)));

struct rk_ratelimit {
    uint64_t seed;
    /* rate << 32 | burst, one word so a reader never pairs a new rate with
     * an old burst. */
    atomic_uint_fast64_t setting;
    atomic_uint_fast64_t limited;
    struct stripe s[RK_RL_STRIPES];
};

void rk_rl_addr_from_nng(const nng_sockaddr *sa, struct rk_rl_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->s_family == NNG_AF_INET) {
        a->b[10] = a->b[11] = 0xff; /* ::ffff:a.b.c.d */
        memcpy(a->b + 12, &sa->s_in.sa_addr, 4);
    } else if (sa->s_family == NNG_AF_INET6) {
        memcpy(a->b, sa->s_in6.sa_addr, 16);
    }
}

void rk_rl_addr_text(const struct rk_rl_addr *a, char *out, size_t cap)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const struct rk_rl_addr zero;
    const char *r = NULL;
    if (memcmp(a, &zero, sizeof(zero)) == 0)
        r = NULL;
    else if (memcmp(a->b, mapped, sizeof(mapped)) == 0)
        r = inet_ntop(AF_INET, a->b + 12, out, (socklen_t)cap);
    else
        r = inet_ntop(AF_INET6, a->b, out, (socklen_t)cap);
    if (!r)
        snprintf(out, cap, "local");
}

struct rk_ratelimit *rk_ratelimit_new(void)
{
    struct rk_ratelimit *rl = aligned_alloc(64, sizeof(*rl));
    if (!rl)
        return NULL;
    memset(rl, 0, sizeof(*rl));
    /* A seed nobody outside knows; without one the table still works,
     * only less evenly under an aimed flood. */
    if (getrandom(&rl->seed, sizeof(rl->seed), GRND_NONBLOCK) != sizeof(rl->seed))
        rl->seed = (uint64_t)(uintptr_t)rl * 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < RK_RL_STRIPES; i++)
        pthread_mutex_init(&rl->s[i].mu, NULL);
    return rl;
}

void rk_ratelimit_free(struct rk_ratelimit *rl)
{
    if (!rl)
        return;
    for (unsigned i = 0; i < RK_RL_STRIPES; i++)
        pthread_mutex_destroy(&rl->s[i].mu);
    free(rl);
}

void rk_ratelimit_set(struct rk_ratelimit *rl, uint32_t rate, uint32_t burst)
{
    if (rate && !burst)
        burst = rate;
    atomic_store(&rl->setting, (uint64_t)rate << 32 | burst);
}

/* A 64-bit finaliser in which every input bit moves every output bit
 * (MurmurHash3's fmix64 constants): an IPv4 address varies only in the
 * high bytes of the second word, and the stripe is taken from low bits. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

void rk_ratelimit_setting(const struct rk_ratelimit *rl, uint32_t *rate, uint32_t *burst)
{
    uint64_t setting = atomic_load_explicit(&rl->setting, memory_order_relaxed);
    *rate = (uint32_t)(setting >> 32);
    *burst = (uint32_t)setting;
}

bool rk_ratelimit_on(const struct rk_ratelimit *rl)
{
    return (atomic_load_explicit(&rl->setting, memory_order_relaxed) >> 32) != 0;
}

static uint64_t hash(const struct rk_ratelimit *rl, const struct rk_rl_addr *a)
{
    uint64_t w[2];
    memcpy(w, a->b, sizeof(w));
    return mix(mix(rl->seed ^ w[0]) ^ w[1]);
}

/* b's tokens at now, without changing b. */
static uint64_t refilled(const struct bucket *b, uint32_t rate, uint32_t burst, uint64_t now)
{
    uint64_t cap = (uint64_t)burst * MICRO, t = b->tokens < cap ? b->tokens : cap;
    if (now <= b->last_ns)
        return t;
    /* rate tokens per second = rate / 1000 millionths per ns; 128 bits for
     * an idle time of years. */
    unsigned __int128 add = (unsigned __int128)(now - b->last_ns) * rate / 1000u;
    return add >= cap - t ? cap : t + (uint64_t)add;
}

/* The bucket of a in s: its own, a free or fully refilled one taken for
 * it, or the overflow bucket. */
static struct bucket *find(struct stripe *s, const struct rk_rl_addr *a, uint32_t rate,
                           uint32_t burst, uint64_t now)
{
    struct bucket *free_b = NULL, *idle = NULL;
    uint64_t cap = (uint64_t)burst * MICRO;
    for (unsigned i = 0; i < RK_RL_WAYS; i++) {
        struct bucket *b = &s->b[i];
        if (!b->used) {
            if (!free_b)
                free_b = b;
        } else if (memcmp(&b->addr, a, sizeof(*a)) == 0) {
            return b;
        } else if (refilled(b, rate, burst, now) == cap && (!idle || b->last_ns < idle->last_ns)) {
            idle = b;
        }
    }
    struct bucket *b = free_b ? free_b : idle;
    if (!b) {
        if (!s->overflow.used)
            s->overflow = (struct bucket){.tokens = cap, .last_ns = now, .used = true};
        return &s->overflow;
    }
    *b = (struct bucket){.addr = *a, .tokens = cap, .last_ns = now, .used = true};
    return b;
}

uint64_t rk_ratelimit_take(struct rk_ratelimit *rl, const struct rk_rl_addr *a, uint64_t now_ns)
{
    uint32_t rate, burst;
    rk_ratelimit_setting(rl, &rate, &burst);
    if (rate == 0)
        return 0;
    struct stripe *s = &rl->s[hash(rl, a) % RK_RL_STRIPES];
    uint64_t wait_ms = 0;
    pthread_mutex_lock(&s->mu);
    struct bucket *b = find(s, a, rate, burst, now_ns);
    b->tokens = refilled(b, rate, burst, now_ns);
    if (now_ns > b->last_ns)
        b->last_ns = now_ns;
    b->requests++;
    if (b->tokens >= MICRO) {
        b->tokens -= MICRO;
    } else {
        b->limited++;
        /* ns until one whole token: millionths missing x 1000 / rate, up. */
        uint64_t ns = ((MICRO - b->tokens) * 1000u + rate - 1) / rate;
        wait_ms = (ns + 999999u) / 1000000u;
        if (wait_ms == 0)
            wait_ms = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (wait_ms)
        atomic_fetch_add_explicit(&rl->limited, 1, memory_order_relaxed);
    return wait_ms;
}

/* Does x rank above y (refused more, then asked more)? */
static bool ranks_above(const struct rk_rl_top *x, const struct rk_rl_top *y)
{
    return x->limited != y->limited ? x->limited > y->limited : x->requests > y->requests;
}

/* Insert row into the sorted out[0..*len) of at most n rows. */
static void insert(struct rk_rl_top *out, size_t n, size_t *len, const struct rk_rl_top *row)
{
    size_t at = *len;
    while (at > 0 && ranks_above(row, &out[at - 1]))
        at--;
    if (at >= n)
        return;
    size_t keep = *len < n ? *len : n - 1;
    memmove(&out[at + 1], &out[at], (keep - at) * sizeof(*out));
    out[at] = *row;
    if (*len < n)
        (*len)++;
}

size_t rk_ratelimit_top(struct rk_ratelimit *rl, struct rk_rl_top *out, size_t n)
{
    size_t len = 0;
    struct rk_rl_top shared = {.shared = 1};
    for (unsigned i = 0; i < RK_RL_STRIPES && n > 0; i++) {
        struct stripe *s = &rl->s[i];
        pthread_mutex_lock(&s->mu);
        for (unsigned k = 0; k < RK_RL_WAYS; k++) {
            const struct bucket *b = &s->b[k];
            if (b->used) {
                struct rk_rl_top row = {
                    .addr = b->addr, .requests = b->requests, .limited = b->limited};
                insert(out, n, &len, &row);
            }
        }
        shared.requests += s->overflow.requests;
        shared.limited += s->overflow.limited;
        pthread_mutex_unlock(&s->mu);
    }
    if (shared.requests && n > 0)
        insert(out, n, &len, &shared);
    return len;
}

void rk_rl_top_text(const struct rk_rl_top *row, char *out, size_t cap)
{
    if (row->shared)
        snprintf(out, cap, "other");
    else
        rk_rl_addr_text(&row->addr, out, cap);
}

uint64_t rk_ratelimit_limited(const struct rk_ratelimit *rl)
{
    return atomic_load_explicit(&rl->limited, memory_order_relaxed);
}

void rk_ratelimit_totals(struct rk_ratelimit *rl, struct rk_rl_totals *t)
{
    rk_ratelimit_setting(rl, &t->rate, &t->burst);
    t->limited = atomic_load(&rl->limited);
    t->addresses = 0;
    for (unsigned i = 0; i < RK_RL_STRIPES; i++) {
        struct stripe *s = &rl->s[i];
        pthread_mutex_lock(&s->mu);
        for (unsigned k = 0; k < RK_RL_WAYS; k++)
            t->addresses += s->b[k].used;
        pthread_mutex_unlock(&s->mu);
    }
}

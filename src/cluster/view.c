/* Cluster views (see view.h). The slot's mutex guards only the pointer
 * swap and the reference taken under it; views themselves are immutable. */
#include "cluster/view.h"

#include <stdlib.h>
#include <string.h>

void rk_view_slot_init(struct rk_view_slot *s)
{
    pthread_mutex_init(&s->lock, NULL);
    s->cur = NULL;
    s->epoch = 0;
}

void rk_view_slot_fini(struct rk_view_slot *s)
{
    rk_view_release(s->cur);
    s->cur = NULL;
    pthread_mutex_destroy(&s->lock);
}

struct rk_view *rk_view_build(const struct rk_members *t, uint32_t partitions, uint32_t replicas)
{
    struct rk_view *v = calloc(1, sizeof(*v));
    const char **ids = calloc(t->n, sizeof(*ids));
    if (v)
        v->m = calloc(t->n, sizeof(*v->m));
    if (!v || !ids || !v->m)
        goto fail;
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct rk_member *e = &t->m[i];
        struct rk_view_member *m = &v->m[i];
        memcpy(m->id, e->id, sizeof(m->id));
        memcpy(m->peer_addr, e->peer_addr, sizeof(m->peer_addr));
        bool own_stop = i == t->self && e->state == RK_MEMBER_DEAD;
        m->state = own_stop ? RK_MEMBER_ALIVE : e->state;
        m->stopped = i != t->self && e->stopped;
        if (e->state != RK_MEMBER_LEFT)
            ids[k++] = e->id;
    }
    v->n = t->n;
    v->self = t->self;
    if (rk_ring_build(&v->ring, ids, k, partitions, replicas) < 0)
        goto fail;
    atomic_init(&v->refs, 1);
    free(ids);
    return v;
fail:
    free(ids);
    if (v)
        free(v->m);
    free(v);
    return NULL;
}

void rk_view_publish(struct rk_view_slot *s, struct rk_view *v)
{
    pthread_mutex_lock(&s->lock);
    struct rk_view *old = s->cur;
    v->epoch = ++s->epoch;
    s->cur = v;
    pthread_mutex_unlock(&s->lock);
    rk_view_release(old);
}

struct rk_view *rk_view_acquire(struct rk_view_slot *s)
{
    pthread_mutex_lock(&s->lock);
    struct rk_view *v = s->cur;
    if (v)
        atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&s->lock);
    return v;
}

void rk_view_release(struct rk_view *v)
{
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    rk_ring_free(v->ring);
    free(v->m);
    free(v);
}

const struct rk_view_member *rk_view_find(const struct rk_view *v, const char *id)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v->m[mid].id, id);
        if (c == 0)
            return &v->m[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool rk_view_up(const struct rk_view_member *m)
{
    return m->state == RK_MEMBER_ALIVE || m->state == RK_MEMBER_LEAVING;
}

size_t rk_view_up_replicas(const struct rk_view *v, uint32_t partition, size_t *n)
{
    const char *ids[RK_RING_REPLICAS_MAX];
    size_t len = rk_ring_preference(v->ring, partition, ids, RK_RING_REPLICAS_MAX), up = 0;
    for (size_t i = 0; i < len; i++) {
        const struct rk_view_member *m = rk_view_find(v, ids[i]);
        if (m && rk_view_up(m))
            up++;
    }
    *n = len;
    return up;
}

uint32_t rk_view_short_partitions(const struct rk_view *v, uint32_t need, uint32_t *first)
{
    uint32_t parts = rk_ring_partitions(v->ring), nshort = 0;
    *first = 0;
    for (uint32_t p = 0; p < parts; p++) {
        size_t n;
        if (rk_view_up_replicas(v, p, &n) >= need)
            continue;
        if (nshort++ == 0)
            *first = p;
    }
    return nshort;
}

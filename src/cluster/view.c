/* Cluster views (see view.h). The slot's mutex guards only the pointer
 * swap and the reference taken under it; views themselves are immutable. */
#include "cluster/view.h"
#include "cluster/placement.h"

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

/* hv[i]: member i's holdings, looked up once per build (not once per
 * partition and replica: the lookup is a search by id). */
struct holds_ctx {
    const struct rk_view_in *in;
    const struct rk_view *v;
    const struct rk_holdings **hv;
    uint32_t p;
};

static bool holds(void *arg, const char *id)
{
    struct holds_ctx *c = arg;
    const struct rk_view_member *m = rk_view_find(c->v, id);
    if (!m || m->state == RK_MEMBER_LEFT)
        return false;
    if (m == &c->v->m[c->v->self])
        return rk_view_holds(c->v, c->p);
    if (!c->in)
        return true;
    const struct rk_holdings *h = c->hv[m - c->v->m];
    return h && rk_holdings_has(h, c->p);
}

/* Serve and Pending of every partition (placement.h), as indices. The
 * walk is taken only for partitions whose holders in Pref fall short. */
static void place_all(struct rk_view *v, const struct rk_ring *walk_ring, uint32_t replicas,
                      const struct rk_view_in *in)
{
    uint32_t parts = rk_ring_partitions(v->ring);
    const char *pref[RK_RING_REPLICAS_MAX], *walk[RK_MEMBERS_MAX];
    const struct rk_holdings *hv[RK_MEMBERS_MAX];
    for (size_t i = 0; in && i < v->n; i++)
        hv[i] = in->holdings(in->arg, v->m[i].id);
    struct holds_ctx c = {in, v, hv, 0};
    for (uint32_t p = 0; p < parts; p++) {
        size_t np = rk_ring_preference(v->ring, p, pref, RK_RING_REPLICAS_MAX), nw = 0;
        c.p = p;
        size_t have = 0;
        for (size_t i = 0; i < np; i++)
            have += holds(&c, pref[i]);
        if (have < replicas)
            nw = rk_ring_walk(walk_ring, p, walk, RK_MEMBERS_MAX);
        struct rk_place pl;
        rk_place_compute(pref, np, walk, nw, replicas, holds, &c, &pl);
        struct rk_view_part *vp = &v->part[p];
        vp->nserve = pl.nserve, vp->npend = pl.npend;
        for (size_t i = 0; i < pl.nserve; i++)
            vp->serve[i] = (uint16_t)(rk_view_find(v, pl.serve[i]) - v->m);
        for (size_t i = 0; i < pl.npend; i++) {
            vp->pend[i] = (uint16_t)(rk_view_find(v, pl.pend[i]) - v->m);
            vp->partner[i] = pl.partner[i];
        }
    }
}

/* heard_all: every member up other than self has known holdings. */
static void note_heard(struct rk_view *v, const struct rk_view_in *in)
{
    v->heard_all = true;
    for (size_t i = 0; in && i < v->n && v->heard_all; i++) {
        if (i == v->self || !rk_view_up(&v->m[i]) || in->holdings(in->arg, v->m[i].id))
            continue;
        v->heard_all = false;
        memcpy(v->unheard, v->m[i].id, sizeof(v->unheard));
    }
}

struct rk_view *rk_view_build(const struct rk_members *t, uint32_t partitions, uint32_t replicas,
                              const struct rk_view_in *in)
{
    struct rk_view *v = calloc(1, sizeof(*v));
    const char **ids = calloc(t->n, sizeof(*ids)), **all = calloc(t->n, sizeof(*all));
    struct rk_ring *walk_ring = NULL;
    if (v) {
        v->m = calloc(t->n, sizeof(*v->m));
        v->part = calloc(partitions ? partitions : 1, sizeof(*v->part));
        v->held = calloc((partitions + 7) / 8 + 1, 1);
    }
    if (!v || !ids || !all || !v->m || !v->part || !v->held)
        goto fail;
    const struct rk_holdings *own = in ? in->holdings(in->arg, t->m[t->self].id) : NULL;
    if (own)
        memcpy(v->held, own->held, (partitions + 7) / 8);
    else if (!in)
        memset(v->held, 0xff, (partitions + 7) / 8);
    size_t k = 0, ka = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct rk_member *e = &t->m[i];
        struct rk_view_member *m = &v->m[i];
        memcpy(m->id, e->id, sizeof(m->id));
        memcpy(m->peer_addr, e->peer_addr, sizeof(m->peer_addr));
        bool own_stop = i == t->self && e->state == RK_MEMBER_DEAD;
        m->state = own_stop ? RK_MEMBER_ALIVE : e->state;
        m->stopped = i != t->self && e->stopped;
        if (e->state != RK_MEMBER_LEFT)
            all[ka++] = e->id;
        if (e->state != RK_MEMBER_LEFT && e->state != RK_MEMBER_LEAVING)
            ids[k++] = e->id;
    }
    v->n = t->n;
    v->self = t->self;
    v->agreed = in ? in->agreed : true;
    v->agreed_since_ms = in ? in->agreed_since_ms : 0;
    if (rk_ring_build(&v->ring, ids, k, partitions, replicas) < 0 ||
        (ka != k && rk_ring_build(&walk_ring, all, ka, partitions, replicas) < 0))
        goto fail;
    place_all(v, walk_ring ? walk_ring : v->ring, replicas, in);
    note_heard(v, in);
    rk_ring_free(walk_ring);
    atomic_init(&v->refs, 1);
    free(ids);
    free(all);
    return v;
fail:
    rk_ring_free(walk_ring);
    free(ids);
    free(all);
    if (v) {
        rk_ring_free(v->ring);
        free(v->m);
        free(v->part);
        free(v->held);
    }
    free(v);
    return NULL;
}

bool rk_view_owns(const struct rk_view *v, uint32_t p)
{
    const char *ids[RK_RING_REPLICAS_MAX];
    size_t n = rk_ring_preference(v->ring, p, ids, RK_RING_REPLICAS_MAX);
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], v->m[v->self].id) == 0)
            return true;
    return false;
}

bool rk_view_serves(const struct rk_view *v, uint32_t p)
{
    const struct rk_view_part *vp = &v->part[p];
    for (size_t i = 0; i < vp->nserve; i++)
        if (vp->serve[i] == v->self)
            return true;
    return false;
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
    free(v->part);
    free(v->held);
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
    const struct rk_view_part *vp = &v->part[partition];
    size_t up = 0;
    for (size_t i = 0; i < vp->nserve; i++)
        up += rk_view_up(&v->m[vp->serve[i]]);
    *n = vp->nserve;
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

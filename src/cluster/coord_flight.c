/* Writes the coordinator sends for their own sake (see coord_int.h):
 * hint deliveries (hinted handoff) and read repairs. Each is a tracked
 * "flight", so it counts against its peer's limit and expires.
 */
#include "cluster/coord_int.h"
#include "util/clock.h"

#include <stdlib.h>
#include <string.h>

static size_t offer(struct rk_coord *c, struct peer *p, size_t room);

struct offer {
    struct rk_coord *c;
    struct peer *p;
};

uint64_t coord_mono_ms(void)
{
    return rk_clock_mono_ns() / 1000000;
}

static void back_off(struct peer *p)
{
    uint64_t b = p->hint_backoff_ms * 2;
    p->hint_backoff_ms = b < HINT_BACKOFF_MIN_MS   ? HINT_BACKOFF_MIN_MS
                         : b > HINT_BACKOFF_MAX_MS ? HINT_BACKOFF_MAX_MS
                                                   : b;
    p->hint_after_ms = coord_mono_ms() + p->hint_backoff_ms;
}

void coord_flight_end(struct rk_coord *c, struct flight *f)
{
    struct peer *p = f->p;
    p->inflight--;
    if (f->kind == FLIGHT_HINT)
        p->hint_flights--;
    free(f->key);
    memset(f, 0, sizeof(*f));
    coord_pump(c, p);
}

/* Send m to p as flights[k]; false when the peer has no room, no flight
 * slot is free, or the send failed (a repair is then skipped; a hint
 * waits for the next offer). */
bool coord_flight_send(struct rk_coord *c, struct peer *p, uint8_t kind, const struct rk_msg *m,
                       uint64_t lv)
{
    uint32_t k = 0;
    while (k < FLIGHTS && c->flights[k].used)
        k++;
    if (k == FLIGHTS || !coord_peer_room(p))
        return false;
    uint8_t *key = malloc(m->klen ? m->klen : 1);
    if (!key)
        return false;
    memcpy(key, m->key, m->klen);
    if (coord_peer_send(c, p, m, 0x80000000u | (FLIGHT_BASE + k) << 4) < 0) {
        free(key);
        return false;
    }
    c->flights[k] = (struct flight){.used = true,
                                    .kind = kind,
                                    .p = p,
                                    .key = key,
                                    .klen = m->klen,
                                    .lv = lv,
                                    .deadline_ms = coord_mono_ms() + c->env.request_timeout_ms};
    if (kind == FLIGHT_HINT)
        p->hint_flights++;
    return true;
}

/* A refused hint is moot when its target neither serves nor is receiving
 * the key's partition any more (a displaced owner that dropped its copy,
 * a transfer cancelled by a newer change): the write is on the partition's
 * replicas, so the hint goes as delivered instead of blocking the
 * target's queue until hints.max_age. */
static bool hint_moot(struct rk_coord *c, const struct peer *p, const struct flight *f)
{
    struct rk_view *v = rk_view_acquire(c->env.views);
    if (!v)
        return false;
    uint32_t part = rk_ring_partition_of(f->key, f->klen, rk_ring_partitions(v->ring));
    const struct rk_view_part *vp = &v->part[part];
    bool wanted = false;
    for (size_t i = 0; i < vp->nserve && !wanted; i++)
        wanted = strcmp(v->m[vp->serve[i]].id, p->id) == 0;
    for (size_t i = 0; i < vp->npend && !wanted; i++)
        wanted = strcmp(v->m[vp->pend[i]].id, p->id) == 0;
    rk_view_release(v);
    return !wanted;
}

void coord_flight_answer(struct rk_coord *c, struct peer *p, uint32_t k, const struct rk_msg *rep)
{
    struct flight *f = &c->flights[k];
    if (!f->used || f->p != p)
        return; /* expired already */
    if (f->kind == FLIGHT_REPAIR) {
        coord_flight_end(c, f);
        return;
    }
    bool ok = rep->status == RK_ST_OK || (rep->status == RK_ST_REFUSED && hint_moot(c, p, f));
    if (ok) {
        rk_hints_delivered(c->env.hints, p->id, f->key, f->klen, f->lv,
                           rk_hlc_now(c->env.hlc, rk_clock_wall_ms()));
        c->stats.hints_delivered++;
        p->hint_backoff_ms = 0;
    } else {
        back_off(p);
    }
    coord_flight_end(c, f);
    if (ok)
        offer(c, p, FLIGHTS); /* keep the hand-off streaming while p answers */
}

static void deliver(const struct rk_hint *h, void *arg)
{
    struct offer *o = arg;
    struct rk_msg m = {.opcode = RK_OP_RPUT,
                       .key = h->key,
                       .klen = h->klen,
                       .has_key = true,
                       .version = h->version,
                       .has_version = true,
                       .expiry_ms = h->expiry_ms,
                       .has_expiry = h->expiry_ms != 0,
                       .tombstone = h->tombstone,
                       .has_tombstone = h->tombstone};
    if (!h->tombstone)
        m.val = h->val, m.vlen = h->vlen, m.has_val = true;
    coord_flight_send(o->c, o->p, FLIGHT_HINT, &m, h->local_version);
}

/* Offer the next batch of p's hints, unless one is out or p is backed off. */
static size_t offer(struct rk_coord *c, struct peer *p, size_t room)
{
    if (p->hint_flights || coord_mono_ms() < p->hint_after_ms ||
        !rk_hints_pending(c->env.hints, p->id))
        return 0;
    struct offer o = {c, p};
    return rk_hints_each(c->env.hints, p->id, room < HINT_BATCH ? room : HINT_BATCH, deliver, &o);
}

/* Every TICK_S (coord.c): expire deliveries that got no answer, then offer
 * the hints of every member that is up, one hint batch per member at a
 * time (the next goes as soon as one is acknowledged: see
 * coord_flight_answer). */
void coord_flights_tick(struct rk_coord *c, uint64_t now)
{
    size_t free_flights = 0;
    for (uint32_t k = 0; k < FLIGHTS; k++) {
        struct flight *f = &c->flights[k];
        if (f->used && now >= f->deadline_ms) {
            if (f->kind == FLIGHT_HINT)
                back_off(f->p);
            coord_flight_end(c, f);
        }
        free_flights += !f->used;
    }
    if (!c->env.hints)
        return;
    struct rk_view *v = rk_view_acquire(c->env.views);
    for (size_t i = 0; v && i < v->n && free_flights; i++) {
        const struct rk_view_member *m = &v->m[i];
        if (!rk_view_up(m) || rk_hints_pending(c->env.hints, m->id) == 0)
            continue;
        struct peer *p = coord_peer_get(c, m);
        if (p)
            free_flights -= offer(c, p, free_flights);
    }
    rk_view_release(v);
}

/* TRANSFERS (xferinfo.h): rows from the current view (every partition this
 * node is pending for) and the workers' transfer figures (the one under
 * way on each worker). */
#include "server/xferinfo.h"
#include "cluster/view.h"
#include "util/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct active {
    bool on;
    uint32_t part;
    char from[64];
    uint64_t keys, bytes, started_ms;
};

static void take_active(const struct rk_worker_ae *ae, void *arg)
{
    struct active *a = arg;
    const struct rk_ae_stats *l = &ae->live;
    a->on = l->xfer_active;
    a->part = l->xfer_part;
    snprintf(a->from, sizeof(a->from), "%s", l->xfer_from);
    a->keys = l->exchanging ? l->cur_pulled : 0;
    a->bytes = l->exchanging ? l->cur_bytes : 0;
    a->started_ms = l->xfer_started_ms;
}

/* Why pending partition p (this node at pend[k]) waits; its source in
 * from. */
static void waiting_why(struct rk_shared *sh, const struct rk_view *v, uint32_t p, int k,
                        unsigned active, char *from, size_t flen, char *why, size_t wlen)
{
    const struct rk_view_part *vp = &v->part[p];
    uint64_t now = rk_clock_wall_ms();
    const struct rk_view_member *src = NULL;
    if (vp->partner[k] >= 0)
        src = &v->m[vp->serve[vp->partner[k]]];
    for (size_t i = 0; !src && i < vp->nserve; i++)
        if (rk_view_up(&v->m[vp->serve[i]]))
            src = &v->m[vp->serve[i]];
    snprintf(from, flen, "%s", src ? src->id : "");
    unsigned max = atomic_load(&sh->xfer.max_concurrent);
    if (!v->agreed)
        snprintf(why, wlen, "waiting for every member to see the same members");
    else if (now < v->agreed_since_ms + sh->cfg.request_timeout_ms)
        snprintf(why, wlen, "placement agreed; waiting a request timeout for older writes");
    else if (!src)
        snprintf(why, wlen, "no source: no holder of the partition is up");
    else if (!rk_view_up(src))
        snprintf(why, wlen, "source %s down", src->id);
    else if (active >= max)
        snprintf(why, wlen, "limit reached (transfers.max_concurrent = %u)", max);
    else
        snprintf(why, wlen, "queued");
}

/* This node's slot in p's pending list, or -1. */
static int pending_slot(const struct rk_view *v, uint32_t p)
{
    const struct rk_view_part *vp = &v->part[p];
    for (int j = 0; j < vp->npend; j++)
        if (vp->pend[j] == v->self)
            return j;
    return -1;
}

bool rk_xferinfo_receiving(const struct rk_view *v, uint32_t p)
{
    return pending_slot(v, p) >= 0 && !rk_view_holds(v, p);
}

/* One row: streaming when its worker's transfer under way is p's. */
static void row_json(struct rk_shared *sh, const struct rk_view *v, uint32_t p,
                     const struct active *act, unsigned nact, bool first, struct rk_jbuf *b)
{
    const struct active *a = &act[p % sh->nworkers];
    rk_jadd(b, "%s{\"partition\":%u,\"from\":", first ? "" : ",", p);
    if (a->on && a->part == p) {
        rk_jstr(b, a->from);
        rk_jadd(b,
                ",\"state\":\"streaming\",\"keys_done\":%llu,\"bytes_done\":%llu,"
                "\"started_ms\":%llu,\"why\":\"\"}",
                (unsigned long long)a->keys, (unsigned long long)a->bytes,
                (unsigned long long)a->started_ms);
        return;
    }
    char from[64], why[128];
    waiting_why(sh, v, p, pending_slot(v, p), nact, from, sizeof(from), why, sizeof(why));
    rk_jstr(b, from);
    rk_jadd(b, ",\"state\":\"waiting\",\"keys_done\":0,\"bytes_done\":0,\"started_ms\":0,"
               "\"why\":");
    rk_jstr(b, why);
    rk_jadd(b, "}");
}

int rk_xferinfo_rows(struct rk_shared *sh, const struct rk_view *v, struct rk_jbuf *b)
{
    struct active *act = calloc(sh->nworkers, sizeof(*act));
    if (!act)
        return -ENOMEM;
    unsigned nact = 0;
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        rk_worker_ae_read(sh->workers[i], take_active, &act[i]);
        nact += act[i].on;
    }
    rk_jadd(b, "\"receiving\":[");
    bool first = true;
    for (uint32_t p = 0; p < sh->partitions; p++) {
        if (!rk_xferinfo_receiving(v, p))
            continue;
        row_json(sh, v, p, act, nact, first, b);
        first = false;
    }
    rk_jadd(b, "]");
    free(act);
    return 0;
}

enum rk_status rk_admin_transfers(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_view *v = rk_view_acquire(&sh->views);
    if (!v) {
        rk_jadd(b, "no cluster view yet; retry");
        return RK_ST_UNAVAILABLE;
    }
    uint32_t held = 0;
    for (uint32_t p = 0; p < sh->partitions; p++)
        held += rk_view_holds(v, p);
    struct rk_jbuf rows = {0};
    if (rk_xferinfo_rows(sh, v, &rows) < 0) {
        rk_view_release(v);
        rk_jadd(b, "out of memory");
        return RK_ST_INTERNAL;
    }
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, sh->node_id);
    rk_jadd(b, ",\"max_concurrent\":%u,\"max_bytes_per_second\":%llu,\"held\":%u,\"agreed\":%s,",
            atomic_load(&sh->xfer.max_concurrent),
            (unsigned long long)atomic_load(&sh->xfer.max_bytes_per_second), held,
            v->agreed ? "true" : "false");
    rk_jbuf_move(b, &rows);
    rk_jadd(b, "}");
    rk_view_release(v);
    return RK_ST_OK;
}

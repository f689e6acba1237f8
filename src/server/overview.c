/* OVERVIEW (overview.h): the dashboard's one request per node, built from
 * the figures the other admin replies use. */
#include "server/overview.h"
#include "server/admin_int.h"
#include "server/xferinfo.h"
#include "cluster/view.h"
#include "util/clock.h"
#include "util/events.h"
#include "util/histo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARG_PLACEMENT "placement"

/* Whether req asks for the placement; false with the error line in b when
 * its KEY is something else. */
static bool want_placement(const struct rk_msg *req, bool *placement, struct rk_jbuf *b)
{
    *placement = false;
    if (!req->has_key)
        return true;
    size_t n = strlen(ARG_PLACEMENT);
    if (req->klen == n && memcmp(req->key, ARG_PLACEMENT, n) == 0) {
        *placement = true;
        return true;
    }
    char shown[41]; /* the argument in the error line: printable, and short */
    size_t k = req->klen < sizeof(shown) - 1 ? req->klen : sizeof(shown) - 1;
    for (size_t i = 0; i < k; i++)
        shown[i] = req->key[i] >= 0x20 && req->key[i] < 0x7f ? (char)req->key[i] : '?';
    shown[k] = '\0';
    rk_jadd(b, "overview: unknown argument \"%s\"%s; the only one is \"" ARG_PLACEMENT "\"", shown,
            req->klen > k ? "..." : "");
    return false;
}

static void head_json(struct rk_shared *sh, const struct rk_worker_stats *t, uint64_t now,
                      struct rk_jbuf *b)
{
    const struct rk_config *c = &sh->cfg;
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, sh->node_id);
    rk_jadd(b,
            ",\"state\":\"%s\",\"uptime_s\":%llu,\"now_ms\":%llu,\"partitions\":%u,"
            "\"replicas\":%u,\"read_quorum\":%u,\"write_quorum\":%u,"
            "\"requests\":{\"get\":%llu,\"put\":%llu,\"del\":%llu,\"admin\":%llu},"
            "\"busy\":%llu,\"errors\":%llu,",
            rk_admin_state(sh),
            (unsigned long long)(now > sh->start_ms ? (now - sh->start_ms) / 1000 : 0),
            (unsigned long long)now, sh->partitions, c->replicas, c->read_quorum, c->write_quorum,
            (unsigned long long)t->gets, (unsigned long long)t->puts, (unsigned long long)t->dels,
            (unsigned long long)t->other, (unsigned long long)t->busy,
            (unsigned long long)t->errors);
}

static void latency_json(const struct rk_histo *h, struct rk_jbuf *b)
{
    rk_jadd(b, "\"latency\":{\"bounds_us\":[");
    for (unsigned i = 0; i < RK_HISTO_BOUNDS; i++)
        rk_jadd(b, "%s%llu", i ? "," : "", (unsigned long long)rk_histo_bound(i));
    rk_jadd(b, "],\"counts\":[");
    for (unsigned i = 0; i < RK_HISTO_SLOTS; i++)
        rk_jadd(b, "%s%llu", i ? "," : "", (unsigned long long)h->counts[i]);
    rk_jadd(b, "]},");
}

/* ---- partition bitmaps ---- */

/* One bitmap: a nibble per 4 partitions (overview.h). */
struct bitmap {
    uint8_t *nib;
    size_t len; /* ceil(partitions / 4) */
};

static void bit_set(struct bitmap *m, uint32_t p)
{
    m->nib[p / 4] |= (uint8_t)(1u << (p % 4));
}

/* "name":"<hex>", */
static void bitmap_json(const char *name, const struct bitmap *m, struct rk_jbuf *b)
{
    static const char hex[] = "0123456789abcdef";
    rk_jadd(b, "\"%s\":\"", name);
    for (size_t i = 0; i < m->len; i++)
        m->nib[i] = (uint8_t)hex[m->nib[i] & 0xF]; /* in place: each nibble once */
    rk_jaddn(b, m->nib, m->len);
    rk_jadd(b, "\",");
}

struct marks_ctx {
    struct rk_shared *sh;
    uint32_t worker;
    struct bitmap *m;
};

/* The partitions a worker's published progress has marked. */
static void marks_of(const struct rk_worker_ae *ae, void *arg)
{
    struct marks_ctx *c = arg;
    for (uint32_t p = c->worker; p < c->sh->partitions; p += c->sh->nworkers)
        if (rk_aeprogress_marks(ae->progress, p))
            bit_set(c->m, p);
}

/* "held", "pending" (from the view; empty without one) and "marked". */
static int bitmaps_json(struct rk_shared *sh, const struct rk_view *v, struct rk_jbuf *b)
{
    size_t len = (sh->partitions + 3) / 4;
    uint8_t *nib = calloc(3, len);
    if (!nib)
        return -1;
    struct bitmap held = {nib, len}, pend = {nib + len, len}, marked = {nib + 2 * len, len};
    for (uint32_t p = 0; v && p < sh->partitions; p++) {
        if (rk_view_holds(v, p))
            bit_set(&held, p);
        if (rk_xferinfo_receiving(v, p))
            bit_set(&pend, p);
    }
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        struct marks_ctx c = {sh, i, &marked};
        rk_worker_ae_read(sh->workers[i], marks_of, &c);
    }
    bitmap_json("held", &held, b);
    bitmap_json("pending", &pend, b);
    bitmap_json("marked", &marked, b);
    free(nib);
    return 0;
}

/* ---- hints ---- */

/* "hints":{...}: the totals, and the workers' per-target counts merged. */
static int hints_json(struct rk_shared *sh, const struct rk_worker_stats *t, struct rk_jbuf *b)
{
    size_t cap = (size_t)sh->nworkers * RK_WORKER_HINT_TARGETS, n = 0;
    struct rk_hints_target *all = calloc(cap, sizeof(*all));
    struct rk_hints_target one[RK_WORKER_HINT_TARGETS];
    if (!all)
        return -1;
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        size_t k = rk_worker_hint_targets(sh->workers[i], one, RK_WORKER_HINT_TARGETS);
        for (size_t j = 0; j < k; j++) {
            size_t at = 0;
            while (at < n && strcmp(all[at].id, one[j].id) != 0)
                at++;
            if (at == n)
                memcpy(all[n++].id, one[j].id, sizeof(one[j].id));
            all[at].count += one[j].count;
            all[at].bytes += one[j].bytes;
        }
    }
    rk_jadd(b, "\"hints\":{\"pending\":%llu,\"pending_bytes\":%llu,\"by_target\":{",
            (unsigned long long)t->hints.pending, (unsigned long long)t->hints.pending_bytes);
    for (size_t i = 0; i < n; i++) {
        rk_jadd(b, "%s", i ? "," : "");
        rk_jstr(b, all[i].id);
        rk_jadd(b, ":%llu", (unsigned long long)all[i].count);
    }
    rk_jadd(b, "}},");
    free(all);
    return 0;
}

/* ---- anti-entropy ---- */

struct peers_ctx {
    const char *const *ids;
    size_t n;
    struct rk_aeprogress_last *last;
};

static void fold_peers(const struct rk_worker_ae *ae, void *arg)
{
    struct peers_ctx *c = arg;
    rk_aeprogress_peers_latest(ae->progress, c->ids, c->n, c->last);
}

/* "peers":[...]: every member of v but this node and the ones that left,
 * with its latest exchange over every worker's partitions. v's members
 * are sorted by id, as the fold wants them. */
static int peers_json(struct rk_shared *sh, const struct rk_view *v, struct rk_jbuf *b)
{
    size_t n = 0;
    const char **ids = v ? calloc(v->n ? v->n : 1, sizeof(*ids)) : NULL;
    struct rk_aeprogress_last *last = v ? calloc(v->n ? v->n : 1, sizeof(*last)) : NULL;
    if (v && (!ids || !last)) {
        free(ids);
        free(last);
        return -1;
    }
    for (size_t i = 0; v && i < v->n; i++)
        if (i != v->self && v->m[i].state != RK_MEMBER_LEFT)
            ids[n++] = v->m[i].id;
    struct peers_ctx c = {ids, n, last};
    for (uint32_t i = 0; n && i < sh->nworkers; i++)
        rk_worker_ae_read(sh->workers[i], fold_peers, &c);
    rk_jadd(b, "\"peers\":[");
    for (size_t i = 0; i < n; i++) {
        rk_jadd(b, "%s{\"node\":", i ? "," : "");
        rk_jstr(b, ids[i]);
        rk_jadd(b, ",\"result\":\"%s\",\"ok_ms\":%llu,\"last_ms\":%llu}",
                rk_ae_result_name(last[i].result), (unsigned long long)last[i].ok_ms,
                (unsigned long long)last[i].last_ms);
    }
    rk_jadd(b, "]");
    free(ids);
    free(last);
    return 0;
}

/* "ae":{...}: AE's summary figures (the same computation, admin_int.h). */
static int ae_json(struct rk_shared *sh, const struct rk_view *v, const struct rk_admin_ae *n,
                   uint64_t now, struct rk_jbuf *b)
{
    const struct rk_aeprogress_summary *s = &n->s;
    struct rk_aeprogress_rates r;
    rk_aeprogress_rates(s, now, &r);
    rk_jadd(b,
            "\"ae\":{\"enabled\":%s,\"round\":%llu,\"in_progress\":%s,\"compared\":%u,"
            "\"total\":%u,\"keys_repaired\":%llu,\"bytes\":%llu,\"keys_per_second\":%.1f,"
            "\"max_keys_per_second\":%u,\"eta_s\":",
            atomic_load(&sh->ae.enabled) ? "true" : "false", (unsigned long long)s->round,
            s->in_progress ? "true" : "false", s->compared, s->total,
            (unsigned long long)(s->pulled + s->pushed), (unsigned long long)s->bytes,
            r.keys_per_second, atomic_load(&sh->ae.max_keys_per_second));
    if (r.has_eta)
        rk_jadd(b, "%.0f", r.eta_s);
    else
        rk_jadd(b, "null");
    rk_jadd(b, ",\"finished_ms\":%llu,\"marked\":%u,", (unsigned long long)s->finished_ms,
            s->marked);
    if (peers_json(sh, v, b) < 0)
        return -1;
    rk_jadd(b, "},");
    return 0;
}

/* ---- transfers, events, placement ---- */

static int transfers_json(struct rk_shared *sh, const struct rk_view *v,
                          const struct rk_admin_ae *n, struct rk_jbuf *b)
{
    rk_jadd(b, "\"transfers\":{");
    rk_admin_xfer_json(n, b);
    rk_jadd(b, ",");
    if (!v)
        rk_jadd(b, "\"receiving\":[]");
    else if (rk_xferinfo_rows(sh, v, b) < 0)
        return -1;
    rk_jadd(b, "},");
    return 0;
}

static void events_json(struct rk_jbuf *b)
{
    struct rk_event ev[RK_OVERVIEW_EVENTS];
    size_t n = rk_events_last(ev, RK_OVERVIEW_EVENTS);
    rk_jadd(b, "\"events\":[");
    for (size_t i = 0; i < n; i++) {
        rk_jadd(b, "%s{\"seq\":%llu,\"ms\":%llu,\"kind\":\"%s\",\"text\":", i ? "," : "",
                (unsigned long long)ev[i].seq, (unsigned long long)ev[i].ms,
                rk_event_kind_name(ev[i].kind));
        rk_jstr(b, ev[i].text);
        rk_jadd(b, "}");
    }
    rk_jadd(b, "]");
}

/* [[i,...],...]: one list of member indices per partition. */
static void lists_json(const struct rk_view *v, uint32_t parts, bool serve, struct rk_jbuf *b)
{
    rk_jadd(b, "[");
    for (uint32_t p = 0; p < parts; p++) {
        const struct rk_view_part *vp = &v->part[p];
        const uint16_t *m = serve ? vp->serve : vp->pend;
        unsigned n = serve ? vp->nserve : vp->npend;
        rk_jadd(b, "%s[", p ? "," : "");
        for (unsigned i = 0; i < n; i++)
            rk_jadd(b, "%s%u", i ? "," : "", m[i]);
        rk_jadd(b, "]");
    }
    rk_jadd(b, "]");
}

/* ,"placement":{...}: Serve and Pending of every partition in v. */
static void placement_json(const struct rk_view *v, uint32_t parts, struct rk_jbuf *b)
{
    rk_jadd(b, ",\"placement\":{\"members\":[");
    for (size_t i = 0; i < v->n; i++) {
        rk_jadd(b, "%s", i ? "," : "");
        rk_jstr(b, v->m[i].id);
    }
    rk_jadd(b, "],\"serve\":");
    lists_json(v, parts, true, b);
    rk_jadd(b, ",\"pending\":");
    lists_json(v, parts, false, b);
    rk_jadd(b, "}");
}

enum rk_status rk_admin_overview(struct rk_shared *sh, const struct rk_msg *req, struct rk_jbuf *b)
{
    bool placement;
    if (!want_placement(req, &placement, b))
        return RK_ST_MALFORMED;
    struct rk_worker_stats t;
    struct rk_admin_ae n;
    struct rk_view *v = rk_view_acquire(&sh->views); /* NULL before the first view */
    uint64_t now = rk_clock_wall_ms();
    rk_admin_sum_stats(sh, &t);
    rk_admin_ae_node(sh, v, &n);
    head_json(sh, &t, now, b);
    struct rk_histo lat;
    rk_opstats_client_latency(&t.ops, &lat);
    latency_json(&lat, b);
    int rc = bitmaps_json(sh, v, b);
    if (rc == 0)
        rc = hints_json(sh, &t, b);
    if (rc == 0)
        rc = ae_json(sh, v, &n, now, b);
    if (rc == 0)
        rc = transfers_json(sh, v, &n, b);
    events_json(b);
    if (placement && v)
        placement_json(v, sh->partitions, b);
    rk_jadd(b, "}");
    rk_view_release(v);
    b->oom = b->oom || rc < 0; /* an allocation failed: the reply is incomplete */
    return RK_ST_OK;
}

/* Admin replies as JSON. Field names are stable: scripts parse them. */
#include "server/admin.h"
#include "server/admin_int.h"
#include "server/overview.h"
#include "server/xferinfo.h"
#include "util/clock.h"
#include "util/histo.h"
#include "util/jbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STALL_NS    (2ull * 1000000000) /* a loop silent this long is not turning */
#define VERSION_STR "0.1.0"

/* The buffer's text, or NULL (freed) if an append ran out of memory. */
static char *jtake(struct rk_jbuf *b)
{
    if (!b->oom)
        return b->p;
    free(b->p);
    return NULL;
}

static const char *stalled_worker(struct rk_shared *sh, uint32_t *idx)
{
    uint64_t now = rk_clock_mono_ns();
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        if (now - rk_worker_heartbeat(sh->workers[i]) > STALL_NS) {
            *idx = i;
            return "a worker loop has not turned for over 2 s";
        }
    }
    return NULL;
}

void rk_admin_sum_stats(struct rk_shared *sh, struct rk_worker_stats *t)
{
    memset(t, 0, sizeof(*t));
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        struct rk_worker_stats s;
        rk_worker_stats(sh->workers[i], &s);
        t->puts += s.puts, t->gets += s.gets, t->dels += s.dels, t->other += s.other;
        t->busy += s.busy, t->errors += s.errors, t->forwarded += s.forwarded;
        t->replica_writes += s.replica_writes, t->replica_reads += s.replica_reads;
        struct rk_coord_stats *x = &t->coord, *y = &s.coord;
        x->coordinated += y->coordinated, x->quorum_failed += y->quorum_failed;
        x->replica_timeouts += y->replica_timeouts, x->replica_errors += y->replica_errors;
        x->replicas_down += y->replicas_down, x->read_repairs += y->read_repairs;
        x->hints_stored += y->hints_stored, x->hints_delivered += y->hints_delivered;
        x->hinted_writes += y->hinted_writes, x->evicted += y->evicted;
        x->batches_sent += y->batches_sent, x->batched_requests += y->batched_requests;
        t->batches_served += s.batches_served;
        struct rk_hints_stats *hx = &t->hints, *hy = &s.hints;
        hx->pending += hy->pending, hx->pending_bytes += hy->pending_bytes;
        hx->dropped_full += hy->dropped_full, hx->dropped_old += hy->dropped_old;
        hx->dropped_damaged += hy->dropped_damaged;
        hx->partitions_marked += hy->partitions_marked;
        struct rk_storage_stats *a = &t->storage, *b = &s.storage;
        a->keys += b->keys, a->tombstones += b->tombstones, a->segments += b->segments;
        a->disk_bytes += b->disk_bytes, a->raw_bytes += b->raw_bytes;
        a->live_bytes += b->live_bytes, a->dead_bytes += b->dead_bytes;
        a->index_bytes += b->index_bytes, a->cache_bytes += b->cache_bytes;
        a->commits += b->commits, a->fsyncs += b->fsyncs, a->synced_puts += b->synced_puts;
        rk_histo_merge(&a->fsync_us, &b->fsync_us);
        a->cache_hits += b->cache_hits, a->cache_misses += b->cache_misses;
        a->merges += b->merges, a->stale_puts += b->stale_puts;
        a->tombstones_purged += b->tombstones_purged, a->expired_purged += b->expired_purged;
        a->tombstones_held += b->tombstones_held;
        /* Workers build their trees one after another at start: the sum is
         * the time the node spent. */
        t->ae_trees_bytes += s.ae_trees_bytes, t->ae_tree_build_ms += s.ae_tree_build_ms;
        rk_opstats_merge(&t->ops, &s.ops);
    }
}

/* {"p50":..,"p99":..,"count":..}, in the histogram's unit (µs). */
static void histo_json(const struct rk_histo *h, struct rk_jbuf *b)
{
    rk_jadd(b, "{\"p50\":%llu,\"p99\":%llu,\"count\":%llu}",
            (unsigned long long)rk_histo_quantile(h, 0.5),
            (unsigned long long)rk_histo_quantile(h, 0.99), (unsigned long long)h->count);
}

/* ,"ops":{"put":{"latency_us":{..},"results":{"OK":n,..}},..}: per kept
 * operation (opstats.h), the statuses it was answered with at least once. */
static void ops_json(const struct rk_opstats *o, struct rk_jbuf *b)
{
    rk_jadd(b, ",\"ops\":{");
    for (unsigned k = 0; k < RK_OPSTAT_N; k++) {
        rk_jadd(b, "%s\"%s\":{\"latency_us\":", k ? "," : "", rk_opstat_name(k));
        histo_json(&o->latency[k], b);
        rk_jadd(b, ",\"results\":{");
        const char *sep = "";
        for (unsigned s = 0; s < RK_ST_COUNT; s++) {
            if (o->results[k][s]) {
                rk_jadd(b, "%s\"%s\":%llu", sep, rk_proto_status_name(s),
                        (unsigned long long)o->results[k][s]);
                sep = ",";
            }
        }
        rk_jadd(b, "}}");
    }
    rk_jadd(b, "},");
}

/* "rate_limit":{...}, (limits.client_rate): the setting, requests refused
 * in all, addresses with a bucket, and the top talkers. */
static void rate_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_rl_totals t;
    struct rk_rl_top top[RK_ADMIN_RATE_TOP];
    rk_ratelimit_totals(sh->ratelimit, &t);
    size_t n = rk_ratelimit_top(sh->ratelimit, top, RK_ADMIN_RATE_TOP);
    rk_jadd(b,
            "\"rate_limit\":{\"client_rate\":%u,\"client_burst\":%u,\"limited\":%llu,"
            "\"addresses\":%u,\"top\":[",
            t.rate, t.burst, (unsigned long long)t.limited, t.addresses);
    for (size_t i = 0; i < n; i++) {
        char addr[64];
        rk_rl_top_text(&top[i], addr, sizeof(addr));
        rk_jadd(b, "%s{\"address\":\"%s\",\"requests\":%llu,\"limited\":%llu}", i ? "," : "", addr,
                (unsigned long long)top[i].requests, (unsigned long long)top[i].limited);
    }
    rk_jadd(b, "]},");
}

/* "refused":{"total":N,"gossip":{"missing":N,...},...}: messages refused
 * for the cluster secret, the channels and reasons seen only (zeros stay
 * out of `kvctl status`; /metrics has every one). */
static void refused_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    uint64_t n[RK_AUTH_NCHANNELS][RK_AUTH_NREASONS], total = 0;
    for (int ch = 0; ch < RK_AUTH_NCHANNELS; ch++)
        for (int v = 0; v < RK_AUTH_NREASONS; v++)
            total += n[ch][v] = atomic_load(&sh->auth.refused[ch][v]);
    rk_jadd(b, "\"refused\":{\"total\":%llu", (unsigned long long)total);
    for (int ch = 0; ch < RK_AUTH_NCHANNELS; ch++) {
        const char *sep = "{";
        for (int v = RK_AUTH_MISSING; v < RK_AUTH_NREASONS; v++) {
            if (!n[ch][v])
                continue;
            if (sep[0] == '{')
                rk_jadd(b, ",\"%s\":", rk_auth_channel_name(ch));
            rk_jadd(b, "%s\"%s\":%llu", sep, rk_auth_reason_name(v), (unsigned long long)n[ch][v]);
            sep = ",";
        }
        if (sep[0] == ',')
            rk_jadd(b, "}");
    }
    rk_jadd(b, "}");
}

const char *rk_admin_state(struct rk_shared *sh)
{
    uint32_t idx;
    return atomic_load(&sh->stopping) ? "stopping"
           : stalled_worker(sh, &idx) ? "degraded"
                                      : "serving";
}

static void status_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_worker_stats t;
    rk_admin_sum_stats(sh, &t);
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, sh->node_id);
    rk_jadd(b, ",\"version\":\"%s\",\"cluster\":", VERSION_STR);
    rk_jstr(b, sh->cfg.cluster_name);
    rk_jadd(b,
            ",\"state\":\"%s\",\"uptime_s\":%llu,\"workers\":%u,\"partitions\":%u,"
            "\"keys\":%llu,\"inflight\":%u,\"data_dir\":",
            rk_admin_state(sh), (unsigned long long)((rk_clock_wall_ms() - sh->start_ms) / 1000),
            sh->nworkers, sh->partitions, (unsigned long long)t.storage.keys,
            atomic_load(&sh->inflight));
    rk_jstr(b, sh->cfg.data_dir);
    rk_jadd(b, ",\"listen\":{\"client\":");
    rk_jstr(b, sh->cfg.listen_client);
    rk_jadd(b, ",\"gossip\":");
    rk_jstr(b, sh->cfg.listen_gossip);
    rk_jadd(b, "},\"members\":{\"total\":%u,\"alive\":%u,\"seen\":%u},",
            atomic_load(&sh->members_total), atomic_load(&sh->members_alive),
            atomic_load(&sh->members_seen));
    bool protected_mode;
    char warning[512];
    bool exposed = rk_admin_exposed(sh, &protected_mode, warning, sizeof(warning));
    rk_jadd(b, "\"security\":{\"secret\":%s,\"tls\":%s,\"client_auth\":%s,\"protected\":%s,",
            sh->cfg.secret_file[0] ? "true" : "false", sh->cfg.tls_ca[0] ? "true" : "false",
            sh->cfg.client_auth ? "true" : "false", protected_mode ? "true" : "false");
    refused_json(sh, b);
    if (exposed) {
        rk_jadd(b, ",\"warning\":");
        rk_jstr(b, warning);
    }
    rk_jadd(b, "}}");
}

/* "connections":{"max":N,"client":{"open":..,"accepted":..,"refused":..},...}, */
static void conns_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_conns *c = &sh->conns;
    unsigned n = atomic_load(&c->n);
    rk_jadd(b, "\"connections\":{\"max\":%u", atomic_load(&c->max));
    for (unsigned i = 0; i < n; i++) {
        struct rk_conns_listener *l = &c->l[i];
        rk_jadd(b,
                ",\"%s\":{\"open\":%u,\"accepted\":%llu,\"refused\":%llu,"
                "\"refused_remote\":%llu}",
                l->name, atomic_load(&l->open), (unsigned long long)atomic_load(&l->accepted),
                (unsigned long long)atomic_load(&l->refused),
                (unsigned long long)atomic_load(&l->refused_remote));
    }
    rk_jadd(b, "},");
}

/* ---- anti-entropy: AE, REPAIR, and the stats block ---- */

static void add_summary(const struct rk_worker_ae *ae, void *arg)
{
    struct rk_admin_ae *n = arg;
    struct rk_aeprogress_summary w;
    const struct rk_ae_stats *l = &ae->live;
    rk_aeprogress_summary(ae->progress, &w);
    /* The exchange in flight is in the progress once it ends: count what it
     * moved so far now, so the counters grow key by key. */
    w.pulled += l->cur_pulled, w.totals.pulled += l->cur_pulled;
    w.pushed += l->cur_pushed, w.totals.pushed += l->cur_pushed;
    w.bytes += l->cur_bytes, w.totals.bytes += l->cur_bytes;
    w.totals.repaired += l->cur_pulled + l->cur_pushed;
    bool first = n->s.round == UINT64_MAX;
    rk_aeprogress_summary_add(&n->s, &w, first);
    n->rounds_running += l->running;
    n->exchanges_in_flight += l->exchanging;
    n->busy_pauses += l->busy_pauses;
    n->hint_marks_taken += l->hint_marks_taken;
    n->hint_marks_forwarded += l->hint_marks_forwarded;
    n->xfer_pending += l->xfer_pending;
    n->xfer_active += l->xfer_active;
    n->xfer_done += l->xfer_done;
    n->xfer_failed += l->xfer_failed;
    n->xfer_keys += l->xfer_keys;
    n->xfer_bytes += l->xfer_bytes;
    if (!n->xfer_why[0] && l->xfer_why[0] && l->xfer_pending)
        memcpy(n->xfer_why, l->xfer_why, sizeof(n->xfer_why));
    n->at_ms = first || ae->at_ms < n->at_ms ? ae->at_ms : n->at_ms;
}

static void ae_summary(struct rk_shared *sh, struct rk_admin_ae *n)
{
    memset(n, 0, sizeof(*n));
    n->s.round = UINT64_MAX; /* "no worker yet": the first one replaces it */
    for (uint32_t i = 0; i < sh->nworkers; i++)
        rk_worker_ae_read(sh->workers[i], add_summary, n);
    if (n->s.round == UINT64_MAX)
        n->s.round = 0;
}

/* "exchanges_running":..: whether a round is under way on any worker (its
 * exchanges run one after another), and how many are in flight now. */
static void ae_activity_json(const struct rk_admin_ae *n, struct rk_jbuf *b)
{
    rk_jadd(b,
            "\"exchanges_running\":%s,\"exchanges_in_flight\":%u,\"busy_pauses\":%llu,"
            "\"hint_marks_taken\":%llu,\"hint_marks_forwarded\":%llu,\"as_of_ms\":%llu",
            n->rounds_running ? "true" : "false", n->exchanges_in_flight,
            (unsigned long long)n->busy_pauses, (unsigned long long)n->hint_marks_taken,
            (unsigned long long)n->hint_marks_forwarded, (unsigned long long)n->at_ms);
}

void rk_admin_xfer_json(const struct rk_admin_ae *n, struct rk_jbuf *b)
{
    rk_jadd(b,
            "\"pending\":%u,\"active\":%u,\"done\":%llu,\"failed\":%llu,\"keys\":%llu,"
            "\"bytes\":%llu,\"waiting\":",
            n->xfer_pending, n->xfer_active, (unsigned long long)n->xfer_done,
            (unsigned long long)n->xfer_failed, (unsigned long long)n->xfer_keys,
            (unsigned long long)n->xfer_bytes);
    rk_jstr(b, n->xfer_active ? "" : n->xfer_why);
}

static void ae_stats_json(struct rk_shared *sh, const struct rk_worker_stats *t, struct rk_jbuf *b)
{
    struct rk_admin_ae n;
    ae_summary(sh, &n);
    const struct rk_aeprogress_summary *s = &n.s;
    rk_jadd(b,
            "\"antientropy\":{\"enabled\":%s,\"round\":%llu,\"round_in_progress\":%s,"
            "\"rounds\":%llu,\"partitions_compared\":%llu,\"leaves_differing\":%llu,"
            "\"keys_pulled\":%llu,\"keys_pushed\":%llu,\"keys_repaired\":%llu,\"bytes\":%llu,"
            "\"marked_partitions\":%u,\"trees_bytes\":%llu,\"tree_build_ms\":%llu,",
            atomic_load(&sh->ae.enabled) ? "true" : "false", (unsigned long long)s->round,
            s->in_progress ? "true" : "false", (unsigned long long)s->totals.rounds,
            (unsigned long long)s->totals.compared, (unsigned long long)s->totals.leaves,
            (unsigned long long)s->totals.pulled, (unsigned long long)s->totals.pushed,
            (unsigned long long)s->totals.repaired, (unsigned long long)s->totals.bytes, s->marked,
            (unsigned long long)t->ae_trees_bytes, (unsigned long long)t->ae_tree_build_ms);
    ae_activity_json(&n, b);
    rk_jadd(b, "},\"transfers\":{");
    rk_admin_xfer_json(&n, b);
    struct rk_admin_placement pl;
    struct rk_view *v = rk_view_acquire(&sh->views);
    rk_admin_placement(sh, v, &pl);
    rk_view_release(v);
    rk_jadd(b, ",\"held\":%u},", pl.held);
}

/* The partition in req's KEY (decimal), when there is one: 1 with *part,
 * 0 when there is none, or -1 with the error line in b. */
static int req_partition(struct rk_shared *sh, const struct rk_msg *req, uint32_t *part,
                         struct rk_jbuf *b)
{
    int rc = rk_proto_arg_partition(req, sh->partitions, part);
    if (rc < 0)
        rk_jadd(b, "partition %.*s is out of range: this cluster has %u partitions (0..%u)",
                (int)(req->klen > 20 ? 20 : req->klen), (const char *)req->key, sh->partitions,
                sh->partitions - 1);
    return rc < 0 ? -1 : rc;
}

/* Whether self is in part's preference list (ids/n filled either way). */
static bool holds(struct rk_shared *sh, const struct rk_view *v, uint32_t part, const char **ids,
                  size_t *n)
{
    *n = rk_ring_preference(v->ring, part, ids, RK_RING_REPLICAS_MAX);
    for (size_t i = 0; i < *n; i++)
        if (strcmp(ids[i], sh->node_id) == 0)
            return true;
    return false;
}

void rk_admin_ae_node(struct rk_shared *sh, const struct rk_view *v, struct rk_admin_ae *n)
{
    ae_summary(sh, n);
    if (!v || n->s.in_progress)
        return;
    const char *ids[RK_RING_REPLICAS_MAX];
    size_t k;
    n->s.total = 0; /* between rounds: what the next one will compare */
    for (uint32_t p = 0; p < sh->partitions; p++)
        n->s.total += holds(sh, v, p, ids, &k);
}

struct ae_row {
    struct rk_shared *sh;
    uint32_t part;
    const char **ids;
    size_t n;
    struct rk_jbuf *b;
};

static void row_json(const struct rk_worker_ae *ae, void *arg)
{
    struct ae_row *r = arg;
    rk_aeprogress_json_partition(ae->progress, r->part, r->sh->node_id, r->ids, r->n, r->b);
}

/* "partitions":[...]: partition only (shown whether this node holds it or
 * not), or else every partition this node holds; *only_held whether it
 * holds only. */
static void ae_rows_json(struct rk_shared *sh, const struct rk_view *v, int64_t only,
                         bool *only_held, struct rk_jbuf *b)
{
    const char *ids[RK_RING_REPLICAS_MAX];
    struct ae_row r = {.sh = sh, .ids = ids, .b = b};
    uint32_t rows = 0;
    rk_jadd(b, "\"partitions\":[");
    for (uint32_t p = 0; p < sh->partitions; p++) {
        bool mine = holds(sh, v, p, ids, &r.n);
        if (only == (int64_t)p)
            *only_held = mine;
        if (only >= 0 ? only != (int64_t)p : !mine)
            continue;
        r.part = p;
        rk_jadd(b, "%s", rows++ ? "," : "");
        rk_worker_ae_read(sh->workers[p % sh->nworkers], row_json, &r);
    }
    rk_jadd(b, "]");
}

static enum rk_status ae_json(struct rk_shared *sh, const struct rk_msg *req, struct rk_jbuf *b)
{
    uint32_t part = 0;
    int has = req_partition(sh, req, &part, b);
    if (has < 0)
        return RK_ST_MALFORMED;
    struct rk_view *v = rk_view_acquire(&sh->views);
    if (!v) {
        rk_jadd(b, "no cluster view yet; retry");
        return RK_ST_UNAVAILABLE;
    }
    struct rk_admin_ae n;
    rk_admin_ae_node(sh, v, &n);
    struct rk_jbuf rows = {0};
    bool only_held = false;
    ae_rows_json(sh, v, has ? (int64_t)part : -1, &only_held, &rows);
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, sh->node_id);
    rk_jadd(b,
            ",\"enabled\":%s,\"interval_ms\":%llu,\"max_keys_per_second\":%u,"
            "\"max_bytes_per_second\":%llu,",
            atomic_load(&sh->ae.enabled) ? "true" : "false",
            (unsigned long long)atomic_load(&sh->ae.interval_ms),
            atomic_load(&sh->ae.max_keys_per_second),
            (unsigned long long)atomic_load(&sh->ae.max_bytes_per_second));
    ae_activity_json(&n, b);
    uint64_t now = rk_clock_wall_ms();
    rk_jadd(b, ",\"now_ms\":%llu,", (unsigned long long)now); /* "ago" by the node's clock */
    rk_aeprogress_json_summary(&n.s, now, b);
    if (has)
        rk_jadd(b, ",\"holds_partition\":%s", only_held ? "true" : "false");
    rk_jadd(b, ",");
    rk_jbuf_move(b, &rows);
    rk_jadd(b, "}");
    rk_view_release(v);
    return RK_ST_OK;
}

/* REPAIR [P]: mark P, or every partition this node holds, to go first. */
static enum rk_status repair_json(struct rk_shared *sh, const struct rk_msg *req, struct rk_jbuf *b)
{
    uint32_t part = 0, marked = 0;
    const char *ids[RK_RING_REPLICAS_MAX];
    size_t n;
    int has = req_partition(sh, req, &part, b);
    if (has < 0)
        return RK_ST_MALFORMED;
    struct rk_view *v = rk_view_acquire(&sh->views);
    if (!v) {
        rk_jadd(b, "no cluster view yet; retry");
        return RK_ST_UNAVAILABLE;
    }
    uint64_t now = rk_clock_wall_ms();
    for (uint32_t p = has ? part : 0; p < (has ? part + 1 : sh->partitions); p++)
        if (holds(sh, v, p, ids, &n) &&
            rk_worker_ae_request(sh->workers[p % sh->nworkers], p, now) == 0)
            marked++;
    rk_view_release(v);
    struct rk_admin_ae an;
    ae_summary(sh, &an);
    if (has && !marked) {
        rk_jadd(b,
                "%s holds no replica of partition %u; ask one of its replicas (kvctl ae "
                "--partition %u lists them)",
                sh->node_id, part, part);
        return RK_ST_REFUSED;
    }
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, sh->node_id);
    rk_jadd(b, ",\"partition\":");
    rk_jadd(b, has ? "%u" : "null", part);
    rk_jadd(b,
            ",\"partitions_marked\":%u,\"requested_ms\":%llu,\"exchanges_running\":%s,"
            "\"message\":\"%u partition%s marked to go first in anti-entropy on ",
            marked, (unsigned long long)now, an.rounds_running ? "true" : "false", marked,
            marked == 1 ? "" : "s");
    rk_jaddn(b, sh->node_id, strlen(sh->node_id)); /* an identifier: nothing to escape */
    rk_jadd(b, "\"}");
    return RK_ST_OK;
}

void rk_admin_placement(struct rk_shared *sh, const struct rk_view *v,
                        struct rk_admin_placement *pl)
{
    memset(pl, 0, sizeof(*pl));
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        if (v->m[i].state < RK_MEMBER_NSTATES)
            pl->members[v->m[i].state]++;
    uint32_t parts = rk_ring_partitions(v->ring);
    for (uint32_t p = 0; p < parts; p++) {
        pl->held += rk_view_holds(v, p);
        pl->pending += rk_xferinfo_receiving(v, p);
        pl->under += v->part[p].nserve < sh->cfg.replicas;
    }
    pl->without_quorum = rk_view_short_partitions(v, sh->cfg.write_quorum, &pl->first_short);
}

static void stats_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_worker_stats t;
    rk_admin_sum_stats(sh, &t);
    const struct rk_storage_stats *s = &t.storage;
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, sh->node_id);
    rk_jadd(b,
            ",\"requests\":{\"put\":%llu,\"get\":%llu,\"del\":%llu,\"admin\":%llu},"
            "\"busy\":%llu,\"errors\":%llu,\"forwarded\":%llu,\"inflight\":%u,",
            (unsigned long long)t.puts, (unsigned long long)t.gets, (unsigned long long)t.dels,
            (unsigned long long)t.other, (unsigned long long)t.busy, (unsigned long long)t.errors,
            (unsigned long long)t.forwarded, atomic_load(&sh->inflight));
    struct rk_histo lat;
    rk_opstats_client_latency(&t.ops, &lat);
    rk_jadd(b, "\"latency_us\":");
    histo_json(&lat, b);
    ops_json(&t.ops, b);
    rate_json(sh, b);
    const struct rk_coord_stats *co = &t.coord;
    rk_jadd(b,
            "\"replication\":{\"coordinated\":%llu,\"quorum_failed\":%llu,"
            "\"replica_timeouts\":%llu,\"replica_errors\":%llu,\"replicas_down\":%llu,"
            "\"read_repairs\":%llu,\"hinted_writes\":%llu,\"replica_writes\":%llu,"
            "\"replica_reads\":%llu,\"evicted\":%llu,"
            "\"clock_refused\":%llu,\"clock_backwards\":%llu},"
            "\"hints\":{\"stored\":%llu,\"delivered\":%llu,\"pending\":%llu,"
            "\"pending_bytes\":%llu,\"dropped_full\":%llu,\"dropped_old\":%llu,"
            "\"dropped_damaged\":%llu,\"partitions_marked\":%llu},",
            (unsigned long long)co->coordinated, (unsigned long long)co->quorum_failed,
            (unsigned long long)co->replica_timeouts, (unsigned long long)co->replica_errors,
            (unsigned long long)co->replicas_down, (unsigned long long)co->read_repairs,
            (unsigned long long)co->hinted_writes, (unsigned long long)t.replica_writes,
            (unsigned long long)t.replica_reads, (unsigned long long)co->evicted,
            (unsigned long long)atomic_load(&sh->hlc.refused),
            (unsigned long long)atomic_load(&sh->hlc.backwards),
            (unsigned long long)co->hints_stored, (unsigned long long)co->hints_delivered,
            (unsigned long long)t.hints.pending, (unsigned long long)t.hints.pending_bytes,
            (unsigned long long)t.hints.dropped_full, (unsigned long long)t.hints.dropped_old,
            (unsigned long long)t.hints.dropped_damaged,
            (unsigned long long)t.hints.partitions_marked);
    conns_json(sh, b);
    ae_stats_json(sh, &t, b);
    rk_jadd(b, "\"peer_batches\":{\"sent\":%llu,\"requests_sent\":%llu,\"served\":%llu},",
            (unsigned long long)co->batches_sent, (unsigned long long)co->batched_requests,
            (unsigned long long)t.batches_served);
    rk_jadd(b,
            "\"storage\":{\"keys\":%llu,\"tombstones\":%llu,\"segments\":%llu,"
            "\"disk_bytes\":%llu,\"raw_bytes\":%llu,\"compression_ratio\":%.2f,"
            "\"live_bytes\":%llu,\"dead_bytes\":%llu,\"index_bytes\":%llu,\"cache_bytes\":%llu,"
            "\"cache_hits\":%llu,\"cache_misses\":%llu,\"commits\":%llu,\"fsyncs\":%llu,"
            "\"synced_puts\":%llu,\"puts_per_fsync\":%.2f,\"merges\":%llu,\"stale_puts\":%llu,"
            "\"tombstones_purged\":%llu,\"expired_purged\":%llu,\"tombstones_held\":%llu,"
            "\"fsync_us\":",
            (unsigned long long)s->keys, (unsigned long long)s->tombstones,
            (unsigned long long)s->segments, (unsigned long long)s->disk_bytes,
            (unsigned long long)s->raw_bytes,
            s->disk_bytes ? (double)s->raw_bytes / (double)s->disk_bytes : 0.0,
            (unsigned long long)s->live_bytes, (unsigned long long)s->dead_bytes,
            (unsigned long long)s->index_bytes, (unsigned long long)s->cache_bytes,
            (unsigned long long)s->cache_hits, (unsigned long long)s->cache_misses,
            (unsigned long long)s->commits, (unsigned long long)s->fsyncs,
            (unsigned long long)s->synced_puts,
            s->fsyncs ? (double)s->synced_puts / (double)s->fsyncs : 0.0,
            (unsigned long long)s->merges, (unsigned long long)s->stale_puts,
            (unsigned long long)s->tombstones_purged, (unsigned long long)s->expired_purged,
            (unsigned long long)s->tombstones_held);
    histo_json(&s->fsync_us, b);
    rk_jadd(b, "}}");
}

bool rk_admin_authenticated(const struct rk_config *c)
{
    return c->secret_file[0] != '\0' || (c->tls_ca[0] != '\0' && c->client_auth);
}

bool rk_admin_exposed(const struct rk_shared *sh, bool *protected_mode, char *why, size_t len)
{
    const struct rk_config *c = &sh->cfg;
    const char *const addrs[3] = {c->listen_client, c->listen_peer, c->listen_gossip};
    const char *const keys[3] = {"listen.client", "listen.peer", "listen.gossip"};
    int open = -1;
    for (int i = 0; i < 3 && open < 0; i++)
        if (!rk_conns_url_is_local(addrs[i]))
            open = i;
    bool authenticated = rk_admin_authenticated(c);
    *protected_mode = !authenticated && !c->allow_unauthenticated;
    if (open < 0 || authenticated || *protected_mode)
        return false;
    snprintf(why, len,
             "unauthenticated: %s listens on %s without a cluster secret "
             "(security.allow_unauthenticated = true): anyone who can reach it can read, write "
             "and change the cluster",
             keys[open], addrs[open]);
    return true;
}

bool rk_admin_health(struct rk_shared *sh, char *why, size_t len)
{
    uint32_t idx = 0;
    const char *stall = stalled_worker(sh, &idx);
    if (stall)
        snprintf(why, len, "worker %u: %s", idx, stall);
    return stall == NULL;
}

static enum rk_status health_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    char why[128];
    if (!rk_admin_health(sh, why, sizeof(why))) {
        rk_jadd(b, "{\"healthy\":false,\"reason\":");
        rk_jstr(b, why);
        rk_jadd(b, "}");
        return RK_ST_UNAVAILABLE;
    }
    rk_jadd(b, "{\"healthy\":true,\"workers\":%u}", sh->nworkers);
    return RK_ST_OK;
}

void rk_admin_set_island(struct rk_shared *sh, const char *why)
{
    pthread_mutex_lock(&sh->island_lock);
    snprintf(sh->island, sizeof(sh->island), "%s", why ? why : "");
    atomic_store(&sh->islanded, why != NULL);
    pthread_mutex_unlock(&sh->island_lock);
}

bool rk_admin_island(struct rk_shared *sh, char *why, size_t len)
{
    if (!atomic_load(&sh->islanded)) /* the common case costs no lock */
        return false;
    pthread_mutex_lock(&sh->island_lock);
    bool on = atomic_load(&sh->islanded);
    snprintf(why, len, "%s", sh->island);
    pthread_mutex_unlock(&sh->island_lock);
    return on;
}

/* Members of v that are not up, as "node-4 dead, node-5 suspect" (at
 * most a few named, then how many more). */
static void down_members(const struct rk_view *v, char *out, size_t len)
{
    size_t o = 0, named = 0, more = 0;
    out[0] = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (rk_view_up(&v->m[i]) || v->m[i].state == RK_MEMBER_LEFT)
            continue;
        if (named == 4 || o >= len) {
            more++;
            continue;
        }
        int k = snprintf(out + o, len - o, "%s%s %s", named ? ", " : "", v->m[i].id,
                         rk_member_state_name(v->m[i].state));
        o += k > 0 ? (size_t)k : 0;
        named++;
    }
    if (more && o < len)
        snprintf(out + o, len - o, " and %zu more", more);
}

/* Ready once storage is recovered and the listeners are bound (true of
 * any node that answers), this node is not cut off from its cluster, and
 * either the cluster is still forming (fewer than expect_nodes members
 * ever seen, so nodes started one by one never wait for each other) or
 * every partition has a write quorum of its preference replicas up, the
 * ones whose acks the coordinator counts (rk_view_short_partitions): any
 * node coordinates any key, so one partition short is a write that fails
 * here. Dead members not yet removed count as down. */
void rk_admin_ready(struct rk_shared *sh, struct rk_admin_readiness *r)
{
    unsigned seen = atomic_load(&sh->members_seen);
    unsigned expect = sh->cfg.expect_nodes, w = sh->cfg.write_quorum;
    r->ready = false;
    r->under = r->nshort = -1;
    if (atomic_load(&sh->stopping)) {
        snprintf(r->reason, sizeof(r->reason), "shutting down");
        return;
    }
    if (rk_admin_island(sh, r->reason, sizeof(r->reason)))
        return;
    if (seen < expect) {
        r->ready = true;
        snprintf(r->reason, sizeof(r->reason),
                 "cluster forming: %u of %u expected members seen (cluster.expect_nodes)", seen,
                 expect);
        return;
    }
    struct rk_view *v = rk_view_acquire(&sh->views);
    if (!v) {
        snprintf(r->reason, sizeof(r->reason), "no cluster view yet");
        return;
    }
    if (!v->heard_all) {
        snprintf(r->reason, sizeof(r->reason), "holdings of %s not heard yet (gossip)", v->unheard);
        rk_view_release(v);
        return;
    }
    struct rk_admin_placement pl;
    rk_admin_placement(sh, v, &pl);
    uint32_t parts = rk_ring_partitions(v->ring);
    uint32_t first = pl.first_short, nshort = pl.without_quorum;
    if (nshort == 0) {
        rk_view_release(v);
        r->ready = true;
        r->under = pl.under; /* fewer holders than cluster.replicas: transfers under way */
        snprintf(r->reason, sizeof(r->reason),
                 "a write quorum of %u is reachable for all %u partitions", w, parts);
        return;
    }
    r->nshort = nshort;
    size_t n, up = rk_view_up_replicas(v, first, &n);
    if (n == 0) {
        rk_view_release(v);
        snprintf(r->reason, sizeof(r->reason),
                 "%u of %u partitions have no holder yet (partition %u): the cluster has not "
                 "formed (every member alive, at least cluster.expect_nodes = %u, and agreeing "
                 "on the member list) or every holder was removed",
                 nshort, parts, first, expect);
        return;
    }
    char down[200];
    down_members(v, down, sizeof(down));
    rk_view_release(v);
    snprintf(r->reason, sizeof(r->reason),
             "a write quorum of %u (cluster.write_quorum) is unreachable for %u of %u "
             "partitions (partition %u: %zu of %zu replicas up)%s%s%s",
             w, nshort, parts, first, up, n, down[0] ? "; down: " : "", down,
             down[0] ? " (kvctl remove NODE takes a dead member out of the ring)" : "");
}

static enum rk_status ready_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_admin_readiness r;
    rk_admin_ready(sh, &r);
    rk_jadd(b, "{\"ready\":%s,\"reason\":", r.ready ? "true" : "false");
    rk_jstr(b, r.reason);
    if (r.under >= 0)
        rk_jadd(b, ",\"partitions_under_replicated\":%lld", (long long)r.under);
    if (r.nshort >= 0)
        rk_jadd(b, ",\"partitions_short\":%lld", (long long)r.nshort);
    rk_jadd(b, "}");
    return r.ready ? RK_ST_OK : RK_ST_UNAVAILABLE;
}

static void member_json(struct rk_jbuf *b, const struct rk_member *m, bool self, uint64_t now,
                        uint64_t our_config)
{
    rk_jadd(b, "{\"id\":");
    rk_jstr(b, m->id);
    rk_jadd(b,
            ",\"self\":%s,\"state\":\"%s\",\"incarnation\":%llu,\"heartbeat\":%llu,"
            "\"client\":",
            self ? "true" : "false", rk_member_shown_state(m), (unsigned long long)m->incarnation,
            (unsigned long long)m->heartbeat);
    rk_jstr(b, m->client_addr);
    rk_jadd(b, ",\"peer\":");
    rk_jstr(b, m->peer_addr);
    rk_jadd(b, ",\"gossip\":");
    rk_jstr(b, m->gossip_addr);
    rk_jadd(b,
            ",\"last_heard_ms\":%llu,\"rtt_us\":%u,\"state_for_ms\":%llu,"
            "\"config_digest\":\"%016llx\",\"config_match\":%s}",
            (unsigned long long)(self || now < m->last_heard_ms ? 0 : now - m->last_heard_ms),
            self ? 0 : m->rtt_us,
            (unsigned long long)(now < m->state_since_ms ? 0 : now - m->state_since_ms),
            (unsigned long long)m->config_digest,
            m->config_digest == our_config ? "true" : "false");
}

static void members_json(struct rk_shared *sh, const struct rk_gossip *g, struct rk_jbuf *b)
{
    const struct rk_members *t = rk_gossip_members(g);
    const struct rk_member *me = &t->m[t->self];
    uint64_t now = rk_clock_wall_ms();
    size_t c[RK_MEMBER_NSTATES];
    rk_members_counts(t, c);
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, sh->node_id);
    rk_jadd(b, ",\"cluster\":");
    rk_jstr(b, sh->cfg.cluster_name);
    rk_jadd(b, ",\"digest\":\"%016llx\",\"counts\":{", (unsigned long long)rk_members_digest(t));
    for (unsigned s = 0; s < RK_MEMBER_NSTATES; s++)
        rk_jadd(b, "%s\"%s\":%zu", s ? "," : "", rk_member_state_name(s), c[s]);
    rk_jadd(b, "},\"members\":[");
    for (size_t i = 0; i < t->n; i++) {
        if (i)
            rk_jadd(b, ",");
        member_json(b, &t->m[i], i == t->self, now, me->config_digest);
    }
    const struct rk_gossip_refusal *r;
    size_t nr = rk_gossip_refusals(g, &r);
    struct rk_gossip_stats gs;
    rk_gossip_stats(g, &gs);
    rk_jadd(b,
            "],\"gossip\":{\"bytes_out\":%llu,\"bytes_in\":%llu,\"surveys\":%llu,"
            "\"answers\":%llu,\"seen\":%zu,\"incarnations_refused\":%llu},\"refused\":[",
            (unsigned long long)gs.bytes_out, (unsigned long long)gs.bytes_in,
            (unsigned long long)gs.surveys, (unsigned long long)gs.answers, rk_gossip_seen(g),
            (unsigned long long)gs.incarnations_refused);
    for (size_t i = 0; i < nr; i++) {
        rk_jadd(b, "%s{\"id\":", i ? "," : "");
        rk_jstr(b, r[i].id);
        rk_jadd(b, ",\"peer\":");
        rk_jstr(b, r[i].addr);
        rk_jadd(b, ",\"setting\":");
        rk_jstr(b, r[i].setting);
        rk_jadd(b, ",\"theirs\":");
        rk_jstr(b, r[i].theirs);
        rk_jadd(b, ",\"ours\":");
        rk_jstr(b, r[i].ours);
        rk_jadd(b, ",\"ago_ms\":%llu}",
                (unsigned long long)(now < r[i].at_ms ? 0 : now - r[i].at_ms));
    }
    rk_jadd(b, "]}");
}

char *rk_admin_members(struct rk_shared *sh, const struct rk_gossip *g)
{
    struct rk_jbuf b = {0};
    members_json(sh, g, &b);
    return jtake(&b);
}

char *rk_admin_message(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    struct rk_jbuf b = {0};
    rk_jadd(&b, "{\"message\":");
    rk_jstr(&b, line);
    rk_jadd(&b, "}");
    return jtake(&b);
}

static const char *state_of(const struct rk_view *v, const char *id)
{
    const struct rk_view_member *m = rk_view_find(v, id);
    return m ? rk_member_state_name(m->state) : "?";
}

/* LOCATE: the key's partition and preference list, with each member's
 * health as this node sees it. */
static enum rk_status locate_json(struct rk_shared *sh, const struct rk_msg *req, struct rk_jbuf *b)
{
    if (!req->has_key || req->klen == 0) {
        rk_jadd(b, "locate: give a KEY");
        return RK_ST_MALFORMED;
    }
    struct rk_view *v = rk_view_acquire(&sh->views);
    if (!v) {
        rk_jadd(b, "no cluster view yet; retry");
        return RK_ST_UNAVAILABLE;
    }
    uint32_t part = rk_ring_partition_of(req->key, req->klen, sh->partitions);
    const char *ids[RK_RING_REPLICAS_MAX];
    size_t n = rk_ring_preference(v->ring, part, ids, RK_RING_REPLICAS_MAX);
    char *key = strndup((const char *)req->key, req->klen);
    rk_jadd(b, "{\"key\":");
    rk_jstr(b, key ? key : "");
    free(key);
    rk_jadd(b, ",\"partition\":%u,\"replicas\":%u,\"preference\":[", part, sh->cfg.replicas);
    for (size_t i = 0; i < n; i++) {
        const struct rk_view_member *m = rk_view_find(v, ids[i]);
        rk_jadd(b, "%s{\"node\":", i ? "," : "");
        rk_jstr(b, ids[i]);
        rk_jadd(b, ",\"state\":\"%s\",\"peer\":", state_of(v, ids[i]));
        rk_jstr(b, m ? m->peer_addr : "");
        rk_jadd(b, "}");
    }
    rk_jadd(b, "]}");
    rk_view_release(v);
    return RK_ST_OK;
}

/* RING: partitions per member (first in the list / anywhere in it). */
static enum rk_status ring_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_view *v = rk_view_acquire(&sh->views);
    if (!v) {
        rk_jadd(b, "no cluster view yet; retry");
        return RK_ST_UNAVAILABLE;
    }
    const struct rk_ring *r = v->ring;
    rk_jadd(b, "{\"partitions\":%u,\"replicas\":%u,\"digest\":\"%016llx\",\"members\":[",
            rk_ring_partitions(r), rk_ring_replicas(r), (unsigned long long)rk_ring_digest(r));
    for (size_t i = 0; i < rk_ring_members(r); i++) {
        uint32_t primary, replica;
        const char *id = rk_ring_member_id(r, i);
        rk_ring_counts(r, i, &primary, &replica);
        rk_jadd(b, "%s{\"node\":", i ? "," : "");
        rk_jstr(b, id);
        rk_jadd(b, ",\"state\":\"%s\",\"primary\":%u,\"replica\":%u}", state_of(v, id), primary,
                replica);
    }
    rk_jadd(b, "]}");
    rk_view_release(v);
    return RK_ST_OK;
}

/* PARTS: for kvctl plan, the keys and bytes this node stores per partition,
 * as [partition, keys, bytes, replica] rows (replica 1: the node is in the
 * partition's preference list; 0: a copy it still holds), only partitions
 * with keys or a replica here. From running counters: O(partitions). */
static enum rk_status parts_json(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_view *v = rk_view_acquire(&sh->views);
    if (!v) {
        rk_jadd(b, "no cluster view yet; retry");
        return RK_ST_UNAVAILABLE;
    }
    rk_jadd(b, "{\"node\":");
    rk_jstr(b, sh->node_id);
    rk_jadd(b, ",\"partitions\":%u,\"replicas\":%u,\"parts\":[", sh->partitions, sh->cfg.replicas);
    bool first = true;
    for (uint32_t p = 0; p < sh->partitions; p++) {
        uint64_t keys, bytes;
        rk_worker_partition_size(sh->workers[p % sh->nworkers], (uint16_t)p, &keys, &bytes);
        bool here = rk_view_owns(v, p);
        if (keys == 0 && !here)
            continue;
        rk_jadd(b, "%s[%u,%llu,%llu,%d]", first ? "" : ",", p, (unsigned long long)keys,
                (unsigned long long)bytes, here);
        first = false;
    }
    rk_jadd(b, "]}");
    rk_view_release(v);
    return RK_ST_OK;
}

enum rk_status rk_admin_reply(struct rk_shared *sh, const struct rk_msg *req, char **text)
{
    struct rk_jbuf b = {0};
    enum rk_status st = RK_ST_OK;
    uint8_t op = req->opcode;
    switch (op) {
    case RK_OP_LOCATE:
        st = locate_json(sh, req, &b);
        break;
    case RK_OP_RING:
        st = ring_json(sh, &b);
        break;
    case RK_OP_STATUS:
        status_json(sh, &b);
        break;
    case RK_OP_STATS:
        stats_json(sh, &b);
        break;
    case RK_OP_HEALTH:
        st = health_json(sh, &b);
        break;
    case RK_OP_READY:
        st = ready_json(sh, &b);
        break;
    case RK_OP_AE:
        st = ae_json(sh, req, &b);
        break;
    case RK_OP_REPAIR:
        st = repair_json(sh, req, &b);
        break;
    case RK_OP_PARTS:
        st = parts_json(sh, &b);
        break;
    case RK_OP_TRANSFERS:
        st = rk_admin_transfers(sh, &b);
        break;
    case RK_OP_OVERVIEW:
        st = rk_admin_overview(sh, req, &b);
        break;
    default:
        rk_jadd(&b, "opcode %u is not served by this node", op);
        st = RK_ST_UNSUPPORTED;
    }
    *text = jtake(&b);
    return st;
}

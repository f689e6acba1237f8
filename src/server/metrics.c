/* Prometheus exposition of the node's figures (metrics.h). */
#include "server/metrics.h"
#include "server/admin_int.h"
#include "cluster/members.h"
#include "cluster/view.h"
#include "util/clock.h"
#include "util/histo.h"

#include <stdio.h>
#include <string.h>

#define US_PER_S 1e6
#define NS_PER_S 1e9

typedef unsigned long long ull;

/* "# HELP name help\n# TYPE name type\n": once per metric family. */
static void family(struct rk_jbuf *b, const char *name, const char *type, const char *help)
{
    rk_jadd(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family with one unlabelled sample. */
static void one(struct rk_jbuf *b, const char *name, const char *type, const char *help, ull v)
{
    family(b, name, type, help);
    rk_jadd(b, "%s %llu\n", name, v);
}

/* A family with one sample per value of one label: label="names[i]" v[i]. */
static void by_label(struct rk_jbuf *b, const char *name, const char *type, const char *help,
                     const char *label, size_t n, const char *const names[], const ull v[])
{
    family(b, name, type, help);
    for (size_t i = 0; i < n; i++)
        rk_jadd(b, "%s{%s=\"%s\"} %llu\n", name, label, names[i], v[i]);
}

#define BY_LABEL(b, name, type, help, label, names, ...)                                           \
    by_label(b, name, type, help, label, sizeof(names) / sizeof(names[0]), names,                  \
             (const ull[]){__VA_ARGS__})

static void one_f(struct rk_jbuf *b, const char *name, const char *help, double v)
{
    family(b, name, "gauge", help);
    rk_jadd(b, "%s %.6g\n", name, v);
}

/* limits.client_rate: refusals in all, and the top talkers' counts (the
 * rows STATS lists; gauges, as an address can leave the list). */
static void rate_limits(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_rl_totals t;
    struct rk_rl_top top[RK_ADMIN_RATE_TOP];
    rk_ratelimit_totals(sh->ratelimit, &t);
    size_t n = rk_ratelimit_top(sh->ratelimit, top, RK_ADMIN_RATE_TOP);
    one(b, "ringkv_rate_limit_addresses", "gauge",
        "Client addresses with a rate-limit bucket (limits.client_rate).", t.addresses);
    const char *fam[2] = {"ringkv_rate_limit_top_requests", "ringkv_rate_limit_top_limited"};
    const char *help[2] = {"Requests of the clients refused most, by address (other: addresses "
                           "beyond the table, together).",
                           "Requests refused over limits.client_rate of the clients refused "
                           "most, by address."};
    for (int f = 0; f < 2; f++) {
        family(b, fam[f], "gauge", help[f]);
        for (size_t i = 0; i < n; i++) {
            char addr[64];
            rk_rl_top_text(&top[i], addr, sizeof(addr));
            rk_jadd(b, "%s{address=\"%s\"} %llu\n", fam[f], addr,
                    (ull)(f ? top[i].limited : top[i].requests));
        }
    }
}

/* Messages refused for the cluster secret (util/auth.h), every channel
 * and reason (zeros too: a scraper sees the families before an attack). */
static void auth_refusals(struct rk_shared *sh, struct rk_jbuf *b)
{
    const char *name = "ringkv_auth_refused_total";
    family(b, name, "counter",
           "Messages refused for the cluster secret (security.secret_file), by channel (peer, "
           "admin, client, reply, gossip) and reason (missing, bad_mac, stale, replay, "
           "no_secret).");
    for (int ch = 0; ch < RK_AUTH_NCHANNELS; ch++)
        for (int v = RK_AUTH_MISSING; v < RK_AUTH_NREASONS; v++)
            rk_jadd(b, "%s{channel=\"%s\",reason=\"%s\"} %llu\n", name, rk_auth_channel_name(ch),
                    rk_auth_reason_name(v), (ull)atomic_load(&sh->auth.refused[ch][v]));
}

static void requests(struct rk_shared *sh, const struct rk_worker_stats *t, struct rk_jbuf *b)
{
    static const char *const op_names[] = {"put", "get", "del", "admin"};
    BY_LABEL(b, "ringkv_requests_total", "counter",
             "Client requests received, by operation (admin: every other request).", "op", op_names,
             t->puts, t->gets, t->dels, t->other);
    static const char *const results[] = {"busy", "error", "quorum_failed", "rate_limited"};
    BY_LABEL(b, "ringkv_request_failures_total", "counter",
             "Requests not served, by result: busy (refused over limits.max_inflight), error "
             "(answered with an error), quorum_failed (a coordinated request short of its "
             "quorum), rate_limited (a client over limits.client_rate).",
             "result", results, t->busy, t->errors, t->coord.quorum_failed,
             rk_ratelimit_limited(sh->ratelimit));
    rate_limits(sh, b);
    auth_refusals(sh, b);
    one(b, "ringkv_requests_forwarded_total", "counter",
        "Requests passed to the worker that owns their partition.", t->forwarded);
    one(b, "ringkv_requests_coordinated_total", "counter",
        "Client requests this node coordinated over the key's replicas.", t->coord.coordinated);
    one(b, "ringkv_requests_in_flight", "gauge", "Requests received and not yet answered.",
        atomic_load(&sh->inflight));
}

/* One histogram's samples: the power-of-two µs bounds (histo.h) as
 * cumulative le buckets in seconds, under the labels lab ("" or
 * `op="put"`). _count is the +Inf bucket, so the two agree even if a copy
 * were torn. */
static void histo_samples(struct rk_jbuf *b, const char *n, const char *lab,
                          const struct rk_histo *h)
{
    const char *sep = lab[0] ? "," : "", *open = lab[0] ? "{" : "", *close = lab[0] ? "}" : "";
    ull cum = 0;
    for (unsigned i = 0; i < RK_HISTO_BOUNDS; i++) {
        cum += h->counts[i];
        rk_jadd(b, "%s_bucket{%s%sle=\"%.6f\"} %llu\n", n, lab, sep,
                (double)rk_histo_bound(i) / US_PER_S, cum);
    }
    cum += h->counts[RK_HISTO_BOUNDS];
    rk_jadd(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", n, lab, sep, cum);
    rk_jadd(b, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", n, open, lab, close,
            (double)h->sum / US_PER_S, n, open, lab, close, cum);
}

/* A status as a label value: its name in lower case ("not_found"). */
static void status_label(enum rk_status st, char *out, size_t cap)
{
    const char *sn = rk_proto_status_name(st);
    size_t i = 0;
    for (; sn[i] && i < cap - 1; i++)
        out[i] = (char)(sn[i] >= 'A' && sn[i] <= 'Z' ? sn[i] - 'A' + 'a' : sn[i]);
    out[i] = 0;
}

/* Per-operation latency histograms and replies by status (opstats.h) of
 * the operations first..last-1, as the families `name` and `replies`. */
static void ops(const struct rk_opstats *o, unsigned first, unsigned last, const char *name,
                const char *help, const char *replies, const char *rhelp, struct rk_jbuf *b)
{
    char lab[32], status[24];
    family(b, name, "histogram", help);
    for (unsigned k = first; k < last; k++) {
        snprintf(lab, sizeof(lab), "op=\"%s\"", rk_opstat_name(k));
        histo_samples(b, name, lab, &o->latency[k]);
    }
    /* OK always, other statuses once seen (a status a kind of request
     * never gets would be a line of zeros forever). */
    family(b, replies, "counter", rhelp);
    for (unsigned k = first; k < last; k++) {
        for (unsigned st = 0; st < RK_ST_COUNT; st++) {
            if (st != RK_ST_OK && o->results[k][st] == 0)
                continue;
            status_label(st, status, sizeof(status));
            rk_jadd(b, "%s{op=\"%s\",status=\"%s\"} %llu\n", replies, rk_opstat_name(k), status,
                    (ull)o->results[k][st]);
        }
    }
}

static void latencies(const struct rk_worker_stats *t, struct rk_jbuf *b)
{
    ops(&t->ops, 0, RK_OPSTAT_CLIENT_N, "ringkv_request_duration_seconds",
        "Client PUT, GET and DEL requests, from receipt to reply, by operation.",
        "ringkv_responses_total",
        "Replies to client PUT, GET and DEL requests, by operation and status.", b);
    ops(&t->ops, RK_OPSTAT_CLIENT_N, RK_OPSTAT_N, "ringkv_replica_request_duration_seconds",
        "Replica reads and writes served for peers' coordinators, from receipt to reply.",
        "ringkv_replica_responses_total",
        "Replies to replica reads and writes served for peers, by operation and status.", b);
    family(b, "ringkv_fsync_duration_seconds", "histogram",
           "fdatasync calls on segment files (the write path's durability).");
    histo_samples(b, "ringkv_fsync_duration_seconds", "", &t->storage.fsync_us);
}

/* Replica requests: what this node served, and what its coordinators
 * saw of the replicas they asked. */
static void replicas(const struct rk_worker_stats *t, struct rk_jbuf *b)
{
    static const char *const op_names[] = {"write", "read"};
    BY_LABEL(b, "ringkv_replica_requests_total", "counter",
             "Replica reads and writes this node served for coordinators.", "op", op_names,
             t->replica_writes, t->replica_reads);
    static const char *const results[] = {"timeout", "error", "down"};
    BY_LABEL(b, "ringkv_replica_failures_total", "counter",
             "Replica requests this node sent that failed, by result.", "result", results,
             t->coord.replica_timeouts, t->coord.replica_errors, t->coord.replicas_down);
    one(b, "ringkv_read_repairs_total", "counter", "Stale replicas repaired on read.",
        t->coord.read_repairs);
}

static void storage(const struct rk_storage_stats *s, struct rk_jbuf *b)
{
    one(b, "ringkv_storage_keys", "gauge", "Live keys stored.", s->keys);
    one(b, "ringkv_storage_live_bytes", "gauge", "Bytes of live records on disk.", s->live_bytes);
    one(b, "ringkv_storage_dead_bytes", "gauge",
        "Bytes on disk of overwritten or deleted records, until a merge.", s->dead_bytes);
    one(b, "ringkv_storage_disk_bytes", "gauge", "Bytes of segment files on disk.", s->disk_bytes);
    one_f(b, "ringkv_storage_compression_ratio",
          "Uncompressed over on-disk record bytes (0 before any write).",
          s->disk_bytes ? (double)s->raw_bytes / (double)s->disk_bytes : 0.0);
    one(b, "ringkv_storage_fsyncs_total", "counter", "fsync calls on segment files.", s->fsyncs);
    one(b, "ringkv_storage_commits_total", "counter", "Group commits.", s->commits);
    one(b, "ringkv_storage_synced_puts_total", "counter", "Writes made durable by an fsync.",
        s->synced_puts);
    one_f(b, "ringkv_storage_puts_per_fsync", "Writes made durable per fsync, since start.",
          s->fsyncs ? (double)s->synced_puts / (double)s->fsyncs : 0.0);
}

static void hints(const struct rk_worker_stats *t, struct rk_jbuf *b)
{
    one(b, "ringkv_hints_pending", "gauge", "Hinted writes held for members that are down.",
        t->hints.pending);
    one(b, "ringkv_hints_pending_bytes", "gauge", "Bytes of the hints held.",
        t->hints.pending_bytes);
    one(b, "ringkv_hints_stored_total", "counter", "Hints stored.", t->coord.hints_stored);
    one(b, "ringkv_hints_delivered_total", "counter", "Hints delivered.", t->coord.hints_delivered);
    static const char *const reasons[] = {"full", "old", "damaged"};
    BY_LABEL(b, "ringkv_hints_dropped_total", "counter",
             "Hints dropped, by reason (anti-entropy repairs what they carried).", "reason",
             reasons, t->hints.dropped_full, t->hints.dropped_old, t->hints.dropped_damaged);
}

static void antientropy(const struct rk_admin_ae *n, struct rk_jbuf *b)
{
    const struct rk_aeprogress_summary *s = &n->s;
    one(b, "ringkv_antientropy_round", "gauge", "The node's current anti-entropy round.", s->round);
    one(b, "ringkv_antientropy_round_in_progress", "gauge", "1 while a round is under way.",
        s->in_progress);
    one(b, "ringkv_antientropy_round_partitions_compared", "gauge",
        "Partitions the current round has compared.", s->compared);
    one(b, "ringkv_antientropy_round_partitions", "gauge", "Partitions the current round compares.",
        s->total);
    one(b, "ringkv_antientropy_rounds_total", "counter",
        "Rounds finished since the data directory was made.", s->totals.rounds);
    one(b, "ringkv_antientropy_keys_repaired_total", "counter",
        "Keys pulled or pushed by anti-entropy since the data directory was made.",
        s->totals.repaired);
    one(b, "ringkv_antientropy_repaired_bytes_total", "counter",
        "Bytes anti-entropy moved since the data directory was made.", s->totals.bytes);
    one(b, "ringkv_antientropy_busy_pauses_total", "counter",
        "Anti-entropy exchanges paused because the node was busy.", n->busy_pauses);
}

static void transfers(const struct rk_admin_ae *n, struct rk_jbuf *b)
{
    static const char *const states[] = {"pending", "active"}, *const results[] = {"done",
                                                                                   "failed"};
    BY_LABEL(b, "ringkv_transfers", "gauge", "Partition transfers to this node, by state.", "state",
             states, n->xfer_pending, n->xfer_active);
    BY_LABEL(b, "ringkv_transfers_finished_total", "counter",
             "Partition transfers ended, by result.", "result", results, n->xfer_done,
             n->xfer_failed);
    one(b, "ringkv_transfer_keys_total", "counter", "Keys received by transfers.", n->xfer_keys);
    one(b, "ringkv_transfer_bytes_total", "counter", "Bytes received by transfers.", n->xfer_bytes);
}

/* Members by state and the partitions as the view places them
 * (rk_admin_placement, as STATS and READY count them). */
static void placement(struct rk_shared *sh, const struct rk_view *v, struct rk_jbuf *b)
{
    struct rk_admin_placement pl;
    rk_admin_placement(sh, v, &pl);
    family(b, "ringkv_members", "gauge",
           "Members of the cluster as this node sees them, by state.");
    for (unsigned s = 0; s < RK_MEMBER_NSTATES; s++)
        rk_jadd(b, "ringkv_members{state=\"%s\"} %u\n", rk_member_state_name(s), pl.members[s]);
    one(b, "ringkv_partitions", "gauge", "Partitions of the ring.", sh->partitions);
    one(b, "ringkv_partitions_held", "gauge", "Partitions this node holds.", pl.held);
    one(b, "ringkv_partitions_pending", "gauge", "Partitions this node is to receive.", pl.pending);
    one(b, "ringkv_partitions_under_replicated", "gauge",
        "Partitions with fewer holders than cluster.replicas.", pl.under);
    one(b, "ringkv_partitions_without_quorum", "gauge",
        "Partitions with fewer than cluster.write_quorum preference replicas up.",
        pl.without_quorum);
}

/* Seconds since each worker loop's last turn (the heartbeat the HEALTH
 * rule judges), and the node's verdicts. */
static void loops(struct rk_shared *sh, struct rk_jbuf *b)
{
    uint64_t now = rk_clock_mono_ns();
    family(b, "ringkv_worker_loop_lag_seconds", "gauge",
           "Time since each worker loop last turned (a loop ticks every 100 ms).");
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        uint64_t beat = rk_worker_heartbeat(sh->workers[i]);
        rk_jadd(b, "ringkv_worker_loop_lag_seconds{worker=\"%u\"} %.6f\n", i,
                now > beat ? (double)(now - beat) / NS_PER_S : 0.0);
    }
    char why[128];
    struct rk_admin_readiness r;
    rk_admin_ready(sh, &r);
    one(b, "ringkv_healthy", "gauge", "1 when every worker loop turns (/health).",
        rk_admin_health(sh, why, sizeof(why)));
    one(b, "ringkv_ready", "gauge", "1 when the node is ready (/ready, kvctl ready).", r.ready);
}

static void connections(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_conns *c = &sh->conns;
    unsigned n = atomic_load(&c->n);
    family(b, "ringkv_connections", "gauge", "Open connections, by listener.");
    for (unsigned i = 0; i < n; i++)
        rk_jadd(b, "ringkv_connections{listener=\"%s\"} %u\n", c->l[i].name,
                atomic_load(&c->l[i].open));
    family(b, "ringkv_connections_refused_total", "counter",
           "Connections refused over limits.max_connections, by listener.");
    for (unsigned i = 0; i < n; i++)
        rk_jadd(b, "ringkv_connections_refused_total{listener=\"%s\"} %llu\n", c->l[i].name,
                (ull)atomic_load(&c->l[i].refused));
    family(b, "ringkv_connections_refused_remote_total", "counter",
           "Connections from other hosts refused in protected mode (no cluster secret), by "
           "listener.");
    for (unsigned i = 0; i < n; i++)
        rk_jadd(b, "ringkv_connections_refused_remote_total{listener=\"%s\"} %llu\n", c->l[i].name,
                (ull)atomic_load(&c->l[i].refused_remote));
}

void rk_metrics_render(struct rk_shared *sh, struct rk_jbuf *b)
{
    struct rk_worker_stats t;
    struct rk_admin_ae n;
    struct rk_view *v = rk_view_acquire(&sh->views); /* NULL before the first view */
    rk_admin_sum_stats(sh, &t);
    rk_admin_ae_node(sh, v, &n);
    one(b, "ringkv_start_time_seconds", "gauge", "When the process started (Unix time).",
        sh->start_ms / 1000);
    requests(sh, &t, b);
    latencies(&t, b);
    replicas(&t, b);
    storage(&t.storage, b);
    hints(&t, b);
    antientropy(&n, b);
    transfers(&n, b);
    placement(sh, v, b);
    rk_view_release(v);
    loops(sh, b);
    connections(sh, b);
}

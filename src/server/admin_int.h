/* What the admin replies share (admin.c, overview.c): the node's counters
 * summed over its workers, its anti-entropy and transfer figures, its
 * state. One home for each figure, so STATUS, STATS, AE and OVERVIEW can
 * never disagree on how one is computed. Any thread.
 */
#ifndef RK_ADMIN_INT_H
#define RK_ADMIN_INT_H

#include "cluster/aeprogress.h"
#include "cluster/members.h"
#include "cluster/view.h"
#include "server/worker.h"
#include "util/jbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The node's anti-entropy and transfers: the sum of what its workers
 * published. */
struct rk_admin_ae {
    struct rk_aeprogress_summary s;
    uint32_t rounds_running;      /* workers with a round under way */
    uint32_t exchanges_in_flight; /* workers with an exchange in flight */
    uint64_t busy_pauses, hint_marks_taken, hint_marks_forwarded; /* since start */
    uint64_t at_ms; /* the oldest of the workers' figures: counters are as of then */
    uint32_t xfer_pending, xfer_active;
    uint64_t xfer_done, xfer_failed, xfer_keys, xfer_bytes;
    char xfer_why[96];
};

/* Client addresses the rate limiter lists (limits.client_rate): STATS and
 * /metrics show the same top rows. */
#define RK_ADMIN_RATE_TOP 10

/* Every worker's published counters, summed into *t (histograms merged). */
void rk_admin_sum_stats(struct rk_shared *sh, struct rk_worker_stats *t);

/* The node's anti-entropy and transfer figures into *n. With a view v,
 * between rounds the round's total is what the next one will compare:
 * the partitions whose preference list has this node (as AE shows them);
 * v NULL leaves it as the last round's. */
void rk_admin_ae_node(struct rk_shared *sh, const struct rk_view *v, struct rk_admin_ae *n);

/* "pending":N,"active":N,"done":N,"failed":N,"keys":N,"bytes":N,"waiting":"why":
 * the transfer counters as members of an object (waiting "" while one
 * streams, or when nothing waits). */
void rk_admin_xfer_json(const struct rk_admin_ae *n, struct rk_jbuf *b);

/* Placement as this node's view v has it: members by state, and the
 * partitions it holds, is to receive (transfers), that have fewer holders
 * than cluster.replicas, and that lack a write quorum of preference
 * replicas up (rk_view_short_partitions; first_short the first of them).
 * All 0 when v is NULL (no view yet). STATS, READY and /metrics count
 * with it. */
struct rk_admin_placement {
    uint32_t members[RK_MEMBER_NSTATES];
    uint32_t held, pending, under, without_quorum, first_short;
};
void rk_admin_placement(struct rk_shared *sh, const struct rk_view *v,
                        struct rk_admin_placement *pl);

/* The HEALTH rule: true when every worker loop turned within the last
 * 2 s; false with the one-line reason in why. Any thread, no lock. */
bool rk_admin_health(struct rk_shared *sh, char *why, size_t len);

/* Whether every connection must prove who it is: a cluster secret, or TLS
 * with security.client_auth (a certificate from tls_ca for clients too).
 * Without, protected mode keeps other hosts out unless told otherwise. */
bool rk_admin_authenticated(const struct rk_config *c);

/* Unauthenticated exposure: true, with a one-line warning, when the node
 * listens beyond its own host (a listen address that is not loopback)
 * without a cluster secret because security.allow_unauthenticated says so.
 * Without that setting such a node is in protected mode (util/conns.h):
 * *protected is true and other hosts are refused, so there is nothing to
 * warn about. Config only: any thread. */
bool rk_admin_exposed(const struct rk_shared *sh, bool *protected_mode, char *why, size_t len);

/* The READY rule (kvctl ready, /ready), computed from the published view
 * and counters. under: partitions with fewer holders than
 * cluster.replicas, when the view was judged whole (else -1); nshort:
 * partitions without a write quorum, when some are (else -1). */
struct rk_admin_readiness {
    bool ready;
    char reason[600];
    int64_t under, nshort;
};
void rk_admin_ready(struct rk_shared *sh, struct rk_admin_readiness *r);

/* "stopping", "degraded" (a worker loop stalled) or "serving". */
const char *rk_admin_state(struct rk_shared *sh);

#endif

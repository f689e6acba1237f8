/* Anti-entropy on a worker: the local side of an exchange (an
 * rk_ae_tree_ops adapter over a partition's hash tree and the storage
 * index, used both to answer a peer's AE_ROOT / AE_KEYS and by this
 * worker's own exchanges). Design notes in antientropy.c.
 *
 * Threads: everything here runs on the worker that owns the partitions'
 * storage and trees; nothing locks.
 */
#ifndef RK_ANTIENTROPY_H
#define RK_ANTIENTROPY_H

#include "cluster/aepace.h"
#include "cluster/aetree.h"
#include "cluster/aexchange.h"
#include "storage/storage.h"

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The worker's tree of partition p, current at now_ms (rebuilt first when
 * stale), or NULL when this worker holds no tree for p. */
typedef struct rk_aetree *rk_ae_tree_fn(void *arg, uint32_t partition, uint64_t now_ms);

/* The local tree of one worker, as the exchange sees it (rk_ae_tree.t).
 * now_ms is the wall time the caller reads the tree at: set it before each
 * use. Every field is the caller's; store and tree must outlive its use. */
struct rk_ae_local {
    rk_ae_tree_fn *tree;
    void *arg; /* passed to tree */
    rk_storage *store;
    uint64_t now_ms;
    /* The keys scans handed out: the exchange holds them to the end of the
     * rk_aex_* call that scanned (it emits them after the scan returned),
     * so they live until rk_ae_local_release. */
    struct rk_ae_scanned *held;
    size_t nheld, capheld;
};

/* The adapter: top and leaves from the tree, scan from the storage index
 * (no values). RK_ENOTFOUND when tree gives NULL. */
extern const struct rk_ae_tree_ops rk_ae_local_ops;

/* Free the keys of l's scans: call after each rk_aex_start, rk_aex_on_reply
 * or rk_aex_respond that used l, once nothing borrows them. */
void rk_ae_local_release(struct rk_ae_local *l);

/* ---- the initiator: this worker's rounds of exchanges ---- */

struct rk_hlc;
struct rk_view_slot;
struct rk_aeprogress;
struct rk_aeprogress_summary;
struct rk_aemarks;
struct rk_ae_budget;
struct rk_ae_load;

/* The worker's load as it measures it (aepace.h: struct rk_ae_load, and
 * when it counts as busy). Called on the worker's loop, at most once per
 * burst of sends; must be cheap. */
typedef void rk_ae_load_fn(void *arg, struct rk_ae_load *out);

/* The anti-entropy settings, read at each use (SIGHUP may change them). */
struct rk_ae_pace_ref {
    const atomic_bool *enabled;
    const atomic_uint_fast64_t *interval_ms;
    const atomic_uint *max_keys_per_second;           /* 0 = no key budget */
    const atomic_uint_fast64_t *max_bytes_per_second; /* 0 = no byte budget */
};

/* Transfers' limits (transfers.max_concurrent, max_bytes_per_second:
 * reloadable, read at each use) and what the node's initiators share to
 * keep them: the transfers running now and the byte budget. */
struct rk_xfer_limits {
    atomic_uint max_concurrent;
    atomic_uint_fast64_t max_bytes_per_second; /* 0 = no limit */
    atomic_uint active;
    struct rk_ae_budget budget;
};

/* Everything the initiator needs from its worker, given at creation.
 * Pointers must outlive the initiator; all of it is used on loop only
 * (views and the pace atomics are thread-safe). */
struct rk_ae_env {
    struct ev_loop *loop; /* the owning worker's */
    uint32_t partitions, nworkers, worker, replicas;
    uint64_t request_timeout_ms; /* cluster.request_timeout: fails an exchange */
    const char *self;            /* this node's id */
    struct rk_view_slot *views;
    struct rk_hlc *hlc;   /* observes pulled versions, as for any replica write */
    struct rk_auth *auth; /* the cluster secret (util/auth.h): NULL or off = none */
    rk_storage *store;    /* reads pushed records, applies pulled ones */
    rk_ae_tree_fn *tree;
    void *tree_arg;
    struct rk_aeprogress *progress; /* the worker's: every exchange is recorded */
    struct rk_ae_pace_ref pace;
    /* The node's budget, shared by every worker's initiator (aepace.h);
     * NULL: this initiator alone spends the whole budget. */
    struct rk_ae_budget *budget;
    rk_ae_load_fn *load; /* NULL: never busy */
    void *load_arg;
    /* The worker's marks of partitions whose hints were dropped (hints.h),
     * handed to the progress of a replica (see the design block); NULL:
     * none. Same loop. */
    struct rk_aemarks *hint_marks;
    /* A transfer completed (docs/TRANSFERS.md §3): every chosen source
     * exchanged with this node, pulling only, after the placement was
     * agreed, and nothing it decided to move failed. The owner marks the
     * partition held. Same loop. NULL: transfers are not run. */
    void (*xfer_ready)(void *arg, uint32_t partition);
    void *xfer_arg;
    struct rk_xfer_limits *xfer; /* shared by the node's initiators; required with xfer_ready */
    /* A round finished: s is the progress's summary just after (its
     * round, partitions compared, keys moved). Same loop. NULL: no one
     * is told. */
    void (*round_done)(void *arg, const struct rk_aeprogress_summary *s);
    void *round_arg;
};

struct rk_ae_stats {
    uint64_t exchanges, exchanges_failed;
    uint64_t keys_pulled, keys_pushed; /* applied (the other side's write took them) */
    uint64_t busy_pauses;              /* times it paused: the worker was busy */
    uint64_t hint_marks_taken;         /* dropped-hint marks moved into the progress */
    uint64_t hint_marks_forwarded;     /* ... handed to another replica (not one here) */
    bool running;                      /* a round is under way */
    bool exchanging;                   /* an exchange is in flight */
    /* What the exchange in flight moved so far: rk_aeprogress_record counts
     * it once the exchange ends, so node figures add it meanwhile. */
    uint64_t cur_pulled, cur_pushed, cur_bytes;
    /* Transfers: partitions of this worker this node is pending for (not
     * yet reported ready), the one under way, and totals since start. */
    uint32_t xfer_pending;
    bool xfer_active;
    uint32_t xfer_part;
    char xfer_from[64];              /* the source under way */
    char xfer_why[96];               /* why nothing moves while pending, else "" */
    uint64_t xfer_done, xfer_failed; /* partitions completed, transfer attempts failed */
    uint64_t xfer_keys, xfer_bytes;  /* pulled by transfers */
    uint64_t xfer_started_ms;        /* of the one under way */
};

struct rk_ae;

/* An initiator on env->loop: its first round starts after one interval.
 * 0 or -ENOMEM. */
int rk_ae_create(struct rk_ae **out, const struct rk_ae_env *env);

/* Abandon the exchange under way (recorded as aborted), close the peer
 * sockets, free a. NULL is a no-op. */
void rk_ae_destroy(struct rk_ae *a);

void rk_ae_stats(const struct rk_ae *a, struct rk_ae_stats *out);

#endif

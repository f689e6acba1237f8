/* Worker threads: one pinned thread per worker, each with its own libev
 * loop and its own storage engine. Partition p belongs to worker
 * p % nworkers, which alone touches that partition's data: no locks on the
 * data path.
 *
 * Every worker watches the raw rep socket's receive fd (level-triggered),
 * pulls up to RK_NNG_RX_BATCH requests per wake-up, and either serves a request
 * itself or posts it to the owning worker's mailbox. Replies are queued and
 * sent from the loop's prepare watcher, after the turn's group commit: a put
 * is acknowledged only once it is durable per the fsync policy.
 */
#ifndef RK_WORKER_H
#define RK_WORKER_H

#include "cluster/aepace.h"
#include "cluster/aeprogress.h"
#include "cluster/antientropy.h"
#include "cluster/coord.h"
#include "config/config.h"
#include "util/conns.h"
#include "cluster/hints.h"
#include "cluster/hlc.h"
#include "server/mailbox.h"
#include "proto/proto.h"
#include "storage/storage.h"
#include "cluster/view.h"
#include "server/opstats.h"
#include "util/auth.h"
#include "util/ratelimit.h"

#include <ev.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct rk_worker;

/* Counters a worker publishes for admin requests (copied under a mutex). */
struct rk_worker_stats {
    uint64_t puts, gets, dels, other, busy, errors, forwarded;
    uint64_t replica_writes, replica_reads; /* served for coordinators */
    uint64_t batches_served;                /* RBATCH messages received */
    struct rk_coord_stats coord;
    struct rk_hints_stats hints;
    struct rk_storage_stats storage;
    uint64_t ae_trees_bytes;   /* memory of the anti-entropy trees (cluster/aetree.h) */
    uint64_t ae_tree_build_ms; /* their last full build (at start) */
    /* Client data and replica requests this worker answered: latency and
     * results per operation (opstats.h). */
    struct rk_opstats ops;
};

/* The anti-entropy settings SIGHUP changes (antientropy.*): the main
 * thread stores, workers load them where they pace exchanges. */
struct rk_ae_pace {
    atomic_bool enabled;
    atomic_uint_fast64_t interval_ms;
    atomic_uint max_keys_per_second;
    atomic_uint_fast64_t max_bytes_per_second; /* 0 = no byte budget */
};

/* Store c's antientropy.* into p (main thread: at start and on reload). */
void rk_ae_pace_set(struct rk_ae_pace *p, const struct rk_config *c);
void rk_xfer_limits_set(struct rk_xfer_limits *x, const struct rk_config *c);

/* State shared by all workers and the main thread. Plain fields are set
 * before the workers start and never change; atomics may change anytime. */
struct rk_shared {
    nng_socket sock; /* raw rep0 on listen.client */
    struct rk_worker **workers;
    uint32_t nworkers;
    uint32_t partitions;
    struct rk_config cfg; /* the config at start (main thread owns reloads) */
    bool repair;          /* ringkvd --repair: storage moves damaged segments aside */
    char node_id[64];
    uint64_t start_ms;
    atomic_uint inflight;           /* requests received and not yet answered */
    atomic_uint max_inflight;       /* limits.max_inflight, reloadable */
    struct rk_ratelimit *ratelimit; /* limits.client_rate/client_burst, reloadable */
    struct rk_auth auth;            /* security.secret_file: keys, replay set, refusals */
    struct rk_ae_pace ae;           /* antientropy.*, reloadable */
    struct rk_xfer_limits xfer;     /* transfers.*, reloadable, and their shared budget */
    struct rk_ae_budget ae_budget;  /* antientropy.max_*_per_second, spent by every worker */
    atomic_int log_level;
    atomic_bool stopping;   /* no new requests: answer UNAVAILABLE */
    atomic_uint rx_stopped; /* workers that stopped receiving */
    /* Membership: requests that need the member table (MEMBERS, JOIN,
     * LEAVE, REMOVE) go to the main loop, which owns it; NULL = not served.
     * The counts are published by the main loop after every change. */
    struct rk_mailbox *control;
    atomic_uint members_total, members_alive, members_seen;
    /* Cut off from the cluster (rk_gossip_islanded): client reads and
     * writes are refused with the reason in island (under island_lock),
     * both set by the main loop (rk_admin_set_island). */
    atomic_bool islanded;
    pthread_mutex_t island_lock;
    char island[400];
    /* Placement: the ring and member health, republished by the main loop
     * on every membership change; the clock that versions every write. */
    struct rk_view_slot views;
    struct rk_hlc hlc;
    struct rk_conns conns; /* connections per listener (client, peer, gossip) */
    /* The last anti-entropy round of the node (every worker finished it)
     * recorded as an event: the workers' rounds run on their own timers,
     * and whichever worker finishes the node's round last records it. */
    atomic_uint_fast64_t ae_round_told;
};

/* Send a reply on the client socket; the request is then no longer in
 * flight (sh->inflight drops by one). Frees msg if the client is gone.
 * msg is a request received on the socket, answered: it carries the
 * receipt stamp every received request gets (worker_int.h), which is
 * taken off here. */
void rk_reply_send(struct rk_shared *sh, nng_msg *msg);

/* Create worker idx: its loop, mailbox and storage (opened in data_dir/
 * worker-<idx>). On failure returns an error with one line in err. Main
 * thread, before start. */
int rk_worker_create(struct rk_worker **out, struct rk_shared *sh, uint32_t idx, char *err,
                     size_t errlen);

/* Start the thread (pinned to core idx % ncores when pin is set). */
int rk_worker_start(struct rk_worker *w, bool pin);

/* Shutdown, phase 1: stop receiving (any thread). Phase 2, once every
 * worker has stopped receiving: answer what is queued, commit, sync and
 * close storage, end the loop. Then join and destroy (main thread). */
void rk_worker_stop_rx(struct rk_worker *w);
void rk_worker_exit(struct rk_worker *w);
int rk_worker_join(struct rk_worker *w);
void rk_worker_destroy(struct rk_worker *w);

/* Monotonic ns of the worker loop's last tick (any thread). */
uint64_t rk_worker_heartbeat(const struct rk_worker *w);

/* Keys and bytes the worker's store holds of partition (which must be one
 * of this worker's: partition % nworkers == its index); any thread, a
 * value at most a few writes old (rk_storage_partition_size). */
void rk_worker_partition_size(struct rk_worker *w, uint16_t partition, uint64_t *keys,
                              uint64_t *bytes);

/* Latest published counters (any thread). */
void rk_worker_stats(struct rk_worker *w, struct rk_worker_stats *out);

/* Hint targets a worker publishes: a node holds hints only for members
 * that are down, a handful; past this many a worker's further targets
 * count in its pending totals only. */
#define RK_WORKER_HINT_TARGETS 32

/* The targets w held hints for at its last publish (at most one tick
 * old), up to cap of them, into out. Returns how many were copied. Any
 * thread. */
size_t rk_worker_hint_targets(struct rk_worker *w, struct rk_hints_target *out, size_t cap);

/* What a worker last published of its anti-entropy: the progress copy
 * (which includes the partitions asked for by rk_worker_ae_request), and,
 * taken at the same instant on its loop (at_ms, wall clock), its
 * initiator's state and what the exchange in flight moved so far (not in
 * the progress until the exchange ends). */
struct rk_worker_ae {
    const struct rk_aeprogress *progress;
    struct rk_ae_stats live;
    uint64_t at_ms;
};

/* Anti-entropy as last published by w (any thread): fn runs with it, under
 * w's stats lock, so it must be quick and must not call back into w. It is
 * at most one tick (100 ms) old. */
void rk_worker_ae_read(struct rk_worker *w, void (*fn)(const struct rk_worker_ae *ae, void *arg),
                       void *arg);

/* Mark partition part (owned by w) for priority anti-entropy at now_ms, as
 * `kvctl repair` asks (any thread). The published copy shows the mark at
 * once; w's loop marks its own progress and saves it on its next tick.
 * 0, or RK_EINVAL when w does not own part. */
int rk_worker_ae_request(struct rk_worker *w, uint32_t part, uint64_t now_ms);

/* Transfers (docs/TRANSFERS.md). Partitions whose transfer completed on
 * this worker since the last call (up to cap), for the main loop to mark
 * held. Any thread. */
size_t rk_worker_take_ready(struct rk_worker *w, uint32_t *out, size_t cap);
/* Ask the worker to drop its copy of part (done on its loop at its next
 * tick, unless its view says the node holds or owns part again). Any
 * thread. */
void rk_worker_drop_request(struct rk_worker *w, uint32_t part);
/* Drop part's records at once: only before the worker's thread started. */
int64_t rk_worker_drop_now(struct rk_worker *w, uint32_t part);

#endif

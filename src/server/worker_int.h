/* The inside of a worker (worker.h), shared by its three files:
 *   worker.c  life cycle, timers, background work, shutdown
 *   serve.c   dispatch of received requests, serving them on the owner
 *   reply.c   the group-commit reply path and the pipelined fdatasync
 * Everything here runs on the worker's own loop thread unless it says
 * otherwise (suffix _w: must run on the owning worker).
 */
#ifndef RK_WORKER_INT_H
#define RK_WORKER_INT_H

#include "server/worker.h"
#include "cluster/aeprogress.h"
#include "cluster/aetree.h"

#include <ev.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { CTL_NONE, CTL_STOP_RX, CTL_EXIT }; /* rk_worker.cmd */

struct replies {
    nng_msg **m;
    bool *write;   /* answers a write: fails if its commit or sync fails */
    size_t n, cap; /* m[0..n) queued; both arrays hold cap */
};

/* The fdatasync thread of a worker (fsync = "always"). fd, rc, done and
 * quit are guarded by mu; busy, dupfd and puts belong to the worker loop. */
struct syncer {
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;
    int rc;
    uint64_t us; /* how long that fdatasync took */
    bool done, quit;
    ev_async done_w;
    bool busy;
    int dupfd;
    uint64_t puts;
};

/* The client address of recent pipes (limits.client_rate looks one up per
 * request): direct-mapped by pipe id, which nng never reuses before 2^31
 * pipes, so a hit is always the pipe's own address. */
#define RK_ADDR_CACHE 256u
struct addr_cache {
    uint32_t pipe[RK_ADDR_CACHE]; /* 0: empty (nng pipe ids start at 1) */
    struct rk_rl_addr addr[RK_ADDR_CACHE];
};

struct rk_worker {
    struct rk_shared *sh;
    struct addr_cache addrs; /* this worker's only */
    uint32_t idx;
    pthread_t thread;
    bool started;
    struct ev_loop *loop;
    struct rk_mailbox mb;
    rk_storage *store;
    ev_io rx;
    ev_prepare flush;
    ev_timer tick, syncer;
    ev_idle bg;
    ev_async ctl;
    atomic_int cmd;
    struct replies out;     /* this turn's replies, sent after its commit */
    struct replies held;    /* write replies waiting for a sync to start */
    struct replies hinted;  /* hinted-write replies waiting for the hint store's sync */
    struct replies syncing; /* write replies covered by the running sync */
    struct syncer sync;
    struct rk_coord *coord;
    struct rk_ae *aed; /* the anti-entropy initiator (cluster/antientropy.h) */
    struct rk_hints *hints;
    struct rk_aetrees trees; /* built after open; storage's observer keeps them exact */
    atomic_uint_fast64_t heartbeat;
    uint64_t tick_ns; /* monotonic: when the last tick fired (this loop only) */
    uint32_t lag_ms;  /* how late it fired: the loop's lag (anti-entropy backs off) */
    pthread_mutex_t stats_lock;
    struct rk_worker_stats stats, pub; /* pub: guarded by stats_lock */
    struct rk_aeprogress *ae;          /* anti-entropy progress; this loop only */
    /* Guarded by stats_lock: the copy of ae other threads read (replaced
     * when ae's generation moved) and the partitions `kvctl repair` asked
     * for that the loop has not marked in ae yet (a bitmap of partitions
     * bits, set by any thread, drained by the loop on its tick). */
    struct rk_aeprogress *ae_pub;
    uint64_t ae_pub_gen;
    struct rk_ae_stats ae_live; /* the initiator's, taken with ae_pub (at ae_pub_ms) */
    uint64_t ae_pub_ms;
    uint8_t *ae_req;
    uint32_t ae_nreq;
    uint64_t ae_req_ms;
    /* Also under stats_lock: partitions whose transfer completed here, for
     * the main loop to mark held (rk_worker_take_ready), and partitions the
     * main loop asked this worker to drop (rk_worker_drop_request). */
    uint8_t *xf_ready, *drop_req;
    uint32_t xf_nready, drop_nreq;
    /* Also under stats_lock: the hint targets as of the last publish
     * (rk_worker_hint_targets), and this worker's last finished
     * anti-entropy round: its number, partitions compared, keys moved
     * (the node's round is done when every worker's is). */
    struct rk_hints_target hint_targets[RK_WORKER_HINT_TARGETS];
    size_t nhint_targets;
    uint64_t round_done, round_keys;
    uint32_t round_parts;
};

/* worker.c */
/* The anti-entropy tree of partition p on this worker, ready to compare:
 * when it is stale at now_ms, it and every other stale tree of the worker
 * are rebuilt first (one pass over the index, on this loop: a few ms per
 * million keys). NULL when p is not this worker's, or on -ENOMEM (the
 * trees are then as they were: try later). Borrowed until the worker ends. */
struct rk_aetree *rk_worker_aetree_w(struct rk_worker *w, uint32_t partition, uint64_t now_ms);

/* reply.c */
/* Receipt stamps: every request received on the socket carries, from
 * dispatch until its reply is sent, the monotonic ns of its receipt as 8
 * bytes appended to its nng header, after the SP backtrace that routes the
 * reply. The header travels with the message through mailboxes, the
 * coordinator and the commit queues (rk_proto_msg_encode keeps it), so the
 * worker that sends the reply times the whole request without any shared
 * state; rk_reply_send takes the stamp off again before rep0 sends the
 * rest of the header back to the client. Internal messages (batch parts,
 * the local coordinator's) are never stamped and never reach
 * rk_reply_send. Stamp m now: 0, or -EINVAL when its header is full (nng
 * caps it; a backtrace that long is over nng's own hop limit). */
int rk_reply_stamp(nng_msg *m);

/* When m, stamped by rk_reply_stamp, was received (mono ns; 0 if it has
 * no stamp). */
uint64_t rk_reply_received_ns(nng_msg *m);
int rk_replies_push(struct replies *r, nng_msg *m, bool write); /* 0 or -ENOMEM */
void rk_replies_free(struct replies *r);                        /* frees the queued messages too */
/* Is m a replica request this node's own coordinator made (internal)? */
bool rk_reply_is_local(nng_msg *m);
/* The channel (util/auth.h) on which a request of this opcode must prove
 * the cluster secret, or -1 when it need not: peers' requests always
 * (hint: a REPAIR carrying HINT is one), admin requests that change the
 * cluster always, every other request with security.client_auth. A reply
 * is signed exactly when its request had to be. */
int rk_auth_channel(const struct rk_shared *sh, uint8_t opcode, bool hint);
/* Send m's reply where it goes: the client, the coordinator, the batch. */
void rk_reply_out_w(struct rk_worker *w, nng_msg *m);
/* The request ends unanswered (no reply could be built). */
void rk_reply_drop_w(struct rk_worker *w, nng_msg *m);
/* Answer at once (a reply that could not be queued); see reply.c. */
void rk_reply_now_w(struct rk_worker *w, nng_msg *msg);
/* Turn the queued reply to a write into an error: its commit or sync failed. */
void rk_reply_fail_write_w(struct rk_worker *w, nng_msg *m, int rc);
/* Queue msg for after this turn's commit (write: it waits for durability). */
void rk_reply_queue_w(struct rk_worker *w, nng_msg *msg, bool write);
/* Encode rep into msg and queue it. */
void rk_reply_answer_w(struct rk_worker *w, nng_msg *msg, const struct rk_msg *rep, bool write);
/* Answer with a status and an optional one-line text. */
void rk_reply_status_w(struct rk_worker *w, nng_msg *msg, uint8_t op, uint32_t id,
                       enum rk_status st, const char *text);
/* Hinted writes: one commit and fdatasync of the hint store, then replies. */
void rk_reply_hinted_w(struct rk_worker *w);
/* The prepare watcher: the turn's commit, then its replies. */
void rk_reply_on_prepare(struct ev_loop *loop, ev_prepare *p, int revents);
void *rk_sync_main(void *arg);                                        /* the syncer thread */
void rk_sync_on_done(struct ev_loop *loop, ev_async *a, int revents); /* its wake-up */
void rk_sync_drain_w(struct rk_worker *w); /* block until the syncer is idle (shutdown) */

/* serve.c */
void rk_serve_on_rx(struct ev_loop *loop, ev_io *io, int revents);   /* the socket's fd */
void rk_serve_on_mail(struct rk_mailbox *mb, void *item, void *arg); /* forwarded to us */
void rk_serve_local(void *arg, nng_msg *msg); /* the coordinator asks this node's replica */
void rk_serve_coord_reply(void *arg, nng_msg *msg, bool answered); /* rk_coord_reply_fn */

#endif

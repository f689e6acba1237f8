/* The request coordinator: any node coordinates any client PUT, DEL or GET.
 * It runs inside the worker loop that owns the key's partition on this
 * node and never blocks it: requests to the partition's replicas go out on
 * one raw req0 socket per peer (polled through NNG_OPT_RECVFD on the same
 * loop), batched: every request for a peer made during one loop turn
 * travels in one RBATCH message, sent by rk_coord_flush() before the loop
 * blocks. This node's own replica is served on the loop without the
 * socket. Answers and timeouts advance a per-request state machine, and
 * the client is answered as soon as the outcome is known.
 *
 *   PUT/DEL: version from the node's HLC; RPUT to every replica of the
 *            preference list that is up; OK once W acknowledged (appended,
 *            and fsynced under fsync = "always"), QUORUM once W can no longer
 *            be reached, naming each replica's fate.
 *   GET:     RGET to every replica that is up; once R answered, the newest
 *            version wins (a tombstone or no answer with a value is
 *            NOT_FOUND); when all have answered (or timed out), replicas
 *            that returned an older version or nothing get the newest one
 *            (read repair, counted).
 *
 * W and R default to cluster.write_quorum / read_quorum and may be set per
 * request. They are never capped at the preference list: while this node
 * knows fewer members than cluster.replicas and the list is shorter than
 * the quorum, the request fails with QUORUM ("only 1 of cluster.replicas =
 * 3 members known yet"), so an acknowledgement always means W replicas,
 * an answer R. A node run without a config is a cluster of one
 * (replicas = R = W = 1, config.h). A replica that is suspect or
 * dead is not asked (it counts as failed: "down"). Outstanding requests are
 * bounded per worker (BUSY beyond) and per peer.
 *
 * Threads: one coordinator per worker, used only on that worker's loop.
 */
#ifndef RK_COORD_H
#define RK_COORD_H

#include "cluster/hlc.h"
#include "cluster/view.h"
#include "proto/proto.h"

#include <ev.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

struct rk_coord;
struct rk_hints;

/* Coordinator counters. */
struct rk_coord_stats {
    uint64_t coordinated;   /* client requests sent to replicas */
    uint64_t quorum_failed; /* answered QUORUM */
    uint64_t replica_timeouts, replica_errors, replicas_down;
    uint64_t read_repairs; /* replica writes sent by read repair */
    uint64_t hints_stored, hints_delivered;
    uint64_t hinted_writes;    /* writes a fallback node took for a down replica */
    uint64_t evicted;          /* answered ops that gave their slot up (hints kept) */
    uint64_t batches_sent;     /* RBATCH messages to peers */
    uint64_t batched_requests; /* replica requests they carried */
};

/* Serves a replica request addressed to this node: its message has a
 * 4-byte header (the request id) instead of a client pipe's, and its
 * answer must come back through rk_coord_local_answer(). */
typedef void rk_coord_local_fn(void *arg, nng_msg *msg);

/* Ends a client request (takes msg). answered: msg's body is the reply,
 * to be sent to the client that asked; false: no reply could be built,
 * the request ends unanswered. Either way it is no longer in flight. */
typedef void rk_coord_reply_fn(void *arg, nng_msg *msg, bool answered);

/* Everything a coordinator needs from the node that runs it, given at
 * creation: the cluster's settings, the shared clock and view, and how
 * to answer a client and to ask this node's own replica. Pointers must
 * outlive the coordinator. */
struct rk_coord_env {
    uint32_t replicas;           /* cluster.replicas (N) */
    uint32_t read_quorum;        /* cluster.read_quorum: default R */
    uint32_t write_quorum;       /* cluster.write_quorum: default W */
    uint64_t request_timeout_ms; /* cluster.request_timeout */
    struct rk_hlc *hlc;          /* versions every write (thread-safe) */
    struct rk_view_slot *views;  /* the current cluster view (thread-safe) */
    struct rk_hints *hints;      /* the worker's hint store, or NULL: no hinted handoff */
    struct rk_auth *auth;        /* the cluster secret (util/auth.h): NULL or off = none */
    rk_coord_reply_fn *reply;    /* required */
    rk_coord_local_fn *local;    /* NULL: this node's replica over the peer socket */
    void *arg;                   /* passed to reply and local */
};

/* A coordinator on loop (the owning worker's). 0 or -ENOMEM. */
int rk_coord_create(struct rk_coord **out, struct ev_loop *loop, const struct rk_coord_env *env);

/* The answer to a request made through the local function (takes msg). */
void rk_coord_local_answer(struct rk_coord *c, nng_msg *msg);

/* Send every peer's open batch (call before the loop blocks: after the
 * turn's requests and answers were handled). */
void rk_coord_flush(struct rk_coord *c);

/* Answer what is still waiting (UNAVAILABLE), close the peer sockets. */
void rk_coord_destroy(struct rk_coord *c);

/* Take a client PUT, DEL or GET for partition part. true: the coordinator
 * owns msg and answers it; false: this node holds the only replica, serve
 * it locally (msg untouched). */
bool rk_coord_start(struct rk_coord *c, nng_msg *msg, const struct rk_msg *req, uint32_t part);

void rk_coord_stats(const struct rk_coord *c, struct rk_coord_stats *out);

#endif

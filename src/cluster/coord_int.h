/* The coordinator's internals, shared by its three files:
 *   coord.c        the per-request state machine (ops), answers, start, life cycle
 *   coord_peer.c   peer sockets and the batches replica requests travel in
 *   coord_flight.c writes sent for their own sake: hint deliveries, read repairs
 * Everything here is used on the owning worker's loop only.
 */
#ifndef RK_COORD_INT_H
#define RK_COORD_INT_H

#include "cluster/coord.h"
#include "cluster/hints.h"
#include "cluster/ring.h"

#include <ev.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_OPS             4096    /* outstanding coordinated requests per worker */
#define FLIGHT_BASE         MAX_OPS /* slots FLIGHT_BASE + k: flights[k] (a hint or a repair) */
#define FLIGHTS             256     /* hint deliveries outstanding per worker */
#define HINT_BATCH          32      /* hints offered to one peer at a time */
#define HINT_BACKOFF_MIN_MS 200
#define HINT_BACKOFF_MAX_MS 10000
/* Batches outstanding to one peer: nng 1.5.2's raw rep socket queues at
 * most 64 replies per connection and drops the rest without a word
 * (xrep0's per-pipe send queue), so a coordinator keeps fewer than that
 * in flight on its connection and queues the rest itself. */
#define PEER_BATCHES  16
#define BATCH_FRAMES  128          /* replica requests in one batch */
#define BATCH_BYTES   (256u << 10) /* a batch closes past this (one big frame still goes) */
#define PEER_INFLIGHT (PEER_BATCHES * BATCH_FRAMES) /* replica requests out to one peer */
#define TICK_S        0.2                           /* expiry of batches and flights; hint offers */
#define PEER_BUF      1024                          /* nng queue depth of a peer socket */
#define NREP          RK_RING_REPLICAS_MAX
/* A request id of no op and no flight: a read repair of this node's own
 * replica, whose answer nobody waits for. */
#define LOCAL_REPAIR_SLOT (FLIGHT_BASE + FLIGHTS)
#define RECONNECT_MIN_MS  50
#define RECONNECT_MAX_MS  1000
#define CLOSE_LIMIT_MS    300 /* nng_close.h; several peers may close at shutdown */
#define RK_PEER_MAX_MSG   RK_PROTO_MAX_MSG

static_assert(MAX_OPS + FLIGHTS + 1 <= (0x7fffffff >> 4), "slot fits the request id");
static_assert(BATCH_FRAMES <= RK_PROTO_MAX_FRAMES, "peers accept our batches");

/* A replica's part in one op (coord.c, invariant 2): PENDING until
 * settle() moves it, once, to one of the others. */
enum rstate {
    RS_PENDING, /* asked, or waiting for room on its peer: no outcome yet */
    RS_OK,      /* write acknowledged; read answered with a record (version, rank, tombstone) */
    RS_MISSING, /* read answered NOT_FOUND (reads only) */
    RS_FAILED,  /* refused, timed out, unreachable, overloaded, given up: why says which */
    RS_DOWN,    /* a preference replica not up in the op's view: never asked */
};

struct peer {
    char id[RK_MEMBER_ID_MAX + 1];
    char addr[RK_MEMBER_ADDR_MAX + 1];
    nng_socket s;
    ev_io io;
    uint32_t inflight;
    struct rk_coord *c;
    uint64_t hint_after_ms; /* back-off: no delivery before this (mono ms) */
    uint64_t hint_backoff_ms;
    uint32_t hint_flights; /* deliveries in flight to this peer */
    struct wait *wait;     /* replica requests queued for room in a batch */
    uint32_t whead, wcount, wcap;
    bool pumping;
    bool dirty;    /* in c->dirty: flushed before the loop blocks */
    bool closed;   /* retired: its socket is closed */
    uint8_t *obuf; /* the open batch: frames not sent yet */
    size_t olen, ocap;
    uint32_t oframes;
    uint32_t batches; /* batches sent and not answered */
    uint32_t bseq;
    struct {
        bool used;
        uint32_t seq;
        uint64_t deadline_ms;
    } bout[PEER_BATCHES];
};

/* A replica request waiting for room on its peer's connection. */
struct wait {
    uint32_t slot, seq;
    uint8_t idx;
};

enum { FLIGHT_HINT, FLIGHT_REPAIR };

/* A write sent for its own sake, not for a client: a hint being delivered
 * or a read repair. Tracked so it counts against the peer's limit and
 * expires. */
struct flight {
    bool used;
    uint8_t kind;
    struct peer *p;
    uint8_t *key;
    uint32_t klen;
    uint64_t lv, deadline_ms;
};

/* Replica i of an op: r[0..n) the preference list, r[n..n+nf) fallbacks. */
struct replica {
    const struct rk_view_member *m; /* in op->view, held by the op */
    struct peer *p; /* its peer, set by send_to; NULL: this node (env.local), or not asked */
    bool sent;      /* on the wire (counts in p->inflight), not only queued; ⇒ st == PENDING */
    int8_t owner;   /* a fallback: index < n of the DOWN replica it stands in for; else -1 */
    int8_t partner; /* i < n, writes: the pending owner (an extra, index >= n) whose ack must
                       come too for this one's to count (the pairing rule); else -1 */
    bool extra;     /* i >= n: a pending owner of the partition, sent writes, never counted */
    bool handed;    /* DOWN, and a fallback holds the write for it (no hint kept here) */
    uint8_t st;     /* enum rstate */
    bool tombstone; /* st == OK, reads: what it holds */
    uint64_t version, rank; /* st == OK: version (rank for reads only, breaks a version tie) */
    char why[112];          /* st == FAILED/DOWN: "timed out", "refused: <the replica's reason>" */
    bool damaged;           /* reads, st == FAILED: its storage could not read the record
                               (INTERNAL, e.g. a block failing its checksum): repair it */
};

/* One client request being coordinated (coord.c's design block gives the
 * invariants between these fields; check() tests them). */
struct op {
    bool used;            /* the slot is taken; all else is zero while it is not */
    bool replied;         /* the client was answered (once; never undone) */
    bool trace;           /* reads: the reply carries the replicas' trace */
    uint8_t opcode;       /* RK_OP_PUT, RK_OP_DEL or RK_OP_GET */
    uint8_t n;            /* preference replicas, r[0..n): 1 <= need <= n <= NREP once fanned out */
    uint8_t need;         /* W (writes) or R (reads) */
    uint8_t pending;      /* r[0..n+nf) in RS_PENDING */
    uint8_t acks;         /* writes: r[0..n) in RS_OK with their partner OK (recount) */
    uint8_t answers;      /* reads: r[0..n) in RS_OK or RS_MISSING; writes: 0 */
    uint8_t nf;           /* writes: extras then fallbacks, in r[n .. n + nf); reads: 0 */
    uint8_t pend_pref;    /* r[0..n) that may still count (recount) */
    uint32_t seq;         /* unique per use of the slot: the replica requests' proto id */
    uint32_t req_id;      /* the client's request id, echoed */
    nng_msg *client;      /* until answered: replied ⇔ client == NULL once started */
    struct rk_view *view; /* held for the op's life */
    struct replica r[NREP];
    uint64_t version;    /* writes: the version written */
    bool have_best;      /* reads: an answer was kept in best_* (value copied) */
    bool best_tombstone; /* have_best: the newest is a delete (or had no value) */
    uint64_t best_version, best_rank, best_expiry_ms; /* have_best: of some RS_OK replica */
    uint8_t *best_val; /* non-NULL ⇔ have_best && !best_tombstone */
    uint32_t best_vlen;
    uint8_t *key;
    uint32_t klen, part;
    uint8_t *val; /* writes: for hints to replicas that missed it */
    uint32_t vlen;
    uint64_t expiry_ms;
    bool tombstone; /* writes: a DEL */
    ev_timer timer; /* request_timeout; runs from fan-out until op_free */
    struct rk_coord *c;
};

struct rk_coord {
    struct ev_loop *loop;
    struct rk_coord_env env; /* the node's settings, clock, view and callbacks */
    struct op *ops;          /* MAX_OPS */
    uint32_t next_slot, used, seq, evict_at;
    struct peer **peers, **retired;
    size_t npeers, nretired;
    struct peer **dirty; /* peers with frames or waits to flush; capacity npeers */
    size_t ndirty, cdirty;
    struct flight flights[FLIGHTS];
    ev_timer tick;
    uint64_t view_epoch; /* of the last view whose down members were looked for in the ops */
    struct rk_coord_stats stats;
};

/* coord_peer.c */
struct peer *coord_peer_get(struct rk_coord *c, const struct rk_view_member *m);
void coord_peer_close(struct rk_coord *c, struct peer *p);
/* req encoded behind a 4-byte header carrying rid, or NULL. */
nng_msg *coord_build(const struct rk_msg *req, uint32_t rid);
/* Can p take one more replica request now? */
bool coord_peer_room(const struct peer *p);
/* Frame req into p's open batch under request id rid (the caller checked
 * coord_peer_room); takes nothing on failure. */
int coord_peer_send(struct rk_coord *c, struct peer *p, const struct rk_msg *req, uint32_t rid);
/* Batches of p unanswered past their deadline give their slot up. */
void coord_expire_batches(struct rk_coord *c, struct peer *p, uint64_t now);

/* coord_flight.c */
uint64_t coord_mono_ms(void);
bool coord_flight_send(struct rk_coord *c, struct peer *p, uint8_t kind, const struct rk_msg *m,
                       uint64_t lv);
void coord_flight_answer(struct rk_coord *c, struct peer *p, uint32_t k, const struct rk_msg *rep);
void coord_flight_end(struct rk_coord *c, struct flight *f);
/* Expire flights past their deadline, then offer pending hints. */
void coord_flights_tick(struct rk_coord *c, uint64_t now);

/* coord.c */
/* Send what waits for room on p while it has room. */
void coord_pump(struct rk_coord *c, struct peer *p);
/* The answer to replica request rid from p (NULL: this node); buf borrowed. */
void coord_take_answer(struct rk_coord *c, struct peer *p, uint32_t rid, const uint8_t *buf,
                       size_t len);

#endif

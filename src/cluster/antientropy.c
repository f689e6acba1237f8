/* Anti-entropy on a worker: the local tree adapter (antientropy.h).
 *
 * The adapter answers the exchange's three questions from what the worker
 * already keeps: top and leaves from the partition's hash tree (aetree.h,
 * exact on every write, rebuilt first when an entry expired), and scan
 * from the storage index without reading values.
 */
#include "cluster/antientropy.h"
#include "cluster/aemarks.h"
#include "cluster/aepace.h"
#include "cluster/aeprogress.h"
#include "cluster/hlc.h"
#include "cluster/view.h"
#include "proto/proto.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/events.h"
#include "util/log.h"
#include "util/nng_close.h"
#include "util/nng_peer.h"
#include "util/nng_rx.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the local tree adapter ---- */

static int local_top(void *arg, uint16_t part, uint64_t *root, uint64_t mids[RK_AEW_MIDS])
{
    struct rk_ae_local *l = arg;
    struct rk_aetree *t = l->tree(l->arg, part, l->now_ms);
    if (!t)
        return RK_ENOTFOUND;
    rk_aetree_mids(t, mids);
    *root = rk_aetree_root(t);
    return 0;
}

static int local_leaves(void *arg, uint16_t part, unsigned mid, uint64_t leaves[RK_AEW_FANOUT])
{
    struct rk_ae_local *l = arg;
    struct rk_aetree *t = l->tree(l->arg, part, l->now_ms);
    if (!t)
        return RK_ENOTFOUND;
    if (mid >= RK_AEW_MIDS)
        return RK_EINVAL;
    memcpy(leaves, &t->leaf[mid * RK_AEW_FANOUT], RK_AEW_FANOUT * sizeof(uint64_t));
    return 0;
}

/* The entries of the leaves one scan asked for, copied out of the index
 * so they can be sorted: keys back to back in one buffer (koff[i] is
 * e[i]'s offset in it until the scan is over; then e[i].key points there). */
struct rk_ae_scanned {
    struct rk_aew_entry *e;
    size_t *koff;
    size_t n, cap;
    uint8_t *keys;
    size_t klen, kcap;
};

static int leaf_key_order(const void *a, const void *b)
{
    const struct rk_aew_entry *x = a, *y = b;
    if (x->leaf != y->leaf)
        return x->leaf < y->leaf ? -1 : 1;
    return rk_aew_key_cmp(x->key, x->klen, y->key, y->klen);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -ENOMEM;
    *p = q, *cap = c;
    return 0;
}

static int scanned_add(struct rk_ae_scanned *s, const struct rk_record *r, uint16_t leaf)
{
    size_t ecap = s->cap;
    if (grow((void **)&s->e, &ecap, s->n + 1, sizeof(*s->e)) < 0 ||
        grow((void **)&s->koff, &s->cap, s->n + 1, sizeof(*s->koff)) < 0 ||
        grow((void **)&s->keys, &s->kcap, s->klen + r->klen, 1) < 0)
        return -ENOMEM;
    memcpy(s->keys + s->klen, r->key, r->klen);
    s->koff[s->n] = s->klen;
    s->klen += r->klen;
    s->e[s->n++] = (struct rk_aew_entry){.klen = (uint16_t)r->klen,
                                         .leaf = leaf,
                                         .version = r->version,
                                         .tombstone = r->tombstone,
                                         .expiry_ms = r->expiry_ms};
    return 0;
}

static void scanned_free(struct rk_ae_scanned *s)
{
    free(s->e);
    free(s->koff);
    free(s->keys);
}

void rk_ae_local_release(struct rk_ae_local *l)
{
    for (size_t i = 0; i < l->nheld; i++)
        scanned_free(&l->held[i]);
    free(l->held);
    l->held = NULL;
    l->nheld = l->capheld = 0;
}

/* Keep s's keys until rk_ae_local_release (see struct rk_ae_local); on
 * -ENOMEM they are freed and the scan fails. */
static int scanned_hold(struct rk_ae_local *l, struct rk_ae_scanned *s)
{
    if (grow((void **)&l->held, &l->capheld, l->nheld + 1, sizeof(*l->held)) < 0) {
        scanned_free(s);
        return -ENOMEM;
    }
    l->held[l->nheld++] = *s;
    return 0;
}

/* One pass over the partition's index: the entries of the leaves asked
 * (those of leaves[0] after `after` only) into s, unsorted. at_ms = 1
 * keeps expired entries (the exchange judges them itself, as the scan
 * contract asks). The storage engine walks its whole index and filters by
 * partition, so a pass costs the worker's keys, not the partition's: once
 * per scan, never per leaf. */
static int gather(struct rk_ae_local *l, uint16_t part, const uint16_t *leaves, uint16_t n,
                  const uint8_t *after, uint16_t alen, struct rk_ae_scanned *s)
{
    uint8_t want[RK_AEW_LEAVES / 8] = {0};
    for (uint16_t i = 0; i < n; i++)
        want[leaves[i] / 8] |= (uint8_t)(1u << (leaves[i] % 8));
    struct rk_storage_iter it;
    struct rk_record r;
    int rc;
    rk_storage_iter_init_at(&it, part, false, 1);
    while ((rc = rk_storage_iter_next(l->store, &it, &r)) == 1) {
        uint16_t leaf = (uint16_t)rk_aetree_leaf_of(r.key, r.klen);
        if (!(want[leaf / 8] >> (leaf % 8) & 1u) ||
            (leaf == leaves[0] && after && rk_aew_key_cmp(r.key, r.klen, after, alen) <= 0))
            continue;
        if ((rc = scanned_add(s, &r, leaf)) < 0)
            break;
    }
    return rc;
}

/* The scan of the tree interface (aexchange.h): gather, then sort by
 * (leaf, key), which is the order asked since leaves ascend. */
static int local_scan(void *arg, uint16_t part, const uint16_t *leaves, uint16_t n,
                      const uint8_t *after, uint16_t alen, rk_ae_visit_fn visit, void *varg)
{
    struct rk_ae_local *l = arg;
    if (!l->tree(l->arg, part, l->now_ms))
        return RK_ENOTFOUND;
    struct rk_ae_scanned s = {0};
    int rc = gather(l, part, leaves, n, after, alen, &s);
    if (rc < 0) {
        scanned_free(&s);
        return rc;
    }
    for (size_t i = 0; i < s.n; i++)
        s.e[i].key = s.keys + s.koff[i]; /* the buffer moved no more */
    if ((rc = scanned_hold(l, &s)) < 0)
        return rc; /* freed by scanned_hold */
    if (s.n > 1)   /* qsort's array may not be NULL, even for 0 entries */
        qsort(s.e, s.n, sizeof(*s.e), leaf_key_order);
    for (size_t i = 0; i < s.n; i++)
        if (visit(varg, &s.e[i]))
            break;
    return 0;
}

const struct rk_ae_tree_ops rk_ae_local_ops = {local_top, local_leaves, local_scan};

/* ---- the initiator ----
 *
 * DESIGN
 *
 * One initiator per worker, on the worker's loop; it compares the
 * partitions this worker owns with their other replicas.
 *
 *   round timer (antientropy.interval) ─► round_begin: marks_take, then the
 *     list = owned partitions whose preference list holds this node,
 *     marked ones first (rk_ae_round_order)
 *   advance ─► part_begin (the partition's other replicas, from the view)
 *           ─► ex_start (one exchange per replica that is up)
 *                AE_ROOT / AE_KEYS on the peer's socket ─► on_ae_reply
 *                  └─ emit: keys to PUSH (RPUT of our record) and to PULL
 *                     (RGET, then rk_storage_put here: the LWW rule decides)
 *                pump: moves and the next AE request, within the budget,
 *                  unless the worker is busy (then pace_t brings it back)
 *              ─► ex_finish (recorded in the progress store) ─► advance
 *           ─► part_end (the mark clears once every replica exchanged)
 *   ─► round_end (round finished, next round after interval)
 *
 * Invariants:
 * 1. At most one exchange in flight per worker (x != NULL), on the socket
 *    of its peer; its AE request (at most one out) and its key moves
 *    (at most AE_MOVES_INFLIGHT out) share that socket, told apart by the
 *    low byte of the raw req0 header word (AE_SLOT_AE, or a move slot).
 * 2. The next AE request is held back (next_req) while more than
 *    AE_QUEUE_HIGH moves wait, so memory stays bounded by a few replies'
 *    keys whatever the partition's size.
 * 3. Every message carries a fresh sequence number in its header word:
 *    a late reply of an exchange that was abandoned matches nothing and is
 *    dropped.
 *
 * 4. Nothing goes out while the worker is busy (pump and first_request
 *    ask busy_wait), and no move goes beyond the node's budget (send_move
 *    takes it from env.budget first).
 *
 * PACE. The budget (antientropy.max_keys_per_second, max_bytes_per_second)
 * is the node's: every worker's initiator takes from one shared pair of
 * GCRA buckets (aepace.h, in the worker's shared state), rather than each
 * from keys / nworkers, so a worker with nothing to repair leaves all of
 * it to the one that has. A move takes one key and its request's bytes
 * before it is sent; a pulled value's bytes are charged when it arrives.
 * Over any 2 s window the node moves at most the budget times 2.05 s plus
 * one move per worker. When the budget is spent, pump comes back (pace_t)
 * once it has room again; replies arriving meanwhile pump too. The pace
 * timer is the exchange's own, never the round timer: a transfer runs
 * between rounds, while the round timer waits out antientropy.interval,
 * and a pause of its exchange must end after the pause, not at the next
 * round (a worker that lagged once would hold its transfers that long).
 *   The worker tells how busy it is (env.load: its queue, the node's
 * requests in flight, its loop's lag). While busy the initiator sends
 * neither moves nor AE requests, for pauses doubling from 50 ms to 1 s;
 * after a 1 s pause one burst goes anyway, so a pause is bounded and a
 * worker that stays busy still converges. An exchange held this way is
 * not timed out (nothing of it is out), and the peer keeps no state
 * between requests, so a pause costs nothing but time.
 *
 * DROPPED HINTS. A hint store marks a partition in ae-marks when it drops
 * a hint (hints.c); the hint store of a key's partition is its owning
 * worker's, so these are this worker's partitions. Every AE_MARKS_MS, and
 * at round_begin, marks_take moves them on: a partition this node
 * replicates is marked RK_AE_MARK_HINT in the progress, the progress is
 * saved, and only then is the ae-marks bit cleared (a crash in between
 * marks it twice: harmless). One that this node is no replica of (it
 * coordinated or stood in for the write) is handed to a replica that is
 * up, over its peer socket (REPAIR with HINT, slot AE_SLOT_MARK; the
 * replica saves the mark before it answers), and cleared here on OK only;
 * no answer within cluster.request_timeout, or a refusal, and the next
 * replica is asked at a later look. A marked partition goes first in the
 * next round (round_list), and its mark clears in part_end only once an
 * exchange with every other replica started after the mark and succeeded,
 * so while one replica is down the mark stays.
 *
 * Failure cases: a peer that is down in the view is recorded unreachable
 * and skipped; one that answers nothing within cluster.request_timeout
 * (since the last answer) fails the exchange (moves still queued are
 * dropped: the next round finds them again); a peer's error status (busy,
 * not a replica, an older version) fails it as refused. Pushed and pulled
 * records go through the normal versioned write on either side, so a move
 * that raced a client write can only lose to a newer version. A restart
 * mid-round resumes the round the progress file says is in progress,
 * skipping the partitions it records as compared.
 */

#define AE_MOVES_INFLIGHT   32u   /* < 48: a raw rep0 keeps 64 replies per connection (NNG-NOTES) */
#define AE_QUEUE_HIGH       8192u /* two full AE_KEYS replies of moves */
#define AE_SLOT_AE          0xFFu /* header word low byte of an AE request */
#define AE_SLOT_MARK        0xFEu /* ... of a dropped-hint mark handed to a replica */
#define AE_PACE_MIN_MS      5     /* a spent budget or a pause is looked at again no sooner */
#define AE_MARKS_MS         250   /* how often the dropped-hint marks are looked at */
#define AE_RECONNECT_MIN_MS 50    /* as the coordinator's peers (coord_int.h) */
#define AE_RECONNECT_MAX_MS 1000
#define AE_SOCK_BUF         (AE_MOVES_INFLIGHT + 2) /* every request one exchange has out */
#define AE_CLOSE_LIMIT_MS   300
#define XFER_LOOK_MS        250  /* how often pending partitions are looked at */
#define XFER_RETRY_MS       1000 /* after a failed transfer, before the next begins */

struct ae_peer {
    char id[RK_MEMBER_ID_MAX + 1];
    char addr[RK_MEMBER_ADDR_MAX + 1];
    nng_socket s;
    ev_io io;
    struct rk_ae *a;
};

/* A key to move: PUSH or PULL (a TIE becomes one of each). */
struct move {
    uint8_t kind;
    uint16_t klen;
    uint8_t *key;
    uint64_t version; /* PUSH: the version sent, to tell whether it was taken */
};

struct rk_ae {
    struct rk_ae_env env;
    struct rk_ae_local local;
    ev_timer round_t; /* between rounds only (antientropy.interval) */
    ev_timer pace_t;  /* the exchange under way: its budget has room, or a busy pause is over */
    ev_timer watch_t; /* request timeout of the exchange under way */
    struct ae_peer **peers;
    size_t npeers;
    /* the round: list[at] is the partition under way */
    uint32_t *list;
    size_t nlist, at;
    bool running;
    /* the partition under way: its other replicas, ids[peer_at] next */
    char ids[RK_RING_REPLICAS_MAX][RK_MEMBER_ID_MAX + 1];
    size_t nids, peer_at;
    /* the exchange under way (invariant 1); all NULL/0 between exchanges */
    struct rk_aex *x;
    struct ae_peer *p;
    struct rk_ae_exchange rec;
    uint32_t seq, ae_rid;
    bool ae_wait;
    const uint8_t *next_req; /* borrowed from x (invariant 2) */
    size_t next_len;
    uint64_t deadline_ms; /* monotonic: last answer + request timeout */
    struct move *q;       /* q[qhead..qn) wait to be sent */
    size_t qn, qhead, qcap;
    struct move mv[AE_MOVES_INFLIGHT];
    uint32_t mv_rid[AE_MOVES_INFLIGHT]; /* 0: slot free */
    unsigned inflight;
    struct rk_ae_budget own_budget; /* env.budget when the worker gives none */
    struct rk_ae_backoff backoff;   /* while the worker is busy */
    /* Dropped-hint marks (the design block): partitions taken into the
     * progress, cleared from the marks once it is saved; one mark at a time
     * handed to a replica elsewhere, on fwd_p's socket (NULL: none out). */
    ev_timer marks_t;
    uint32_t *taken;
    struct ae_peer *fwd_p;
    uint32_t fwd_part, fwd_rid;
    uint64_t fwd_deadline_ms;
    unsigned fwd_next; /* which replica to try first: moves on after a failure */
    uint64_t fwd_log_ms;
    /* The exchange under way: its partition, and whether it is a
     * transfer's (pull only, recorded in xf_*, not in the progress). */
    uint32_t cur_part;
    bool xfer;
    /* Transfers (docs/TRANSFERS.md §3): the partition under way, its
     * sources (xf_src[xf_at] next), whether any exchange of it failed. */
    ev_timer xfer_t;
    bool xf_on, xf_bad;
    uint32_t xf_part, xf_next;
    char xf_src[RK_RING_REPLICAS_MAX][RK_MEMBER_ID_MAX + 1];
    size_t xf_nsrc, xf_at;
    uint64_t xf_retry_ms;
    uint8_t *xf_done; /* reported ready, waiting for the view to say held */
    struct rk_ae_stats stats;
};

static void advance(struct rk_ae *a);
static bool xfer_begin(struct rk_ae *a);
static void xfer_advance(struct rk_ae *a);
static void xfer_exchanged(struct rk_ae *a, enum rk_ae_result res);
static void pump(struct rk_ae *a);

static uint64_t mono_ms(void)
{
    return rk_clock_mono_ns() / 1000000u;
}

/* ---- peer sockets: one raw req0 per peer, polled on the loop ---- */

static void on_peer_rx(struct ev_loop *loop, ev_io *io, int revents);

static struct ae_peer *peer_open(struct rk_ae *a, const struct rk_view_member *m)
{
    int fd, rv;
    struct ae_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->id, sizeof(p->id), "%s", m->id);
    snprintf(p->addr, sizeof(p->addr), "%s", m->peer_addr);
    p->a = a;
    /* A socket opens at the start of a round and dials without blocking:
     * the queue holds the first requests until the connection is up (with
     * none, a send before it fails at once). An AE reply is bounded, but
     * an RGET answer carries a value: the message limit is the protocol's. */
    static const struct rk_nng_peer_opts po = {AE_SOCK_BUF, RK_PROTO_MAX_MSG, AE_RECONNECT_MIN_MS,
                                               AE_RECONNECT_MAX_MS};
    rv = rk_nng_peer_open(&p->s, p->addr, &po, &fd);
    if (rv != 0) {
        rk_warn("antientropy", "cannot reach peer %s at %s: %s", m->id, m->peer_addr,
                nng_strerror(rv));
        free(p);
        return NULL;
    }
    ev_io_init(&p->io, on_peer_rx, fd, EV_READ);
    p->io.data = p;
    ev_io_start(a->env.loop, &p->io);
    return p;
}

static void peer_close(struct rk_ae *a, struct ae_peer *p)
{
    ev_io_stop(a->env.loop, &p->io);
    rk_nng_close_bounded(p->s, AE_CLOSE_LIMIT_MS, "antientropy peer");
    free(p);
}

/* The socket to m, opened on first use; reopened when its address changed
 * (only between exchanges: nothing else holds it then). */
static struct ae_peer *peer_get(struct rk_ae *a, const struct rk_view_member *m)
{
    size_t i = 0;
    while (i < a->npeers && strcmp(a->peers[i]->id, m->id) != 0)
        i++;
    if (i < a->npeers && strcmp(a->peers[i]->addr, m->peer_addr) == 0)
        return a->peers[i];
    if (i < a->npeers) {
        peer_close(a, a->peers[i]);
        a->peers[i] = a->peers[--a->npeers];
    }
    struct ae_peer **np = realloc(a->peers, (a->npeers + 1) * sizeof(*np));
    if (!np)
        return NULL;
    a->peers = np;
    struct ae_peer *p = peer_open(a, m);
    if (p)
        a->peers[a->npeers++] = p;
    return p;
}

/* A fresh header word for slot (invariant 3). */
static uint32_t next_rid(struct rk_ae *a, uint32_t slot)
{
    a->seq = (a->seq + 1) & 0x7FFFFFu;
    return 0x80000000u | a->seq << 8 | slot;
}

/* Send the whole message buf[0..len) to p under header word rid. 0 or an
 * error (nothing kept). */
static int peer_send(struct ae_peer *p, uint32_t rid, const void *buf, size_t len)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, len) != 0)
        return -ENOMEM;
    memcpy(nng_msg_body(m), buf, len);
    if (rk_proto_msg_sign(m, p->a->env.auth) != 0 || nng_msg_header_append_u32(m, rid) != 0 ||
        nng_sendmsg(p->s, m, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(m);
        return RK_EBUSY;
    }
    return 0;
}

/* The same on the socket of the exchange under way, counted in it. */
static int send_raw(struct rk_ae *a, uint32_t rid, const void *buf, size_t len)
{
    if (!a->ae_wait && !a->inflight) /* the first request out: the clock starts */
        a->deadline_ms = mono_ms() + a->env.request_timeout_ms;
    int rc = peer_send(a->p, rid, buf, len);
    if (rc == 0)
        a->rec.bytes += len;
    return rc;
}

/* ---- key moves ---- */

static int queue_move(struct rk_ae *a, uint8_t kind, const struct rk_aew_entry *e)
{
    if (a->qn == a->qcap) {
        size_t cap = a->qcap ? a->qcap * 2 : 256;
        struct move *q = realloc(a->q, cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        a->q = q, a->qcap = cap;
    }
    uint8_t *key = malloc(e->klen ? e->klen : 1);
    if (!key)
        return -ENOMEM;
    memcpy(key, e->key, e->klen);
    a->q[a->qn++] = (struct move){.kind = kind, .klen = e->klen, .key = key};
    return 0;
}

/* rk_aex_emit_fn: queue the keys (copied: they are borrowed for the call).
 * A TIE moves both ways: each side's versioned write keeps the higher rank.
 * A key that cannot be queued (no memory) is found again next round. */
static void on_emit(void *arg, enum rk_aex_kind kind, const struct rk_aew_entry *e, size_t n)
{
    struct rk_ae *a = arg;
    for (size_t i = 0; i < n; i++) {
        if (kind != RK_AEX_PUSH)
            queue_move(a, RK_AEX_PULL, &e[i]);
        if (kind != RK_AEX_PULL && !a->xfer) /* a transfer only pulls */
            queue_move(a, RK_AEX_PUSH, &e[i]);
    }
}

static void drop_moves(struct rk_ae *a)
{
    for (size_t i = a->qhead; i < a->qn; i++)
        free(a->q[i].key);
    a->qn = a->qhead = 0;
    for (unsigned k = 0; k < AE_MOVES_INFLIGHT; k++)
        if (a->mv_rid[k]) {
            free(a->mv[k].key);
            a->mv_rid[k] = 0;
        }
    a->inflight = 0;
}

/* The message for move mv: RPUT of our record (0 with *out; RK_ENOTFOUND
 * when it expired meanwhile: nothing to push) or RGET. */
static int move_msg(struct rk_ae *a, struct move *mv, uint32_t rid, struct rk_msg *out)
{
    *out = (struct rk_msg){.opcode = mv->kind == RK_AEX_PUSH ? RK_OP_RPUT : RK_OP_RGET,
                           .id = rid,
                           .key = mv->key,
                           .klen = mv->klen,
                           .has_key = true};
    if (mv->kind != RK_AEX_PUSH)
        return 0;
    struct rk_record r;
    int rc = rk_storage_get(a->env.store, mv->key, mv->klen, RK_GET_TOMBSTONES, &r);
    if (rc < 0)
        return rc;
    mv->version = r.version;
    out->version = r.version, out->has_version = true;
    out->val = r.val, out->vlen = r.tombstone ? 0 : r.vlen, out->has_val = !r.tombstone;
    out->tombstone = r.tombstone, out->has_tombstone = r.tombstone;
    out->expiry_ms = r.expiry_ms, out->has_expiry = r.expiry_ms != 0;
    return 0;
}

/* The node's budget now (antientropy.max_*_per_second; 0 = no limit). */
static uint64_t keys_ps(const struct rk_ae *a)
{
    return atomic_load(a->env.pace.max_keys_per_second);
}

static uint64_t bytes_ps(const struct rk_ae *a)
{
    return atomic_load(a->env.pace.max_bytes_per_second);
}

/* The budget a move of the exchange under way spends: a transfer's, shared
 * by the node's transfers (bytes only), or anti-entropy's. */
static struct rk_ae_budget *move_budget(struct rk_ae *a)
{
    return a->xfer ? &a->env.xfer->budget : a->env.budget;
}

static uint64_t move_keys_ps(const struct rk_ae *a)
{
    return a->xfer ? 0 : keys_ps(a);
}

static uint64_t move_bytes_ps(const struct rk_ae *a)
{
    return a->xfer ? atomic_load(&a->env.xfer->max_bytes_per_second) : bytes_ps(a);
}

/* Send the queue's next move into free slot k, if the budget has room for
 * it: 0 when it went (or was dropped: expired, too large, not sent; the
 * next round looks again), else the ns until the budget may have room
 * (the move stays first in the queue). The message is encoded before
 * anything else touches the store (r's views are borrowed). */
static uint64_t send_move(struct rk_ae *a, unsigned k)
{
    uint64_t now = rk_clock_mono_ns();
    uint64_t wait = rk_ae_budget_wait(move_budget(a), now, move_keys_ps(a), move_bytes_ps(a));
    if (wait) /* spent: nothing read from the store for nothing */
        return wait;
    struct move mv = a->q[a->qhead];
    uint32_t rid = next_rid(a, k);
    struct rk_msg m;
    size_t n = 0;
    uint8_t *buf = NULL;
    int rc = move_msg(a, &mv, rid, &m);
    if (rc == 0 && (n = rk_proto_size(&m)) > 0 && (buf = malloc(n)))
        rk_proto_encode(&m, buf);
    if (buf && !rk_ae_budget_take(move_budget(a), now, move_keys_ps(a), move_bytes_ps(a), n)) {
        free(buf); /* another worker took the room first */
        return AE_PACE_MIN_MS * 1000000ull;
    }
    a->qhead++;
    if (buf && send_raw(a, rid, buf, n) == 0) {
        a->mv[k] = mv;
        a->mv_rid[k] = rid;
        a->inflight++;
    } else {
        /* Not sent, and not because our record expired meanwhile: the
         * exchange did not move all it decided to (aeprogress.h). */
        if (rc != RK_ENOTFOUND)
            a->rec.keys_failed++;
        free(mv.key);
    }
    free(buf);
    return 0;
}

/* Apply a pulled record (an RGET answer) through the versioned write: the
 * LWW rule keeps whichever is newer. 1 when it was applied, 0 when there
 * was nothing to take (ours was newer, the peer's expired or is gone), -1
 * when it could not be taken (an error answer, a version too far ahead of
 * our clock, a storage error). */
static int apply_pulled(struct rk_ae *a, const struct move *mv, const struct rk_msg *rep)
{
    uint64_t now = rk_clock_wall_ms(), cur;
    bool tomb = rep->has_tombstone && rep->tombstone;
    if (rep->status == RK_ST_NOT_FOUND || (rep->has_expiry && rep->expiry_ms <= now))
        return 0;
    if (rep->status != RK_ST_OK || !rep->has_version)
        return -1;
    if (rk_hlc_observe(a->env.hlc, rep->version, now) < 0)
        return -1; /* too far ahead of our clock: refused like any replica write */
    struct rk_record r = {.key = mv->key,
                          .klen = mv->klen,
                          .val = rep->val,
                          .vlen = tomb ? 0 : rep->vlen,
                          .version = rep->version,
                          .expiry_ms = rep->has_expiry ? rep->expiry_ms : 0,
                          .partition = (uint16_t)a->cur_part,
                          .tombstone = tomb};
    int rc = rk_storage_put(a->env.store, &r, &cur);
    return rc == 0 ? 1 : rc == RK_ESTALE ? 0 : -1;
}

static void on_move_reply(struct rk_ae *a, unsigned k, const uint8_t *body, size_t len)
{
    struct move mv = a->mv[k];
    struct rk_msg rep;
    a->mv_rid[k] = 0;
    a->inflight--;
    if (mv.kind == RK_AEX_PULL) /* the value came this way: its bytes count now */
        rk_ae_budget_charge_bytes(move_budget(a), rk_clock_mono_ns(), move_bytes_ps(a), len);
    int got = -1; /* an answer that is no reply: not taken */
    if (rk_proto_decode(body, len, &rep) == 0 && (rep.flags & RK_MSG_REPLY)) {
        if (mv.kind == RK_AEX_PULL)
            got = apply_pulled(a, &mv, &rep);
        else if (rep.status != RK_ST_OK || !rep.has_version)
            got = -1; /* refused: the peer may still hold an older version */
        else
            got = rep.version == mv.version; /* else it holds a newer one */
    }
    if (got > 0 && mv.kind == RK_AEX_PULL) {
        a->rec.keys_pulled++;
        a->stats.keys_pulled++;
    } else if (got > 0) {
        a->rec.keys_pushed++; /* the peer now holds our version */
        a->stats.keys_pushed++;
    } else if (got < 0) {
        a->rec.keys_failed++; /* the exchange does not count as complete */
    }
    free(mv.key);
}

static void send_ae(struct rk_ae *a, const uint8_t *req, size_t len);
static void check_done(struct rk_ae *a);

static void load_of(void *arg, struct rk_ae_load *out)
{
    struct rk_ae *a = arg;
    a->env.load(a->env.load_arg, out);
}

/* 0 when the worker is not busy (or a burst after a longest pause is
 * due), else the ns to pause (aepace.h). */
static uint64_t busy_wait(struct rk_ae *a)
{
    if (!a->env.load)
        return 0;
    uint64_t pauses = a->backoff.pauses;
    uint64_t w = rk_ae_backoff_wait(&a->backoff, rk_clock_mono_ns(), load_of, a);
    a->stats.busy_pauses += a->backoff.pauses - pauses;
    return w;
}

/* Come back in wait_ns (at least AE_PACE_MIN_MS) to send what the
 * exchange under way holds back; a wake-up already due sooner stays. */
static void pace_later(struct rk_ae *a, uint64_t wait_ns)
{
    double s = (double)wait_ns / 1e9;
    s = s > AE_PACE_MIN_MS / 1000.0 ? s : AE_PACE_MIN_MS / 1000.0;
    if (ev_is_active(&a->pace_t) && ev_timer_remaining(a->env.loop, &a->pace_t) <= s)
        return;
    ev_timer_stop(a->env.loop, &a->pace_t);
    ev_timer_set(&a->pace_t, s, 0);
    ev_timer_start(a->env.loop, &a->pace_t);
}

/* A pause or a spent budget of the exchange under way is over. */
static void on_pace(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_ae *a = t->data;
    if (a->x)
        pump(a);
}

/* Send what the worker's load, the budget and the slots allow; then the
 * held-back AE request once the queue is low (invariant 2), unless busy. */
static void pump(struct rk_ae *a)
{
    /* Asked only with something to send: a pause (and the burst after the
     * longest one) is spent on sending, not on a reply that came in. */
    bool work = a->qhead < a->qn || a->next_req;
    uint64_t busy = work ? busy_wait(a) : 0, wait = busy;
    unsigned k = 0;
    while (!wait && a->qhead < a->qn && a->inflight < AE_MOVES_INFLIGHT) {
        while (a->mv_rid[k])
            k++;
        wait = send_move(a, k);
    }
    if (a->qhead == a->qn)
        a->qn = a->qhead = 0;
    if (!busy && a->next_req && a->qn - a->qhead < AE_QUEUE_HIGH) {
        const uint8_t *req = a->next_req;
        a->next_req = NULL;
        send_ae(a, req, a->next_len);
    }
    if (wait && (a->qhead < a->qn || a->next_req))
        pace_later(a, wait); /* replies may come first; the timer is for when none does */
    check_done(a);
}

/* ---- the exchange under way ---- */

static void send_ae(struct rk_ae *a, const uint8_t *req, size_t len)
{
    a->ae_rid = next_rid(a, AE_SLOT_AE);
    int rc = send_raw(a, a->ae_rid, req, len);
    if (rc < 0)
        rk_aex_fail(a->x, rc);
    else
        a->ae_wait = true;
}

static void on_ae_reply(struct rk_ae *a, const uint8_t *body, size_t len)
{
    const uint8_t *req;
    size_t rlen;
    a->ae_wait = false;
    a->local.now_ms = rk_clock_wall_ms();
    int rc = rk_aex_on_reply(a->x, body, len, a->local.now_ms, &req, &rlen);
    rk_ae_local_release(&a->local); /* the emitted keys were copied */
    if (rc == 1) {
        a->next_req = req; /* sent by pump once the queue is low */
        a->next_len = rlen;
    }
}

/* How a failed exchange is remembered: the peer's own answer (a status)
 * is a refusal; anything else means it did not answer. */
static enum rk_ae_result failure_of(int err)
{
    return err == RK_ETIMEDOUT || err == RK_EBUSY || err == -ENOMEM ? RK_AE_UNREACHABLE
                                                                    : RK_AE_REFUSED;
}

static void ex_finish(struct rk_ae *a, enum rk_ae_result res)
{
    const struct rk_aex_stats *s = rk_aex_stats(a->x);
    a->rec.finished_ms = rk_clock_wall_ms();
    a->rec.result = res;
    a->rec.leaves_differing = s->leaves_differing;
    if (a->xfer) {
        xfer_exchanged(a, res);
    } else {
        rk_aeprogress_record(a->env.progress, a->cur_part, a->p->id, &a->rec);
        a->stats.exchanges++;
        a->stats.exchanges_failed += res != RK_AE_OK;
    }
    drop_moves(a);
    rk_aex_free(a->x);
    rk_ae_local_release(&a->local);
    a->x = NULL, a->p = NULL, a->next_req = NULL, a->ae_wait = false;
    ev_timer_stop(a->env.loop, &a->watch_t);
    ev_timer_stop(a->env.loop, &a->pace_t); /* nothing held back any more */
}

/* The exchange ends once its steps are answered and its moves are: true
 * when it did (recorded, and a->x is NULL again). */
static bool ex_ended(struct rk_ae *a)
{
    if (!a->x || a->ae_wait || a->next_req || a->inflight || a->qhead < a->qn)
        return false;
    enum rk_aex_state st = rk_aex_state(a->x);
    if (st != RK_AEX_DONE && st != RK_AEX_FAILED)
        return false;
    ex_finish(a, st == RK_AEX_DONE ? RK_AE_OK : failure_of(rk_aex_error(a->x)));
    return true;
}

static void check_done(struct rk_ae *a)
{
    if (ex_ended(a))
        advance(a);
}

static void on_mark_reply(struct rk_ae *a, const uint8_t *body, size_t len);

static void take_reply(void *arg, nng_msg *msg)
{
    struct ae_peer *p = arg;
    struct rk_ae *a = p->a;
    uint32_t rid = 0;
    if (nng_msg_header_trim_u32(msg, &rid) != 0) {
        /* no header word: not an answer to us */
    } else if (!rk_proto_reply_trusted(a->env.auth, msg, p->addr)) {
        /* not from a holder of the secret: as good as no answer */
    } else if ((rid & 0xFFu) == AE_SLOT_MARK) {
        if (a->fwd_p == p && rid == a->fwd_rid)
            on_mark_reply(a, nng_msg_body(msg), nng_msg_len(msg));
    } else if (a->p == p) {
        unsigned k = rid & 0xFFu;
        a->rec.bytes += nng_msg_len(msg);
        a->deadline_ms = mono_ms() + a->env.request_timeout_ms;
        if (k == AE_SLOT_AE && a->ae_wait && rid == a->ae_rid)
            on_ae_reply(a, nng_msg_body(msg), nng_msg_len(msg));
        else if (k < AE_MOVES_INFLIGHT && a->mv_rid[k] == rid && rid != 0) /* 0: a free slot */
            on_move_reply(a, k, nng_msg_body(msg), nng_msg_len(msg));
    }
    nng_msg_free(msg); /* late answers of an abandoned exchange, forged words: invariant 3 */
}

static void on_peer_rx(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    struct ae_peer *p = io->data;
    struct rk_ae *a = p->a;
    rk_nng_rx_batch(p->s, RK_NNG_RX_BATCH, take_reply, p);
    if (a->x && a->p == p)
        pump(a);
}

/* Nothing answered within cluster.request_timeout: the exchange fails. */
static void on_watch(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_ae *a = t->data;
    if (!a->x || !(a->ae_wait || a->inflight) || mono_ms() < a->deadline_ms)
        return; /* nothing asked (a spent budget waits), or still in time */
    rk_aex_fail(a->x, RK_ETIMEDOUT);
    drop_moves(a);
    a->next_req = NULL, a->ae_wait = false;
    ex_finish(a, RK_AE_UNREACHABLE);
    advance(a);
}

/* The exchange's AE_ROOT: sent now, or held (as the next request) while
 * the worker is busy; pump sends it when the pause is over. */
static void first_request(struct rk_ae *a, const uint8_t *req, size_t len)
{
    uint64_t busy = busy_wait(a);
    if (!busy) {
        send_ae(a, req, len);
        return;
    }
    a->next_req = req;
    a->next_len = len;
    pace_later(a, busy);
}

/* rk_storage_visit_fn of pull_unreadable: pull one key (copied). */
static void pull_one(void *arg, const struct rk_record *r)
{
    struct rk_aew_entry e = {.klen = (uint16_t)r->klen, .key = r->key};
    queue_move(arg, RK_AEX_PULL, &e);
}

/* A partition marked CORRUPT holds records this replica cannot read, which
 * the trees cannot show (they hash what the index says, alike on every
 * replica): the exchange also pulls each of them from the peer, whose copy
 * at the same version replaces the unreadable one (storage.h), a newer one
 * winning as always. Only once the exchange's request is out or held for
 * a busy worker (its replies pump the moves); a replica exchanged later
 * finds none left to pull. */
static void pull_unreadable(struct rk_ae *a, uint32_t part)
{
    if (!(a->ae_wait || a->next_req) ||
        !(rk_aeprogress_marks(a->env.progress, part) & RK_AE_MARK_CORRUPT))
        return;
    int64_t n = rk_storage_unreadable(a->env.store, (uint16_t)part, pull_one, a);
    if (n < 0)
        rk_warn("antientropy", "partition %u: looking for unreadable records: %s", part,
                rk_strerror((int)n));
}

/* Start an exchange of part with replica id (a transfer's when xfer: it
 * only pulls). false when it could not start (recorded: the caller goes
 * on). */
static bool ex_start(struct rk_ae *a, uint32_t part, const char *id, bool xfer)
{
    a->cur_part = part;
    a->xfer = xfer;
    struct rk_view *v = rk_view_acquire(a->env.views);
    const struct rk_view_member *m = v ? rk_view_find(v, id) : NULL;
    /* No address yet (a member known only by name): unreachable, no socket. */
    struct ae_peer *p = m && rk_view_up(m) && m->peer_addr[0] ? peer_get(a, m) : NULL;
    rk_view_release(v);
    struct rk_aex_conf conf = {.tree = {&rk_ae_local_ops, &a->local},
                               .partition = (uint16_t)part,
                               .first_id = a->seq + 1,
                               .emit = on_emit,
                               .arg = a};
    uint64_t now = rk_clock_wall_ms();
    a->rec = (struct rk_ae_exchange){.started_ms = now, .finished_ms = now};
    const uint8_t *req;
    size_t len;
    a->local.now_ms = now;
    if (!p || rk_aex_alloc(&a->x, &conf) < 0) {
        a->rec.result = RK_AE_UNREACHABLE;
        if (xfer) {
            xfer_exchanged(a, RK_AE_UNREACHABLE);
            return false;
        }
        rk_aeprogress_record(a->env.progress, part, id, &a->rec);
        a->stats.exchanges_failed++;
        return false;
    }
    a->p = p;
    a->deadline_ms = mono_ms() + a->env.request_timeout_ms;
    ev_timer_again(a->env.loop, &a->watch_t);
    int rc = rk_aex_start(a->x, &req, &len);
    rk_ae_local_release(&a->local);
    if (rc == 0)
        first_request(a, req, len);
    if (!xfer)
        pull_unreadable(a, part);
    return true;
}

/* ---- transfers: pending partitions pulled from their holders ---- */

/* This node's index in p's pending list, or -1. */
static int pending_at(const struct rk_view *v, uint32_t p)
{
    const struct rk_view_part *vp = &v->part[p];
    for (int k = 0; k < vp->npend; k++)
        if (vp->pend[k] == v->self)
            return k;
    return -1;
}

static bool xf_done_has(const struct rk_ae *a, uint32_t p)
{
    return a->xf_done[p / 8] >> (p % 8) & 1u;
}

static void xf_done_set(struct rk_ae *a, uint32_t p, bool on)
{
    if (on)
        a->xf_done[p / 8] |= (uint8_t)(1u << (p % 8));
    else
        a->xf_done[p / 8] &= (uint8_t) ~(1u << (p % 8));
}

/* The sources of pending partition p (this node at pend[k]): its displaced
 * owner alone when it has one (the owner it replaces holds every write
 * acknowledged with it: docs/TRANSFERS.md §3), else every serving member
 * that is up (a removal: whatever survived). false, with why, when none
 * can be asked now. */
static bool xfer_sources(struct rk_ae *a, const struct rk_view *v, uint32_t p, int k)
{
    const struct rk_view_part *vp = &v->part[p];
    a->xf_nsrc = 0;
    if (vp->partner[k] >= 0) {
        const struct rk_view_member *m = &v->m[vp->serve[vp->partner[k]]];
        if (!rk_view_up(m)) {
            snprintf(a->stats.xfer_why, sizeof(a->stats.xfer_why), "partition %u: source %s down",
                     p, m->id);
            return false;
        }
        snprintf(a->xf_src[a->xf_nsrc++], sizeof(a->xf_src[0]), "%s", m->id);
        return true;
    }
    for (size_t i = 0; i < vp->nserve; i++)
        if (vp->serve[i] != v->self && rk_view_up(&v->m[vp->serve[i]]))
            snprintf(a->xf_src[a->xf_nsrc++], sizeof(a->xf_src[0]), "%s", v->m[vp->serve[i]].id);
    if (a->xf_nsrc == 0)
        snprintf(a->stats.xfer_why, sizeof(a->stats.xfer_why),
                 "partition %u: no source (no holder up)", p);
    return a->xf_nsrc > 0;
}

/* One of the node's transfer slots (transfers.max_concurrent), or false. */
static bool xfer_slot_take(struct rk_ae *a)
{
    struct rk_xfer_limits *x = a->env.xfer;
    unsigned cur = atomic_load(&x->active);
    while (cur < atomic_load(&x->max_concurrent))
        if (atomic_compare_exchange_weak(&x->active, &cur, cur + 1))
            return true;
    return false;
}

/* Pick the next pending partition of this worker whose transfer may run:
 * the placement agreed for a request timeout (a write routed by an older
 * view has ended: docs/TRANSFERS.md §3 step 1) and a source up. true
 * with xf_* set. Counts the pending ones on the way. */
static bool xfer_begin(struct rk_ae *a)
{
    if (a->x || a->xf_on || !a->env.xfer_ready)
        return false;
    struct rk_view *v = rk_view_acquire(a->env.views);
    if (!v)
        return false;
    uint64_t now = rk_clock_wall_ms();
    bool settled = v->agreed && now >= v->agreed_since_ms + a->env.request_timeout_ms;
    bool go = false;
    uint32_t pending = 0, nw = a->env.nworkers ? a->env.nworkers : 1;
    a->stats.xfer_why[0] = '\0';
    if (!settled)
        snprintf(a->stats.xfer_why, sizeof(a->stats.xfer_why),
                 v->agreed ? "placement agreed; waiting a request timeout for older writes"
                           : "waiting for every member to see the same members");
    for (uint32_t i = 0, p = a->xf_next; i < a->env.partitions;
         i++, p = (p + 1) % a->env.partitions) {
        if (p % nw != a->env.worker)
            continue;
        int k = pending_at(v, p);
        if (k < 0 || rk_view_holds(v, p)) {
            xf_done_set(a, p, false);
            continue;
        }
        if (xf_done_has(a, p))
            continue;
        pending++;
        if (go || !settled || now < a->xf_retry_ms)
            continue;
        if (xfer_sources(a, v, p, k)) {
            go = xfer_slot_take(a);
            a->xf_part = p;
            if (!go)
                snprintf(a->stats.xfer_why, sizeof(a->stats.xfer_why),
                         "limit reached (transfers.max_concurrent = %u)",
                         atomic_load(&a->env.xfer->max_concurrent));
            else
                a->stats.xfer_why[0] = '\0';
        }
    }
    rk_view_release(v);
    a->stats.xfer_pending = pending;
    if (!go)
        return false;
    a->xf_on = true;
    a->xf_bad = false;
    a->xf_at = 0;
    a->stats.xfer_active = true;
    a->stats.xfer_part = a->xf_part;
    a->stats.xfer_started_ms = now;
    return true;
}

/* One exchange of the transfer under way ended. */
static void xfer_exchanged(struct rk_ae *a, enum rk_ae_result res)
{
    a->stats.xfer_keys += a->rec.keys_pulled;
    a->stats.xfer_bytes += a->rec.bytes;
    if (res != RK_AE_OK || a->rec.keys_failed)
        a->xf_bad = true;
}

static void xfer_end(struct rk_ae *a)
{
    uint32_t p = a->xf_part;
    a->xf_on = false;
    atomic_fetch_sub(&a->env.xfer->active, 1);
    a->stats.xfer_active = false;
    a->xf_next = (p + 1) % a->env.partitions;
    if (a->xf_bad) {
        a->stats.xfer_failed++;
        a->xf_retry_ms = rk_clock_wall_ms() + XFER_RETRY_MS;
        rk_info("transfers", "partition %u: transfer from %s failed; retrying", p,
                a->stats.xfer_from);
        rk_event(RK_EVENT_TRANSFER, "partition %u: transfer from %s failed; retrying", p,
                 a->stats.xfer_from);
        return;
    }
    xf_done_set(a, p, true);
    a->stats.xfer_done++;
    if (a->stats.xfer_pending)
        a->stats.xfer_pending--;
    a->env.xfer_ready(a->env.xfer_arg, p);
}

/* Run the transfer under way on: its next source, else its end and the
 * next transfer. Returns with an exchange in flight or none to run. */
static void xfer_advance(struct rk_ae *a)
{
    while (a->xf_on && !a->x) {
        if (a->xf_at < a->xf_nsrc) {
            const char *src = a->xf_src[a->xf_at++];
            snprintf(a->stats.xfer_from, sizeof(a->stats.xfer_from), "%s", src);
            if (ex_start(a, a->xf_part, src, true) && !ex_ended(a))
                return;
            continue;
        }
        xfer_end(a);
        if (!xfer_begin(a))
            return;
    }
}

static void on_xfer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_ae *a = t->data;
    if (!a->x)
        advance(a);
}

/* ---- rounds ---- */

/* part's replicas in v (its serving list, placement.h: the members that
 * hold it; a pending owner receives it by a transfer, not by these
 * exchanges) into ids; *self_at = the index of this node in it, or -1.
 * Returns how many. */
static size_t replicas_of(const struct rk_ae *a, const struct rk_view *v, uint32_t part,
                          const char **ids, int *self_at)
{
    (void)a;
    const struct rk_view_part *vp = &v->part[part];
    *self_at = -1;
    for (size_t i = 0; i < vp->nserve; i++) {
        ids[i] = v->m[vp->serve[i]].id;
        if (vp->serve[i] == v->self)
            *self_at = (int)i;
    }
    return vp->nserve;
}

/* Whether self is in part's preference list; its other replicas into
 * a->ids when it is. */
static bool part_replicas(struct rk_ae *a, const struct rk_view *v, uint32_t part)
{
    const char *ids[RK_RING_REPLICAS_MAX];
    int self;
    size_t n = replicas_of(a, v, part, ids, &self);
    a->nids = 0;
    for (size_t i = 0; self >= 0 && i < n; i++)
        if ((int)i != self)
            snprintf(a->ids[a->nids++], sizeof(a->ids[0]), "%s", ids[i]);
    return self >= 0;
}

/* The partition under way is done with every replica: its mark clears
 * if each of them exchanged after it was set (aeprogress.h). */
static void part_end(struct rk_ae *a)
{
    const char *peers[RK_RING_REPLICAS_MAX];
    for (size_t i = 0; i < a->nids; i++)
        peers[i] = a->ids[i];
    rk_aeprogress_clear(a->env.progress, a->list[a->at], peers, a->nids);
}

/* Between rounds no socket stays open: members come and go (a stranger
 * merged by gossip, a node that left), and an idle socket would hold its
 * descriptors and nng's resources until the next round. One connect per
 * peer per round costs little next to the round. */
static void peers_close(struct rk_ae *a)
{
    for (size_t i = 0; i < a->npeers; i++)
        peer_close(a, a->peers[i]);
    a->npeers = 0;
    a->fwd_p = NULL; /* a mark handed over and not answered stays: the next look */
}

static void round_end(struct rk_ae *a)
{
    struct rk_aeprogress_summary s;
    if (!a->xf_on && !a->stats.xfer_pending) /* else transfers go on using them */
        peers_close(a);
    rk_aeprogress_summary(a->env.progress, &s);
    rk_aeprogress_round_finish(a->env.progress, rk_clock_wall_ms());
    if (s.in_progress && a->env.round_done) { /* a round ran (none does without a view) */
        rk_aeprogress_summary(a->env.progress, &s);
        a->env.round_done(a->env.round_arg, &s);
    }
    a->running = a->stats.running = false;
    ev_timer_stop(a->env.loop, &a->round_t);
    ev_timer_set(&a->round_t, (double)atomic_load(a->env.pace.interval_ms) / 1000.0, 0);
    ev_timer_start(a->env.loop, &a->round_t);
}

/* Load the partition list[at] (its replicas, from the current view):
 * false when this node is no longer one of them. */
static bool part_begin(struct rk_ae *a)
{
    if (rk_aeprogress_compared(a->env.progress, a->list[a->at]))
        return false; /* a round resumed after a restart: done before it */
    struct rk_view *v = rk_view_acquire(a->env.views);
    bool mine = v && part_replicas(a, v, a->list[a->at]);
    rk_view_release(v);
    a->peer_at = 0;
    return mine;
}

/* Run the round on: the next replica of the partition under way, else the
 * next partition, else the round's end. Returns with an exchange in
 * flight or the round over. */
static void advance(struct rk_ae *a)
{
    if (a->xf_on || (!a->x && xfer_begin(a))) {
        xfer_advance(a); /* transfers first: the AE round goes on after */
        if (a->xf_on || a->x)
            return;
    }
    while (a->running && !a->x) {
        if (a->peer_at < a->nids) {
            if (ex_start(a, a->list[a->at], a->ids[a->peer_at++], false) && !ex_ended(a))
                return;
            continue;
        }
        if (a->at < a->nlist && a->nids)
            part_end(a);
        a->nids = 0;
        while (++a->at < a->nlist && !part_begin(a))
            ;
        if (a->at >= a->nlist)
            round_end(a);
    }
}

struct order {
    struct rk_ae *a;
    const struct rk_view *v;
};

static bool order_replica(void *arg, uint32_t p)
{
    struct order *o = arg;
    const char *ids[RK_RING_REPLICAS_MAX];
    int self;
    replicas_of(o->a, o->v, p, ids, &self);
    return self >= 0;
}

static unsigned order_marks(void *arg, uint32_t p)
{
    return rk_aeprogress_marks(((struct order *)arg)->a->env.progress, p);
}

/* A mark on a partition this node does not replicate can never clear by
 * exchanges (none run for it here): it is dropped, with a line. Damage
 * found in data the node no longer owns, a repair asked of a node that
 * stopped being a replica: the partition's replicas hold it. */
static void drop_foreign_marks(struct rk_ae *a, struct order *o)
{
    for (uint32_t p = a->env.worker; a->env.nworkers && p < a->env.partitions;
         p += a->env.nworkers) {
        unsigned m = order_marks(o, p);
        if (m && !order_replica(o, p) && rk_aeprogress_clear(a->env.progress, p, NULL, 0))
            rk_info("antientropy", "partition %u: not a replica here, its marks (0x%x) dropped", p,
                    m);
    }
}

/* The round's list: owned partitions this node replicates, the marked
 * ones first (they wait for a repair), from this node's start (aepace.h).
 * Its length. */
static int round_list(struct rk_ae *a)
{
    struct rk_view *v = rk_view_acquire(a->env.views);
    if (!v)
        return 0;
    struct order o = {a, v};
    drop_foreign_marks(a, &o);
    size_t n = rk_ae_round_order(a->env.partitions, a->env.nworkers, a->env.worker,
                                 rk_ae_round_start(a->env.self, a->env.partitions), order_replica,
                                 order_marks, &o, a->list);
    rk_view_release(v);
    return (int)n;
}

static void marks_take(struct rk_ae *a);

static void round_begin(struct rk_ae *a)
{
    struct rk_aeprogress_summary s;
    marks_take(a); /* dropped hints marked since the last look go first */
    int n = round_list(a);
    rk_aeprogress_summary(a->env.progress, &s);
    if (n <= 0) { /* no view yet, or nothing to compare: look again later */
        round_end(a);
        return;
    }
    if (!s.in_progress) /* else resume the round a restart cut short */
        rk_aeprogress_round_start(a->env.progress, rk_clock_wall_ms(), (uint32_t)n);
    a->nlist = (size_t)n;
    a->at = SIZE_MAX; /* advance moves to list[0] */
    a->running = a->stats.running = true;
    advance(a);
}

/* Between rounds: the next one (when enabled). A transfer's exchange may
 * be under way: the round begins all the same and goes on once the
 * transfers are done (advance runs them first). */
static void on_round(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_ae *a = t->data;
    if (!a->running && atomic_load(a->env.pace.enabled)) {
        round_begin(a);
    } else if (!a->running) {
        ev_timer_set(t, (double)atomic_load(a->env.pace.interval_ms) / 1000.0, 0);
        ev_timer_start(loop, t);
    }
}

/* ---- dropped hints: their marks reach the progress of a replica ---- */

struct take {
    struct rk_ae *a;
    const struct rk_view *v;
    uint64_t now;
    size_t n, cap;     /* a->taken[0..n): marked in the progress here */
    int64_t elsewhere; /* a partition to hand to another replica, or -1 */
};

static void take_mark(uint32_t p, void *arg)
{
    struct take *t = arg;
    const char *ids[RK_RING_REPLICAS_MAX];
    int self;
    replicas_of(t->a, t->v, p, ids, &self);
    if (self < 0) {
        t->elsewhere = t->elsewhere < 0 ? (int64_t)p : t->elsewhere;
        return;
    }
    /* A partition of another worker cannot be marked here (the layout is
     * fixed, so a hint store only marks its own worker's): it stays. */
    if (t->n < t->cap && rk_aeprogress_mark(t->a->env.progress, p, RK_AE_MARK_HINT, t->now) == 0)
        t->a->taken[t->n++] = p;
}

/* Hand part's mark to another replica: REPAIR with HINT over its peer
 * socket (proto.h), answered once that replica saved the mark. 0, or an
 * error when it could not be sent. */
static int mark_send(struct rk_ae *a, struct ae_peer *p, uint32_t part)
{
    char key[16];
    uint8_t buf[RK_PROTO_HDR + 64 + RK_MEMBER_ID_MAX];
    uint32_t rid = next_rid(a, AE_SLOT_MARK);
    struct rk_msg m = {.opcode = RK_OP_REPAIR,
                       .id = rid,
                       .key = (const uint8_t *)key,
                       .klen = (uint32_t)snprintf(key, sizeof(key), "%u", part),
                       .has_key = true,
                       .hint = (const uint8_t *)a->env.self,
                       .hlen = (uint32_t)strlen(a->env.self),
                       .has_hint = true};
    size_t n = rk_proto_size(&m);
    if (n == 0 || n > sizeof(buf))
        return RK_ETOOLARGE;
    rk_proto_encode(&m, buf);
    int rc = peer_send(p, rid, buf, n);
    if (rc == 0) {
        a->fwd_p = p, a->fwd_rid = rid, a->fwd_part = part;
        a->fwd_deadline_ms = mono_ms() + a->env.request_timeout_ms;
    }
    return rc;
}

/* This node holds no replica of part (it coordinated or stood in for a
 * write it is not a replica of): the mark goes to a replica that is up,
 * starting with the one after the last that failed. */
static void mark_forward(struct rk_ae *a, const struct rk_view *v, uint32_t part)
{
    const char *ids[RK_RING_REPLICAS_MAX];
    int self;
    size_t n = replicas_of(a, v, part, ids, &self);
    for (size_t i = 0; i < n; i++) {
        const struct rk_view_member *m = rk_view_find(v, ids[(a->fwd_next + i) % n]);
        if (!m || !rk_view_up(m) || !m->peer_addr[0])
            continue;
        /* peer_get reopens a socket whose address changed: not the exchange's. */
        if (a->x && strcmp(a->p->id, m->id) == 0 && strcmp(a->p->addr, m->peer_addr) != 0)
            continue;
        struct ae_peer *p = peer_get(a, m);
        if (p && mark_send(a, p, part) == 0)
            return;
    }
}

/* One look at the worker's dropped-hint marks: those of partitions this
 * node replicates are marked in the progress, which is saved, and only
 * then cleared from the marks (a crash in between marks them twice, which
 * is harmless); one of another replica's partitions is handed over. */
static void marks_take(struct rk_ae *a)
{
    struct rk_aemarks *hm = a->env.hint_marks;
    if (!hm || rk_aemarks_count(hm) == 0)
        return;
    struct rk_view *v = rk_view_acquire(a->env.views);
    if (!v)
        return; /* no view yet: the next look */
    struct take t = {a, v, rk_clock_wall_ms(), 0, a->env.partitions / a->env.nworkers + 1, -1};
    rk_aemarks_each(hm, take_mark, &t);
    if (t.n && rk_aeprogress_save(a->env.progress, t.now) == 0) { /* a failed save: next look */
        for (size_t i = 0; i < t.n; i++)
            rk_aemarks_clear(hm, a->taken[i]); /* saved by the hint store's next commit */
        a->stats.hint_marks_taken += t.n;
    }
    if (t.elsewhere >= 0 && !a->fwd_p)
        mark_forward(a, v, (uint32_t)t.elsewhere);
    rk_view_release(v);
}

/* The answer to a mark handed over: cleared here once the replica has it. */
static void on_mark_reply(struct rk_ae *a, const uint8_t *body, size_t len)
{
    struct rk_msg rep;
    bool decoded = rk_proto_decode(body, len, &rep) == 0 && (rep.flags & RK_MSG_REPLY) &&
                   rep.opcode == RK_OP_REPAIR;
    if (decoded && rep.status == RK_ST_OK) {
        rk_aemarks_clear(a->env.hint_marks, a->fwd_part);
        a->stats.hint_marks_forwarded++;
    } else {
        a->fwd_next++; /* another replica next time */
        bool text = decoded && rep.has_text && rep.tlen > 0;
        if (rk_log_due(&a->fwd_log_ms, rk_clock_wall_ms()))
            rk_warn("antientropy",
                    "partition %u: replica %s did not take the mark of a dropped hint (%s%s%.*s); "
                    "another replica is asked later",
                    a->fwd_part, a->fwd_p->id,
                    decoded ? rk_proto_status_name(rep.status) : "malformed answer",
                    text ? ": " : "", text ? (int)(rep.tlen > 200 ? 200 : rep.tlen) : 0,
                    text ? (const char *)rep.text : "");
    }
    a->fwd_p = NULL; /* its socket closes between rounds (on_marks), not in its own callback */
}

static void on_marks(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_ae *a = t->data;
    if (a->fwd_p && mono_ms() >= a->fwd_deadline_ms) {
        a->fwd_p = NULL; /* no answer: the mark stays, another replica next time */
        a->fwd_next++;
    }
    marks_take(a);
    /* Sockets a hand-over opened between rounds; not while transfers run
     * or wait (their exchanges use them, one after another). */
    if (!a->running && !a->fwd_p && !a->x && !a->xf_on && !a->stats.xfer_pending && a->npeers)
        peers_close(a);
}

int rk_ae_create(struct rk_ae **out, const struct rk_ae_env *env)
{
    struct rk_ae *a = calloc(1, sizeof(*a));
    uint32_t owned = env->nworkers ? env->partitions / env->nworkers + 1 : 1;
    if (!a || !(a->list = calloc(owned, sizeof(*a->list))) ||
        !(a->taken = calloc(owned, sizeof(*a->taken))) ||
        !(a->xf_done = calloc(env->partitions / 8 + 1, 1))) {
        if (a) {
            free(a->list);
            free(a->taken);
        }
        free(a);
        return -ENOMEM;
    }
    a->env = *env;
    if (!a->env.budget) {
        rk_ae_budget_init(&a->own_budget);
        a->env.budget = &a->own_budget;
    }
    a->local = (struct rk_ae_local){.tree = env->tree, .arg = env->tree_arg, .store = env->store};
    ev_timer_init(&a->round_t, on_round, (double)atomic_load(env->pace.interval_ms) / 1000.0, 0);
    ev_timer_init(&a->pace_t, on_pace, 0, 0);
    double watch = (double)(env->request_timeout_ms ? env->request_timeout_ms : 1000) / 4000.0;
    ev_timer_init(&a->watch_t, on_watch, watch, watch);
    ev_timer_init(&a->marks_t, on_marks, AE_MARKS_MS / 1000.0, AE_MARKS_MS / 1000.0);
    ev_timer_init(&a->xfer_t, on_xfer, XFER_LOOK_MS / 1000.0, XFER_LOOK_MS / 1000.0);
    a->round_t.data = a->pace_t.data = a->watch_t.data = a->marks_t.data = a->xfer_t.data = a;
    ev_timer_start(env->loop, &a->round_t);
    ev_timer_start(env->loop, &a->marks_t);
    ev_timer_start(env->loop, &a->xfer_t);
    *out = a;
    return 0;
}

void rk_ae_destroy(struct rk_ae *a)
{
    if (!a)
        return;
    if (a->x)
        ex_finish(a, RK_AE_ABORTED);
    if (a->xf_on) {
        a->xf_bad = true;
        xfer_end(a);
    }
    ev_timer_stop(a->env.loop, &a->round_t);
    ev_timer_stop(a->env.loop, &a->pace_t);
    ev_timer_stop(a->env.loop, &a->watch_t);
    ev_timer_stop(a->env.loop, &a->marks_t);
    ev_timer_stop(a->env.loop, &a->xfer_t);
    peers_close(a);
    free(a->peers);
    free(a->q);
    free(a->list);
    free(a->taken);
    free(a->xf_done);
    free(a);
}

void rk_ae_stats(const struct rk_ae *a, struct rk_ae_stats *out)
{
    *out = a->stats;
    out->exchanging = a->x != NULL;
    out->cur_pulled = a->x ? a->rec.keys_pulled : 0;
    out->cur_pushed = a->x ? a->rec.keys_pushed : 0;
    out->cur_bytes = a->x ? a->rec.bytes : 0;
}

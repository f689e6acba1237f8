/* Anti-entropy on a worker: the local tree adapter (antientropy.h).
 *
 * The adapter answers the exchange's three questions from what the worker
 * already keeps: top and leaves from the partition's hash tree (aetree.h,
 * exact on every write, rebuilt first when an entry expired), and scan
 * from the storage index without reading values.
 */
#include "cluster/antientropy.h"
#include "cluster/aeprogress.h"
#include "cluster/hlc.h"
#include "cluster/view.h"
#include "proto/proto.h"
#include "util/clock.h"
#include "util/err.h"
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
 *   round timer (antientropy.interval) ─► round_begin: the list = owned
 *     partitions whose preference list holds this node, marked ones first
 *   advance ─► part_begin (the partition's other replicas, from the view)
 *           ─► ex_start (one exchange per replica that is up)
 *                AE_ROOT / AE_KEYS on the peer's socket ─► on_ae_reply
 *                  └─ emit: keys to PUSH (RPUT of our record) and to PULL
 *                     (RGET, then rk_storage_put here: the LWW rule decides)
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
 * Failure cases: a peer that is down in the view is recorded unreachable
 * and skipped; one that answers nothing within cluster.request_timeout
 * (since the last answer) fails the exchange (moves still queued are
 * dropped: the next round finds them again); a peer's error status (busy,
 * not a replica, an older version) fails it as refused. Pushed and pulled
 * records go through the normal versioned write on either side, so a move
 * that raced a client write can only lose to a newer version.
 */

#define AE_MOVES_INFLIGHT   32u   /* < 48: a raw rep0 keeps 64 replies per connection (NNG-NOTES) */
#define AE_QUEUE_HIGH       8192u /* two full AE_KEYS replies of moves */
#define AE_SLOT_AE          0xFFu /* header word low byte of an AE request */
#define AE_PACE_MS          20    /* a spent budget is looked at again this much later */
#define AE_RECONNECT_MIN_MS 50    /* as the coordinator's peers (coord_int.h) */
#define AE_RECONNECT_MAX_MS 1000
#define AE_SOCK_BUF         (AE_MOVES_INFLIGHT + 2) /* every request one exchange has out */
#define AE_CLOSE_LIMIT_MS   300

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
    ev_timer round_t; /* between rounds, and while the budget is spent */
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
    double key_tokens, byte_tokens;
    uint64_t tokens_ms;
    struct rk_ae_stats stats;
};

static void advance(struct rk_ae *a);
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

/* Send the whole message buf[0..len) under header word rid. 0 or an error
 * (nothing kept). */
static int send_raw(struct rk_ae *a, uint32_t rid, const void *buf, size_t len)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, len) != 0)
        return -ENOMEM;
    memcpy(nng_msg_body(m), buf, len);
    if (!a->ae_wait && !a->inflight) /* the first request out: the clock starts */
        a->deadline_ms = mono_ms() + a->env.request_timeout_ms;
    if (nng_msg_header_append_u32(m, rid) != 0 || nng_sendmsg(a->p->s, m, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(m);
        return RK_EBUSY;
    }
    a->rec.bytes += len;
    return 0;
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
        if (kind != RK_AEX_PULL)
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

/* Send the queue's next move into free slot k. The message is encoded
 * before anything else touches the store (r's views are borrowed). */
static void send_move(struct rk_ae *a, unsigned k)
{
    struct move mv = a->q[a->qhead++];
    uint32_t rid = next_rid(a, k);
    struct rk_msg m;
    size_t n = 0;
    uint8_t *buf = NULL;
    if (move_msg(a, &mv, rid, &m) == 0 && (n = rk_proto_size(&m)) > 0 && (buf = malloc(n)))
        rk_proto_encode(&m, buf);
    if (buf && send_raw(a, rid, buf, n) == 0) {
        a->mv[k] = mv;
        a->mv_rid[k] = rid;
        a->inflight++;
        a->key_tokens -= 1;
        a->byte_tokens -= (double)n;
    } else {
        free(mv.key); /* expired, too large or not sent: the next round looks again */
    }
    free(buf);
}

/* Apply a pulled record (an RGET answer) through the versioned write: the
 * LWW rule keeps whichever is newer (RK_ESTALE: ours already was). true
 * when it was applied. */
static bool apply_pulled(struct rk_ae *a, const struct move *mv, const struct rk_msg *rep)
{
    uint64_t now = rk_clock_wall_ms(), cur;
    bool tomb = rep->has_tombstone && rep->tombstone;
    if (rep->status != RK_ST_OK || !rep->has_version || (rep->has_expiry && rep->expiry_ms <= now))
        return false;
    if (rk_hlc_observe(a->env.hlc, rep->version, now) < 0)
        return false; /* too far ahead of our clock: refused like any replica write */
    struct rk_record r = {.key = mv->key,
                          .klen = mv->klen,
                          .val = rep->val,
                          .vlen = tomb ? 0 : rep->vlen,
                          .version = rep->version,
                          .expiry_ms = rep->has_expiry ? rep->expiry_ms : 0,
                          .partition = (uint16_t)a->list[a->at],
                          .tombstone = tomb};
    return rk_storage_put(a->env.store, &r, &cur) == 0;
}

static void on_move_reply(struct rk_ae *a, unsigned k, const uint8_t *body, size_t len)
{
    struct move mv = a->mv[k];
    struct rk_msg rep;
    a->mv_rid[k] = 0;
    a->inflight--;
    if (rk_proto_decode(body, len, &rep) == 0 && (rep.flags & RK_MSG_REPLY)) {
        if (mv.kind == RK_AEX_PULL && apply_pulled(a, &mv, &rep))
            a->rec.keys_pulled++;
        else if (mv.kind == RK_AEX_PUSH && rep.status == RK_ST_OK && rep.has_version &&
                 rep.version == mv.version)
            a->rec.keys_pushed++; /* the peer now holds our version */
    }
    free(mv.key);
}

/* Refill the budget (antientropy.max_*_per_second; 0 = no limit). At most
 * a tenth of a second's worth accrues, so no 2 s window sees much more
 * than the budget. */
static double cap_at(double v, double cap)
{
    return v < cap ? v : cap;
}

static bool budget_left(struct rk_ae *a)
{
    uint64_t now = mono_ms(), keys = atomic_load(a->env.pace.max_keys_per_second);
    uint64_t bytes = atomic_load(a->env.pace.max_bytes_per_second);
    double dt = (double)(now - a->tokens_ms) / 1000.0;
    a->tokens_ms = now;
    a->key_tokens = keys ? cap_at(a->key_tokens + dt * (double)keys, (double)keys / 10 + 1) : 1;
    a->byte_tokens =
        bytes ? cap_at(a->byte_tokens + dt * (double)bytes, (double)bytes / 10 + 65536) : 1;
    return a->key_tokens >= 1 && a->byte_tokens > 0;
}

static void send_ae(struct rk_ae *a, const uint8_t *req, size_t len);
static void check_done(struct rk_ae *a);

/* Send what the budget and the slots allow; then the held-back AE
 * request once the queue is low (invariant 2). */
static void pump(struct rk_ae *a)
{
    unsigned k = 0;
    while (a->qhead < a->qn && a->inflight < AE_MOVES_INFLIGHT && budget_left(a)) {
        while (a->mv_rid[k])
            k++;
        send_move(a, k);
    }
    if (a->qhead == a->qn)
        a->qn = a->qhead = 0;
    else if (a->inflight == 0 && !ev_is_active(&a->round_t)) { /* budget spent: come back */
        ev_timer_set(&a->round_t, AE_PACE_MS / 1000.0, 0);
        ev_timer_start(a->env.loop, &a->round_t);
    }
    if (a->next_req && a->qn - a->qhead < AE_QUEUE_HIGH) {
        const uint8_t *req = a->next_req;
        a->next_req = NULL;
        send_ae(a, req, a->next_len);
    }
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
    rk_aeprogress_record(a->env.progress, a->list[a->at], a->p->id, &a->rec);
    a->stats.exchanges++;
    a->stats.exchanges_failed += res != RK_AE_OK;
    a->stats.keys_pulled += a->rec.keys_pulled;
    a->stats.keys_pushed += a->rec.keys_pushed;
    drop_moves(a);
    rk_aex_free(a->x);
    rk_ae_local_release(&a->local);
    a->x = NULL, a->p = NULL, a->next_req = NULL, a->ae_wait = false;
    ev_timer_stop(a->env.loop, &a->watch_t);
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

static void take_reply(void *arg, nng_msg *msg)
{
    struct ae_peer *p = arg;
    struct rk_ae *a = p->a;
    uint32_t rid = 0;
    if (a->p == p && nng_msg_header_trim_u32(msg, &rid) == 0) {
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

/* Start an exchange of the partition under way with replica id. false
 * when it could not start (recorded: the caller goes on). */
static bool ex_start(struct rk_ae *a, const char *id)
{
    uint32_t part = a->list[a->at];
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
        send_ae(a, req, len);
    return true;
}

/* ---- rounds ---- */

/* Whether self is in part's preference list; its other replicas into
 * a->ids when it is. */
static bool part_replicas(struct rk_ae *a, const struct rk_view *v, uint32_t part)
{
    const char *ids[RK_RING_REPLICAS_MAX];
    size_t n = rk_ring_preference(v->ring, part, ids, RK_RING_REPLICAS_MAX);
    bool mine = false;
    a->nids = 0;
    for (size_t i = 0; i < n && i < a->env.replicas; i++) {
        if (strcmp(ids[i], a->env.self) == 0)
            mine = true;
        else
            snprintf(a->ids[a->nids++], sizeof(a->ids[0]), "%s", ids[i]);
    }
    return mine;
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
}

static void round_end(struct rk_ae *a)
{
    peers_close(a);
    rk_aeprogress_round_finish(a->env.progress, rk_clock_wall_ms());
    a->running = a->stats.running = false;
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
    while (a->running && !a->x) {
        if (a->peer_at < a->nids) {
            if (ex_start(a, a->ids[a->peer_at++]) && !ex_ended(a))
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

/* The round's list: owned partitions this node replicates, the marked
 * ones first (they wait for a repair). Its length, or -ENOMEM. */
static int round_list(struct rk_ae *a)
{
    struct rk_view *v = rk_view_acquire(a->env.views);
    size_t n = 0;
    if (!v)
        return 0;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t p = a->env.worker; p < a->env.partitions; p += a->env.nworkers)
            if ((rk_aeprogress_marks(a->env.progress, p) != 0) == (pass == 0) &&
                part_replicas(a, v, p))
                a->list[n++] = p;
    a->nids = 0;
    rk_view_release(v);
    return (int)n;
}

static void round_begin(struct rk_ae *a)
{
    struct rk_aeprogress_summary s;
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

/* Between rounds: the next one (when enabled); during an exchange: the
 * budget may have refilled. */
static void on_round(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_ae *a = t->data;
    if (a->x) {
        pump(a);
    } else if (!a->running && atomic_load(a->env.pace.enabled)) {
        round_begin(a);
    } else if (!a->running) {
        ev_timer_set(t, (double)atomic_load(a->env.pace.interval_ms) / 1000.0, 0);
        ev_timer_start(loop, t);
    }
}

int rk_ae_create(struct rk_ae **out, const struct rk_ae_env *env)
{
    struct rk_ae *a = calloc(1, sizeof(*a));
    uint32_t owned = env->nworkers ? env->partitions / env->nworkers + 1 : 0;
    if (!a || !(a->list = calloc(owned ? owned : 1, sizeof(*a->list)))) {
        free(a);
        return -ENOMEM;
    }
    a->env = *env;
    a->local = (struct rk_ae_local){.tree = env->tree, .arg = env->tree_arg, .store = env->store};
    a->tokens_ms = mono_ms();
    ev_timer_init(&a->round_t, on_round, (double)atomic_load(env->pace.interval_ms) / 1000.0, 0);
    double watch = (double)(env->request_timeout_ms ? env->request_timeout_ms : 1000) / 4000.0;
    ev_timer_init(&a->watch_t, on_watch, watch, watch);
    a->round_t.data = a->watch_t.data = a;
    ev_timer_start(env->loop, &a->round_t);
    *out = a;
    return 0;
}

void rk_ae_destroy(struct rk_ae *a)
{
    if (!a)
        return;
    if (a->x)
        ex_finish(a, RK_AE_ABORTED);
    ev_timer_stop(a->env.loop, &a->round_t);
    ev_timer_stop(a->env.loop, &a->watch_t);
    peers_close(a);
    free(a->peers);
    free(a->q);
    free(a->list);
    free(a);
}

void rk_ae_stats(const struct rk_ae *a, struct rk_ae_stats *out)
{
    *out = a->stats;
}

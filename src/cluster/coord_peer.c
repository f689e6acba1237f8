/* Peer sockets and batches (see coord_int.h): one raw req0 socket per
 * peer, polled on the worker's loop; replica requests framed into the
 * peer's open batch and sent as one RBATCH message when it fills or
 * before the loop blocks (rk_coord_flush). A batch's raw req0 header word
 * is 0x80000000 | its slot in the peer's bout[], and its proto id the
 * peer's batch sequence number.
 */
#include "cluster/coord_int.h"
#include "util/nng_close.h"
#include "util/err.h"
#include "util/grow.h"
#include "util/log.h"
#include "util/nng_peer.h"
#include "util/nng_rx.h"

#include <errno.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_peer_rx(struct ev_loop *loop, ev_io *io, int revents);
static void batch_end(struct rk_coord *c, struct peer *p, uint32_t k);

static struct peer *peer_open(struct rk_coord *c, const struct rk_view_member *m)
{
    int fd, rv;
    struct peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->id, sizeof(p->id), "%s", m->id);
    snprintf(p->addr, sizeof(p->addr), "%s", m->peer_addr);
    p->c = c;
    static const struct rk_nng_peer_opts po = {PEER_BUF, RK_PEER_MAX_MSG, RECONNECT_MIN_MS,
                                               RECONNECT_MAX_MS};
    rv = rk_nng_peer_open(&p->s, p->addr, &po, &fd);
    if (rv != 0) {
        rk_warn("coord", "cannot reach peer %s at %s: %s", m->id, m->peer_addr, nng_strerror(rv));
        free(p);
        return NULL;
    }
    ev_io_init(&p->io, on_peer_rx, fd, EV_READ);
    p->io.data = p;
    ev_io_start(c->loop, &p->io);
    return p;
}

void coord_peer_close(struct rk_coord *c, struct peer *p)
{
    p->closed = true;
    ev_io_stop(c->loop, &p->io);
    rk_nng_close_bounded(p->s, CLOSE_LIMIT_MS, "peer");
}

/* The socket to member m, opened on first use; reopened if its address
 * changed (a restart on another port). */
struct peer *coord_peer_get(struct rk_coord *c, const struct rk_view_member *m)
{
    size_t i = 0;
    while (i < c->npeers && strcmp(c->peers[i]->id, m->id) != 0)
        i++;
    if (i < c->npeers && strcmp(c->peers[i]->addr, m->peer_addr) == 0)
        return c->peers[i];
    if (i < c->npeers) {
        /* Retired, not freed: requests still out to it hold the pointer
         * and will time out. Freed with the coordinator. */
        struct peer **nr = realloc(c->retired, (c->nretired + 1) * sizeof(*nr));
        if (!nr)
            return NULL;
        c->retired = nr;
        coord_peer_close(c, c->peers[i]);
        c->retired[c->nretired++] = c->peers[i];
        c->peers[i] = c->peers[--c->npeers];
    }
    struct peer **np = realloc(c->peers, (c->npeers + 1) * sizeof(*np));
    if (!np)
        return NULL;
    c->peers = np;
    struct peer *p = peer_open(c, m);
    if (p)
        c->peers[c->npeers++] = p;
    return p;
}

/* req encoded behind a 4-byte header carrying rid, or NULL. */
nng_msg *coord_build(const struct rk_msg *req, uint32_t rid)
{
    size_t n = rk_proto_size(req);
    nng_msg *m;
    if (n == 0 || nng_msg_alloc(&m, n) != 0)
        return NULL;
    rk_proto_encode(req, nng_msg_body(m));
    if (nng_msg_header_append_u32(m, rid) != 0) {
        nng_msg_free(m);
        return NULL;
    }
    return m;
}

static void mark_dirty(struct rk_coord *c, struct peer *p)
{
    if (p->dirty)
        return;
    if (c->ndirty == c->cdirty) {
        size_t cap = c->cdirty ? c->cdirty * 2 : 8;
        struct peer **nd = realloc(c->dirty, cap * sizeof(*nd));
        if (!nd)
            return; /* flushed when the next batch is answered or expires */
        c->dirty = nd;
        c->cdirty = cap;
    }
    c->dirty[c->ndirty++] = p;
    p->dirty = true;
}

/* Send p's open batch, if it has frames and p a free batch slot. 0, or
 * RK_EBUSY when p has PEER_BATCHES out (the frames wait for a slot). A
 * batch that cannot be sent is dropped: its requests time out. */
static int batch_send(struct rk_coord *c, struct peer *p)
{
    if (p->oframes == 0 || p->closed)
        return 0;
    if (p->batches >= PEER_BATCHES)
        return RK_EBUSY;
    uint32_t k = 0;
    while (p->bout[k].used)
        k++;
    struct rk_msg m = {.opcode = RK_OP_RBATCH,
                       .id = ++p->bseq,
                       .val = p->obuf,
                       .vlen = (uint32_t)p->olen,
                       .has_val = true};
    nng_msg *msg = coord_build(&m, 0x80000000u | k);
    if (msg && rk_proto_msg_sign(msg, c->env.auth) == 0 &&
        nng_sendmsg(p->s, msg, NNG_FLAG_NONBLOCK) == 0) {
        p->bout[k].used = true;
        p->bout[k].seq = m.id;
        p->bout[k].deadline_ms = coord_mono_ms() + c->env.request_timeout_ms;
        p->batches++;
        c->stats.batches_sent++;
        c->stats.batched_requests += p->oframes;
    } else {
        if (msg)
            nng_msg_free(msg);
        c->stats.replica_errors += p->oframes;
    }
    p->olen = 0;
    p->oframes = 0;
    if (p->ocap > 2 * BATCH_BYTES) { /* grown for one big value: give it back */
        free(p->obuf);
        p->obuf = NULL;
        p->ocap = 0;
    }
    return 0;
}

/* Can p take one more replica request now? */
bool coord_peer_room(const struct peer *p)
{
    bool open_full = p->oframes >= BATCH_FRAMES || p->olen >= BATCH_BYTES;
    return !p->closed && p->inflight < PEER_INFLIGHT && (!open_full || p->batches < PEER_BATCHES);
}

/* Frame req into p's open batch under the request id rid (the caller
 * checked peer_room); takes nothing on failure. */
int coord_peer_send(struct rk_coord *c, struct peer *p, const struct rk_msg *req, uint32_t rid)
{
    size_t n = rk_proto_frame_size(req);
    if (n == 0)
        return RK_ETOOLARGE;
    if (p->oframes && (p->olen + n > BATCH_BYTES || p->oframes >= BATCH_FRAMES) &&
        batch_send(c, p) < 0)
        return RK_EBUSY;
    if (rk_grow(&p->obuf, &p->ocap, p->olen + n, 1, 4096, 0) < 0)
        return -ENOMEM;
    rk_proto_frame_put(p->obuf + p->olen, rid, req);
    p->olen += n;
    p->oframes++;
    p->inflight++;
    mark_dirty(c, p);
    return 0;
}

/* Batch slot k of p is answered or given up: room for the next. */
static void batch_end(struct rk_coord *c, struct peer *p, uint32_t k)
{
    p->bout[k].used = false;
    p->batches--;
    coord_pump(c, p);
    if (p->oframes)
        mark_dirty(c, p);
}

/* Batches unanswered past request_timeout give their slot up: their
 * requests have timed out already (each op's own timer). */
void coord_expire_batches(struct rk_coord *c, struct peer *p, uint64_t now)
{
    for (uint32_t k = 0; k < PEER_BATCHES; k++)
        if (p->bout[k].used && now >= p->bout[k].deadline_ms)
            batch_end(c, p, k);
}

/* A batch's reply: one frame per request it carried. */
static void take_batch(struct rk_coord *c, struct peer *p, nng_msg *msg)
{
    uint32_t hk = 0;
    struct rk_msg rep;
    if (nng_msg_header_len(msg) < 4 || nng_msg_header_trim_u32(msg, &hk) != 0 ||
        !rk_proto_reply_trusted(c->env.auth, msg, p->addr) ||
        rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &rep) < 0)
        return; /* an untrusted reply is as good as none: its requests time out */
    uint32_t k = hk & 0x7fffffff;
    if (k >= PEER_BATCHES || !p->bout[k].used || p->bout[k].seq != rep.id)
        return; /* expired already */
    batch_end(c, p, k);
    if (rep.opcode != RK_OP_RBATCH || rep.status != RK_ST_OK || !rep.has_val)
        return; /* refused whole: its requests time out */
    size_t off = 0, flen;
    uint32_t rid;
    const uint8_t *f;
    while (rk_proto_frame_next(rep.val, rep.vlen, &off, &rid, &f, &flen) == 1)
        coord_take_answer(c, p, rid, f, flen);
}

static void take_reply(void *arg, nng_msg *msg)
{
    struct peer *p = arg;
    take_batch(p->c, p, msg);
    nng_msg_free(msg);
}

static void on_peer_rx(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    struct peer *p = io->data;
    rk_nng_rx_batch(p->s, RK_NNG_RX_BATCH, take_reply, p);
}

void rk_coord_flush(struct rk_coord *c)
{
    /* pump may frame more for a peer being flushed: it stays marked until
     * its batch is out, so it is not listed twice. */
    for (size_t i = 0; i < c->ndirty; i++) {
        struct peer *p = c->dirty[i];
        coord_pump(c, p);
        batch_send(c, p);
        p->dirty = false;
    }
    c->ndirty = 0;
}

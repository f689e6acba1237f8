/* Serving requests on a worker (worker_int.h): every received request is
 * checked, then served here when this worker owns its partition, or posted
 * to the owner's mailbox; client PUT/GET/DEL go to the coordinator unless
 * this node is the key's only replica; a peer's RBATCH is split into parts
 * (batch.h), each routed the same way.
 *
 *   rx ready ─► rk_serve_on_rx (≤ RK_NNG_RX_BATCH msgs) ─► dispatch ─┬─ owner is us ─► serve ─►
 * queue reply └─ else ─► owner's mailbox ─► serve ...
 *
 * Requests beyond limits.max_inflight are answered BUSY at once.
 */
#include "server/worker_int.h"
#include "server/admin.h"
#include "server/batch.h"
#include "cluster/antientropy.h"
#include "cluster/coord.h"
#include "cluster/hints.h"
#include "proto/aewire.h"
#include "proto/proto.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/ident.h"
#include "util/nng_rx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- serving ---- */

static uint64_t next_version(struct rk_worker *w)
{
    return rk_hlc_now(&w->sh->hlc, rk_clock_wall_ms());
}

static void too_large_text(struct rk_worker *w, const struct rk_msg *req, char *buf, size_t len)
{
    const struct rk_config *c = &w->sh->cfg;
    if (req->klen > c->max_key_size)
        snprintf(buf, len,
                 "key of %u bytes is over storage.max_key_size = %u bytes; nothing written",
                 req->klen, c->max_key_size);
    else
        snprintf(buf, len,
                 "value of %u bytes is over storage.max_value_size = %u bytes; nothing written",
                 req->vlen, c->max_value_size);
}

/* PUT and DEL: stage the record; the reply waits for the commit. */
static void serve_write(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req, uint16_t part)
{
    bool del = req->opcode == RK_OP_DEL;
    uint64_t now = rk_clock_wall_ms(), cur = 0;
    struct rk_record r = {.key = req->key,
                          .klen = req->klen,
                          .val = req->val,
                          .vlen = req->vlen,
                          .partition = part,
                          .tombstone = del};
    if (!del && req->has_ttl && req->ttl_ms > 0)
        r.expiry_ms = now + req->ttl_ms;
    r.version = next_version(w);
    int rc = rk_storage_put(w->store, &r, &cur);
    if (rc == RK_ESTALE) { /* the stored version is ahead of our clock: go past it */
        rk_hlc_observe(&w->sh->hlc, cur, rk_clock_wall_ms());
        r.version = next_version(w);
        rc = rk_storage_put(w->store, &r, &cur);
    }
    del ? w->stats.dels++ : w->stats.puts++;
    if (rc < 0) {
        char text[200];
        if (rc == RK_ETOOLARGE)
            too_large_text(w, req, text, sizeof(text));
        else
            snprintf(text, sizeof(text), "write refused: %s%s%s", rk_strerror(rc),
                     rc == RK_EREADONLY ? ": " : "",
                     rc == RK_EREADONLY ? rk_storage_write_error(w->store) : "");
        rk_reply_status_w(w, msg, req->opcode, req->id, rk_proto_status(rc), text);
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode,
                         .flags = RK_MSG_REPLY,
                         .id = req->id,
                         .version = r.version,
                         .has_version = true};
    rk_reply_answer_w(w, msg, &rep, true);
}

static void serve_hinted_write(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req,
                               const struct rk_record *r);

/* RPUT: a replica write at the coordinator's version. A version not newer
 * than the stored one is acknowledged with the stored version (this
 * replica holds it or something newer); the answer still waits for the
 * turn's commit, so whatever it vouches for is durable. */
static void serve_replica_write(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req,
                                uint16_t part)
{
    uint64_t now = rk_clock_wall_ms(), cur = 0;
    if (!req->has_version) {
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_MALFORMED,
                          "replica write without a version");
        return;
    }
    if (rk_hlc_observe(&w->sh->hlc, req->version, now) < 0) {
        char text[160];
        uint64_t ahead = RK_HLC_MS(req->version) > now ? RK_HLC_MS(req->version) - now : 0;
        snprintf(text, sizeof(text),
                 "version %llu ms ahead of %s's clock (cluster.max_clock_skew "
                 "= %llu ms)",
                 (unsigned long long)ahead, w->sh->node_id,
                 (unsigned long long)w->sh->cfg.max_clock_skew_ms);
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_REFUSED, text);
        return;
    }
    bool tomb = req->has_tombstone && req->tombstone;
    struct rk_record r = {.key = req->key,
                          .klen = req->klen,
                          .val = req->val,
                          .vlen = tomb ? 0 : req->vlen,
                          .partition = part,
                          .tombstone = tomb,
                          .version = req->version,
                          .expiry_ms = req->expiry_ms};
    if (req->has_hint) {
        serve_hinted_write(w, msg, req, &r);
        return;
    }
    int rc = rk_storage_put(w->store, &r, &cur);
    w->stats.replica_writes++;
    if (rc < 0 && rc != RK_ESTALE) {
        char text[200];
        if (rc == RK_ETOOLARGE)
            too_large_text(w, req, text, sizeof(text));
        else
            snprintf(text, sizeof(text), "replica write refused: %s", rk_strerror(rc));
        rk_reply_status_w(w, msg, req->opcode, req->id, rk_proto_status(rc), text);
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode,
                         .flags = RK_MSG_REPLY,
                         .id = req->id,
                         .version = rc == RK_ESTALE ? cur : req->version,
                         .has_version = true};
    rk_reply_answer_w(w, msg, &rep, true);
}

/* RPUT with HINT: this node stands in for a replica that is down (sloppy
 * quorum); the write is kept as a hint for it, durably before the answer,
 * and handed off when it is back. */
static void serve_hinted_write(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req,
                               const struct rk_record *r)
{
    char target[RK_MEMBER_ID_MAX + 1];
    /* The target becomes a hint store key and a log word: a node id. */
    int rc = rk_ident_valid((const char *)req->hint, req->hlen, NULL) ? 0 : RK_EMALFORMED;
    if (rc == 0) {
        memcpy(target, req->hint, req->hlen);
        target[req->hlen] = '\0';
        rc = rk_hints_add(w->hints, target, r, rk_hlc_now(&w->sh->hlc, rk_clock_wall_ms()));
    }
    w->stats.replica_writes++;
    if (rc < 0) {
        char text[160];
        snprintf(text, sizeof(text), "hinted write refused: %s", rk_strerror(rc));
        rk_reply_status_w(w, msg, req->opcode, req->id, rk_proto_status(rc), text);
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode,
                         .flags = RK_MSG_REPLY,
                         .id = req->id,
                         .version = req->version,
                         .has_version = true};
    if (rk_proto_msg_encode(msg, &rep) < 0) {
        rk_reply_drop_w(w, msg);
    } else if (rk_replies_push(&w->hinted, msg, true) < 0) {
        rc = rk_hints_flush(w->hints); /* cannot queue: make it durable now */
        if (rc < 0)
            rk_reply_fail_write_w(w, msg, rc);
        rk_reply_now_w(w, msg);
    }
}

/* GET on the only replica (flags 0), or RGET: this replica's record,
 * tombstones included (RK_GET_TOMBSTONES: a delete must win over an older
 * value elsewhere). */
static void serve_read(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req, unsigned flags)
{
    struct rk_record r;
    int rc = rk_storage_get(w->store, req->key, req->klen, flags, &r);
    if (rc < 0) {
        rk_reply_status_w(w, msg, req->opcode, req->id, rk_proto_status(rc),
                          rc == RK_ENOTFOUND ? NULL : rk_strerror(rc));
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode,
                         .flags = RK_MSG_REPLY,
                         .id = req->id,
                         .val = r.val,
                         .vlen = r.vlen,
                         .has_val = !r.tombstone,
                         .version = r.version,
                         .has_version = true,
                         .expiry_ms = r.expiry_ms,
                         .has_expiry = r.expiry_ms != 0,
                         .tombstone = r.tombstone,
                         .has_tombstone = r.tombstone};
    rk_reply_answer_w(w, msg, &rep, false);
}

/* ---- anti-entropy: a peer compares a partition's tree with ours ---- */

static struct rk_aetree *worker_tree(void *arg, uint32_t partition, uint64_t now_ms)
{
    return rk_worker_aetree_w(arg, partition, now_ms);
}

/* AE_ROOT / AE_KEYS on the partition's owner: rk_aex_respond builds the
 * whole reply message, which goes back as a normal reply (decoded, then
 * re-encoded into msg). Reads only: nothing waits for a commit. */
static void serve_ae(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_ae_local l = {
        .tree = worker_tree, .arg = w, .store = w->store, .now_ms = rk_clock_wall_ms()};
    struct rk_ae_tree tree = {&rk_ae_local_ops, &l};
    struct rk_msg rep;
    size_t len = 0;
    uint8_t *buf = malloc(RK_AEW_MSG_MAX); /* a reply's bound: too big for the stack */
    int rc = buf ? rk_aex_respond(&tree, req, 0, buf, &len) : -ENOMEM;
    rk_ae_local_release(&l); /* the reply holds copies of the keys */
    if (rc == 0)
        rc = rk_proto_decode(buf, len, &rep);
    w->stats.other++;
    if (rc < 0)
        rk_reply_status_w(w, msg, req->opcode, req->id, rk_proto_status(rc),
                          rc == RK_ENOTFOUND ? "no anti-entropy tree for this partition here"
                                             : rk_strerror(rc));
    else
        rk_reply_answer_w(w, msg, &rep, false);
    free(buf);
}

/* The partition a hint mark (REPAIR with HINT) names in its KEY, which it
 * must carry: 0, or RK_EMALFORMED (rk_proto_arg_partition). */
static int repair_partition(const struct rk_shared *sh, const struct rk_msg *req, uint32_t *part)
{
    return rk_proto_arg_partition(req, sh->partitions, part) == 1 ? 0 : RK_EMALFORMED;
}

static bool holds_replica(struct rk_worker *w, uint32_t part)
{
    struct rk_view *v = rk_view_acquire(&w->sh->views);
    bool mine = v && rk_view_serves(v, part);
    rk_view_release(v);
    return mine;
}

/* REPAIR with HINT: the node named there dropped a hint of the partition
 * and holds no replica of it, so it hands its anti-entropy mark to this
 * one (antientropy.c). Marked and saved on the partition's owner before
 * the answer: the sender clears its own mark only on OK, so a crash on
 * either side loses nothing (at worst the mark is set twice). */
static void serve_hint_mark(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    uint32_t part = 0;
    char text[160];
    uint64_t now = rk_clock_wall_ms();
    w->stats.other++;
    repair_partition(w->sh, req, &part); /* checked by route_hint_mark */
    if (!holds_replica(w, part)) {
        snprintf(text, sizeof(text), "%s holds no replica of partition %u", w->sh->node_id, part);
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_REFUSED, text);
        return;
    }
    int rc = rk_aeprogress_mark(w->ae, part, RK_AE_MARK_HINT, now);
    if (rc == 0)
        rc = rk_aeprogress_save(w->ae, now);
    if (rc < 0) {
        snprintf(text, sizeof(text), "marking partition %u for anti-entropy: %s", part,
                 rk_strerror(rc));
        rk_reply_status_w(w, msg, req->opcode, req->id, rk_proto_status(rc), text);
        return;
    }
    snprintf(text, sizeof(text), "partition %u marked for anti-entropy (a dropped hint)", part);
    rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_OK, text);
}

/* A replica request for part is served only where it means something: a
 * read only where the partition is held (a pending owner's "not found" is
 * no evidence, whatever view the coordinator routed by), a write where it
 * is held or owned (a pending owner takes writes while it receives the
 * partition). Hinted writes are kept for another node: always taken.
 * false when refused (answered). */
static bool replica_of(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req, uint16_t part)
{
    struct rk_view *v = rk_view_acquire(&w->sh->views);
    bool held = !v || rk_view_holds(v, part);
    bool ok = held || (req->opcode == RK_OP_RPUT && (req->has_hint || rk_view_owns(v, part)));
    rk_view_release(v);
    if (ok)
        return true;
    char text[160];
    snprintf(text, sizeof(text),
             req->opcode == RK_OP_RGET ? "%s does not hold partition %u yet (transfer pending)"
                                       : "%s is not a replica of partition %u",
             w->sh->node_id, part);
    rk_reply_status_w(w, msg, req->opcode, req->id,
                      req->opcode == RK_OP_RGET ? RK_ST_UNAVAILABLE : RK_ST_REFUSED, text);
    return false;
}

/* Serve a request whose partition this worker owns. msg is re-decoded here:
 * it may come from another worker's mailbox. Client requests go to the
 * coordinator unless this node is the key's only replica. */
static void serve_owned(struct rk_worker *w, nng_msg *msg)
{
    struct rk_msg req;
    rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req); /* checked by dispatch */
    if (req.opcode == RK_OP_AE_ROOT || req.opcode == RK_OP_AE_KEYS) {
        serve_ae(w, msg, &req);
        return;
    }
    if (req.opcode == RK_OP_REPAIR) {
        serve_hint_mark(w, msg, &req);
        return;
    }
    uint16_t part = (uint16_t)(XXH3_64bits(req.key, req.klen) & (w->sh->partitions - 1));
    if ((req.opcode == RK_OP_RPUT || req.opcode == RK_OP_RGET) && !replica_of(w, msg, &req, part))
        return;
    if (req.opcode == RK_OP_RPUT) {
        serve_replica_write(w, msg, &req, part);
        return;
    }
    if (req.opcode == RK_OP_RGET) {
        w->stats.replica_reads++;
        serve_read(w, msg, &req, RK_GET_TOMBSTONES);
        return;
    }
    uint64_t *count = req.opcode == RK_OP_GET   ? &w->stats.gets
                      : req.opcode == RK_OP_DEL ? &w->stats.dels
                                                : &w->stats.puts;
    if (rk_coord_start(w->coord, msg, &req, part))
        (*count)++;
    else if (req.opcode == RK_OP_GET) {
        (*count)++;
        serve_read(w, msg, &req, 0);
    } else {
        serve_write(w, msg, &req, part); /* counts the put or del itself */
    }
}

/* The coordinator's request to this node's own replica: served here and
 * now, as if it had come in on the socket (coord.h). */
void rk_serve_local(void *arg, nng_msg *msg)
{
    serve_owned(arg, msg);
}

void rk_serve_on_mail(struct rk_mailbox *mb, void *item, void *arg)
{
    (void)mb;
    serve_owned(arg, item);
}

static void serve_echo(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    /* The reply's fields live in the request body, which encode_into
     * rewrites: copy the body first. */
    size_t n = nng_msg_len(msg);
    uint8_t *copy = malloc(n ? n : 1);
    struct rk_msg rep;
    if (!copy) {
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_INTERNAL, "out of memory");
        return;
    }
    memcpy(copy, nng_msg_body(msg), n);
    rk_proto_decode(copy, n, &rep);
    rep.flags = RK_MSG_REPLY;
    rep.status = RK_ST_OK;
    rk_reply_answer_w(w, msg, &rep, false);
    free(copy);
}

static void serve_admin(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    char *text = NULL;
    enum rk_status st = rk_admin_reply(w->sh, req, &text);
    w->stats.other++;
    rk_reply_status_w(w, msg, req->opcode, req->id, st, text ? text : "");
    free(text);
}

/* Membership requests go to the main loop, which owns the member table
 * and answers them itself (rk_control_serve). */
static void to_control(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    w->stats.other++;
    if (!w->sh->control)
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_UNSUPPORTED,
                          "membership is not served by this node");
    else if (rk_mailbox_post(w->sh->control, msg) != 0)
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_BUSY,
                          "control queue full; retry later");
}

/* Post msg to owner, or serve it here when that is us. */
static void to_owner(struct rk_worker *w, struct rk_worker *owner, nng_msg *msg,
                     const struct rk_msg *req)
{
    if (owner == w) {
        serve_owned(w, msg);
    } else if (rk_mailbox_post(&owner->mb, msg) == 0) {
        w->stats.forwarded++;
    } else {
        w->stats.busy++;
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_BUSY,
                          "worker queue full; retry later");
    }
}

/* A data request (PUT, GET, DEL, RPUT, RGET): checked, then served here
 * or posted to the worker that owns its partition. */
static void route_data(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_shared *sh = w->sh;
    if (!req->has_key || req->klen == 0 || (req->opcode == RK_OP_PUT && !req->has_val) ||
        (req->opcode == RK_OP_RPUT && !req->has_val && !(req->has_tombstone && req->tombstone))) {
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_MALFORMED,
                          req->opcode == RK_OP_PUT && req->has_key ? "put without a value"
                                                                   : "request without a key");
        return;
    }
    uint64_t h = XXH3_64bits(req->key, req->klen);
    to_owner(w, sh->workers[(h & (sh->partitions - 1)) % sh->nworkers], msg, req);
}

/* AE_ROOT / AE_KEYS name a partition in their body (aewire.h: bytes 2-3
 * of every AE body), not a key: they go to the worker owning it. */
static void route_ae(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_shared *sh = w->sh;
    const uint8_t *body;
    size_t len;
    if (rk_aew_body(req, req->opcode, false, 0, &body, &len) < 0 || len < 4) {
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_MALFORMED,
                          "anti-entropy request without a body");
        return;
    }
    uint32_t part = (uint32_t)body[2] | (uint32_t)body[3] << 8;
    if (part >= sh->partitions) {
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_NOT_FOUND, "no such partition here");
        return;
    }
    to_owner(w, sh->workers[part % sh->nworkers], msg, req);
}

/* A REPAIR with HINT goes to the worker owning its partition. */
static void route_hint_mark(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    uint32_t part;
    if (repair_partition(w->sh, req, &part) < 0) {
        rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_MALFORMED,
                          "REPAIR with HINT names a partition of this cluster in KEY");
        return;
    }
    to_owner(w, w->sh->workers[part % w->sh->nworkers], msg, req);
}

/* Why a request is refused before it is looked at (BUSY, UNAVAILABLE),
 * or RK_ST_OK. n: requests in flight before this one. */
static enum rk_status refusal(struct rk_worker *w, unsigned n, const char **why)
{
    if (atomic_load(&w->sh->stopping)) {
        *why = "node is shutting down";
        return RK_ST_UNAVAILABLE;
    }
    if (n >= atomic_load(&w->sh->max_inflight)) {
        *why = "too many requests in flight; retry later";
        return RK_ST_BUSY;
    }
    return RK_ST_OK;
}

struct part_route {
    struct rk_worker *w;
    enum rk_status refuse;
    const char *why;
};

/* One request of a peer's batch: each is answered on its own, refusals
 * and malformed ones included, so the peer hears about every one. */
static void route_part(void *arg, nng_msg *part)
{
    struct part_route *pr = arg;
    struct rk_worker *w = pr->w;
    struct rk_msg req;
    int rc = rk_proto_decode(nng_msg_body(part), nng_msg_len(part), &req);
    if (rc < 0 || (req.flags & RK_MSG_REPLY) ||
        (req.opcode != RK_OP_RPUT && req.opcode != RK_OP_RGET))
        rk_reply_status_w(w, part, req.opcode, req.id, RK_ST_MALFORMED,
                          "a batch carries replica requests only");
    else if (pr->refuse != RK_ST_OK)
        rk_reply_status_w(w, part, req.opcode, req.id, pr->refuse, pr->why);
    else
        route_data(w, part, &req);
}

static void serve_batch(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req,
                        enum rk_status refuse, const char *why)
{
    struct part_route pr = {w, refuse, why};
    w->stats.batches_served++;
    if (refuse == RK_ST_BUSY)
        w->stats.busy++;
    int rc = rk_batch_split(w->sh, msg, req, route_part, &pr);
    if (rc < 0)
        rk_reply_status_w(w, msg, req->opcode, req->id, rk_proto_status(rc),
                          rc == RK_EMALFORMED
                              ? "malformed batch: frames must fill the value, at most 4096"
                              : "out of memory");
}

/* A client read or write on a node cut off from its cluster is refused
 * (UNAVAILABLE, the reason): a write would be acknowledged by no replica
 * another node will ever read, and a read would answer "not found" for
 * keys the cluster holds. True if req was answered so. */
static bool refused_island(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    char why[400];
    if (!rk_admin_island(w->sh, why, sizeof(why)))
        return false;
    rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_UNAVAILABLE, why);
    return true;
}

/* The remote address of pipe p, from the worker's cache or nng. */
static void client_addr(struct rk_worker *w, nng_pipe p, struct rk_rl_addr *a)
{
    uint32_t id = (uint32_t)nng_pipe_id(p), slot = id % RK_ADDR_CACHE;
    struct addr_cache *c = &w->addrs;
    if (id != 0 && id != (uint32_t)-1 && c->pipe[slot] == id) {
        *a = c->addr[slot];
        return;
    }
    nng_sockaddr sa = {.s_family = NNG_AF_UNSPEC};
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
        sa.s_family = NNG_AF_UNSPEC;
    rk_rl_addr_from_nng(&sa, a);
    if (id != 0 && id != (uint32_t)-1) {
        c->pipe[slot] = id;
        c->addr[slot] = *a;
    }
}

/* A client request (not a peer's replica or anti-entropy request) from an
 * address over limits.client_rate is answered RATE_LIMITED, with the ms
 * until it may send again, before any other work; true if so. Peer
 * traffic is never limited as client traffic: a coordinator's requests
 * are what the cluster's own clients asked for. */
static bool rate_limited(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_ratelimit *rl = w->sh->ratelimit;
    if (req->opcode >= RK_OP_RPUT || !rk_ratelimit_on(rl))
        return false;
    struct rk_rl_addr a;
    client_addr(w, nng_msg_get_pipe(msg), &a);
    uint64_t wait_ms = rk_ratelimit_take(rl, &a, rk_clock_mono_ns());
    if (wait_ms == 0)
        return false;
    uint32_t rate, burst;
    rk_ratelimit_setting(rl, &rate, &burst);
    char addr[64], text[200];
    rk_rl_addr_text(&a, addr, sizeof(addr));
    snprintf(text, sizeof(text),
             "rate limited: %s is over limits.client_rate (%u/s, burst %u); retry after %llu ms",
             addr, rate, burst, (unsigned long long)wait_ms);
    struct rk_msg rep = {.opcode = req->opcode,
                         .flags = RK_MSG_REPLY,
                         .status = RK_ST_RATE_LIMITED,
                         .id = req->id,
                         .text = (const uint8_t *)text,
                         .tlen = (uint32_t)strlen(text),
                         .has_text = true,
                         .retry_ms = wait_ms,
                         .has_retry = true};
    rk_reply_answer_w(w, msg, &rep, false);
    return true;
}

/* With a cluster secret, a request that must prove it and does not (no
 * trailer, a bad MAC, too old or new, seen before) is answered REFUSED
 * with the reason, counted and logged; true if so. A batch is checked
 * whole: its parts are never checked again. */
static bool unauthenticated(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_auth *a = &w->sh->auth;
    int ch = a->on ? rk_auth_channel(w->sh, req->opcode, req->has_hint) : -1;
    if (ch < 0)
        return false;
    int v = rk_proto_auth_check(a, nng_msg_body(msg), nng_msg_len(msg), req, true);
    if (v == RK_AUTH_OK)
        return false;
    struct rk_rl_addr from;
    char src[64];
    client_addr(w, nng_msg_get_pipe(msg), &from);
    rk_rl_addr_text(&from, src, sizeof(src));
    rk_auth_refused(a, (enum rk_auth_channel)ch, (enum rk_auth_verdict)v, src);
    rk_reply_status_w(w, msg, req->opcode, req->id, RK_ST_REFUSED,
                      rk_auth_reason_text((enum rk_auth_verdict)v));
    return true;
}

/* Route one received request: answer what is malformed or over the limit,
 * serve or forward data requests, answer admin requests here. */
static void dispatch(struct rk_worker *w, nng_msg *msg)
{
    struct rk_shared *sh = w->sh;
    struct rk_msg req;
    if (rk_reply_stamp(msg) < 0) { /* unreachable under nng's hop limit: nothing to answer with */
        w->stats.errors++;
        nng_msg_free(msg);
        return;
    }
    unsigned n = atomic_fetch_add(&sh->inflight, 1);
    int rc = rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req);
    if (rc < 0 || (req.flags & RK_MSG_REPLY)) {
        rk_reply_status_w(
            w, msg, req.opcode, req.id, rc == RK_EUNSUPPORTED ? RK_ST_UNSUPPORTED : RK_ST_MALFORMED,
            rc == RK_EUNSUPPORTED ? "unsupported protocol version or opcode" : "malformed message");
        return;
    }
    if (rate_limited(w, msg, &req) || unauthenticated(w, msg, &req))
        return;
    const char *why = NULL;
    enum rk_status refuse = refusal(w, n, &why);
    if (req.opcode == RK_OP_RBATCH) {
        serve_batch(w, msg, &req, refuse, why);
        return;
    }
    if (refuse != RK_ST_OK) {
        if (refuse == RK_ST_BUSY)
            w->stats.busy++;
        rk_reply_status_w(w, msg, req.opcode, req.id, refuse, why);
        return;
    }
    switch (req.opcode) {
    case RK_OP_PUT:
    case RK_OP_GET:
    case RK_OP_DEL:
        if (refused_island(w, msg, &req))
            return;
        break;
    case RK_OP_RPUT:
    case RK_OP_RGET:
        break;
    case RK_OP_AE_ROOT:
    case RK_OP_AE_KEYS:
        route_ae(w, msg, &req);
        return;
    case RK_OP_ECHO:
        serve_echo(w, msg, &req);
        return;
    case RK_OP_REPAIR:
        if (req.has_hint)
            route_hint_mark(w, msg, &req);
        else
            serve_admin(w, msg, &req);
        return;
    case RK_OP_MEMBERS:
    case RK_OP_JOIN:
    case RK_OP_LEAVE:
    case RK_OP_REMOVE:
        to_control(w, msg, &req);
        return;
    default:
        serve_admin(w, msg, &req);
        return;
    }
    route_data(w, msg, &req);
}

static void dispatch_msg(void *arg, nng_msg *msg)
{
    dispatch(arg, msg);
}

void rk_serve_on_rx(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    struct rk_worker *w = io->data;
    rk_nng_rx_batch(w->sh->sock, RK_NNG_RX_BATCH, dispatch_msg, w);
}

/* The coordinator's way to end a client request: sent now (its replicas
 * committed already), or dropped when no reply could be built. */
void rk_serve_coord_reply(void *arg, nng_msg *msg, bool answered)
{
    if (answered)
        rk_reply_out_w(arg, msg);
    else
        rk_reply_drop_w(arg, msg);
}

/* Worker thread: request dispatch, the group-commit reply path, background
 * storage work, and shutdown.
 *
 *   rx ready ─► on_rx (≤ RK_NNG_RX_BATCH msgs) ─► dispatch ─┬─ owner is us ─► serve ─► queue reply
 *                                                      └─ else ─► owner's mailbox ─► serve ...
 *   loop about to block ─► on_prepare: commit staged puts, fix failed write
 *                          replies, send every queued reply
 *
 * Invariants: a queued reply to a write is sent only after the commit that
 * made it durable; a reply is sent exactly once and then sh->inflight is
 * decremented; requests beyond max_inflight are answered BUSY at once.
 */
#include "server/worker.h"
#include "server/node.h"
#include "server/admin.h"
#include "server/batch.h"
#include "cluster/coord.h"
#include "cluster/hints.h"
#include "proto/proto.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/ident.h"
#include "util/io.h"
#include "util/log.h"
#include "util/nng_rx.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define MAILBOX_CAP 8192   /* forwarded requests waiting for this worker */
#define TICK_S 0.1         /* heartbeat, stats and background-work cadence */

enum { CTL_NONE, CTL_STOP_RX, CTL_EXIT };

struct replies {
    nng_msg **m;
    bool *write; /* answers a write: fails if its commit or sync fails */
    uint32_t n, cap;
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
    bool done, quit;
    ev_async done_w;
    bool busy;
    int dupfd;
    uint64_t puts;
};

struct rk_worker {
    struct rk_shared *sh;
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
    struct rk_hints *hints;
    atomic_uint_fast64_t heartbeat;
    pthread_mutex_t stats_lock;
    struct rk_worker_stats stats, pub;
};

/* ---- replies ---- */

static int replies_push(struct replies *r, nng_msg *m, bool write)
{
    if (r->n == r->cap) {
        uint32_t c = r->cap ? r->cap * 2 : 64;
        nng_msg **nm = realloc(r->m, c * sizeof(*nm));
        if (nm)
            r->m = nm;
        bool *nw = realloc(r->write, c * sizeof(*nw));
        if (nw)
            r->write = nw;
        if (!nm || !nw)
            return -ENOMEM;
        r->cap = c;
    }
    r->m[r->n] = m;
    r->write[r->n++] = write;
    return 0;
}

static void replies_free(struct replies *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        nng_msg_free(r->m[i]);
    free(r->m);
    free(r->write);
    memset(r, 0, sizeof(*r));
}

void rk_reply_send(struct rk_shared *sh, nng_msg *m)
{
    if (nng_sendmsg(sh->sock, m, 0) != 0)
        nng_msg_free(m); /* the client's pipe is gone */
    atomic_fetch_sub(&sh->inflight, 1);
}

/* A reply goes to its client; for a replica request this node's own
 * coordinator made (internal, a 4-byte header: its request id), back to
 * the coordinator; for a part of a peer's batch (batch.h), to the batch.
 * Neither of those went through the socket alone or counts in flight.
 * What came from the socket is told apart by its pipe, never by its
 * header, which the sender controls. */
static bool is_local(nng_msg *m)
{
    return rk_msg_is_internal(m) && nng_msg_header_len(m) == 4;
}

static void send_one(struct rk_worker *w, nng_msg *m)
{
    if (rk_batch_is_part(m))
        rk_batch_part_done(m, true);
    else if (!is_local(m))
        rk_reply_send(w->sh, m);
    else if (w->coord)
        rk_coord_local_answer(w->coord, m);
    else
        nng_msg_free(m); /* shutting down: the coordinator is gone */
}

/* A reply that could not be built: the request ends unanswered. */
static void drop(struct rk_worker *w, nng_msg *m)
{
    if (rk_batch_is_part(m)) {
        rk_batch_part_done(m, false);
        return;
    }
    if (!is_local(m))
        atomic_fetch_sub(&w->sh->inflight, 1);
    nng_msg_free(m);
}

/* Turn the reply to a write into an error: its commit or sync failed. */
static void fail_write(struct rk_worker *w, nng_msg *m, int rc)
{
    char text[320];
    const char *why = rk_storage_write_error(w->store);
    snprintf(text, sizeof(text), "write failed: %s%s%s", rk_strerror(rc), why[0] ? ": " : "",
             why);
    struct rk_msg rep;
    rk_proto_decode(nng_msg_body(m), nng_msg_len(m), &rep); /* our own reply: valid */
    struct rk_msg err = {.opcode = rep.opcode, .flags = RK_MSG_REPLY, .id = rep.id,
                         .status = (uint16_t)rk_proto_status(rc), .text = (const uint8_t *)text,
                         .tlen = (uint32_t)strlen(text), .has_text = true};
    rk_proto_msg_encode(m, &err);
    w->stats.errors++;
}

static void queue_reply(struct rk_worker *w, nng_msg *msg, bool write)
{
    if (replies_push(&w->out, msg, write) < 0)
        send_one(w, msg); /* cannot queue: answer now rather than lose it */
}

/* Encode rep into msg and queue it (write: it waits for durability). */
static void answer(struct rk_worker *w, nng_msg *msg, const struct rk_msg *rep, bool write)
{
    if (rk_proto_msg_encode(msg, rep) < 0)
        drop(w, msg);
    else
        queue_reply(w, msg, write);
}

/* Answer with a status and an optional one-line text. */
static void reply_status(struct rk_worker *w, nng_msg *msg, uint8_t op, uint32_t id,
                         enum rk_status st, const char *text)
{
    struct rk_msg rep = {.opcode = op, .flags = RK_MSG_REPLY, .status = (uint16_t)st, .id = id};
    if (text) {
        rep.text = (const uint8_t *)text;
        rep.tlen = (uint32_t)strlen(text);
        rep.has_text = true;
    }
    if (st != RK_ST_OK && st != RK_ST_NOT_FOUND)
        w->stats.errors++;
    answer(w, msg, &rep, false);
}

/* ---- pipelined sync (fsync = "always") ----
 * The loop writes batch N and hands its fdatasync to the syncer thread,
 * then goes on serving; batch N+1 collects while N syncs, so one fdatasync
 * covers everything that arrived during the previous one. Replies to
 * writes wait in `held` until a sync that covers them has succeeded. */

static void *syncer_main(void *arg)
{
    struct rk_worker *w = arg;
    struct syncer *y = &w->sync;
    pthread_mutex_lock(&y->mu);
    for (;;) {
        while (y->fd < 0 && !y->quit)
            pthread_cond_wait(&y->cv, &y->mu);
        if (y->fd < 0)
            break;
        int fd = y->fd;
        pthread_mutex_unlock(&y->mu);
        int rc = rk_io_datasync(fd);
        pthread_mutex_lock(&y->mu);
        y->rc = rc;
        y->fd = -1;
        y->done = true;
        pthread_cond_broadcast(&y->cv);
        ev_async_send(w->loop, &y->done_w);
    }
    pthread_mutex_unlock(&y->mu);
    return NULL;
}

/* Start syncing everything written so far, if nothing is syncing now. */
static void sync_start(struct rk_worker *w)
{
    struct syncer *y = &w->sync;
    if (y->busy || w->held.n == 0)
        return;
    int fd;
    int rc = rk_storage_sync_begin(w->store, &fd, &y->puts);
    for (uint32_t i = 0; i < w->held.n; i++) {
        if (fd < 0 && rc < 0)
            fail_write(w, w->held.m[i], rc);
        if (fd < 0)
            send_one(w, w->held.m[i]); /* durable already (a roll synced it), or failed */
        else
            replies_push(&w->syncing, w->held.m[i], true);
    }
    w->held.n = 0;
    if (fd < 0)
        return;
    y->busy = true;
    y->dupfd = fd;
    pthread_mutex_lock(&y->mu);
    y->fd = fd;
    y->done = false;
    pthread_cond_signal(&y->cv);
    pthread_mutex_unlock(&y->mu);
}

static void sync_finished(struct rk_worker *w)
{
    struct syncer *y = &w->sync;
    pthread_mutex_lock(&y->mu);
    bool done = y->done;
    int rc = y->rc;
    y->done = false;
    pthread_mutex_unlock(&y->mu);
    if (!done)
        return;
    close(y->dupfd);
    y->busy = false;
    rk_storage_sync_end(w->store, y->puts, rc);
    for (uint32_t i = 0; i < w->syncing.n; i++) {
        if (rc < 0)
            fail_write(w, w->syncing.m[i], RK_EREADONLY);
        send_one(w, w->syncing.m[i]);
    }
    w->syncing.n = 0;
    sync_start(w);
}

static void on_synced(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop, (void)revents;
    sync_finished(a->data);
}

/* Block until the syncer is idle (shutdown), finishing what it did. */
static void sync_drain(struct rk_worker *w)
{
    struct syncer *y = &w->sync;
    while (y->busy || w->held.n > 0) {
        pthread_mutex_lock(&y->mu);
        while (y->busy && !y->done)
            pthread_cond_wait(&y->cv, &y->mu);
        pthread_mutex_unlock(&y->mu);
        sync_finished(w);
        sync_start(w);
    }
}

/* Hinted writes are acknowledged once the hint store holds them durably:
 * one commit and one fdatasync for all of a turn's (rare: only while a
 * replica is down), then their replies. */
static void send_hinted(struct rk_worker *w)
{
    if (w->hinted.n == 0)
        return;
    int rc = rk_hints_flush(w->hints);
    for (uint32_t i = 0; i < w->hinted.n; i++) {
        if (rc < 0)
            fail_write(w, w->hinted.m[i], rc);
        send_one(w, w->hinted.m[i]);
    }
    w->hinted.n = 0;
}

/* Prepare watcher: runs before the loop blocks, after every request of this
 * turn was served: one commit (one write) for them all, then the replies:
 * at once for reads and, unless the sync is pipelined, for writes too. */
static void on_prepare(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop, (void)revents;
    struct rk_worker *w = p->data;
    bool pipelined = w->sh->cfg.fsync == RK_FSYNC_ALWAYS;
    int rc = 0;
    if (rk_storage_staged(w->store) > 0) {
        rc = pipelined ? rk_storage_commit_nosync(w->store) : rk_storage_commit(w->store);
        if (!ev_is_active(&w->bg))
            ev_idle_start(w->loop, &w->bg);
    }
    for (uint32_t i = 0; i < w->out.n; i++) {
        nng_msg *m = w->out.m[i];
        if (w->out.write[i] && rc < 0)
            fail_write(w, m, rc);
        else if (w->out.write[i] && pipelined && replies_push(&w->held, m, true) == 0)
            continue;
        send_one(w, m);
    }
    w->out.n = 0;
    if (pipelined)
        sync_start(w);
    if (w->hints) {
        send_hinted(w);
        rk_hints_commit(w->hints);
    }
    if (w->coord)
        rk_coord_flush(w->coord); /* last: answers above may have queued requests */
}

/* ---- serving ---- */

static uint64_t next_version(struct rk_worker *w)
{
    return rk_hlc_now(&w->sh->hlc, rk_clock_wall_ms());
}

static void too_large_text(struct rk_worker *w, const struct rk_msg *req, char *buf, size_t len)
{
    const struct rk_config *c = &w->sh->cfg;
    if (req->klen > c->max_key_size)
        snprintf(buf, len, "key of %u bytes is over storage.max_key_size = %u bytes; nothing written",
                 req->klen, c->max_key_size);
    else
        snprintf(buf, len,
                 "value of %u bytes is over storage.max_value_size = %u bytes; nothing written",
                 req->vlen, c->max_value_size);
}

/* PUT and DEL: stage the record; the reply waits for the commit. */
static void serve_write(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req,
                        uint16_t part)
{
    bool del = req->opcode == RK_OP_DEL;
    uint64_t now = rk_clock_wall_ms(), cur = 0;
    struct rk_record r = {.key = req->key, .klen = req->klen, .val = req->val,
                          .vlen = req->vlen, .partition = part, .tombstone = del};
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
        reply_status(w, msg, req->opcode, req->id, rk_proto_status(rc), text);
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode, .flags = RK_MSG_REPLY, .id = req->id,
                         .version = r.version, .has_version = true};
    answer(w, msg, &rep, true);
}

static void serve_get(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_record r;
    w->stats.gets++;
    int rc = rk_storage_get(w->store, req->key, req->klen, 0, &r);
    if (rc < 0) {
        reply_status(w, msg, req->opcode, req->id, rk_proto_status(rc),
                     rc == RK_ENOTFOUND ? NULL : rk_strerror(rc));
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode, .flags = RK_MSG_REPLY, .id = req->id,
                         .val = r.val, .vlen = r.vlen, .has_val = true,
                         .version = r.version, .has_version = true,
                         .expiry_ms = r.expiry_ms, .has_expiry = r.expiry_ms != 0};
    answer(w, msg, &rep, false);
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
        reply_status(w, msg, req->opcode, req->id, RK_ST_MALFORMED, "replica write without a version");
        return;
    }
    if (rk_hlc_observe(&w->sh->hlc, req->version, now) < 0) {
        char text[160];
        uint64_t ahead = RK_HLC_MS(req->version) > now ? RK_HLC_MS(req->version) - now : 0;
        snprintf(text, sizeof(text), "version %llu ms ahead of %s's clock (cluster.max_clock_skew "
                 "= %llu ms)", (unsigned long long)ahead, w->sh->node_id,
                 (unsigned long long)w->sh->cfg.max_clock_skew_ms);
        reply_status(w, msg, req->opcode, req->id, RK_ST_REFUSED, text);
        return;
    }
    bool tomb = req->has_tombstone && req->tombstone;
    struct rk_record r = {.key = req->key, .klen = req->klen, .val = req->val,
                          .vlen = tomb ? 0 : req->vlen, .partition = part, .tombstone = tomb,
                          .version = req->version, .expiry_ms = req->expiry_ms};
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
        reply_status(w, msg, req->opcode, req->id, rk_proto_status(rc), text);
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode, .flags = RK_MSG_REPLY, .id = req->id,
                         .version = rc == RK_ESTALE ? cur : req->version, .has_version = true};
    answer(w, msg, &rep, true);
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
        reply_status(w, msg, req->opcode, req->id, rk_proto_status(rc), text);
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode, .flags = RK_MSG_REPLY, .id = req->id,
                         .version = req->version, .has_version = true};
    if (rk_proto_msg_encode(msg, &rep) < 0) {
        drop(w, msg);
    } else if (replies_push(&w->hinted, msg, true) < 0) {
        rc = rk_hints_flush(w->hints); /* cannot queue: make it durable now */
        if (rc < 0)
            fail_write(w, msg, rc);
        send_one(w, msg);
    }
}

/* RGET: this replica's record, tombstones included (a delete must win
 * over an older value elsewhere). */
static void serve_replica_read(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_record r;
    w->stats.replica_reads++;
    int rc = rk_storage_get(w->store, req->key, req->klen, RK_GET_TOMBSTONES, &r);
    if (rc < 0) {
        reply_status(w, msg, req->opcode, req->id, rk_proto_status(rc),
                     rc == RK_ENOTFOUND ? NULL : rk_strerror(rc));
        return;
    }
    struct rk_msg rep = {.opcode = req->opcode, .flags = RK_MSG_REPLY, .id = req->id,
                         .val = r.val, .vlen = r.vlen, .has_val = !r.tombstone,
                         .version = r.version, .has_version = true,
                         .expiry_ms = r.expiry_ms, .has_expiry = r.expiry_ms != 0,
                         .tombstone = r.tombstone, .has_tombstone = r.tombstone};
    answer(w, msg, &rep, false);
}

/* Serve a request whose partition this worker owns. msg is re-decoded here:
 * it may come from another worker's mailbox. Client requests go to the
 * coordinator unless this node is the key's only replica. */
static void serve_owned(struct rk_worker *w, nng_msg *msg)
{
    struct rk_msg req;
    rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req); /* checked by dispatch */
    uint16_t part = (uint16_t)(XXH3_64bits(req.key, req.klen) & (w->sh->partitions - 1));
    if (req.opcode == RK_OP_RPUT)
        serve_replica_write(w, msg, &req, part);
    else if (req.opcode == RK_OP_RGET)
        serve_replica_read(w, msg, &req);
    else if (rk_coord_start(w->coord, msg, &req, part))
        req.opcode == RK_OP_GET ? w->stats.gets++ : req.opcode == RK_OP_DEL ? w->stats.dels++
                                                                             : w->stats.puts++;
    else if (req.opcode == RK_OP_GET)
        serve_get(w, msg, &req);
    else
        serve_write(w, msg, &req, part);
}

/* The coordinator's request to this node's own replica: served here and
 * now, as if it had come in on the socket (coord.h). */
static void serve_local(void *arg, nng_msg *msg)
{
    serve_owned(arg, msg);
}

static void on_mail(struct rk_mailbox *mb, void *item, void *arg)
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
        reply_status(w, msg, req->opcode, req->id, RK_ST_INTERNAL, "out of memory");
        return;
    }
    memcpy(copy, nng_msg_body(msg), n);
    rk_proto_decode(copy, n, &rep);
    rep.flags = RK_MSG_REPLY;
    rep.status = RK_ST_OK;
    answer(w, msg, &rep, false);
    free(copy);
}

static void serve_admin(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    char *text = NULL;
    enum rk_status st = rk_admin_reply(w->sh, req, &text);
    w->stats.other++;
    reply_status(w, msg, req->opcode, req->id, st, text ? text : "");
    free(text);
}

/* Membership requests go to the main loop, which owns the member table
 * and answers them itself (rk_control_serve). */
static void to_control(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    w->stats.other++;
    if (!w->sh->control)
        reply_status(w, msg, req->opcode, req->id, RK_ST_UNSUPPORTED,
                     "membership is not served by this node");
    else if (rk_mailbox_post(w->sh->control, msg) != 0)
        reply_status(w, msg, req->opcode, req->id, RK_ST_BUSY, "control queue full; retry later");
}

/* A data request (PUT, GET, DEL, RPUT, RGET): checked, then served here
 * or posted to the worker that owns its partition. */
static void route_data(struct rk_worker *w, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_shared *sh = w->sh;
    if (!req->has_key || req->klen == 0 || (req->opcode == RK_OP_PUT && !req->has_val) ||
        (req->opcode == RK_OP_RPUT && !req->has_val && !(req->has_tombstone && req->tombstone))) {
        reply_status(w, msg, req->opcode, req->id, RK_ST_MALFORMED,
                     req->opcode == RK_OP_PUT && req->has_key ? "put without a value"
                                                              : "request without a key");
        return;
    }
    uint64_t h = XXH3_64bits(req->key, req->klen);
    struct rk_worker *owner = sh->workers[(h & (sh->partitions - 1)) % sh->nworkers];
    if (owner == w) {
        serve_owned(w, msg);
    } else if (rk_mailbox_post(&owner->mb, msg) == 0) {
        w->stats.forwarded++;
    } else {
        w->stats.busy++;
        reply_status(w, msg, req->opcode, req->id, RK_ST_BUSY, "worker queue full; retry later");
    }
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
        reply_status(w, part, req.opcode, req.id, RK_ST_MALFORMED,
                     "a batch carries replica requests only");
    else if (pr->refuse != RK_ST_OK)
        reply_status(w, part, req.opcode, req.id, pr->refuse, pr->why);
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
        reply_status(w, msg, req->opcode, req->id, rk_proto_status(rc),
                     rc == RK_EMALFORMED ? "malformed batch: frames must fill the value, at most 4096"
                                         : "out of memory");
}

/* Route one received request: answer what is malformed or over the limit,
 * serve or forward data requests, answer admin requests here. */
static void dispatch(struct rk_worker *w, nng_msg *msg)
{
    struct rk_shared *sh = w->sh;
    struct rk_msg req;
    unsigned n = atomic_fetch_add(&sh->inflight, 1);
    int rc = rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req);
    if (rc < 0 || (req.flags & RK_MSG_REPLY)) {
        reply_status(w, msg, req.opcode, req.id,
                     rc == RK_EUNSUPPORTED ? RK_ST_UNSUPPORTED : RK_ST_MALFORMED,
                     rc == RK_EUNSUPPORTED ? "unsupported protocol version or opcode"
                                           : "malformed message");
        return;
    }
    const char *why = NULL;
    enum rk_status refuse = refusal(w, n, &why);
    if (req.opcode == RK_OP_RBATCH) {
        serve_batch(w, msg, &req, refuse, why);
        return;
    }
    if (refuse != RK_ST_OK) {
        if (refuse == RK_ST_BUSY)
            w->stats.busy++;
        reply_status(w, msg, req.opcode, req.id, refuse, why);
        return;
    }
    switch (req.opcode) {
    case RK_OP_PUT:
    case RK_OP_GET:
    case RK_OP_DEL:
    case RK_OP_RPUT:
    case RK_OP_RGET:
        break;
    case RK_OP_ECHO:
        serve_echo(w, msg, &req);
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

static void on_rx(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    struct rk_worker *w = io->data;
    rk_nng_rx_batch(w->sh->sock, RK_NNG_RX_BATCH, dispatch_msg, w);
}

/* ---- timers, background work, control ---- */

static void publish(struct rk_worker *w)
{
    pthread_mutex_lock(&w->stats_lock);
    w->pub = w->stats;
    rk_storage_stats(w->store, &w->pub.storage);
    if (w->coord)
        rk_coord_stats(w->coord, &w->pub.coord);
    if (w->hints)
        rk_hints_stats(w->hints, &w->pub.hints);
    pthread_mutex_unlock(&w->stats_lock);
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_worker *w = t->data;
    atomic_store(&w->heartbeat, rk_clock_mono_ns());
    publish(w);
    if (!ev_is_active(&w->bg))
        ev_idle_start(w->loop, &w->bg); /* index files and merges, when idle */
}

/* fsync = "interval": make written data durable within fsync_interval. */
static void on_syncer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_worker *w = t->data;
    if (rk_storage_sync_due_ms(w->store) == 0)
        rk_storage_sync(w->store);
}

static void on_idle(struct ev_loop *loop, ev_idle *i, int revents)
{
    (void)revents;
    struct rk_worker *w = i->data;
    int rc = rk_storage_step(w->store);
    if (rc <= 0)
        ev_idle_stop(loop, i);
}

static void finish(struct rk_worker *w)
{
    rk_mailbox_fini(&w->mb); /* serves what other workers forwarded */
    rk_coord_destroy(w->coord); /* answers what still waits for replicas */
    w->coord = NULL;
    send_hinted(w);
    rk_hints_close(w->hints); /* commits and syncs the hints it took */
    w->hints = NULL;
    on_prepare(w->loop, &w->flush, 0);
    sync_drain(w);
    ev_prepare_stop(w->loop, &w->flush);
    ev_idle_stop(w->loop, &w->bg);
    ev_timer_stop(w->loop, &w->tick);
    ev_timer_stop(w->loop, &w->syncer);
    ev_async_stop(w->loop, &w->sync.done_w);
    int rc = rk_storage_close(w->store);
    w->store = NULL;
    if (rc < 0)
        rk_error("worker", "closing storage of worker %u: %s", w->idx, rk_strerror(rc));
    ev_break(w->loop, EVBREAK_ALL);
}

static void on_ctl(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct rk_worker *w = a->data;
    int cmd = atomic_exchange(&w->cmd, CTL_NONE);
    if (cmd == CTL_STOP_RX) {
        ev_io_stop(loop, &w->rx);
        atomic_fetch_add(&w->sh->rx_stopped, 1);
    } else if (cmd == CTL_EXIT) {
        finish(w);
    }
}

/* ---- life cycle ---- */

static void *thread_main(void *arg)
{
    struct rk_worker *w = arg;
    ev_run(w->loop, 0);
    return NULL;
}

static int open_store(struct rk_worker *w, char *err, size_t errlen)
{
    char dir[RK_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/worker-%u", w->sh->cfg.data_dir, w->idx); /* fits: data_dir < 1 KiB */
    struct rk_storage_opts o;
    struct rk_storage_report rep;
    rk_node_storage_opts(&w->sh->cfg, &o);
    int rc = rk_storage_open(&w->store, dir, &o, &rep);
    if (rc < 0)
        snprintf(err, errlen, "%s", rep.error[0] ? rep.error : rk_strerror(rc));
    else if (rep.torn_bytes || rep.quarantined)
        rk_warn("worker", "worker %u recovered: torn_bytes=%llu quarantined=%u records_lost=%llu",
                w->idx, (unsigned long long)rep.torn_bytes, rep.quarantined,
                (unsigned long long)rep.records_lost);
    return rc;
}

static int open_hints(struct rk_worker *w, char *err, size_t errlen)
{
    char dir[RK_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/hints-%u", w->sh->cfg.data_dir, w->idx); /* fits: data_dir < 1 KiB */
    struct rk_storage_opts o;
    rk_node_storage_opts(&w->sh->cfg, &o);
    return rk_hints_open(&w->hints, dir, &o, w->sh->partitions, w->sh->cfg.hints_max_bytes,
                         w->sh->cfg.hints_max_age_ms, err, errlen);
}

static void watchers_init(struct rk_worker *w, int fd)
{
    ev_io_init(&w->rx, on_rx, fd, EV_READ);
    ev_prepare_init(&w->flush, on_prepare);
    ev_timer_init(&w->tick, on_tick, TICK_S, TICK_S);
    double si = (double)w->sh->cfg.fsync_interval_ms / 1000.0;
    ev_timer_init(&w->syncer, on_syncer, si, si);
    ev_idle_init(&w->bg, on_idle);
    ev_async_init(&w->ctl, on_ctl);
    ev_async_init(&w->sync.done_w, on_synced);
    w->sync.done_w.data = w;
    ev_async_start(w->loop, &w->sync.done_w);
    w->rx.data = w->flush.data = w->tick.data = w->syncer.data = w->bg.data = w->ctl.data = w;
    ev_io_start(w->loop, &w->rx);
    ev_prepare_start(w->loop, &w->flush);
    ev_timer_start(w->loop, &w->tick);
    if (w->sh->cfg.fsync == RK_FSYNC_INTERVAL)
        ev_timer_start(w->loop, &w->syncer);
    ev_async_start(w->loop, &w->ctl);
}

/* The coordinator's way to end a client request: sent now (its replicas
 * committed already), or dropped when no reply could be built. */
static void coord_reply(void *arg, nng_msg *msg, bool answered)
{
    if (answered)
        send_one(arg, msg);
    else
        drop(arg, msg);
}

static int make_coord(struct rk_worker *w)
{
    const struct rk_config *c = &w->sh->cfg;
    struct rk_coord_env env = {.replicas = c->replicas, .read_quorum = c->read_quorum,
                               .write_quorum = c->write_quorum,
                               .request_timeout_ms = c->request_timeout_ms,
                               .hlc = &w->sh->hlc, .views = &w->sh->views, .hints = w->hints,
                               .reply = coord_reply, .local = serve_local, .arg = w};
    return rk_coord_create(&w->coord, w->loop, &env);
}

int rk_worker_create(struct rk_worker **out, struct rk_shared *sh, uint32_t idx, char *err,
                     size_t errlen)
{
    struct rk_worker *w = calloc(1, sizeof(*w));
    int fd;
    if (!w)
        return -ENOMEM;
    w->sh = sh;
    w->idx = idx;
    pthread_mutex_init(&w->stats_lock, NULL);
    pthread_mutex_init(&w->sync.mu, NULL);
    pthread_cond_init(&w->sync.cv, NULL);
    w->sync.fd = -1;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    int rc = w->loop ? 0 : -ENOMEM;
    if (rc == 0)
        rc = rk_mailbox_init(&w->mb, w->loop, MAILBOX_CAP, on_mail, w);
    if (rc == 0)
        rc = open_store(w, err, errlen);
    if (rc == 0)
        rc = open_hints(w, err, errlen);
    if (rc == 0)
        rc = make_coord(w);
    if (rc == 0 && nng_socket_get_int(sh->sock, NNG_OPT_RECVFD, &fd) != 0)
        rc = -EIO;
    if (rc < 0) {
        if (!err[0])
            snprintf(err, errlen, "worker %u: %s", idx, rk_strerror(rc));
        rk_worker_destroy(w);
        return rc;
    }
    watchers_init(w, fd);
    atomic_store(&w->heartbeat, rk_clock_mono_ns());
    publish(w);
    *out = w;
    return 0;
}

int rk_worker_start(struct rk_worker *w, bool pin)
{
    int rc = pthread_create(&w->sync.th, NULL, syncer_main, w);
    if (rc != 0)
        return -rc;
    w->sync.started = true;
    rc = pthread_create(&w->thread, NULL, thread_main, w);
    if (rc != 0)
        return -rc;
    w->started = true;
    char name[16];
    snprintf(name, sizeof(name), "rk-worker-%u", w->idx);
    pthread_setname_np(w->thread, name);
    if (pin) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)(w->idx % (uint32_t)(ncpu > 0 ? ncpu : 1)), &set);
        rc = pthread_setaffinity_np(w->thread, sizeof(set), &set);
        if (rc != 0)
            rk_warn("worker", "cannot pin worker %u: %s", w->idx, strerror(rc));
    }
    return 0;
}

void rk_worker_stop_rx(struct rk_worker *w)
{
    atomic_store(&w->cmd, CTL_STOP_RX);
    ev_async_send(w->loop, &w->ctl);
}

void rk_worker_exit(struct rk_worker *w)
{
    atomic_store(&w->cmd, CTL_EXIT);
    ev_async_send(w->loop, &w->ctl);
}

int rk_worker_join(struct rk_worker *w)
{
    if (!w->started)
        return 0;
    w->started = false;
    return -pthread_join(w->thread, NULL);
}

void rk_worker_destroy(struct rk_worker *w)
{
    if (!w)
        return;
    if (w->store)
        rk_storage_close(w->store);
    rk_coord_destroy(w->coord); /* only if the thread never ran finish() */
    rk_hints_close(w->hints);
    if (w->loop) {
        rk_mailbox_fini(&w->mb);
        ev_loop_destroy(w->loop);
    }
    if (w->sync.started) {
        pthread_mutex_lock(&w->sync.mu);
        w->sync.quit = true;
        pthread_cond_signal(&w->sync.cv);
        pthread_mutex_unlock(&w->sync.mu);
        pthread_join(w->sync.th, NULL);
    }
    pthread_mutex_destroy(&w->sync.mu);
    pthread_cond_destroy(&w->sync.cv);
    replies_free(&w->out);
    replies_free(&w->held);
    replies_free(&w->hinted);
    replies_free(&w->syncing);
    pthread_mutex_destroy(&w->stats_lock);
    free(w);
}

uint64_t rk_worker_heartbeat(const struct rk_worker *w)
{
    return atomic_load(&w->heartbeat);
}

void rk_worker_stats(struct rk_worker *w, struct rk_worker_stats *out)
{
    pthread_mutex_lock(&w->stats_lock);
    *out = w->pub;
    pthread_mutex_unlock(&w->stats_lock);
}

/* The group-commit reply path of a worker (worker_int.h): replies are
 * queued during a loop turn and sent from the prepare watcher after the
 * turn's commit; under fsync = "always" write replies wait for the
 * fdatasync that covers them, which runs on a per-worker thread while the
 * loop keeps serving.
 *
 * Invariants: a queued reply to a write is sent only after the commit (and
 * sync) that made it durable; a reply is sent exactly once and then
 * sh->inflight is decremented.
 */
#include "server/worker_int.h"
#include "server/batch.h"
#include "cluster/coord.h"
#include "cluster/hints.h"
#include "proto/proto.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/grow.h"
#include "util/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rk_replies_push(struct replies *r, nng_msg *m, bool write)
{
    /* Two arrays of one capacity: r->cap moves only once both have it. */
    size_t cm = r->cap, cw = r->cap;
    if (rk_grow(&r->m, &cm, r->n + 1, sizeof(*r->m), 64, 0) < 0 ||
        rk_grow(&r->write, &cw, r->n + 1, sizeof(*r->write), 64, 0) < 0)
        return -ENOMEM;
    r->cap = cm;
    r->m[r->n] = m;
    r->write[r->n++] = write;
    return 0;
}

void rk_replies_free(struct replies *r)
{
    for (size_t i = 0; i < r->n; i++)
        nng_msg_free(r->m[i]);
    free(r->m);
    free(r->write);
    memset(r, 0, sizeof(*r));
}

/* ---- receipt stamps (worker_int.h) ---- */

#define STAMP_LEN     sizeof(uint64_t)
#define BACKTRACE_MIN 8u /* a raw rep0 header: the pipe id and a request id */

int rk_reply_stamp(nng_msg *m)
{
    uint64_t ns = rk_clock_mono_ns();
    return nng_msg_header_append(m, &ns, STAMP_LEN) == 0 ? 0 : -EINVAL;
}

uint64_t rk_reply_received_ns(nng_msg *m)
{
    uint64_t ns = 0;
    size_t n = nng_msg_header_len(m);
    if (n >= STAMP_LEN)
        memcpy(&ns, (const uint8_t *)nng_msg_header(m) + n - STAMP_LEN, STAMP_LEN);
    return ns;
}

/* m, a reply about to leave, in w's per-operation figures: µs since
 * received_ns, by its own opcode and status (opstats.h). */
static void account(struct rk_worker *w, nng_msg *m, uint64_t received_ns)
{
    uint64_t now = rk_clock_mono_ns();
    rk_opstats_record_reply(&w->stats.ops, nng_msg_body(m), nng_msg_len(m),
                            now > received_ns ? (now - received_ns) / 1000 : 0);
}

int rk_auth_channel(const struct rk_shared *sh, uint8_t opcode, bool hint)
{
    switch (opcode) {
    case RK_OP_RPUT:
    case RK_OP_RGET:
    case RK_OP_RBATCH:
    case RK_OP_AE_ROOT:
    case RK_OP_AE_KEYS:
        return RK_AUTH_PEER;
    case RK_OP_REPAIR:
        return hint ? RK_AUTH_PEER : RK_AUTH_ADMIN;
    case RK_OP_JOIN:
    case RK_OP_LEAVE:
    case RK_OP_REMOVE:
        return RK_AUTH_ADMIN;
    default:
        return sh->cfg.client_auth ? RK_AUTH_CLIENT : -1;
    }
}

void rk_reply_send(struct rk_shared *sh, nng_msg *m)
{
    /* rep0 sends the rest of the header back. A header too short for a
     * backtrace (pipe id, request id) and a stamp cannot hold one: it is
     * sent as it is (rep0 drops what it cannot route). */
    if (nng_msg_header_len(m) >= BACKTRACE_MIN + STAMP_LEN)
        nng_msg_header_chop(m, STAMP_LEN);
    /* With a cluster secret a reply to a signed request proves it too: a
     * coordinator counts only replies that do, so nobody else can fake an
     * acknowledgement. */
    const uint8_t *b = nng_msg_body(m);
    if (sh->auth.on && nng_msg_len(m) >= RK_PROTO_HDR && rk_auth_channel(sh, b[3], false) >= 0 &&
        rk_proto_msg_seal(m, &sh->auth.rpc, rk_clock_wall_ms()) != 0) {
        nng_msg_free(m);
        m = NULL;
    }
    if (m && nng_sendmsg(sh->sock, m, 0) != 0)
        nng_msg_free(m); /* the client's pipe is gone */
    atomic_fetch_sub(&sh->inflight, 1);
}

/* A reply goes to its client; for a replica request this node's own
 * coordinator made (internal, a 4-byte header: its request id), back to
 * the coordinator; for a part of a peer's batch (batch.h), to the batch.
 * Neither of those went through the socket alone or counts in flight.
 * What came from the socket is told apart by its pipe, never by its
 * header, which the sender controls. */
bool rk_reply_is_local(nng_msg *m)
{
    return rk_msg_is_internal(m) && nng_msg_header_len(m) == 4;
}

void rk_reply_out_w(struct rk_worker *w, nng_msg *m)
{
    if (rk_batch_is_part(m)) {
        account(w, m, rk_batch_part_received_ns(m));
        rk_batch_part_done(m, true);
    } else if (!rk_reply_is_local(m)) {
        account(w, m, rk_reply_received_ns(m));
        rk_reply_send(w->sh, m);
    } else if (w->coord)
        rk_coord_local_answer(w->coord, m);
    else
        nng_msg_free(m); /* shutting down: the coordinator is gone */
}

/* A reply that could not be built: the request ends unanswered. */
void rk_reply_drop_w(struct rk_worker *w, nng_msg *m)
{
    if (rk_batch_is_part(m)) {
        rk_batch_part_done(m, false);
        return;
    }
    if (!rk_reply_is_local(m))
        atomic_fetch_sub(&w->sh->inflight, 1);
    nng_msg_free(m);
}

/* Turn the reply to a write into an error: its commit or sync failed. */
void rk_reply_fail_write_w(struct rk_worker *w, nng_msg *m, int rc)
{
    char text[320];
    const char *why = rk_storage_write_error(w->store);
    snprintf(text, sizeof(text), "write failed: %s%s%s", rk_strerror(rc), why[0] ? ": " : "", why);
    struct rk_msg rep;
    rk_proto_decode(nng_msg_body(m), nng_msg_len(m), &rep); /* our own reply: valid */
    struct rk_msg err = {.opcode = rep.opcode,
                         .flags = RK_MSG_REPLY,
                         .id = rep.id,
                         .status = (uint16_t)rk_proto_status(rc),
                         .text = (const uint8_t *)text,
                         .tlen = (uint32_t)strlen(text),
                         .has_text = true};
    rk_proto_msg_encode(m, &err);
    w->stats.errors++;
}

/* A reply that cannot be queued (out of memory) goes out now, except to
 * this node's own coordinator: it is inside rk_coord_start, fanning out,
 * and an answer now could end the request under it. That one is dropped
 * and the coordinator times the replica out. */
void rk_reply_now_w(struct rk_worker *w, nng_msg *msg)
{
    if (rk_reply_is_local(msg))
        rk_reply_drop_w(w, msg);
    else
        rk_reply_out_w(w, msg);
}

void rk_reply_queue_w(struct rk_worker *w, nng_msg *msg, bool write)
{
    if (rk_replies_push(&w->out, msg, write) < 0)
        rk_reply_now_w(w, msg);
}

/* Encode rep into msg and queue it (write: it waits for durability). */
void rk_reply_answer_w(struct rk_worker *w, nng_msg *msg, const struct rk_msg *rep, bool write)
{
    if (rk_proto_msg_encode(msg, rep) < 0)
        rk_reply_drop_w(w, msg);
    else
        rk_reply_queue_w(w, msg, write);
}

/* Answer with a status and an optional one-line text. */
void rk_reply_status_w(struct rk_worker *w, nng_msg *msg, uint8_t op, uint32_t id,
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
    rk_reply_answer_w(w, msg, &rep, false);
}

/* ---- pipelined sync (fsync = "always") ----
 * The loop writes batch N and hands its fdatasync to the syncer thread,
 * then goes on serving; batch N+1 collects while N syncs, so one fdatasync
 * covers everything that arrived during the previous one. Replies to
 * writes wait in `held` until a sync that covers them has succeeded. */

void *rk_sync_main(void *arg)
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
        uint64_t t0 = rk_clock_mono_ns();
        int rc = rk_io_datasync(fd);
        uint64_t us = (rk_clock_mono_ns() - t0) / 1000;
        pthread_mutex_lock(&y->mu);
        y->rc = rc;
        y->us = us;
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
    for (size_t i = 0; i < w->held.n; i++) {
        if (fd < 0 && rc < 0)
            rk_reply_fail_write_w(w, w->held.m[i], rc);
        if (fd < 0)
            rk_reply_out_w(w, w->held.m[i]); /* durable already (a roll synced it), or failed */
        else
            rk_replies_push(&w->syncing, w->held.m[i], true);
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
    uint64_t us = y->us;
    y->done = false;
    pthread_mutex_unlock(&y->mu);
    if (!done)
        return;
    close(y->dupfd);
    y->busy = false;
    rk_storage_sync_end(w->store, y->puts, rc, us);
    for (size_t i = 0; i < w->syncing.n; i++) {
        if (rc < 0)
            rk_reply_fail_write_w(w, w->syncing.m[i], RK_EREADONLY);
        rk_reply_out_w(w, w->syncing.m[i]);
    }
    w->syncing.n = 0;
    sync_start(w);
}

void rk_sync_on_done(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop, (void)revents;
    sync_finished(a->data);
}

/* Block until the syncer is idle (shutdown), finishing what it did. */
void rk_sync_drain_w(struct rk_worker *w)
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
void rk_reply_hinted_w(struct rk_worker *w)
{
    if (w->hinted.n == 0)
        return;
    int rc = rk_hints_flush(w->hints);
    for (size_t i = 0; i < w->hinted.n; i++) {
        if (rc < 0)
            rk_reply_fail_write_w(w, w->hinted.m[i], rc);
        rk_reply_out_w(w, w->hinted.m[i]);
    }
    w->hinted.n = 0;
}

/* Prepare watcher: runs before the loop blocks, after every request of this
 * turn was served: one commit (one write) for them all, then the replies:
 * at once for reads and, unless the sync is pipelined, for writes too. */
void rk_reply_on_prepare(struct ev_loop *loop, ev_prepare *p, int revents)
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
    for (size_t i = 0; i < w->out.n; i++) {
        nng_msg *m = w->out.m[i];
        if (w->out.write[i] && rc < 0)
            rk_reply_fail_write_w(w, m, rc);
        else if (w->out.write[i] && pipelined && rk_replies_push(&w->held, m, true) == 0)
            continue;
        rk_reply_out_w(w, m);
    }
    w->out.n = 0;
    if (pipelined)
        sync_start(w);
    if (w->hints) {
        rk_reply_hinted_w(w);
        rk_hints_commit(w->hints);
    }
    if (w->coord)
        rk_coord_flush(w->coord); /* last: answers above may have queued requests */
}

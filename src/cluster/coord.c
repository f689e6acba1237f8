/* The coordinator's state machine (see coord.h, coord_int.h): one op per
 * client request, its replicas' answers and timeouts, the client's answer.
 *
 * A replica request's id (its frame's rid) is
 *     0x80000000 | slot << 4 | replica index
 * where slot indexes ops[] (from FLIGHT_BASE on: flights[], the hint
 * deliveries and read-repair writes), and the request's proto id carries
 * the op's sequence number, so a late answer to a slot's previous
 * occupant is recognised and dropped.
 *
 * Design
 * ------
 * Replica states (enum rstate): every replica starts PENDING and settle()
 * moves it once, never back:
 *
 *                  on_answer: OK ---------------------------> OK
 *                  on_answer: NOT_FOUND (reads) ------------> MISSING
 *   PENDING ---+-- on_answer: error; on_timeout; evict;
 *              |   send_to/transmit: unreachable, overloaded -> FAILED
 *              +-- fan_out: not up in the view -------------> DOWN
 *                  (writes: hand_off first asks a fallback, r[n+k], for it)
 *
 * An op's life:
 *
 *   free --op_alloc--> used --op_take fails--> replied --op_free--> free
 *                        |
 *                   fan_out (every replica asked or settled DOWN/FAILED)
 *                        v
 *   waiting --settle...advance: have >= need: reply (OK / the newest)
 *     |                         have + pend_pref < need: reply_quorum
 *     |     (on_answer, on_timeout, evict and a failed pump call settle)
 *     v
 *   replied, replicas pending --settle...advance: pending == 0-->
 *     read_repair (reads) --op_free--> free
 *   (evict: op_alloc finds no free slot and gives an answered op's pending
 *    replicas up, settling them FAILED, which frees it through advance)
 *
 * Serving and pending replicas (placement.h): r[0..n) is the partition's
 * serving list, the only answers that count; a write also goes to its
 * pending owners, the extras r[n..n+ne) (extra, owner -1), before any
 * fallback. A serving replica with a partner (a displaced owner whose
 * successor is pending) counts only once the partner acked too: "counts"
 * below is st == OK and (no partner or partner OK), "may count" is
 * st == PENDING with its partner PENDING or OK, or st == OK with its
 * partner PENDING.
 *
 * Invariants, for every used op between two events of the loop (check()
 * tests 2-7 in advance(); have = acks for writes, answers for reads):
 *  1. c->used is the number of used ops; a used op has a running timer and
 *     pending > 0, except inside the call that settled its last replica,
 *     which frees it (advance); a freed op is all zero.
 *  2. pending = #{i < n + nf : r[i].st == PENDING},
 *     pend_pref = #{i < n : r[i] may count}.
 *  3. Writes: acks = #{i < n : r[i] counts}, answers = 0. Reads:
 *     answers = #{i < n : r[i].st in {OK, MISSING}}, acks = 0, nf = 0.
 *     A fallback's ack never counts: W means W preference replicas (or
 *     their hints) hold the write. So acks + answers + pend_pref <= n.
 *  4. 1 <= need <= n, n + nf <= NREP. A fallback r[k], k >= n, stands in
 *     for r[owner], owner < n, which is DOWN and handed; each DOWN replica
 *     has at most one, and no member is asked twice for one op.
 *  5. replied ⇔ client == NULL, and replied never goes back. After
 *     advance, !replied ⇒ have < need <= have + pend_pref: the client is
 *     answered as soon as the outcome is known, and an op with nothing
 *     pending has been answered (QUORUM at worst) before it is freed.
 *  6. r[i].sent ⇒ r[i].st == PENDING and r[i].p counts it in p->inflight;
 *     settle() takes it out, so every peer's inflight drains.
 *  7. Reads: have_best ⇒ (best_version, best_rank) are some OK replica's,
 *     and none newer was answered (rk_record_newer; unless copying its
 *     value ran out of memory); best_val != NULL ⇔ have_best &&
 *     !best_tombstone.
 *
 * BEHAVIOR: why an op always ends. Every path that settles a replica ends
 * in advance() (fan_out's in rk_coord_start's), every PENDING replica is
 * settled by request_timeout at the latest (on_timeout), and pending only
 * falls, so each op reaches pending == 0 and is freed. A late answer finds
 * its replica settled, or its slot reused under another seq, and is
 * dropped (coord_take_answer). A write whose replica failed or was down is
 * kept as a hint for it (settle → hint), unless a fallback holds it.
 *
 * Failure cases handled: a replica down (a fallback, or a hint), silent
 * (timeout), refusing (its reason in the QUORUM text), a peer without room
 * (queued on it, coord_pump), slots exhausted by a dead replica (evict),
 * the local replica served on this loop (env.local, answered in a later
 * turn: see check in rk_coord_start).
 */
#include "cluster/coord_int.h"
#include "storage/record.h"
#include "util/assert.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/jbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void advance(struct op *op);
static void on_tick(struct ev_loop *loop, ev_timer *t, int revents);

/* ---- answering the client ---- */

/* The trace of a GET: who coordinated, what each replica said (malloc'd,
 * or NULL out of memory). */
static char *trace_json(const struct op *op)
{
    struct rk_jbuf b = {0};
    const struct rk_view *v = op->view;
    rk_jadd(&b, "{\"coordinator\":");
    rk_jstr(&b, v->m[v->self].id);
    rk_jadd(&b, ",\"replicas\":[");
    for (uint8_t i = 0; i < op->n; i++) {
        const struct replica *r = &op->r[i];
        rk_jadd(&b, "%s{\"node\":", i ? "," : "");
        rk_jstr(&b, r->m->id);
        if (r->st == RS_OK) {
            rk_jadd(&b, ",\"version\":%llu%s}", (unsigned long long)r->version,
                    r->tombstone ? ",\"tombstone\":true" : "");
        } else if (r->st == RS_MISSING) {
            rk_jadd(&b, ",\"missing\":true}");
        } else if (r->st == RS_PENDING) {
            rk_jadd(&b, ",\"pending\":true}");
        } else {
            rk_jadd(&b, ",\"error\":");
            rk_jstr(&b, r->why);
            rk_jadd(&b, "}");
        }
    }
    rk_jadd(&b, "]}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static void reply(struct op *op, const struct rk_msg *rep)
{
    struct rk_coord *c = op->c;
    if (op->replied)
        return;
    op->replied = true;
    c->env.reply(c->env.arg, op->client, rk_proto_msg_encode(op->client, rep) == 0);
    op->client = NULL;
}

static void reply_text(struct op *op, enum rk_status st, const char *text)
{
    struct rk_msg rep = {.opcode = op->opcode,
                         .flags = RK_MSG_REPLY,
                         .id = op->req_id,
                         .status = (uint16_t)st,
                         .has_text = text != NULL,
                         .text = (const uint8_t *)text,
                         .tlen = text ? (uint32_t)strlen(text) : 0};
    reply(op, &rep);
}

/* "write quorum not met: 1 of 2 acks (node-3 down, node-2 timed out)" */
static void reply_quorum(struct op *op)
{
    bool write = op->opcode != RK_OP_GET;
    char text[768];
    size_t o = (size_t)snprintf(text, sizeof(text), "%s quorum not met: %u of %u %s (",
                                write ? "write" : "read", write ? op->acks : op->answers, op->need,
                                write ? "acks" : "answers");
    bool first = true;
    for (uint8_t i = 0; i < op->n && o < sizeof(text); i++) {
        const struct replica *r = &op->r[i];
        const struct replica *k = r->partner >= 0 ? &op->r[r->partner] : NULL;
        if ((r->st == RS_OK && (!k || k->st == RS_OK)) || r->st == RS_MISSING)
            continue;
        if (r->st == RS_OK)
            o += (size_t)snprintf(text + o, sizeof(text) - o,
                                  "%s%s acked but its successor %s did not: %s", first ? "" : ", ",
                                  r->m->id, k->m->id, k->st == RS_PENDING ? "pending" : k->why);
        else
            o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s %s", first ? "" : ", ",
                                  r->m->id, r->st == RS_PENDING ? "pending" : r->why);
        first = false;
    }
    if (o < sizeof(text))
        snprintf(text + o, sizeof(text) - o, ")");
    op->c->stats.quorum_failed++;
    reply_text(op, RK_ST_QUORUM, text);
}

/* The preference list is shorter than the quorum: this node knows fewer
 * members than cluster.replicas. Nothing is sent: no replica set it
 * knows of could make the request succeed. */
static void reply_short_list(struct op *op)
{
    bool write = op->opcode != RK_OP_GET;
    char text[300];
    if (rk_ring_members(op->view->ring) < op->c->env.replicas)
        snprintf(text, sizeof(text),
                 "%s quorum not met: 0 of %u %s (only %u of cluster.replicas = %u members known "
                 "yet)",
                 write ? "write" : "read", op->need, write ? "acks" : "answers", op->n,
                 op->c->env.replicas);
    else
        snprintf(text, sizeof(text),
                 "%s quorum not met: 0 of %u %s (only %u of %u replicas hold partition %u yet; "
                 "the others are receiving it: kvctl transfers)",
                 write ? "write" : "read", op->need, write ? "acks" : "answers", op->n,
                 op->c->env.replicas, op->part);
    op->c->stats.quorum_failed++;
    reply_text(op, RK_ST_QUORUM, text);
}

static void reply_read(struct op *op)
{
    char *trace = op->trace ? trace_json(op) : NULL; /* none rather than a broken one */
    struct rk_msg rep = {.opcode = RK_OP_GET,
                         .flags = RK_MSG_REPLY,
                         .id = op->req_id,
                         .has_text = trace != NULL,
                         .text = (const uint8_t *)trace,
                         .tlen = trace ? (uint32_t)strlen(trace) : 0};
    if (!op->have_best || op->best_tombstone) {
        rep.status = RK_ST_NOT_FOUND;
    } else {
        rep.val = op->best_val, rep.vlen = op->best_vlen, rep.has_val = true;
        rep.version = op->best_version, rep.has_version = true;
        rep.expiry_ms = op->best_expiry_ms, rep.has_expiry = op->best_expiry_ms != 0;
    }
    reply(op, &rep);
    free(trace);
}

/* ---- the state machine ---- */

/* Invariants 2-7 of the design block, recounted: O(n + nf), at most
 * NREP (16) replicas, so cheap enough to run on every advance(). */
static void check(const struct op *op)
{
    bool write = op->opcode != RK_OP_GET;
    uint8_t pending = 0, pend_pref = 0, ok = 0, missing = 0, best = 0;
    RK_ASSERT(op->used && op->need >= 1 && op->need <= op->n && op->n + op->nf <= NREP);
    RK_ASSERT(write || op->nf == 0);
    for (uint8_t i = 0; i < op->n + op->nf; i++) {
        const struct replica *r = &op->r[i];
        bool pref = i < op->n, pend = r->st == RS_PENDING;
        uint8_t kst = pref && r->partner >= 0 ? op->r[r->partner].st : RS_OK;
        pending += pend;
        pend_pref += pref && ((pend && (kst == RS_OK || kst == RS_PENDING)) ||
                              (r->st == RS_OK && kst == RS_PENDING));
        ok += pref && r->st == RS_OK && kst == RS_OK;
        missing += pref && r->st == RS_MISSING;
        best +=
            pref && r->st == RS_OK && r->version == op->best_version && r->rank == op->best_rank;
        RK_ASSERT(!r->sent || (pend && r->p));
        RK_ASSERT(pref || r->extra ? r->owner == -1
                                   : r->owner >= 0 && r->owner < op->n && op->r[r->owner].handed &&
                                         op->r[r->owner].st == RS_DOWN);
        RK_ASSERT(!pref || r->partner == -1 || (write && op->r[r->partner].extra));
    }
    RK_ASSERT(pending == op->pending && pend_pref == op->pend_pref);
    RK_ASSERT(write ? op->acks == ok && op->answers == 0 && missing == 0
                    : op->answers == ok + missing && op->acks == 0);
    RK_ASSERT(op->replied == (op->client == NULL));
    RK_ASSERT(!op->have_best || (!write && best > 0));
    RK_ASSERT((op->best_val != NULL) == (op->have_best && !op->best_tombstone));
}

static void op_free(struct op *op)
{
    struct rk_coord *c = op->c;
    RK_ASSERT(op->used && c->used > 0);
    ev_timer_stop(c->loop, &op->timer);
    if (op->client) { /* never answered: we are shutting down */
        reply_text(op, RK_ST_UNAVAILABLE, "node is shutting down");
    }
    free(op->best_val);
    rk_view_release(op->view);
    free(op->key);
    free(op->val);
    memset(op, 0, sizeof(*op));
    c->used--;
}

/* This node's own replica, asked through env.local (no peer): the repair
 * goes the same way, and its answer, under a slot of no op, is dropped. */
static bool repair_local(struct op *op, const struct replica *r, const struct rk_msg *w)
{
    struct rk_coord *c = op->c;
    if (!c->env.local || r->m != &op->view->m[op->view->self])
        return false;
    nng_msg *msg = coord_build(w, 0x80000000u | (uint32_t)LOCAL_REPAIR_SLOT << 4);
    if (msg)
        c->env.local(c->env.arg, msg);
    return msg != NULL;
}

/* Newer replicas of a read get the newest version, and so do those that
 * had none or could not read theirs (the key is repaired, not only read;
 * storage lets a damaged record be replaced at its own version). */
static void read_repair(struct op *op)
{
    if (!op->have_best)
        return;
    struct rk_msg w = {.opcode = RK_OP_RPUT,
                       .id = 0,
                       .key = op->key,
                       .klen = op->klen,
                       .has_key = true,
                       .version = op->best_version,
                       .has_version = true,
                       .expiry_ms = op->best_expiry_ms,
                       .has_expiry = op->best_expiry_ms != 0,
                       .tombstone = op->best_tombstone,
                       .has_tombstone = op->best_tombstone};
    if (!op->best_tombstone)
        w.val = op->best_val, w.vlen = op->best_vlen, w.has_val = true;
    for (uint8_t i = 0; i < op->n; i++) {
        struct replica *r = &op->r[i];
        bool stale = r->st == RS_MISSING || (r->st == RS_FAILED && r->damaged) ||
                     (r->st == RS_OK &&
                      rk_record_newer(op->best_version, op->best_rank, r->version, r->rank));
        if (!stale)
            continue;
        if (r->p ? coord_flight_send(op->c, r->p, FLIGHT_REPAIR, &w, 0) : repair_local(op, r, &w))
            op->c->stats.read_repairs++;
    }
}

/* Decide what can be decided; free the op once nothing is pending. */
static void advance(struct op *op)
{
    bool write = op->opcode != RK_OP_GET;
    uint8_t have = write ? op->acks : op->answers;
    check(op);
    if (!op->replied) {
        if (have >= op->need) {
            if (write) {
                struct rk_msg rep = {.opcode = op->opcode,
                                     .flags = RK_MSG_REPLY,
                                     .id = op->req_id,
                                     .version = op->version,
                                     .has_version = true};
                reply(op, &rep);
            } else {
                reply_read(op);
            }
        } else if (have + op->pend_pref < op->need) {
            reply_quorum(op);
        }
    }
    /* Invariant 5: decided as soon as it can be, so nothing pending means
     * answered. */
    RK_ASSERT(op->replied || (have < op->need && op->need <= have + op->pend_pref));
    if (op->pending)
        return;
    RK_ASSERT(op->replied);
    if (!write)
        read_repair(op);
    op_free(op);
}

/* A write replica i missed (down, unreachable, timed out): keep it for
 * that replica. A timed-out replica may have it already; delivering it
 * again is harmless (a stale replica write is acknowledged). */
static void hint(struct op *op, uint8_t i)
{
    struct rk_coord *c = op->c;
    if (!c->env.hints || op->opcode == RK_OP_GET)
        return;
    struct rk_record r = {.key = op->key,
                          .klen = op->klen,
                          .val = op->val,
                          .vlen = op->vlen,
                          .version = op->version,
                          .expiry_ms = op->expiry_ms,
                          .tombstone = op->tombstone};
    if (rk_hints_add(c->env.hints, op->r[i].m->id, &r,
                     rk_hlc_now(c->env.hlc, rk_clock_wall_ms())) == 0)
        c->stats.hints_stored++;
}

/* acks and pend_pref (invariants 2 and 3), counted again: a settle can
 * change what its partner counts. O(n). */
static void recount(struct op *op)
{
    bool write = op->opcode != RK_OP_GET;
    uint8_t acks = 0, may = 0;
    for (uint8_t i = 0; i < op->n; i++) {
        const struct replica *r = &op->r[i];
        uint8_t kst = r->partner >= 0 ? op->r[r->partner].st : RS_OK;
        acks += r->st == RS_OK && kst == RS_OK;
        may += (r->st == RS_PENDING && (kst == RS_OK || kst == RS_PENDING)) ||
               (r->st == RS_OK && kst == RS_PENDING);
    }
    op->pend_pref = may;
    if (write)
        op->acks = acks;
}

static void settle(struct op *op, uint8_t i, uint8_t st, const char *why)
{
    struct replica *r = &op->r[i];
    /* Once only (invariant 2): a second settle would wrap the counts. */
    RK_ASSERT(r->st == RS_PENDING && st != RS_PENDING && op->pending > 0);
    r->st = st;
    if ((st == RS_DOWN || st == RS_FAILED) && !r->handed)
        hint(op, r->owner >= 0 ? (uint8_t)r->owner : i);
    recount(op);
    if (why)
        snprintf(r->why, sizeof(r->why), "%s", why);
    op->pending--;
    if (r->sent) {
        r->sent = false;
        r->p->inflight--;
        coord_pump(op->c, r->p);
    }
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct op *op = t->data;
    for (uint8_t i = 0; i < op->n + op->nf; i++) {
        if (op->r[i].st != RS_PENDING)
            continue;
        settle(op, i, RS_FAILED, "timed out");
        op->c->stats.replica_timeouts++;
    }
    advance(op);
}

/* A read answer newer than the best so far becomes the best: its value
 * is copied (the answer's buffer is gone once it is handled). tombstone:
 * a delete, or an answer without a value. */
static void keep_best(struct op *op, const struct rk_msg *rep, bool tombstone, uint64_t rank)
{
    uint8_t *v = NULL;
    if (!tombstone && !(v = malloc(rep->vlen ? rep->vlen : 1)))
        return; /* out of memory: the older answer stands */
    if (v)
        memcpy(v, rep->val, rep->vlen);
    free(op->best_val);
    op->best_val = v;
    op->best_vlen = v ? rep->vlen : 0;
    op->have_best = true;
    op->best_version = rep->version;
    op->best_rank = rank;
    op->best_tombstone = tombstone;
    op->best_expiry_ms = rep->has_expiry ? rep->expiry_ms : 0;
}

/* One answer from replica i of op. */
static void on_answer(struct op *op, uint8_t i, const struct rk_msg *rep)
{
    struct replica *r = &op->r[i];
    if (rep->status == RK_ST_OK && r->owner >= 0) { /* a fallback holds it as a hint */
        settle(op, i, RS_OK, NULL);
        op->c->stats.hinted_writes++;
    } else if (rep->status == RK_ST_OK) {
        r->version = rep->version;
        r->tombstone = (rep->has_tombstone && rep->tombstone) || !rep->has_val;
        settle(op, i, RS_OK, NULL);
        if (op->opcode == RK_OP_GET && i < op->n) {
            /* Equal versions resolve as every replica's storage does. */
            r->rank = rk_record_rank(r->tombstone, rep->val, rep->vlen,
                                     rep->has_expiry ? rep->expiry_ms : 0);
            op->answers++;
            if (!op->have_best ||
                rk_record_newer(r->version, r->rank, op->best_version, op->best_rank))
                keep_best(op, rep, r->tombstone, r->rank);
        }
    } else if (rep->status == RK_ST_NOT_FOUND && op->opcode == RK_OP_GET) {
        settle(op, i, RS_MISSING, NULL);
        op->answers++;
    } else {
        /* "refused: <the replica's one-line reason>", cut to fit. */
        char why[sizeof(op->r[i].why)];
        int n = snprintf(why, sizeof(why), "%s", rk_proto_status_name(rep->status));
        for (char *p = why; *p; p++)
            *p = *p == '_' ? ' ' : (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (rep->has_text && rep->tlen && n > 0 && (size_t)n < sizeof(why))
            snprintf(why + n, sizeof(why) - (size_t)n, ": %.*s", (int)rep->tlen,
                     (const char *)rep->text);
        r->damaged = op->opcode == RK_OP_GET && rep->status == RK_ST_INTERNAL;
        settle(op, i, RS_FAILED, why);
        op->c->stats.replica_errors++;
    }
    advance(op);
}

/* ---- answers ---- */

/* The answer to the replica request rid, from peer p (NULL: from this
 * node's own replica); buf is borrowed. */
void coord_take_answer(struct rk_coord *c, struct peer *p, uint32_t rid, const uint8_t *buf,
                       size_t len)
{
    struct rk_msg rep;
    if (rk_proto_decode(buf, len, &rep) < 0)
        return;
    uint32_t slot = (rid & 0x7fffffff) >> 4;
    uint8_t i = rid & 15;
    if (slot >= FLIGHT_BASE && slot < FLIGHT_BASE + FLIGHTS) {
        if (p)
            coord_flight_answer(c, p, slot - FLIGHT_BASE, &rep);
        return;
    }
    struct op *op = slot < MAX_OPS ? &c->ops[slot] : NULL;
    if (!op || !op->used || op->seq != rep.id || i >= op->n + op->nf || op->r[i].st != RS_PENDING ||
        op->r[i].p != p)
        return; /* late for an op that ended */
    on_answer(op, i, &rep);
}

void rk_coord_local_answer(struct rk_coord *c, nng_msg *msg)
{
    uint32_t rid;
    if (nng_msg_header_len(msg) == 4 && nng_msg_header_trim_u32(msg, &rid) == 0)
        coord_take_answer(c, NULL, rid, nng_msg_body(msg), nng_msg_len(msg));
    nng_msg_free(msg);
}

/* ---- starting ---- */

/* Slots run out when a replica dies: every answered op still waits for
 * its silent replica until request_timeout. An answered op gives its slot
 * up: its silent replicas are settled now (a write is kept as a hint for
 * them, so nothing is lost; a late answer is ignored). The search goes on
 * from where the last one stopped, so it is short when most slots hold
 * answered ops (the case it is for). false if no op has been answered
 * yet (then BUSY is the truth). */
static bool evict(struct rk_coord *c)
{
    for (uint32_t k = 0; k < MAX_OPS; k++) {
        struct op *op = &c->ops[c->evict_at];
        c->evict_at = (c->evict_at + 1) % MAX_OPS;
        if (!op->used || !op->replied)
            continue;
        for (uint8_t i = 0; i < op->n + op->nf; i++)
            if (op->r[i].st == RS_PENDING)
                settle(op, i, RS_FAILED, "given up");
        c->stats.evicted++;
        advance(op); /* frees it: nothing is pending any more */
        return true;
    }
    return false;
}

static struct op *op_alloc(struct rk_coord *c)
{
    if (c->used == MAX_OPS && !evict(c))
        return NULL;
    while (c->ops[c->next_slot].used)
        c->next_slot = (c->next_slot + 1) % MAX_OPS;
    struct op *op = &c->ops[c->next_slot];
    c->next_slot = (c->next_slot + 1) % MAX_OPS;
    c->used++;
    op->used = true;
    op->c = c;
    op->seq = ++c->seq;
    return op;
}

/* Quorum for this request: the client's or the config's. 0 with *why set
 * when the client asked for more than cluster.replicas.
 *
 * BEHAVIOR: never capped at the preference list. A coordinator that knows
 * fewer members than cluster.replicas (a cluster still forming, a node
 * just restarted or refused by the others) builds a shorter list; were the
 * quorum capped there, it would acknowledge a write held by fewer than W
 * replicas, and a read would answer from fewer than R, so R + W > N would
 * no longer give read-your-writes. Such a request fails (QUORUM, saying
 * how many members are known) until the members are known. */
static uint8_t quorum(const struct rk_coord_env *env, const struct rk_msg *req, char *why,
                      size_t len)
{
    bool read = req->opcode == RK_OP_GET;
    unsigned q = read ? (req->has_r && req->r ? req->r : env->read_quorum)
                      : (req->has_w && req->w ? req->w : env->write_quorum);
    if (q > env->replicas) {
        snprintf(why, len, "%s = %u is more than cluster.replicas = %u", read ? "-r" : "-w", q,
                 env->replicas);
        return 0;
    }
    return (uint8_t)q;
}

/* The request for replica i of op, built from the op's own copies (it
 * may go out after the client's message is gone); borrows from op. */
static struct rk_msg replica_msg(const struct op *op, uint8_t i)
{
    struct rk_msg m = {.id = op->seq, .key = op->key, .klen = op->klen, .has_key = true};
    if (op->opcode == RK_OP_GET) {
        m.opcode = RK_OP_RGET;
        return m;
    }
    m.opcode = RK_OP_RPUT;
    m.version = op->version, m.has_version = true;
    if (op->tombstone)
        m.tombstone = 1, m.has_tombstone = true;
    else
        m.val = op->val, m.vlen = op->vlen, m.has_val = true;
    m.expiry_ms = op->expiry_ms, m.has_expiry = op->expiry_ms != 0;
    const struct replica *r = &op->r[i];
    if (r->owner >= 0) { /* a fallback: keep it for the replica it stands in for */
        const char *owner = op->r[r->owner].m->id;
        m.hint = (const uint8_t *)owner, m.hlen = (uint32_t)strlen(owner), m.has_hint = true;
    }
    return m;
}

/* Put replica i of op on the wire now; false (settled as failed) if it
 * could not go. */
static bool transmit(struct rk_coord *c, struct op *op, uint8_t i)
{
    struct replica *r = &op->r[i];
    struct rk_msg m = replica_msg(op, i);
    int rc = coord_peer_send(c, r->p, &m, 0x80000000u | (uint32_t)(op - c->ops) << 4 | i);
    if (rc == 0) {
        r->sent = true;
        return true;
    }
    settle(op, i, RS_FAILED, "unreachable");
    c->stats.replica_errors++;
    return false;
}

static int wait_push(struct peer *p, const struct op *op, uint32_t slot, uint8_t i)
{
    if (p->wcount == p->wcap) {
        uint32_t cap = p->wcap ? p->wcap * 2 : 64;
        struct wait *nw = malloc(cap * sizeof(*nw));
        if (!nw)
            return -ENOMEM;
        for (uint32_t k = 0; k < p->wcount; k++)
            nw[k] = p->wait[(p->whead + k) % p->wcap];
        free(p->wait);
        p->wait = nw;
        p->wcap = cap;
        p->whead = 0;
    }
    p->wait[(p->whead + p->wcount++) % p->wcap] = (struct wait){slot, op->seq, i};
    return 0;
}

/* Send queued requests while the peer has room. Entries whose op ended
 * or whose replica settled meanwhile (timed out) are skipped. */
void coord_pump(struct rk_coord *c, struct peer *p)
{
    if (p->pumping)
        return; /* settle() inside transmit() calls back here */
    p->pumping = true;
    while (p->wcount && coord_peer_room(p)) {
        struct wait w = p->wait[p->whead];
        p->whead = (p->whead + 1) % p->wcap;
        p->wcount--;
        struct op *op = &c->ops[w.slot];
        if (!op->used || op->seq != w.seq || op->r[w.idx].st != RS_PENDING || op->r[w.idx].p != p ||
            op->r[w.idx].sent)
            continue;
        if (!transmit(c, op, w.idx))
            advance(op);
    }
    p->pumping = false;
}

/* Send replica i of op: served here if it is this node, framed into its
 * peer's open batch if that has room, else queued for room. */
static void send_to(struct rk_coord *c, struct op *op, uint8_t i)
{
    struct replica *r = &op->r[i];
    if (c->env.local && r->m == &op->view->m[op->view->self]) {
        /* Our own replica: served on this loop, answered after its commit. */
        struct rk_msg m = replica_msg(op, i);
        nng_msg *msg = coord_build(&m, 0x80000000u | (uint32_t)(op - c->ops) << 4 | i);
        r->p = NULL;
        if (!msg) {
            settle(op, i, RS_FAILED, "out of memory");
            return;
        }
        c->env.local(c->env.arg, msg);
        return;
    }
    r->p = coord_peer_get(c, r->m);
    if (!r->p) {
        settle(op, i, RS_FAILED, "unreachable");
        c->stats.replica_errors++;
        return;
    }
    if (coord_peer_room(r->p) && r->p->wcount == 0) {
        transmit(c, op, i);
        return;
    }
    if (wait_push(r->p, op, (uint32_t)(op - c->ops), i) < 0) {
        settle(op, i, RS_FAILED, "overloaded");
        c->stats.replica_errors++;
    }
}

/* Sloppy quorum: the first member on the ring's walk that is up and
 * neither a replica of this write nor standing in for another one. */
static const struct rk_view_member *fallback(const struct op *op, const char **walk, size_t nw)
{
    for (size_t j = 0; j < nw; j++) {
        const struct rk_view_member *m = rk_view_find(op->view, walk[j]);
        bool taken = false;
        for (uint8_t k = 0; k < op->n + op->nf && !taken; k++)
            taken = op->r[k].m == m;
        if (m && rk_view_up(m) && !taken)
            return m;
    }
    return NULL;
}

/* A write for down replica i goes to a fallback with a hint naming i; the
 * fallback's ack does not count toward W (see README: hinted writes). */
static bool hand_off(struct rk_coord *c, struct op *op, uint8_t i, const char **walk, size_t nw)
{
    const struct rk_view_member *f = op->n + op->nf < NREP ? fallback(op, walk, nw) : NULL;
    if (!f)
        return false;
    uint8_t k = op->n + op->nf++;
    op->r[k] = (struct replica){.m = f, .owner = (int8_t)i, .st = RS_PENDING};
    op->pending++;
    send_to(c, op, k); /* a failed send settles k: its hint is kept here instead */
    return true;
}

/* Ask every replica of op; those down or unreachable settle at once. */
static void fan_out(struct rk_coord *c, struct op *op)
{
    const char *walk[64];
    size_t nw = 0;
    for (uint8_t i = 0; i < op->n + op->nf; i++) {
        struct replica *r = &op->r[i];
        r->st = RS_PENDING;
        r->owner = -1;
        op->pending++;
    }
    recount(op);
    /* Fallbacks that hand_off adds below are sent by it: not by this loop. */
    const uint8_t asked = op->n + op->nf;
    for (uint8_t i = 0; i < asked; i++) {
        struct replica *r = &op->r[i];
        if (rk_view_up(r->m)) {
            send_to(c, op, i);
            continue;
        }
        if (op->opcode != RK_OP_GET && !r->extra) {
            if (!nw)
                nw = rk_ring_walk(op->view->ring, op->part, walk, 64);
            r->handed = hand_off(c, op, i, walk, nw);
        }
        settle(op, i, RS_DOWN, r->m->stopped ? "stopped" : "down");
        c->stats.replicas_down++;
    }
}

/* The request's quorum, key, and for writes the version, value and expiry,
 * copied into op (the client's message is answered before the op ends).
 * false once the client was answered with why not. */
static bool op_take(struct rk_coord *c, struct op *op, const struct rk_msg *req)
{
    char why[128];
    op->need = quorum(&c->env, req, why, sizeof(why));
    if (op->need == 0) {
        reply_text(op, RK_ST_MALFORMED, why);
        return false;
    }
    if (op->n < op->need) {
        reply_short_list(op);
        return false;
    }
    bool write = op->opcode != RK_OP_GET;
    op->tombstone = op->opcode == RK_OP_DEL;
    op->key = malloc(req->klen);
    if (write && !op->tombstone)
        op->val = malloc(req->vlen ? req->vlen : 1);
    if (!op->key || (write && !op->tombstone && !op->val)) {
        reply_text(op, RK_ST_INTERNAL, "out of memory");
        return false;
    }
    memcpy(op->key, req->key, req->klen);
    op->klen = req->klen;
    if (!write)
        return true;
    op->version = rk_hlc_now(c->env.hlc, rk_clock_wall_ms());
    if (!op->tombstone) {
        memcpy(op->val, req->val, req->vlen);
        op->vlen = req->vlen;
        if (req->has_ttl && req->ttl_ms)
            op->expiry_ms = rk_clock_wall_ms() + req->ttl_ms;
    }
    return true;
}

/* Answer a request that never became an op (takes msg). */
static void reply_now(struct rk_coord *c, nng_msg *msg, const struct rk_msg *req, enum rk_status st,
                      const char *text)
{
    struct rk_msg rep = {.opcode = req->opcode,
                         .flags = RK_MSG_REPLY,
                         .id = req->id,
                         .status = (uint16_t)st,
                         .has_text = true,
                         .text = (const uint8_t *)text,
                         .tlen = (uint32_t)strlen(text)};
    c->env.reply(c->env.arg, msg, rk_proto_msg_encode(msg, &rep) == 0);
}

/* The op's replicas: the partition's serving list, and for a write its
 * pending owners as extras, each displaced owner paired with its
 * successor (placement.h). */
static void op_replicas(struct op *op, const struct rk_view_part *vp)
{
    bool write = op->opcode != RK_OP_GET;
    op->n = vp->nserve;
    for (uint8_t i = 0; i < vp->nserve; i++)
        op->r[i] = (struct replica){.m = &op->view->m[vp->serve[i]], .partner = -1};
    for (uint8_t k = 0; write && k < vp->npend && op->n + op->nf < NREP; k++) {
        uint8_t e = op->n + op->nf++;
        op->r[e] = (struct replica){.m = &op->view->m[vp->pend[k]], .partner = -1, .extra = true};
        if (vp->partner[k] >= 0)
            op->r[vp->partner[k]].partner = (int8_t)e;
    }
}

bool rk_coord_start(struct rk_coord *c, nng_msg *msg, const struct rk_msg *req, uint32_t part)
{
    struct rk_view *v = rk_view_acquire(c->env.views);
    const struct rk_view_part *vp = v ? &v->part[part] : NULL;
    char why[128];
    if (!v) {
        reply_now(c, msg, req, RK_ST_UNAVAILABLE, "no cluster view yet; retry");
        return true;
    }
    if (vp->nserve == 1 && vp->npend == 0 && vp->serve[0] == v->self &&
        quorum(&c->env, req, why, sizeof(why)) == 1) {
        rk_view_release(v);
        return false; /* a single replica, this node, and a quorum of one: the local path */
    }
    struct op *op = op_alloc(c);
    if (!op) {
        rk_view_release(v);
        reply_now(c, msg, req, RK_ST_BUSY, "too many requests being coordinated; retry");
        return true;
    }
    op->view = v;
    op->client = msg;
    op->opcode = req->opcode;
    op->req_id = req->id;
    op->trace = req->has_trace && req->trace;
    op->part = part;
    op_replicas(op, vp);
    if (!op_take(c, op, req)) {
        op_free(op); /* answered already */
        return true;
    }
    c->stats.coordinated++;
    uint32_t seq = op->seq;
    fan_out(c, op);
    /* env.local answers in a later turn: an answer inside fan_out could
     * settle the last replica and free op under us. */
    RK_ASSERT(op->used && op->seq == seq);
    ev_timer_init(&op->timer, on_timeout, (double)c->env.request_timeout_ms / 1000.0, 0.0);
    op->timer.data = op;
    ev_timer_start(c->loop, &op->timer);
    advance(op);
    return true;
}

/* ---- life cycle ---- */

int rk_coord_create(struct rk_coord **out, struct ev_loop *loop, const struct rk_coord_env *env)
{
    struct rk_coord *c = calloc(1, sizeof(*c));
    if (!c || !(c->ops = calloc(MAX_OPS, sizeof(*c->ops)))) {
        free(c);
        return -ENOMEM;
    }
    c->loop = loop;
    c->env = *env;
    ev_timer_init(&c->tick, on_tick, TICK_S, TICK_S);
    c->tick.data = c;
    ev_timer_start(loop, &c->tick);
    *out = c;
    return 0;
}

void rk_coord_destroy(struct rk_coord *c)
{
    if (!c)
        return;
    ev_timer_stop(c->loop, &c->tick);
    for (uint32_t i = 0; i < MAX_OPS; i++)
        if (c->ops[i].used)
            op_free(&c->ops[i]);
    for (uint32_t k = 0; k < FLIGHTS; k++)
        if (c->flights[k].used)
            coord_flight_end(c, &c->flights[k]);
    for (size_t i = 0; i < c->npeers; i++)
        coord_peer_close(c, c->peers[i]);
    for (size_t i = 0; i < c->npeers + c->nretired; i++) {
        struct peer *p = i < c->npeers ? c->peers[i] : c->retired[i - c->npeers];
        free(p->wait);
        free(p->obuf);
        free(p);
    }
    free(c->dirty);
    free(c->peers);
    free(c->retired);
    free(c->ops);
    free(c);
}

void rk_coord_stats(const struct rk_coord *c, struct rk_coord_stats *out)
{
    *out = c->stats;
}

/* A newer view says a member is down (stopped, dead, suspect): replicas of
 * ops in flight still waiting for it are given up now, as if it had been
 * down when they fanned out (a write keeps a hint for it), instead of at
 * request_timeout: a rolling restart costs no timeouts. */
static void view_changed(struct rk_coord *c)
{
    struct rk_view *v = rk_view_acquire(c->env.views);
    if (!v || v->epoch == c->view_epoch) {
        rk_view_release(v);
        return;
    }
    c->view_epoch = v->epoch;
    for (uint32_t k = 0; k < MAX_OPS; k++) {
        struct op *op = &c->ops[k];
        if (!op->used || op->view == v)
            continue;
        bool any = false;
        for (uint8_t i = 0; i < op->n + op->nf; i++) {
            struct replica *r = &op->r[i];
            const struct rk_view_member *m;
            if (r->st != RS_PENDING || !(m = rk_view_find(v, r->m->id)) || rk_view_up(m))
                continue;
            settle(op, i, RS_FAILED, m->stopped ? "stopped" : "down");
            c->stats.replicas_down++;
            any = true;
        }
        if (any)
            advance(op); /* may free op */
    }
    rk_view_release(v);
}

/* Every TICK_S: expire batches and flights that got no answer; offer hints. */
static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_coord *c = t->data;
    view_changed(c);
    uint64_t now = coord_mono_ms();
    for (size_t i = 0; i < c->npeers; i++)
        coord_expire_batches(c, c->peers[i], now);
    coord_flights_tick(c, now);
}

/* The anti-entropy exchange of one partition (aexchange.h): the initiator
 * walks the peer's tree top-down and merges leaf entries; the responder
 * answers from its own tree.
 *
 * DESIGN
 *
 *      rk_aex_start           on_reply(AE_ROOT)         on_reply(AE_KEYS, not done)
 *  NEW ──────────► WAIT_ROOT ─────────────────► WAIT_KEYS ◄──────┐
 *                     │  no leaf differs            │  └──────────┘
 *                     ▼                             ▼ done
 *                   DONE ◄──────────────────────────┘
 *  WAIT_ROOT, WAIT_KEYS ── bad or mismatched reply, peer error, tree
 *  error (on_reply), timeout (rk_aex_fail) ──► FAILED
 *
 * Invariants:
 *  1. At most one request is in flight; its bytes stay in x->out until the
 *     reply is handled, and x->keys is its decoded AE_KEYS form (the
 *     cursor key points into x->out).
 *  2. A reply is checked whole against the request before any key is
 *     decided (check_keys): the leaves it covers were asked, in order,
 *     each key in the leaf it hashes to, keys ascending inside a leaf and
 *     after the request's cursor, and its cursor lies strictly after the
 *     request's and not before any entry.
 *     So a peer cannot make the exchange loop or decide twice.
 *  3. Between two cursors c0 < c1, every key of the covered leaves (ours
 *     and theirs) is decided exactly once: ours by the local scan bounded
 *     by (c0, c1], theirs from the reply, merged in key order.
 *  4. One reply costs at most step_keys decisions plus the reply's own
 *     entries; a step that runs out resumes from its own stop point, which
 *     lies after c0 (at least one key was decided), so it progresses.
 *  5. Decided keys leave in batches of RK_AEX_BATCH: memory is fixed.
 *
 * BEHAVIOR. Keys are compared by version, never by hash, so a tree that
 * changes on either side mid-exchange is fine: a key written meanwhile is
 * either compared at its new version (and moved the right way, or found
 * equal) or missed by this exchange and caught by the next. Pushes and
 * pulls go through the versioned write path, where rk_record_newer and
 * the rank decide again, so a decision made on stale state is harmless.
 * An entry expired at now never moves, in either direction: what expired
 * is gone everywhere, and copying it would resurrect it on a replica
 * whose tree dropped it.
 *
 * Failures: a reply that does not decode or does not answer the request,
 * a non-OK status (UNSUPPORTED from an older node, NOT_FOUND when the
 * peer does not hold the partition, BUSY), a tree error, or the driver's
 * timeout end the exchange FAILED; the driver retries it in a later round.
 * Nothing is undone: whatever was already pushed or pulled was right.
 */
#include "cluster/aexchange.h"

#include "cluster/aetree.h"
#include "storage/record.h"
#include "util/assert.h"
#include "util/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The wire's tree shape is the tree's own. */
static_assert(RK_AEW_LEAVES == RK_AETREE_LEAVES && RK_AEW_MIDS == RK_AETREE_MIDS &&
                  RK_AEW_FANOUT == RK_AETREE_FANOUT,
              "aewire.h and aetree.h agree on the tree's shape");

struct rk_aex {
    struct rk_aex_conf conf;
    enum rk_aex_state state;
    int err;     /* valid when FAILED */
    uint32_t id; /* id of the request in flight */
    struct rk_aex_stats st;
    struct rk_aew_keys_req keys; /* valid in WAIT_KEYS (invariant 1) */
    struct rk_aew_entry batch[RK_AEX_KINDS][RK_AEX_BATCH];
    size_t nbatch[RK_AEX_KINDS];
    size_t outlen;
    uint8_t out[RK_AEW_PREFIX + RK_AEW_KEYS_REQ_MAX];
};

int rk_aex_alloc(struct rk_aex **out, const struct rk_aex_conf *conf)
{
    RK_ASSERT(conf->emit != NULL && conf->tree.ops != NULL);
    struct rk_aex *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->conf = *conf;
    if (x->conf.step_keys == 0)
        x->conf.step_keys = RK_AEX_STEP_KEYS;
    x->state = RK_AEX_NEW;
    *out = x;
    return 0;
}

void rk_aex_free(struct rk_aex *x)
{
    free(x);
}

enum rk_aex_state rk_aex_state(const struct rk_aex *x)
{
    return x->state;
}

int rk_aex_error(const struct rk_aex *x)
{
    return x->state == RK_AEX_FAILED ? x->err : 0;
}

const struct rk_aex_stats *rk_aex_stats(const struct rk_aex *x)
{
    return &x->st;
}

void rk_aex_fail(struct rk_aex *x, int err)
{
    if (x->state == RK_AEX_DONE || x->state == RK_AEX_FAILED)
        return;
    x->state = RK_AEX_FAILED;
    x->err = err < 0 ? err : RK_EINVAL;
}

static int failed(struct rk_aex *x, int err)
{
    rk_aex_fail(x, err);
    return x->err;
}

/* Wrap the body already at x->out + RK_AEW_PREFIX as the next request. */
static int send_request(struct rk_aex *x, uint8_t op, size_t body, const uint8_t **req, size_t *len)
{
    x->id = x->conf.first_id + (uint32_t)x->st.requests;
    x->outlen = rk_aew_wrap(x->out, op, 0, 0, x->id, body);
    x->st.requests++;
    x->st.bytes_sent += x->outlen;
    *req = x->out;
    *len = x->outlen;
    return 1;
}

int rk_aex_start(struct rk_aex *x, const uint8_t **req, size_t *len)
{
    if (x->state != RK_AEX_NEW)
        return RK_EINVAL;
    struct rk_aew_root_req r = {.partition = x->conf.partition};
    int rc = x->conf.tree.ops->top(x->conf.tree.t, r.partition, &r.root, r.mids);
    if (rc < 0)
        return failed(x, rc);
    x->state = RK_AEX_WAIT_ROOT;
    size_t body = rk_aew_root_req_encode(x->out + RK_AEW_PREFIX, &r);
    send_request(x, RK_OP_AE_ROOT, body, req, len);
    return 0;
}

/* ---- deciding one key ---- */

static void flush(struct rk_aex *x)
{
    for (int k = 0; k < RK_AEX_KINDS; k++) {
        if (x->nbatch[k] > 0)
            x->conf.emit(x->conf.arg, (enum rk_aex_kind)k, x->batch[k], x->nbatch[k]);
        x->nbatch[k] = 0;
    }
}

static void add(struct rk_aex *x, enum rk_aex_kind k, const struct rk_aew_entry *e)
{
    if (x->nbatch[k] == RK_AEX_BATCH) {
        x->conf.emit(x->conf.arg, k, x->batch[k], RK_AEX_BATCH);
        x->nbatch[k] = 0;
    }
    x->batch[k][x->nbatch[k]++] = *e;
    uint64_t *count[RK_AEX_KINDS] = {&x->st.to_push, &x->st.to_pull, &x->st.ties};
    (*count[k])++;
}

static bool expired(const struct rk_aew_entry *e, uint64_t now)
{
    return e->expiry_ms != 0 && e->expiry_ms <= now;
}

/* The rank as far as the index knows it: a tombstone's is fixed (the
 * highest, record.h); a value's needs its bytes, so only a version or a
 * tombstone may decide through this. */
static uint64_t index_rank(const struct rk_aew_entry *e)
{
    return e->tombstone ? rk_record_rank(true, NULL, 0, e->expiry_ms) : 0;
}

enum verdict { SAME, PUSH, PULL, TIE };

/* Which record wins, by the rule storage applies on every write. */
static enum verdict judge(const struct rk_aew_entry *l, const struct rk_aew_entry *p)
{
    if (!l)
        return PULL;
    if (!p)
        return PUSH;
    if (l->version == p->version && !l->tombstone && !p->tombstone)
        return l->expiry_ms == p->expiry_ms ? SAME : TIE;
    uint64_t rl = index_rank(l), rp = index_rank(p);
    if (rk_record_newer(l->version, rl, p->version, rp))
        return PUSH;
    if (rk_record_newer(p->version, rp, l->version, rl))
        return PULL;
    return SAME; /* two tombstones of one version */
}

/* Decide one key from our entry l and the peer's p (either may be NULL). */
static void decide(struct rk_aex *x, const struct rk_aew_entry *l, const struct rk_aew_entry *p,
                   uint64_t now)
{
    x->st.keys_compared++;
    enum verdict v = judge(l, p);
    if (v == SAME)
        return;
    const struct rk_aew_entry *w = v == PUSH ? l : p;
    /* A tie is settled by values; if either side expired, skip it rather
     * than risk moving an expired record. */
    if (expired(w, now) || (v == TIE && expired(l, now))) {
        x->st.expired_skipped++;
        return;
    }
    add(x, v == PUSH ? RK_AEX_PUSH : v == PULL ? RK_AEX_PULL : RK_AEX_TIE, w);
}

/* ---- AE_ROOT reply ---- */

/* Differing leaves under the mids the peer flagged, ascending. */
static int diff_leaves(struct rk_aex *x, const struct rk_aew_root_rep *rep)
{
    struct rk_aew_keys_req *k = &x->keys;
    k->partition = x->conf.partition;
    k->nleaves = 0;
    for (unsigned m = 0; m < RK_AEW_MIDS; m++) {
        if (!(rep->mask & (1u << m)))
            continue;
        uint64_t ours[RK_AEW_FANOUT];
        int rc = x->conf.tree.ops->leaves(x->conf.tree.t, x->conf.partition, m, ours);
        if (rc < 0)
            return rc;
        x->st.mids_differing++;
        for (unsigned i = 0; i < RK_AEW_FANOUT; i++)
            if (ours[i] != rep->leaves[m][i])
                k->leaves[k->nleaves++] = (uint16_t)(m * RK_AEW_FANOUT + i);
    }
    x->st.leaves_differing = k->nleaves;
    return 0;
}

/* Encode x->keys (cursor key from wherever it lies now) into x->out and
 * point the cursor at its copy there (invariant 1). */
static int send_keys(struct rk_aex *x, const uint8_t **req, size_t *len)
{
    size_t body = rk_aew_keys_req_encode(x->out + RK_AEW_PREFIX, &x->keys);
    if (x->keys.cur.has_key)
        x->keys.cur.key = x->out + RK_AEW_PREFIX + body - x->keys.cur.klen;
    x->state = RK_AEX_WAIT_KEYS;
    return send_request(x, RK_OP_AE_KEYS, body, req, len);
}

static int on_root(struct rk_aex *x, const uint8_t *body, size_t blen, const uint8_t **req,
                   size_t *len)
{
    struct rk_aew_root_rep rep; /* 8 KiB, on the worker's stack for one call */
    if (rk_aew_root_rep_decode(body, blen, &rep) < 0 || rep.partition != x->conf.partition)
        return failed(x, RK_EMALFORMED);
    int rc = diff_leaves(x, &rep);
    if (rc < 0)
        return failed(x, rc);
    if (x->keys.nleaves == 0) {
        x->state = RK_AEX_DONE; /* equal trees, or ours caught up meanwhile */
        return 0;
    }
    x->keys.cur = (struct rk_aew_cursor){0};
    return send_keys(x, req, len);
}

/* ---- AE_KEYS reply: checks (invariant 2) ---- */

/* A point in the request's key space: leaf position, then no key (the
 * leaf's start) before any key, then keys in order. */
static int point_cmp(uint16_t apos, bool ahas, const uint8_t *a, size_t alen, uint16_t bpos,
                     bool bhas, const uint8_t *b, size_t blen)
{
    if (apos != bpos)
        return apos < bpos ? -1 : 1;
    if (ahas != bhas)
        return ahas ? 1 : -1;
    return ahas ? rk_aew_key_cmp(a, alen, b, blen) : 0;
}

static int cursor_cmp(const struct rk_aew_cursor *a, const struct rk_aew_cursor *b)
{
    return point_cmp(a->pos, a->has_key, a->key, a->klen, b->pos, b->has_key, b->key, b->klen);
}

/* Every entry answers the request, in order, in the leaf its key hashes to
 * (else one key listed under two leaves would be decided twice); the
 * cursor moves forward. */
static int check_keys(const struct rk_aex *x, const struct rk_aew_keys_rep *rep)
{
    const struct rk_aew_keys_req *k = &x->keys;
    if (rep->partition != k->partition)
        return RK_EMALFORMED;
    struct rk_aew_cursor last = k->cur; /* entries must come after it */
    struct rk_aew_entry e;
    size_t off = 0;
    while (rk_aew_entry_next(rep, &off, &e) == 1) {
        uint16_t pos = last.pos;
        while (pos < k->nleaves && k->leaves[pos] != e.leaf)
            pos++;
        if (pos == k->nleaves || e.leaf != rk_aetree_leaf_of(e.key, e.klen) ||
            point_cmp(pos, true, e.key, e.klen, last.pos, last.has_key, last.key, last.klen) <= 0)
            return RK_EMALFORMED;
        last = (struct rk_aew_cursor){.pos = pos, .has_key = true, .key = e.key, .klen = e.klen};
    }
    if (rep->done)
        return 0;
    /* Not done: strictly after the request's cursor, not before any entry. */
    if (rep->cur.pos >= k->nleaves || cursor_cmp(&rep->cur, &k->cur) <= 0 ||
        (rep->count > 0 && cursor_cmp(&rep->cur, &last) < 0))
        return RK_EMALFORMED;
    return 0;
}

/* ---- AE_KEYS reply: the merge (invariants 3, 4) ---- */

/* One reply's merge: our entries of the positions it covers, from a single
 * scan of those leaves (leaf by leaf, keys ascending), against the peer's
 * entries in the reply, in the same order. */
struct merge {
    struct rk_aex *x;
    const struct rk_aew_keys_rep *rep;
    uint64_t now;
    size_t off;               /* next peer entry in rep */
    struct rk_aew_entry peer; /* valid when has_peer: the next peer entry of leaf */
    bool has_peer;
    uint16_t pos, last; /* the position under way; the last one the reply covers */
    uint16_t leaf;      /* leaves[pos] */
    const uint8_t *hi;  /* bounded: our keys after hi wait for the next reply */
    uint16_t hilen;
    bool bounded;
    uint64_t decided;            /* decisions in this reply */
    bool stopped;                /* out of step_keys: resume from `resume` */
    struct rk_aew_cursor resume; /* the last key decided (pos, key) */
};

static void peer_next(struct merge *m)
{
    size_t off = m->off;
    m->has_peer = rk_aew_entry_next(m->rep, &off, &m->peer) == 1 && m->peer.leaf == m->leaf;
    if (m->has_peer)
        m->off = off;
}

static void decided(struct merge *m, const struct rk_aew_entry *l, const struct rk_aew_entry *p)
{
    const struct rk_aew_entry *e = l ? l : p;
    decide(m->x, l, p, m->now);
    m->decided++;
    m->resume.has_key = true;
    m->resume.key = e->key;
    m->resume.klen = e->klen;
}

/* Start the leaf at request position pos: nothing of it decided yet, or
 * everything up to the request's cursor when pos is the cursor's. */
static void leaf_begin(struct merge *m, uint16_t pos)
{
    const struct rk_aew_keys_req *k = &m->x->keys;
    bool from_cursor = pos == k->cur.pos && k->cur.has_key;
    m->pos = pos;
    m->leaf = k->leaves[pos];
    m->bounded = !m->rep->done && pos == m->rep->cur.pos;
    m->resume = from_cursor ? k->cur : (struct rk_aew_cursor){0};
    m->resume.pos = pos;
    peer_next(m);
}

/* The leaf under way is over on our side: the peer's entries left in it
 * are theirs alone. */
static void leaf_end(struct merge *m)
{
    for (; m->has_peer; peer_next(m))
        decided(m, NULL, &m->peer);
}

/* On to position to, ending the leaves before it (the scan had no entry
 * of ours in those). */
static void leaf_advance(struct merge *m, uint16_t to)
{
    while (m->pos < to) {
        leaf_end(m);
        leaf_begin(m, (uint16_t)(m->pos + 1));
    }
}

/* Our entries, leaf by leaf and ascending, merged with the peer's. */
static int merge_visit(void *arg, const struct rk_aew_entry *l)
{
    struct merge *m = arg;
    const struct rk_aew_keys_req *k = &m->x->keys;
    uint16_t to = m->pos;
    while (to < m->last && k->leaves[to] != l->leaf)
        to++;
    RK_ASSERT(k->leaves[to] == l->leaf); /* the scan's contract: only the leaves asked */
    leaf_advance(m, to);
    if (m->bounded && rk_aew_key_cmp(l->key, l->klen, m->hi, m->hilen) > 0)
        return 1; /* the last position covered, past the reply's cursor */
    if (m->decided >= m->x->conf.step_keys) {
        m->stopped = true;
        return 1;
    }
    while (m->has_peer && rk_aew_key_cmp(m->peer.key, m->peer.klen, l->key, l->klen) < 0) {
        decided(m, NULL, &m->peer);
        peer_next(m);
    }
    if (m->has_peer && rk_aew_key_cmp(m->peer.key, m->peer.klen, l->key, l->klen) == 0) {
        decided(m, l, &m->peer);
        peer_next(m);
    } else {
        decided(m, l, NULL);
    }
    return 0;
}

/* Decide every key the reply covers, or up to step_keys of them: one scan
 * of our leaves from the request's cursor to the last position covered. */
static int merge_reply(struct rk_aex *x, const struct rk_aew_keys_rep *rep, uint64_t now,
                       struct rk_aew_cursor *next)
{
    struct merge m = {.x = x, .rep = rep, .now = now, .hi = rep->cur.key, .hilen = rep->cur.klen};
    const struct rk_aew_keys_req *k = &x->keys;
    /* The last position covered: a cursor without a key has not begun its
     * leaf (check_keys made it later than the request's, so last >= the
     * request's position). */
    int last = rep->done ? k->nleaves - 1 : rep->cur.has_key ? rep->cur.pos : rep->cur.pos - 1;
    RK_ASSERT(last >= (int)k->cur.pos);
    m.last = (uint16_t)last;
    leaf_begin(&m, k->cur.pos);
    const struct rk_ae_tree *t = &x->conf.tree;
    int rc = t->ops->scan(t->t, k->partition, &k->leaves[k->cur.pos],
                          (uint16_t)(m.last - k->cur.pos + 1), k->cur.has_key ? k->cur.key : NULL,
                          k->cur.has_key ? k->cur.klen : 0, merge_visit, &m);
    if (rc < 0)
        return rc;
    if (m.stopped) {
        RK_ASSERT(m.decided > 0); /* invariant 4: progress */
        *next = m.resume;
        return 1;
    }
    leaf_advance(&m, m.last);
    leaf_end(&m);
    *next = rep->cur;
    return rep->done ? 0 : 1;
}

static int on_keys(struct rk_aex *x, const uint8_t *body, size_t blen, uint64_t now,
                   const uint8_t **req, size_t *len)
{
    struct rk_aew_keys_rep rep;
    if (rk_aew_keys_rep_decode(body, blen, &rep) < 0 || check_keys(x, &rep) < 0)
        return failed(x, RK_EMALFORMED);
    struct rk_aew_cursor next;
    int rc = merge_reply(x, &rep, now, &next);
    flush(x); /* keys borrowed from the reply and the scan: hand them out now */
    if (rc < 0)
        return failed(x, rc);
    if (rc == 0) {
        x->state = RK_AEX_DONE;
        return 0;
    }
    x->keys.cur = next; /* its key lies in the reply; send_keys copies it */
    return send_keys(x, req, len);
}

int rk_aex_on_reply(struct rk_aex *x, const void *rep, size_t len, uint64_t now_ms,
                    const uint8_t **req, size_t *reqlen)
{
    if (x->state != RK_AEX_WAIT_ROOT && x->state != RK_AEX_WAIT_KEYS)
        return RK_EINVAL;
    x->st.bytes_received += len;
    bool root = x->state == RK_AEX_WAIT_ROOT;
    struct rk_msg m;
    const uint8_t *body;
    size_t blen;
    /* What does not decode is malformed, whatever the reason; a reply that
     * decodes may carry the peer's own error (UNSUPPORTED from an older
     * node, NOT_FOUND, BUSY): that is the exchange's error. */
    if (rk_proto_decode(rep, len, &m) < 0)
        return failed(x, RK_EMALFORMED);
    int rc = rk_aew_body(&m, root ? RK_OP_AE_ROOT : RK_OP_AE_KEYS, true, x->id, &body, &blen);
    if (rc < 0)
        return failed(x, rc);
    return root ? on_root(x, body, blen, req, reqlen) : on_keys(x, body, blen, now_ms, req, reqlen);
}

/* ---- responder ---- */

static int respond_root(const struct rk_ae_tree *t, const uint8_t *body, size_t blen, uint8_t *out,
                        size_t *outlen)
{
    struct rk_aew_root_req q;
    struct rk_aew_root_rep r = {0}; /* 8 KiB, on the worker's stack for one call */
    uint64_t mids[RK_AEW_MIDS];
    if (rk_aew_root_req_decode(body, blen, &q) < 0)
        return RK_EMALFORMED;
    r.partition = q.partition;
    int rc = t->ops->top(t->t, q.partition, &r.root, mids);
    for (unsigned m = 0; rc == 0 && m < RK_AEW_MIDS; m++) {
        if (mids[m] == q.mids[m])
            continue;
        r.mask |= 1u << m;
        rc = t->ops->leaves(t->t, q.partition, m, r.leaves[m]);
    }
    if (rc < 0)
        return rc;
    *outlen = rk_aew_root_rep_encode(out + RK_AEW_PREFIX, &r);
    return 0;
}

struct fill {
    struct rk_aew_keys_builder b;
    const struct rk_aew_keys_req *q;
    bool full;
    struct rk_aew_cursor last; /* the last entry added, or the start of a leaf begun since */
};

static int fill_visit(void *arg, const struct rk_aew_entry *e)
{
    struct fill *f = arg;
    const struct rk_aew_keys_req *q = f->q;
    if (q->leaves[f->last.pos] != e->leaf) { /* a later leaf: begun, nothing of it added */
        uint16_t pos = f->last.pos;
        while (pos + 1 < q->nleaves && q->leaves[pos] != e->leaf)
            pos++;
        RK_ASSERT(q->leaves[pos] == e->leaf); /* the scan's contract: only the leaves asked */
        f->last = (struct rk_aew_cursor){.pos = pos};
    }
    if (rk_aew_keys_add(&f->b, e) < 0) {
        f->full = true;
        return 1;
    }
    f->last.has_key = true;
    f->last.key = e->key;
    f->last.klen = e->klen;
    return 0;
}

/* Entries of the leaves asked, from the cursor on, until the reply is
 * full: one scan of every leaf left. */
static int respond_keys(const struct rk_ae_tree *t, const uint8_t *body, size_t blen,
                        uint16_t max_entries, uint8_t *out, size_t *outlen)
{
    static_assert(sizeof(struct rk_aew_keys_req) < 4096, "on the stack");
    struct rk_aew_keys_req q;
    if (rk_aew_keys_req_decode(body, blen, &q) < 0)
        return RK_EMALFORMED;
    struct fill f = {.q = &q, .last = q.cur}; /* decode: cur.pos < nleaves */
    rk_aew_keys_begin(&f.b, out + RK_AEW_PREFIX, RK_AEW_BODY_MAX, q.partition, max_entries);
    int rc = t->ops->scan(t->t, q.partition, &q.leaves[q.cur.pos],
                          (uint16_t)(q.nleaves - q.cur.pos), q.cur.has_key ? q.cur.key : NULL,
                          q.cur.has_key ? q.cur.klen : 0, fill_visit, &f);
    if (rc < 0)
        return rc;
    if (f.full) {
        /* Something was added (an empty reply fits any one entry), so
         * this cursor lies after the request's. */
        RK_ASSERT(f.b.count > 0);
        *outlen = rk_aew_keys_finish(&f.b, false, &f.last);
        return 0;
    }
    *outlen = rk_aew_keys_finish(&f.b, true, NULL);
    return 0;
}

int rk_aex_respond(const struct rk_ae_tree *tree, const struct rk_msg *req, uint16_t max_entries,
                   uint8_t *out, size_t *outlen)
{
    const uint8_t *body;
    size_t blen, n;
    if (req->opcode != RK_OP_AE_ROOT && req->opcode != RK_OP_AE_KEYS)
        return RK_EUNSUPPORTED;
    int rc = rk_aew_body(req, req->opcode, false, 0, &body, &blen);
    if (rc == 0)
        rc = req->opcode == RK_OP_AE_ROOT ? respond_root(tree, body, blen, out, &n)
                                          : respond_keys(tree, body, blen, max_entries, out, &n);
    if (rc < 0)
        return rc;
    *outlen = rk_aew_wrap(out, req->opcode, RK_MSG_REPLY, RK_ST_OK, req->id, n);
    return 0;
}

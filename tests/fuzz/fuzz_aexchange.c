/* Fuzz target for the anti-entropy exchange (aexchange.h), the consumer of
 * what a peer answers to AE_ROOT and AE_KEYS (and, through the same code,
 * of a transfer's pulls, docs/TRANSFERS.md §3), and its responder, which
 * answers a peer's requests. This node's side is a fixed tree of 300 keys
 * hashed as aetree.h does. The first input byte is a mode:
 *  - even: the initiator. The rest is the peer's replies, each a u16
 *    length then the message; with bit 1 set each reply's message id is
 *    set to the request's (the peer echoes it), so mutations reach the
 *    body checks.
 *  - odd: the responder. The rest is a request message; bits 1-7 are the
 *    entries per AE_KEYS reply (0: the default).
 *
 * Properties (aexchange.c's invariants): no crash, leak or out-of-bounds
 * read; the exchange ends DONE only on a reply that said so and FAILED on
 * any error, with that error kept; every request it makes decodes as the
 * AE message it claims to be; a key is decided at most once per exchange,
 * what it pushes is ours (key and version) and the keys it hands out add
 * up to its counters; the responder refuses a partition it does not hold
 * (RK_ENOTFOUND), and its answer decodes, answers the request
 * (partition, leaves asked, keys ascending after the cursor) and lists
 * only our entries. */
#include "fuzz.h"
#include "cluster/aetree.h"
#include "cluster/aexchange.h"
#include "util/err.h"
#include "util/le.h"
#include "../unit/ae_fake.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#define NKEYS 300
#define PART  5

/* Sorted by (leaf, key), as a scan returns them. */
struct ftree {
    struct fent e[NKEYS + 8];
    size_t n;
    struct rk_aetree tree;
};

static struct ftree ours, theirs;

static void fput(struct ftree *t, unsigned i, uint64_t version, bool tomb)
{
    struct fent *e = &t->e[t->n++];
    memset(e, 0, sizeof(*e));
    e->klen = (uint16_t)snprintf(e->key, sizeof(e->key), "key-%u", i);
    e->leaf = (uint16_t)rk_aetree_leaf_of(e->key, e->klen);
    e->version = version, e->tomb = tomb;
}

static void fbuild(struct ftree *t)
{
    qsort(t->e, t->n, sizeof(t->e[0]), fent_cmp);
    rk_aetree_init(&t->tree, PART, 0);
    for (size_t i = 0; i < t->n; i++) {
        const struct fent *e = &t->e[i];
        t->tree.leaf[e->leaf] ^= rk_aetree_entry_hash(e->key, e->klen, e->version, e->tomb, 0);
        t->tree.entries++;
    }
}

static int f_top(void *arg, uint16_t part, uint64_t *root, uint64_t mids[RK_AEW_MIDS])
{
    struct ftree *t = arg;
    if (part != PART) /* a peer may ask for any: we hold one */
        return RK_ENOTFOUND;
    rk_aetree_mids(&t->tree, mids);
    *root = rk_aetree_root(&t->tree);
    return 0;
}

static int f_leaves(void *arg, uint16_t part, unsigned mid, uint64_t leaves[RK_AEW_FANOUT])
{
    struct ftree *t = arg;
    if (part != PART)
        return RK_ENOTFOUND;
    CHECK(mid < RK_AEW_MIDS);
    memcpy(leaves, t->tree.leaf + mid * RK_AEW_FANOUT, 8 * RK_AEW_FANOUT);
    return 0;
}

static int f_scan(void *arg, uint16_t part, const uint16_t *leaves, uint16_t n,
                  const uint8_t *after, uint16_t alen, rk_ae_visit_fn visit, void *varg)
{
    struct ftree *t = arg;
    if (part != PART)
        return RK_ENOTFOUND;
    CHECK(n >= 1);
    for (uint16_t i = 0; i < n; i++)
        CHECK(leaves[i] < RK_AEW_LEAVES && (i == 0 || leaves[i - 1] < leaves[i]));
    fent_scan(t->e, t->n, leaves, n, after, alen, visit, varg);
    return 0;
}

static const struct rk_ae_tree_ops fops = {f_top, f_leaves, f_scan};

static const struct fent *find(const struct ftree *t, const uint8_t *key, uint16_t klen)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].klen == klen && memcmp(t->e[i].key, key, klen) == 0)
            return &t->e[i];
    return NULL;
}

static void init(void)
{
    if (ours.n)
        return;
    /* Ours: keys 0..299. Theirs (for the seeds): some newer, some missing,
     * some deleted, a few only there. */
    for (unsigned i = 0; i < NKEYS; i++) {
        fput(&ours, i, 100 + i, i % 31 == 0);
        if (i % 17 == 3)
            continue;
        fput(&theirs, i, i % 11 == 5 ? 1000 + i : 100 + i, i % 31 == 0 || i % 23 == 7);
    }
    for (unsigned i = NKEYS; i < NKEYS + 8; i++)
        fput(&theirs, i, 50, false);
    fbuild(&ours);
    fbuild(&theirs);
}

/* ---- the initiator ---- */

/* Keys handed out, by hash: each at most once (a key is decided once). */
struct seen {
    uint64_t hash[8192];
    size_t n;
    uint64_t kinds[RK_AEX_KINDS];
};
static struct seen seen;

static void emit(void *arg, enum rk_aex_kind kind, const struct rk_aew_entry *e, size_t n)
{
    struct seen *s = arg;
    CHECK(n >= 1 && n <= RK_AEX_BATCH && (unsigned)kind < RK_AEX_KINDS);
    for (size_t i = 0; i < n; i++) {
        CHECK(e[i].klen >= 1 && e[i].klen <= RK_AEW_KEY_MAX);
        if (kind == RK_AEX_PUSH) { /* ours, as we hold it */
            const struct fent *f = find(&ours, e[i].key, e[i].klen);
            CHECK(f && f->version == e[i].version && f->tomb == e[i].tombstone);
        }
        uint64_t h = XXH3_64bits(e[i].key, e[i].klen);
        for (size_t k = 0; k < s->n; k++)
            CHECK(s->hash[k] != h);
        s->kinds[kind]++;
        if (s->n < sizeof(s->hash) / sizeof(s->hash[0]))
            s->hash[s->n++] = h;
    }
}

/* A request of the exchange decodes as what it claims to be. */
static void check_request(const uint8_t *req, size_t len)
{
    struct rk_msg m;
    const uint8_t *body;
    size_t blen;
    CHECK(rk_proto_decode(req, len, &m) == 0 && !(m.flags & RK_MSG_REPLY));
    CHECK(rk_aew_body(&m, m.opcode, false, m.id, &body, &blen) == 0);
    if (m.opcode == RK_OP_AE_ROOT) {
        struct rk_aew_root_req r;
        CHECK(rk_aew_root_req_decode(body, blen, &r) == 0 && r.partition == PART);
    } else {
        static struct rk_aew_keys_req r;
        CHECK(m.opcode == RK_OP_AE_KEYS);
        CHECK(rk_aew_keys_req_decode(body, blen, &r) == 0 && r.partition == PART);
    }
}

static uint32_t request_id(const uint8_t *req)
{
    return rk_le_get32(req + 8);
}

static void initiator(const uint8_t *d, size_t n, bool fix_id)
{
    memset(&seen.kinds, 0, sizeof(seen.kinds));
    seen.n = 0;
    struct rk_aex_conf conf = {
        .tree = {&fops, &ours}, .partition = PART, .first_id = 100, .emit = emit, .arg = &seen};
    struct rk_aex *x;
    CHECK(rk_aex_alloc(&x, &conf) == 0);
    const uint8_t *req;
    size_t rlen;
    CHECK(rk_aex_start(x, &req, &rlen) == 0 && rk_aex_state(x) == RK_AEX_WAIT_ROOT);
    check_request(req, rlen);
    int rc = 1;
    size_t off = 0;
    while (rc == 1 && n - off >= 2) {
        size_t len = rk_le_get16(d + off);
        off += 2;
        len = len < n - off ? len : n - off;
        uint8_t *rep = malloc(len ? len : 1); /* exact size: overreads are caught */
        CHECK(rep != NULL);
        memcpy(rep, d + off, len);
        off += len;
        if (fix_id && len >= 12)
            rk_le_put32(rep + 8, request_id(req));
        rc = rk_aex_on_reply(x, rep, len, 1000, &req, &rlen);
        free(rep);
        if (rc == 1) {
            CHECK(rk_aex_state(x) == RK_AEX_WAIT_KEYS);
            check_request(req, rlen);
        }
    }
    enum rk_aex_state st = rk_aex_state(x);
    CHECK(rc == 1 || (rc == 0 && st == RK_AEX_DONE) ||
          (rc < 0 && st == RK_AEX_FAILED && rk_aex_error(x) == rc));
    const struct rk_aex_stats *s = rk_aex_stats(x);
    CHECK(s->to_push == seen.kinds[RK_AEX_PUSH] && s->to_pull == seen.kinds[RK_AEX_PULL] &&
          s->ties == seen.kinds[RK_AEX_TIE]);
    if (rc == 1) { /* the peer stopped answering */
        rk_aex_fail(x, RK_ETIMEDOUT);
        CHECK(rk_aex_state(x) == RK_AEX_FAILED && rk_aex_error(x) == RK_ETIMEDOUT);
    }
    rk_aex_free(x);
}

/* ---- the responder ---- */

static void check_answer(const struct rk_msg *req, const uint8_t *out, size_t len)
{
    struct rk_msg m;
    const uint8_t *body;
    size_t blen;
    CHECK(rk_proto_decode(out, len, &m) == 0 && m.opcode == req->opcode && m.id == req->id);
    CHECK(rk_aew_body(&m, m.opcode, true, req->id, &body, &blen) == 0);
    if (m.opcode == RK_OP_AE_ROOT) {
        static struct rk_aew_root_rep r;
        CHECK(rk_aew_root_rep_decode(body, blen, &r) == 0 && r.partition == PART);
        CHECK(r.root == rk_aetree_root(&ours.tree));
        return;
    }
    static struct rk_aew_keys_req q;
    struct rk_aew_keys_rep r;
    const uint8_t *qb;
    size_t qlen;
    CHECK(rk_aew_body(req, RK_OP_AE_KEYS, false, 0, &qb, &qlen) == 0);
    CHECK(rk_aew_keys_req_decode(qb, qlen, &q) == 0);
    CHECK(rk_aew_keys_rep_decode(body, blen, &r) == 0 && r.partition == PART);
    struct rk_aew_entry e, prev = {0};
    size_t off = 0;
    unsigned pos = q.cur.pos;
    bool first = true;
    while (rk_aew_entry_next(&r, &off, &e) == 1) {
        const struct fent *f = find(&ours, e.key, e.klen);
        CHECK(f && f->version == e.version && f->tomb == e.tombstone && f->leaf == e.leaf);
        while (pos < q.nleaves && q.leaves[pos] < e.leaf)
            pos++;
        CHECK(pos < q.nleaves && q.leaves[pos] == e.leaf); /* a leaf asked for */
        if (pos == q.cur.pos && q.cur.has_key)
            CHECK(rk_aew_key_cmp(e.key, e.klen, q.cur.key, q.cur.klen) > 0);
        if (!first && prev.leaf == e.leaf)
            CHECK(rk_aew_key_cmp(prev.key, prev.klen, e.key, e.klen) < 0);
        prev = e, first = false;
    }
}

static void responder(const uint8_t *d, size_t n, uint16_t max_entries)
{
    struct rk_msg req;
    if (rk_proto_decode(d, n, &req) < 0)
        return;
    static uint8_t out[RK_AEW_MSG_MAX];
    size_t len = 0;
    struct rk_ae_tree tree = {&fops, &ours};
    int rc = rk_aex_respond(&tree, &req, max_entries, out, &len);
    if (rc < 0) {
        CHECK(rc == RK_EMALFORMED || rc == RK_EUNSUPPORTED || rc == RK_ENOTFOUND);
        return;
    }
    CHECK(rc == 0 && len <= RK_AEW_MSG_MAX);
    check_answer(&req, out, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1)
        return 0;
    uint8_t *d = malloc(size - 1 ? size - 1 : 1);
    CHECK(d != NULL);
    memcpy(d, data + 1, size - 1);
    if (data[0] & 1)
        responder(d, size - 1, data[0] >> 1);
    else
        initiator(d, size - 1, (data[0] & 2) != 0);
    free(d);
    return 0;
}

/* ---- seeds: an exchange with `theirs` answering, recorded ---- */

struct rec {
    uint8_t *buf;
    size_t len;
};

static void rec_add(struct rec *r, const void *p, size_t n)
{
    uint8_t *b = realloc(r->buf, r->len + n);
    CHECK(b != NULL);
    memcpy(b + r->len, p, n);
    r->buf = b, r->len += n;
}

static void nop_emit(void *arg, enum rk_aex_kind kind, const struct rk_aew_entry *e, size_t n)
{
    (void)arg, (void)kind, (void)e, (void)n;
}

/* The replies `theirs` gives an exchange of ours (after mode byte 2), and
 * the first AE_KEYS request it answers (after a responder mode byte). */
static void record_exchange(uint16_t max_entries, struct rec *replies, struct rec *keys_req)
{
    init();
    uint8_t mode = 2;
    rec_add(replies, &mode, 1);
    struct rk_aex_conf conf = {
        .tree = {&fops, &ours}, .partition = PART, .first_id = 100, .emit = nop_emit};
    struct rk_aex *x;
    CHECK(rk_aex_alloc(&x, &conf) == 0);
    static uint8_t out[RK_AEW_MSG_MAX];
    const uint8_t *req;
    size_t rlen, len;
    int rc = rk_aex_start(x, &req, &rlen);
    struct ftree *peer = &theirs;
    for (int steps = 0; rc >= 0 && rk_aex_state(x) != RK_AEX_DONE && steps < 64; steps++) {
        struct rk_msg m;
        CHECK(rk_proto_decode(req, rlen, &m) == 0);
        if (m.opcode == RK_OP_AE_KEYS && keys_req && !keys_req->len) {
            uint8_t rmode = (uint8_t)(1 | max_entries << 1);
            rec_add(keys_req, &rmode, 1);
            rec_add(keys_req, req, rlen);
        }
        CHECK(rk_aex_respond(&(struct rk_ae_tree){&fops, peer}, &m, max_entries, out, &len) == 0);
        uint8_t l[2] = {(uint8_t)len, (uint8_t)(len >> 8)};
        rec_add(replies, l, 2);
        rec_add(replies, out, len);
        rc = rk_aex_on_reply(x, out, len, 1000, &req, &rlen);
    }
    rk_aex_free(x);
}

uint8_t *rk_fuzz_seed(size_t *len)
{
    struct rec r = {0};
    record_exchange(0, &r, NULL);
    *len = r.len;
    return r.buf;
}

/* A whole exchange in one AE_KEYS round and in many (4 entries per
 * reply), an AE_ROOT request and an AE_KEYS request to answer. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    struct rec one = {0}, many = {0}, keys = {0};
    record_exchange(0, &one, NULL);
    record_exchange(4, &many, &keys);
    put("exchange-one-round", one.buf, one.len);
    put("exchange-many-rounds", many.buf, many.len);
    put("respond-keys", keys.buf, keys.len);
    /* The AE_ROOT request is the first message of either recording's
     * exchange; made again here. */
    struct rk_aex_conf conf = {
        .tree = {&fops, &ours}, .partition = PART, .first_id = 100, .emit = nop_emit};
    struct rk_aex *x;
    const uint8_t *req;
    size_t rlen;
    if (rk_aex_alloc(&x, &conf) == 0 && rk_aex_start(x, &req, &rlen) == 0) {
        struct rec root = {0};
        uint8_t mode = 1;
        rec_add(&root, &mode, 1);
        rec_add(&root, req, rlen);
        put("respond-root", root.buf, root.len);
        free(root.buf);
        rk_aex_free(x);
    }
    free(one.buf);
    free(many.buf);
    free(keys.buf);
}

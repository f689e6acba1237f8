/* The anti-entropy exchange (aexchange.h) between two fake trees built from
 * key sets with ae-design.md's entry hash and leaf placement, initiator
 * and responder driven against each other through the codec as over the
 * wire (the fake trees hash with aetree.h, so tree and exchange agree on
 * the entry hash and the leaf of a key): equal sets cost one AE_ROOT; every differing key moves
 * once, the right way (versions, tombstones, ties); expired entries never move; thousands of
 * differences go in bounded replies and batches; a bad, mismatched or failed reply ends the
 * exchange FAILED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/aetree.h"
#include "cluster/aexchange.h"
#include "util/err.h"
#include "util/le.h"
#include "ae_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a fake tree: real aetree hashes and placement, entries sorted by
 * (leaf, key) for the scan ---- */

struct ftree {
    struct fent *e;
    size_t n, cap;
    struct rk_aetree tree; /* its leaves; cut_ms decides membership */
    int fail;              /* non-zero: every call returns it */
    size_t scans;          /* scan calls */
};

static void fput(struct ftree *t, unsigned i, uint64_t version, bool tomb, uint64_t expiry)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->e = realloc(t->e, t->cap * sizeof *t->e);
        assert_non_null(t->e);
    }
    struct fent *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    e->klen = (uint16_t)snprintf(e->key, sizeof e->key, "key-%07u", i);
    e->leaf = (uint16_t)rk_aetree_leaf_of(e->key, e->klen);
    e->version = version, e->tomb = tomb, e->expiry = expiry;
}

/* Sort and hash, as a build at cut would. */
static void fbuild(struct ftree *t, uint64_t cut)
{
    if (t->n > 0)
        qsort(t->e, t->n, sizeof *t->e, fent_cmp);
    rk_aetree_init(&t->tree, 5, cut);
    for (size_t i = 0; i < t->n; i++) {
        const struct fent *e = &t->e[i];
        if (!rk_aetree_member(&t->tree, e->expiry))
            continue;
        t->tree.leaf[e->leaf] ^=
            rk_aetree_entry_hash(e->key, e->klen, e->version, e->tomb, e->expiry);
        t->tree.entries++; /* aetree's invariant 1 */
    }
}

static int f_top(void *arg, uint16_t part, uint64_t *root, uint64_t mids[RK_AEW_MIDS])
{
    struct ftree *t = arg;
    (void)part;
    if (t->fail)
        return t->fail;
    rk_aetree_mids(&t->tree, mids);
    *root = rk_aetree_root(&t->tree);
    return 0;
}

static int f_leaves(void *arg, uint16_t part, unsigned mid, uint64_t leaves[RK_AEW_FANOUT])
{
    struct ftree *t = arg;
    (void)part;
    memcpy(leaves, t->tree.leaf + mid * RK_AEW_FANOUT, 8 * RK_AEW_FANOUT);
    return t->fail;
}

/* Linear over the sorted entries (the test's sets are small); counts its
 * calls, so a test can hold the exchange to one scan per reply. */
static int f_scan(void *arg, uint16_t part, const uint16_t *leaves, uint16_t n,
                  const uint8_t *after, uint16_t alen, rk_ae_visit_fn visit, void *varg)
{
    struct ftree *t = arg;
    (void)part;
    t->scans++;
    if (t->fail)
        return t->fail;
    assert_true(n >= 1);
    for (uint16_t i = 1; i < n; i++)
        assert_true(leaves[i - 1] < leaves[i]); /* the contract: strictly ascending */
    fent_scan(t->e, t->n, leaves, n, after, alen, visit, varg);
    return 0;
}

static const struct rk_ae_tree_ops fops = {f_top, f_leaves, f_scan};

/* ---- what the initiator handed out ---- */

#define MAXKEYS 40000

struct seen {
    unsigned count[RK_AEX_KINDS][MAXKEYS];
    uint64_t version[RK_AEX_KINDS][MAXKEYS];
    size_t calls, total;
};

static void emit(void *arg, enum rk_aex_kind kind, const struct rk_aew_entry *e, size_t n)
{
    struct seen *s = arg;
    assert_true(n >= 1 && n <= RK_AEX_BATCH);
    s->calls++;
    for (size_t i = 0; i < n; i++) {
        char key[32] = {0};
        memcpy(key, e[i].key, e[i].klen);
        unsigned k;
        assert_int_equal(sscanf(key, "key-%u", &k), 1);
        assert_true(k < MAXKEYS);
        s->count[kind][k]++;
        s->version[kind][k] = e[i].version;
        s->total++;
    }
}

struct run {
    int rc;
    enum rk_aex_state state;
    struct rk_aex_stats st;
    size_t max_reply;
};

/* Drive the exchange of a (initiator) against b (responder) to its end,
 * every message through encode and decode on a heap copy of exactly its
 * bytes. */
static struct run exchange(struct ftree *a, struct ftree *b, uint64_t now, uint32_t step_keys,
                           uint16_t max_entries, struct seen *s)
{
    struct rk_aex_conf conf = {.tree = {&fops, a},
                               .partition = 5,
                               .first_id = 100,
                               .step_keys = step_keys,
                               .emit = emit,
                               .arg = s};
    struct rk_aex *x;
    assert_int_equal(rk_aex_alloc(&x, &conf), 0);
    uint8_t *rep = malloc(RK_AEW_MSG_MAX);
    assert_non_null(rep);
    struct run r = {0};
    const uint8_t *req;
    size_t len, replen;
    r.rc = rk_aex_start(x, &req, &len);
    for (int steps = 0; r.rc >= 0 && rk_aex_state(x) != RK_AEX_DONE; steps++) {
        assert_true(steps < 100000);
        uint8_t *copy = malloc(len);
        memcpy(copy, req, len);
        struct rk_msg m;
        assert_int_equal(rk_proto_decode(copy, len, &m), 0);
        size_t scans = b->scans;
        assert_int_equal(
            rk_aex_respond(&(struct rk_ae_tree){&fops, b}, &m, max_entries, rep, &replen), 0);
        /* One pass over the index per answer, however many leaves it covers. */
        assert_int_equal(b->scans - scans, m.opcode == RK_OP_AE_KEYS ? 1 : 0);
        free(copy);
        assert_true(replen <= RK_AEW_MSG_MAX);
        if (replen > r.max_reply)
            r.max_reply = replen;
        scans = a->scans;
        r.rc = rk_aex_on_reply(x, rep, replen, now, &req, &len);
        assert_true(a->scans - scans <= 1); /* and per reply handled */
    }
    r.state = rk_aex_state(x);
    r.st = *rk_aex_stats(x);
    free(rep);
    rk_aex_free(x);
    return r;
}

static struct seen *seen_new(void)
{
    struct seen *s = calloc(1, sizeof *s);
    assert_non_null(s);
    return s;
}

static void ffree(struct ftree *t)
{
    free(t->e);
    memset(t, 0, sizeof *t);
}

/* ---- tests ---- */

static void test_identical(void **state)
{
    (void)state;
    static struct ftree a, b;
    for (unsigned i = 0; i < 2000; i++) {
        fput(&a, i, 10 + i, i % 7 == 0, 0);
        fput(&b, i, 10 + i, i % 7 == 0, 0);
    }
    fbuild(&a, 0), fbuild(&b, 0);
    struct seen *s = seen_new();
    struct run r = exchange(&a, &b, 1000, 0, 0, s);
    assert_int_equal(r.state, RK_AEX_DONE);
    assert_int_equal(r.st.requests, 1);
    assert_int_equal(r.st.leaves_differing, 0);
    assert_int_equal(s->total, 0);
    assert_true(r.st.bytes_sent == RK_AEW_PREFIX + RK_AEW_ROOT_REQ_SIZE);
    /* Two empty trees too. */
    ffree(&a), ffree(&b);
    fbuild(&a, 0), fbuild(&b, 0);
    r = exchange(&a, &b, 1000, 0, 0, s);
    assert_int_equal(r.state, RK_AEX_DONE);
    assert_int_equal(r.st.requests, 1);
    free(s);
    ffree(&a), ffree(&b);
}

/* a and b hold keys 0..99 alike; then one more or one changed. */
static void common(struct ftree *a, struct ftree *b)
{
    for (unsigned i = 0; i < 100; i++) {
        fput(a, i, 50, false, 0);
        fput(b, i, 50, false, 0);
    }
}

static void one_way(struct ftree *a, struct ftree *b, enum rk_aex_kind want, unsigned key,
                    uint64_t version)
{
    fbuild(a, 0), fbuild(b, 0);
    struct seen *s = seen_new();
    struct run r = exchange(a, b, 1000, 0, 0, s);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.state, RK_AEX_DONE);
    assert_int_equal(s->total, 1);
    assert_int_equal(s->count[want][key], 1);
    assert_int_equal(s->version[want][key], version);
    assert_int_equal(r.st.leaves_differing, 1);
    assert_int_equal(r.st.requests, 2); /* AE_ROOT, one AE_KEYS */
    free(s);
    ffree(a), ffree(b);
}

static void test_one_key(void **state)
{
    (void)state;
    static struct ftree a, b;
    common(&a, &b);
    fput(&a, 500, 7, false, 0); /* the peer lacks it */
    one_way(&a, &b, RK_AEX_PUSH, 500, 7);
    common(&a, &b);
    fput(&b, 501, 8, false, 0); /* we lack it */
    one_way(&a, &b, RK_AEX_PULL, 501, 8);
}

static void test_versions(void **state)
{
    (void)state;
    static struct ftree a, b;
    common(&a, &b);
    a.e[3].version = 60; /* ours newer */
    one_way(&a, &b, RK_AEX_PUSH, 3, 60);
    common(&a, &b);
    b.e[4].version = 61; /* theirs newer */
    one_way(&a, &b, RK_AEX_PULL, 4, 61);
    common(&a, &b);
    b.e[5].version = 40, b.e[5].tomb = true; /* an older delete loses */
    one_way(&a, &b, RK_AEX_PUSH, 5, 50);
}

static void test_tombstones(void **state)
{
    (void)state;
    static struct ftree a, b;
    common(&a, &b);
    a.e[6].tomb = true; /* a delete wins a version tie */
    one_way(&a, &b, RK_AEX_PUSH, 6, 50);
    common(&a, &b);
    b.e[7].tomb = true;
    one_way(&a, &b, RK_AEX_PULL, 7, 50);
    common(&a, &b);
    b.e[8].tomb = true, b.e[8].version = 70; /* a newer delete travels */
    one_way(&a, &b, RK_AEX_PULL, 8, 70);
    common(&a, &b);
    fput(&b, 600, 9, true, 0); /* a delete we never saw */
    one_way(&a, &b, RK_AEX_PULL, 600, 9);
    /* Equal version, both values, expiries differ: the values' rank
     * decides, which the exchange cannot see: a tie, handed out once. */
    common(&a, &b);
    b.e[9].expiry = 5000;
    one_way(&a, &b, RK_AEX_TIE, 9, 50);
    /* Two deletes of one version with different expiries: equal rank. */
    common(&a, &b);
    a.e[10].tomb = b.e[10].tomb = true;
    a.e[10].expiry = 9000;
    fbuild(&a, 0), fbuild(&b, 0);
    struct seen *s = seen_new();
    struct run r = exchange(&a, &b, 1000, 0, 0, s);
    assert_int_equal(r.state, RK_AEX_DONE);
    assert_int_equal(s->total, 0);
    assert_int_equal(r.st.leaves_differing, 1);
    free(s);
    ffree(&a), ffree(&b);
}

static void test_expired(void **state)
{
    (void)state;
    static struct ftree a, b;
    const uint64_t now = 10000;
    common(&a, &b);
    fput(&a, 700, 5, false, 9000);    /* ours, expired: never pushed */
    fput(&b, 701, 5, false, now);     /* theirs, expired at now exactly */
    fput(&a, 702, 9, false, 2000);    /* ours newer but expired ... */
    fput(&b, 702, 3, false, 0);       /* ... so their live older one stays put */
    fput(&a, 703, 4, false, now + 1); /* live until after now: moves */
    /* Trees built before the expiries passed: the leaves differ, and the
     * exchange itself must hold the expired entries back. */
    fbuild(&a, 1000), fbuild(&b, 1000);
    struct seen *s = seen_new();
    struct run r = exchange(&a, &b, now, 0, 0, s);
    assert_int_equal(r.state, RK_AEX_DONE);
    assert_int_equal(s->total, 1);
    assert_int_equal(s->count[RK_AEX_PUSH][703], 1);
    assert_int_equal(r.st.expired_skipped, 3);
    /* Built at now, expired entries are out of the trees: key 702 still
     * differs (their live v3), but ours wins and is expired. */
    fbuild(&a, now), fbuild(&b, now);
    memset(s, 0, sizeof *s);
    r = exchange(&a, &b, now, 0, 0, s);
    assert_int_equal(r.state, RK_AEX_DONE);
    assert_int_equal(s->count[RK_AEX_PULL][702] + s->count[RK_AEX_PUSH][702], 0);
    free(s);
    ffree(&a), ffree(&b);
}

/* Keys 0..N-1 on a; b has the even ones (some newer, some deleted) and
 * N..N+M-1 of its own. Every key must be handed out exactly once. */
static void many(uint32_t step_keys, uint16_t max_entries, unsigned n, unsigned m)
{
    static struct ftree a, b;
    for (unsigned i = 0; i < n; i++) {
        fput(&a, i, 100, false, 0);
        if (i % 2 == 0)
            fput(&b, i, i % 3 == 0 ? 200 : 100, i % 10 == 4, 0);
    }
    for (unsigned i = n; i < n + m; i++)
        fput(&b, i, 1, false, 0);
    fbuild(&a, 0), fbuild(&b, 0);
    struct seen *s = seen_new();
    struct run r = exchange(&a, &b, 1000, step_keys, max_entries, s);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.state, RK_AEX_DONE);
    for (unsigned i = 0; i < n + m; i++) {
        unsigned push = s->count[RK_AEX_PUSH][i], pull = s->count[RK_AEX_PULL][i];
        bool want_pull = i >= n || (i % 2 == 0 && (i % 3 == 0 || i % 10 == 4));
        bool want_push = i < n && i % 2 == 1;
        assert_int_equal(pull, want_pull);
        assert_int_equal(push, want_push);
        assert_int_equal(s->count[RK_AEX_TIE][i], 0);
    }
    assert_int_equal(r.st.to_push + r.st.to_pull, s->total);
    assert_true(r.st.keys_compared >= s->total && r.st.keys_compared <= n + m);
    /* Bounded replies: at most max_entries per AE_KEYS, so many of them. */
    uint16_t per = max_entries ? max_entries : RK_AEW_MAX_ENTRIES;
    assert_true(r.st.requests >= 1 + (n / 2 + m) / per);
    assert_true(r.max_reply <= RK_AEW_MSG_MAX);
    print_message("%u+%u keys, step %u, %u per reply: %llu requests, %zu emit calls, %zu max "
                  "reply bytes\n",
                  n, m, step_keys, per, (unsigned long long)r.st.requests, s->calls, r.max_reply);
    free(s);
    ffree(&a), ffree(&b);
}

static void test_thousands(void **state)
{
    (void)state;
    many(0, 0, 20000, 5000);  /* defaults: a few full replies */
    many(0, 100, 6000, 1000); /* the peer's replies small */
    many(37, 0, 6000, 1000);  /* our own step small: resume from our cursor */
    many(50, 64, 6000, 1000); /* both */
    many(1, 1, 300, 50);      /* one key per step */
}

/* ---- failures ---- */

struct harness {
    struct ftree a, b;
    struct seen *s;
    struct rk_aex *x;
    const uint8_t *req;
    size_t len;
    uint8_t *rep;
    size_t replen;
};

/* a and b differ on 3000 keys; x started, the responder's answer to the
 * request in flight in h->rep. */
static void harness_init(struct harness *h)
{
    memset(h, 0, sizeof *h);
    for (unsigned i = 0; i < 3000; i++)
        fput(i % 2 ? &h->a : &h->b, i, 1, false, 0);
    fbuild(&h->a, 0), fbuild(&h->b, 0);
    h->s = seen_new();
    h->rep = malloc(RK_AEW_MSG_MAX);
    struct rk_aex_conf conf = {
        .tree = {&fops, &h->a}, .partition = 5, .first_id = 1, .emit = emit, .arg = h->s};
    assert_int_equal(rk_aex_alloc(&h->x, &conf), 0);
    assert_int_equal(rk_aex_start(h->x, &h->req, &h->len), 0);
}

static void answer(struct harness *h, uint16_t max_entries)
{
    struct rk_msg m;
    assert_int_equal(rk_proto_decode(h->req, h->len, &m), 0);
    assert_int_equal(
        rk_aex_respond(&(struct rk_ae_tree){&fops, &h->b}, &m, max_entries, h->rep, &h->replen), 0);
}

static void harness_fini(struct harness *h)
{
    rk_aex_free(h->x);
    free(h->rep);
    free(h->s);
    ffree(&h->a), ffree(&h->b);
}

static void expect_fail(struct harness *h, const uint8_t *rep, size_t len, int err)
{
    assert_int_equal(rk_aex_on_reply(h->x, rep, len, 0, &h->req, &h->len), err);
    assert_int_equal(rk_aex_state(h->x), RK_AEX_FAILED);
    assert_int_equal(rk_aex_error(h->x), err);
    assert_int_equal(rk_aex_on_reply(h->x, rep, len, 0, &h->req, &h->len), RK_EINVAL);
}

static void test_truncated_reply(void **state)
{
    (void)state;
    struct harness h;
    for (size_t cut = 0; cut < 40; cut += 3) {
        harness_init(&h);
        answer(&h, 0);
        expect_fail(&h, h.rep, cut, RK_EMALFORMED);
        harness_fini(&h);
    }
    /* One byte short inside the body of an AE_KEYS reply, header fixed up. */
    harness_init(&h);
    answer(&h, 0);
    assert_int_equal(rk_aex_on_reply(h.x, h.rep, h.replen, 0, &h.req, &h.len), 1);
    answer(&h, 0);
    rk_le_put32(h.rep + 12, rk_le_get32(h.rep + 12) - 1);
    rk_le_put32(h.rep + RK_PROTO_HDR + 1, rk_le_get32(h.rep + RK_PROTO_HDR + 1) - 1);
    expect_fail(&h, h.rep, h.replen - 1, RK_EMALFORMED);
    assert_int_equal(h.s->total, 0); /* nothing decided from a bad reply */
    harness_fini(&h);
}

static void test_mismatched_reply(void **state)
{
    (void)state;
    struct harness h;
    /* The wrong id. */
    harness_init(&h);
    answer(&h, 0);
    rk_le_put32(h.rep + 8, 999);
    expect_fail(&h, h.rep, h.replen, RK_EMALFORMED);
    harness_fini(&h);
    /* Another partition. */
    harness_init(&h);
    answer(&h, 0);
    rk_le_put16(h.rep + RK_AEW_PREFIX + 2, 6);
    expect_fail(&h, h.rep, h.replen, RK_EMALFORMED);
    harness_fini(&h);
    /* An AE_ROOT reply where an AE_KEYS one is due. */
    harness_init(&h);
    answer(&h, 0);
    uint8_t *root = malloc(h.replen);
    memcpy(root, h.rep, h.replen);
    size_t rootlen = h.replen;
    assert_int_equal(rk_aex_on_reply(h.x, h.rep, h.replen, 0, &h.req, &h.len), 1);
    rk_le_put32(root + 8, 2);
    expect_fail(&h, root, rootlen, RK_EMALFORMED);
    free(root);
    harness_fini(&h);
    /* An old reply again: its entries lie before the cursor now. */
    harness_init(&h);
    answer(&h, 0);
    assert_int_equal(rk_aex_on_reply(h.x, h.rep, h.replen, 0, &h.req, &h.len), 1);
    answer(&h, 50);
    uint8_t *old = malloc(h.replen);
    memcpy(old, h.rep, h.replen);
    size_t oldlen = h.replen;
    assert_int_equal(rk_aex_on_reply(h.x, h.rep, h.replen, 0, &h.req, &h.len), 1);
    rk_le_put32(old + 8, 3);
    expect_fail(&h, old, oldlen, RK_EMALFORMED);
    free(old);
    harness_fini(&h);
}

/* An entry of a leaf that was not asked for, well formed otherwise. */
static void test_leaf_not_asked(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h);
    answer(&h, 0);
    assert_int_equal(rk_aex_on_reply(h.x, h.rep, h.replen, 0, &h.req, &h.len), 1);
    struct rk_msg m;
    struct rk_aew_keys_req q;
    assert_int_equal(rk_proto_decode(h.req, h.len, &m), 0);
    assert_int_equal(rk_aew_keys_req_decode(m.val, m.vlen, &q), 0);
    uint16_t stray = 0;
    while (stray < q.nleaves && q.leaves[stray] == stray)
        stray++;
    assert_true(stray < RK_AEW_LEAVES);
    uint8_t *body = h.rep + RK_AEW_PREFIX;
    struct rk_aew_keys_builder b;
    rk_aew_keys_begin(&b, body, RK_AEW_BODY_MAX, 5, 0);
    struct rk_aew_entry e = {.leaf = stray, .klen = 1, .key = (const uint8_t *)"x", .version = 1};
    assert_int_equal(rk_aew_keys_add(&b, &e), 0);
    size_t n = rk_aew_keys_finish(&b, true, NULL);
    size_t len = rk_aew_wrap(h.rep, RK_OP_AE_KEYS, RK_MSG_REPLY, 0, m.id, n);
    expect_fail(&h, h.rep, len, RK_EMALFORMED);
    harness_fini(&h);
}

static void test_peer_error_and_timeout(void **state)
{
    (void)state;
    struct harness h;
    /* An older node answers UNSUPPORTED; a busy one BUSY. */
    harness_init(&h);
    struct rk_msg st = {
        .opcode = RK_OP_AE_ROOT, .flags = RK_MSG_REPLY, .status = RK_ST_UNSUPPORTED, .id = 1};
    size_t n = rk_proto_encode(&st, h.rep);
    expect_fail(&h, h.rep, n, RK_EUNSUPPORTED);
    harness_fini(&h);
    harness_init(&h);
    answer(&h, 0);
    assert_int_equal(rk_aex_on_reply(h.x, h.rep, h.replen, 0, &h.req, &h.len), 1);
    st = (struct rk_msg){
        .opcode = RK_OP_AE_KEYS, .flags = RK_MSG_REPLY, .status = RK_ST_BUSY, .id = 2};
    n = rk_proto_encode(&st, h.rep);
    expect_fail(&h, h.rep, n, RK_EBUSY);
    harness_fini(&h);
    /* No answer in time: the driver fails it, once. */
    harness_init(&h);
    rk_aex_fail(h.x, RK_ETIMEDOUT);
    rk_aex_fail(h.x, RK_EMALFORMED);
    assert_int_equal(rk_aex_state(h.x), RK_AEX_FAILED);
    assert_int_equal(rk_aex_error(h.x), RK_ETIMEDOUT);
    harness_fini(&h);
    /* Our own tree failing mid-way. */
    harness_init(&h);
    answer(&h, 0);
    h.a.fail = RK_ENOTFOUND;
    expect_fail(&h, h.rep, h.replen, RK_ENOTFOUND);
    harness_fini(&h);
}

static void test_responder_refuses(void **state)
{
    (void)state;
    static struct ftree t;
    fbuild(&t, 0);
    struct rk_ae_tree tree = {&fops, &t};
    uint8_t *out = malloc(RK_AEW_MSG_MAX);
    size_t n;
    uint8_t body[RK_AEW_ROOT_REQ_SIZE] = {RK_AEW_FORMAT};
    struct rk_msg m = {
        .opcode = RK_OP_AE_ROOT, .id = 3, .has_val = true, .val = body, .vlen = sizeof body - 1};
    assert_int_equal(rk_aex_respond(&tree, &m, 0, out, &n), RK_EMALFORMED);
    m.vlen = sizeof body;
    assert_int_equal(rk_aex_respond(&tree, &m, 0, out, &n), 0);
    m.flags = RK_MSG_REPLY; /* a reply is no request */
    assert_int_equal(rk_aex_respond(&tree, &m, 0, out, &n), RK_EMALFORMED);
    m.flags = 0, m.opcode = RK_OP_GET;
    assert_int_equal(rk_aex_respond(&tree, &m, 0, out, &n), RK_EUNSUPPORTED);
    m.opcode = RK_OP_AE_ROOT, t.fail = RK_ENOTFOUND; /* a partition not held */
    assert_int_equal(rk_aex_respond(&tree, &m, 0, out, &n), RK_ENOTFOUND);
    free(out);
    ffree(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical),         cmocka_unit_test(test_one_key),
        cmocka_unit_test(test_versions),          cmocka_unit_test(test_tombstones),
        cmocka_unit_test(test_expired),           cmocka_unit_test(test_thousands),
        cmocka_unit_test(test_truncated_reply),   cmocka_unit_test(test_mismatched_reply),
        cmocka_unit_test(test_leaf_not_asked),    cmocka_unit_test(test_peer_error_and_timeout),
        cmocka_unit_test(test_responder_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

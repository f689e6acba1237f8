/* Anti-entropy bodies (aewire.h): each body round-trips; every truncation
 * and every extension by a byte is MALFORMED, as are wrong counts, ranges,
 * unsorted leaves and non-zero reserved bits; the AE_KEYS reply builder
 * keeps to its entry and byte limits and always fits one largest key; an
 * AE message wraps and unwraps through the ordinary proto codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proto/aewire.h"
#include "proto/proto.h"
#include "util/err.h"
#include "util/le.h"

#include <stdlib.h>
#include <string.h>

typedef int (*decode_fn)(const uint8_t *body, size_t len, void *out);

/* Decodes a heap copy of exactly len bytes, so AddressSanitizer catches a
 * read past the end. */
static int decode_exact(decode_fn fn, const uint8_t *buf, size_t len, void *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    int rc = fn(copy, len, out);
    free(copy);
    return rc;
}

/* Every strict prefix and the body with one byte more are MALFORMED. */
static void assert_truncations(decode_fn fn, const uint8_t *buf, size_t len, void *out)
{
    for (size_t n = 0; n < len; n++)
        assert_int_equal(decode_exact(fn, buf, n, out), RK_EMALFORMED);
    uint8_t *longer = calloc(1, len + 1);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    assert_int_equal(decode_exact(fn, longer, len + 1, out), RK_EMALFORMED);
    free(longer);
}

static int dec_root_req(const uint8_t *b, size_t n, void *o)
{
    return rk_aew_root_req_decode(b, n, o);
}
static int dec_root_rep(const uint8_t *b, size_t n, void *o)
{
    return rk_aew_root_rep_decode(b, n, o);
}
static int dec_keys_req(const uint8_t *b, size_t n, void *o)
{
    return rk_aew_keys_req_decode(b, n, o);
}
static int dec_keys_rep(const uint8_t *b, size_t n, void *o)
{
    return rk_aew_keys_rep_decode(b, n, o);
}

static void test_root_req(void **state)
{
    (void)state;
    struct rk_aew_root_req r = {.partition = 513, .root = 0x1122334455667788ull}, d;
    for (unsigned m = 0; m < RK_AEW_MIDS; m++)
        r.mids[m] = 0x0101010101010101ull * m;
    uint8_t buf[RK_AEW_ROOT_REQ_SIZE];
    assert_int_equal(rk_aew_root_req_encode(buf, &r), RK_AEW_ROOT_REQ_SIZE);
    /* Little-endian on the wire, checked against hand-written offsets. */
    assert_int_equal(buf[0], RK_AEW_FORMAT);
    assert_int_equal(rk_le_get16(buf + 2), 513);
    assert_int_equal(buf[8], 0x88);
    assert_int_equal(rk_le_get64(buf + 16 + 8 * 5), r.mids[5]);
    assert_int_equal(decode_exact(dec_root_req, buf, sizeof buf, &d), 0);
    assert_int_equal(d.partition, r.partition);
    assert_int_equal(d.root, r.root);
    assert_memory_equal(d.mids, r.mids, sizeof r.mids);
    assert_truncations(dec_root_req, buf, sizeof buf, &d);
    buf[4] = 1; /* reserved */
    assert_int_equal(decode_exact(dec_root_req, buf, sizeof buf, &d), RK_EMALFORMED);
    buf[4] = 0, buf[0] = 2; /* another format */
    assert_int_equal(decode_exact(dec_root_req, buf, sizeof buf, &d), RK_EMALFORMED);
}

static void test_root_rep(void **state)
{
    (void)state;
    static struct rk_aew_root_rep r, d;
    memset(&r, 0, sizeof r);
    r.partition = 7, r.root = 42, r.mask = (1u << 0) | (1u << 9) | (1u << 31);
    for (unsigned m = 0; m < RK_AEW_MIDS; m++)
        for (unsigned i = 0; i < RK_AEW_FANOUT; i++)
            r.leaves[m][i] = (r.mask & (1u << m)) ? m * 1000u + i + 1 : 0;
    static uint8_t buf[RK_AEW_ROOT_REP_HDR + 32 * 256];
    size_t n = rk_aew_root_rep_encode(buf, &r);
    assert_int_equal(n, RK_AEW_ROOT_REP_HDR + 3 * 256);
    memset(&d, 0xAB, sizeof d);
    assert_int_equal(decode_exact(dec_root_rep, buf, n, &d), 0);
    assert_int_equal(d.mask, r.mask);
    assert_int_equal(d.root, 42);
    assert_memory_equal(d.leaves[9], r.leaves[9], sizeof r.leaves[9]);
    assert_memory_equal(d.leaves[31], r.leaves[31], sizeof r.leaves[31]);
    assert_truncations(dec_root_rep, buf, n, &d);
    /* A mask that disagrees with the length. */
    rk_le_put32(buf + 4, r.mask | 2u);
    assert_int_equal(decode_exact(dec_root_rep, buf, n, &d), RK_EMALFORMED);
    /* Every mid differing: the largest reply. */
    r.mask = UINT32_MAX;
    n = rk_aew_root_rep_encode(buf, &r);
    assert_int_equal(n, sizeof buf);
    assert_int_equal(decode_exact(dec_root_rep, buf, n, &d), 0);
}

static void test_keys_req(void **state)
{
    (void)state;
    static struct rk_aew_keys_req r, d;
    memset(&r, 0, sizeof r);
    r.partition = 3, r.nleaves = 5;
    uint16_t leaves[] = {0, 17, 18, 500, 1023};
    memcpy(r.leaves, leaves, sizeof leaves);
    r.cur = (struct rk_aew_cursor){
        .pos = 3, .has_key = true, .klen = 4, .key = (const uint8_t *)"k\0z9"};
    static uint8_t buf[RK_AEW_KEYS_REQ_MAX];
    size_t n = rk_aew_keys_req_encode(buf, &r);
    assert_int_equal(n, rk_aew_keys_req_size(&r));
    assert_int_equal(n, RK_AEW_KEYS_HDR + 10 + 4);
    assert_int_equal(decode_exact(dec_keys_req, buf, n, &d), 0);
    assert_int_equal(d.partition, 3);
    assert_int_equal(d.nleaves, 5);
    assert_memory_equal(d.leaves, leaves, sizeof leaves);
    assert_int_equal(d.cur.pos, 3);
    assert_true(d.cur.has_key);
    assert_int_equal(d.cur.klen, 4);
    assert_truncations(dec_keys_req, buf, n, &d);
    /* An empty cursor key is still a key (after ""); no key: no bytes. */
    r.cur.klen = 0;
    n = rk_aew_keys_req_encode(buf, &r);
    assert_int_equal(rk_aew_keys_req_decode(buf, n, &d), 0);
    assert_true(d.cur.has_key && d.cur.klen == 0);
    r.cur.has_key = false;
    n = rk_aew_keys_req_encode(buf, &r);
    assert_int_equal(rk_aew_keys_req_decode(buf, n, &d), 0);
    assert_false(d.cur.has_key);
    /* Leaves out of order, repeated, or past 1023. */
    uint8_t bad[64];
    memcpy(bad, buf, n);
    rk_le_put16(bad + RK_AEW_KEYS_HDR + 2, 0);
    assert_int_equal(rk_aew_keys_req_decode(bad, n, &d), RK_EMALFORMED);
    memcpy(bad, buf, n);
    rk_le_put16(bad + RK_AEW_KEYS_HDR + 8, 1024);
    assert_int_equal(rk_aew_keys_req_decode(bad, n, &d), RK_EMALFORMED);
    /* A cursor past the list, no leaves, a key length without the flag. */
    memcpy(bad, buf, n);
    rk_le_put16(bad + 6, 5);
    assert_int_equal(rk_aew_keys_req_decode(bad, n, &d), RK_EMALFORMED);
    memcpy(bad, buf, n);
    rk_le_put16(bad + 4, 0);
    assert_int_equal(rk_aew_keys_req_decode(bad, RK_AEW_KEYS_HDR, &d), RK_EMALFORMED);
    memcpy(bad, buf, n);
    rk_le_put16(bad + 8, 1);
    assert_int_equal(rk_aew_keys_req_decode(bad, n + 1, &d), RK_EMALFORMED);
}

static void test_keys_req_largest(void **state)
{
    (void)state;
    static struct rk_aew_keys_req r, d;
    static uint8_t key[RK_AEW_KEY_MAX], buf[RK_AEW_KEYS_REQ_MAX];
    memset(key, 'x', sizeof key);
    r.partition = UINT16_MAX, r.nleaves = RK_AEW_LEAVES;
    for (unsigned i = 0; i < RK_AEW_LEAVES; i++)
        r.leaves[i] = (uint16_t)i;
    r.cur =
        (struct rk_aew_cursor){.pos = 1023, .has_key = true, .klen = RK_AEW_KEY_MAX, .key = key};
    assert_int_equal(rk_aew_keys_req_encode(buf, &r), RK_AEW_KEYS_REQ_MAX);
    assert_int_equal(rk_aew_keys_req_decode(buf, RK_AEW_KEYS_REQ_MAX, &d), 0);
    assert_memory_equal(d.cur.key, key, sizeof key);
    rk_le_put16(buf + 4, RK_AEW_LEAVES + 1); /* 1025 leaves */
    assert_int_equal(rk_aew_keys_req_decode(buf, RK_AEW_KEYS_REQ_MAX + 2, &d), RK_EMALFORMED);
}

static const struct rk_aew_entry sample[] = {
    {.leaf = 4, .klen = 1, .key = (const uint8_t *)"a", .version = 1, .expiry_ms = 0},
    {.leaf = 4, .klen = 3, .key = (const uint8_t *)"b\0c", .version = 9, .tombstone = true},
    {.leaf = 900,
     .klen = 2,
     .key = (const uint8_t *)"zz",
     .version = UINT64_MAX,
     .expiry_ms = 1700000000000ull},
};

static size_t build_sample(uint8_t *buf, size_t cap, bool done)
{
    struct rk_aew_keys_builder b;
    rk_aew_keys_begin(&b, buf, cap, 11, 0);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(rk_aew_keys_add(&b, &sample[i]), 0);
    struct rk_aew_cursor cur = {.pos = 1, .has_key = true, .klen = 2, .key = sample[2].key};
    return rk_aew_keys_finish(&b, done, &cur);
}

static void test_keys_rep(void **state)
{
    (void)state;
    static uint8_t buf[RK_AEW_BODY_MAX];
    struct rk_aew_keys_rep d;
    size_t n = build_sample(buf, sizeof buf, false);
    assert_int_equal(n, RK_AEW_KEYS_HDR + 3 * RK_AEW_ENTRY_HDR + 6 + 2);
    assert_int_equal(decode_exact(dec_keys_rep, buf, n, &d), 0);
    assert_int_equal(d.partition, 11);
    assert_int_equal(d.count, 3);
    assert_false(d.done);
    assert_int_equal(d.cur.pos, 1);
    assert_true(d.cur.has_key);
    assert_int_equal(d.cur.klen, 2);
    assert_int_equal(rk_aew_keys_rep_decode(buf, n, &d), 0); /* borrow from buf now */
    assert_memory_equal(d.cur.key, "zz", 2);
    size_t off = 0;
    struct rk_aew_entry e;
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(rk_aew_entry_next(&d, &off, &e), 1);
        assert_int_equal(e.leaf, sample[i].leaf);
        assert_int_equal(e.klen, sample[i].klen);
        assert_memory_equal(e.key, sample[i].key, e.klen);
        assert_int_equal(e.version, sample[i].version);
        assert_int_equal(e.expiry_ms, sample[i].expiry_ms);
        assert_int_equal(e.tombstone, sample[i].tombstone);
    }
    assert_int_equal(rk_aew_entry_next(&d, &off, &e), 0);
    assert_truncations(dec_keys_rep, buf, n, &d);
    /* done: no cursor travels. */
    n = build_sample(buf, sizeof buf, true);
    assert_int_equal(rk_aew_keys_rep_decode(buf, n, &d), 0);
    assert_true(d.done && !d.cur.has_key && d.cur.pos == 0);
    assert_truncations(dec_keys_rep, buf, n, &d);
}

static void test_keys_rep_bad(void **state)
{
    (void)state;
    static uint8_t buf[RK_AEW_BODY_MAX], bad[512];
    struct rk_aew_keys_rep d;
    size_t n = build_sample(buf, sizeof buf, false);
    size_t e0 = RK_AEW_KEYS_HDR;
    struct {
        size_t off;
        uint8_t byte;
    } flips[] = {
        {1, 0x04},      /* unknown flag */
        {10, 1},        /* reserved */
        {e0 + 4, 0x02}, /* unknown entry flag */
        {e0 + 1, 0x04}, /* leaf 1028 */
        {e0 + 2, 0x40}, /* klen past the end */
        {4, 2},         /* count 2: bytes left over */
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(bad, buf, n);
        bad[flips[i].off] = flips[i].byte;
        assert_int_equal(decode_exact(dec_keys_rep, bad, n, &d), RK_EMALFORMED);
    }
    /* done with a cursor. */
    memcpy(bad, buf, n);
    bad[1] |= RK_AEW_DONE;
    assert_int_equal(decode_exact(dec_keys_rep, bad, n, &d), RK_EMALFORMED);
    /* More than 4096 entries, whatever the bytes say. */
    struct rk_aew_keys_builder b;
    rk_aew_keys_begin(&b, buf, sizeof buf, 0, 0);
    struct rk_aew_entry e = {.leaf = 1, .klen = 0};
    for (unsigned i = 0; i < RK_AEW_MAX_ENTRIES; i++)
        assert_int_equal(rk_aew_keys_add(&b, &e), 0);
    assert_int_equal(rk_aew_keys_add(&b, &e), RK_ETOOLARGE);
    n = rk_aew_keys_finish(&b, true, NULL);
    assert_int_equal(rk_aew_keys_rep_decode(buf, n, &d), 0);
    memcpy(buf + n, buf + n - RK_AEW_ENTRY_HDR, RK_AEW_ENTRY_HDR);
    rk_le_put16(buf + 4, RK_AEW_MAX_ENTRIES + 1);
    assert_int_equal(rk_aew_keys_rep_decode(buf, n + RK_AEW_ENTRY_HDR, &d), RK_EMALFORMED);
}

static void test_builder_bytes(void **state)
{
    (void)state;
    static uint8_t buf[RK_AEW_BODY_MAX], key[RK_AEW_KEY_MAX];
    memset(key, 'k', sizeof key);
    struct rk_aew_keys_builder b;
    struct rk_aew_keys_rep d;
    /* Largest keys: one always fits with its cursor, and the builder
     * stops before the cursor would not fit. */
    rk_aew_keys_begin(&b, buf, sizeof buf, 5, 0);
    struct rk_aew_entry e = {.leaf = 2, .klen = RK_AEW_KEY_MAX, .key = key, .version = 1};
    unsigned added = 0;
    while (rk_aew_keys_add(&b, &e) == 0)
        added++;
    assert_int_equal(added, 2);
    struct rk_aew_cursor cur = {.pos = 0, .has_key = true, .klen = RK_AEW_KEY_MAX, .key = key};
    size_t n = rk_aew_keys_finish(&b, false, &cur);
    assert_true(n <= RK_AEW_BODY_MAX);
    assert_int_equal(rk_aew_keys_rep_decode(buf, n, &d), 0);
    assert_int_equal(d.count, 2);
    /* A body over the limit is refused even when well formed. */
    assert_int_equal(RK_AEW_PREFIX + RK_AEW_BODY_MAX, RK_AEW_MSG_MAX);
    /* A caller's smaller entry limit. */
    rk_aew_keys_begin(&b, buf, sizeof buf, 5, 3);
    e.klen = 1;
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(rk_aew_keys_add(&b, &e), 0);
    assert_int_equal(rk_aew_keys_add(&b, &e), RK_ETOOLARGE);
}

static void test_wrap(void **state)
{
    (void)state;
    uint8_t msg[RK_AEW_PREFIX + RK_AEW_ROOT_REQ_SIZE];
    struct rk_aew_root_req r = {.partition = 1, .root = 5};
    size_t body = rk_aew_root_req_encode(msg + RK_AEW_PREFIX, &r);
    size_t len = rk_aew_wrap(msg, RK_OP_AE_ROOT, 0, 0, 77, body);
    assert_int_equal(len, sizeof msg);
    struct rk_msg m;
    assert_int_equal(rk_proto_decode(msg, len, &m), 0);
    const uint8_t *b;
    size_t blen;
    assert_int_equal(rk_aew_body(&m, RK_OP_AE_ROOT, false, 0, &b, &blen), 0);
    assert_ptr_equal(b, msg + RK_AEW_PREFIX);
    assert_int_equal(blen, RK_AEW_ROOT_REQ_SIZE);
    assert_int_equal(rk_aew_body(&m, RK_OP_AE_KEYS, false, 0, &b, &blen), RK_EMALFORMED);
    assert_int_equal(rk_aew_body(&m, RK_OP_AE_ROOT, true, 77, &b, &blen), RK_EMALFORMED);
    /* A reply: the id must match, and a status is the peer's error. */
    len = rk_aew_wrap(msg, RK_OP_AE_ROOT, RK_MSG_REPLY, RK_ST_OK, 77, body);
    assert_int_equal(rk_proto_decode(msg, len, &m), 0);
    assert_int_equal(rk_aew_body(&m, RK_OP_AE_ROOT, true, 77, &b, &blen), 0);
    assert_int_equal(rk_aew_body(&m, RK_OP_AE_ROOT, true, 78, &b, &blen), RK_EMALFORMED);
    m.status = RK_ST_BUSY;
    assert_int_equal(rk_aew_body(&m, RK_OP_AE_ROOT, true, 77, &b, &blen), RK_EBUSY);
    m.status = RK_ST_OK, m.has_val = false;
    assert_int_equal(rk_aew_body(&m, RK_OP_AE_ROOT, true, 77, &b, &blen), RK_EMALFORMED);
}

static void test_key_order(void **state)
{
    (void)state;
    const uint8_t *a = (const uint8_t *)"ab", *b = (const uint8_t *)"abc";
    assert_true(rk_aew_key_cmp(a, 2, b, 3) < 0);
    assert_true(rk_aew_key_cmp(b, 3, a, 2) > 0);
    assert_true(rk_aew_key_cmp(a, 2, a, 2) == 0);
    assert_true(rk_aew_key_cmp(a, 0, a, 1) < 0);
    assert_true(rk_aew_key_cmp((const uint8_t *)"\xff", 1, b, 3) > 0); /* unsigned bytes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_req),      cmocka_unit_test(test_root_rep),
        cmocka_unit_test(test_keys_req),      cmocka_unit_test(test_keys_req_largest),
        cmocka_unit_test(test_keys_rep),      cmocka_unit_test(test_keys_rep_bad),
        cmocka_unit_test(test_builder_bytes), cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_key_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

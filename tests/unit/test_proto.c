/* Wire codec: every opcode round-trips with every combination of fields;
 * each class of bad input (short, bad magic, body_len off, field past the
 * end, repeated tag, wrong integer size, any truncation) is MALFORMED and
 * never a crash; unknown tags are skipped; unknown opcodes and versions are
 * UNSUPPORTED with the id echoed; status codes map both ways; the header is
 * little-endian on the wire, checked against bytes written by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proto/proto.h"
#include "util/auth.h"
#include "util/err.h"

#include <errno.h>
#include <nng/nng.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t all_ops[] = {
    RK_OP_PUT,  RK_OP_GET,  RK_OP_DEL,  RK_OP_STATUS, RK_OP_STATS,   RK_OP_HEALTH, RK_OP_READY,
    RK_OP_ECHO, RK_OP_RPUT, RK_OP_RGET, RK_OP_RBATCH, RK_OP_AE_ROOT, RK_OP_AE_KEYS};

/* Binary key and value: NUL bytes inside and at the ends. */
static const uint8_t bin_key[] = {0, 'k', 0, 0xFF, 'e', 0x80, 'y', 0};
static const uint8_t bin_val[] = {0, 0, 1, 2, 0, 0xFE, '{', '}', 0};
static const char json[] = "{\"state\":\"up\",\"partitions\":64}";

/* Decodes a copy of exactly len bytes on the heap, so a read past the end is
 * caught by AddressSanitizer in the sanitizer build. */
static int decode_exact(const uint8_t *buf, size_t len, struct rk_msg *m)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    int rc = rk_proto_decode(copy, len, m);
    free(copy);
    /* Byte fields pointed into copy: drop them so no caller can touch them. */
    m->key = m->val = m->text = NULL;
    return rc;
}

static void assert_bytes(bool has, const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
    if (!has)
        return;
    assert_int_equal(alen, blen);
    if (alen)
        assert_memory_equal(a, b, alen);
}

/* Every field the message has agrees; absent fields decode as zero. */
static void assert_same_msg(const struct rk_msg *want, const struct rk_msg *got)
{
    assert_int_equal(got->opcode, want->opcode);
    assert_int_equal(got->flags, want->flags);
    assert_int_equal(got->status, want->status);
    assert_int_equal(got->id, want->id);
    assert_int_equal(got->has_key, want->has_key);
    assert_int_equal(got->has_val, want->has_val);
    assert_int_equal(got->has_text, want->has_text);
    assert_int_equal(got->has_version, want->has_version);
    assert_int_equal(got->has_ttl, want->has_ttl);
    assert_int_equal(got->has_expiry, want->has_expiry);
    assert_int_equal(got->has_r, want->has_r);
    assert_int_equal(got->has_w, want->has_w);
    assert_int_equal(got->has_retry, want->has_retry);
    assert_bytes(want->has_key, want->key, want->klen, got->key, got->klen);
    assert_bytes(want->has_val, want->val, want->vlen, got->val, got->vlen);
    assert_bytes(want->has_text, want->text, want->tlen, got->text, got->tlen);
    assert_int_equal(got->version, want->has_version ? want->version : 0);
    assert_int_equal(got->ttl_ms, want->has_ttl ? want->ttl_ms : 0);
    assert_int_equal(got->expiry_ms, want->has_expiry ? want->expiry_ms : 0);
    assert_int_equal(got->r, want->has_r ? want->r : 0);
    assert_int_equal(got->w, want->has_w ? want->w : 0);
    assert_int_equal(got->retry_ms, want->has_retry ? want->retry_ms : 0);
}

/* A message with the fields chosen by bit i of mask, in rk_tag order. Absent
 * fields carry garbage, which encode must ignore. */
static struct rk_msg make_msg(uint8_t op, unsigned mask, uint16_t flags, uint16_t status)
{
    struct rk_msg m = {
        .opcode = op,
        .flags = flags,
        .status = status,
        .id = 0xA1B2C3D4u ^ mask,
        .key = bin_key,
        .klen = sizeof(bin_key),
        .val = bin_val,
        .vlen = sizeof(bin_val),
        .text = (const uint8_t *)json,
        .tlen = sizeof(json) - 1,
        .version = 0x8000000000000001ull,
        .ttl_ms = 1,
        .expiry_ms = UINT64_MAX,
        .r = 255,
        .w = 1,
    };
    m.has_key = mask & 1;
    m.has_val = mask & 2;
    m.has_version = mask & 4;
    m.has_ttl = mask & 8;
    m.has_expiry = mask & 16;
    m.has_text = mask & 32;
    m.has_r = mask & 64;
    m.has_w = mask & 128;
    if (mask & 1 << 8) { /* also try empty byte fields, one with no pointer */
        m.vlen = 0;
        m.key = bin_key;
        m.klen = 0;
        m.text = NULL;
        m.tlen = 0;
    }
    return m;
}

/* The fields of an encoded body come in strictly increasing tag order. */
static void assert_tag_order(const uint8_t *buf, size_t len)
{
    int last = 0;
    for (size_t at = RK_PROTO_HDR; at < len;) {
        int tag = buf[at];
        uint32_t n;
        memcpy(&n, buf + at + 1, 4); /* the test hosts are little-endian */
        assert_true(tag > last);
        last = tag;
        at += 5 + n;
        assert_true(at <= len);
    }
}

static void round_trip(const struct rk_msg *m)
{
    static uint8_t buf[1024];
    size_t n = rk_proto_size(m);
    assert_true(n >= RK_PROTO_HDR && n <= sizeof(buf));
    assert_int_equal(rk_proto_encode(m, buf), n);
    assert_tag_order(buf, n);
    struct rk_msg got;
    assert_int_equal(rk_proto_decode(buf, n, &got), 0);
    assert_same_msg(m, &got);
    if (got.has_key)
        assert_true(got.key >= buf && got.key + got.klen <= buf + n); /* borrowed from buf */
}

static void test_round_trip_every_opcode_and_field_set(void **state)
{
    (void)state;
    const struct {
        uint16_t flags, status;
    } kinds[] = {{0, RK_ST_OK},
                 {RK_MSG_REPLY, RK_ST_OK},
                 {RK_MSG_REPLY, RK_ST_NOT_FOUND},
                 {RK_MSG_REPLY, RK_ST_UNAVAILABLE},
                 {0xFFFF, 0xFFFF}};
    for (size_t o = 0; o < sizeof(all_ops); o++)
        for (unsigned mask = 0; mask < 512; mask++)
            for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                struct rk_msg m = make_msg(all_ops[o], mask, kinds[k].flags, kinds[k].status);
                round_trip(&m);
            }
}

static void test_binary_key_and_empty_value(void **state)
{
    (void)state;
    uint8_t key[256];
    for (int i = 0; i < 256; i++)
        key[i] = (uint8_t)i; /* every byte value, NUL first */
    struct rk_msg m = {.opcode = RK_OP_PUT,
                       .id = 7,
                       .key = key,
                       .klen = sizeof(key),
                       .val = NULL,
                       .vlen = 0,
                       .has_key = true,
                       .has_val = true};
    uint8_t buf[512];
    size_t n = rk_proto_encode(&m, buf);
    assert_int_equal(n, RK_PROTO_HDR + 5 + 256 + 5);
    struct rk_msg got;
    assert_int_equal(rk_proto_decode(buf, n, &got), 0);
    assert_true(got.has_val);
    assert_int_equal(got.vlen, 0);
    assert_int_equal(got.klen, 256);
    assert_memory_equal(got.key, key, 256);
}

static void test_reply_with_status_and_text(void **state)
{
    (void)state;
    static const char line[] = "put k: a newer version is already stored";
    struct rk_msg m = {.opcode = RK_OP_PUT,
                       .flags = RK_MSG_REPLY,
                       .status = RK_ST_STALE,
                       .id = 99,
                       .text = (const uint8_t *)line,
                       .tlen = sizeof(line) - 1,
                       .has_text = true};
    round_trip(&m);
    struct rk_msg st = {.opcode = RK_OP_STATUS,
                        .flags = RK_MSG_REPLY,
                        .id = 100,
                        .text = (const uint8_t *)json,
                        .tlen = sizeof(json) - 1,
                        .has_text = true};
    round_trip(&st);
    struct rk_msg get = {.opcode = RK_OP_GET,
                         .flags = RK_MSG_REPLY,
                         .id = 101,
                         .val = bin_val,
                         .vlen = sizeof(bin_val),
                         .version = 42,
                         .expiry_ms = 1767225600000ull,
                         .has_val = true,
                         .has_version = true,
                         .has_expiry = true};
    round_trip(&get);
    static const char slow[] = "rate limited: 127.0.0.1 is over limits.client_rate (100/s)";
    struct rk_msg limited = {.opcode = RK_OP_PUT,
                             .flags = RK_MSG_REPLY,
                             .status = RK_ST_RATE_LIMITED,
                             .id = 102,
                             .text = (const uint8_t *)slow,
                             .tlen = sizeof(slow) - 1,
                             .retry_ms = 17,
                             .has_text = true,
                             .has_retry = true};
    round_trip(&limited);
}

/* ---- hand-built messages ---------------------------------------------- */

struct wire {
    uint8_t b[1024];
    size_t n;
};

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void w_hdr(struct wire *w, uint8_t version, uint8_t op, uint32_t id)
{
    memset(w, 0, sizeof(*w));
    w->b[0] = 0x52; /* "RK" */
    w->b[1] = 0x4B;
    w->b[2] = version;
    w->b[3] = op;
    put_le(w->b + 8, id, 4);
    w->n = RK_PROTO_HDR;
}

/* A field frame declaring len bytes, followed by have bytes of data. */
static void w_field_raw(struct wire *w, uint8_t tag, uint32_t len, const void *d, size_t have)
{
    w->b[w->n] = tag;
    put_le(w->b + w->n + 1, len, 4);
    if (have)
        memcpy(w->b + w->n + 5, d, have);
    w->n += 5 + have;
}

static void w_field(struct wire *w, uint8_t tag, const void *d, uint32_t len)
{
    w_field_raw(w, tag, len, d, len);
}

/* Sets body_len to match the bytes written. */
static void w_seal(struct wire *w)
{
    put_le(w->b + 12, w->n - RK_PROTO_HDR, 4);
}

static void w_valid_put(struct wire *w)
{
    uint8_t v8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, one = 2;
    w_hdr(w, RK_PROTO_VERSION, RK_OP_PUT, 0xDEADBEEF);
    w_field(w, RK_TAG_KEY, bin_key, sizeof(bin_key));
    w_field(w, RK_TAG_VALUE, bin_val, sizeof(bin_val));
    w_field(w, RK_TAG_TTL_MS, v8, 8);
    w_field(w, RK_TAG_R, &one, 1);
    w_field(w, RK_TAG_W, &one, 1);
    w_seal(w);
}

/* MALFORMED, the id echoed, and no body field set. */
static void assert_malformed_echo(const struct wire *w, uint32_t id)
{
    struct rk_msg m;
    assert_int_equal(decode_exact(w->b, w->n, &m), RK_EMALFORMED);
    assert_int_equal(m.id, id);
    assert_false(m.has_key || m.has_val || m.has_text || m.has_version || m.has_ttl ||
                 m.has_expiry || m.has_r || m.has_w);
}

static void test_wire_header_is_little_endian(void **state)
{
    (void)state;
    /* Fields deliberately out of tag order: any order decodes. */
    // clang-format off
    static const uint8_t wire[] = {
        0x52, 0x4B,             /* magic 0x4B52 */
        0x01,                   /* version */
        0x02,                   /* GET */
        0x01, 0x00,             /* flags: reply */
        0x09, 0x00,             /* status: QUORUM */
        0x04, 0x03, 0x02, 0x01, /* id 0x01020304 */
        0x1A, 0x00, 0x00, 0x00, /* body_len 26 */
        0x03, 0x08, 0x00, 0x00, 0x00, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* VERSION */
        0x07, 0x01, 0x00, 0x00, 0x00, 0x03,                                           /* R = 3 */
        0x01, 0x02, 0x00, 0x00, 0x00, 'k', 0x00,                                      /* KEY */
    };
    /* The same message as encode writes it: fields in tag order. */
    static const uint8_t sorted[] = {
        0x52, 0x4B, 0x01, 0x02, 0x01, 0x00, 0x09, 0x00, 0x04, 0x03, 0x02, 0x01, 0x1A, 0x00, 0x00, 0x00,
        0x01, 0x02, 0x00, 0x00, 0x00, 'k', 0x00,
        0x03, 0x08, 0x00, 0x00, 0x00, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
        0x07, 0x01, 0x00, 0x00, 0x00, 0x03,
    };
    // clang-format on
    static_assert(sizeof(wire) == sizeof(sorted), "same fields");
    struct rk_msg m;
    assert_int_equal(rk_proto_decode(wire, sizeof(wire), &m), 0);
    assert_int_equal(m.opcode, RK_OP_GET);
    assert_int_equal(m.flags, RK_MSG_REPLY);
    assert_int_equal(m.status, RK_ST_QUORUM);
    assert_int_equal(m.id, 0x01020304u);
    assert_true(m.has_version && m.has_r && m.has_key);
    assert_int_equal(m.version, 0x0102030405060708ull);
    assert_int_equal(m.r, 3);
    assert_int_equal(m.klen, 2);
    assert_memory_equal(m.key, "k\0", 2);

    uint8_t out[sizeof(sorted)];
    assert_int_equal(rk_proto_size(&m), sizeof(sorted));
    assert_int_equal(rk_proto_encode(&m, out), sizeof(sorted));
    assert_memory_equal(out, sorted, sizeof(sorted));
}

static void test_short_header(void **state)
{
    (void)state;
    struct wire w;
    w_valid_put(&w);
    struct rk_msg m;
    for (size_t n = 0; n < RK_PROTO_HDR; n++) {
        assert_int_equal(decode_exact(w.b, n, &m), RK_EMALFORMED);
        assert_int_equal(m.id, 0);
    }
    assert_int_equal(rk_proto_decode(NULL, 0, &m), RK_EMALFORMED);
}

static void test_bad_magic(void **state)
{
    (void)state;
    struct wire w;
    struct rk_msg m;
    const uint8_t magics[][2] = {{0x4B, 0x52}, {0, 0}, {0x52, 0x4A}, {0x53, 0x4B}, {0xFF, 0xFF}};
    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        w_valid_put(&w);
        memcpy(w.b, magics[i], 2);
        assert_int_equal(decode_exact(w.b, w.n, &m), RK_EMALFORMED);
        assert_int_equal(m.opcode, 0); /* nothing trusted from a foreign header */
    }
}

static void test_body_len_mismatch(void **state)
{
    (void)state;
    struct wire w;
    const int64_t deltas[] = {1, -1, 5, -5};
    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
        w_valid_put(&w);
        put_le(w.b + 12, (uint64_t)((int64_t)(w.n - RK_PROTO_HDR) + deltas[i]), 4);
        assert_malformed_echo(&w, 0xDEADBEEF);
    }
    w_valid_put(&w);
    put_le(w.b + 12, 0, 4); /* claims no body */
    assert_malformed_echo(&w, 0xDEADBEEF);
    put_le(w.b + 12, UINT32_MAX, 4);
    assert_malformed_echo(&w, 0xDEADBEEF);
}

/* Regression guard for offsets computed in 32 bits: a len of 4 GiB + 16
 * must not pass as body_len 0. Only the header is read (body_len is
 * checked before any field), so a 16-byte buffer serves. */
static void test_len_over_4gib_not_truncated(void **state)
{
    (void)state;
    if (SIZE_MAX <= UINT32_MAX)
        skip();
    struct wire w;
    w_hdr(&w, RK_PROTO_VERSION, RK_OP_GET, 5);
    struct rk_msg m;
    assert_int_equal(rk_proto_decode(w.b, (size_t)RK_PROTO_HDR + ((size_t)1 << 32), &m),
                     RK_EMALFORMED);
    put_le(w.b + 12, 1, 4);
    assert_int_equal(rk_proto_decode(w.b, (size_t)RK_PROTO_HDR + ((size_t)1 << 32) + 1, &m),
                     RK_EMALFORMED);
}

static void test_field_past_end(void **state)
{
    (void)state;
    struct wire w;
    /* A frame cut inside its 5-byte header: 1 to 4 bytes of it. */
    for (size_t cut = 1; cut < 5; cut++) {
        w_hdr(&w, RK_PROTO_VERSION, RK_OP_GET, 11);
        w_field(&w, RK_TAG_KEY, "abc", 3);
        w_field_raw(&w, RK_TAG_R, 1, "\1", 1);
        w.n -= 6 - cut;
        w_seal(&w);
        assert_malformed_echo(&w, 11);
    }
    /* Declared lengths past the end, up to ones that would wrap an offset. */
    const uint32_t lens[] = {4, 5, 100, 0x7FFFFFFF, 0xFFFFFFFB, 0xFFFFFFFF};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        w_hdr(&w, RK_PROTO_VERSION, RK_OP_PUT, 12);
        w_field_raw(&w, RK_TAG_KEY, lens[i], "abc", 3);
        w_seal(&w);
        assert_malformed_echo(&w, 12);
        w_hdr(&w, RK_PROTO_VERSION, RK_OP_PUT, 13);
        w_field_raw(&w, 200, lens[i], "abc", 3); /* unknown tags are checked too */
        w_seal(&w);
        assert_malformed_echo(&w, 13);
    }
}

static void test_repeated_tag(void **state)
{
    (void)state;
    static const uint8_t data[8] = {1};
    const uint32_t sizes[] = {
        [RK_TAG_KEY] = 3,       [RK_TAG_VALUE] = 0, [RK_TAG_VERSION] = 8, [RK_TAG_TTL_MS] = 8,
        [RK_TAG_EXPIRY_MS] = 8, [RK_TAG_TEXT] = 2,  [RK_TAG_R] = 1,       [RK_TAG_W] = 1};
    struct wire w;
    for (uint8_t tag = RK_TAG_KEY; tag <= RK_TAG_W; tag++) {
        w_hdr(&w, RK_PROTO_VERSION, RK_OP_ECHO, tag);
        w_field(&w, tag, data, sizes[tag]);
        w_field(&w, RK_TAG_KEY == tag ? RK_TAG_VALUE : RK_TAG_KEY, data, 1);
        w_seal(&w);
        struct rk_msg m;
        assert_int_equal(decode_exact(w.b, w.n, &m), 0); /* once is fine */
        w_field(&w, tag, data, sizes[tag]);
        w_seal(&w);
        assert_malformed_echo(&w, tag);
    }
}

static void test_bad_integer_size(void **state)
{
    (void)state;
    static const uint8_t data[16] = {0};
    const uint8_t u64_tags[] = {RK_TAG_VERSION, RK_TAG_TTL_MS, RK_TAG_EXPIRY_MS};
    const uint32_t u64_bad[] = {0, 1, 4, 7, 9, 16};
    const uint32_t u8_bad[] = {0, 2, 8};
    struct wire w;
    for (size_t t = 0; t < sizeof(u64_tags); t++)
        for (size_t i = 0; i < sizeof(u64_bad) / sizeof(u64_bad[0]); i++) {
            w_hdr(&w, RK_PROTO_VERSION, RK_OP_PUT, 21);
            w_field(&w, u64_tags[t], data, u64_bad[i]);
            w_seal(&w);
            assert_malformed_echo(&w, 21);
        }
    for (uint8_t tag = RK_TAG_R; tag <= RK_TAG_W; tag++)
        for (size_t i = 0; i < sizeof(u8_bad) / sizeof(u8_bad[0]); i++) {
            w_hdr(&w, RK_PROTO_VERSION, RK_OP_GET, 22);
            w_field(&w, tag, data, u8_bad[i]);
            w_seal(&w);
            assert_malformed_echo(&w, 22);
        }
}

/* Cut a valid message at every offset. As it arrives (body_len unchanged)
 * every cut is MALFORMED; with body_len fixed up to the cut, only cuts at a
 * field boundary decode, the rest are a field past the end. */
static void test_truncated_at_every_offset(void **state)
{
    (void)state;
    struct wire w;
    w_valid_put(&w);
    bool boundary[sizeof(w.b)] = {false};
    for (size_t at = RK_PROTO_HDR; at <= w.n;) {
        boundary[at] = true;
        uint32_t n;
        if (at == w.n)
            break;
        memcpy(&n, w.b + at + 1, 4);
        at += 5 + n;
    }
    struct rk_msg m;
    for (size_t n = 0; n < w.n; n++) {
        assert_int_equal(decode_exact(w.b, n, &m), RK_EMALFORMED);
        if (n < RK_PROTO_HDR)
            continue;
        struct wire cut = w;
        cut.n = n;
        w_seal(&cut);
        assert_int_equal(decode_exact(cut.b, n, &m), boundary[n] ? 0 : RK_EMALFORMED);
    }
    assert_int_equal(decode_exact(w.b, w.n, &m), 0);
}

static void test_unknown_tags_skipped(void **state)
{
    (void)state;
    static const uint8_t junk[100] = {0xAA};
    uint8_t r = 3;
    struct wire w;
    w_hdr(&w, RK_PROTO_VERSION, RK_OP_GET, 31);
    w_field(&w, 0, junk, 0);
    w_field(&w, 200, junk, 100);
    w_field(&w, RK_TAG_KEY, "key", 3);
    w_field(&w, 99, junk, 3);
    w_field(&w, 200, junk, 7); /* an unknown tag may repeat: it is not ours to judge */
    w_field(&w, RK_TAG_R, &r, 1);
    w_field(&w, 255, junk, 1);
    w_seal(&w);
    struct rk_msg m;
    uint8_t *copy = malloc(w.n);
    assert_non_null(copy);
    memcpy(copy, w.b, w.n);
    assert_int_equal(rk_proto_decode(copy, w.n, &m), 0);
    assert_true(m.has_key && m.has_r);
    assert_false(m.has_val || m.has_text || m.has_version || m.has_ttl || m.has_expiry || m.has_w);
    assert_int_equal(m.klen, 3);
    assert_memory_equal(m.key, "key", 3);
    assert_int_equal(m.r, 3);
    /* Re-encoding drops them. */
    assert_int_equal(rk_proto_size(&m), RK_PROTO_HDR + 5 + 3 + 5 + 1);
    free(copy);
}

static void test_unknown_opcode_and_version(void **state)
{
    (void)state;
    const uint8_t ops[] = {0, 4, 15, 37, 128, 255};
    struct wire w;
    struct rk_msg m;
    for (size_t i = 0; i < sizeof(ops); i++) {
        w_hdr(&w, RK_PROTO_VERSION, ops[i], 0x1000 + (uint32_t)i);
        w_field(&w, RK_TAG_KEY, "k", 1);
        w_seal(&w);
        assert_int_equal(decode_exact(w.b, w.n, &m), RK_EUNSUPPORTED);
        assert_int_equal(m.opcode, ops[i]);
        assert_int_equal(m.id, 0x1000 + i);
        assert_false(m.has_key);
    }
    const uint8_t versions[] = {0, 2, 255};
    for (size_t i = 0; i < sizeof(versions); i++) {
        w_hdr(&w, versions[i], RK_OP_GET, 0x2000 + (uint32_t)i);
        w_field(&w, RK_TAG_KEY, "k", 1);
        w_seal(&w);
        assert_int_equal(decode_exact(w.b, w.n, &m), RK_EUNSUPPORTED);
        assert_int_equal(m.opcode, RK_OP_GET);
        assert_int_equal(m.id, 0x2000 + i);
        /* Another version may frame its body differently: body_len is not judged. */
        put_le(w.b + 12, 12345, 4);
        assert_int_equal(decode_exact(w.b, w.n, &m), RK_EUNSUPPORTED);
        assert_int_equal(m.id, 0x2000 + i);
    }
}

static void test_encode_refuses_oversized_body(void **state)
{
    (void)state;
    struct rk_msg m = {.opcode = RK_OP_PUT, .has_key = true, .klen = UINT32_MAX - 5};
    if (SIZE_MAX > UINT32_MAX)
        assert_int_equal(rk_proto_size(&m), (size_t)RK_PROTO_HDR + UINT32_MAX);
    m.klen = UINT32_MAX - 4; /* body one byte over */
    assert_int_equal(rk_proto_size(&m), 0);
    m.has_val = true;
    m.klen = m.vlen = UINT32_MAX;
    assert_int_equal(rk_proto_size(&m), 0);
    uint8_t buf[RK_PROTO_HDR] = {0x5A};
    assert_int_equal(rk_proto_encode(&m, buf), 0);
    assert_int_equal(buf[0], 0x5A); /* nothing written */
}

static const struct {
    int err;
    enum rk_status st;
    const char *name;
} status_map[] = {
    {0, RK_ST_OK, "OK"},
    {RK_ENOTFOUND, RK_ST_NOT_FOUND, "NOT_FOUND"},
    {RK_EMALFORMED, RK_ST_MALFORMED, "MALFORMED"},
    {RK_EUNSUPPORTED, RK_ST_UNSUPPORTED, "UNSUPPORTED"},
    {RK_EBUSY, RK_ST_BUSY, "BUSY"},
    {RK_ETOOLARGE, RK_ST_TOO_LARGE, "TOO_LARGE"},
    {RK_ENOSPACE, RK_ST_NO_SPACE, "NO_SPACE"},
    {RK_EREADONLY, RK_ST_READONLY, "READONLY"},
    {RK_ESTALE, RK_ST_STALE, "STALE"},
    {RK_EQUORUM, RK_ST_QUORUM, "QUORUM"},
    {RK_ETIMEDOUT, RK_ST_TIMEOUT, "TIMEOUT"},
    {-EIO, RK_ST_INTERNAL, "INTERNAL"},
    {-ESHUTDOWN, RK_ST_UNAVAILABLE, "UNAVAILABLE"},
    {RK_EREFUSED, RK_ST_REFUSED, "REFUSED"},
    {RK_ERATELIMITED, RK_ST_RATE_LIMITED, "RATE_LIMITED"},
};

static void test_status_mapping(void **state)
{
    (void)state;
    size_t n = sizeof(status_map) / sizeof(status_map[0]);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rk_proto_status(status_map[i].err), status_map[i].st);
        assert_int_equal(rk_proto_error(status_map[i].st), status_map[i].err);
        assert_string_equal(rk_proto_status_name(status_map[i].st), status_map[i].name);
        assert_int_equal(rk_proto_status(rk_proto_error(status_map[i].st)), status_map[i].st);
    }
    /* Errors without a status of their own are INTERNAL. */
    const int other[] = {RK_ECORRUPT, RK_ELOCKED, RK_EINVAL, RK_ELAST, -ENOMEM, -EINVAL, 1};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(rk_proto_status(other[i]), RK_ST_INTERNAL);
    /* A status from a newer peer. */
    assert_int_equal(rk_proto_error((enum rk_status)RK_ST_COUNT), -EIO);
    assert_int_equal(rk_proto_error((enum rk_status)0xFFFF), -EIO);
    assert_string_equal(rk_proto_status_name((enum rk_status)RK_ST_COUNT), "UNKNOWN");
    assert_string_equal(rk_proto_status_name((enum rk_status)0xFFFF), "UNKNOWN");
    assert_string_equal(rk_proto_status_name((enum rk_status) - 1), "UNKNOWN");
}

/* One table serves names and advice: every status this version knows has
 * both, and an unknown one gets the defaults from both. */
static void test_status_table_complete(void **state)
{
    (void)state;
    for (unsigned st = 0; st < RK_ST_COUNT; st++) {
        assert_string_not_equal(rk_proto_status_name((enum rk_status)st), "UNKNOWN");
        const char *advice = rk_proto_status_advice((enum rk_status)st);
        assert_string_not_equal(advice, "unexpected status");
        assert_null(strchr(advice, '\n'));
    }
    assert_string_equal(rk_proto_status_advice(RK_ST_QUORUM),
                        "quorum not met; check that enough replicas are up");
    assert_string_equal(rk_proto_status_name((enum rk_status)RK_ST_COUNT), "UNKNOWN");
    assert_string_equal(rk_proto_status_advice((enum rk_status)RK_ST_COUNT), "unexpected status");
    assert_string_equal(rk_proto_status_advice((enum rk_status) - 1), "unexpected status");
}

/* Two frames written back to back read back in order, and every cut
 * short of the end is MALFORMED, never a frame past the buffer. */
static void test_batch_frames(void **state)
{
    (void)state;
    struct rk_msg a = {.opcode = RK_OP_RPUT,
                       .id = 1,
                       .key = bin_key,
                       .klen = sizeof(bin_key),
                       .has_key = true,
                       .val = bin_val,
                       .vlen = sizeof(bin_val),
                       .has_val = true,
                       .version = 42,
                       .has_version = true};
    struct rk_msg b = {.opcode = RK_OP_RGET, .id = 2, .key = bin_key, .klen = 3, .has_key = true};
    size_t na = rk_proto_frame_size(&a), nb = rk_proto_frame_size(&b);
    assert_int_equal(na, 4 + rk_proto_size(&a));
    uint8_t buf[512];
    assert_true(na + nb <= sizeof(buf));
    assert_int_equal(rk_proto_frame_put(buf, 0x80000011u, &a), na);
    assert_int_equal(rk_proto_frame_put(buf + na, 7, &b), nb);

    size_t off = 0, mlen;
    uint32_t rid;
    const uint8_t *msg;
    struct rk_msg d;
    assert_int_equal(rk_proto_frame_next(buf, na + nb, &off, &rid, &msg, &mlen), 1);
    assert_int_equal(rid, 0x80000011u);
    assert_int_equal(rk_proto_decode(msg, mlen, &d), 0);
    assert_int_equal(d.opcode, RK_OP_RPUT);
    assert_int_equal(d.version, 42);
    assert_memory_equal(d.val, bin_val, sizeof(bin_val));
    assert_int_equal(rk_proto_frame_next(buf, na + nb, &off, &rid, &msg, &mlen), 1);
    assert_int_equal(rid, 7);
    assert_int_equal(rk_proto_decode(msg, mlen, &d), 0);
    assert_int_equal(d.opcode, RK_OP_RGET);
    assert_int_equal(d.klen, 3);
    assert_int_equal(rk_proto_frame_next(buf, na + nb, &off, &rid, &msg, &mlen), 0);
    assert_int_equal(off, na + nb);

    for (size_t cut = 1; cut < nb; cut++) {
        off = 0;
        assert_int_equal(rk_proto_frame_next(buf, na + nb - cut, &off, &rid, &msg, &mlen), 1);
        assert_int_equal(rk_proto_frame_next(buf, na + nb - cut, &off, &rid, &msg, &mlen),
                         RK_EMALFORMED);
    }
}

/* rk_proto_msg_seal appends the AUTH field last and grows body_len; the
 * decoder takes it only as the last field of 48 bytes. */
static void test_auth_field_is_appended_last(void **state)
{
    (void)state;
    struct rk_auth_key k = {{1, 2, 3}};
    struct rk_msg m = {.opcode = RK_OP_RPUT,
                       .id = 9,
                       .key = (const uint8_t *)"k",
                       .klen = 1,
                       .has_key = true,
                       .version = 5,
                       .has_version = true},
                  d;
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    assert_int_equal(rk_proto_msg_encode(msg, &m), 0);
    size_t plain = nng_msg_len(msg);
    assert_int_equal(rk_proto_msg_seal(msg, &k, 1800000000000ull), 0);
    uint8_t *b = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    assert_int_equal(len, plain + 5 + RK_AUTH_TRAILER);
    assert_int_equal(rk_proto_decode(b, len, &d), 0);
    assert_true(d.has_auth && d.has_key && d.has_version);
    assert_ptr_equal(d.auth, b + len - RK_AUTH_TRAILER);
    assert_int_equal(rk_auth_check_mac(&k, b, len, 1800000000000ull, 1000), RK_AUTH_OK);
    /* Sealing twice would leave the first AUTH field inside: malformed. */
    assert_int_equal(rk_proto_msg_seal(msg, &k, 1800000000000ull), 0);
    assert_int_equal(rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &d), RK_EMALFORMED);
    nng_msg_free(msg);
    /* An AUTH field of another length is malformed too. */
    uint8_t buf[64];
    struct rk_msg e = {
        .opcode = RK_OP_GET, .key = (const uint8_t *)"k", .klen = 1, .has_key = true};
    size_t n = rk_proto_encode(&e, buf);
    buf[n] = RK_TAG_AUTH, buf[n + 1] = 4, buf[n + 2] = buf[n + 3] = buf[n + 4] = 0;
    memset(buf + n + 5, 0, 4);
    buf[12] = (uint8_t)(n + 9 - RK_PROTO_HDR);
    assert_int_equal(rk_proto_decode(buf, n + 9, &d), RK_EMALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_opcode_and_field_set),
        cmocka_unit_test(test_binary_key_and_empty_value),
        cmocka_unit_test(test_reply_with_status_and_text),
        cmocka_unit_test(test_wire_header_is_little_endian),
        cmocka_unit_test(test_short_header),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_body_len_mismatch),
        cmocka_unit_test(test_len_over_4gib_not_truncated),
        cmocka_unit_test(test_field_past_end),
        cmocka_unit_test(test_repeated_tag),
        cmocka_unit_test(test_bad_integer_size),
        cmocka_unit_test(test_truncated_at_every_offset),
        cmocka_unit_test(test_unknown_tags_skipped),
        cmocka_unit_test(test_unknown_opcode_and_version),
        cmocka_unit_test(test_encode_refuses_oversized_body),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_status_table_complete),
        cmocka_unit_test(test_batch_frames),
        cmocka_unit_test(test_auth_field_is_appended_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

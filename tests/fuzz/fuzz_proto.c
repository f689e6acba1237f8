/* Fuzz target for the wire decoder: any input must decode without a crash
 * or an out-of-bounds read, and whatever decodes must survive a round trip:
 * encode, decode again, and get the same message field for field; encoding
 * that again must give the same bytes. */
#include "fuzz.h"
#include "proto/proto.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

static bool same_bytes(bool has, const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
    if (!has)
        return a == NULL && b == NULL && alen == 0 && blen == 0;
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Every field of two decoded messages agrees (byte fields by content). */
static bool same_msg(const struct rk_msg *a, const struct rk_msg *b)
{
    return a->opcode == b->opcode && a->flags == b->flags && a->status == b->status &&
           a->id == b->id && a->has_key == b->has_key && a->has_val == b->has_val &&
           a->has_text == b->has_text && a->has_version == b->has_version &&
           a->has_ttl == b->has_ttl && a->has_expiry == b->has_expiry && a->has_r == b->has_r &&
           a->has_w == b->has_w && same_bytes(a->has_key, a->key, a->klen, b->key, b->klen) &&
           same_bytes(a->has_val, a->val, a->vlen, b->val, b->vlen) &&
           same_bytes(a->has_text, a->text, a->tlen, b->text, b->tlen) &&
           a->version == b->version && a->ttl_ms == b->ttl_ms && a->expiry_ms == b->expiry_ms &&
           a->r == b->r && a->w == b->w;
}

/* Byte fields of a decoded message lie inside the decoded buffer. */
static bool inside(const struct rk_msg *m, const uint8_t *buf, size_t len)
{
    const uint8_t *end = buf + len;
    return (!m->has_key || (m->key >= buf && m->klen <= (size_t)(end - m->key))) &&
           (!m->has_val || (m->val >= buf && m->vlen <= (size_t)(end - m->val))) &&
           (!m->has_text || (m->text >= buf && m->tlen <= (size_t)(end - m->text)));
}

/* What decode reports about the header when it fails: only what it read. */
static void check_failure(const uint8_t *data, size_t size, int rc, const struct rk_msg *m)
{
    CHECK(rc == RK_EMALFORMED || rc == RK_EUNSUPPORTED);
    CHECK(!m->has_key && !m->has_val && !m->has_text && !m->has_version && !m->has_ttl &&
          !m->has_expiry && !m->has_r && !m->has_w);
    if (size < RK_PROTO_HDR || data[0] != 0x52 || data[1] != 0x4B) {
        CHECK(rc == RK_EMALFORMED && m->opcode == 0 && m->id == 0);
        return;
    }
    uint32_t id = (uint32_t)data[8] | (uint32_t)data[9] << 8 | (uint32_t)data[10] << 16 |
                  (uint32_t)data[11] << 24;
    CHECK(m->opcode == data[3] && m->id == id);
}

/* Frames of an RBATCH lie inside its value, each starts where the last
 * ended, and each message decodes or fails cleanly. */
static void check_frames(const uint8_t *buf, size_t len)
{
    size_t off = 0, prev = 0;
    uint32_t rid;
    const uint8_t *msg;
    size_t mlen;
    int rc;
    while ((rc = rk_proto_frame_next(buf, len, &off, &rid, &msg, &mlen)) == 1) {
        CHECK(msg == buf + prev + 4 && mlen >= RK_PROTO_HDR && off == prev + 4 + mlen &&
              off <= len);
        struct rk_msg f;
        if (rk_proto_decode(msg, mlen, &f) == 0)
            CHECK(inside(&f, msg, mlen));
        prev = off;
    }
    CHECK(rc == 0 ? off == len : rc == RK_EMALFORMED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rk_msg a, b;
    int rc = rk_proto_decode(data, size, &a);
    if (rc < 0) {
        check_failure(data, size, rc, &a);
        return 0;
    }
    CHECK(rc == 0 && inside(&a, data, size));
    if (a.opcode == RK_OP_RBATCH && a.has_val)
        check_frames(a.val, a.vlen);

    /* Unknown fields are dropped, known ones keep their size: never longer. */
    size_t n = rk_proto_size(&a);
    CHECK(n >= RK_PROTO_HDR && n <= size);
    uint8_t *enc = malloc(n), *enc2 = malloc(n);
    CHECK(enc && enc2);
    CHECK(rk_proto_encode(&a, enc) == n);
    CHECK(rk_proto_decode(enc, n, &b) == 0);
    CHECK(inside(&b, enc, n));
    CHECK(same_msg(&a, &b));
    CHECK(rk_proto_size(&b) == n && rk_proto_encode(&b, enc2) == n);
    CHECK(memcmp(enc, enc2, n) == 0);
    free(enc2);
    free(enc);
    return 0;
}

/* A PUT request carrying every field, binary key and value included. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    static const uint8_t key[] = {'u', 's', 'e', 'r', 0, ':', 0x01, 0xFF};
    static const char val[] = "{\"name\":\"ada\",\"n\":1}";
    static const char text[] = "hello";
    struct rk_msg m = {
        .opcode = RK_OP_PUT,
        .flags = 0,
        .id = 0x01020304u,
        .key = key,
        .klen = sizeof(key),
        .val = (const uint8_t *)val,
        .vlen = sizeof(val), /* with its NUL */
        .text = (const uint8_t *)text,
        .tlen = sizeof(text) - 1,
        .version = 0x0102030405060708ull,
        .ttl_ms = 60000,
        .expiry_ms = 1767225600000ull,
        .r = 2,
        .w = 3,
        .has_key = true,
        .has_val = true,
        .has_text = true,
        .has_version = true,
        .has_ttl = true,
        .has_expiry = true,
        .has_r = true,
        .has_w = true,
    };
    size_t n = rk_proto_size(&m);
    uint8_t *buf = malloc(n);
    if (!buf)
        return NULL;
    *len = rk_proto_encode(&m, buf);
    return buf;
}

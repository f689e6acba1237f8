/* Fuzz target for the wire decoder: any input must decode without a crash
 * or an out-of-bounds read, and whatever decodes must survive a round trip:
 * encode, decode again, and get the same message field for field; encoding
 * that again must give the same bytes. Batch frames (RBATCH, client and
 * peer side alike: rk_proto_frame_next) tile the value or fail cleanly. */
#include "fuzz.h"
#include "proto/proto.h"
#include "util/auth.h"
#include "util/le.h"
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
           a->r == b->r && a->w == b->w && a->has_force == b->has_force &&
           a->has_tombstone == b->has_tombstone && a->has_trace == b->has_trace &&
           a->has_hint == b->has_hint && a->has_retry == b->has_retry && a->force == b->force &&
           a->tombstone == b->tombstone && a->trace == b->trace && a->retry_ms == b->retry_ms &&
           same_bytes(a->has_hint, a->hint, a->hlen, b->hint, b->hlen);
}

/* Byte fields of a decoded message lie inside the decoded buffer. */
static bool inside(const struct rk_msg *m, const uint8_t *buf, size_t len)
{
    const uint8_t *end = buf + len;
    return (!m->has_key || (m->key >= buf && m->klen <= (size_t)(end - m->key))) &&
           (!m->has_val || (m->val >= buf && m->vlen <= (size_t)(end - m->val))) &&
           (!m->has_text || (m->text >= buf && m->tlen <= (size_t)(end - m->text))) &&
           (!m->has_hint || (m->hint >= buf && m->hlen <= (size_t)(end - m->hint)));
}

/* What decode reports about the header when it fails: only what it read. */
static void check_failure(const uint8_t *data, size_t size, int rc, const struct rk_msg *m)
{
    CHECK(rc == RK_EMALFORMED || rc == RK_EUNSUPPORTED);
    CHECK(!m->has_key && !m->has_val && !m->has_text && !m->has_version && !m->has_ttl &&
          !m->has_expiry && !m->has_r && !m->has_w && !m->has_force && !m->has_tombstone &&
          !m->has_trace && !m->has_hint && !m->has_retry);
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

/* The cluster secret's trailer (util/auth.h) on an encoded message enc:
 * the sealed message decodes with AUTH last and verifies, and with any one
 * byte changed (which: pick) either fails to decode or fails the MAC. */
static const struct rk_auth_key fuzz_key = {{0x52, 0x4b, 1, 2, 3}};
#define FUZZ_NOW_MS 1800000000000ull
#define AUTH_FIELD  (5u + RK_AUTH_TRAILER)

static void seal_into(uint8_t *out, const uint8_t *enc, size_t n)
{
    memcpy(out, enc, n);
    out[n] = RK_TAG_AUTH;
    rk_le_put32(out + n + 1, RK_AUTH_TRAILER);
    rk_le_put32(out + 12, rk_le_get32(out + 12) + AUTH_FIELD);
    rk_auth_seal(&fuzz_key, out, n + AUTH_FIELD, FUZZ_NOW_MS);
}

static void check_sealed(const uint8_t *enc, size_t n, uint8_t pick)
{
    if (rk_le_get32(enc + 12) > UINT32_MAX - AUTH_FIELD)
        return;
    uint8_t *s = malloc(n + AUTH_FIELD);
    CHECK(s);
    seal_into(s, enc, n);
    struct rk_msg m;
    CHECK(rk_proto_decode(s, n + AUTH_FIELD, &m) == 0 && m.has_auth);
    CHECK(rk_auth_check_mac(&fuzz_key, s, n + AUTH_FIELD, FUZZ_NOW_MS, 1000) == RK_AUTH_OK);
    size_t i = (size_t)pick * (n + AUTH_FIELD) / 256;
    s[i] ^= 0x01;
    CHECK(rk_proto_decode(s, n + AUTH_FIELD, &m) != 0 ||
          rk_auth_check_mac(&fuzz_key, s, n + AUTH_FIELD, FUZZ_NOW_MS, 1000) != RK_AUTH_OK);
    free(s);
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
    if (a.has_auth)
        CHECK(a.auth == data + size - RK_AUTH_TRAILER);
    check_sealed(enc, n, size ? data[0] : 0);
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

static void put_msg(rk_fuzz_put_fn *put, const char *name, const struct rk_msg *m)
{
    size_t n = rk_proto_size(m);
    uint8_t *buf = malloc(n);
    if (buf && rk_proto_encode(m, buf) == n)
        put(name, buf, n);
    free(buf);
}

/* An RBATCH of an RPUT (to a fallback, with its hint) and an RGET, or the
 * reply of both: the frames of a peer batch. */
static void put_batch(rk_fuzz_put_fn *put, const char *name, bool reply)
{
    static const uint8_t key[] = "user:42";
    static const uint8_t val[] = "{\"n\":1}";
    static const uint8_t hint[] = "node-3";
    struct rk_msg f[2] = {
        {.opcode = RK_OP_RPUT,
         .id = 1,
         .key = key,
         .klen = 7,
         .val = val,
         .vlen = 7,
         .hint = hint,
         .hlen = 6,
         .version = 99,
         .has_key = true,
         .has_val = true,
         .has_hint = true,
         .has_version = true},
        {.opcode = RK_OP_RGET, .id = 2, .key = key, .klen = 7, .has_key = true},
    };
    if (reply) {
        f[0] = (struct rk_msg){.opcode = RK_OP_RPUT, .flags = RK_MSG_REPLY, .id = 1};
        f[1] = (struct rk_msg){.opcode = RK_OP_RGET,
                               .flags = RK_MSG_REPLY,
                               .id = 2,
                               .version = 98,
                               .tombstone = 1,
                               .has_version = true,
                               .has_tombstone = true};
    }
    uint8_t frames[512];
    size_t n = 0;
    for (uint32_t i = 0; i < 2; i++)
        n += rk_proto_frame_put(frames + n, 100 + i, &f[i]);
    struct rk_msg b = {.opcode = RK_OP_RBATCH,
                       .flags = reply ? RK_MSG_REPLY : 0,
                       .id = 7,
                       .val = frames,
                       .vlen = (uint32_t)n,
                       .has_val = true};
    put_msg(put, name, &b);
}

/* The seed, a client GET with R and trace, a NOT_FOUND reply with text,
 * a RATE_LIMITED reply, a forced REMOVE, and both sides of a batch. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    size_t len;
    uint8_t *seed = rk_fuzz_seed(&len);
    if (seed)
        put("put-every-field", seed, len);
    free(seed);
    static const uint8_t key[] = "k1", text[] = "not found", node[] = "node-2";
    put_msg(put, "get-trace",
            &(struct rk_msg){.opcode = RK_OP_GET,
                             .id = 5,
                             .key = key,
                             .klen = 2,
                             .r = 2,
                             .trace = 1,
                             .has_key = true,
                             .has_r = true,
                             .has_trace = true});
    put_msg(put, "reply-not-found",
            &(struct rk_msg){.opcode = RK_OP_GET,
                             .flags = RK_MSG_REPLY,
                             .status = RK_ST_NOT_FOUND,
                             .id = 5,
                             .text = text,
                             .tlen = 9,
                             .has_text = true});
    put_msg(put, "reply-rate-limited",
            &(struct rk_msg){.opcode = RK_OP_PUT,
                             .flags = RK_MSG_REPLY,
                             .status = RK_ST_RATE_LIMITED,
                             .id = 6,
                             .retry_ms = 250,
                             .has_retry = true});
    put_msg(put, "remove-force",
            &(struct rk_msg){.opcode = RK_OP_REMOVE,
                             .id = 8,
                             .text = node,
                             .tlen = 6,
                             .force = 1,
                             .has_text = true,
                             .has_force = true});
    put_batch(put, "rbatch-request", false);
    put_batch(put, "rbatch-reply", true);
    /* A peer's write signed with the cluster secret. */
    static const uint8_t val[] = "v";
    struct rk_msg rput = {.opcode = RK_OP_RPUT,
                          .id = 9,
                          .key = key,
                          .klen = 2,
                          .val = val,
                          .vlen = 1,
                          .version = 77,
                          .has_key = true,
                          .has_val = true,
                          .has_version = true};
    uint8_t enc[64], sealed[64 + AUTH_FIELD];
    size_t n = rk_proto_encode(&rput, enc);
    seal_into(sealed, enc, n);
    put("rput-signed", sealed, n + AUTH_FIELD);
}

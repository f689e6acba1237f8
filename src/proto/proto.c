/* Wire codec for protocol version 1; the format is specified in proto.h.
 * Pure functions on caller-owned buffers: no allocation, no I/O, no global
 * state, so any thread may call them. The decoder faces the network and is
 * fuzzed: every length is checked against the bytes that remain before it is
 * used, and offsets only ever shrink what remains, so nothing can overflow
 * even for a 4 GiB message. */
#include "proto/proto.h"
#include "util/auth.h"
#include "util/le.h"

#include "util/err.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* A field's frame: tag u8 + len u32, then len bytes of data. */
#define FIELD_HDR 5u

/* Integer sizes on the wire: u64 fields, and R/W as one byte (a replica
 * count never exceeds 255). */
#define U64_LEN 8u
#define U8_LEN  1u

static_assert(sizeof(((struct rk_msg *)0)->klen) == 4, "field lengths are u32 on the wire");

static bool known_op(unsigned op)
{
    switch (op) {
    case RK_OP_PUT:
    case RK_OP_GET:
    case RK_OP_DEL:
    case RK_OP_STATUS:
    case RK_OP_STATS:
    case RK_OP_HEALTH:
    case RK_OP_READY:
    case RK_OP_ECHO:
    case RK_OP_MEMBERS:
    case RK_OP_JOIN:
    case RK_OP_LEAVE:
    case RK_OP_REMOVE:
    case RK_OP_LOCATE:
    case RK_OP_RING:
    case RK_OP_AE:
    case RK_OP_REPAIR:
    case RK_OP_PARTS:
    case RK_OP_TRANSFERS:
    case RK_OP_OVERVIEW:
    case RK_OP_RPUT:
    case RK_OP_RGET:
    case RK_OP_RBATCH:
    case RK_OP_AE_ROOT:
    case RK_OP_AE_KEYS:
        return true;
    default:
        return false;
    }
}

/* The take_* helpers store one known field: RK_EMALFORMED if the tag was
 * already seen or the size is wrong for its type. */
static int take_bytes(bool *has, const uint8_t **ptr, uint32_t *len, const uint8_t *d, uint32_t n)
{
    if (*has)
        return RK_EMALFORMED;
    *has = true;
    *ptr = d;
    *len = n;
    return 0;
}

static int take_u64(bool *has, uint64_t *v, const uint8_t *d, uint32_t n)
{
    if (*has || n != U64_LEN)
        return RK_EMALFORMED;
    *has = true;
    *v = rk_le_get64(d);
    return 0;
}

static int take_u8(bool *has, uint8_t *v, const uint8_t *d, uint32_t n)
{
    if (*has || n != U8_LEN)
        return RK_EMALFORMED;
    *has = true;
    *v = d[0];
    return 0;
}

static int take_field(struct rk_msg *m, unsigned tag, const uint8_t *d, uint32_t n)
{
    switch (tag) {
    case RK_TAG_KEY:
        return take_bytes(&m->has_key, &m->key, &m->klen, d, n);
    case RK_TAG_VALUE:
        return take_bytes(&m->has_val, &m->val, &m->vlen, d, n);
    case RK_TAG_HINT:
        return take_bytes(&m->has_hint, &m->hint, &m->hlen, d, n);
    case RK_TAG_TEXT:
        return take_bytes(&m->has_text, &m->text, &m->tlen, d, n);
    case RK_TAG_VERSION:
        return take_u64(&m->has_version, &m->version, d, n);
    case RK_TAG_TTL_MS:
        return take_u64(&m->has_ttl, &m->ttl_ms, d, n);
    case RK_TAG_EXPIRY_MS:
        return take_u64(&m->has_expiry, &m->expiry_ms, d, n);
    case RK_TAG_RETRY_MS:
        return take_u64(&m->has_retry, &m->retry_ms, d, n);
    case RK_TAG_R:
        return take_u8(&m->has_r, &m->r, d, n);
    case RK_TAG_W:
        return take_u8(&m->has_w, &m->w, d, n);
    case RK_TAG_FORCE:
        return take_u8(&m->has_force, &m->force, d, n);
    case RK_TAG_TOMBSTONE:
        return take_u8(&m->has_tombstone, &m->tombstone, d, n);
    case RK_TAG_TRACE:
        return take_u8(&m->has_trace, &m->trace, d, n);
    default:
        return 0; /* unknown: skipped, a newer peer may send fields we lack */
    }
}

/* Walks the body. `left` is what remains after p, so each check compares a
 * length read from the wire against it and nothing is ever added to p
 * before that check passes. */
static int decode_fields(struct rk_msg *m, const uint8_t *p, size_t left)
{
    while (left > 0) {
        if (left < FIELD_HDR)
            return RK_EMALFORMED;
        unsigned tag = p[0];
        uint32_t n = rk_le_get32(p + 1);
        p += FIELD_HDR;
        left -= FIELD_HDR;
        if (n > left)
            return RK_EMALFORMED;
        if (tag == RK_TAG_AUTH) { /* the trailer: its MAC covers all before it */
            if (n != RK_AUTH_TRAILER || n != left)
                return RK_EMALFORMED;
            m->auth = p;
            m->has_auth = true;
            return 0;
        }
        int rc = take_field(m, tag, p, n);
        if (rc < 0)
            return rc;
        p += n;
        left -= n;
    }
    return 0;
}

int rk_proto_decode(const void *buf, size_t len, struct rk_msg *m)
{
    const uint8_t *p = buf;

    memset(m, 0, sizeof(*m));
    if (len < RK_PROTO_HDR || rk_le_get16(p) != RK_PROTO_MAGIC)
        return RK_EMALFORMED;
    m->opcode = p[3];
    m->flags = rk_le_get16(p + 4);
    m->status = rk_le_get16(p + 6);
    m->id = rk_le_get32(p + 8);
    /* Version first: another version may frame its body differently. */
    if (p[2] != RK_PROTO_VERSION)
        return RK_EUNSUPPORTED;
    /* len - RK_PROTO_HDR cannot wrap (checked above); a len beyond 4 GiB + 16
     * can never match a u32 body_len. */
    if ((size_t)rk_le_get32(p + 12) != len - RK_PROTO_HDR)
        return RK_EMALFORMED;
    if (!known_op(m->opcode))
        return RK_EUNSUPPORTED;
    int rc = decode_fields(m, p + RK_PROTO_HDR, len - RK_PROTO_HDR);
    if (rc < 0) {
        /* Leave only the header: no half-decoded fields for a caller to trust. */
        struct rk_msg h = {
            .opcode = m->opcode, .flags = m->flags, .status = m->status, .id = m->id};
        *m = h;
    }
    return rc;
}

static uint64_t field_size(bool has, uint64_t n)
{
    return has ? FIELD_HDR + n : 0;
}

/* Body bytes in 64 bits: three fields of up to 4 GiB each cannot wrap it. */
static uint64_t body_size(const struct rk_msg *m)
{
    return field_size(m->has_key, m->klen) + field_size(m->has_val, m->vlen) +
           field_size(m->has_version, U64_LEN) + field_size(m->has_ttl, U64_LEN) +
           field_size(m->has_expiry, U64_LEN) + field_size(m->has_text, m->tlen) +
           field_size(m->has_hint, m->hlen) + field_size(m->has_r, U8_LEN) +
           field_size(m->has_w, U8_LEN) + field_size(m->has_force, U8_LEN) +
           field_size(m->has_tombstone, U8_LEN) + field_size(m->has_trace, U8_LEN) +
           field_size(m->has_retry, U64_LEN);
}

size_t rk_proto_size(const struct rk_msg *m)
{
    uint64_t body = body_size(m);

    /* body_len is a u32; and the whole message must be addressable. */
    if (body > UINT32_MAX || body > (uint64_t)(SIZE_MAX - RK_PROTO_HDR))
        return 0;
    return RK_PROTO_HDR + (size_t)body;
}

static uint8_t *put_bytes(uint8_t *p, unsigned tag, const uint8_t *d, uint32_t n)
{
    p[0] = (uint8_t)tag;
    rk_le_put32(p + 1, n);
    if (n > 0) /* d may be NULL for an empty field */
        memcpy(p + FIELD_HDR, d, n);
    return p + FIELD_HDR + n;
}

static uint8_t *put_u64(uint8_t *p, unsigned tag, uint64_t v)
{
    p[0] = (uint8_t)tag;
    rk_le_put32(p + 1, U64_LEN);
    rk_le_put64(p + FIELD_HDR, v);
    return p + FIELD_HDR + U64_LEN;
}

static uint8_t *put_u8(uint8_t *p, unsigned tag, uint8_t v)
{
    p[0] = (uint8_t)tag;
    rk_le_put32(p + 1, U8_LEN);
    p[FIELD_HDR] = v;
    return p + FIELD_HDR + U8_LEN;
}

size_t rk_proto_encode(const struct rk_msg *m, void *buf)
{
    size_t size = rk_proto_size(m);
    uint8_t *p = buf;

    if (size == 0)
        return 0;
    rk_le_put16(p, RK_PROTO_MAGIC);
    p[2] = RK_PROTO_VERSION;
    p[3] = m->opcode;
    rk_le_put16(p + 4, m->flags);
    rk_le_put16(p + 6, m->status);
    rk_le_put32(p + 8, m->id);
    rk_le_put32(p + 12, (uint32_t)(size - RK_PROTO_HDR));
    p += RK_PROTO_HDR;
    /* In tag order, so equal messages encode to equal bytes. */
    if (m->has_key)
        p = put_bytes(p, RK_TAG_KEY, m->key, m->klen);
    if (m->has_val)
        p = put_bytes(p, RK_TAG_VALUE, m->val, m->vlen);
    if (m->has_version)
        p = put_u64(p, RK_TAG_VERSION, m->version);
    if (m->has_ttl)
        p = put_u64(p, RK_TAG_TTL_MS, m->ttl_ms);
    if (m->has_expiry)
        p = put_u64(p, RK_TAG_EXPIRY_MS, m->expiry_ms);
    if (m->has_text)
        p = put_bytes(p, RK_TAG_TEXT, m->text, m->tlen);
    if (m->has_hint)
        p = put_bytes(p, RK_TAG_HINT, m->hint, m->hlen);
    if (m->has_r)
        p = put_u8(p, RK_TAG_R, m->r);
    if (m->has_w)
        p = put_u8(p, RK_TAG_W, m->w);
    if (m->has_force)
        p = put_u8(p, RK_TAG_FORCE, m->force);
    if (m->has_tombstone)
        p = put_u8(p, RK_TAG_TOMBSTONE, m->tombstone);
    if (m->has_trace)
        p = put_u8(p, RK_TAG_TRACE, m->trace);
    if (m->has_retry)
        p = put_u64(p, RK_TAG_RETRY_MS, m->retry_ms);
    return size;
}

enum rk_status rk_proto_status(int err)
{
    switch (err) {
    case 0:
        return RK_ST_OK;
    case RK_ENOTFOUND:
        return RK_ST_NOT_FOUND;
    case RK_EMALFORMED:
        return RK_ST_MALFORMED;
    case RK_EUNSUPPORTED:
        return RK_ST_UNSUPPORTED;
    case RK_EBUSY:
        return RK_ST_BUSY;
    case RK_ETOOLARGE:
        return RK_ST_TOO_LARGE;
    case RK_ENOSPACE:
        return RK_ST_NO_SPACE;
    case RK_EREADONLY:
        return RK_ST_READONLY;
    case RK_ESTALE:
        return RK_ST_STALE;
    case RK_EQUORUM:
        return RK_ST_QUORUM;
    case RK_ETIMEDOUT:
        return RK_ST_TIMEOUT;
    case RK_EREFUSED:
        return RK_ST_REFUSED;
    case RK_ERATELIMITED:
        return RK_ST_RATE_LIMITED;
    case -ESHUTDOWN:
        return RK_ST_UNAVAILABLE;
    default:
        return RK_ST_INTERNAL;
    }
}

int rk_proto_error(enum rk_status st)
{
    switch (st) {
    case RK_ST_OK:
        return 0;
    case RK_ST_NOT_FOUND:
        return RK_ENOTFOUND;
    case RK_ST_MALFORMED:
        return RK_EMALFORMED;
    case RK_ST_UNSUPPORTED:
        return RK_EUNSUPPORTED;
    case RK_ST_BUSY:
        return RK_EBUSY;
    case RK_ST_TOO_LARGE:
        return RK_ETOOLARGE;
    case RK_ST_NO_SPACE:
        return RK_ENOSPACE;
    case RK_ST_READONLY:
        return RK_EREADONLY;
    case RK_ST_STALE:
        return RK_ESTALE;
    case RK_ST_QUORUM:
        return RK_EQUORUM;
    case RK_ST_TIMEOUT:
        return RK_ETIMEDOUT;
    case RK_ST_REFUSED:
        return RK_EREFUSED;
    case RK_ST_RATE_LIMITED:
        return RK_ERATELIMITED;
    case RK_ST_UNAVAILABLE:
        return -ESHUTDOWN;
    case RK_ST_INTERNAL:
    default: /* a status from a newer peer: a remote failure we cannot name */
        return -EIO;
    }
}

/* Each status's stable name and what it means for a user, in one table so
 * that a new status cannot get one without the other. The advice is what a
 * client shows when the node sent no TEXT of its own. */
static const struct status_info {
    const char *name, *advice;
} statuses[] = {
    [RK_ST_OK] = {"OK", "success"},
    [RK_ST_NOT_FOUND] = {"NOT_FOUND", "not found"},
    [RK_ST_MALFORMED] =
        {"MALFORMED", "the node could not parse the request (kvctl and ringkvd versions differ?)"},
    [RK_ST_UNSUPPORTED] = {"UNSUPPORTED",
                           "the node does not support this request (upgrade ringkvd?)"},
    [RK_ST_BUSY] = {"BUSY", "the node is overloaded (too many requests in flight); retry later"},
    [RK_ST_TOO_LARGE] = {"TOO_LARGE", "key or value over the node's size limit (max_key_size, "
                                      "max_value_size)"},
    [RK_ST_NO_SPACE] = {"NO_SPACE", "the node's disk is full; free space there"},
    [RK_ST_READONLY] = {"READONLY", "the node refuses writes after an I/O error; check its log"},
    [RK_ST_STALE] = {"STALE", "a newer version is already stored"},
    [RK_ST_QUORUM] = {"QUORUM", "quorum not met; check that enough replicas are up"},
    [RK_ST_TIMEOUT] = {"TIMEOUT",
                       "the node timed out waiting for replicas; check the other nodes, retry"},
    [RK_ST_INTERNAL] = {"INTERNAL", "internal error on the node; check its log"},
    [RK_ST_UNAVAILABLE] = {"UNAVAILABLE", "the node is not ready or is shutting down; retry later"},
    [RK_ST_REFUSED] = {"REFUSED", "the node refused the request and sent no reason; check its log"},
    [RK_ST_RATE_LIMITED] = {"RATE_LIMITED",
                            "this client is over the node's request rate (limits.client_rate); "
                            "slow down"},
};
static_assert(sizeof statuses / sizeof statuses[0] == RK_ST_COUNT,
              "every status needs a name and advice in statuses[]");

/* The table's entry for st; NULL for a status this version does not know.
 * Unsigned compare: a negative value cast into the enum is out of range too. */
static const struct status_info *status_info(enum rk_status st)
{
    if ((unsigned)st >= RK_ST_COUNT || statuses[st].name == NULL)
        return NULL;
    return &statuses[st];
}

const char *rk_proto_status_name(enum rk_status st)
{
    const struct status_info *si = status_info(st);
    return si != NULL ? si->name : "UNKNOWN";
}

const char *rk_proto_status_advice(enum rk_status st)
{
    const struct status_info *si = status_info(st);
    return si != NULL ? si->advice : "unexpected status";
}

size_t rk_proto_frame_size(const struct rk_msg *m)
{
    size_t n = rk_proto_size(m);
    return n ? 4 + n : 0;
}

size_t rk_proto_frame_put(uint8_t *dst, uint32_t rid, const struct rk_msg *m)
{
    rk_le_put32(dst, rid);
    size_t n = rk_proto_encode(m, dst + 4);
    return n ? 4 + n : 0;
}

int rk_proto_frame_next(const uint8_t *buf, size_t len, size_t *off, uint32_t *rid,
                        const uint8_t **msg, size_t *mlen)
{
    if (*off == len)
        return 0;
    size_t left = len - *off;
    const uint8_t *p = buf + *off;
    if (*off > len || left < 4 + RK_PROTO_HDR)
        return RK_EMALFORMED;
    uint64_t n = (uint64_t)RK_PROTO_HDR + rk_le_get32(p + 4 + 12);
    if (n > left - 4)
        return RK_EMALFORMED;
    *rid = rk_le_get32(p);
    *msg = p + 4;
    *mlen = (size_t)n;
    *off += 4 + (size_t)n;
    return 1;
}

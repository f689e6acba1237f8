/* Anti-entropy bodies (layout in aewire.h). Like proto.c: every length read
 * from the wire is compared with the bytes that remain before anything is
 * read past it, and the decoders accept exactly one encoding of a value,
 * so a decoded body re-encodes to the same bytes (the fuzz target checks). */
#include "proto/aewire.h"

#include "util/assert.h"
#include "util/err.h"
#include "util/le.h"

static_assert(RK_PROTO_HDR == 16, "rk_aew_wrap writes proto.h's header");

/* Common fixed header of both AE_KEYS bodies. */
static void put_keys_hdr(uint8_t *p, uint8_t flags, uint16_t part, uint16_t count,
                         const struct rk_aew_cursor *c)
{
    p[0] = RK_AEW_FORMAT;
    p[1] = flags;
    rk_le_put16(p + 2, part);
    rk_le_put16(p + 4, count);
    rk_le_put16(p + 6, c ? c->pos : 0);
    rk_le_put16(p + 8, c && c->has_key ? c->klen : 0);
    rk_le_put16(p + 10, 0);
}

size_t rk_aew_root_req_encode(uint8_t *dst, const struct rk_aew_root_req *r)
{
    dst[0] = RK_AEW_FORMAT;
    dst[1] = 0;
    rk_le_put16(dst + 2, r->partition);
    rk_le_put32(dst + 4, 0);
    rk_le_put64(dst + 8, r->root);
    for (unsigned m = 0; m < RK_AEW_MIDS; m++)
        rk_le_put64(dst + RK_AEW_ROOT_REP_HDR + 8 * m, r->mids[m]);
    return RK_AEW_ROOT_REQ_SIZE;
}

size_t rk_aew_root_rep_encode(uint8_t *dst, const struct rk_aew_root_rep *r)
{
    dst[0] = RK_AEW_FORMAT;
    dst[1] = 0;
    rk_le_put16(dst + 2, r->partition);
    rk_le_put32(dst + 4, r->mask);
    rk_le_put64(dst + 8, r->root);
    uint8_t *p = dst + RK_AEW_ROOT_REP_HDR;
    for (unsigned m = 0; m < RK_AEW_MIDS; m++) {
        if (!(r->mask & (1u << m)))
            continue;
        for (unsigned i = 0; i < RK_AEW_FANOUT; i++, p += 8)
            rk_le_put64(p, r->leaves[m][i]);
    }
    return (size_t)(p - dst);
}

size_t rk_aew_keys_req_size(const struct rk_aew_keys_req *r)
{
    return RK_AEW_KEYS_HDR + 2u * r->nleaves + (r->cur.has_key ? r->cur.klen : 0u);
}

size_t rk_aew_keys_req_encode(uint8_t *dst, const struct rk_aew_keys_req *r)
{
    RK_ASSERT(r->nleaves >= 1 && r->nleaves <= RK_AEW_LEAVES && r->cur.pos < r->nleaves);
    put_keys_hdr(dst, r->cur.has_key ? RK_AEW_CUR_KEY : 0, r->partition, r->nleaves, &r->cur);
    uint8_t *p = dst + RK_AEW_KEYS_HDR;
    for (unsigned i = 0; i < r->nleaves; i++, p += 2) {
        RK_ASSERT(r->leaves[i] < RK_AEW_LEAVES && (i == 0 || r->leaves[i] > r->leaves[i - 1]));
        rk_le_put16(p, r->leaves[i]);
    }
    if (r->cur.has_key && r->cur.klen > 0) {
        memcpy(p, r->cur.key, r->cur.klen);
        p += r->cur.klen;
    }
    return (size_t)(p - dst);
}

int rk_aew_root_req_decode(const uint8_t *body, size_t len, struct rk_aew_root_req *r)
{
    if (len != RK_AEW_ROOT_REQ_SIZE || body[0] != RK_AEW_FORMAT || body[1] != 0 ||
        rk_le_get32(body + 4) != 0)
        return RK_EMALFORMED;
    r->partition = rk_le_get16(body + 2);
    r->root = rk_le_get64(body + 8);
    for (unsigned m = 0; m < RK_AEW_MIDS; m++)
        r->mids[m] = rk_le_get64(body + RK_AEW_ROOT_REP_HDR + 8 * m);
    return 0;
}

int rk_aew_root_rep_decode(const uint8_t *body, size_t len, struct rk_aew_root_rep *r)
{
    if (len < RK_AEW_ROOT_REP_HDR || body[0] != RK_AEW_FORMAT || body[1] != 0)
        return RK_EMALFORMED;
    r->partition = rk_le_get16(body + 2);
    r->mask = rk_le_get32(body + 4);
    r->root = rk_le_get64(body + 8);
    /* The mask says how long the rest must be: 256 bytes per set bit. */
    size_t want = (size_t)__builtin_popcount(r->mask) * RK_AEW_FANOUT * 8;
    if (len - RK_AEW_ROOT_REP_HDR != want)
        return RK_EMALFORMED;
    const uint8_t *p = body + RK_AEW_ROOT_REP_HDR;
    for (unsigned m = 0; m < RK_AEW_MIDS; m++) {
        if (!(r->mask & (1u << m)))
            continue;
        for (unsigned i = 0; i < RK_AEW_FANOUT; i++, p += 8)
            r->leaves[m][i] = rk_le_get64(p);
    }
    return 0;
}

/* The fixed header shared by AE_KEYS request and reply: format, flags
 * within allowed, reserved zero, a cursor key only with its flag. */
static int get_keys_hdr(const uint8_t *body, size_t len, unsigned allowed, uint8_t *flags,
                        uint16_t *count, struct rk_aew_cursor *c)
{
    if (len < RK_AEW_KEYS_HDR || body[0] != RK_AEW_FORMAT || (body[1] & ~allowed) != 0 ||
        rk_le_get16(body + 10) != 0)
        return RK_EMALFORMED;
    *flags = body[1];
    *count = rk_le_get16(body + 4);
    c->pos = rk_le_get16(body + 6);
    c->klen = rk_le_get16(body + 8);
    c->has_key = (*flags & RK_AEW_CUR_KEY) != 0;
    c->key = NULL;
    if (!c->has_key && c->klen != 0)
        return RK_EMALFORMED;
    return 0;
}

int rk_aew_keys_req_decode(const uint8_t *body, size_t len, struct rk_aew_keys_req *r)
{
    uint8_t flags;
    int rc = get_keys_hdr(body, len, RK_AEW_CUR_KEY, &flags, &r->nleaves, &r->cur);
    if (rc < 0)
        return rc;
    r->partition = rk_le_get16(body + 2);
    if (r->nleaves == 0 || r->nleaves > RK_AEW_LEAVES || r->cur.pos >= r->nleaves)
        return RK_EMALFORMED;
    /* Both terms are at most 64 Ki + 2 Ki: no overflow in size_t. */
    if (len != RK_AEW_KEYS_HDR + 2u * r->nleaves + r->cur.klen)
        return RK_EMALFORMED;
    const uint8_t *p = body + RK_AEW_KEYS_HDR;
    for (unsigned i = 0; i < r->nleaves; i++, p += 2) {
        r->leaves[i] = rk_le_get16(p);
        if (r->leaves[i] >= RK_AEW_LEAVES || (i > 0 && r->leaves[i] <= r->leaves[i - 1]))
            return RK_EMALFORMED;
    }
    if (r->cur.has_key)
        r->cur.key = p;
    return 0;
}

/* Read the entry at p, of which left bytes remain: its size, or 0 when it
 * does not fit or breaks a rule. */
static size_t get_entry(const uint8_t *p, size_t left, struct rk_aew_entry *e)
{
    if (left < RK_AEW_ENTRY_HDR)
        return 0;
    e->leaf = rk_le_get16(p);
    e->klen = rk_le_get16(p + 2);
    uint8_t flags = p[4];
    e->version = rk_le_get64(p + 5);
    e->expiry_ms = rk_le_get64(p + 13);
    e->tombstone = (flags & RK_AEW_TOMBSTONE) != 0;
    e->key = p + RK_AEW_ENTRY_HDR;
    if ((flags & ~RK_AEW_TOMBSTONE) != 0 || e->leaf >= RK_AEW_LEAVES ||
        e->klen > left - RK_AEW_ENTRY_HDR)
        return 0;
    return RK_AEW_ENTRY_HDR + e->klen;
}

int rk_aew_keys_rep_decode(const uint8_t *body, size_t len, struct rk_aew_keys_rep *r)
{
    uint8_t flags;
    int rc = get_keys_hdr(body, len, RK_AEW_CUR_KEY | RK_AEW_DONE, &flags, &r->count, &r->cur);
    if (rc < 0)
        return rc;
    r->partition = rk_le_get16(body + 2);
    r->done = (flags & RK_AEW_DONE) != 0;
    if (len > RK_AEW_BODY_MAX || r->count > RK_AEW_MAX_ENTRIES ||
        (r->done && (r->cur.has_key || r->cur.pos != 0)) || r->cur.klen > len - RK_AEW_KEYS_HDR)
        return RK_EMALFORMED;
    /* The entries fill exactly what lies between the header and the
     * cursor key. */
    size_t left = len - RK_AEW_KEYS_HDR - r->cur.klen;
    const uint8_t *p = body + RK_AEW_KEYS_HDR;
    r->entries = p;
    r->entries_len = left;
    for (unsigned i = 0; i < r->count; i++) {
        struct rk_aew_entry e;
        size_t n = get_entry(p, left, &e);
        if (n == 0)
            return RK_EMALFORMED;
        p += n;
        left -= n;
    }
    if (left != 0)
        return RK_EMALFORMED;
    if (r->cur.has_key)
        r->cur.key = p;
    return 0;
}

int rk_aew_entry_next(const struct rk_aew_keys_rep *r, size_t *off, struct rk_aew_entry *e)
{
    if (*off >= r->entries_len)
        return 0;
    size_t n = get_entry(r->entries + *off, r->entries_len - *off, e);
    RK_ASSERT(n > 0); /* the decoder checked every entry */
    *off += n;
    return 1;
}

void rk_aew_keys_begin(struct rk_aew_keys_builder *b, uint8_t *buf, size_t cap, uint16_t partition,
                       uint16_t max_entries)
{
    RK_ASSERT(cap >= RK_AEW_KEYS_HDR + RK_AEW_ENTRY_HDR && cap <= RK_AEW_BODY_MAX);
    *b = (struct rk_aew_keys_builder){
        .buf = buf,
        .cap = cap,
        .len = RK_AEW_KEYS_HDR,
        .max =
            max_entries == 0 || max_entries > RK_AEW_MAX_ENTRIES ? RK_AEW_MAX_ENTRIES : max_entries,
        .partition = partition,
    };
}

int rk_aew_keys_add(struct rk_aew_keys_builder *b, const struct rk_aew_entry *e)
{
    RK_ASSERT(e->leaf < RK_AEW_LEAVES);
    uint16_t longest = e->klen > b->longest ? e->klen : b->longest;
    /* Room for the entry and a cursor of the longest key added. */
    if (b->count >= b->max || b->len + RK_AEW_ENTRY_HDR + e->klen + longest > b->cap)
        return RK_ETOOLARGE;
    uint8_t *p = b->buf + b->len;
    rk_le_put16(p, e->leaf);
    rk_le_put16(p + 2, e->klen);
    p[4] = e->tombstone ? RK_AEW_TOMBSTONE : 0;
    rk_le_put64(p + 5, e->version);
    rk_le_put64(p + 13, e->expiry_ms);
    if (e->klen > 0)
        memcpy(p + RK_AEW_ENTRY_HDR, e->key, e->klen);
    b->len += RK_AEW_ENTRY_HDR + e->klen;
    b->count++;
    b->longest = longest;
    return 0;
}

size_t rk_aew_keys_finish(struct rk_aew_keys_builder *b, bool done, const struct rk_aew_cursor *cur)
{
    bool has_key = !done && cur && cur->has_key;
    RK_ASSERT(done || cur != NULL);
    RK_ASSERT(!has_key || cur->klen <= b->longest);
    uint8_t flags = (uint8_t)((done ? RK_AEW_DONE : 0) | (has_key ? RK_AEW_CUR_KEY : 0));
    put_keys_hdr(b->buf, flags, b->partition, b->count, done ? NULL : cur);
    if (has_key && cur->klen > 0) {
        memcpy(b->buf + b->len, cur->key, cur->klen);
        b->len += cur->klen;
    }
    return b->len;
}

size_t rk_aew_wrap(uint8_t *msg, uint8_t opcode, uint16_t flags, uint16_t status, uint32_t id,
                   size_t body_len)
{
    RK_ASSERT(body_len <= RK_AEW_BODY_MAX);
    rk_le_put16(msg, RK_PROTO_MAGIC);
    msg[2] = RK_PROTO_VERSION;
    msg[3] = opcode;
    rk_le_put16(msg + 4, flags);
    rk_le_put16(msg + 6, status);
    rk_le_put32(msg + 8, id);
    rk_le_put32(msg + 12, (uint32_t)(5 + body_len));
    msg[RK_PROTO_HDR] = RK_TAG_VALUE;
    rk_le_put32(msg + RK_PROTO_HDR + 1, (uint32_t)body_len);
    return RK_AEW_PREFIX + body_len;
}

int rk_aew_body(const struct rk_msg *m, uint8_t op, bool reply, uint32_t id, const uint8_t **body,
                size_t *len)
{
    if (m->opcode != op || ((m->flags & RK_MSG_REPLY) != 0) != reply)
        return RK_EMALFORMED;
    if (reply && m->id != id)
        return RK_EMALFORMED;
    if (reply && m->status != RK_ST_OK)
        return rk_proto_error(m->status);
    if (!m->has_val || m->vlen > RK_AEW_BODY_MAX)
        return RK_EMALFORMED;
    *body = m->val;
    *len = m->vlen;
    return 0;
}

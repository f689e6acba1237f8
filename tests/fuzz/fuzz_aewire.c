/* Fuzz target for the anti-entropy bodies (aewire.h): the first byte picks
 * a decoder (AE_ROOT request or reply, AE_KEYS request or reply, or a
 * whole AE message through rk_proto_decode), the rest is its input. Any
 * input decodes without a crash or an out-of-bounds read, to MALFORMED or
 * to a body that encodes back to exactly the bytes it was read from. */
#include "fuzz.h"
#include "proto/aewire.h"
#include "util/err.h"

#include <string.h>

static uint8_t out[RK_AEW_MSG_MAX];

static void root_req(const uint8_t *d, size_t n)
{
    struct rk_aew_root_req r;
    if (rk_aew_root_req_decode(d, n, &r) < 0)
        return;
    CHECK(rk_aew_root_req_encode(out, &r) == n && memcmp(out, d, n) == 0);
}

static void root_rep(const uint8_t *d, size_t n)
{
    static struct rk_aew_root_rep r;
    if (rk_aew_root_rep_decode(d, n, &r) < 0)
        return;
    CHECK(rk_aew_root_rep_encode(out, &r) == n && memcmp(out, d, n) == 0);
}

static void keys_req(const uint8_t *d, size_t n)
{
    static struct rk_aew_keys_req r;
    if (rk_aew_keys_req_decode(d, n, &r) < 0)
        return;
    CHECK(r.cur.pos < r.nleaves && (!r.cur.has_key || r.cur.key + r.cur.klen == d + n));
    CHECK(rk_aew_keys_req_size(&r) == n);
    CHECK(rk_aew_keys_req_encode(out, &r) == n && memcmp(out, d, n) == 0);
}

/* Rebuilt entry by entry; the builder may refuse what it would not have
 * produced itself (it keeps room for a cursor of the longest key), and
 * then there is nothing to compare. */
static void keys_rep(const uint8_t *d, size_t n)
{
    struct rk_aew_keys_rep r;
    if (rk_aew_keys_rep_decode(d, n, &r) < 0)
        return;
    CHECK(r.count <= RK_AEW_MAX_ENTRIES && n <= RK_AEW_BODY_MAX);
    struct rk_aew_keys_builder b;
    rk_aew_keys_begin(&b, out, RK_AEW_BODY_MAX, r.partition, 0);
    struct rk_aew_entry e;
    size_t off = 0;
    unsigned seen = 0;
    bool fits = true;
    while (rk_aew_entry_next(&r, &off, &e) == 1) {
        CHECK(e.key >= d && e.key + e.klen <= d + n && e.leaf < RK_AEW_LEAVES);
        seen++;
        fits = fits && rk_aew_keys_add(&b, &e) == 0;
    }
    CHECK(seen == r.count);
    if (!fits || (r.cur.has_key && r.cur.klen > b.longest))
        return;
    CHECK(rk_aew_keys_finish(&b, r.done, &r.cur) == n && memcmp(out, d, n) == 0);
}

/* A whole message: if proto takes it as an AE reply, the body is one of
 * the two reply kinds or malformed. */
static void message(const uint8_t *d, size_t n)
{
    struct rk_msg m;
    if (rk_proto_decode(d, n, &m) < 0)
        return;
    const uint8_t *body;
    size_t len;
    if (rk_aew_body(&m, RK_OP_AE_ROOT, true, m.id, &body, &len) == 0)
        root_rep(body, len);
    if (rk_aew_body(&m, RK_OP_AE_KEYS, true, m.id, &body, &len) == 0)
        keys_rep(body, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const fns[])(const uint8_t *, size_t) = {root_req, root_rep, keys_req, keys_rep,
                                                           message};
    if (size == 0)
        return 0;
    fns[data[0] % (sizeof fns / sizeof fns[0])](data + 1, size - 1);
    return 0;
}

/* An AE_KEYS reply of two entries in two leaves and a cursor. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    uint8_t *buf = malloc(1 + 256);
    if (!buf)
        return NULL;
    struct rk_aew_keys_builder b;
    rk_aew_keys_begin(&b, buf + 1, 256, 9, 0);
    struct rk_aew_entry e1 = {.leaf = 3, .klen = 3, .key = (const uint8_t *)"abc", .version = 7};
    struct rk_aew_entry e2 = {
        .leaf = 700, .klen = 2, .key = (const uint8_t *)"zz", .version = 8, .tombstone = true};
    rk_aew_keys_add(&b, &e1);
    rk_aew_keys_add(&b, &e2);
    struct rk_aew_cursor cur = {.pos = 1, .has_key = true, .klen = 2, .key = e2.key};
    buf[0] = 3;
    *len = 1 + rk_aew_keys_finish(&b, false, &cur);
    return buf;
}

/* One body after its selector byte. */
static void put_sel(rk_fuzz_put_fn *put, const char *name, uint8_t sel, const uint8_t *body,
                    size_t n)
{
    uint8_t *b = malloc(1 + n);
    if (!b)
        return;
    b[0] = sel;
    memcpy(b + 1, body, n);
    put(name, b, 1 + n);
    free(b);
}

/* Every decoder once: an AE_ROOT request and a reply with two mids
 * expanded, an AE_KEYS request with a cursor, the seed reply, and that
 * reply wrapped in a whole message. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    static struct rk_aew_root_req rq = {.partition = 9, .root = 0x1111};
    static struct rk_aew_root_rep rp = {.partition = 9, .mask = 0x80000001u, .root = 0x2222};
    for (unsigned m = 0; m < RK_AEW_MIDS; m++)
        rq.mids[m] = 0x100 + m;
    for (unsigned l = 0; l < RK_AEW_FANOUT; l++)
        rp.leaves[0][l] = rp.leaves[31][l] = 0x300 + l;
    put_sel(put, "root-req", 0, out, rk_aew_root_req_encode(out, &rq));
    put_sel(put, "root-rep", 1, out, rk_aew_root_rep_encode(out, &rp));
    struct rk_aew_keys_req kq = {
        .partition = 9,
        .nleaves = 3,
        .leaves = {3, 700, 1023},
        .cur = {.pos = 1, .has_key = true, .klen = 2, .key = (const uint8_t *)"zz"}};
    put_sel(put, "keys-req", 2, out, rk_aew_keys_req_encode(out, &kq));
    size_t len;
    uint8_t *seed = rk_fuzz_seed(&len);
    if (!seed)
        return;
    put("keys-rep", seed, len);
    static uint8_t msg[1 + RK_AEW_MSG_MAX];
    msg[0] = 4;
    memcpy(msg + 1 + RK_AEW_PREFIX, seed + 1, len - 1);
    size_t n = rk_aew_wrap(msg + 1, RK_OP_AE_KEYS, RK_MSG_REPLY, RK_ST_OK, 77, len - 1);
    put("keys-rep-message", msg, 1 + n);
    free(seed);
}

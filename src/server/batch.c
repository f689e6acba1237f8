/* RBATCH on the receiving side (see batch.h). */
#include "server/batch.h"
#include "server/worker_int.h"
#include "util/err.h"
#include "util/le.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PART_FLAG 0x80000000u

struct rk_batch {
    struct rk_shared *sh;
    nng_msg *msg;         /* the request; its header routes the reply to the peer */
    uint32_t id;          /* the request's proto id, echoed */
    uint64_t received_ns; /* the request's receipt stamp, for the parts' latency */
    uint32_t n;
    atomic_uint left;
    nng_msg *parts[]; /* [k]: part k once answered, or NULL */
};

/* The header of a part: which batch, which slot, which peer request. */
struct part_hdr {
    uint32_t tag; /* PART_FLAG | index */
    uint32_t rid;
    struct rk_batch *b;
};

static bool read_hdr(nng_msg *m, struct part_hdr *h)
{
    if (nng_msg_header_len(m) != sizeof(*h))
        return false;
    memcpy(h, nng_msg_header(m), sizeof(*h));
    return (h->tag & PART_FLAG) != 0;
}

bool rk_batch_is_part(nng_msg *m)
{
    struct part_hdr h;
    return rk_msg_is_internal(m) && read_hdr(m, &h);
}

/* Frames in req's value, or RK_EMALFORMED if they do not tile it or are
 * too many. */
static int count_frames(const struct rk_msg *req, uint32_t *n)
{
    size_t off = 0, mlen;
    uint32_t rid;
    const uint8_t *msg;
    int rc = 0;
    *n = 0;
    if (!req->has_val)
        return RK_EMALFORMED;
    while (*n <= RK_PROTO_MAX_FRAMES &&
           (rc = rk_proto_frame_next(req->val, req->vlen, &off, &rid, &msg, &mlen)) == 1)
        (*n)++;
    if (*n > RK_PROTO_MAX_FRAMES)
        return RK_EMALFORMED;
    return rc < 0 || *n == 0 ? RK_EMALFORMED : 0;
}

static nng_msg *make_part(struct rk_batch *b, uint32_t k, uint32_t rid, const uint8_t *msg,
                          size_t mlen)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, mlen) != 0)
        return NULL;
    memcpy(nng_msg_body(m), msg, mlen);
    struct part_hdr h = {.tag = PART_FLAG | k, .rid = rid, .b = b};
    if (nng_msg_header_append(m, &h, sizeof(h)) != 0) {
        nng_msg_free(m);
        return NULL;
    }
    return m;
}

int rk_batch_split(struct rk_shared *sh, nng_msg *msg, const struct rk_msg *req,
                   void (*route)(void *arg, nng_msg *part), void *arg)
{
    uint32_t n;
    if (count_frames(req, &n) < 0)
        return RK_EMALFORMED;
    struct rk_batch *b = calloc(1, sizeof(*b) + n * sizeof(nng_msg *));
    if (!b)
        return -ENOMEM;
    b->sh = sh;
    b->msg = msg;
    b->id = req->id;
    b->received_ns = rk_reply_received_ns(msg);
    b->n = n;
    atomic_init(&b->left, n);
    /* Every part is built before any is routed: a part routed may be
     * answered at once on another thread, and then b must be complete. */
    size_t off = 0, mlen;
    uint32_t rid;
    const uint8_t *fm;
    for (uint32_t k = 0; k < n; k++) {
        rk_proto_frame_next(req->val, req->vlen, &off, &rid, &fm, &mlen);
        if (!(b->parts[k] = make_part(b, k, rid, fm, mlen))) {
            for (uint32_t j = 0; j < k; j++)
                nng_msg_free(b->parts[j]);
            free(b);
            return -ENOMEM;
        }
    }
    /* parts[k] is read just before part k is routed and never after: its
     * reply may be stored there from another thread at once, and the last
     * one frees b (so n, not b->n, bounds the loop). */
    for (uint32_t k = 0; k < n; k++)
        route(arg, b->parts[k]);
    return 0;
}

/* All parts are in: one reply frame per answered part, then the reply. */
static void finish(struct rk_batch *b)
{
    size_t len = 0;
    for (uint32_t k = 0; k < b->n; k++)
        if (b->parts[k])
            len += 4 + nng_msg_len(b->parts[k]);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        size_t o = 0;
        for (uint32_t k = 0; k < b->n; k++) {
            nng_msg *m = b->parts[k];
            if (!m)
                continue;
            struct part_hdr h;
            read_hdr(m, &h);
            rk_le_put32(buf + o, h.rid);
            memcpy(buf + o + 4, nng_msg_body(m), nng_msg_len(m));
            o += 4 + nng_msg_len(m);
        }
    }
    struct rk_msg rep = {.opcode = RK_OP_RBATCH,
                         .flags = RK_MSG_REPLY,
                         .id = b->id,
                         .val = buf,
                         .vlen = (uint32_t)len,
                         .has_val = true};
    if (!buf || len > UINT32_MAX || rk_proto_msg_encode(b->msg, &rep) < 0) {
        /* The peer times these requests out. */
        nng_msg_free(b->msg);
        atomic_fetch_sub(&b->sh->inflight, 1);
    } else {
        rk_reply_send(b->sh, b->msg);
    }
    free(buf);
    for (uint32_t k = 0; k < b->n; k++)
        if (b->parts[k])
            nng_msg_free(b->parts[k]);
    free(b);
}

uint64_t rk_batch_part_received_ns(nng_msg *part)
{
    struct part_hdr h;
    return read_hdr(part, &h) ? h.b->received_ns : 0;
}

void rk_batch_part_done(nng_msg *part, bool answered)
{
    struct part_hdr h;
    read_hdr(part, &h);
    struct rk_batch *b = h.b;
    uint32_t k = h.tag & ~PART_FLAG;
    b->parts[k] = answered ? part : NULL;
    if (!answered)
        nng_msg_free(part);
    /* acq_rel: the thread that ends the count sees every part stored. */
    if (atomic_fetch_sub_explicit(&b->left, 1, memory_order_acq_rel) == 1)
        finish(b);
}

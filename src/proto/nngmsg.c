/* Encoding, signing and checking a message in an nng message's body
 * (proto.h). */
#include "proto/proto.h"
#include "util/auth.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/le.h"

#include <errno.h>
#include <nng/nng.h>

#define AUTH_FIELD (1u + 4u + RK_AUTH_TRAILER) /* tag, length, trailer */

int rk_proto_msg_encode(nng_msg *msg, const struct rk_msg *m)
{
    size_t n = rk_proto_size(m);
    if (n == 0)
        return RK_ETOOLARGE; /* body over 4 GiB: cannot be encoded */
    if (nng_msg_realloc(msg, n) != 0)
        return -ENOMEM;
    rk_proto_encode(m, nng_msg_body(msg));
    return 0;
}

int rk_proto_msg_seal(nng_msg *msg, const struct rk_auth_key *k, uint64_t now_ms)
{
    size_t len = nng_msg_len(msg);
    if (len < RK_PROTO_HDR)
        return RK_ETOOLARGE;
    uint64_t body = rk_le_get32((const uint8_t *)nng_msg_body(msg) + 12);
    if (body != len - RK_PROTO_HDR || body + AUTH_FIELD > UINT32_MAX)
        return RK_ETOOLARGE;
    uint8_t field[AUTH_FIELD] = {RK_TAG_AUTH};
    rk_le_put32(field + 1, RK_AUTH_TRAILER);
    if (nng_msg_append(msg, field, sizeof(field)) != 0)
        return -ENOMEM;
    uint8_t *p = nng_msg_body(msg);
    rk_le_put32(p + 12, (uint32_t)(body + AUTH_FIELD));
    rk_auth_seal(k, p, len + AUTH_FIELD, now_ms);
    return 0;
}

int rk_proto_auth_check(struct rk_auth *a, const void *buf, size_t len, const struct rk_msg *m,
                        bool replay)
{
    if (!m->has_auth)
        return RK_AUTH_MISSING;
    return rk_auth_check(a, &a->rpc, buf, len, replay);
}

int rk_proto_msg_sign(nng_msg *msg, struct rk_auth *a)
{
    return a && a->on ? rk_proto_msg_seal(msg, &a->rpc, rk_clock_wall_ms()) : 0;
}

bool rk_proto_reply_trusted(struct rk_auth *a, nng_msg *msg, const char *source)
{
    if (!a || !a->on)
        return true;
    struct rk_msg m;
    const void *body = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    int v = rk_proto_decode(body, len, &m) == 0 ? rk_proto_auth_check(a, body, len, &m, false)
                                                : RK_AUTH_BAD_MAC;
    if (v == RK_AUTH_OK)
        return true;
    rk_auth_refused(a, RK_AUTH_REPLY, (enum rk_auth_verdict)v, source);
    return false;
}

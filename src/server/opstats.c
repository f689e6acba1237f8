/* Per-operation latency and results (opstats.h). */
#include "server/opstats.h"
#include "util/le.h"

#include <string.h>

int rk_opstat_of(uint8_t opcode)
{
    switch (opcode) {
    case RK_OP_PUT:
        return RK_OPSTAT_PUT;
    case RK_OP_GET:
        return RK_OPSTAT_GET;
    case RK_OP_DEL:
        return RK_OPSTAT_DEL;
    case RK_OP_RPUT:
        return RK_OPSTAT_RPUT;
    case RK_OP_RGET:
        return RK_OPSTAT_RGET;
    default:
        return -1;
    }
}

const char *rk_opstat_name(enum rk_opstat k)
{
    static const char *const names[RK_OPSTAT_N] = {"put", "get", "del", "write", "read"};
    return k < RK_OPSTAT_N ? names[k] : "?";
}

void rk_opstats_record(struct rk_opstats *o, enum rk_opstat k, uint16_t status, uint64_t us)
{
    rk_histo_record(&o->latency[k], us);
    o->results[k][status < RK_ST_COUNT ? status : RK_ST_INTERNAL]++;
}

void rk_opstats_record_reply(struct rk_opstats *o, const uint8_t *body, size_t len, uint64_t us)
{
    if (len < RK_PROTO_HDR)
        return;
    int k = rk_opstat_of(body[3]);
    if (k >= 0)
        rk_opstats_record(o, (enum rk_opstat)k, rk_le_get16(body + 6), us);
}

void rk_opstats_merge(struct rk_opstats *into, const struct rk_opstats *from)
{
    for (unsigned k = 0; k < RK_OPSTAT_N; k++) {
        rk_histo_merge(&into->latency[k], &from->latency[k]);
        for (unsigned s = 0; s < RK_ST_COUNT; s++)
            into->results[k][s] += from->results[k][s];
    }
}

void rk_opstats_client_latency(const struct rk_opstats *o, struct rk_histo *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned k = 0; k < RK_OPSTAT_CLIENT_N; k++)
        rk_histo_merge(out, &o->latency[k]);
}

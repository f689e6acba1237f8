/* Gossip envelope codec (format in gossip_wire.h). Every length is checked
 * before it is used; a name must be printable so it can go into logs. */
#include "cluster/gossip_wire.h"
#include "util/le.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

size_t rk_gossip_env_encode(const struct rk_gossip_env *e, uint8_t *buf)
{
    size_t nl = strnlen(e->name, RK_GOSSIP_NAME_MAX + 1);
    if (nl == 0 || nl > RK_GOSSIP_NAME_MAX || e->hold_len > RK_GOSSIP_HOLD_MAX)
        return 0;
    uint8_t *p = buf;
    p[0] = (uint8_t)RK_GOSSIP_MAGIC;
    p[1] = (uint8_t)(RK_GOSSIP_MAGIC >> 8);
    p[2] = RK_GOSSIP_VERSION;
    p[3] = e->kind;
    rk_le_put32(p + 4, e->partitions);
    rk_le_put32(p + 8, e->replicas);
    p[12] = (uint8_t)nl;
    memcpy(p + 13, e->name, nl);
    rk_le_put64(p + 13 + nl, e->digest);
    rk_le_put64(p + 21 + nl, e->place);
    rk_le_put32(p + 29 + nl, e->hold_len);
    if (e->hold_len)
        memcpy(p + 33 + nl, e->hold, e->hold_len);
    return 33 + nl + e->hold_len;
}

int rk_gossip_env_decode(const uint8_t *buf, size_t len, struct rk_gossip_env *e, size_t *used)
{
    memset(e, 0, sizeof(*e));
    if (len < 13 || (buf[0] | buf[1] << 8) != RK_GOSSIP_MAGIC)
        return RK_EMALFORMED;
    if (buf[2] != RK_GOSSIP_VERSION && buf[2] != RK_GOSSIP_SIGNED && buf[2] != 1)
        return RK_EUNSUPPORTED;
    size_t nl = buf[12];
    if (buf[3] > RK_GOSSIP_ANSWER || nl == 0 || nl > RK_GOSSIP_NAME_MAX || len < 13 + nl + 8)
        return RK_EMALFORMED;
    for (size_t i = 0; i < nl; i++)
        if (buf[13 + i] < 0x20 || buf[13 + i] == 0x7f)
            return RK_EMALFORMED;
    e->kind = buf[3];
    e->partitions = rk_le_get32(buf + 4);
    e->replicas = rk_le_get32(buf + 8);
    memcpy(e->name, buf + 13, nl);
    e->name[nl] = '\0';
    e->digest = rk_le_get64(buf + 13 + nl);
    *used = 13 + nl + 8;
    if (buf[2] == 1)
        return 0;
    if (len < 33 + nl)
        return RK_EMALFORMED;
    e->place = rk_le_get64(buf + 21 + nl);
    e->hold_len = rk_le_get32(buf + 29 + nl);
    if (e->hold_len > RK_GOSSIP_HOLD_MAX || len - (33 + nl) < e->hold_len)
        return RK_EMALFORMED;
    e->hold = e->hold_len ? buf + 33 + nl : NULL;
    *used = 33 + nl + e->hold_len;
    return 0;
}

const char *rk_gossip_env_mismatch(const struct rk_gossip_env *their,
                                   const struct rk_gossip_env *our, char *theirs, char *ours)
{
    const size_t n = RK_GOSSIP_NAME_MAX + 1;
    if (strcmp(their->name, our->name) != 0) {
        snprintf(theirs, n, "%s", their->name);
        snprintf(ours, n, "%s", our->name);
        return "cluster.name";
    }
    if (their->partitions != our->partitions) {
        snprintf(theirs, n, "%u", their->partitions);
        snprintf(ours, n, "%u", our->partitions);
        return "cluster.partitions";
    }
    if (their->replicas != our->replicas) {
        snprintf(theirs, n, "%u", their->replicas);
        snprintf(ours, n, "%u", our->replicas);
        return "cluster.replicas";
    }
    return NULL;
}

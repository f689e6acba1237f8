/* Admin request arguments carried in KEY (proto.h): the one reader of
 * each, shared by every request that takes one. */
#include "proto/proto.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

#define PARTITION_DIGITS 10 /* u32 partitions need at most 10; more is refused */

int rk_proto_arg_partition(const struct rk_msg *m, uint32_t partitions, uint32_t *part)
{
    if (!m->has_key)
        return 0;
    if (m->klen == 0 || m->klen > PARTITION_DIGITS)
        return RK_EMALFORMED;
    uint64_t v = 0;
    for (uint32_t i = 0; i < m->klen; i++) {
        if (m->key[i] < '0' || m->key[i] > '9')
            return RK_EMALFORMED;
        v = v * 10 + (uint64_t)(m->key[i] - '0');
    }
    if (v >= partitions)
        return RK_EMALFORMED;
    *part = (uint32_t)v;
    return 1;
}

bool rk_proto_arg_text(const struct rk_msg *m, char *out, size_t cap)
{
    if (!m->has_key || m->klen == 0 || m->klen >= cap)
        return false;
    for (uint32_t i = 0; i < m->klen; i++)
        if (m->key[i] < 0x21 || m->key[i] > 0x7e)
            return false;
    memcpy(out, m->key, m->klen);
    out[m->klen] = '\0';
    return true;
}

bool rk_proto_arg_seed(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (strncmp(a, "tcp://", 6) != 0 || !colon || colon <= a + 6)
        return false;
    const char *p = colon + 1;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 5 || p[n] != '\0')
        return false;
    long port = strtol(p, NULL, 10);
    return port > 0 && port < 65536;
}

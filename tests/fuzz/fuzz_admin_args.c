/* Admin request arguments (proto/args.c): the KEY of AE, REPAIR and
 * OVERVIEW read as a partition, of JOIN and REMOVE as text, of JOIN as a
 * seed address. Input: two bytes choosing the cluster's partitions
 * (1..65536), then the KEY bytes. Properties: a partition taken is below
 * partitions and is the KEY's decimal value; text taken is the KEY's bytes,
 * all printable and non-space, NUL-terminated within cap; a seed taken
 * starts tcp://, has a host and ends in a port 1..65535; nothing is read
 * outside the KEY. */
#include "fuzz.h"
#include "proto/proto.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

static void check_partition(const struct rk_msg *m, uint32_t partitions)
{
    uint32_t part = UINT32_MAX;
    int rc = rk_proto_arg_partition(m, partitions, &part);
    CHECK(rc == 1 || rc == RK_EMALFORMED);
    if (rc != 1)
        return;
    CHECK(part < partitions);
    uint64_t v = 0;
    for (uint32_t i = 0; i < m->klen; i++) {
        CHECK(m->key[i] >= '0' && m->key[i] <= '9');
        v = v * 10 + (uint64_t)(m->key[i] - '0');
    }
    CHECK(v == part);
}

static void check_text(const struct rk_msg *m, size_t cap)
{
    char out[80];
    memset(out, 0x5a, sizeof(out));
    if (!rk_proto_arg_text(m, out, cap))
        return;
    CHECK(m->klen > 0 && m->klen < cap && strlen(out) == m->klen);
    CHECK(memcmp(out, m->key, m->klen) == 0);
    for (uint32_t i = 0; i < m->klen; i++)
        CHECK(out[i] > 0x20 && out[i] < 0x7f);
    CHECK(out[cap] == 0x5a); /* nothing written past cap */
    if (rk_proto_arg_seed(out)) {
        const char *colon = strrchr(out, ':');
        unsigned port = 0;
        CHECK(strncmp(out, "tcp://", 6) == 0 && colon > out + 6);
        CHECK(sscanf(colon + 1, "%u", &port) == 1 && port > 0 && port < 65536);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t partitions = 1u + (uint32_t)(data[0] | data[1] << 8);
    struct rk_msg m = {
        .opcode = RK_OP_REPAIR, .key = data + 2, .klen = (uint32_t)(size - 2), .has_key = true};
    check_partition(&m, partitions);
    check_text(&m, 64);
    check_text(&m, 16);
    m.has_key = false;
    uint32_t part;
    CHECK(rk_proto_arg_partition(&m, partitions, &part) == 0);
    return 0;
}

static uint8_t *with_partitions(uint16_t partitions_minus_1, const char *key, size_t *len)
{
    size_t n = strlen(key);
    uint8_t *b = malloc(2 + n);
    if (!b)
        return NULL;
    b[0] = (uint8_t)partitions_minus_1;
    b[1] = (uint8_t)(partitions_minus_1 >> 8);
    memcpy(b + 2, key, n);
    *len = 2 + n;
    return b;
}

/* REPAIR 42 in a cluster of 256 partitions. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    return with_partitions(255, "42", len);
}

void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    static const struct {
        const char *name, *key;
        uint16_t parts;
    } in[] = {{"partition", "42", 255},          {"partition-last", "0255", 255},
              {"partition-out", "256", 255},     {"seed", "tcp://10.0.0.7:7402", 255},
              {"seed-no-port", "tcp://h:", 255}, {"node-id", "node-3", 255}};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        size_t len;
        uint8_t *b = with_partitions(in[i].parts, in[i].key, &len);
        if (b)
            put(in[i].name, b, len);
        free(b);
    }
}

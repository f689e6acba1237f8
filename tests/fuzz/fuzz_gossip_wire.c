/* Fuzz target for the gossip envelope decoder (the first bytes of every
 * survey and answer from the network): any input decodes without a crash
 * or an out-of-bounds read to MALFORMED, UNSUPPORTED or an envelope; a
 * decoded version 2 envelope encodes back to exactly the bytes it was read
 * from (a version 1 one, which has no place digest nor holdings, encodes as
 * version 2 and decodes back to the same fields), and comparing it with
 * ours names a setting only when one differs. */
#include "fuzz.h"
#include "cluster/gossip_wire.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rk_gossip_env e;
    size_t used = 0;
    int rc = rk_gossip_env_decode(data, size, &e, &used);
    if (rc < 0) {
        CHECK(rc == RK_EMALFORMED || rc == RK_EUNSUPPORTED);
        return 0;
    }
    CHECK(used <= size && used <= RK_GOSSIP_HDR_MAX);
    CHECK(e.hold_len <= RK_GOSSIP_HOLD_MAX && (e.hold == NULL) == (e.hold_len == 0));
    static uint8_t out[RK_GOSSIP_HDR_MAX];
    size_t n = rk_gossip_env_encode(&e, out);
    if (data[2] == RK_GOSSIP_VERSION) {
        CHECK(n == used && memcmp(out, data, used) == 0);
    } else {
        struct rk_gossip_env back;
        size_t bused;
        CHECK(e.place == 0 && e.hold == NULL);
        CHECK(rk_gossip_env_decode(out, n, &back, &bused) == 0 && bused == n);
        CHECK(back.kind == e.kind && back.partitions == e.partitions &&
              back.replicas == e.replicas && strcmp(back.name, e.name) == 0 &&
              back.digest == e.digest && back.place == 0 && back.hold_len == 0);
    }
    struct rk_gossip_env ours = {.partitions = 256, .replicas = 3, .name = "default"};
    char theirs[RK_GOSSIP_NAME_MAX + 1], mine[RK_GOSSIP_NAME_MAX + 1];
    const char *what = rk_gossip_env_mismatch(&e, &ours, theirs, mine);
    bool same = strcmp(e.name, ours.name) == 0 && e.partitions == ours.partitions &&
                e.replicas == ours.replicas;
    CHECK((what == NULL) == same);
    return 0;
}

/* A survey envelope of cluster "default" followed by two table bytes. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    struct rk_gossip_env e = {.kind = RK_GOSSIP_SURVEY,
                              .partitions = 256,
                              .replicas = 3,
                              .name = "default",
                              .digest = 0x0102030405060708ull};
    uint8_t *buf = malloc(RK_GOSSIP_HDR_MAX + 2);
    if (!buf)
        return NULL;
    size_t n = rk_gossip_env_encode(&e, buf);
    buf[n] = 1;
    buf[n + 1] = 0;
    *len = n + 2;
    return buf;
}

/* The seed; an answer carrying holdings and a placement digest; a
 * version 1 survey (no place digest, no holdings) as older nodes send. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    size_t len;
    uint8_t *seed = rk_fuzz_seed(&len);
    if (seed)
        put("survey", seed, len);
    free(seed);
    static const uint8_t hold[RK_GOSSIP_HOLD_MAX - 65536 / 8 + 2] = {16, 0, 0, 0, 9};
    struct rk_gossip_env e = {.kind = RK_GOSSIP_ANSWER,
                              .partitions = 16,
                              .replicas = 2,
                              .name = "prod-eu",
                              .digest = 77,
                              .place = 0xABCDEF,
                              .hold = hold,
                              .hold_len = sizeof(hold)};
    static uint8_t buf[RK_GOSSIP_HDR_MAX];
    put("answer-with-holdings", buf, rk_gossip_env_encode(&e, buf));
    static const uint8_t v1[] = {0x52, 0x47, 1,   RK_GOSSIP_SURVEY,
                                 0,    1,    0,   0,
                                 3,    0,    0,   0,
                                 7,    'd',  'e', 'f',
                                 'a',  'u',  'l', 't',
                                 1,    2,    3,   4,
                                 5,    6,    7,   8};
    put("survey-version-1", v1, sizeof(v1));
}

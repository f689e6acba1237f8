/* Fuzz target for a whole gossip message as the gossip loop takes it
 * (gossip.c, take): the envelope (gossip_wire.h), then the member table
 * (members.h) after it, then the sender's holdings carried in the envelope
 * into the table of peers' holdings (rk_peerhold_take, holdings.h).
 *
 * Properties: no crash or out-of-bounds read; a message that decodes
 * (version 2) is the concatenation of its envelope's and its table's
 * encodings, byte for byte; holdings are taken exactly when they decode
 * for the cluster's partition count, and then read back as the bytes sent
 * (bits past the last partition cleared); a refused holdings leaves the
 * sender unknown; taking the same message twice changes nothing the
 * second time. */
#include "fuzz.h"
#include "cluster/gossip_wire.h"
#include "cluster/holdings.h"
#include "cluster/members.h"
#include "cluster/peerhold.h"
#include "util/err.h"

#include <string.h>

static struct rk_member table[RK_MEMBERS_MAX];
static uint8_t out[RK_GOSSIP_HDR_MAX + RK_MEMBERS_WIRE_MAX];

/* The holdings the sender sent, as taken. */
static void check_taken(const struct rk_holdings *h, uint32_t parts, const struct rk_gossip_env *e)
{
    CHECK(h != NULL && h->parts == parts && e->hold_len == rk_holdings_wire_len(parts));
    uint8_t *wire = malloc(e->hold_len);
    CHECK(wire != NULL);
    rk_holdings_encode(h, wire);
    size_t fixed = RK_HOLDINGS_WIRE_FIXED, bl = (h->parts + 7) / 8;
    CHECK(memcmp(wire, e->hold, fixed + bl - (h->parts % 8 != 0)) == 0);
    if (h->parts % 8)
        CHECK(wire[fixed + bl - 1] == (e->hold[fixed + bl - 1] & ((1u << (h->parts % 8)) - 1)));
    free(wire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rk_gossip_env e;
    size_t used, n = 0;
    if (rk_gossip_env_decode(data, size, &e, &used) < 0 ||
        rk_members_decode(data + used, size - used, table, RK_MEMBERS_MAX, &n) < 0 || n == 0)
        return 0;
    size_t len = rk_gossip_env_encode(&e, out), tlen;
    CHECK(len > 0 && rk_members_encode(table, n, out + len, sizeof(out) - len, &tlen) == 0);
    if (data[2] == RK_GOSSIP_VERSION)
        CHECK(len + tlen == size && memcmp(out, data, size) == 0);

    uint32_t parts = e.partitions >= 1 && e.partitions <= 65536 ? e.partitions : 256;
    struct rk_peerhold *ph;
    CHECK(rk_peerhold_create(&ph, parts) == 0);
    const char *from = table[0].id;
    bool changed;
    int rc = rk_peerhold_take(ph, from, e.place, e.hold, e.hold_len, &changed);
    CHECK(rc == 0 || rc == RK_EMALFORMED);
    if (rc == 0 && e.hold) {
        CHECK(changed);
        check_taken(rk_peerhold_get(ph, from), parts, &e);
    } else {
        CHECK(rk_peerhold_get(ph, from) == NULL);
    }
    if (rc == 0) {
        CHECK(rk_peerhold_take(ph, from, e.place, e.hold, e.hold_len, &changed) == 0 && !changed);
    }
    rk_peerhold_free(ph);
    return 0;
}

/* A survey of cluster "default" (64 partitions) carrying the sender's
 * holdings, then a table of two members, the sender first. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    struct rk_holdings h;
    if (rk_holdings_init(&h, 64) != 0)
        return NULL;
    for (uint32_t p = 0; p < 64; p += 5)
        rk_holdings_set(&h, p, true);
    h.version = 1700000000555ull;
    h.genesis_digest = 42;
    h.genesis_ms = 1700000000000ull;
    uint8_t hold[RK_HOLDINGS_WIRE_FIXED + 8];
    rk_holdings_encode(&h, hold);
    rk_holdings_fini(&h);
    struct rk_gossip_env e = {.kind = RK_GOSSIP_SURVEY,
                              .partitions = 64,
                              .replicas = 3,
                              .name = "default",
                              .digest = 0x0102030405060708ull,
                              .place = 0x1111222233334444ull,
                              .hold = hold,
                              .hold_len = sizeof(hold)};
    struct rk_member m[2] = {
        {.id = "node-1",
         .client_addr = "tcp://127.0.0.1:7401",
         .peer_addr = "tcp://127.0.0.1:7501",
         .gossip_addr = "tcp://127.0.0.1:7601",
         .incarnation = 5,
         .heartbeat = 12,
         .settings_digest = 7,
         .config_digest = 9,
         .state = RK_MEMBER_ALIVE},
        {.id = "node-2",
         .client_addr = "tcp://127.0.0.1:7402",
         .peer_addr = "tcp://127.0.0.1:7502",
         .gossip_addr = "tcp://127.0.0.1:7602",
         .incarnation = 3,
         .heartbeat = 40,
         .settings_digest = 7,
         .config_digest = 9,
         .state = RK_MEMBER_LEAVING},
    };
    uint8_t *buf = malloc(RK_GOSSIP_HDR_MAX + 2 * RK_MEMBERS_WIRE_ENTRY_MAX + RK_MEMBERS_WIRE_HDR);
    if (!buf)
        return NULL;
    size_t n = rk_gossip_env_encode(&e, buf), t;
    if (rk_members_encode(m, 2, buf + n, 2 * RK_MEMBERS_WIRE_ENTRY_MAX + RK_MEMBERS_WIRE_HDR, &t) <
        0) {
        free(buf);
        return NULL;
    }
    *len = n + t;
    return buf;
}

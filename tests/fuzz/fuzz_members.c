/* Fuzz target for the member-list decoder (survey payloads from peers): any
 * input decodes without a crash or an out-of-bounds read to MALFORMED,
 * UNSUPPORTED or a list; a decoded list encodes to exactly the input bytes
 * (the format has one encoding per list), decodes again to the same entries,
 * and merging it into a table keeps the table's invariants. */
#include "fuzz.h"
#include "cluster/members.h"
#include "util/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Static: a table and two lists are about 1.5 MiB, too much for a stack. */
static struct rk_member list_a[RK_MEMBERS_MAX], list_b[RK_MEMBERS_MAX];
static struct rk_members table;
static uint8_t wire[RK_MEMBERS_WIRE_MAX];

static bool same_entry(const struct rk_member *a, const struct rk_member *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->client_addr, b->client_addr) == 0 &&
           strcmp(a->peer_addr, b->peer_addr) == 0 && strcmp(a->gossip_addr, b->gossip_addr) == 0 &&
           a->incarnation == b->incarnation && a->heartbeat == b->heartbeat &&
           a->settings_digest == b->settings_digest && a->config_digest == b->config_digest &&
           a->state == b->state && a->last_heard_ms == 0 && a->state_since_ms == 0 &&
           a->rtt_us == 0;
}

/* The table stays sorted, duplicate-free, and self stays ours. */
static void check_table(const struct rk_members *t)
{
    CHECK(t->n >= 1 && t->n <= RK_MEMBERS_MAX && t->self < t->n);
    CHECK(strcmp(t->m[t->self].id, "self") == 0);
    CHECK(t->m[t->self].state == RK_MEMBER_ALIVE);
    for (size_t i = 1; i < t->n; i++)
        CHECK(strcmp(t->m[i - 1].id, t->m[i].id) < 0);
}

static void merge_all(const struct rk_member *e, size_t n)
{
    struct rk_member self = {.id = "self", .settings_digest = 7, .state = RK_MEMBER_ALIVE};
    CHECK(rk_members_init(&table, &self, 1000) == 0);
    for (size_t i = 0; i < n; i++) {
        struct rk_member_event ev;
        int rc = rk_members_merge(&table, &e[i], 2000, &ev);
        CHECK(rc == 0 || rc == -EOVERFLOW);
    }
    check_table(&table);
    uint64_t d = rk_members_digest(&table);
    CHECK(d == rk_members_digest(&table));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    int rc = rk_members_decode(data, size, list_a, RK_MEMBERS_MAX, &n);
    if (rc < 0) {
        CHECK(rc == RK_EMALFORMED || rc == RK_EUNSUPPORTED);
        CHECK(n == 0);
        return 0;
    }
    size_t len = 0;
    CHECK(rk_members_encode(list_a, n, wire, sizeof(wire), &len) == 0);
    CHECK(len == size && memcmp(wire, data, size) == 0);
    size_t n2 = 0;
    CHECK(rk_members_decode(wire, len, list_b, RK_MEMBERS_MAX, &n2) == 0);
    CHECK(n2 == n);
    for (size_t i = 0; i < n; i++)
        CHECK(same_entry(&list_a[i], &list_b[i]));
    merge_all(list_a, n);
    return 0;
}

/* Three members, one of them ourselves ("self") under suspicion, so the
 * mutations reach refutation, state changes and conflicts. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    struct rk_member e[3] = {
        {.id = "n1",
         .client_addr = "tcp://127.0.0.1:7401",
         .peer_addr = "tcp://127.0.0.1:7501",
         .gossip_addr = "tcp://127.0.0.1:7601",
         .incarnation = 3,
         .heartbeat = 40,
         .settings_digest = 7,
         .config_digest = 0x1122334455667788ull,
         .state = RK_MEMBER_ALIVE},
        {.id = "n2",
         .client_addr = "tcp://127.0.0.1:7402",
         .peer_addr = "tcp://127.0.0.1:7502",
         .gossip_addr = "tcp://127.0.0.1:7602",
         .incarnation = 1,
         .heartbeat = 9,
         .settings_digest = 7,
         .config_digest = 5,
         .state = RK_MEMBER_DEAD},
        {.id = "self",
         .client_addr = "tcp://127.0.0.1:7403",
         .peer_addr = "tcp://127.0.0.1:7503",
         .gossip_addr = "tcp://127.0.0.1:7603",
         .incarnation = 0,
         .heartbeat = 2,
         .settings_digest = 7,
         .config_digest = 5,
         .state = RK_MEMBER_SUSPECT},
    };
    uint8_t *buf = malloc(3 * RK_MEMBERS_WIRE_ENTRY_MAX + RK_MEMBERS_WIRE_HDR);
    if (!buf)
        return NULL;
    if (rk_members_encode(e, 3, buf, 3 * RK_MEMBERS_WIRE_ENTRY_MAX + RK_MEMBERS_WIRE_HDR, len) <
        0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The seed; one member alone; a member in each other state (leaving,
 * left), the shapes a table takes in a join and a removal. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    size_t len;
    uint8_t *seed = rk_fuzz_seed(&len);
    if (seed)
        put("three-self-suspect", seed, len);
    free(seed);
    struct rk_member e[2] = {
        {.id = "node-1",
         .client_addr = "tcp://10.0.0.1:7400",
         .peer_addr = "tcp://10.0.0.1:7401",
         .gossip_addr = "tcp://10.0.0.1:7402",
         .incarnation = 1765000000000ull,
         .heartbeat = 1,
         .settings_digest = 7,
         .config_digest = 8,
         .state = RK_MEMBER_LEAVING},
        {.id = "node-9",
         .client_addr = "tcp://10.0.0.9:7400",
         .peer_addr = "tcp://10.0.0.9:7401",
         .gossip_addr = "tcp://10.0.0.9:7402",
         .incarnation = 4,
         .heartbeat = 100000,
         .settings_digest = 7,
         .config_digest = 8,
         .state = RK_MEMBER_LEFT},
    };
    if (rk_members_encode(e, 1, wire, sizeof(wire), &len) == 0)
        put("one-leaving", wire, len);
    if (rk_members_encode(e, 2, wire, sizeof(wire), &len) == 0)
        put("leaving-and-left", wire, len);
}

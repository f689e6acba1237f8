/* Per-operation figures (server/opstats.h): a reply is kept under its own
 * opcode and status, other opcodes are not kept, an unknown status counts
 * as INTERNAL, merging adds, and the client latency merges PUT, GET and DEL
 * only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/opstats.h"
#include "util/le.h"

#include <string.h>

/* A reply header (proto.h) with this opcode and status. */
static void header(uint8_t *h, uint8_t op, uint16_t st)
{
    memset(h, 0, RK_PROTO_HDR);
    rk_le_put16(h, RK_PROTO_MAGIC);
    h[2] = RK_PROTO_VERSION;
    h[3] = op;
    rk_le_put16(h + 6, st);
}

static void test_replies_kept_by_opcode_and_status(void **state)
{
    (void)state;
    struct rk_opstats o;
    memset(&o, 0, sizeof(o));
    uint8_t h[RK_PROTO_HDR];
    header(h, RK_OP_GET, RK_ST_NOT_FOUND);
    rk_opstats_record_reply(&o, h, sizeof(h), 100);
    header(h, RK_OP_RPUT, RK_ST_OK);
    rk_opstats_record_reply(&o, h, sizeof(h), 5000);
    header(h, RK_OP_PUT, 999); /* a status this version does not know */
    rk_opstats_record_reply(&o, h, sizeof(h), 20);
    header(h, RK_OP_STATS, RK_ST_OK); /* admin: not kept */
    rk_opstats_record_reply(&o, h, sizeof(h), 7);
    rk_opstats_record_reply(&o, h, RK_PROTO_HDR - 1, 7); /* too short to read */

    assert_int_equal(o.results[RK_OPSTAT_GET][RK_ST_NOT_FOUND], 1);
    assert_int_equal(o.latency[RK_OPSTAT_GET].count, 1);
    assert_int_equal(o.latency[RK_OPSTAT_GET].sum, 100);
    assert_int_equal(o.results[RK_OPSTAT_RPUT][RK_ST_OK], 1);
    assert_int_equal(o.latency[RK_OPSTAT_RPUT].max, 5000);
    assert_int_equal(o.results[RK_OPSTAT_PUT][RK_ST_INTERNAL], 1);
    uint64_t all = 0;
    for (unsigned k = 0; k < RK_OPSTAT_N; k++)
        all += o.latency[k].count;
    assert_int_equal(all, 3);
}

static void test_merge_adds_and_client_latency_leaves_replicas_out(void **state)
{
    (void)state;
    struct rk_opstats a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    rk_opstats_record(&a, RK_OPSTAT_PUT, RK_ST_OK, 30);
    rk_opstats_record(&b, RK_OPSTAT_PUT, RK_ST_OK, 40);
    rk_opstats_record(&b, RK_OPSTAT_DEL, RK_ST_QUORUM, 50);
    rk_opstats_record(&b, RK_OPSTAT_RGET, RK_ST_OK, 1000000);
    rk_opstats_merge(&a, &b);
    assert_int_equal(a.results[RK_OPSTAT_PUT][RK_ST_OK], 2);
    assert_int_equal(a.results[RK_OPSTAT_DEL][RK_ST_QUORUM], 1);
    assert_int_equal(a.latency[RK_OPSTAT_RGET].count, 1);

    struct rk_histo c;
    rk_opstats_client_latency(&a, &c);
    assert_int_equal(c.count, 3);
    assert_int_equal(c.sum, 120);
    assert_int_equal(c.max, 50);
}

static void test_names_and_opcodes(void **state)
{
    (void)state;
    assert_int_equal(rk_opstat_of(RK_OP_PUT), RK_OPSTAT_PUT);
    assert_int_equal(rk_opstat_of(RK_OP_RGET), RK_OPSTAT_RGET);
    assert_int_equal(rk_opstat_of(RK_OP_RBATCH), -1); /* its parts are kept, not the batch */
    assert_int_equal(rk_opstat_of(RK_OP_OVERVIEW), -1);
    assert_string_equal(rk_opstat_name(RK_OPSTAT_DEL), "del");
    assert_string_equal(rk_opstat_name(RK_OPSTAT_RPUT), "write");
    assert_string_equal(rk_opstat_name(RK_OPSTAT_N), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_kept_by_opcode_and_status),
        cmocka_unit_test(test_merge_adds_and_client_latency_leaves_replicas_out),
        cmocka_unit_test(test_names_and_opcodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The node's bridge from config to storage: every storage setting of the
 * config reaches the engine, the rest keep the engine's defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/node.h"

static void test_storage_opts(void **state)
{
    struct rk_config c;
    struct rk_storage_opts o, def;
    rk_config_defaults(&c);
    rk_node_storage_opts(&c, &o);
    rk_storage_opts_default(&def);
    assert_memory_equal(&o, &def, sizeof(o));
    c.fsync = RK_FSYNC_INTERVAL;
    c.fsync_interval_ms = 7;
    c.segment_size = 2u << 20;
    c.compression = false;
    c.max_key_size = 100;
    c.max_value_size = 200;
    c.tombstone_grace_ms = 7 * 3600 * 1000;
    rk_node_storage_opts(&c, &o);
    assert_int_equal(o.fsync, RK_FSYNC_INTERVAL);
    assert_int_equal(o.fsync_interval_ms, 7);
    assert_int_equal(o.segment_size, 2u << 20);
    assert_false(o.compression);
    assert_int_equal(o.max_key_size, 100);
    assert_int_equal(o.max_value_size, 200);
    assert_int_equal(o.block_cache_size, def.block_cache_size);
    assert_int_equal(o.tombstone_grace_ms, 7 * 3600 * 1000);
    assert_null(o.purge_before_ms); /* the worker sets it for its data store only */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

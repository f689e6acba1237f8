/* Index: lookups after inserts, removals (backward-shift deletion must keep
 * every other key findable), growth, id reuse, and memory per key. Checked
 * against a plain array model with a fixed-seed PRNG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "storage/index.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 50000

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int mkkey(char *buf, int i)
{
    /* Varied lengths, some with NUL bytes inside. */
    int n = snprintf(buf, 64, "k%d-%0*d", i, 1 + i % 40, i);
    if (i % 7 == 0)
        buf[1] = '\0';
    return n;
}

static void test_insert_find_remove(void **state)
{
    (void)state;
    struct rk_index ix;
    assert_int_equal(rk_index_init(&ix), 0);
    static uint32_t ids[NKEYS];
    static bool present[NKEYS];
    char k[64];
    for (int i = 0; i < NKEYS; i++) {
        int n = mkkey(k, i);
        uint32_t h = rk_index_hash(k, (uint32_t)n);
        assert_int_equal(rk_index_find(&ix, k, (uint32_t)n, h), RK_IX_NONE);
        assert_int_equal(rk_index_insert(&ix, k, (uint32_t)n, h, 0, &ids[i]), 0);
        rk_index_entry(&ix, ids[i])->version = (uint64_t)i;
        present[i] = true;
    }
    assert_int_equal(ix.used, NKEYS);
    /* Remove a random half, then check every key against the model. */
    for (int r = 0; r < NKEYS / 2; r++) {
        int i = (int)(next_rand() % NKEYS);
        if (!present[i])
            continue;
        rk_index_remove(&ix, ids[i]);
        present[i] = false;
    }
    uint32_t live = 0;
    for (int i = 0; i < NKEYS; i++) {
        int n = mkkey(k, i);
        uint32_t id = rk_index_find(&ix, k, (uint32_t)n, rk_index_hash(k, (uint32_t)n));
        if (!present[i]) {
            assert_int_equal(id, RK_IX_NONE);
            continue;
        }
        live++;
        assert_int_equal(id, ids[i]);
        assert_int_equal(rk_index_entry(&ix, id)->version, (uint64_t)i);
        assert_int_equal(rk_index_entry(&ix, id)->klen, n);
        assert_memory_equal(rk_index_entry(&ix, id)->key, k, (size_t)n);
    }
    assert_int_equal(ix.used, live);
    /* Re-insert the removed ones: freed ids and key memory are reused. */
    uint32_t high = ix.high;
    for (int i = 0; i < NKEYS; i++) {
        if (present[i])
            continue;
        int n = mkkey(k, i);
        assert_int_equal(
            rk_index_insert(&ix, k, (uint32_t)n, rk_index_hash(k, (uint32_t)n), 0, &ids[i]), 0);
    }
    assert_int_equal(ix.high, high);
    assert_int_equal(ix.used, NKEYS);
    rk_index_fini(&ix);
}

static void test_memory_per_key(void **state)
{
    (void)state;
    struct rk_index ix;
    assert_int_equal(rk_index_init(&ix), 0);
    char k[17];
    for (int i = 0; i < 200000; i++) {
        snprintf(k, sizeof(k), "%016x", i);
        uint32_t id;
        assert_int_equal(rk_index_insert(&ix, k, 16, rk_index_hash(k, 16), 0, &id), 0);
    }
    double per_key = (double)rk_index_bytes(&ix) / 200000 - 16;
    print_message("index bytes per key beyond a 16-byte key: %.1f\n", per_key);
    /* 48 B entry + 8 B of partition-list links + slots at 3/4 load. */
    assert_true(per_key <= 72.0);
    rk_index_fini(&ix);
}

/* Every partition's list holds exactly the live entries of that partition,
 * each once, after random inserts, removals and moves between partitions. */
#define LKEYS  4000
#define LPARTS 37
static void check_lists(const struct rk_index *ix, const int *part)
{
    static uint8_t seen[LKEYS];
    memset(seen, 0, sizeof(seen));
    uint32_t total = 0;
    for (uint16_t p = 0; p < LPARTS + 5; p++) {
        uint32_t prev = RK_IX_NONE;
        for (uint32_t id = rk_index_first(ix, p); id != RK_IX_NONE; id = rk_index_next(ix, id)) {
            const struct rk_ix_entry *e = rk_index_entry(ix, id);
            assert_non_null(e->key);
            assert_int_equal(e->partition, p);
            char num[16] = {0};
            memcpy(num, e->key + 1,
                   e->klen - 1u < sizeof(num) - 1 ? e->klen - 1u : sizeof(num) - 1);
            int i = atoi(num);
            assert_true(i >= 0 && i < LKEYS);
            assert_int_equal(part[i], p);
            assert_int_equal(seen[i], 0);
            seen[i] = 1;
            total++;
            assert_true(id != prev);
            prev = id;
        }
    }
    assert_int_equal(total, ix->used);
}

static void test_partition_lists(void **state)
{
    (void)state;
    struct rk_index ix;
    assert_int_equal(rk_index_init(&ix), 0);
    static int part[LKEYS];
    static uint32_t ids[LKEYS];
    for (int i = 0; i < LKEYS; i++)
        part[i] = -1;
    char k[32];
    for (int step = 0; step < 60000; step++) {
        int i = (int)(next_rand() % LKEYS);
        int n = snprintf(k, sizeof(k), "k%d", i);
        uint16_t p = (uint16_t)(next_rand() % LPARTS);
        if (part[i] < 0) {
            assert_int_equal(
                rk_index_insert(&ix, k, (uint32_t)n, rk_index_hash(k, (uint32_t)n), p, &ids[i]), 0);
            part[i] = p;
        } else if (next_rand() % 3 == 0) {
            assert_int_equal(rk_index_set_partition(&ix, ids[i], p), 0);
            part[i] = p;
        } else {
            rk_index_remove(&ix, ids[i]);
            part[i] = -1;
        }
        if (step % 10000 == 0)
            check_lists(&ix, part);
    }
    check_lists(&ix, part);
    assert_int_equal(rk_index_first(&ix, 60000), RK_IX_NONE); /* never used */
    rk_index_fini(&ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find_remove),
        cmocka_unit_test(test_partition_lists),
        cmocka_unit_test(test_memory_per_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

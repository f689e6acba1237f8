/* Block codec: seal/open round trips compressed and raw, incompressible
 * data stays raw, every single-bit flip of a sealed block is detected, and
 * header checks tell zeros (end of data) from garbage. And the rank that
 * breaks equal-version ties. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "storage/record.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A raw payload of n JSON-like records; returns its length. */
static uint32_t make_payload(uint8_t *buf, int n, bool random_values)
{
    uint32_t len = 0;
    uint64_t x = 42;
    for (int i = 0; i < n; i++) {
        char k[32], v[160];
        int kl = snprintf(k, sizeof(k), "key-%06d", i);
        int vl =
            snprintf(v, sizeof(v), "{\"id\":%d,\"user\":\"user_%d\",\"active\":true,\"score\":%d}",
                     i, i * 31, i % 100);
        if (random_values)
            for (int j = 0; j < vl; j++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                v[j] = (char)(x >> 56);
            }
        struct rk_rec_hdr h = {.version = (uint64_t)i << 16,
                               .vlen = (uint32_t)vl,
                               .klen = (uint16_t)kl,
                               .partition = (uint16_t)i};
        rk_rec_encode(buf + len, &h, k, v);
        len += rk_rec_size((uint32_t)kl, (uint32_t)vl);
    }
    return len;
}

static void round_trip(bool compress, bool random_values, bool want_lz4)
{
    static uint8_t raw[RK_BLOCK_TARGET * 2], blk[RK_BLOCK_TARGET * 3], out[RK_BLOCK_TARGET * 2];
    uint32_t len = make_payload(raw, 120, random_values);
    uint32_t n = rk_blk_seal(blk, raw, len, 120, RK_BLK_COMMIT, compress);
    struct rk_blk_hdr h;
    memcpy(&h, blk, sizeof(h));
    assert_int_equal(rk_blk_check_hdr(&h, n - sizeof(h)), 0);
    assert_int_equal(!!(h.flags & RK_BLK_LZ4), want_lz4);
    assert_true(h.flags & RK_BLK_COMMIT);
    assert_int_equal(h.raw_len, len);
    assert_int_equal(h.count, 120);
    assert_int_equal(rk_blk_open(&h, blk + sizeof(h), out), 0);
    assert_memory_equal(out, raw, len);
    if (want_lz4)
        assert_true(h.stored_len * 2 < len);
    /* Walk the records back out. */
    uint32_t off = 0;
    for (int i = 0; i < 120; i++) {
        struct rk_rec_hdr rh;
        const uint8_t *k, *v;
        int sz = rk_rec_decode(out, len, off, &rh, &k, &v);
        assert_true(sz > 0);
        assert_int_equal(rh.version, (uint64_t)i << 16);
        off += (uint32_t)sz;
    }
    assert_int_equal(off, len);
}

static void test_round_trips(void **state)
{
    (void)state;
    round_trip(true, false, true);
    round_trip(false, false, false);
}

static void test_incompressible_stays_raw(void **state)
{
    (void)state;
    static uint8_t raw[8192], blk[8192 + 1024], out[8192];
    uint64_t x = 7;
    for (size_t i = 0; i < sizeof(raw); i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        raw[i] = (uint8_t)(x >> 56);
    }
    uint32_t n = rk_blk_seal(blk, raw, sizeof(raw), 1, 0, true);
    struct rk_blk_hdr h;
    memcpy(&h, blk, sizeof(h));
    assert_false(h.flags & RK_BLK_LZ4);
    assert_int_equal(h.stored_len, sizeof(raw));
    assert_int_equal(n, sizeof(h) + sizeof(raw));
    assert_int_equal(rk_blk_open(&h, blk + sizeof(h), out), 0);
    assert_memory_equal(out, raw, sizeof(raw));
}

static void test_every_bit_flip_detected(void **state)
{
    (void)state;
    static uint8_t raw[RK_BLOCK_TARGET], blk[RK_BLOCK_TARGET * 2];
    uint32_t len = make_payload(raw, 40, false);
    uint32_t n = rk_blk_seal(blk, raw, len, 40, 0, true);
    for (uint32_t bit = 0; bit < n * 8; bit++) {
        blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct rk_blk_hdr h;
        memcpy(&h, blk, sizeof(h));
        int rc = rk_blk_check_hdr(&h, n - sizeof(h));
        if (rc == 0) { /* a reader allocates whatever raw_len says */
            uint8_t *out = malloc(h.raw_len);
            assert_non_null(out);
            rc = rk_blk_open(&h, blk + sizeof(h), out);
            free(out);
        }
        if (rc == 0)
            fail_msg("flipping bit %u of a %u-byte block went unnoticed", bit, n);
        blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

static void test_header_checks(void **state)
{
    (void)state;
    struct rk_blk_hdr zero = {0}, bad = {.magic = 0x12345678, .count = 1};
    assert_int_equal(rk_blk_check_hdr(&zero, 100), 1);
    assert_int_equal(rk_blk_check_hdr(&bad, 100), RK_ECORRUPT);
    struct rk_blk_hdr big = {.magic = RK_BLOCK_MAGIC, .count = 1, .raw_len = 10, .stored_len = 200};
    assert_int_equal(rk_blk_check_hdr(&big, 100), RK_ECORRUPT); /* longer than the file */
    /* A record whose lengths run past its block. */
    uint8_t buf[64] = {0};
    struct rk_rec_hdr h = {.klen = 10, .vlen = 1000};
    memcpy(buf, &h, sizeof(h));
    const uint8_t *k, *v;
    assert_int_equal(rk_rec_decode(buf, sizeof(buf), 0, &h, &k, &v), RK_ECORRUPT);
}

/* The equal-version order: a pure function of the record's content (so
 * every replica computes it alike), a delete above every value, and the
 * expiry taking part (the same bytes with another TTL are another write). */
static void test_rank_breaks_version_ties(void **state)
{
    (void)state;
    uint64_t a = rk_record_rank(false, "alpha", 5, 0), b = rk_record_rank(false, "bravo", 5, 0);
    assert_true(a == rk_record_rank(false, "alpha", 5, 0));
    assert_true(a != b);
    assert_true(a != rk_record_rank(false, "alpha", 5, 1700000000000ull));
    assert_true(rk_record_rank(false, "", 0, 0) == rk_record_rank(false, NULL, 0, 0));
    uint64_t tomb = rk_record_rank(true, "ignored", 7, 99);
    assert_true(tomb == UINT64_MAX);
    assert_true(a < tomb && b < tomb);

    assert_true(rk_record_newer(2, 0, 1, UINT64_MAX)); /* a newer version, whatever the rank */
    assert_false(rk_record_newer(1, UINT64_MAX, 2, 0));
    assert_true(rk_record_newer(5, 9, 5, 8)); /* a tie: the higher rank */
    assert_false(rk_record_newer(5, 8, 5, 9));
    assert_false(rk_record_newer(5, 8, 5, 8)); /* the same write twice */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_incompressible_stays_raw),
        cmocka_unit_test(test_every_bit_flip_detected),
        cmocka_unit_test(test_header_checks),
        cmocka_unit_test(test_rank_breaks_version_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

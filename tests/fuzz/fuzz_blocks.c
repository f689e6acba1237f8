/* Fuzz target for the segment block codec (record.h), what recovery,
 * merge and reads decode from every block of a segment file: the block
 * header check, the checksum and lz4 decompression (rk_blk_open), and the
 * records of the raw payload (rk_rec_decode). The first input byte is a
 * mode: bit 0 recomputes the block checksum and bit 1 sets stored_len to
 * what follows the header, so mutations reach the decompressor and the
 * record parser instead of stopping at the checksum; the rest is one
 * block as it lies on disk.
 *
 * Properties: no crash or out-of-bounds read whatever the bytes; without
 * the fix-up a block whose checksum does not match is refused; every
 * record decoded lies inside the raw payload and encodes back to exactly
 * its bytes; a payload whose records all decode, sealed again (with and
 * without lz4), opens to the same payload. */
#include "fuzz.h"
#include "storage/record.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#define HDR ((uint32_t)sizeof(struct rk_blk_hdr))

static uint64_t checksum(const struct rk_blk_hdr *h, const uint8_t *stored, uint32_t n)
{
    uint8_t *b = malloc(offsetof(struct rk_blk_hdr, checksum) + n + 1);
    CHECK(b != NULL);
    memcpy(b, h, offsetof(struct rk_blk_hdr, checksum));
    memcpy(b + offsetof(struct rk_blk_hdr, checksum), stored, n);
    uint64_t sum = XXH3_64bits(b, offsetof(struct rk_blk_hdr, checksum) + n);
    free(b);
    return sum;
}

/* The count records of raw (len bytes); true when all decode. */
static bool check_records(const uint8_t *raw, uint32_t len, uint32_t count)
{
    uint32_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct rk_rec_hdr h;
        const uint8_t *k, *v;
        int n = rk_rec_decode(raw, len, off, &h, &k, &v);
        if (n < 0) {
            CHECK(n == RK_ECORRUPT);
            return false;
        }
        CHECK(h.klen > 0 && (uint32_t)n == rk_rec_size(h.klen, h.vlen) && off + (uint32_t)n <= len);
        CHECK(k == raw + off + sizeof(h) && v == k + h.klen);
        uint8_t *again = malloc((size_t)n);
        CHECK(again != NULL);
        rk_rec_encode(again, &h, k, v);
        CHECK(memcmp(again, raw + off, (size_t)n) == 0);
        free(again);
        off += (uint32_t)n;
    }
    return true;
}

/* raw sealed again opens to the same bytes. */
static void reseal(const uint8_t *raw, uint32_t len, uint32_t count, uint16_t flags, bool lz4)
{
    uint8_t *blk = malloc(rk_blk_bound(len)), *back = malloc(len ? len : 1);
    CHECK(blk && back);
    uint32_t n = rk_blk_seal(blk, raw, len, count, flags & RK_BLK_COMMIT, lz4);
    struct rk_blk_hdr h;
    memcpy(&h, blk, HDR);
    CHECK(n == HDR + h.stored_len && h.raw_len == len && h.count == count);
    CHECK(rk_blk_check_hdr(&h, n - HDR) == 0);
    CHECK(rk_blk_open(&h, blk + HDR, back) == 0 && memcmp(back, raw, len) == 0);
    free(back);
    free(blk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 + HDR)
        return 0;
    uint8_t mode = data[0];
    size_t avail = size - 1 - HDR;
    if (avail > RK_STORAGE_BLOCK_RAW_MAX)
        return 0;
    struct rk_blk_hdr h;
    memcpy(&h, data + 1, HDR);
    /* The payload in a buffer of its exact size: a read past it is caught. */
    uint8_t *stored = malloc(avail ? avail : 1);
    CHECK(stored != NULL);
    memcpy(stored, data + 1 + HDR, avail);
    if (mode & 2)
        h.stored_len = (uint32_t)avail;
    bool fixed = (mode & 1) && h.stored_len <= avail;
    if (fixed)
        h.checksum = checksum(&h, stored, h.stored_len);
    int rc = rk_blk_check_hdr(&h, avail);
    CHECK(rc == 0 || rc == 1 || rc == RK_ECORRUPT);
    if (rc != 0) {
        free(stored);
        return 0;
    }
    CHECK(h.stored_len <= avail && h.raw_len <= RK_STORAGE_BLOCK_RAW_MAX && h.count > 0);
    uint8_t *raw = malloc(h.raw_len ? h.raw_len : 1);
    CHECK(raw != NULL);
    rc = rk_blk_open(&h, stored, raw);
    CHECK(rc == 0 || rc == RK_ECORRUPT);
    if (!fixed && h.checksum != checksum(&h, stored, h.stored_len))
        CHECK(rc == RK_ECORRUPT);
    if (rc == 0 && check_records(raw, h.raw_len, h.count)) {
        reseal(raw, h.raw_len, h.count, h.flags, false);
        reseal(raw, h.raw_len, h.count, h.flags, true);
    }
    free(raw);
    free(stored);
    return 0;
}

/* A block of n records (keys "key-<i>", JSON-like values, every third a
 * tombstone) after a mode byte. */
static uint8_t *make_block(uint8_t mode, unsigned n, bool lz4, uint16_t flags, size_t *len)
{
    uint8_t raw[4096];
    uint32_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        char k[32], v[128];
        int kl = snprintf(k, sizeof(k), "key-%u", i);
        int vl = i % 3 == 2 ? 0 : snprintf(v, sizeof(v), "{\"n\":%u,\"name\":\"user_%u\"}", i, i);
        struct rk_rec_hdr h = {.version = (uint64_t)(i + 1) << 16,
                               .expiry_ms = i == 1 ? 1767225600000ull : 0,
                               .vlen = (uint32_t)vl,
                               .klen = (uint16_t)kl,
                               .partition = (uint16_t)(i * 37),
                               .flags = i % 3 == 2 ? RK_REC_TOMBSTONE : 0};
        rk_rec_encode(raw + off, &h, k, v);
        off += rk_rec_size(h.klen, h.vlen);
    }
    uint8_t *b = malloc(1 + rk_blk_bound(off));
    if (!b)
        return NULL;
    b[0] = mode;
    *len = 1 + rk_blk_seal(b + 1, raw, off, n, flags, lz4);
    return b;
}

uint8_t *rk_fuzz_seed(size_t *len)
{
    return make_block(1, 6, true, RK_BLK_COMMIT, len);
}

/* Compressed and raw blocks, with and without the commit flag and the
 * checksum fix-up, and one record alone. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    static const struct {
        const char *name;
        uint8_t mode;
        unsigned n;
        bool lz4;
        uint16_t flags;
    } c[] = {
        {"lz4-commit-fixup", 1, 6, true, RK_BLK_COMMIT},
        {"lz4-as-on-disk", 0, 12, true, 0},
        {"raw-commit-fixup", 3, 4, false, RK_BLK_COMMIT},
        {"raw-as-on-disk", 0, 3, false, RK_BLK_COMMIT},
        {"one-record", 1, 1, false, 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        size_t len;
        uint8_t *b = make_block(c[i].mode, c[i].n, c[i].lz4, c[i].flags, &len);
        if (b)
            put(c[i].name, b, len);
        free(b);
    }
}

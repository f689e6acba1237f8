/* Record and block codecs. */
#include "storage/record.h"
#include "util/err.h"

#include <lz4.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

void rk_rec_encode(uint8_t *dst, const struct rk_rec_hdr *h, const void *key, const void *val)
{
    memcpy(dst, h, sizeof(*h));
    memcpy(dst + sizeof(*h), key, h->klen);
    if (h->vlen)
        memcpy(dst + sizeof(*h) + h->klen, val, h->vlen);
}

int rk_rec_decode(const uint8_t *raw, uint32_t len, uint32_t off, struct rk_rec_hdr *h,
                  const uint8_t **key, const uint8_t **val)
{
    if (off > len || len - off < sizeof(*h))
        return RK_ECORRUPT;
    memcpy(h, raw + off, sizeof(*h));
    uint64_t size = (uint64_t)sizeof(*h) + h->klen + h->vlen;
    if (size > len - off || h->klen == 0)
        return RK_ECORRUPT;
    *key = raw + off + sizeof(*h);
    *val = *key + h->klen;
    return (int)size;
}

uint64_t rk_record_rank(bool tombstone, const void *val, uint32_t vlen, uint64_t expiry_ms)
{
    if (tombstone)
        return UINT64_MAX;
    uint64_t h = XXH3_64bits_withSeed(val, vlen, expiry_ms);
    return h == UINT64_MAX ? UINT64_MAX - 1 : h;
}

uint32_t rk_blk_bound(uint32_t raw_len)
{
    uint32_t lz = (uint32_t)LZ4_compressBound((int)raw_len);
    return (uint32_t)sizeof(struct rk_blk_hdr) + (lz > raw_len ? lz : raw_len);
}

static uint64_t blk_checksum(const struct rk_blk_hdr *h, const uint8_t *stored)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, h, offsetof(struct rk_blk_hdr, checksum));
    XXH3_64bits_update(&st, stored, h->stored_len);
    return XXH3_64bits_digest(&st);
}

uint32_t rk_blk_seal(uint8_t *dst, const uint8_t *raw, uint32_t raw_len, uint32_t count,
                     uint16_t flags, bool compress)
{
    struct rk_blk_hdr h = {.magic = RK_BLOCK_MAGIC, .raw_len = raw_len, .count = count};
    uint8_t *payload = dst + sizeof(h);
    int n = 0;
    if (compress && raw_len >= 64) /* lz4 cannot win on tiny inputs */
        n = LZ4_compress_default((const char *)raw, (char *)payload, (int)raw_len,
                                 (int)(rk_blk_bound(raw_len) - sizeof(h)));
    if (n > 0 && (uint32_t)n < raw_len) {
        h.flags = (uint16_t)(flags | RK_BLK_LZ4);
        h.stored_len = (uint32_t)n;
    } else {
        h.flags = (uint16_t)(flags & ~RK_BLK_LZ4);
        h.stored_len = raw_len;
        memcpy(payload, raw, raw_len);
    }
    h.checksum = blk_checksum(&h, payload);
    memcpy(dst, &h, sizeof(h));
    return (uint32_t)sizeof(h) + h.stored_len;
}

int rk_blk_check_hdr(const struct rk_blk_hdr *h, uint64_t avail)
{
    static const struct rk_blk_hdr zero;
    if (memcmp(h, &zero, sizeof(zero)) == 0)
        return 1;
    if (h->magic != RK_BLOCK_MAGIC || h->stored_len > avail || h->count == 0)
        return RK_ECORRUPT;
    if (h->raw_len > RK_STORAGE_BLOCK_RAW_MAX)
        return RK_ECORRUPT;
    if (!(h->flags & RK_BLK_LZ4) && h->stored_len != h->raw_len)
        return RK_ECORRUPT;
    return 0;
}

int rk_blk_open(const struct rk_blk_hdr *h, const uint8_t *stored, uint8_t *raw)
{
    if (blk_checksum(h, stored) != h->checksum)
        return RK_ECORRUPT;
    if (!(h->flags & RK_BLK_LZ4)) {
        memcpy(raw, stored, h->raw_len);
        return 0;
    }
    int n =
        LZ4_decompress_safe((const char *)stored, (char *)raw, (int)h->stored_len, (int)h->raw_len);
    return n == (int)h->raw_len ? 0 : RK_ECORRUPT;
}

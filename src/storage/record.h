/* On-disk formats of the storage engine: segment header, block header and
 * record header, and the block codec (lz4 + XXH3 checksum). Pure functions,
 * no I/O. Layouts are little-endian and pinned with static_assert because
 * files outlive the binary that wrote them.
 *
 * Segment file:  [segment header 32 B][block][block]...[zeros of preallocation]
 * Block:         [block header 32 B][stored_len bytes: lz4 or raw payload]
 * Raw payload:   [record header 26 B][key][value] repeated `count` times
 */
#ifndef RK_RECORD_H
#define RK_RECORD_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "disk formats are little-endian and decoded by memcpy");

#define RK_SEG_MAGIC   0x47455356424B5200ull /* "\0RKBVSEG" as a little-endian u64 */
#define RK_SEG_FORMAT  1u
#define RK_BLOCK_MAGIC 0x4C424B52u /* "RKBL": lets a scan tell data from preallocated zeros */
#define RK_BLOCK_TARGET                                                                            \
    (16u * 1024) /* lz4 reaches ~2.3x on 16 KiB of JSON-like data, 1.02x per value */
/* A record larger than the target gets a block of its own. */
#define RK_STORAGE_BLOCK_RAW_MAX (26u + RK_STORAGE_KEY_MAX + RK_STORAGE_VALUE_MAX)

enum { RK_BLK_LZ4 = 1u << 0, RK_BLK_COMMIT = 1u << 1 };
enum { RK_REC_TOMBSTONE = 1u << 0 };

struct __attribute__((packed)) rk_seg_hdr {
    uint64_t magic;
    uint32_t format;
    uint32_t flags;
    uint64_t id;    /* creation counter: unique, names the file */
    uint64_t order; /* age of the newest data inside (merge outputs inherit
                       their inputs' largest order): tombstone dropping needs it */
};
static_assert(sizeof(struct rk_seg_hdr) == 32, "segment header layout");
static_assert(offsetof(struct rk_seg_hdr, order) == 24, "segment header layout");

struct __attribute__((packed)) rk_blk_hdr {
    uint32_t magic;
    uint16_t flags;
    uint16_t reserved;
    uint32_t raw_len;    /* payload bytes after decompression */
    uint32_t stored_len; /* payload bytes on disk */
    uint32_t count;      /* records in the block */
    uint32_t reserved2;
    uint64_t checksum; /* XXH3-64 of the header's first 24 bytes + stored payload */
};
static_assert(sizeof(struct rk_blk_hdr) == 32, "block header layout");
static_assert(offsetof(struct rk_blk_hdr, checksum) == 24, "block header layout");

struct __attribute__((packed)) rk_rec_hdr {
    uint64_t version;
    uint64_t expiry_ms;
    uint32_t vlen;
    uint16_t klen;
    uint16_t partition;
    uint8_t flags;
    uint8_t reserved;
};
static_assert(sizeof(struct rk_rec_hdr) == 26, "record header layout");
static_assert(offsetof(struct rk_rec_hdr, partition) == 22, "record header layout");

/* Bytes a record takes in a raw payload. */
static inline uint32_t rk_rec_size(uint32_t klen, uint32_t vlen)
{
    return (uint32_t)sizeof(struct rk_rec_hdr) + klen + vlen;
}

/* Encode a record at dst (rk_rec_size bytes). */
void rk_rec_encode(uint8_t *dst, const struct rk_rec_hdr *h, const void *key, const void *val);

/* Decode the record at raw[off] within a raw payload of len bytes. Fills h,
 * *key, *val (pointers into raw). Returns its size, or RK_ECORRUPT if it does
 * not fit. */
int rk_rec_decode(const uint8_t *raw, uint32_t len, uint32_t off, struct rk_rec_hdr *h,
                  const uint8_t **key, const uint8_t **val);

/* Last-writer-wins at equal versions. Two coordinators on different nodes
 * can issue the same version (HLC) for the same key, and a record carries
 * no node id to break the tie with; keeping whichever write arrived first
 * would let replicas diverge forever. So the tie is broken by the record's
 * own content, which every replica sees alike: a tombstone ranks highest
 * (a delete wins a tie), a value ranks by XXH3-64 of its bytes seeded with
 * its expiry_ms, clamped below UINT64_MAX so that a delete always wins.
 * Equal versions of equal rank are the same write delivered twice (equal
 * value and expiry): there is nothing to choose. Pure; any thread. */
uint64_t rk_record_rank(bool tombstone, const void *val, uint32_t vlen, uint64_t expiry_ms);

/* Whether the record of version va and rank ra wins over the one of version
 * vb and rank rb: a higher version, or the same version and a strictly
 * higher rank. Equal versions and ranks: false (keep what is there). */
static inline bool rk_record_newer(uint64_t va, uint64_t ra, uint64_t vb, uint64_t rb)
{
    return va > vb || (va == vb && ra > rb);
}

/* Seal a raw payload into a block at dst: compress with lz4 when compress is
 * set and it saves space, else copy raw; fill the header and checksum.
 * dst must hold rk_blk_bound(raw_len) bytes. Returns total bytes (header +
 * stored payload). */
uint32_t rk_blk_seal(uint8_t *dst, const uint8_t *raw, uint32_t raw_len, uint32_t count,
                     uint16_t flags, bool compress);
uint32_t rk_blk_bound(uint32_t raw_len);

/* Check a block header read from disk: magic, plausible lengths (stored_len
 * at most avail bytes). Returns 0, RK_ECORRUPT, or 1 when the header is all
 * zeros (end of data in a preallocated file). */
int rk_blk_check_hdr(const struct rk_blk_hdr *h, uint64_t avail);

/* Verify the checksum of a block (header + stored payload) and produce its
 * raw payload into raw (h->raw_len bytes). 0 or RK_ECORRUPT. */
int rk_blk_open(const struct rk_blk_hdr *h, const uint8_t *stored, uint8_t *raw);

#endif

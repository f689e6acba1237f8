/* Segment files and their index files: creation, sealing, sequential block
 * reading with checksum verification, torn-tail analysis, and the index file
 * format. No index or policy here: storage.c and merge.c decide what to do
 * with what these functions read. Single-threaded. */
#ifndef RK_SEGMENT_H
#define RK_SEGMENT_H

#include "storage/record.h"
#include "util/fsutil.h"

#include <stdbool.h>
#include <stdint.h>

enum { RK_SEG_F_MERGED = 1u << 0 }; /* written by merge: never the active segment */

/* "seg-<16 hex>.rks" / ".rkh" inside dir. */
void rk_seg_path(char *out, size_t len, const char *dir, uint64_t id, const char *ext);

/* Create DIR/seg-ID.rks (or leave it as ".rks.tmp" when tmp) with its header,
 * preallocate prealloc bytes, fsync file and dir. The final name appears
 * only with a durable header. Returns 0 with *fd, -errno or RK_ENOSPACE. */
int rk_seg_create(const char *dir, uint64_t id, uint64_t order, uint32_t flags, uint64_t prealloc,
                  bool tmp, int *fd);

/* Open an existing segment read-write and check its header. *size is the
 * file size. 0, -errno or RK_ECORRUPT. */
int rk_seg_open(const char *path, int *fd, struct rk_seg_hdr *hdr, uint64_t *size);

/* Sequential block reader over [32, limit) of a segment file. */
struct rk_blkreader {
    int fd;
    uint64_t off;   /* offset of the next block */
    uint64_t limit; /* file size */
    uint8_t *buf;   /* read-ahead window */
    uint64_t buf_off;
    uint32_t buf_len, buf_cap;
    uint8_t *raw; /* decoded payload of the last block */
    uint32_t raw_cap;
};

int rk_blkreader_init(struct rk_blkreader *r, int fd, uint64_t start, uint64_t limit);
void rk_blkreader_fini(struct rk_blkreader *r);

/* Read the block at r->off. 1: *h and *raw (valid until the next call) are
 * set and r->off advanced; 0: clean end (all-zero header or end of file);
 * RK_ECORRUPT: bad header or checksum at r->off (left unchanged). */
int rk_blkreader_next(struct rk_blkreader *r, struct rk_blk_hdr *h, const uint8_t **raw);

/* After a read stopped at off: is there any non-zero byte in [off, limit)?
 * *last_nz = one past the last non-zero byte (off if none), *valid_after =
 * whether a block with a valid checksum and the commit flag starts after
 * off (a hole followed by acknowledged data: corruption, not a torn tail). */
int rk_seg_tail_scan(int fd, uint64_t off, uint64_t limit, uint64_t *last_nz, bool *valid_after);

/* Read and decode the block at off into a buffer from alloc (size h->raw_len).
 * 0, -errno, RK_ECORRUPT. */
int rk_seg_read_block(int fd, uint64_t off, uint64_t limit, struct rk_blk_hdr *h,
                      uint8_t *(*alloc)(void *arg, uint32_t len), void *arg, uint8_t **raw);

/* Index file: [header 64][entry + key]...[XXH3-64 of all before]. */
/* "RKVHINT1": index files were called hint files when the format was fixed;
 * the magic stays, so that data dirs written before open unchanged. */
#define RK_INDEX_FILE_MAGIC 0x31544E4948564B52ull
struct __attribute__((packed)) rk_index_file_hdr {
    uint64_t magic;
    uint32_t format;
    uint32_t reserved;
    uint64_t seg_id;
    uint64_t count;     /* entries */
    uint64_t seg_end;   /* data end of the segment */
    uint64_t rec_bytes; /* raw bytes of every record in the segment, dead ones too */
    uint64_t raw_bytes; /* raw payload bytes of all blocks */
    uint64_t nblocks;
};
static_assert(sizeof(struct rk_index_file_hdr) == 64, "index file header layout");

struct __attribute__((packed)) rk_index_file_ent {
    uint64_t version;
    uint64_t expiry_ms;
    uint32_t block;
    uint32_t off;
    uint32_t len;
    uint16_t klen;
    uint16_t partition;
    uint8_t flags;
};
static_assert(sizeof(struct rk_index_file_ent) == 33, "index file entry layout");

/* Read a whole index file and check magic, segment id and checksum. 0 with a
 * malloc'd buffer in *buf (caller frees), -errno, or RK_ECORRUPT. */
int rk_index_file_load(const char *path, uint64_t seg_id, uint8_t **buf, size_t *len);

/* Writer: streams entries to "<path>.tmp"; finish writes the header and the
 * checksum trailer, fsyncs, renames to path and fsyncs dir. */
struct rk_index_file_writer {
    int fd;
    uint8_t *buf;
    size_t len, cap;
    uint64_t written;
    char path[RK_PATH_MAX];
};

int rk_index_file_begin(struct rk_index_file_writer *w, const char *path);
int rk_index_file_add(struct rk_index_file_writer *w, const struct rk_index_file_ent *e,
                      const void *key);
/* Flush buffered entries when more than about 1 MiB is buffered. */
int rk_index_file_flush(struct rk_index_file_writer *w, bool force);
int rk_index_file_finish(struct rk_index_file_writer *w, const struct rk_index_file_hdr *h,
                         const char *dir);
void rk_index_file_abort(struct rk_index_file_writer *w);

#endif

/* Segment and index files.
 *
 * Invariants the rest of the engine relies on:
 * 1. Blocks are only appended. A group-commit batch is one write of one or
 *    more blocks; only its last block has RK_BLK_COMMIT, so a batch whose
 *    write was torn is recognisable and dropped whole.
 * 2. The active segment is preallocated and the preallocation reads as
 *    zeros, so an all-zero block header marks the end of data.
 * 3. Past the end of data there is nothing but zeros, or the remains of a
 *    write that was never acknowledged. A valid committed block after a bad
 *    one therefore means acknowledged data was damaged: corruption, never a
 *    torn tail (rk_seg_tail_scan tells them apart).
 * 4. A sealed segment is truncated to its data and fsynced before the next
 *    active segment is created, so only the newest non-merged segment can
 *    have a torn tail.
 * 5. An index file appears under its final name only complete and fsynced
 *    (written as .tmp, renamed, dir fsynced); a damaged one is ignored and
 *    the segment scanned instead.
 */
#include "storage/segment.h"
#include "util/err.h"
#include "util/grow.h"
#include "util/fsutil.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define READAHEAD (1u << 20)

void rk_seg_path(char *out, size_t len, const char *dir, uint64_t id, const char *ext)
{
    snprintf(out, len, "%s/seg-%016llx.%s", dir, (unsigned long long)id, ext);
}

int rk_seg_create(const char *dir, uint64_t id, uint64_t order, uint32_t flags, uint64_t prealloc,
                  bool tmp, int *fd_out)
{
    /* Built under a .tmp name and renamed once its header is durable, so a
     * crash never leaves a segment file without a header. */
    char path[RK_PATH_MAX], final[RK_PATH_MAX];
    rk_seg_path(path, sizeof(path), dir, id, "rks.tmp");
    rk_seg_path(final, sizeof(final), dir, id, "rks");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    struct rk_seg_hdr h = {
        .magic = RK_SEG_MAGIC, .format = RK_SEG_FORMAT, .flags = flags, .id = id, .order = order};
    int rc = rk_io_prealloc(fd, prealloc > sizeof(h) ? prealloc : sizeof(h));
    if (rc == 0)
        rc = rk_io_pwrite(fd, &h, sizeof(h), 0);
    if (rc == 0)
        rc = rk_io_fsync(fd);
    if (rc == 0 && !tmp && rename(path, final) < 0)
        rc = -errno;
    if (rc == 0)
        rc = rk_fs_sync_dir(dir);
    if (rc < 0) {
        close(fd);
        unlink(path);
        if (!tmp)
            unlink(final);
        return rc == -ENOSPC ? RK_ENOSPACE : rc;
    }
    *fd_out = fd;
    return 0;
}

int rk_seg_open(const char *path, int *fd_out, struct rk_seg_hdr *hdr, uint64_t *size)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0)
        rc = rk_io_pread(fd, hdr, sizeof(*hdr), 0);
    if (rc == 0 && (hdr->magic != RK_SEG_MAGIC || hdr->format != RK_SEG_FORMAT))
        rc = RK_ECORRUPT;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *size = (uint64_t)st.st_size;
    *fd_out = fd;
    return 0;
}

int rk_blkreader_init(struct rk_blkreader *r, int fd, uint64_t start, uint64_t limit)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->off = start;
    r->limit = limit;
    r->buf_cap = READAHEAD;
    r->buf = malloc(r->buf_cap);
    return r->buf ? 0 : -ENOMEM;
}

void rk_blkreader_fini(struct rk_blkreader *r)
{
    free(r->buf);
    free(r->raw);
    memset(r, 0, sizeof(*r));
}

/* Make [off, off+len) available in r->buf; returns a pointer into it. */
static const uint8_t *window(struct rk_blkreader *r, uint64_t off, uint32_t len, int *rc)
{
    if (off >= r->buf_off && off + len <= r->buf_off + r->buf_len)
        return r->buf + (off - r->buf_off);
    if (len > r->buf_cap) {
        uint8_t *nb = realloc(r->buf, len);
        if (!nb) {
            *rc = -ENOMEM;
            return NULL;
        }
        r->buf = nb;
        r->buf_cap = len;
    }
    uint64_t want = r->limit - off < r->buf_cap ? r->limit - off : r->buf_cap;
    if (want < len) {
        *rc = RK_ECORRUPT;
        return NULL;
    }
    *rc = rk_io_pread(r->fd, r->buf, (size_t)want, off);
    if (*rc < 0)
        return NULL;
    r->buf_off = off;
    r->buf_len = (uint32_t)want;
    return r->buf;
}

int rk_blkreader_next(struct rk_blkreader *r, struct rk_blk_hdr *h, const uint8_t **raw)
{
    int rc = 0;
    if (r->limit - r->off < sizeof(*h))
        return 0;
    const uint8_t *p = window(r, r->off, sizeof(*h), &rc);
    if (!p)
        return rc;
    memcpy(h, p, sizeof(*h));
    rc = rk_blk_check_hdr(h, r->limit - r->off - sizeof(*h));
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    p = window(r, r->off, (uint32_t)sizeof(*h) + h->stored_len, &rc);
    if (!p)
        return rc;
    if (h->raw_len > r->raw_cap) {
        uint8_t *nr = realloc(r->raw, h->raw_len);
        if (!nr)
            return -ENOMEM;
        r->raw = nr;
        r->raw_cap = h->raw_len;
    }
    rc = rk_blk_open(h, p + sizeof(*h), r->raw);
    if (rc < 0)
        return rc;
    *raw = r->raw;
    r->off += sizeof(*h) + h->stored_len;
    return 1;
}

/* Does a valid committed block start at buf[i]? (buf holds [base, base+n)) */
static bool valid_block_at(int fd, uint64_t pos, uint64_t limit)
{
    struct rk_blkreader r;
    if (rk_blkreader_init(&r, fd, pos, limit) < 0)
        return false;
    struct rk_blk_hdr h;
    const uint8_t *raw;
    bool ok = rk_blkreader_next(&r, &h, &raw) == 1 && (h.flags & RK_BLK_COMMIT);
    rk_blkreader_fini(&r);
    return ok;
}

int rk_seg_tail_scan(int fd, uint64_t off, uint64_t limit, uint64_t *last_nz, bool *valid_after)
{
    *last_nz = off;
    *valid_after = false;
    uint8_t *buf = malloc(READAHEAD);
    if (!buf)
        return -ENOMEM;
    const uint32_t magic = RK_BLOCK_MAGIC;
    int rc = 0;
    for (uint64_t pos = off; pos < limit && rc == 0;) {
        size_t n = limit - pos < READAHEAD ? (size_t)(limit - pos) : READAHEAD;
        rc = rk_io_pread(fd, buf, n, pos);
        if (rc < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (buf[i] == 0)
                continue;
            *last_nz = pos + i + 1;
            /* Skip the block header at off itself: it is the one that failed. */
            if (!*valid_after && pos + i > off && i + 4 <= n && memcmp(buf + i, &magic, 4) == 0)
                *valid_after = valid_block_at(fd, pos + i, limit);
        }
        pos += n;
    }
    free(buf);
    return rc;
}

int rk_seg_read_block(int fd, uint64_t off, uint64_t limit, struct rk_blk_hdr *h,
                      uint8_t *(*alloc)(void *arg, uint32_t len), void *arg, uint8_t **raw)
{
    if (off + sizeof(*h) > limit)
        return RK_ECORRUPT;
    int rc = rk_io_pread(fd, h, sizeof(*h), off);
    if (rc < 0)
        return rc;
    if (rk_blk_check_hdr(h, limit - off - sizeof(*h)) != 0)
        return RK_ECORRUPT;
    uint8_t *stored = malloc(h->stored_len ? h->stored_len : 1);
    if (!stored)
        return -ENOMEM;
    rc = rk_io_pread(fd, stored, h->stored_len, off + sizeof(*h));
    if (rc == 0) {
        *raw = alloc(arg, h->raw_len);
        rc = *raw ? rk_blk_open(h, stored, *raw) : -ENOMEM;
    }
    free(stored);
    return rc;
}

int rk_index_file_load(const char *path, uint64_t seg_id, uint8_t **buf_out, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    size_t len = rc == 0 ? (size_t)st.st_size : 0;
    uint8_t *buf = NULL;
    if (rc == 0 && len < sizeof(struct rk_index_file_hdr) + 8)
        rc = RK_ECORRUPT;
    if (rc == 0 && !(buf = malloc(len)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = rk_io_pread(fd, buf, len, 0);
    close(fd);
    if (rc == 0) {
        struct rk_index_file_hdr h;
        uint64_t sum;
        memcpy(&h, buf, sizeof(h));
        memcpy(&sum, buf + len - 8, 8);
        if (h.magic != RK_INDEX_FILE_MAGIC || h.format != 1 || h.seg_id != seg_id ||
            XXH3_64bits(buf, len - 8) != sum)
            rc = RK_ECORRUPT;
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *buf_out = buf;
    *len_out = len;
    return 0;
}

/* path ".tmp": where a file is written before its rename. */
static int tmp_path(char tmp[RK_PATH_MAX], const char *path)
{
    int n = snprintf(tmp, RK_PATH_MAX, "%s.tmp", path);
    return n < 0 || n >= RK_PATH_MAX ? -ENAMETOOLONG : 0;
}

int rk_index_file_begin(struct rk_index_file_writer *w, const char *path)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "%s", path);
    char tmp[RK_PATH_MAX];
    if (tmp_path(tmp, path) < 0)
        return -ENAMETOOLONG;
    w->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (w->fd < 0)
        return -errno;
    w->cap = 1u << 20;
    w->buf = malloc(w->cap);
    if (!w->buf) {
        rk_index_file_abort(w);
        return -ENOMEM;
    }
    /* The header is written last, when the counts are known; reserve it. */
    w->len = sizeof(struct rk_index_file_hdr);
    memset(w->buf, 0, w->len);
    return 0;
}

int rk_index_file_add(struct rk_index_file_writer *w, const struct rk_index_file_ent *e,
                      const void *key)
{
    size_t need = sizeof(*e) + e->klen;
    if (rk_grow(&w->buf, &w->cap, w->len + need, 1, 4096, 0) < 0)
        return -ENOMEM;
    memcpy(w->buf + w->len, e, sizeof(*e));
    memcpy(w->buf + w->len + sizeof(*e), key, e->klen);
    w->len += need;
    return 0;
}

int rk_index_file_flush(struct rk_index_file_writer *w, bool force)
{
    if (w->len == 0 || (!force && w->len < (1u << 20)))
        return 0;
    int rc = rk_io_pwrite(w->fd, w->buf, w->len, w->written);
    if (rc < 0)
        return rc;
    w->written += w->len;
    w->len = 0;
    return 0;
}

int rk_index_file_finish(struct rk_index_file_writer *w, const struct rk_index_file_hdr *h,
                         const char *dir)
{
    if (w->written == 0 && w->len < sizeof(*h))
        w->len = sizeof(*h);
    int rc = rk_index_file_flush(w, true);
    if (rc == 0)
        rc = rk_io_pwrite(w->fd, h, sizeof(*h), 0);
    /* The header is only known now, so the trailer's checksum is computed
     * over the file as written (from the page cache). */
    if (rc == 0) {
        XXH3_state_t *st = XXH3_createState();
        uint8_t *chunk = malloc(1u << 20);
        rc = (st && chunk) ? 0 : -ENOMEM;
        if (rc == 0) {
            XXH3_64bits_reset(st);
            for (uint64_t pos = 0; rc == 0 && pos < w->written;) {
                size_t n = w->written - pos < (1u << 20) ? w->written - pos : (1u << 20);
                rc = rk_io_pread(w->fd, chunk, n, pos);
                if (rc == 0)
                    XXH3_64bits_update(st, chunk, n);
                pos += n;
            }
            uint64_t sum = XXH3_64bits_digest(st);
            if (rc == 0)
                rc = rk_io_pwrite(w->fd, &sum, 8, w->written);
        }
        XXH3_freeState(st);
        free(chunk);
    }
    if (rc == 0)
        rc = rk_io_fsync(w->fd);
    char tmp[RK_PATH_MAX];
    if (rc == 0)
        rc = tmp_path(tmp, w->path);
    if (rc == 0 && rename(tmp, w->path) < 0)
        rc = -errno;
    if (rc == 0)
        rc = rk_fs_sync_dir(dir);
    if (rc < 0) {
        rk_index_file_abort(w);
        return rc;
    }
    close(w->fd);
    free(w->buf);
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    return 0;
}

void rk_index_file_abort(struct rk_index_file_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        char tmp[RK_PATH_MAX];
        if (tmp_path(tmp, w->path) == 0)
            unlink(tmp);
    }
    free(w->buf);
    memset(w, 0, sizeof(*w));
    w->fd = -1;
}

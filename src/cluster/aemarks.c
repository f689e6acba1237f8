/* Anti-entropy marks (see aemarks.h): a bitmap with a population count,
 * loaded once at open and written whole by rk_aemarks_save. */
#include "cluster/aemarks.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/le.h"
#include "util/log.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MAGIC          0x45414B52u /* "RKAE" read as a little-endian u32 */
#define VERSION        1           /* bumped on any change of the layout */
#define HDR            16u         /* magic u32, version u8, pad 3, partitions u32, pad 4 */
#define SUM            8u          /* XXH3_64 of header and bitmap */
#define PARTITIONS_MAX 65536u      /* the engine's 16-bit partition field */
#define FILE_MAX       (HDR + PARTITIONS_MAX / 8 + SUM)

static_assert(FILE_MAX == 8216, "header, largest bitmap, checksum");

struct rk_aemarks {
    char *dir;
    uint32_t partitions, count;
    bool dirty;
    uint8_t bits[]; /* ceil(partitions / 8) bytes */
};

static size_t bitmap_len(uint32_t partitions)
{
    return (partitions + 7u) / 8u;
}

/* The whole file for m into buf (FILE_MAX bytes); returns its length. */
static size_t encode(const struct rk_aemarks *m, uint8_t *buf)
{
    size_t bl = bitmap_len(m->partitions);
    memset(buf, 0, HDR);
    rk_le_put32(buf, MAGIC);
    buf[4] = VERSION;
    rk_le_put32(buf + 8, m->partitions);
    memcpy(buf + HDR, m->bits, bl);
    rk_le_put64(buf + HDR + bl, XXH3_64bits(buf, HDR + bl));
    return HDR + bl + SUM;
}

/* Check a file read into buf and copy its bitmap into m; 0 or
 * RK_ECORRUPT with why filled. */
static int decode(struct rk_aemarks *m, const uint8_t *buf, size_t len, char *why, size_t wl)
{
    size_t bl = bitmap_len(m->partitions);
    if (len < HDR || rk_le_get32(buf) != MAGIC) {
        snprintf(why, wl, "not an anti-entropy marks file");
        return RK_ECORRUPT;
    }
    if (buf[4] != VERSION) {
        snprintf(why, wl, "format version %u, expected %u", buf[4], VERSION);
        return RK_ECORRUPT;
    }
    uint32_t p = rk_le_get32(buf + 8);
    if (p != m->partitions) {
        snprintf(why, wl, "written for %u partitions, expected %u", p, m->partitions);
        return RK_ECORRUPT;
    }
    if (len != HDR + bl + SUM) {
        snprintf(why, wl, "%zu bytes, expected %zu", len, (size_t)(HDR + bl + SUM));
        return RK_ECORRUPT;
    }
    if (rk_le_get64(buf + HDR + bl) != XXH3_64bits(buf, HDR + bl)) {
        snprintf(why, wl, "checksum mismatch");
        return RK_ECORRUPT;
    }
    memcpy(m->bits, buf + HDR, bl);
    if (m->partitions % 8)
        m->bits[bl - 1] &= (uint8_t)((1u << (m->partitions % 8)) - 1);
    m->count = 0;
    for (size_t i = 0; i < bl; i++)
        m->count += (uint32_t)__builtin_popcount(m->bits[i]);
    return 0;
}

/* Load dir/ae-marks into m; any problem but a missing file is logged and
 * leaves m empty. */
static void load(struct rk_aemarks *m)
{
    char path[1200], why[160] = "";
    uint8_t buf[FILE_MAX];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", m->dir, RK_AEMARKS_FILE);
    int rc = rk_fs_read_file(path, buf, FILE_MAX, &len);
    if (rc == 0)
        rc = decode(m, buf, len, why, sizeof(why));
    if (rc < 0 && rc != -ENOENT)
        rk_warn("aemarks",
                "ignoring %s: %s; partitions it marked wait for a full anti-entropy pass", path,
                why[0] ? why : rk_strerror(rc));
}

int rk_aemarks_open(struct rk_aemarks **out, const char *dir, uint32_t partitions)
{
    if (partitions == 0 || partitions > PARTITIONS_MAX || (partitions & (partitions - 1)))
        return RK_EINVAL;
    struct rk_aemarks *m = calloc(1, sizeof(*m) + bitmap_len(partitions));
    if (!m)
        return -ENOMEM;
    m->dir = strdup(dir);
    if (!m->dir) {
        free(m);
        return -ENOMEM;
    }
    m->partitions = partitions;
    load(m);
    *out = m;
    return 0;
}

void rk_aemarks_close(struct rk_aemarks *m)
{
    if (!m)
        return;
    free(m->dir);
    free(m);
}

bool rk_aemarks_mark(struct rk_aemarks *m, uint32_t part)
{
    if (part >= m->partitions || rk_aemarks_test(m, part))
        return false;
    m->bits[part / 8] |= (uint8_t)(1u << (part % 8));
    m->count++;
    m->dirty = true;
    return true;
}

bool rk_aemarks_clear(struct rk_aemarks *m, uint32_t part)
{
    if (!rk_aemarks_test(m, part))
        return false;
    m->bits[part / 8] &= (uint8_t) ~(1u << (part % 8));
    m->count--;
    m->dirty = true;
    return true;
}

bool rk_aemarks_test(const struct rk_aemarks *m, uint32_t part)
{
    return part < m->partitions && (m->bits[part / 8] >> (part % 8) & 1u);
}

uint32_t rk_aemarks_count(const struct rk_aemarks *m)
{
    return m->count;
}

uint32_t rk_aemarks_partitions(const struct rk_aemarks *m)
{
    return m->partitions;
}

bool rk_aemarks_dirty(const struct rk_aemarks *m)
{
    return m->dirty;
}

int rk_aemarks_save(struct rk_aemarks *m)
{
    if (!m->dirty)
        return 0;
    uint8_t buf[FILE_MAX];
    size_t len = encode(m, buf);
    int rc = rk_fs_write_file(m->dir, RK_AEMARKS_FILE, buf, len);
    if (rc == 0)
        m->dirty = false;
    return rc;
}

uint32_t rk_aemarks_each(const struct rk_aemarks *m, void (*fn)(uint32_t part, void *arg),
                         void *arg)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < bitmap_len(m->partitions); i++) {
        uint8_t b = m->bits[i]; /* a copy: fn may clear the bit it is given */
        for (; b; b &= (uint8_t)(b - 1)) {
            fn(i * 8 + (uint32_t)__builtin_ctz(b), arg);
            n++;
        }
    }
    return n;
}

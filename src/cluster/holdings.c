/* Holdings bitmaps, their wire encoding and their file (holdings.h). */
#include "cluster/holdings.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/le.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define FILE_MAGIC 0x31444C4Fu /* "OLD1": the file's first word */

int rk_holdings_init(struct rk_holdings *h, uint32_t parts)
{
    memset(h, 0, sizeof(*h));
    h->held = calloc((parts + 7u) / 8u ? (parts + 7u) / 8u : 1u, 1);
    if (!h->held)
        return -ENOMEM;
    h->parts = parts;
    return 0;
}

void rk_holdings_fini(struct rk_holdings *h)
{
    free(h->held);
    memset(h, 0, sizeof(*h));
}

void rk_holdings_copy(struct rk_holdings *dst, const struct rk_holdings *src)
{
    uint8_t *bits = dst->held;
    memcpy(bits, src->held, (src->parts + 7u) / 8u);
    *dst = *src;
    dst->held = bits;
}

void rk_holdings_set(struct rk_holdings *h, uint32_t p, bool on)
{
    if (p >= h->parts)
        return;
    if (on)
        h->held[p / 8] |= (uint8_t)(1u << (p % 8));
    else
        h->held[p / 8] &= (uint8_t) ~(1u << (p % 8));
}

uint32_t rk_holdings_count(const struct rk_holdings *h)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < (h->parts + 7u) / 8u; i++)
        n += (uint32_t)__builtin_popcount(h->held[i]);
    return n;
}

void rk_holdings_bump(struct rk_holdings *h, uint64_t now_ms)
{
    h->version = now_ms > h->version ? now_ms : h->version + 1;
}

void rk_holdings_encode(const struct rk_holdings *h, uint8_t *buf)
{
    rk_le_put32(buf, h->parts);
    rk_le_put64(buf + 4, h->version);
    rk_le_put64(buf + 12, h->genesis_digest);
    rk_le_put64(buf + 20, h->genesis_ms);
    memcpy(buf + RK_HOLDINGS_WIRE_FIXED, h->held, (h->parts + 7u) / 8u);
}

int rk_holdings_decode(struct rk_holdings *h, const uint8_t *buf, size_t len)
{
    if (len < RK_HOLDINGS_WIRE_FIXED || rk_le_get32(buf) != h->parts ||
        len != rk_holdings_wire_len(h->parts))
        return RK_EMALFORMED;
    h->version = rk_le_get64(buf + 4);
    h->genesis_digest = rk_le_get64(buf + 12);
    h->genesis_ms = rk_le_get64(buf + 20);
    memcpy(h->held, buf + RK_HOLDINGS_WIRE_FIXED, (h->parts + 7u) / 8u);
    /* Bits past the last partition are ignored: clear them. */
    if (h->parts % 8)
        h->held[h->parts / 8] &= (uint8_t)((1u << (h->parts % 8)) - 1u);
    return 0;
}

int rk_holdings_load(struct rk_holdings *h, const char *dir)
{
    char path[RK_PATH_MAX];
    size_t wl = rk_holdings_wire_len(h->parts), len;
    uint8_t *buf = malloc(wl + 12);
    if (!buf)
        return -ENOMEM;
    int rc = rk_fs_path(path, dir, RK_HOLDINGS_FILE);
    if (rc == 0)
        rc = rk_fs_read_file(path, buf, wl + 12, &len);
    if (rc == -ENOENT)
        rc = RK_ENOTFOUND;
    else if (rc == -EFBIG || (rc == 0 && (len != wl + 12 || rk_le_get32(buf) != FILE_MAGIC ||
                                          rk_le_get64(buf + 4 + wl) != XXH3_64bits(buf, 4 + wl) ||
                                          rk_holdings_decode(h, buf + 4, wl) < 0)))
        rc = RK_ECORRUPT;
    free(buf);
    return rc;
}

int rk_holdings_save(const struct rk_holdings *h, const char *dir)
{
    size_t wl = rk_holdings_wire_len(h->parts);
    uint8_t *buf = malloc(wl + 12);
    if (!buf)
        return -ENOMEM;
    rk_le_put32(buf, FILE_MAGIC);
    rk_holdings_encode(h, buf + 4);
    rk_le_put64(buf + 4 + wl, XXH3_64bits(buf, 4 + wl));
    int rc = rk_fs_write_file(dir, RK_HOLDINGS_FILE, buf, wl + 12);
    free(buf);
    return rc;
}

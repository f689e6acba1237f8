/* Fuzz target for the transfer rows a client reads from members (client/
 * xfer.h: kvctl transfers, the dashboard): a TRANSFERS reply, a NUL, then
 * the source's PARTS reply, each parsed for display (RK_AJSON_ONE_LINE)
 * as the client does, then every "receiving" row read, given its totals
 * and its rate and ETA computed.
 *
 * Properties: no crash, leak or out-of-bounds read; every text field of a
 * row is NUL-terminated inside its field and holds no control byte (it is
 * printed in a table); a row takes the totals of the PARTS row of its
 * partition when it streams from that source, and keeps none otherwise;
 * rates are finite and not negative, an ETA is -1 (unknown) or a finite
 * number of seconds not below zero. */
#include "fuzz.h"
#include "client/xfer.h"

#include <math.h>
#include <string.h>

#define SOURCE "node-2"
#define NOW_MS 1765000100000ull

static bool clean(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return false;
    return true;
}

/* The PARTS row of partition p, if any (the last one wins, as in the
 * reader). */
static const struct rk_ajson_val *parts_row(const struct rk_ajson_val *parts, uint64_t p)
{
    const struct rk_ajson_val *found = NULL;
    for (const struct rk_ajson_val *e = rk_ajson_first(parts); e; e = rk_ajson_next(e))
        if (rk_ajson_u64_or0(rk_ajson_index(e, 0)) == p)
            found = e;
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    struct rk_ajson *xf, *pd = NULL;
    if (rk_ajson_parse(&xf, (const char *)data, n1, RK_AJSON_ONE_LINE) != 0)
        return 0;
    if (nul && rk_ajson_parse(&pd, (const char *)nul + 1, size - n1 - 1, RK_AJSON_ONE_LINE) != 0)
        pd = NULL;
    const struct rk_ajson_val *arr = rk_ajson_path(rk_ajson_root(xf), "receiving");
    static struct rk_xfer_row rows[256];
    size_t n = 0;
    for (const struct rk_ajson_val *e = rk_ajson_first(arr); e && n < 256; e = rk_ajson_next(e))
        rk_xfer_row_read(&rows[n++], "node-1", e);
    const struct rk_ajson_val *parts = pd ? rk_ajson_path(rk_ajson_root(pd), "parts") : NULL;
    rk_xfer_rows_sizes(rows, n, SOURCE, parts);
    for (size_t i = 0; i < n; i++) {
        const struct rk_xfer_row *r = &rows[i];
        CHECK(strcmp(r->to, "node-1") == 0);
        CHECK(clean(r->from, sizeof r->from) && clean(r->state, sizeof r->state) &&
              clean(r->why, sizeof r->why));
        const struct rk_ajson_val *pr =
            strcmp(r->from, SOURCE) == 0 ? parts_row(parts, r->part) : NULL;
        if (pr)
            CHECK(r->keys_total == rk_ajson_u64_or0(rk_ajson_index(pr, 1)) &&
                  r->bytes_total == rk_ajson_u64_or0(rk_ajson_index(pr, 2)));
        else
            CHECK(r->keys_total == 0 && r->bytes_total == 0);
        double rate = rk_xfer_rate(r, NOW_MS), eta = rk_xfer_eta(r, NOW_MS);
        CHECK(isfinite(rate) && rate >= 0);
        CHECK(eta == -1 || (isfinite(eta) && eta >= 0));
    }
    rk_ajson_free(xf);
    rk_ajson_free(pd);
    return 0;
}

static const char seed_text[] =
    "{\"receiving\":[{\"partition\":3,\"from\":\"node-2\",\"state\":\"streaming\","
    "\"keys_done\":120,\"bytes_done\":65536,\"started_ms\":1765000000000},"
    "{\"partition\":9,\"from\":\"node-3\",\"state\":\"waiting\",\"why\":\"source node-3 down\","
    "\"keys_done\":0,\"bytes_done\":0,\"started_ms\":0}]}"
    "\0"
    "{\"parts\":[[3,1000,524288,1],[9,10,100,0]]}";

uint8_t *rk_fuzz_seed(size_t *len)
{
    *len = sizeof(seed_text) - 1;
    uint8_t *b = malloc(*len);
    if (b)
        memcpy(b, seed_text, *len);
    return b;
}

/* Transfer rows (xfer.h). */
#include "client/xfer.h"

#include <stdio.h>
#include <string.h>

void rk_xfer_row_read(struct rk_xfer_row *r, const char *to, const struct rk_ajson_val *e)
{
    memset(r, 0, sizeof(*r));
    r->part = (uint32_t)rk_ajson_u64_or0(rk_ajson_member(e, "partition"));
    snprintf(r->to, sizeof r->to, "%s", to);
    rk_ajson_copy_text(r->from, sizeof r->from, rk_ajson_member(e, "from"));
    rk_ajson_copy_text(r->state, sizeof r->state, rk_ajson_member(e, "state"));
    rk_ajson_copy_text(r->why, sizeof r->why, rk_ajson_member(e, "why"));
    r->keys_done = rk_ajson_u64_or0(rk_ajson_member(e, "keys_done"));
    r->bytes_done = rk_ajson_u64_or0(rk_ajson_member(e, "bytes_done"));
    r->started_ms = rk_ajson_u64_or0(rk_ajson_member(e, "started_ms"));
}

void rk_xfer_rows_sizes(struct rk_xfer_row *r, size_t n, const char *from,
                        const struct rk_ajson_val *parts)
{
    for (const struct rk_ajson_val *e = rk_ajson_first(parts); e; e = rk_ajson_next(e)) {
        uint64_t p = rk_ajson_u64_or0(rk_ajson_index(e, 0));
        for (size_t i = 0; i < n; i++) {
            if (r[i].part == p && strcmp(r[i].from, from) == 0) {
                r[i].keys_total = rk_ajson_u64_or0(rk_ajson_index(e, 1));
                r[i].bytes_total = rk_ajson_u64_or0(rk_ajson_index(e, 2));
            }
        }
    }
}

double rk_xfer_rate(const struct rk_xfer_row *r, uint64_t now_ms)
{
    return r->started_ms && now_ms > r->started_ms
               ? (double)r->bytes_done * 1000.0 / (double)(now_ms - r->started_ms)
               : 0.0;
}

double rk_xfer_eta(const struct rk_xfer_row *r, uint64_t now_ms)
{
    double rate = rk_xfer_rate(r, now_ms);
    if (rate <= 0 || !r->bytes_total)
        return -1;
    return r->bytes_done >= r->bytes_total ? 0 : (double)(r->bytes_total - r->bytes_done) / rate;
}

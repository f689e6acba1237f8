/* The admin API's transfer rows, read once for every reader (kvctl
 * transfers, the dashboard): a TRANSFERS reply's "receiving" rows, the
 * sizes a source's PARTS reply gives them, and the rate and ETA that
 * follow. Bytes so far count a transfer's messages (tree comparisons
 * included), the total the partition's records at the source: the ETA is
 * an estimate. */
#ifndef RK_CLIENT_XFER_H
#define RK_CLIENT_XFER_H

#include "client/ajson.h"

#include <stddef.h>
#include <stdint.h>

struct rk_xfer_row {
    uint32_t part;
    char from[64], to[64], state[16], why[160];
    uint64_t keys_done, bytes_done, started_ms;
    uint64_t keys_total, bytes_total; /* 0: the source did not say */
};

/* Fill r from one "receiving" row e of member to's TRANSFERS reply (the
 * totals zero). */
void rk_xfer_row_read(struct rk_xfer_row *r, const char *to, const struct rk_ajson_val *e);

/* Give the rows streaming from member from their totals, from its PARTS
 * reply's rows [partition, keys, bytes, replica] (parts: the "parts"
 * array). */
void rk_xfer_rows_sizes(struct rk_xfer_row *r, size_t n, const char *from,
                        const struct rk_ajson_val *parts);

/* Bytes per second since the transfer started, by now_ms (the wall
 * clock); 0 when not known. */
double rk_xfer_rate(const struct rk_xfer_row *r, uint64_t now_ms);

/* Seconds left at that rate; -1 when not known. */
double rk_xfer_eta(const struct rk_xfer_row *r, uint64_t now_ms);

#endif

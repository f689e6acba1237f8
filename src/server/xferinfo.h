/* TRANSFERS (admin): the partitions this node is receiving or waiting to
 * receive, for kvctl transfers (docs/TRANSFERS.md §6). */
#ifndef RK_SERVER_XFERINFO_H
#define RK_SERVER_XFERINFO_H

#include "proto/proto.h"
#include "server/worker.h"
#include "util/jbuf.h"

/* {"node", "max_concurrent", "max_bytes_per_second", "held", "agreed",
 *  "receiving": [{"partition", "from", "state": "streaming"|"waiting",
 *                 "keys_done", "bytes_done", "started_ms", "why"}]} */
enum rk_status rk_admin_transfers(struct rk_shared *sh, struct rk_jbuf *b);

/* Whether this node is to receive p in view v: it is pending for p (in
 * its own view) and does not hold it yet. */
bool rk_xferinfo_receiving(const struct rk_view *v, uint32_t p);

/* "receiving":[...]: TRANSFERS' rows for view v (one per partition this
 * node is to receive), as a member of an object. 0, or -ENOMEM (b then
 * holds nothing of them). Any thread. */
int rk_xferinfo_rows(struct rk_shared *sh, const struct rk_view *v, struct rk_jbuf *b);

#endif

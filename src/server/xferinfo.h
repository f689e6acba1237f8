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

#endif

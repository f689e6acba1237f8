/* This node's holdings on the main loop (docs/TRANSFERS.md): loaded at
 * start, the cluster's genesis, transfers reported complete by the
 * workers, and copies dropped once their new owners hold them. */
#ifndef RK_SERVER_HOLDING_H
#define RK_SERVER_HOLDING_H

#include "cluster/gossip.h"
#include "cluster/holdings.h"
#include "server/worker.h"

#include <stddef.h>

/* Load DATA_DIR/holdings into h (initialised). A first start over data
 * written without holdings (an upgrade) holds every partition it has
 * records of. Then every partition not held is dropped from storage (a
 * copy dropped before a restart comes back from the segments; a transfer
 * cut short starts again). Workers created, not started. 0, or -1 with one
 * line in err. */
int rk_holding_load(struct rk_shared *sh, struct rk_holdings *h, char *err, size_t errlen);

/* One look (main loop, every HOLDING_LOOK): transfers completed, genesis,
 * drops. Commits (saves and gossips) the holdings when they changed. */
void rk_holding_review(struct rk_shared *sh, struct rk_gossip *g);

#endif

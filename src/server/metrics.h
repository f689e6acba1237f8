/* /metrics: the node's figures in the Prometheus text exposition format
 * (version 0.0.4). Every figure is read from what the admin replies read
 * (admin_int.h: the workers' published counters summed, the anti-entropy
 * and transfer summary, the published view, the HEALTH and READY rules),
 * so `kvctl stats`, the dashboard and a scrape never disagree on how one
 * is computed. Names are ringkv_*, with the unit in the name.
 */
#ifndef RK_METRICS_H
#define RK_METRICS_H

#include "server/worker.h"
#include "util/jbuf.h"

/* Append the exposition of sh to b (b->oom set if an append failed).
 * Any thread: reads only published copies and atomics, never waits on a
 * worker loop. The text has a fixed set of series (per worker, per
 * listener and per member state at most), so its size is bounded by the
 * node's shape, not by its data or traffic. */
void rk_metrics_render(struct rk_shared *sh, struct rk_jbuf *b);

#endif

/* OVERVIEW (admin): everything the dashboard shows of one node, in one
 * compact reply, so a refresh costs one small request per node (AE's full
 * reply alone is ~80 KB at 256 partitions; this one is a few KB). Each
 * figure comes from where the other admin replies take it (admin_int.h,
 * xferinfo.h, aeprogress.h): the numbers agree with STATS, AE and
 * TRANSFERS taken at the same moment.
 *
 * Reply (one JSON object; field names are a stable interface):
 *   "node", "state": "serving"|"degraded"|"stopping" (as STATUS),
 *   "uptime_s", "now_ms" (the node's wall clock: "ago" is now_ms - x_ms),
 *   "partitions", "replicas", "read_quorum", "write_quorum": the node's
 *     configured cluster.* values,
 *   "requests": {"get","put","del","admin"}, "busy", "errors": the STATS
 *     counters, cumulative since start,
 *   "latency": {"bounds_us": [16, 32, ... 2^24], "counts": [one per
 *     bound, then one for above the last]}: client data requests (PUT,
 *     GET, DEL) from their receipt by a worker to their reply leaving,
 *     cumulative since start, over every worker (util/histo.h: slot i
 *     counts (bounds_us[i-1], bounds_us[i]]); STATS' "latency_us" gives
 *     its p50 and p99,
 *   "held", "pending", "marked": bitmaps over the partitions as lowercase
 *     hex, ceil(partitions / 4) characters; character i covers partitions
 *     4i..4i+3, partition p sets bit 1 << (p % 4) of character p / 4.
 *     held: the partitions this node holds (its holdings); pending: the
 *     ones it is to receive (pending for them in its own view, not held:
 *     TRANSFERS' rows); marked: the ones with anti-entropy marks,
 *   "hints": {"pending", "pending_bytes", "by_target": {"<node>": N}}:
 *     hints stored on this node, in all and per node they wait for,
 *   "ae": {"enabled", "round", "in_progress", "compared", "total",
 *     "keys_repaired", "bytes" (this round's: keys pulled + pushed, bytes
 *     of its exchanges sent and received), "keys_per_second" (this round's),
 *     "max_keys_per_second"
 *     (the budget), "eta_s" (null when unknown), "finished_ms" (of the
 *     last round done), "marked" (partitions marked),
 *     "peers": [{"node", "result", "ok_ms", "last_ms"}]}: the same figures
 *     as AE's summary; per member of the view (not this node, not left),
 *     its most recent exchange over every partition (result and last_ms
 *     of the one that ended last, ok_ms the latest start of a completed
 *     one; result "never" and 0 when none),
 *   "transfers": {"pending", "active", "done", "failed", "keys", "bytes",
 *     "waiting" (as STATS' transfers), "receiving": [TRANSFERS' rows]},
 *   "events": [{"seq", "ms", "kind": "member"|"transfer"|"ae"|"node",
 *     "text"}]: the node's last 32 events, oldest first (util/events.h),
 *   "placement" (only when asked, and only once the node has a view):
 *     {"members": [ids], "serve": [[i, ...] per partition],
 *      "pending": [[i, ...] per partition]}: Serve(p) and Pending(p) of the
 *     node's current view (cluster/view.h), as indices into "members".
 */
#ifndef RK_SERVER_OVERVIEW_H
#define RK_SERVER_OVERVIEW_H

#include "proto/proto.h"
#include "server/worker.h"
#include "util/jbuf.h"

#define RK_OVERVIEW_EVENTS 32 /* events in a reply: a dashboard pane's worth */

/* The OVERVIEW reply for req into b: OK, or MALFORMED (b holds the
 * one-line error) when req's KEY is anything but "placement". Answered
 * before the node has a view too (bitmaps empty, no placement). Any
 * thread. */
enum rk_status rk_admin_overview(struct rk_shared *sh, const struct rk_msg *req, struct rk_jbuf *b);

#endif

/* Admin requests (STATUS, STATS, HEALTH, READY, LOCATE, RING, AE, REPAIR, PARTS,
 * TRANSFERS, OVERVIEW; docs/ADMIN.md): answered by whichever
 * worker received them, from the shared state and the counters every
 * worker publishes, as one JSON object per reply. */
#ifndef RK_ADMIN_H
#define RK_ADMIN_H

#include "cluster/gossip.h"
#include "proto/proto.h"
#include "server/worker.h"

/* Build the JSON reply for req (any of the above) into *text (malloc'd,
 * caller frees). Returns the reply status: OK, or UNAVAILABLE when a probe says no (HEALTH: a
 * worker loop has stalled; READY: not ready), or UNSUPPORTED for an opcode
 * this node does not serve. Any thread. */
enum rk_status rk_admin_reply(struct rk_shared *sh, const struct rk_msg *req, char **text);

/* The MEMBERS reply: the member table and recent refusals as one JSON
 * object (malloc'd; NULL if out of memory). The gossip loop's thread. */
char *rk_admin_members(struct rk_shared *sh, const struct rk_gossip *g);

/* Publish whether this node is cut off from its cluster: why is the
 * one-line reason, NULL when it is not. The main loop. */
void rk_admin_set_island(struct rk_shared *sh, const char *why);

/* True while this node is cut off, with the reason copied into why. Any
 * thread. */
bool rk_admin_island(struct rk_shared *sh, char *why, size_t len);

/* {"message": "<formatted line>"} (malloc'd; NULL if out of memory). */
char *rk_admin_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

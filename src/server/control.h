/* Membership requests (MEMBERS, JOIN, LEAVE, REMOVE): workers hand them to
 * the main loop, which owns the gossip table, through a bounded mailbox;
 * they are answered here, on the main loop, straight on the client socket.
 */
#ifndef RK_CONTROL_H
#define RK_CONTROL_H

#include "cluster/gossip.h"
#include "server/mailbox.h"
#include "server/worker.h"

#include <ev.h>

struct rk_control {
    struct rk_shared *sh;
    struct rk_gossip *g;
    struct rk_mailbox mb;
    void (*left)(void *arg); /* called once a LEAVE has been announced */
    void *arg;
};

/* Start serving on loop; sets sh->control. 0 or -ENOMEM. Main thread,
 * before the workers start. */
int rk_control_init(struct rk_control *c, struct ev_loop *loop, struct rk_shared *sh,
                    struct rk_gossip *g, void (*left)(void *arg), void *arg);

/* Answer what is still queued, stop serving. After the workers stopped. */
void rk_control_fini(struct rk_control *c);

#endif

/* Membership requests on the main loop. Each one is answered exactly once
 * (OK with a JSON object, or an error status with a one-line reason), and
 * then no longer counts as in flight. */
#include "server/control.h"
#include "server/admin.h"
#include "util/err.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_QUEUE 256

static void on_leave_done(void *arg)
{
    struct rk_control *c = arg;
    if (c->left)
        c->left(c->arg);
}

/* Carry out req; *text gets the reply's TEXT (malloc'd). */
static enum rk_status serve(struct rk_control *c, const struct rk_msg *req, char **text)
{
    char arg[RK_MEMBER_ADDR_MAX + 1];
    switch (req->opcode) {
    case RK_OP_MEMBERS:
        *text = rk_admin_members(c->sh, c->g);
        return RK_ST_OK;
    case RK_OP_JOIN: {
        char err[256];
        if (!rk_proto_arg_text(req, arg, sizeof(arg)) || !rk_proto_arg_seed(arg)) {
            *text =
                strdup("join: the seed address must be tcp://HOST:PORT (a node's listen.gossip)");
            return RK_ST_MALFORMED;
        }
        if (rk_gossip_join(c->g, arg, err, sizeof(err)) < 0) {
            *text = strdup(err);
            return RK_ST_REFUSED;
        }
        *text = rk_admin_message("dialling %s; it shows in kvctl members once it answers", arg);
        return RK_ST_OK;
    }
    case RK_OP_LEAVE: {
        const struct rk_members *t = rk_gossip_members(c->g);
        size_t others = t->n - 1;
        if (rk_gossip_leave(c->g, on_leave_done, c) < 0) {
            *text = strdup("this node is already leaving");
            return RK_ST_REFUSED;
        }
        *text = rk_admin_message("leaving: announcing the departure to %zu member(s); this node "
                                 "stops once they have heard it",
                                 others);
        return RK_ST_OK;
    }
    case RK_OP_REMOVE: {
        bool force = req->has_force && req->force;
        if (!rk_proto_arg_text(req, arg, RK_MEMBER_ID_MAX + 1)) {
            *text = strdup("remove: give the NODE_ID of a member (see kvctl members)");
            return RK_ST_MALFORMED;
        }
        const struct rk_member *m = rk_members_find(rk_gossip_members(c->g), arg);
        const char *was = m ? rk_member_state_name(m->state) : "";
        char was_copy[16];
        snprintf(was_copy, sizeof(was_copy), "%s", was);
        int rc = rk_gossip_remove(c->g, arg, force);
        if (rc == RK_ENOTFOUND) {
            *text = rk_admin_message("no member %s (see kvctl members)", arg);
            return RK_ST_NOT_FOUND;
        }
        if (rc == RK_EINVAL) {
            *text = strdup("a node cannot remove itself; run kvctl leave on it instead");
            return RK_ST_REFUSED;
        }
        if (rc == RK_EBUSY) {
            char line[256];
            snprintf(line, sizeof(line),
                     "%s is %s; remove takes dead members out (add --force "
                     "to remove it anyway; a live node rejoins by refuting)",
                     arg, was_copy);
            *text = strdup(line);
            return RK_ST_REFUSED;
        }
        *text = rk_admin_message("removed %s (was %s); every member drops it as it hears the "
                                 "news",
                                 arg, was_copy);
        return RK_ST_OK;
    }
    default:
        *text = strdup("not a membership request");
        return RK_ST_UNSUPPORTED;
    }
}

static void on_request(struct rk_mailbox *mb, void *item, void *arg)
{
    (void)mb;
    struct rk_control *c = arg;
    nng_msg *msg = item;
    struct rk_msg req;
    char *text = NULL;
    /* The worker decoded it already; decode again for our own view. */
    enum rk_status st = rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req) == 0
                            ? serve(c, &req, &text)
                            : RK_ST_MALFORMED;
    struct rk_msg rep = {.opcode = req.opcode,
                         .flags = RK_MSG_REPLY,
                         .id = req.id,
                         .status = (uint16_t)st,
                         .has_text = true,
                         .text = (const uint8_t *)(text ? text : ""),
                         .tlen = (uint32_t)(text ? strlen(text) : 0)};
    if (rk_proto_msg_encode(msg, &rep) == 0) {
        rk_reply_send(c->sh, msg);
    } else {
        nng_msg_free(msg);
        atomic_fetch_sub(&c->sh->inflight, 1);
    }
    free(text);
}

int rk_control_init(struct rk_control *c, struct ev_loop *loop, struct rk_shared *sh,
                    struct rk_gossip *g, void (*left)(void *arg), void *arg)
{
    c->sh = sh;
    c->g = g;
    c->left = left;
    c->arg = arg;
    int rc = rk_mailbox_init(&c->mb, loop, CONTROL_QUEUE, on_request, c);
    if (rc == 0)
        sh->control = &c->mb;
    return rc;
}

void rk_control_fini(struct rk_control *c)
{
    if (!c->sh)
        return;
    c->sh->control = NULL;
    rk_mailbox_fini(&c->mb);
    c->sh = NULL;
}

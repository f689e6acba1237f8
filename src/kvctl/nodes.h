/* Commands that ask every member (kvctl plan, kvctl transfers): one admin
 * request to one node, and the member table of the node at -a. */
#ifndef RK_KVCTL_NODES_H
#define RK_KVCTL_NODES_H

#include "client/ajson.h"
#include "client/client.h"
#include "cluster/ring.h"
#include "kvctl/cli.h"

#include <stddef.h>

struct rk_kvctl_member {
    char id[RK_RING_ID_MAX + 1];
    char client[128];
    char gossip[128];
    char state[16];
};

/* One admin request op to addr, the reply parsed into *doc (freed by the
 * caller). On failure one line "CMD: WHO (ADDR) did not answer: WHY" and
 * RK_EXIT_CLUSTER; else RK_EXIT_OK. */
int rk_kvctl_ask(const struct rk_kvctl_opts *o, const char *cmd, const char *who, const char *addr,
                 enum rk_op op, struct rk_ajson **doc);

/* The member table of the node at -a, LEFT members left out: *out
 * (malloc'd), *n. Exit status as rk_kvctl_ask. */
int rk_kvctl_members(const struct rk_kvctl_opts *o, const char *cmd, struct rk_kvctl_member **out,
                     size_t *n);

#endif

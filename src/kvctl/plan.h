/* kvctl plan join ADDR [--id NODE_ID] | leave NODE_ID | remove NODE_ID:
 * what a membership change would move, without doing it. */
#ifndef RK_KVCTL_PLAN_H
#define RK_KVCTL_PLAN_H

#include "kvctl/cli.h"

/* argv[0] is "plan". Returns the exit status. */
int rk_plan_main(struct rk_kvctl_opts *o, int argc, char **argv);

#endif

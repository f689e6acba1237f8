/* kvctl transfers [--json]: every partition being received or waiting to
 * be, cluster-wide. */
#ifndef RK_KVCTL_XFERS_H
#define RK_KVCTL_XFERS_H

#include "kvctl/cli.h"

/* argv[0] is "transfers". Returns the exit status. */
int rk_transfers_main(struct rk_kvctl_opts *o, int argc, char **argv);

#endif

/* `kvctl bench`: the load generator (bench.c), run by kvctl's main thread. */
#ifndef RK_KVCTL_BENCH_H
#define RK_KVCTL_BENCH_H

#include "kvctl/cli.h"

/* `kvctl bench ARGS`: argv[0] is "bench"; o holds the global options given
 * before it. Prints its report or one error line; returns the exit code. */
int rk_bench_main(const struct rk_kvctl_opts *o, int argc, char **argv);

#endif

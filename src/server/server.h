/* The daemon's life cycle on the main thread: data dir and identity,
 * storage recovery in every worker, the client listener, signals (SIGTERM/
 * SIGINT: graceful stop; SIGHUP: reload), and the systemd notify protocol
 * (STATUS during recovery, READY once serving, WATCHDOG while every worker
 * loop turns, STOPPING on shutdown). */
#ifndef RK_SERVER_H
#define RK_SERVER_H

#include "config/config.h"

#include <stdbool.h>

#define RK_SERVER_RESTART 100 /* rk_server_run: stopped, run again (reapwatch.h) */

/* Run a node until it is told to stop. config_path (may be NULL: built-in
 * defaults) is re-read on SIGHUP. Storage verifies every segment at start;
 * a damaged one refuses the start (saying to use --repair) unless repair,
 * which moves it aside and marks its partitions for anti-entropy. Returns
 * the process exit code: 0 after a graceful stop, 1 when the node could
 * not start (the reason logged as one "error ringkvd: ..." line); or
 * RK_SERVER_RESTART after a graceful stop that asks the caller to start the
 * process again (its data dir is unlocked and its storage closed). */
int rk_server_run(const struct rk_config *cfg, const char *config_path, bool repair);

#endif

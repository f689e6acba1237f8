/* A node's data dir: created if missing, locked against a second ringkvd,
 * and stamped on first start with the node's id and the data layout
 * (workers, partitions) so a later start with a different identity or
 * layout refuses instead of misplacing data. */
#ifndef RK_NODE_H
#define RK_NODE_H

#include "config/config.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

/* Prepare c->data_dir for a node with nworkers workers. On success the id
 * to use is in id (the stored one, or c->node_id / the host name on first
 * start) and *lock_fd holds the dir lock until closed. On failure returns
 * a negative code with one line in err. Main thread. */
int rk_node_open(const struct rk_config *c, uint32_t nworkers, char *id, size_t idlen, int *lock_fd,
                 char *err, size_t errlen);

/* Storage options for a worker's engine (and its hint store), from the
 * config: the one place the config's words become the engine's. */
void rk_node_storage_opts(const struct rk_config *c, struct rk_storage_opts *o);

#endif

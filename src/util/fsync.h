/* Fsync policies: one word that the config (storage.fsync) and the storage
 * engine both speak, so neither has to include the other. */
#ifndef RK_UTIL_FSYNC_H
#define RK_UTIL_FSYNC_H

/* Values are the index of the name in the config ("always", "interval",
 * "never"): never renumber. */
enum rk_fsync { RK_FSYNC_ALWAYS, RK_FSYNC_INTERVAL, RK_FSYNC_NEVER };

#endif

/* Directory helpers: durable directory entries and the data-dir lock. */
#ifndef RK_UTIL_FSUTIL_H
#define RK_UTIL_FSUTIL_H

#include <stddef.h>

/* fsync a directory so entries created, renamed or removed in it survive a
 * crash. Returns 0 or -errno. */
int rk_fs_sync_dir(const char *dir);

/* mkdir -p for one level (parent must exist); 0 if it already exists. */
int rk_fs_mkdir(const char *dir);

/* Take an exclusive flock on DIR/LOCK and write our pid into it. On
 * success *fd_out holds the lock until closed. When another process holds
 * it, returns RK_ELOCKED and writes "data dir DIR is locked by pid N" to
 * msg. Other failures: -errno with msg filled. */
int rk_fs_lock_dir(const char *dir, int *fd_out, char *msg, size_t msglen);

#endif

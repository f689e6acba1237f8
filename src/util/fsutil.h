/* Directory helpers: durable directory entries and the data-dir lock. */
#ifndef RK_UTIL_FSUTIL_H
#define RK_UTIL_FSUTIL_H

#include <stddef.h>

/* fsync a directory so entries created, renamed or removed in it survive a
 * crash. Returns 0 or -errno. */
int rk_fs_sync_dir(const char *dir);

/* mkdir -p for one level (parent must exist); 0 if it already exists. */
int rk_fs_mkdir(const char *dir);

/* Replace DIR/NAME with len bytes of data, durably and atomically: a temp
 * file is written and fsynced, renamed over NAME, and the directory
 * fsynced, so a crash leaves the old content or the new, never a mix.
 * 0 or -errno. */
int rk_fs_write_file(const char *dir, const char *name, const void *data, size_t len);

/* Read up to cap bytes of path; *len gets the size. 0, -ENOENT, -EFBIG
 * when the file holds more than cap bytes, or another -errno. */
int rk_fs_read_file(const char *path, void *buf, size_t cap, size_t *len);

/* Take an exclusive flock on DIR/LOCK and write our pid into it. On
 * success *fd_out holds the lock until closed. When another process holds
 * it, returns RK_ELOCKED and writes "data dir DIR is locked by pid N" to
 * msg. Other failures: -errno with msg filled. */
int rk_fs_lock_dir(const char *dir, int *fd_out, char *msg, size_t msglen);

#endif

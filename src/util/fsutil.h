/* Directory helpers: durable directory entries and the data-dir lock. */
#ifndef RK_UTIL_FSUTIL_H
#define RK_UTIL_FSUTIL_H

#include <stddef.h>

/* Room for any path ringkv builds: a data dir (node.data_dir holds at most
 * 1023 bytes) plus the deepest name below it (worker-N/seg-<16 hex>.rks.
 * corrupt and the like, under 64 bytes) fits many times over; 4096 is
 * Linux's PATH_MAX, beyond which open() refuses a path anyway. */
#define RK_PATH_MAX 4096

/* dir "/" name into out (RK_PATH_MAX bytes): 0, or -ENAMETOOLONG (out is
 * then not a usable path). */
int rk_fs_path(char out[RK_PATH_MAX], const char *dir, const char *name);

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

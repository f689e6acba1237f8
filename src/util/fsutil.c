/* Directory fsync, mkdir and the flock-based data-dir lock. */
#include "util/fsutil.h"
#include "util/err.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int rk_fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = rk_io_fsync(fd);
    close(fd);
    return rc;
}

int rk_fs_path(char out[RK_PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf(out, RK_PATH_MAX, "%s/%s", dir, name);
    return n < 0 || n >= RK_PATH_MAX ? -ENAMETOOLONG : 0;
}

int rk_fs_mkdir(const char *dir)
{
    if (mkdir(dir, 0750) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int rk_fs_lock_dir(const char *dir, int *fd_out, char *msg, size_t msglen)
{
    char path[RK_PATH_MAX];
    if (rk_fs_path(path, dir, "LOCK") < 0) {
        snprintf(msg, msglen, "data dir path too long: %.64s...", dir);
        return -ENAMETOOLONG;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(msg, msglen, "open %s: %s", path, strerror(e));
        return -e;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK) {
            snprintf(msg, msglen, "data dir %s is locked by pid %s", dir,
                     pid[0] ? pid : "(unknown)");
            return RK_ELOCKED;
        }
        snprintf(msg, msglen, "lock %s: %s", path, strerror(e));
        return -e;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int e = errno;
        snprintf(msg, msglen, "write %s: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    *fd_out = fd;
    return 0;
}

int rk_fs_write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[RK_PATH_MAX], path[RK_PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
    if (n < 0 || n >= (int)sizeof(tmp) || rk_fs_path(path, dir, name) < 0)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = rk_io_pwrite(fd, data, len, 0);
    if (rc == 0)
        rc = rk_io_fsync(fd);
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc == 0)
        rc = rk_fs_sync_dir(dir);
    return rc;
}

int rk_fs_read_file(const char *path, void *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    int rc = 0;
    for (;;) {
        if (n == cap) { /* one more byte tells a full buffer from a bigger file */
            char extra;
            ssize_t k = read(fd, &extra, 1);
            rc = k > 0 ? -EFBIG : k < 0 ? -errno : 0;
            break;
        }
        ssize_t k = read(fd, (char *)buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = k < 0 ? -errno : 0;
            break;
        }
        n += (size_t)k;
    }
    close(fd);
    *len = n;
    return rc;
}

/* Checked system-call wrappers with a fault-injection point for tests. */
#include "util/io.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static struct {
    unsigned countdown;
    int err;
} faults[RK_IO_NOPS];

void rk_io_fault_arm(enum rk_io_op op, unsigned n, int err)
{
    faults[op].countdown = n;
    faults[op].err = err;
}

static int fault(enum rk_io_op op)
{
    if (faults[op].countdown == 0)
        return 0;
    if (--faults[op].countdown > 0)
        return 0;
    return -faults[op].err;
}

int rk_io_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    int rc = fault(RK_IO_WRITE);
    if (rc)
        return rc;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ENOSPC;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int rk_io_pread(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return RK_ECORRUPT;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int rk_io_datasync(int fd)
{
    int rc = fault(RK_IO_SYNC);
    if (rc)
        return rc;
    return fdatasync(fd) == 0 ? 0 : -errno;
}

int rk_io_fsync(int fd)
{
    int rc = fault(RK_IO_SYNC);
    if (rc)
        return rc;
    return fsync(fd) == 0 ? 0 : -errno;
}

int rk_io_prealloc(int fd, uint64_t len)
{
    int rc = fault(RK_IO_ALLOC);
    if (rc)
        return rc;
    do {
        rc = fallocate(fd, 0, 0, (off_t)len);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return 0;
    if (errno == EOPNOTSUPP || errno == ENOSYS)
        return 0;
    return -errno;
}

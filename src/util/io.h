/* The storage engine's system calls that can fail in ways tests must cover
 * (disk full, fsync errors). Each returns 0 / bytes done, or -errno, and
 * retries EINTR and short transfers itself. A test can arm one fault: the
 * n-th later call of an operation fails with a chosen errno. Faults are
 * process-global and meant for single-threaded tests only. */
#ifndef RK_UTIL_IO_H
#define RK_UTIL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum rk_io_op { RK_IO_WRITE, RK_IO_SYNC, RK_IO_ALLOC, RK_IO_NOPS };

/* Write all of buf at off. A short write that cannot finish returns -errno;
 * bytes may have reached the file. */
int rk_io_pwrite(int fd, const void *buf, size_t len, uint64_t off);
/* Read exactly len bytes at off: 0, -errno, or RK_ECORRUPT on early EOF. */
int rk_io_pread(int fd, void *buf, size_t len, uint64_t off);
/* fdatasync; never retried after an error (a failed fsync may have dropped
 * dirty pages, so a later success would prove nothing). */
int rk_io_datasync(int fd);
/* fsync (metadata too: new files and directories). */
int rk_io_fsync(int fd);
/* Reserve len bytes from 0 so later writes inside never hit ENOSPC and
 * fdatasync need not update the file size. Falls back to nothing where the
 * filesystem cannot preallocate. */
int rk_io_prealloc(int fd, uint64_t len);

/* Make the n-th (1 = next) call of op fail with -err; n = 0 disarms. */
void rk_io_fault_arm(enum rk_io_op op, unsigned n, int err);

#endif

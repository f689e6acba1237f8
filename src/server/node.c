/* Data-dir identity and layout files: NODE_ID and LAYOUT, each written
 * once (temp file, fsync, rename, dir fsync) and checked on every start. */
#include "server/node.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/ident.h"
#include "util/io.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p. */
static int mkdirs(const char *dir)
{
    char p[RK_PATH_MAX];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0750) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    return rk_fs_mkdir(p);
}

/* Read a small text file; 0, -ENOENT, or another -errno. Trailing newline cut. */
static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int write_small(const char *dir, const char *name, const char *text)
{
    return rk_fs_write_file(dir, name, text, strlen(text));
}

/* The stamp file DIR/NAME: when present, its text goes to stored and 1 is
 * returned; when absent, want is written and 0 returned. -errno with err
 * filled on I/O errors. */
static int stamp(const char *dir, const char *name, const char *want, char *stored, size_t len,
                 char *err, size_t errlen)
{
    char path[RK_PATH_MAX], line[160];
    rk_fs_path(path, dir, name); /* data_dir < 1 KiB: fits */
    const char *op = "read";
    int rc = read_small(path, stored, len);
    if (rc == 0)
        return 1;
    if (rc == -ENOENT) {
        op = "write";
        snprintf(line, sizeof(line), "%s\n", want);
        rc = write_small(dir, name, line);
    }
    if (rc < 0)
        snprintf(err, errlen, "%s %s: %s", op, path, strerror(-rc));
    return rc;
}

static int check_id(const struct rk_config *c, char *id, size_t idlen, char *err, size_t errlen)
{
    char stored[128];
    if (c->node_id[0])
        snprintf(id, idlen, "%s", c->node_id);
    else if (gethostname(id, idlen) != 0 || !id[0])
        snprintf(id, idlen, "node-1");
    /* An id stamped by an earlier start wins over the host name; a new
     * one must be valid before it is stamped. */
    char path[RK_PATH_MAX];
    rk_fs_path(path, c->data_dir, "NODE_ID"); /* data_dir < 1 KiB: fits */
    if (access(path, F_OK) != 0 && !rk_ident_valid(id, strlen(id), NULL)) {
        snprintf(err, errlen, "the host name is not a valid node id (1..%d of %s): set node.id",
                 RK_IDENT_MAX, RK_IDENT_CHARSET);
        return RK_EINVAL;
    }
    int rc = stamp(c->data_dir, "NODE_ID", id, stored, sizeof(stored), err, errlen);
    if (rc <= 0)
        return rc;
    if (!rk_ident_valid(stored, strlen(stored), NULL)) {
        snprintf(err, errlen, "%s/NODE_ID does not hold a valid node id (1..%d of %s)", c->data_dir,
                 RK_IDENT_MAX, RK_IDENT_CHARSET);
        return RK_EINVAL;
    }
    if (c->node_id[0] && strcmp(c->node_id, stored) != 0) {
        snprintf(err, errlen,
                 "data dir %s belongs to node \"%s\" but node.id is \"%s\" (set node.id = "
                 "\"%s\", or use another data_dir)",
                 c->data_dir, stored, c->node_id, stored);
        return RK_EINVAL;
    }
    snprintf(id, idlen, "%s", stored); /* the stored id wins over the host name */
    return 0;
}

static int check_layout(const struct rk_config *c, uint32_t nworkers, char *err, size_t errlen)
{
    char stored[128], want[128];
    snprintf(want, sizeof(want), "workers=%u partitions=%u", nworkers, c->partitions);
    int rc = stamp(c->data_dir, "LAYOUT", want, stored, sizeof(stored), err, errlen);
    if (rc <= 0)
        return rc;
    if (strcmp(stored, want) != 0) {
        snprintf(err, errlen,
                 "data dir %s holds data laid out as \"%s\" but this start wants \"%s\" (set "
                 "node.workers and cluster.partitions to the stored values)",
                 c->data_dir, stored, want);
        return RK_EINVAL;
    }
    return 0;
}

int rk_node_open(const struct rk_config *c, uint32_t nworkers, char *id, size_t idlen, int *lock_fd,
                 char *err, size_t errlen)
{
    int rc = mkdirs(c->data_dir);
    if (rc < 0) {
        snprintf(err, errlen, "data dir %s: %s (is it writable by this user?)", c->data_dir,
                 strerror(-rc));
        return rc;
    }
    rc = rk_fs_lock_dir(c->data_dir, lock_fd, err, errlen);
    if (rc == -EACCES || rc == -EROFS || rc == -ENOTDIR)
        snprintf(err, errlen, "data dir %s: %s (is it writable by this user?)", c->data_dir,
                 strerror(-rc));
    if (rc < 0)
        return rc;
    rc = check_id(c, id, idlen, err, errlen);
    if (rc == 0)
        rc = check_layout(c, nworkers, err, errlen);
    if (rc < 0) {
        close(*lock_fd);
        *lock_fd = -1;
    }
    return rc;
}

void rk_node_storage_opts(const struct rk_config *c, struct rk_storage_opts *o)
{
    rk_storage_opts_default(o);
    o->fsync = c->fsync;
    o->fsync_interval_ms = c->fsync_interval_ms;
    o->segment_size = c->segment_size;
    o->compression = c->compression;
    o->max_key_size = c->max_key_size;
    o->max_value_size = c->max_value_size;
    o->tombstone_grace_ms = c->tombstone_grace_ms;
}

static_assert(RK_CONFIG_KEY_MAX == RK_STORAGE_KEY_MAX &&
                  RK_CONFIG_VALUE_MAX == RK_STORAGE_VALUE_MAX &&
                  RK_CONFIG_PARTITIONS_MAX == RK_STORAGE_PARTITIONS_MAX,
              "the config's limits are the storage format's");

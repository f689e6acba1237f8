/* Fuzz target: arbitrary bytes as the newest segment file of a store, named
 * after the id in its header (the first input byte picks whether the same
 * bytes also stand as its hint file, and whether repair mode is on). Opening, reading
 * every record and closing must never crash, hang or leak; corruption must
 * come back as an error, never as a served record that is not in the file. */
#include "storage.h"
#include "util/err.h"
#include "util/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void quiet(enum rk_log_level lvl, const char *line, void *arg)
{
    (void)lvl, (void)line, (void)arg;
}

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

static void put_file(const char *name, const uint8_t *data, size_t size)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "%s/rk-fuzz-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir))
            abort();
        rk_log_set_sink(quiet, NULL);
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++, size--;
    clear_dir();
    uint64_t id = 2;
    if (size >= 24)
        memcpy(&id, data + 16, 8);
    char name[64];
    snprintf(name, sizeof(name), "seg-%016llx.rks", (unsigned long long)id);
    put_file(name, data, size);
    if (mode & 1) {
        snprintf(name, sizeof(name), "seg-%016llx.rkh", (unsigned long long)id);
        put_file(name, data, size);
    }
    struct rk_storage_opts o;
    rk_storage_opts_default(&o);
    o.fsync = RK_FSYNC_NEVER;
    o.segment_size = 1 << 20;
    o.repair = (mode & 2) != 0;
    rk_storage *s;
    if (rk_storage_open(&s, dir, &o, NULL) != 0)
        return 0;
    struct rk_storage_iter it;
    struct rk_record r;
    rk_storage_iter_init(&it, -1, true);
    while (rk_storage_iter_next(s, &it, &r) != 0)
        ;
    while (rk_storage_step(s) > 0)
        ;
    rk_storage_close(s);
    return 0;
}

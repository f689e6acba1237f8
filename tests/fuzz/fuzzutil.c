/* The scratch directory of file-decoding fuzz targets (fuzz.h). */
#include "fuzz.h"
#include "util/log.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];
static unsigned warnings;

static void count_warnings(enum rk_log_level lvl, const char *line, void *arg)
{
    (void)line, (void)arg;
    if (lvl >= RK_LOG_WARN)
        warnings++;
}

unsigned rk_fuzz_warnings(void)
{
    return warnings;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag;
    if (ftw->level > 0)
        remove(path);
    return 0;
}

void rk_fuzz_clear(void)
{
    CHECK(nftw(rk_fuzz_dir(), remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
}

static void remove_dir(void)
{
    rk_fuzz_clear();
    rmdir(dir);
}

static const char *base_dir(void)
{
    const char *t = getenv("TMPDIR");
    if (t && t[0])
        return t;
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    return "/tmp";
}

const char *rk_fuzz_dir(void)
{
    if (dir[0])
        return dir;
    snprintf(dir, sizeof(dir), "%s/rk-fuzz-XXXXXX", base_dir());
    CHECK(mkdtemp(dir) != NULL);
    atexit(remove_dir);
    rk_log_set_sink(count_warnings, NULL);
    return dir;
}

void rk_fuzz_put_file(const char *name, const void *data, size_t size)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", rk_fuzz_dir(), name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
}

uint8_t *rk_fuzz_get_file(const char *name, size_t *size)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", rk_fuzz_dir(), name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    CHECK(n >= 0 && fseek(f, 0, SEEK_SET) == 0);
    uint8_t *buf = malloc((size_t)n + 1);
    CHECK(buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* Shared helpers for the storage unit tests (see testutil.h). Plain C with
 * no cmocka calls, so forked children can use all of it. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- temporary directories and files ---- */

int tu_mkdtemp(char *out, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(out, cap, "%s/ringkv-%s-XXXXXX", base, tag);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return mkdtemp(out) ? 0 : -errno;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (type == FTW_DP) ? rmdir(path) : unlink(path);
    return rc < 0 && errno != ENOENT ? -1 : 0;
}

int tu_rmrf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        int e = errno;
        close(in);
        return -e;
    }
    char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        if (write(out, buf, (size_t)n) != n) {
            rc = -EIO;
            break;
        }
    }
    close(in);
    if (close(out) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int tu_copy_dir(const char *src, const char *dst)
{
    int rc = tu_rmrf(dst);
    if (rc < 0)
        return rc;
    if (mkdir(dst, 0750) < 0)
        return -errno;
    DIR *d = opendir(src);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char a[1024], b[1024];
        snprintf(a, sizeof(a), "%s/%s", src, e->d_name);
        snprintf(b, sizeof(b), "%s/%s", dst, e->d_name);
        struct stat st;
        if (lstat(a, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        rc = copy_file(a, b);
        if (rc < 0)
            break;
    }
    closedir(d);
    return rc;
}

int64_t tu_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t file_hash(const char *path, uint64_t h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return h ^ 0xdeadu;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        h = tu_hash(buf, (size_t)n, h);
    close(fd);
    return h;
}

uint64_t tu_dir_digest(const char *dir)
{
    char *names[4096];
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 4096) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), cmp_names);
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < n; i++) {
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        int64_t sz = tu_file_size(p);
        h = tu_hash(names[i], strlen(names[i]) + 1, h);
        h = tu_hash(&sz, sizeof(sz), h);
        h = file_hash(p, h);
        free(names[i]);
    }
    return h;
}

int tu_count_names(const char *dir, const char *needle, char *first, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!strstr(e->d_name, needle))
            continue;
        if (n == 0 && first)
            snprintf(first, cap, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

int tu_remove_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int n = 0;
    size_t sl = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < sl || strcmp(e->d_name + l - sl, suffix) != 0)
            continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (unlink(p) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ---- corruption ---- */

int tu_flip_bit(const char *path, uint64_t off, unsigned bit)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unsigned char c;
    int rc = 0;
    if (pread(fd, &c, 1, (off_t)off) != 1)
        rc = -EIO;
    c ^= (unsigned char)(1u << (bit & 7));
    if (rc == 0 && pwrite(fd, &c, 1, (off_t)off) != 1)
        rc = -EIO;
    close(fd);
    return rc;
}

int tu_truncate(const char *path, uint64_t len)
{
    return truncate(path, (off_t)len) == 0 ? 0 : -errno;
}

int tu_garbage(const char *path, uint64_t off, uint64_t len, uint64_t *rng)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    while (len > 0 && rc == 0) {
        unsigned char buf[4096];
        size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)tu_rand(rng);
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
            rc = -EIO;
        off += n;
        len -= n;
    }
    close(fd);
    return rc;
}

/* ---- segment files ---- */

static int cmp_seg(const void *a, const void *b)
{
    const struct tu_seg *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

int tu_segments(const char *dir, struct tu_seg *out, int max)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        const char *nm = e->d_name;
        if (strlen(nm) != 24 || strncmp(nm, "seg-", 4) != 0 || strcmp(nm + 20, ".rks") != 0)
            continue;
        char hex[17];
        memcpy(hex, nm + 4, 16);
        hex[16] = '\0';
        char *end;
        uint64_t id = strtoull(hex, &end, 16);
        if (*end)
            continue;
        struct tu_seg *s = &out[n++];
        s->id = id;
        snprintf(s->name, sizeof(s->name), "%.63s", nm);
        snprintf(s->path, sizeof(s->path), "%s/%s", dir, nm);
        snprintf(s->index_file, sizeof(s->index_file), "%s/%.20s.rkh", dir, nm);
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof(out[0]), cmp_seg);
    return n;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int tu_blocks(const char *path, struct tu_block *out, int max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    uint64_t size = (uint64_t)st.st_size, off = TU_SEG_HEADER;
    int n = 0;
    while (n < max && off + TU_BLOCK_HEADER <= size) {
        unsigned char h[TU_BLOCK_HEADER];
        if (pread(fd, h, sizeof(h), (off_t)off) != (ssize_t)sizeof(h))
            break;
        if (le32(h) != TU_BLOCK_MAGIC)
            break;
        struct tu_block *b = &out[n];
        b->off = off;
        b->flags = (uint32_t)h[4] | (uint32_t)h[5] << 8;
        b->raw_len = le32(h + 8);
        b->stored_len = le32(h + 12);
        b->count = le32(h + 16);
        if (off + TU_BLOCK_HEADER + b->stored_len > size)
            break;
        n++;
        off += TU_BLOCK_HEADER + b->stored_len;
    }
    close(fd);
    return n;
}

/* ---- randomness and values ---- */

uint64_t tu_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t tu_rand_below(uint64_t *state, uint64_t n)
{
    return n ? tu_rand(state) % n : 0;
}

uint64_t tu_seed(const char *name)
{
    const char *env = getenv("RINGKV_SEED");
    uint64_t seed;
    if (env && *env) {
        seed = strtoull(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed =
            (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
    }
    fprintf(stderr, "%s: seed=%" PRIu64 " (set RINGKV_SEED to repeat)\n", name, seed);
    return seed;
}

uint64_t tu_hash(const void *p, size_t n, uint64_t h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const char *const words[] = {
    "alpha", "bravo",  "charlie", "delta",  "echo",    "foxtrot",  "golf",  "hotel",
    "india", "juliet", "kilo",    "lima",   "mike",    "november", "oscar", "papa",
    "user",  "order",  "status",  "active", "pending", "shipped",  "name",  "email",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

void tu_json(char *buf, size_t len, uint64_t seed)
{
    uint64_t r = seed;
    size_t n = 0;
    char tmp[160];
    if (len == 0)
        return;
    while (n < len) {
        uint64_t x = tu_rand(&r);
        int k;
        switch (x % 4) {
        case 0:
            k = snprintf(tmp, sizeof(tmp), "\"%s\":%" PRIu64 ",", words[(x >> 8) % NWORDS],
                         (x >> 16) % 100000);
            break;
        case 1:
            k = snprintf(tmp, sizeof(tmp), "\"%s\":\"%s-%s\",", words[(x >> 8) % NWORDS],
                         words[(x >> 16) % NWORDS], words[(x >> 24) % NWORDS]);
            break;
        case 2:
            k = snprintf(tmp, sizeof(tmp), "\"id\":\"%016" PRIx64 "\",", tu_rand(&r));
            break;
        default:
            k = snprintf(tmp, sizeof(tmp), "\"tags\":[\"%s\",\"%s\"],", words[(x >> 8) % NWORDS],
                         words[(x >> 20) % NWORDS]);
            break;
        }
        size_t take = (size_t)k < len - n ? (size_t)k : len - n;
        memcpy(buf + n, tmp, take);
        n += take;
    }
    buf[0] = '{';
    if (len > 1)
        buf[len - 1] = '}';
}

/* ---- log capture ---- */

static void sink(enum rk_log_level lvl, const char *line, void *arg)
{
    (void)lvl;
    struct tu_log *l = arg;
    size_t n = strlen(line);
    if (l->len + n + 2 > l->cap) {
        size_t cap = (l->cap ? l->cap * 2 : 4096) + n;
        char *b = realloc(l->buf, cap);
        if (!b)
            return;
        l->buf = b;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, line, n);
    l->len += n;
    l->buf[l->len++] = '\n';
    l->buf[l->len] = '\0';
}

void tu_log_capture(struct tu_log *l)
{
    memset(l, 0, sizeof(*l));
    l->cap = 4096;
    l->buf = calloc(1, l->cap);
    rk_log_set_sink(sink, l);
}

void tu_log_clear(struct tu_log *l)
{
    l->len = 0;
    if (l->buf)
        l->buf[0] = '\0';
}

void tu_log_release(struct tu_log *l)
{
    rk_log_set_sink(NULL, NULL);
    free(l->buf);
    memset(l, 0, sizeof(*l));
}

/* ---- processes ---- */

void tu_usleep(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

uint64_t tu_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Fuzz target: arbitrary bytes as the newest segment file of a store, named
 * after the id in its header (the first input byte picks whether the same
 * bytes also stand as its index file, whether repair mode is on and whether
 * every block is verified at open). Damage reports are read whole. Opening, reading
 * every record and closing must never crash, hang or leak; corruption must
 * come back as an error, never as a served record that is not in the file. */
#include "fuzz.h"
#include "storage/storage.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read every byte a damage report lends: the sanitizers check the bounds. */
static void on_damage(void *arg, const struct rk_storage_damage *d)
{
    unsigned *sum = arg;
    for (size_t i = 0; i < RK_STORAGE_PARTITIONS_MAX / 8; i++)
        *sum += d->partitions[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = rk_fuzz_dir(); /* removed at exit (fuzz.h) */
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++, size--;
    rk_fuzz_clear();
    uint64_t id = 2;
    if (size >= 24)
        memcpy(&id, data + 16, 8);
    char name[64];
    snprintf(name, sizeof(name), "seg-%016llx.rks", (unsigned long long)id);
    rk_fuzz_put_file(name, data, size);
    if (mode & 1) {
        snprintf(name, sizeof(name), "seg-%016llx.rkh", (unsigned long long)id);
        rk_fuzz_put_file(name, data, size);
    }
    struct rk_storage_opts o;
    rk_storage_opts_default(&o);
    o.fsync = RK_FSYNC_NEVER;
    o.segment_size = 1 << 20;
    o.repair = (mode & 2) != 0;
    o.verify = (mode & 4) != 0;
    unsigned sum = 0;
    o.on_damage = on_damage;
    o.damage_arg = &sum;
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

/* A real sealed segment (a few batches of records, some tombstones) after a
 * mode byte of 0. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    char sdir[256], path[600];
    snprintf(sdir, sizeof(sdir), "/tmp/rk-seed-XXXXXX");
    if (!mkdtemp(sdir))
        return NULL;
    struct rk_storage_opts o;
    rk_storage_opts_default(&o);
    o.fsync = RK_FSYNC_NEVER;
    rk_storage *s;
    if (rk_storage_open(&s, sdir, &o, NULL) != 0)
        return NULL;
    for (int i = 0; i < 300; i++) {
        char k[32], v[200];
        int kl = snprintf(k, sizeof(k), "key-%d", i % 200);
        int vl = snprintf(v, sizeof(v), "{\"n\":%d,\"name\":\"user_%d\",\"ok\":true}", i, i * 7);
        struct rk_record r = {.key = k,
                              .klen = (uint32_t)kl,
                              .val = v,
                              .vlen = (uint32_t)vl,
                              .version = (uint64_t)(i + 1) << 16,
                              .tombstone = i % 17 == 0};
        rk_storage_put(s, &r, NULL);
        if (i % 40 == 39)
            rk_storage_commit(s);
    }
    rk_storage_close(s);
    snprintf(path, sizeof(path), "%s/seg-0000000000000000.rks", sdir);
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf + 1, 1, (size_t)n, f) == (size_t)n) {
            buf[0] = 0;
            *len = (size_t)n + 1;
        } else {
            free(buf);
            buf = NULL;
        }
        fclose(f);
    }
    unlink(path);
    snprintf(path, sizeof(path), "%s/seg-0000000000000000.rkh", sdir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/LOCK", sdir);
    unlink(path);
    rmdir(sdir);
    return buf;
}

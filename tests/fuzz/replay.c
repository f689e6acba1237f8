/* Runs a fuzz target without libFuzzer, so every build tests it: replays
 * the files named on the command line, then feeds a valid segment written
 * by the engine and a fixed-seed series of its mutations (bit flips, byte
 * overwrites, truncations). */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    if (buf && fread(buf + 1, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n + 1;
    return buf;
}

/* A real sealed segment: a few batches of records, some tombstones. */
static uint8_t *make_seed(size_t *len)
{
    char dir[256], path[600];
    snprintf(dir, sizeof(dir), "/tmp/rk-seed-XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    struct rk_storage_opts o;
    rk_storage_opts_default(&o);
    o.fsync = RK_FSYNC_NEVER;
    rk_storage *s;
    if (rk_storage_open(&s, dir, &o, NULL) != 0)
        return NULL;
    for (int i = 0; i < 300; i++) {
        char k[32], v[200];
        int kl = snprintf(k, sizeof(k), "key-%d", i % 200);
        int vl = snprintf(v, sizeof(v), "{\"n\":%d,\"name\":\"user_%d\",\"ok\":true}", i, i * 7);
        struct rk_record r = {.key = k, .klen = (uint32_t)kl, .val = v, .vlen = (uint32_t)vl,
                              .version = (uint64_t)(i + 1) << 16, .tombstone = i % 17 == 0};
        rk_storage_put(s, &r, NULL);
        if (i % 40 == 39)
            rk_storage_commit(s);
    }
    rk_storage_close(s);
    snprintf(path, sizeof(path), "%s/seg-0000000000000000.rks", dir);
    uint8_t *buf = read_file(path, len);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return buf;
    return buf;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        size_t len;
        uint8_t *b = read_file(argv[i], &len);
        if (!b) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 2;
        }
        b[0] = 0;
        LLVMFuzzerTestOneInput(b, len);
        free(b);
    }
    size_t len;
    uint8_t *seed = make_seed(&len);
    if (!seed) {
        fprintf(stderr, "replay: cannot build the seed segment\n");
        return 2;
    }
    uint8_t *m = malloc(len);
    srand(12345);
    int runs = getenv("RINGKV_FUZZ_RUNS") ? atoi(getenv("RINGKV_FUZZ_RUNS")) : 1500;
    for (int i = 0; i < runs; i++) {
        memcpy(m, seed, len);
        size_t n = len;
        m[0] = (uint8_t)(i & 3);
        int edits = 1 + rand() % 4;
        for (int e = 0; e < edits; e++) {
            size_t at = 1 + (size_t)rand() % (len - 1);
            switch (rand() % 3) {
            case 0: m[at] ^= (uint8_t)(1u << (rand() % 8)); break;
            case 1: m[at] = (uint8_t)rand(); break;
            default: n = at; break;
            }
        }
        LLVMFuzzerTestOneInput(m, n);
    }
    free(m);
    free(seed);
    printf("replay: %d inputs, no crash\n", argc - 1 + runs);
    return 0;
}

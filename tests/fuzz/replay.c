/* Runs a fuzz target without libFuzzer, so every build tests it: replays
 * the files named on the command line, then feeds the target's own valid
 * seed input (rk_fuzz_seed) and a fixed-seed series of its mutations (bit
 * flips, byte overwrites, truncations). */
#include "fuzz.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        size_t len;
        uint8_t *b = read_file(argv[i], &len);
        if (!b) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 2;
        }
        LLVMFuzzerTestOneInput(b + 1, len - 1);
        free(b);
    }
    size_t len;
    uint8_t *seed = rk_fuzz_seed(&len);
    if (!seed) {
        fprintf(stderr, "replay: the target gave no seed input\n");
        return 2;
    }
    uint8_t *m = malloc(len);
    srand(12345);
    int runs = getenv("RINGKV_FUZZ_RUNS") ? atoi(getenv("RINGKV_FUZZ_RUNS")) : 1500;
    for (int i = 0; i < runs; i++) {
        memcpy(m, seed, len);
        size_t n = len;
        int edits = 1 + rand() % 4;
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rand() % len;
            switch (rand() % 3) {
            case 0:
                m[at] ^= (uint8_t)(1u << (rand() % 8));
                break;
            case 1:
                m[at] = (uint8_t)rand();
                break;
            default:
                n = at;
                break;
            }
        }
        LLVMFuzzerTestOneInput(m, n);
    }
    free(m);
    free(seed);
    printf("replay: %d inputs, no crash\n", argc - 1 + runs);
    return 0;
}

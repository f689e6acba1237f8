/* Runs a fuzz target without libFuzzer, so every build tests it: replays
 * every file named on the command line or found in a directory named
 * there (the target's committed corpus, in name order), then feeds the
 * target's own valid seed input (rk_fuzz_seed) and a fixed-seed series of
 * its mutations (bit flips, byte overwrites, truncations).
 * `replay_<t> --gen DIR` instead writes the target's curated corpus into
 * DIR (gen_corpus.sh). */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf + 1, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n + 1;
    return buf;
}

/* One input from a file: copied to a buffer of exactly its size, so a read
 * past its end is caught by the sanitizers. */
static int replay_file(const char *path)
{
    size_t len;
    uint8_t *b = read_file(path, &len);
    if (!b) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    uint8_t *exact = malloc(len - 1 ? len - 1 : 1);
    if (!exact) {
        free(b);
        return -1;
    }
    memcpy(exact, b + 1, len - 1);
    free(b);
    LLVMFuzzerTestOneInput(exact, len - 1);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_dots(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Every file of a corpus directory; -1 if it cannot be read or is empty
 * (a corpus that went missing must not pass as replayed). */
static int replay_dir(const char *dir, int *count)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_dots, by_name);
    if (n <= 0) {
        fprintf(stderr, "replay: corpus %s: %s\n", dir, n == 0 ? "empty" : strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (rc == 0 && replay_file(path) == 0)
            ++*count;
        else
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

/* ---- --gen ---- */

static const char *gen_dir;
static int gen_failed;

static void put(const char *name, const uint8_t *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", gen_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size)) {
        fprintf(stderr, "replay: cannot write %s\n", path);
        gen_failed = 1;
    }
    if (f && fclose(f) != 0)
        gen_failed = 1;
}

/* The corpus of a target that names none: its seed. */
__attribute__((weak)) void rk_fuzz_corpus(rk_fuzz_put_fn *out)
{
    size_t len;
    uint8_t *seed = rk_fuzz_seed(&len);
    if (!seed) {
        gen_failed = 1;
        return;
    }
    out("seed", seed, len);
    free(seed);
}

static void mutate_seed(int runs)
{
    size_t len;
    uint8_t *seed = rk_fuzz_seed(&len);
    if (!seed) {
        fprintf(stderr, "replay: the target gave no seed input\n");
        exit(2);
    }
    uint8_t *m = malloc(len);
    srand(12345);
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
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--gen") == 0) {
        gen_dir = argv[2];
        rk_fuzz_corpus(put);
        return gen_failed ? 1 : 0;
    }
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        bool dir = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode);
        if ((dir ? replay_dir(argv[i], &files) : replay_file(argv[i])) < 0)
            return 2;
        files += !dir;
    }
    int runs = getenv("RINGKV_FUZZ_RUNS") ? atoi(getenv("RINGKV_FUZZ_RUNS")) : 1500;
    mutate_seed(runs);
    printf("replay: %d corpus inputs and %d seed mutations, no crash\n", files, runs);
    return 0;
}

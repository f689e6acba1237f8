/* What every fuzz target provides and may use. A target defines
 * LLVMFuzzerTestOneInput (the libFuzzer entry) and rk_fuzz_seed (one valid
 * input, malloc'd, that the replay driver mutates); it may define
 * rk_fuzz_corpus to name more valid inputs for its committed corpus
 * (tests/fuzz/corpus/<target>, written by gen_corpus.sh; by default the
 * corpus is the seed alone). CHECK aborts on a broken property so both
 * libFuzzer and the replay driver report it. */
#ifndef RK_FUZZ_H
#define RK_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
uint8_t *rk_fuzz_seed(size_t *len);

/* Writes one corpus file called name (letters, digits, '-', '_'). */
typedef void rk_fuzz_put_fn(const char *name, const uint8_t *data, size_t size);
/* Optional: every curated input of the target, each through put. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* ---- fuzzutil.c: a scratch directory for targets that decode files ----
 * One per process, made at the first call under $TMPDIR (else /dev/shm
 * when writable, so the fsyncs of the code under test cost nothing, else
 * /tmp) and removed with its files at exit. Logging is silenced at the
 * same time: decoders of damaged files warn on every input. Any failure
 * to use the directory aborts (an environment problem, reported as one). */
const char *rk_fuzz_dir(void);
/* Remove every file in the scratch directory. */
void rk_fuzz_clear(void);
/* Write size bytes to dir/name (replacing it). */
void rk_fuzz_put_file(const char *name, const void *data, size_t size);
/* dir/name, malloc'd, its size in *size; NULL when it does not exist. */
uint8_t *rk_fuzz_get_file(const char *name, size_t *size);
/* How many warnings or errors were logged since the scratch dir was made
 * (decoders of state files report a file they ignore that way). */
unsigned rk_fuzz_warnings(void);

#endif

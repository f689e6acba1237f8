/* Helpers shared by the storage unit tests: temporary data dirs, a seeded
 * PRNG, deterministic JSON-like values, a model of what the store should
 * hold, segment-file inspection and corruption, and log capture. Nothing
 * here calls cmocka: the helpers also run in forked children, which must
 * report through their exit status instead of longjmp-ing into the runner. */
#ifndef RK_TESTUTIL_H
#define RK_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/log.h"

/* cmocka assertion on a return code that names both codes on failure
 * (assert_int_equal would print -10001 as a huge hex number). */
#define assert_rc(expr, want)                                                                      \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        int want_ = (want);                                                                        \
        if (rc_ != want_)                                                                          \
            fail_msg("%s = %d (%s), want %d (%s)", #expr, rc_, rk_strerror(rc_), want_,            \
                     rk_strerror(want_));                                                          \
    } while (0)

/* ---- temporary directories and files ---- */

/* Create a fresh directory "$TMPDIR/ringkv-<tag>-XXXXXX" (TMPDIR defaults
 * to /tmp). Returns 0 or -errno. */
int tu_mkdtemp(char *out, size_t cap, const char *tag);
/* rm -rf path (no error if it does not exist). Returns 0 or -errno. */
int tu_rmrf(const char *path);
/* Replace dst by a copy of the regular files of the flat directory src. */
int tu_copy_dir(const char *src, const char *dst);
/* Size of a file, or -1. */
int64_t tu_file_size(const char *path);
/* Hash of every file name, size and content in dir (sorted by name). */
uint64_t tu_dir_digest(const char *dir);
/* Number of directory entries whose name contains needle; with first set,
 * the first such name is copied there. */
int tu_count_names(const char *dir, const char *needle, char *first, size_t cap);
/* Remove every file in dir whose name ends with suffix; returns how many. */
int tu_remove_suffix(const char *dir, const char *suffix);

/* ---- corruption ---- */

int tu_flip_bit(const char *path, uint64_t off, unsigned bit);
int tu_truncate(const char *path, uint64_t len);
/* Overwrite len bytes at off with PRNG garbage. */
int tu_garbage(const char *path, uint64_t off, uint64_t len, uint64_t *rng);

/* ---- segment files (names only; see the block layout in the engine) ---- */

struct tu_seg {
    uint64_t id;
    char name[64];         /* seg-<16 hex>.rks */
    char path[1024];       /* dir/name */
    char index_file[1024]; /* dir/seg-<16 hex>.rkh (may not exist) */
};

/* The segment files of dir sorted by id (oldest first); returns the count
 * (at most max) or -errno. */
int tu_segments(const char *dir, struct tu_seg *out, int max);

#define TU_SEG_HEADER   32u
#define TU_BLOCK_HEADER 32u
#define TU_BLOCK_MAGIC  0x4C424B52u
#define TU_BLOCK_LZ4    0x1u
#define TU_BLOCK_COMMIT 0x2u

struct tu_block {
    uint64_t off; /* of its header */
    uint32_t flags, raw_len, stored_len, count;
};

/* Walk block headers from offset 32 until a header whose magic is not RKBL,
 * or one running past the end of the file. Returns the count (at most max)
 * or -errno. */
int tu_blocks(const char *path, struct tu_block *out, int max);

/* ---- randomness and values ---- */

uint64_t tu_rand(uint64_t *state); /* splitmix64 */
uint64_t tu_rand_below(uint64_t *state, uint64_t n);
/* A seed from RINGKV_SEED or the clock; printed to stderr with name. */
uint64_t tu_seed(const char *name);
uint64_t tu_hash(const void *p, size_t n, uint64_t seed); /* FNV-1a */

/* JSON-like text of exactly len bytes, a pure function of seed. */
void tu_json(char *buf, size_t len, uint64_t seed);

/* ---- log capture ---- */

struct tu_log {
    char *buf;
    size_t len, cap;
};

void tu_log_capture(struct tu_log *l); /* installs a sink appending lines */
void tu_log_release(struct tu_log *l); /* restores stderr, frees */
void tu_log_clear(struct tu_log *l);

/* ---- processes ---- */

/* In a forked child: unless cond holds, describe the failing step on stderr
 * and _exit(code); the parent sees code as the exit status. These macros
 * use <stdio.h>, <unistd.h> and <sys/wait.h>, which their users include. */
#define TU_CHILD_CHECK(cond, code, ...)                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child %ld: step %d failed: %s: ", (long)getpid(), code, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            _exit(code);                                                                           \
        }                                                                                          \
    } while (0)

/* How a wait status ended, as printf arguments for TU_STATUS_FMT:
 * "exit status N" or "signal N". */
#define TU_STATUS_FMT "%s %d"
#define TU_STATUS_ARGS(st)                                                                         \
    (WIFEXITED(st) ? "exit status" : "signal"), (WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st))

/* Sleep for us microseconds (kill timing only; tests never sleep to wait). */
void tu_usleep(uint64_t us);
uint64_t tu_mono_us(void);

#endif

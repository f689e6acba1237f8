/* Anti-entropy marks: the durable set of partitions that lost a write
 * somewhere a replica would otherwise have got it from (a dropped hint),
 * and so need an anti-entropy exchange. A bitmap of `partitions` bits,
 * nothing else per partition: a mark says "repair me", not what or when.
 *
 * On disk, DIR/ae-marks (little-endian, replaced whole and atomically by
 * rk_fs_write_file, so a crash leaves the old set or the new one):
 *   magic u32 "RKAE", version u8 (1), 3 zero bytes, partitions u32,
 *   4 zero bytes, bitmap ceil(partitions / 8) bytes (bit p = byte p / 8,
 *   bit p % 8), XXH3_64 of everything before it u64.
 * A file that is damaged, of another version or for another partition
 * count is ignored at open with a warning (the set starts empty): a lost
 * mark costs a repair that waits for a full anti-entropy pass, never data.
 *
 * Threads: one owner (a worker's hint store); not thread-safe.
 */
#ifndef RK_AEMARKS_H
#define RK_AEMARKS_H

#include <stdbool.h>
#include <stdint.h>

#define RK_AEMARKS_FILE "ae-marks"

struct rk_aemarks;

/* Open the set kept in dir (which must exist) for partitions partitions
 * (a power of two, 1..65536), loading dir/ae-marks when it is there and
 * valid. 0, RK_EINVAL for a bad partitions count, or -ENOMEM. A missing
 * file is an empty set; an unreadable or invalid one is logged and
 * ignored (the next save replaces it). *out is the caller's until
 * rk_aemarks_close. */
int rk_aemarks_open(struct rk_aemarks **out, const char *dir, uint32_t partitions);

/* Free m (NULL is a no-op). Marks not saved are lost: save first. */
void rk_aemarks_close(struct rk_aemarks *m);

/* Mark part; true when it was not marked before (then the set is dirty).
 * A part outside 0..partitions-1 is ignored (false). */
bool rk_aemarks_mark(struct rk_aemarks *m, uint32_t part);

/* Unmark part (anti-entropy repaired it); true when it was marked. */
bool rk_aemarks_clear(struct rk_aemarks *m, uint32_t part);

bool rk_aemarks_test(const struct rk_aemarks *m, uint32_t part);

/* Partitions marked now (O(1)). */
uint32_t rk_aemarks_count(const struct rk_aemarks *m);

uint32_t rk_aemarks_partitions(const struct rk_aemarks *m);

/* Whether marks changed since the last save (or open). */
bool rk_aemarks_dirty(const struct rk_aemarks *m);

/* Write dir/ae-marks if dirty, durably (temp file, fsync, rename, dir
 * fsync); when not dirty, no I/O at all. 0 or -errno; on failure the set
 * stays dirty so a later save retries. */
int rk_aemarks_save(struct rk_aemarks *m);

/* Call fn for each marked partition in ascending order; returns how many.
 * fn may clear the partition it is given (and only that one). */
uint32_t rk_aemarks_each(const struct rk_aemarks *m, void (*fn)(uint32_t part, void *arg),
                         void *arg);

#endif

/* The partition ring: which members hold which partitions. A pure function
 * of (member ids, partitions, replicas): no I/O, clocks or threads, so every
 * node that knows the same member set computes the same ring, and
 * rk_ring_digest() lets two nodes check that they do. Unit-tested in
 * tests/unit/test_ring.c.
 *
 * Design
 * ------
 * Keys map to partitions:  partition = XXH3_64(key) & (partitions - 1).
 *
 * Tokens. Each member owns RK_RING_VNODES virtual-node tokens on a 64-bit
 * ring, derived from its id alone (this is part of the cluster protocol:
 * every version on every host must compute exactly this):
 *     token_i = XXH3_64bits(id bytes (no NUL) || i as u32 little-endian),
 *     i = 0 .. RK_RING_VNODES - 1, XXH3 with its default seed (0).
 * Tokens are sorted ascending; equal tokens are ordered by member id
 * (bytewise), so a collision between two members resolves the same way
 * everywhere.
 *
 * Partitions. Partition p sits at ring position p * (2^64 / partitions),
 * evenly spaced from 0. Walking clockwise from that position (the first
 * token >= it, wrapping past 2^64 - 1 to the smallest token) meets members
 * in some order; dropping repeats gives the partition's walk, and its first
 * min(replicas, members) entries are its preference list. The first is the
 * partition's primary.
 *
 * Why this moves little: adding a member only inserts its tokens, so every
 * walk changes only by the new member appearing somewhere in it. A
 * partition's primary changes only to the new member, a preference list
 * changes only by gaining it, and the share that moves is the new member's
 * share of the ring, about 1/(M+1) (see RK_RING_VNODES for the spread).
 *
 * Threads: a built ring is immutable; any number of threads may call the
 * read functions on it at once. rk_ring_free must not race with them.
 *
 * Cost: build is O(T log T + P (log T + w)) time with T = members *
 * RK_RING_VNODES tokens, P partitions and w the tokens walked to find
 * min(replicas, members) distinct members (a few times replicas); memory
 * about 16 T + 2 P replicas bytes (6 MiB at the bounds). Lookups of the
 * preference list are O(replicas); rk_ring_walk is O(log T + T).
 */
#ifndef RK_RING_H
#define RK_RING_H

#include <stddef.h>
#include <stdint.h>

/* Bounds, equal to the member table's (static_assert in ring.c). */
#define RK_RING_MEMBERS_MAX    1024
#define RK_RING_ID_MAX         63 /* bytes, without the NUL */
#define RK_RING_PARTITIONS_MAX 65536u
#define RK_RING_REPLICAS_MAX   16u

/* Virtual nodes per member. A member's share of the ring is the sum of V
 * arcs between random tokens, so its relative spread is about 1/sqrt(V):
 * 256 gives ~6%. With it every member's primary count stays within ~13%
 * of fair at 4096 partitions, and a joining member takes 0.92..1.07 of
 * 1/(M+1) for M = 3..15 (test_ring). Fewer tokens widen both (V = 64: ~13%);
 * more buy little, because what remains is the partitions' own sampling:
 * a joiner takes each partition with chance ~1/(M+1), a spread of about
 * sqrt(P/(M+1)) partitions, ±25% of its due at the default 256 partitions
 * and 16 members, whatever V is. Cost is linear in V: at 1024 members,
 * 262,144 tokens, 4 MiB, built in well under a second on each membership
 * change. Changing V changes every ring: it is part of the protocol. */
#define RK_RING_VNODES 256

struct rk_ring;

/* XXH3_64bits(key, len) & (partitions - 1); partitions must be a power of
 * two. Any thread. */
uint32_t rk_ring_partition_of(const void *key, size_t len, uint32_t partitions);

/* Builds the ring of n members (0 <= n <= RK_RING_MEMBERS_MAX) named by
 * ids: NUL-terminated, 1..RK_RING_ID_MAX bytes, distinct, in any order
 * (the same set in any order gives the same ring). ids are copied.
 * partitions is a power of two in 1..RK_RING_PARTITIONS_MAX; replicas in
 * 1..RK_RING_REPLICAS_MAX. With n = 0 every preference list is empty.
 * Returns 0 and the ring in *out (the caller frees it), RK_EINVAL for a bad
 * argument, or -ENOMEM; on error *out is NULL. */
int rk_ring_build(struct rk_ring **out, const char *const *ids, size_t n, uint32_t partitions,
                  uint32_t replicas);

/* Frees r (NULL is fine); borrowed id strings die with it. */
void rk_ring_free(struct rk_ring *r);

/* Writes partition's preference list, primary first, as ids borrowed from r
 * (valid until rk_ring_free) to ids_out[0..cap) (NULL if cap is 0).
 * Returns the number written: min(cap, replicas, members), or 0 for a
 * partition out of range. */
size_t rk_ring_preference(const struct rk_ring *r, uint32_t partition, const char **ids_out,
                          size_t cap);

/* Like rk_ring_preference, but the whole walk: every member once, in
 * clockwise order from partition's position. Its first entries are the
 * preference list; the ones after it are the fallbacks for a sloppy quorum
 * (hinted handoff), nearest first. Computed on each call, O(log T + T);
 * stops once cap are written. Returns the number written:
 * min(cap, members), or 0 for a partition out of range. */
size_t rk_ring_walk(const struct rk_ring *r, uint32_t partition, const char **ids_out, size_t cap);

/* Members, and member i's id in sorted (bytewise) order, borrowed from r;
 * NULL if i >= rk_ring_members(r). */
size_t rk_ring_members(const struct rk_ring *r);
const char *rk_ring_member_id(const struct rk_ring *r, size_t i);

uint32_t rk_ring_partitions(const struct rk_ring *r);
uint32_t rk_ring_replicas(const struct rk_ring *r);

/* For member i (sorted order): *primary = partitions whose preference list
 * it heads, *replica = partitions whose preference list holds it at all
 * (primary included). Both 0 if i is out of range. For `kvctl ring`. */
void rk_ring_counts(const struct rk_ring *r, size_t i, uint32_t *primary, uint32_t *replica);

/* Agreement check, computed at build: XXH3 chained (each hash seeding the
 * next) over partitions and replicas (u32 LE each), then every member id in
 * sorted order (len u8, bytes), then every partition's preference list as
 * member indices (u16 LE). Equal rings give equal digests on any host. */
uint64_t rk_ring_digest(const struct rk_ring *r);

#endif

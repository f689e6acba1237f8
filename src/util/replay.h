/* MACs of authenticated requests taken recently (auth.h), so that a
 * captured request sent again within the time window is refused.
 *
 * Design: an accepted request's time is within W (the window) of the
 * clock, so it can be accepted again only while now <= ts + W <= taken
 * + 2W. Each stripe keeps two generations of a hash set of MAC prefixes
 * (8 bytes: the MAC is a keyed hash, so nobody without the key can aim
 * two messages at one prefix); the current one takes new entries, and
 * every 2W the current becomes the previous and the previous is emptied.
 * An entry thus lives between 2W and 4W: never less than it must. Sets
 * grow by doubling while below 50% full; a stripe whose sets would pass
 * RK_REPLAY_STRIPE_MAX entries refuses (full: the request is answered
 * BUSY rather than taken without the check). Memory is bounded by the
 * rate of authenticated requests times 4W, and by the cap.
 *
 * Threads: any thread; each stripe has its own mutex.
 */
#ifndef RK_UTIL_REPLAY_H
#define RK_UTIL_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define RK_REPLAY_STRIPES    64u
#define RK_REPLAY_STRIPE_MAX (1u << 18) /* entries per set: 2 x 64 x 2 MiB at most */

struct rk_replay;

enum rk_replay_result { RK_REPLAY_NEW = 0, RK_REPLAY_SEEN, RK_REPLAY_FULL };

/* NULL when out of memory. window_ms >= 1. */
struct rk_replay *rk_replay_new(uint64_t window_ms);
void rk_replay_free(struct rk_replay *r);

/* Record mac (>= 8 bytes) at now_ms: NEW (recorded), SEEN (recorded
 * before, within the window) or FULL (not recorded: no room). */
enum rk_replay_result rk_replay_take(struct rk_replay *r, const uint8_t *mac, uint64_t now_ms);

/* Entries held at now_ms, both generations, each stripe aged to now_ms
 * first (stripes age when touched; figures, tests). */
size_t rk_replay_size(struct rk_replay *r, uint64_t now_ms);

#endif

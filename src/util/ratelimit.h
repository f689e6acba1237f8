/* Per-client-address token buckets (limits.client_rate, client_burst).
 *
 * Every worker asks before doing any work for a client request; an address
 * whose bucket is empty is refused and told how long until its next token.
 * A bucket holds up to `burst` tokens and refills at `rate` per second;
 * a request takes one.
 *
 * Design:
 *  - Key: the client's IP address; its port is ignored, so one client with
 *    many connections is one client. IPv4 is kept as IPv4-mapped IPv6.
 *    Transports without an address (ipc, inproc) share one key.
 *  - Table: RK_RL_STRIPES stripes of RK_RL_WAYS buckets, each stripe under
 *    its own mutex; an address hashes (keyed with a random seed, so nobody
 *    can aim many addresses at one stripe) to one stripe. Memory is fixed:
 *    4,096 buckets, whatever the number of clients.
 *  - A new address takes a free bucket of its stripe, or the one idle
 *    longest provided it has refilled completely: forgetting a full bucket
 *    loses nothing but its counters. When every bucket of the stripe is
 *    still refilling, the newcomer shares the stripe's overflow bucket:
 *    a flood of distinct addresses can neither grow memory nor evict the
 *    buckets of clients being limited; those newcomers are limited together.
 *  - Tokens are counted in millionths, refilled from the time elapsed since
 *    the bucket was last touched (monotonic ns passed in by the caller).
 *  - Rate 0 turns limiting off: take() answers at once without a lock.
 *
 * Threads: any thread may call take(), set(), top() and totals().
 */
#ifndef RK_UTIL_RATELIMIT_H
#define RK_UTIL_RATELIMIT_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RK_RL_STRIPES 64u
#define RK_RL_WAYS    64u

/* A client's address: 16 bytes of IPv6 (IPv4 mapped), or all zero. */
struct rk_rl_addr {
    uint8_t b[16];
};

/* The address of sa (a pipe's NNG_OPT_REMADDR); zero for ipc/inproc. */
void rk_rl_addr_from_nng(const nng_sockaddr *sa, struct rk_rl_addr *a);

/* a as text ("127.0.0.1", "::1", "local"): at most 46 bytes with its NUL. */
void rk_rl_addr_text(const struct rk_rl_addr *a, char *out, size_t cap);

struct rk_ratelimit;

/* A limiter, off until set(). NULL when out of memory. */
struct rk_ratelimit *rk_ratelimit_new(void);
void rk_ratelimit_free(struct rk_ratelimit *rl);

/* rate: tokens per second (0 = off); burst: the most a bucket holds (0 =
 * one second's worth, rate). Buckets keep their tokens, cut to the new
 * burst. */
void rk_ratelimit_set(struct rk_ratelimit *rl, uint32_t rate, uint32_t burst);

/* The rate and burst in force (burst resolved: never 0 while on). */
void rk_ratelimit_setting(const struct rk_ratelimit *rl, uint32_t *rate, uint32_t *burst);

/* Is limiting on (a rate set)? Lets a caller skip finding the address. */
bool rk_ratelimit_on(const struct rk_ratelimit *rl);

/* One request from a at now_ns: 0 if allowed (a token taken), else the ms
 * until a's next token (>= 1): refused, and counted. */
uint64_t rk_ratelimit_take(struct rk_ratelimit *rl, const struct rk_rl_addr *a, uint64_t now_ns);

/* An address the limiter knows, with its counts since it got its bucket.
 * shared: the counts of the overflow buckets together (addr is zero). */
struct rk_rl_top {
    struct rk_rl_addr addr;
    uint64_t requests, limited;
    int shared;
};

/* Up to n of the addresses refused most (then with most requests), most
 * first, into out; the overflow buckets count as one row when they were
 * used. Returns the number written. */
size_t rk_ratelimit_top(struct rk_ratelimit *rl, struct rk_rl_top *out, size_t n);

/* A top row's address as text: rk_rl_addr_text, or "other" for the
 * overflow buckets' row. */
void rk_rl_top_text(const struct rk_rl_top *row, char *out, size_t cap);

/* Requests refused since start, every address (no lock). */
uint64_t rk_ratelimit_limited(const struct rk_ratelimit *rl);

struct rk_rl_totals {
    uint32_t rate, burst; /* as set (burst resolved: never 0 while on) */
    uint64_t limited;     /* requests refused since start, every address */
    uint32_t addresses;   /* buckets in use */
};
void rk_ratelimit_totals(struct rk_ratelimit *rl, struct rk_rl_totals *t);

#endif

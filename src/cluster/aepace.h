/* Anti-entropy pacing: the initiator's decisions that need no loop, no
 * socket and no clock of their own (antientropy.c drives them; tests run
 * them on a simulated clock): the node's key and byte budget, shared by
 * every worker's initiator; the back-off while a worker is busy; and the
 * order of a round's partitions.
 *
 * Threads: a budget is shared by all workers (atomics, lock-free); a
 * back-off belongs to one initiator; the round order is a pure function.
 */
#ifndef RK_AEPACE_H
#define RK_AEPACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the node's budget ----
 *
 * antientropy.max_keys_per_second and max_bytes_per_second are per node,
 * and every worker runs its own initiator, so the workers draw from one
 * shared budget rather than each from keys/nworkers: a worker whose
 * partitions are in sync leaves the whole budget to the one repairing.
 *
 * Each of the two buckets is a GCRA ("virtual scheduling"): tat is the
 * theoretical time at which everything charged so far would have been
 * spent at the rate. A send may go when tat is at most RK_AE_BURST_MS
 * ahead of now; it moves tat on by its cost / rate. Over any window of W
 * seconds at most rate * (W + burst) units go, plus one move per worker
 * racing the check and, for bytes, one message (a cost is charged whole):
 * at 500 keys/s, at most 1,027 keys in any 2 s window with two workers
 * (2.7 % over), so the 10 % the issue allows holds with room for the
 * time a count takes to be published.
 */
#define RK_AE_BURST_MS 50

struct rk_ae_budget {
    atomic_uint_fast64_t key_tat_ns;  /* monotonic ns; 0 = never used */
    atomic_uint_fast64_t byte_tat_ns; /* monotonic ns; 0 = never used */
};

/* An empty budget: everything may go at once. Zeroed memory is one too. */
void rk_ae_budget_init(struct rk_ae_budget *b);

/* Take one key of nbytes from b at now_ns (monotonic) under the rates
 * keys_ps and bytes_ps (0 = no limit): true when both buckets allowed it
 * (and both were charged), false when one is spent (nothing charged). The
 * key is taken atomically, so concurrent takers never overdraw it by more
 * than one key each. Any thread. */
bool rk_ae_budget_take(struct rk_ae_budget *b, uint64_t now_ns, uint64_t keys_ps, uint64_t bytes_ps,
                       uint64_t nbytes);

/* Charge nbytes more at now_ns, whether or not the bucket allows it (a
 * pulled value: its size is known only once it arrived); later takes wait
 * for it. Any thread. */
void rk_ae_budget_charge_bytes(struct rk_ae_budget *b, uint64_t now_ns, uint64_t bytes_ps,
                               uint64_t nbytes);

/* Nanoseconds from now_ns until a take may succeed (0 = now). */
uint64_t rk_ae_budget_wait(const struct rk_ae_budget *b, uint64_t now_ns, uint64_t keys_ps,
                           uint64_t bytes_ps);

/* ---- backing off while the worker is busy ----
 *
 * The worker measures its own load (antientropy.h: rk_ae_load_fn). It is
 * busy when RK_AE_BUSY_QUEUED requests wait in its queue, when the node's
 * requests in flight reach a quarter of limits.max_inflight (past the
 * limit it answers BUSY), or when its loop lags RK_AE_BUSY_LAG_MS (a timer
 * fired that late: a request waits as long). While busy, the initiator
 * sends nothing for a pause that doubles from RK_AE_PAUSE_MIN_MS to
 * RK_AE_PAUSE_MAX_MS; after a longest pause, one burst goes anyway (the
 * slots of one exchange, at most 32 moves and one AE request), so a worker
 * busy for good still converges, slowly, and a pause is always bounded.
 */
#define RK_AE_BUSY_QUEUED  128u
#define RK_AE_BUSY_LAG_MS  50u
#define RK_AE_PAUSE_MIN_MS 50u
#define RK_AE_PAUSE_MAX_MS 1000u

struct rk_ae_load {
    uint32_t queued;       /* requests waiting for this worker's loop */
    uint32_t inflight;     /* the node's requests received and not answered */
    uint32_t inflight_max; /* limits.max_inflight; 0 = not known */
    uint32_t lag_ms;       /* how late the worker's last timer fired */
};

bool rk_ae_busy(const struct rk_ae_load *l);

struct rk_ae_backoff {
    uint64_t until_ns; /* no send before (monotonic) */
    uint64_t pause_ns; /* the last pause; 0 = not busy last time */
    bool went;         /* the burst after a longest pause went */
    uint64_t pauses;   /* pauses taken, ever */
};

/* Whether the initiator may send at now_ns: 0 = yes, else the ns to wait
 * before asking again. load(arg, out) is called only when no pause is
 * running. b starts zeroed. */
uint64_t rk_ae_backoff_wait(struct rk_ae_backoff *b, uint64_t now_ns,
                            void (*load)(void *arg, struct rk_ae_load *out), void *arg);

/* ---- the order of a round ---- */

/* The partitions of a round, in the order they go: those below partitions
 * that worker owns (p % nworkers == worker) and of which this node is a
 * replica (replica(arg, p)), the marked ones (marks(arg, p) != 0: a
 * dropped hint, a quarantined segment, a corrupt block, kvctl repair)
 * first, then the others, each group ascending from the first one at or
 * after start, wrapping round. Every replica of a partition exchanges it
 * with every other, so nodes that started their rounds at different
 * places (start from the node's id) are mostly at different partitions at
 * a time: a replica that lost data is refilled once, not once by each of
 * its peers at the same moment. Written to list, which has room for every
 * partition the worker owns; returns how many. */
size_t rk_ae_round_order(uint32_t partitions, uint32_t nworkers, uint32_t worker, uint32_t start,
                         bool (*replica)(void *arg, uint32_t p),
                         unsigned (*marks)(void *arg, uint32_t p), void *arg, uint32_t *list);

/* The start of a node's rounds (rk_ae_round_order): spread over the
 * partitions by a hash of its id. */
uint32_t rk_ae_round_start(const char *node_id, uint32_t partitions);

#endif

/* Anti-entropy progress: what one worker remembers of its anti-entropy
 * rounds, so `kvctl ae` shows the last round after a restart and a round
 * cut short resumes where it stopped. Per worker (a partition belongs to
 * one worker, which alone runs its exchanges): the current round and its
 * counters, totals since the data dir was made, and per partition the last
 * exchange with each peer, the priority marks and the round it was last
 * compared in. The node's figures are the sum over its workers
 * (struct rk_aeprogress_summary, one home for the admin API, /metrics and
 * the dashboard).
 *
 * On disk, DIR/ae-progress (little-endian, replaced whole and atomically by
 * rk_fs_write_file, so a crash leaves the old file or the new one):
 *   header 32 B: magic u32 "RKAP", version u8 (1), flags u8 (bit 0: a round
 *     is in progress), 2 zero bytes, length u32 (the whole file),
 *     partitions u32, workers u32, worker u32, entries u32, 4 zero bytes
 *   round 64 B: number u64, started_ms u64, finished_ms u64 (of the last
 *     round that finished), compared u32, total u32, leaves differing,
 *     keys pulled, keys pushed, bytes (u64 each, this round)
 *   totals 56 B: rounds, partitions compared, leaves differing, keys
 *     pulled, pushed, repaired, bytes (u64 each, ever)
 *   entries, each: partition u32, marks u8, peers u8, 2 zero bytes,
 *     marked_ms u64, round u64, keys_repaired u64, leaves_differing u64,
 *     then per peer: id length u8, id bytes, ok_ms u64, last_ms u64,
 *     result u8, leaves u32, keys u64
 *   XXH3_64 of everything before it, u64.
 * A missing file is a fresh start. A file that is damaged, of another
 * version or written for another layout (partitions, workers) is ignored
 * at open with one warning saying what is wrong, never trusted: losing it
 * costs a full round and the marks it held (the partitions are compared in
 * the next round anyway), never data.
 *
 * Times are wall-clock ms. An exchange's time (ok_ms) is when it STARTED:
 * whatever a replica held before that instant was compared, which is what
 * the tombstone watermark and the clearing of a mark need. Only an
 * exchange that COMPLETED counts there: result ok, and every key it
 * decided to move taken by the side that lacked it (keys_failed 0); one
 * whose push of a tombstone was refused has not carried the delete over.
 *
 * Threads: one owner (its worker's loop); not thread-safe. Other threads
 * read a copy (rk_aeprogress_clone) that the owner publishes under a lock.
 */
#ifndef RK_AEPROGRESS_H
#define RK_AEPROGRESS_H

#include "util/jbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RK_AEPROGRESS_FILE "ae-progress"

/* Peers remembered per partition: replicas is at most 16 (config.c), so 15
 * other replicas, plus one so a replaced replica's record can linger until
 * the oldest is dropped. */
#define RK_AEPROGRESS_PEERS 16
#define RK_AEPROGRESS_ID    64 /* bytes of a node id, NUL included (node ids are shorter) */

/* Counters are saved at most this often; marks and round boundaries are
 * saved at the owner's next save check. Five seconds bounds what a crash
 * forgets (the counters of a few seconds) and the writes (one small file). */
#define RK_AEPROGRESS_SAVE_MS 5000

/* Why a partition goes first (bits of marks). */
enum {
    RK_AE_MARK_HINT = 1u << 0,    /* a hint for it was dropped (ae-marks) */
    RK_AE_MARK_SEGMENT = 1u << 1, /* a segment that held it was quarantined (--repair) */
    RK_AE_MARK_CORRUPT = 1u << 2, /* a corrupt block of it was found while serving */
    RK_AE_MARK_REQUEST = 1u << 3, /* kvctl repair */
    RK_AE_MARK_ALL = 0xFu,
};

/* How an exchange ended. Stable: stored on disk and shown by name. */
enum rk_ae_result {
    RK_AE_NEVER = 0, /* no exchange yet */
    RK_AE_OK = 1,
    RK_AE_UNREACHABLE = 2, /* the peer was down or did not answer */
    RK_AE_REFUSED = 3,     /* the peer refused (busy, not a replica, another version) */
    RK_AE_ABORTED = 4,     /* cut short here (shutdown, budget, view change) */
    RK_AE_RESULTS,
};

/* What one exchange moved (the exchange reports it). */
struct rk_ae_exchange {
    uint64_t started_ms, finished_ms;
    enum rk_ae_result result;
    uint32_t leaves_differing;
    uint64_t keys_pulled, keys_pushed, bytes;
    uint64_t keys_failed; /* moves decided but not taken (refused, not sent, no answer):
                             the exchange is then not complete (see the top) */
};

/* The figures of a worker, or of a node (sum over workers). A node's
 * round is the lowest of its workers' (a round is done when every worker
 * is done) and in_progress when any worker's is. */
struct rk_aeprogress_summary {
    uint64_t round;
    bool in_progress;
    uint64_t started_ms, finished_ms;
    uint32_t compared, total;
    uint64_t leaves, pulled, pushed, bytes; /* this round */
    struct {
        uint64_t rounds, compared, leaves, pulled, pushed, repaired, bytes;
    } totals; /* since the data dir was made (kept across restarts) */
    uint32_t marked;
};

struct rk_aeprogress;

/* Open the progress of worker `worker` of `workers` over `partitions`
 * partitions (it owns partition p when p % workers == worker), kept in dir
 * (which must exist), loading dir/ae-progress when it is there and valid.
 * 0, RK_EINVAL for a bad layout, or -ENOMEM. *out is the caller's until
 * rk_aeprogress_close. */
int rk_aeprogress_open(struct rk_aeprogress **out, const char *dir, uint32_t partitions,
                       uint32_t workers, uint32_t worker);

/* Free p (NULL is a no-op). Nothing is saved: call rk_aeprogress_save. */
void rk_aeprogress_close(struct rk_aeprogress *p);

/* A deep copy of p for readers on other threads (it is never saved:
 * its dir is the same, but nothing calls save on a copy). 0 or -ENOMEM. */
int rk_aeprogress_clone(struct rk_aeprogress **out, const struct rk_aeprogress *p);

/* Changes since open: bumped by every change, so a publisher copies only
 * when it moved. */
uint64_t rk_aeprogress_generation(const struct rk_aeprogress *p);

/* Start round number+1 over total partitions at now_ms: the round's
 * counters restart at zero. A round still in progress is abandoned (it
 * counts as unfinished). */
void rk_aeprogress_round_start(struct rk_aeprogress *p, uint64_t now_ms, uint32_t total);

/* Finish the round in progress at now_ms (no-op when none is). */
void rk_aeprogress_round_finish(struct rk_aeprogress *p, uint64_t now_ms);

/* Whether part was compared in the round in progress (the driver skips it
 * when a round resumes after a restart). */
bool rk_aeprogress_compared(const struct rk_aeprogress *p, uint32_t part);

/* Record an exchange of part with peer (a node id). Counters of the round
 * and totals grow by what it moved; part counts as compared in this round
 * once per round (on its first successful exchange); the peer's ok_ms
 * moves to its start only when it completed (ok, no key failed). 0, RK_EINVAL for a
 * partition this worker does not own, an empty or too long peer id or a
 * bad result. */
int rk_aeprogress_record(struct rk_aeprogress *p, uint32_t part, const char *peer,
                         const struct rk_ae_exchange *x);

/* Mark part to go first, for the reasons in `why` (RK_AE_MARK_*), at
 * now_ms. The mark's time moves to now_ms, so every replica must exchange
 * again after it. 0 or RK_EINVAL (not owned, no reason). */
int rk_aeprogress_mark(struct rk_aeprogress *p, uint32_t part, unsigned why, uint64_t now_ms);

/* The reasons part is marked for (0: not marked). */
unsigned rk_aeprogress_marks(const struct rk_aeprogress *p, uint32_t part);

/* Clear part's mark if every one of the n peers (the partition's other
 * replicas now) completed an exchange that started after the mark. true
 * when it was cleared (or was not marked); false when a peer has not, and
 * the mark stays. */
bool rk_aeprogress_clear(struct rk_aeprogress *p, uint32_t part, const char *const *peers,
                         size_t n);

/* The tombstone watermark of part: every one of the n peers (the
 * partition's other replicas now) has completed an exchange with this node
 * that started at or after it, so whatever this node held strictly before
 * it, each of them holds (or something newer). The minimum over the peers
 * of the start of their last completed exchange; 0 when one never
 * completed one. With no peers (a single replica) nothing needs to see a
 * tombstone: UINT64_MAX. */
uint64_t rk_aeprogress_watermark(const struct rk_aeprogress *p, uint32_t part,
                                 const char *const *peers, size_t n);

/* p's figures into *s (replacing it). */
void rk_aeprogress_summary(const struct rk_aeprogress *p, struct rk_aeprogress_summary *s);

/* Fold worker figures w into node figures into: first replaces into with
 * w; then counters add up, the round and the rounds done are the lowest,
 * the round's start the earliest and its finish the latest. */
void rk_aeprogress_summary_add(struct rk_aeprogress_summary *into,
                               const struct rk_aeprogress_summary *w, bool first);

/* The round's rates at now_ms (up to its finish when it is over): keys
 * (pulled + pushed) and bytes per second since it started, and the
 * seconds left at that pace (has_eta false: unknown until a partition is
 * done, or no round running). */
struct rk_aeprogress_rates {
    double keys_per_second, bytes_per_second, eta_s;
    bool has_eta;
};
void rk_aeprogress_rates(const struct rk_aeprogress_summary *s, uint64_t now_ms,
                         struct rk_aeprogress_rates *r);

/* A peer's most recent exchange over many partitions (result
 * RK_AE_NEVER and zero times: none recorded). */
struct rk_aeprogress_last {
    uint64_t ok_ms;   /* start of the latest completed exchange (as per partition) */
    uint64_t last_ms; /* end of the latest exchange, whatever its result */
    uint8_t result;   /* of that latest exchange */
};

/* Fold p's exchanges into out[i] for each of the n peers ids[i] (sorted
 * by strcmp; other peers p remembers are left out): out[i] keeps the
 * latest exchange with ids[i] over every partition p owns (last_ms and
 * result from the one that ended last, ok_ms the latest). Called for each
 * worker's progress with the same out, it gives the node's. */
void rk_aeprogress_peers_latest(const struct rk_aeprogress *p, const char *const *ids, size_t n,
                                struct rk_aeprogress_last *out);

/* "round":{...},"totals":{...},"marked_partitions":N: the summary as members of an
 * object (no braces), with the rates and ETA of the round at now_ms. */
void rk_aeprogress_json_summary(const struct rk_aeprogress_summary *s, uint64_t now_ms,
                                struct rk_jbuf *b);

/* One partition as a JSON object: its replicas (in the order given: the
 * preference list), marks, last exchange and its result, leaves differing
 * and keys repaired (ever), the round it was last compared in, the
 * watermark, p's worker and its round ("worker_round": number, in
 * progress, started_ms, finished_ms of the last round that finished) and
 * one entry per peer (every replica but self, "never" when none was
 * recorded). The worker's round comes from the same copy as the rest, so
 * a reader judges compared_in_round against it: each worker runs its own
 * rounds, and the node's round is the lowest of them. A partition p does
 * not own shows as never compared. */
void rk_aeprogress_json_partition(const struct rk_aeprogress *p, uint32_t part, const char *self,
                                  const char *const *replicas, size_t n, struct rk_jbuf *b);

/* Short stable name of a result ("ok", "never", "unreachable" ...). */
const char *rk_ae_result_name(enum rk_ae_result r);

/* Whether p has changes not yet saved. */
bool rk_aeprogress_dirty(const struct rk_aeprogress *p);

/* Whether a save is due at now_ms: dirty, and either something that must
 * not wait (a mark, a round boundary) changed or RK_AEPROGRESS_SAVE_MS
 * passed since the last save. */
bool rk_aeprogress_save_due(const struct rk_aeprogress *p, uint64_t now_ms);

/* Write dir/ae-progress if dirty, durably (temp file, fsync, rename, dir
 * fsync); no I/O when clean. 0 or -errno (-ENOMEM); on failure p stays
 * dirty so a later save retries. now_ms starts the next save interval. */
int rk_aeprogress_save(struct rk_aeprogress *p, uint64_t now_ms);

#endif

/* Anti-entropy exchange of one partition between two replicas: the
 * initiator's state machine (which request to send next, and from the
 * replies which keys to push and which to pull) and the responder's
 * answers. Pure logic over a tree interface: no sockets, no clock reads,
 * no storage writes; the driver sends the bytes, keeps the time and moves
 * the records. Design block and failure cases in aexchange.c.
 *
 * Threads: an exchange and the tree it reads belong to the partition's
 * worker; nothing here is thread-safe, nothing blocks.
 */
#ifndef RK_AEXCHANGE_H
#define RK_AEXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/aewire.h"
#include "proto/proto.h"

/* What the exchange needs from a partition's hash tree (an adapter over
 * aetree.h and the storage index; tests use fakes). Every call is synchronous, on the owning
 * worker, and returns 0 or a negative error (RK_ENOTFOUND: this node does
 * not hold the partition), which fails the exchange or the answer.
 *  - top: the root and the 32 mid hashes, from a current tree (rebuilt
 *    first if entries expired since its last build: ae-design.md).
 *  - leaves: the 32 leaf hashes under mid (0..31).
 *  - scan: the entries of the n leaves leaves[0..n-1] (n >= 1, strictly
 *    ascending, each < 1024), leaf after leaf and in ascending key order
 *    (rk_aew_key_cmp) inside each; in leaves[0] only keys sorting after
 *    `after` (NULL = from its first); tombstones and expired entries
 *    included; each entry's leaf field names its leaf. Stops when visit
 *    returns nonzero. One call costs one pass over the partition's index
 *    whatever n, so one AE_KEYS answer, and one reply handled, scan once.
 *    An entry's key is a borrowed view valid until the worker's next
 *    mutation of the partition (the exchange holds it only within one
 *    call). */
typedef int (*rk_ae_visit_fn)(void *arg, const struct rk_aew_entry *e);
struct rk_ae_tree_ops {
    int (*top)(void *t, uint16_t part, uint64_t *root, uint64_t mids[RK_AEW_MIDS]);
    int (*leaves)(void *t, uint16_t part, unsigned mid, uint64_t leaves[RK_AEW_FANOUT]);
    int (*scan)(void *t, uint16_t part, const uint16_t *leaves, uint16_t n, const uint8_t *after,
                uint16_t alen, rk_ae_visit_fn visit, void *arg);
};
struct rk_ae_tree {
    const struct rk_ae_tree_ops *ops;
    void *t;
};

/* Which way a key must move. PUSH: the peer lacks it or holds an older
 * record, send ours (RPUT). PULL: we lack it or hold an older one, fetch
 * theirs (RGET, then the local versioned write). TIE: both hold values of
 * the same version with different expiries, so the winner is decided by
 * rk_record_rank over the values, which the exchange never sees: do both
 * (pull and push); each side's versioned write keeps the higher rank, so
 * both converge on the same record. */
enum rk_aex_kind { RK_AEX_PUSH, RK_AEX_PULL, RK_AEX_TIE };
#define RK_AEX_KINDS 3

/* Keys handed out per emit call: enough to fill a peer batch, small
 * enough that the batches cost ~20 KiB per exchange. */
#define RK_AEX_BATCH 256u
/* Entries compared per reply by default: a reply holds at most 4096 peer
 * entries, and this bounds the local ones, so one step on the loop stays
 * around a millisecond whatever the leaf sizes. */
#define RK_AEX_STEP_KEYS 4096u

/* Called with up to RK_AEX_BATCH entries of one kind: the winning record's
 * state (ours for PUSH, theirs for PULL, theirs for TIE). Keys are borrowed
 * for the call only: copy what you queue. Must not write to the partition
 * during the call (the scan's views would go stale). */
typedef void (*rk_aex_emit_fn)(void *arg, enum rk_aex_kind kind, const struct rk_aew_entry *e,
                               size_t n);

struct rk_aex_stats {
    uint32_t mids_differing, leaves_differing;
    uint64_t keys_compared; /* distinct keys looked at, on either side */
    uint64_t to_push, to_pull, ties;
    uint64_t expired_skipped; /* would have moved, but the winner expired */
    uint64_t requests;        /* requests produced, AE_ROOT included */
    uint64_t bytes_sent, bytes_received;
};

enum rk_aex_state {
    RK_AEX_NEW,       /* allocated, rk_aex_start not called */
    RK_AEX_WAIT_ROOT, /* AE_ROOT sent */
    RK_AEX_WAIT_KEYS, /* an AE_KEYS sent */
    RK_AEX_DONE,      /* every step answered: success */
    RK_AEX_FAILED,    /* rk_aex_error says why; retry in a later round */
};

struct rk_aex_conf {
    struct rk_ae_tree tree;
    uint16_t partition;
    uint32_t first_id;   /* message id of the first request; +1 per request */
    uint32_t step_keys;  /* local entries compared per reply; 0 = RK_AEX_STEP_KEYS */
    rk_aex_emit_fn emit; /* required */
    void *arg;
};

struct rk_aex;

/* A new exchange (state NEW), the caller's until rk_aex_free. 0 or -ENOMEM.
 * About 100 KiB: the largest AE_KEYS request it may have to build (68 KiB)
 * and the key batches (30 KiB), so a step never allocates. */
int rk_aex_alloc(struct rk_aex **out, const struct rk_aex_conf *conf);
void rk_aex_free(struct rk_aex *x);

/* The AE_ROOT request: 0 with *req, *len = the message to send (borrowed
 * from x, valid until the next call on x), or the tree's error (FAILED).
 * Only in state NEW (else RK_EINVAL). */
int rk_aex_start(struct rk_aex *x, const uint8_t **req, size_t *len);

/* The peer's reply to the request in flight, as received (whole message).
 * now_ms is the wall clock: entries expired at it never move. Hands the
 * keys to move to emit, then returns 1 with *req, *len = the next request
 * (borrowed as above), 0 when the exchange is DONE, or a negative error
 * when it FAILED: RK_EMALFORMED for a reply that does not decode or does
 * not answer the request (wrong opcode, id, partition, leaves, order,
 * cursor), the peer's error for a non-OK status, the tree's error. Keys
 * emitted before a failure were decided from checked entries and stay
 * valid. RK_EINVAL when no request is in flight. */
int rk_aex_on_reply(struct rk_aex *x, const void *rep, size_t len, uint64_t now_ms,
                    const uint8_t **req, size_t *reqlen);

/* The request in flight got no answer (timeout, peer gone, send failed):
 * the exchange FAILED with err. No-op once DONE or FAILED. */
void rk_aex_fail(struct rk_aex *x, int err);

enum rk_aex_state rk_aex_state(const struct rk_aex *x);
int rk_aex_error(const struct rk_aex *x); /* 0 unless FAILED */
const struct rk_aex_stats *rk_aex_stats(const struct rk_aex *x);

/* Responder: answer req (an AE_ROOT or AE_KEYS request decoded by
 * rk_proto_decode) from tree into out, which holds RK_AEW_MSG_MAX bytes:
 * 0 with *outlen set, or a negative error (RK_EMALFORMED for a bad body,
 * RK_EUNSUPPORTED for another opcode, the tree's error) for the caller to
 * answer as a status (rk_proto_status). At most max_entries entries per
 * AE_KEYS reply (0 = RK_AEW_MAX_ENTRIES). Reads the tree, writes nothing. */
int rk_aex_respond(const struct rk_ae_tree *tree, const struct rk_msg *req, uint16_t max_entries,
                   uint8_t *out, size_t *outlen);

#endif

/* The cluster secret (security.secret_file): proving that a message comes
 * from a holder of the secret, and refusing what does not.
 *
 * Design:
 *  - Keys: the secret file's bytes never sign anything themselves; one key
 *    per purpose is derived, HMAC-SHA256(secret, "ringkv/<purpose>/1"), so
 *    a MAC made for gossip can never pass as one for a request.
 *  - Trailer: an authenticated message ends with 48 bytes, ts_ms u64
 *    (sender's wall clock), nonce u64 (random), mac[32]; the MAC is
 *    HMAC-SHA256(key, every byte of the message before the mac), so it
 *    covers the header, every field, the time and the nonce. Where the
 *    trailer sits inside a format (a proto field, a gossip envelope
 *    version) is that format's business; this file sees bytes.
 *  - Freshness: a message whose ts is more than the window away from the
 *    receiver's clock is refused (STALE); within the window, a request seen
 *    before (same MAC) is refused (REPLAY; replay.h keeps the MACs seen).
 *    Replies are bound to their request by the request id the MAC covers
 *    and need no replay set: nobody but the requester reads them.
 *  - Refusals are counted per channel and reason, and logged at most once a
 *    minute per source address, so a flood of bad messages cannot flood
 *    the log.
 * The primitives are mbedTLS's (HMAC-SHA256); nothing here is a cipher.
 *
 * Threads: a struct rk_auth is set up once (init) and then read-only but
 * for its counters and log slots, which any thread may touch.
 */
#ifndef RK_UTIL_AUTH_H
#define RK_UTIL_AUTH_H

#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RK_AUTH_SECRET_MIN 32u   /* bytes a secret file must hold at least */
#define RK_AUTH_SECRET_MAX 4096u /* and at most (a key file, not a document) */
#define RK_AUTH_MAC        32u
#define RK_AUTH_TRAILER    48u /* ts_ms u64 | nonce u64 | mac[32] */

/* How far a message's time may be from the receiver's clock, on top of
 * cluster.max_clock_skew: room for queues and retries under load (the
 * node uses cluster.request_timeout instead when that is longer). */
#define RK_AUTH_SLACK_MS 10000u

struct rk_auth_key {
    uint8_t k[32];
};

enum rk_auth_verdict {
    RK_AUTH_OK = 0,
    RK_AUTH_MISSING,   /* no trailer: sent by a node or client without the secret */
    RK_AUTH_BAD_MAC,   /* another secret, or the bytes were changed on the way */
    RK_AUTH_STALE,     /* its time is outside the window (clocks apart, or captured long ago) */
    RK_AUTH_REPLAY,    /* the same message was taken before */
    RK_AUTH_NO_SECRET, /* signed, but this node has no secret to check it with */
    RK_AUTH_NREASONS
};

/* Where a refused message came in: counted and shown apart. */
enum rk_auth_channel {
    RK_AUTH_PEER = 0, /* replica, anti-entropy and transfer requests on the client/peer socket */
    RK_AUTH_ADMIN,    /* cluster-changing admin requests (join, leave, remove, repair) */
    RK_AUTH_CLIENT,   /* data and read-only admin requests (security.client_auth) */
    RK_AUTH_REPLY,    /* a peer's reply to this node's own request */
    RK_AUTH_GOSSIP,   /* surveys and answers */
    RK_AUTH_NCHANNELS
};

struct rk_replay;

struct rk_auth {
    bool on;                   /* a secret is set: everything below is in use */
    struct rk_auth_key rpc;    /* requests and replies on the client/peer socket */
    struct rk_auth_key gossip; /* surveys and answers */
    uint64_t window_ms;        /* |now - ts| allowed */
    struct rk_replay *seen;    /* MACs of requests taken within the window */
    atomic_uint_fast64_t refused[RK_AUTH_NCHANNELS][RK_AUTH_NREASONS];
    pthread_mutex_t log_mu;     /* guards log */
    struct rk_log_slot log[16]; /* the last line per source (util/log.h) */
};

/* Read a secret file: a regular file of RK_AUTH_SECRET_MIN..MAX bytes,
 * readable by its owner only (mode & 077 == 0: neither group nor others
 * may read or write it). 0 with the bytes in out (cap >= RK_AUTH_SECRET_MAX) and *len, or -1
 * with one line in err naming the file and the problem and what to do. */
int rk_auth_secret_read(const char *path, uint8_t *out, size_t *len, char *err, size_t errlen);

/* The key for purpose ("rpc", "gossip") from the secret's bytes. */
void rk_auth_derive(const uint8_t *secret, size_t len, const char *purpose,
                    struct rk_auth_key *out);

/* rk_auth_secret_read then rk_auth_derive: the key for purpose from the
 * secret file at path (a client's --secret-file). 0, or -1 with err. */
int rk_auth_key_from_file(const char *path, const char *purpose, struct rk_auth_key *out, char *err,
                          size_t errlen);

/* Set a up from the secret file path ("" = off: a->on false, 0) with
 * |now - ts| <= window_ms. 0, or -1 with one line in err. fini frees
 * what init made (a zeroed or failed struct is fine). */
int rk_auth_init(struct rk_auth *a, const char *path, uint64_t window_ms, char *err, size_t errlen);
void rk_auth_fini(struct rk_auth *a);

/* Write the trailer of msg[0..len), the last RK_AUTH_TRAILER bytes: ts_ms,
 * a fresh random nonce, then the MAC of everything before it. */
void rk_auth_seal(const struct rk_auth_key *k, uint8_t *msg, size_t len, uint64_t ts_ms);

/* Check the trailer ending msg[0..len): MAC, then time against now_ms.
 * OK, BAD_MAC (also for len < trailer) or STALE. The MAC is compared in
 * constant time. */
enum rk_auth_verdict rk_auth_check_mac(const struct rk_auth_key *k, const uint8_t *msg, size_t len,
                                       uint64_t now_ms, uint64_t window_ms);

/* rk_auth_check_mac with a's window, and for a request (replay true) the
 * replay set: a MAC taken before is REPLAY. */
enum rk_auth_verdict rk_auth_check(struct rk_auth *a, const struct rk_auth_key *k,
                                   const uint8_t *msg, size_t len, bool replay);

/* Count a refusal and log it (once a minute per source, with how many
 * were not logged since). source: the sender's address, or "?". */
void rk_auth_refused(struct rk_auth *a, enum rk_auth_channel ch, enum rk_auth_verdict why,
                     const char *source);

/* Short stable names: "missing", "bad_mac", "stale", "replay",
 * "no_secret"; "peer",
 * "admin", "client", "reply", "gossip". */
const char *rk_auth_reason_name(enum rk_auth_verdict v);
const char *rk_auth_channel_name(enum rk_auth_channel ch);

/* One line for a refusal's reply or log: what went wrong and what to do. */
const char *rk_auth_reason_text(enum rk_auth_verdict v);

#endif

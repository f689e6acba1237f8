/* The cluster member table: the pure state that gossip drives. No sockets,
 * threads or clocks: every time comes in as an argument, so each rule is
 * unit-tested (tests/unit/test_members.c) and the wire decoder is fuzzed
 * (tests/fuzz/fuzz_members.c). The rules (merge precedence, refutation,
 * failure detection) are set out in the design block of members.c.
 *
 * Threads: a table is not thread-safe; the one thread that owns it (the
 * gossip loop) makes every call. The codec functions touch no table and any
 * thread may call them.
 */
#ifndef RK_MEMBERS_H
#define RK_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds. The id and address lengths fit the one-byte length prefixes of
 * the wire format; 1024 members is far beyond a full-mesh gossip design,
 * and keeps a table (about 0.5 MiB) and a whole-table survey payload
 * (RK_MEMBERS_WIRE_MAX) bounded. */
#define RK_MEMBERS_MAX     1024
#define RK_MEMBER_ID_MAX   63  /* bytes, without the NUL */
#define RK_MEMBER_ADDR_MAX 127 /* bytes, without the NUL */

/* Wire format, version 1, all integers little-endian:
 *   header: version u8 (= RK_MEMBERS_WIRE_VERSION), reserved u8 (= 0),
 *           count u16 (<= RK_MEMBERS_MAX)
 *   count entries, each:
 *     id_len u8 (1..63), id bytes; then client, peer, gossip address, each
 *     len u8 (0..127) + bytes; no NUL byte inside any string;
 *     incarnation u64, heartbeat u64, settings digest u64, config digest
 *     u64, state u8 (< RK_MEMBER_NSTATES).
 *   Nothing after the last entry. Local-only fields are never sent. */
#define RK_MEMBERS_WIRE_VERSION 1
#define RK_MEMBERS_WIRE_HDR     4u
#define RK_MEMBERS_WIRE_FIXED   33u /* 4 u64 + state u8 per entry */
#define RK_MEMBERS_WIRE_ENTRY_MAX                                                                  \
    (1u + RK_MEMBER_ID_MAX + 3u * (1u + RK_MEMBER_ADDR_MAX) + RK_MEMBERS_WIRE_FIXED)
#define RK_MEMBERS_WIRE_MAX (RK_MEMBERS_WIRE_HDR + RK_MEMBERS_MAX * RK_MEMBERS_WIRE_ENTRY_MAX)

/* Member states. The numeric order is NOT the merge precedence; see
 * rk_member_state_rank() in members.c. Values are on the wire: never
 * renumber. */
enum rk_member_state {
    RK_MEMBER_ALIVE = 0,
    RK_MEMBER_SUSPECT = 1,
    RK_MEMBER_DEAD = 2,
    RK_MEMBER_LEAVING = 3,
    RK_MEMBER_LEFT = 4,
    RK_MEMBER_NSTATES = 5,
};

struct rk_member {
    /* Gossiped fields: only the member itself originates a new incarnation
     * or heartbeat; others may only raise its state (suspect, dead). */
    char id[RK_MEMBER_ID_MAX + 1]; /* NUL-terminated, non-empty */
    char client_addr[RK_MEMBER_ADDR_MAX + 1];
    char peer_addr[RK_MEMBER_ADDR_MAX + 1];
    char gossip_addr[RK_MEMBER_ADDR_MAX + 1];
    uint64_t incarnation;
    uint64_t heartbeat;       /* raised by the member each gossip interval */
    uint64_t settings_digest; /* cluster.name, partitions, replicas: must match */
    uint64_t config_digest;   /* the whole effective config: drift is only shown */
    uint8_t state;            /* enum rk_member_state */
    /* Local only, never sent (decode leaves them 0). */
    uint64_t last_heard_ms;  /* last direct answer, or gossiped heartbeat rise */
    uint64_t state_since_ms; /* when this table last changed state */
    uint32_t rtt_us;         /* round trip of the last direct answer */
    bool stopped;            /* DEAD by its own stop announcement, not by silence */
};

/* Sorted by id (bytewise), so lookups are binary searches and the digest
 * needs no sort. Callers may read n, self and m[] (borrowed until the next
 * call that changes the table) but change them only through the functions
 * below. Embed it or allocate it; it is about 0.5 MiB. */
#define RK_MEMBERS_GONE 256 /* reaped members remembered, so old news cannot revive them */
struct rk_member_gone {
    char id[RK_MEMBER_ID_MAX + 1];
    uint64_t incarnation;
};

struct rk_members {
    size_t n;    /* members, 1..RK_MEMBERS_MAX */
    size_t self; /* index of our own entry in m[] */
    struct rk_member m[RK_MEMBERS_MAX];
    size_t ngone;          /* reaped so far; the last RK_MEMBERS_GONE are in gone[] */
    uint64_t max_ahead_ms; /* news this far ahead of now is refused; 0 = no bound */
    struct rk_member_gone gone[RK_MEMBERS_GONE];
};

/* What a merge or a tick did to one member, for the caller's log. */
enum rk_member_change {
    RK_MEMBER_NONE = 0, /* nothing: stale or equal news */
    RK_MEMBER_NEW,      /* added */
    RK_MEMBER_STATE,    /* state changed (from → to) */
    RK_MEMBER_REFRESH,  /* same state; newer incarnation, heartbeat or addresses */
    RK_MEMBER_REFUTED,  /* news about self overrode us: we bumped our incarnation */
    RK_MEMBER_CONFLICT, /* settings digest differs from ours: not merged */
};

struct rk_member_event {
    uint8_t change;       /* enum rk_member_change */
    uint8_t from;         /* state before (of self for REFUTED) */
    uint8_t to;           /* state after */
    uint64_t incarnation; /* after */
    char id[RK_MEMBER_ID_MAX + 1];
};

/* Fills t with one member, self (copied; its local fields are set from
 * now_ms, its state must be ALIVE). 0, or RK_EINVAL for an invalid entry. */
int rk_members_init(struct rk_members *t, const struct rk_member *self, uint64_t now_ms);

/* Refuse news whose incarnation is more than max_ahead_ms ahead of the
 * merge's now_ms (0, the default after init: no bound). Incarnations are
 * wall-clock ms, so this is cluster.max_clock_skew. */
void rk_members_bound_incarnations(struct rk_members *t, uint64_t max_ahead_ms);

/* Merges one received entry. A settings digest unlike ours → CONFLICT, no
 * change. News about self that outranks our entry → REFUTED (incarnation
 * becomes theirs + 1, our state kept). Otherwise the entry wins if it
 * outranks ours (see members.c). *ev says what happened. 0, RK_EINVAL for
 * an invalid entry, RK_EREFUSED for an incarnation beyond the bound (ev->id
 * and ev->incarnation name it, nothing changed), -ENOBUFS when a new
 * member does not fit, -EOVERFLOW if refuting would overflow the
 * incarnation. */
int rk_members_merge(struct rk_members *t, const struct rk_member *in, uint64_t now_ms,
                     struct rk_member_event *ev);

/* Direct contact from id: last_heard_ms = now_ms, and rtt_us recorded
 * unless 0 (a survey from it, or a late answer, has no round trip). Does not
 * change state: only the member's refutation clears a suspicion.
 * 0 or RK_ENOTFOUND. */
int rk_members_heard(struct rk_members *t, const char *id, uint64_t now_ms, uint32_t rtt_us);

/* Failure detection over every other member: silent (now - last_heard) for
 * >= suspect_after_ms → SUSPECT, for >= dead_after_ms → DEAD. lag_ms, how
 * late our own loop ran, is forgiven: every silence clock moves forward by
 * it first, so a paused observer accuses nobody for its own pause, now or
 * in later ticks. Writes up to cap events to ev (may be NULL if cap is 0);
 * *changed (may be NULL) gets the number of members that changed, which
 * may exceed cap. 0, or RK_EINVAL unless 0 < suspect_after <= dead_after. */
int rk_members_tick(struct rk_members *t, uint64_t now_ms, uint64_t suspect_after_ms,
                    uint64_t dead_after_ms, uint64_t lag_ms, struct rk_member_event *ev, size_t cap,
                    size_t *changed);

/* Our own entry. beat raises the heartbeat (once per gossip interval).
 * leave announces departure (LEAVING), left its end (LEFT); both bump our
 * incarnation so the news outranks everything said about us before.
 * RK_EINVAL unless ALIVE → LEAVING → LEFT. */
void rk_members_beat(struct rk_members *t);
int rk_members_leave(struct rk_members *t, uint64_t now_ms);
int rk_members_left(struct rk_members *t, uint64_t now_ms);

/* A graceful stop (SIGTERM): our own entry becomes DEAD at a bumped
 * incarnation, news every peer adopts at once (only the member raises its
 * incarnation, so it outranks all that was said of it). It is DEAD on the
 * wire, not a new state, so an older peer takes it too; tables that see the
 * incarnation rise with it mark the member stopped (shown "stopped"). The
 * member stays in the ring; its next start (a higher incarnation) makes it
 * alive again. RK_EINVAL unless ALIVE or LEAVING (a left node has nothing
 * to announce). */
int rk_members_stop(struct rk_members *t, uint64_t now_ms);

/* Operator removal: marks id LEFT at its current incarnation, which
 * outranks anything said of it at that incarnation, so the removal spreads
 * by gossip to every table (only the member itself can overrule it, by
 * coming back with a higher incarnation). Only a DEAD or LEFT member unless
 * force; never self. 0 (*ev, may be NULL, gets the change; NONE if it was
 * LEFT already), RK_ENOTFOUND, RK_EBUSY (alive, suspect or leaving, no
 * force), or RK_EINVAL (self). */
int rk_members_remove(struct rk_members *t, const char *id, bool force, uint64_t now_ms,
                      struct rk_member_event *ev);

/* Drops members LEFT for at least after_ms (self never). Returns how many.
 * Each is remembered (id, incarnation) so that merge drops news of it at
 * that incarnation or older: it stays gone while others still gossip its
 * departure, and comes back only when it returns with a higher one. */
size_t rk_members_reap(struct rk_members *t, uint64_t now_ms, uint64_t after_ms);

/* A member by id (borrowed until the table next changes), or NULL. */
const struct rk_member *rk_members_find(const struct rk_members *t, const char *id);

/* counts[s] = members in state s, for "3 members, 3 alive". */
void rk_members_counts(const struct rk_members *t, size_t counts[RK_MEMBER_NSTATES]);

/* Agreement check: XXH3 chained over (id, incarnation, state) of every
 * member in id order. Equal tables give equal digests on any host. */
uint64_t rk_members_digest(const struct rk_members *t);

/* Digest of the settings every member must share. name is NUL-terminated. */
uint64_t rk_members_settings_digest(const char *name, uint32_t partitions, uint32_t replicas);

/* "alive", "suspect", ... or "?" for an unknown value. */
const char *rk_member_state_name(unsigned state);

/* The state as shown to users: rk_member_state_name, except "stopped" for
 * a member DEAD by its own announcement (m->stopped). */
const char *rk_member_shown_state(const struct rk_member *m);

/* Encodes n entries (n <= RK_MEMBERS_MAX) into buf; *len gets the size.
 * 0, RK_EINVAL (bad entry or n), or -ENOBUFS if cap is too small (buf is
 * then undefined). RK_MEMBERS_WIRE_MAX always suffices. */
int rk_members_encode(const struct rk_member *e, size_t n, uint8_t *buf, size_t cap, size_t *len);

/* Decodes into out[0..cap); *n gets the count. Local fields are zeroed.
 * 0, RK_EMALFORMED (any length, string or state out of bounds, an id
 * outside RK_IDENT_CHARSET, trailing
 * bytes), RK_EUNSUPPORTED (another version), -ENOBUFS (count > cap). On
 * error out[] may be partly written and *n is 0. */
int rk_members_decode(const uint8_t *buf, size_t len, struct rk_member *out, size_t cap, size_t *n);

#endif

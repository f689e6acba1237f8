/* Gossip: membership and heartbeats over NNG surveyor/respondent, driving
 * the membership table (members.h) from one libev loop (the daemon's main
 * loop).
 *
 * Every `interval` a node surveys every member it knows (one surveyor
 * socket dialled to each gossip address, seeds included); the survey
 * carries its whole table, each answer the responder's own entry, or its
 * whole table when the two differ (gossip_wire.h). Both sides merge what
 * they receive. A survey or an answer counts as "heard" for its sender;
 * silence past suspect_after / dead_after makes a member suspect / dead
 * (rk_members_tick, which forgives our own loop's lag).
 *
 * Both sockets are raw and polled through NNG_OPT_RECVFD on the loop, so
 * no nng callback ever touches gossip state and nothing is pending inside
 * nng when the sockets close. Survey ids (raw surveyor header) are ours:
 * an answer to the current survey also gives the round-trip time.
 *
 * Threads: everything here runs on the loop's thread.
 */
#ifndef RK_GOSSIP_H
#define RK_GOSSIP_H

#include "cluster/holdings.h"
#include "cluster/members.h"

struct rk_conns;

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rk_gossip;

/* Called on the loop after the table changed (a member joined, changed
 * state or was reaped): lets the owner publish counts and status. */
typedef void rk_gossip_change_cb(struct rk_gossip *g, void *arg);

struct rk_gossip_opts {
    const char *listen;            /* respondent address, e.g. tcp://0.0.0.0:7402 */
    const struct rk_member *self;  /* id, advertised addresses, digests; state ALIVE */
    const char *cluster_name;      /* settings compared at join; their digest is */
    uint32_t partitions, replicas; /* self->settings_digest */
    const char *const *seeds;      /* gossip addresses to dial at start */
    size_t nseeds;
    const struct rk_member *known; /* members remembered from a previous run */
    size_t nknown;                 /* (merged at start; self is skipped) */
    uint64_t interval_ms, suspect_after_ms, dead_after_ms;
    uint64_t auto_remove_ms;        /* a member dead this long is removed; 0 = never */
    uint64_t max_clock_skew_ms;     /* news with an incarnation further ahead is refused */
    rk_gossip_change_cb *on_change; /* may be NULL */
    void *arg;
    struct rk_conns *conns;             /* counts and limits the respondent's connections */
    const struct rk_holdings *holdings; /* ours at start (copied), saved in data_dir */
    const char *data_dir;
    /* The cluster secret (util/auth.h): with it on, every message sent is
     * signed and every one received must be; NULL = no secret. */
    struct rk_auth *auth;
};

/* A peer refused because its cluster settings differ from ours. An entry
 * lasts only while the refusal does: it goes when the peer is accepted
 * (its settings now match), removed (rk_gossip_remove), or not refused
 * again for dead_after (it stopped, or stopped trying). */
struct rk_gossip_refusal {
    char id[RK_MEMBER_ID_MAX + 1];
    char addr[RK_MEMBER_ADDR_MAX + 1]; /* its gossip address */
    char setting[32];                  /* "cluster.partitions", ... */
    char theirs[64], ours[64];
    uint64_t at_ms;      /* wall ms of the latest refusal */
    uint64_t dialled_ms; /* latest refusal in its answer to our survey (we sought it out: a
                          * seed or remembered member); 0 = it only ever surveyed us */
    uint64_t logged_ms;  /* latest log line about it (once a minute) */
};
#define RK_GOSSIP_REFUSALS 16

/* Bind, dial the seeds and start surveying on loop. 0, or a negative code
 * with one line in err (e.g. the gossip address is in use). */
int rk_gossip_start(struct rk_gossip **out, struct ev_loop *loop, const struct rk_gossip_opts *o,
                    char *err, size_t errlen);

/* Stop the watchers, close the sockets, free g. NULL is a no-op. */
void rk_gossip_stop(struct rk_gossip *g);

/* The member table (borrowed until the loop next runs gossip). */
const struct rk_members *rk_gossip_members(const struct rk_gossip *g);

/* Most members this node has seen in its table at once since start: the
 * measure of "the cluster is still forming" for readiness. */
size_t rk_gossip_seen(const struct rk_gossip *g);

/* Traffic since start (loop thread): payload bytes of gossip messages
 * sent and received, surveys sent, answers received. */
struct rk_gossip_stats {
    uint64_t bytes_out, bytes_in, surveys, answers;
    uint64_t incarnations_refused; /* entries too far ahead of our clock */
};
void rk_gossip_stats(const struct rk_gossip *g, struct rk_gossip_stats *out);

/* Recent refusals (most recent first); returns how many, <= RK_GOSSIP_REFUSALS. */
size_t rk_gossip_refusals(const struct rk_gossip *g, const struct rk_gossip_refusal **out);

/* True when this node is an island: a peer it sought out (seed or
 * remembered member) refused it within dead_after, and no other member
 * of its table is up (alive or leaving) -- every peer it reached refused
 * it, so it must not act as a cluster of its own. why gets one line
 * naming the peer and the setting that differs. A node without seeds (a
 * cluster of one) or one that is merely surveyed by a stranger is never
 * an island. */
bool rk_gossip_islanded(const struct rk_gossip *g, char *why, size_t len);

/* Dial one more gossip address (kvctl join). 0, or RK_EINVAL with a line
 * in err for an address nng cannot dial. */
int rk_gossip_join(struct rk_gossip *g, const char *addr, char *err, size_t errlen);

/* Announce our departure: LEAVING now (we leave the placement: the
 * members that take our partitions over receive them from us), LEFT once
 * we hold no partition any more (each copy is dropped when its new owners
 * hold it) and at least two intervals later, then, one
 * interval after that (the news has gone out), done(arg) is called. 0, or
 * RK_EINVAL if we are leaving already. */
int rk_gossip_leave(struct rk_gossip *g, void (*done)(void *arg), void *arg);

/* Announce a graceful stop (rk_members_stop): our entry goes DEAD at once
 * and a survey carrying it goes to every connected peer now, not at the
 * next interval. done(arg) is called once, on the loop, when every member
 * we still consider up has answered that survey (an answer is sent after
 * the peer merged it) or after wait_ms, whichever comes first: a node that
 * reaches nobody still stops promptly. 0, or RK_EINVAL (left already, or
 * announced already) and done is not called. */
int rk_gossip_stopping(struct rk_gossip *g, uint64_t wait_ms, void (*done)(void *arg), void *arg);

/* Operator removal of another member (rk_members_remove rules); the
 * verdict goes out with the next survey. 0, RK_ENOTFOUND, RK_EBUSY
 * (not dead or left, no force), RK_EINVAL (self). */
int rk_gossip_remove(struct rk_gossip *g, const char *id, bool force);

/* Holdings (holdings.h, peerhold.h): a member's as its last message said
 * (ours for our own id), NULL while unknown. */
const struct rk_holdings *rk_gossip_holdings(const struct rk_gossip *g, const char *id);

/* Ours, to change; then rk_gossip_holdings_commit saves them (a new
 * version), sends them with the next messages and calls on_change.
 * 0 or -errno from the save (the change stays in memory and is sent:
 * the caller decides whether to go on). */
struct rk_holdings *rk_gossip_own_holdings(struct rk_gossip *g);
int rk_gossip_holdings_commit(struct rk_gossip *g);

/* Do all members up agree with our placement (peerhold.h)? *since_ms
 * gets when that became true (wall ms); who, while false, one member
 * that does not agree yet. */
bool rk_gossip_agreed(const struct rk_gossip *g, uint64_t *since_ms, char *who, size_t len);

/* Our placement digest (rk_place_digest of our table). */
uint64_t rk_gossip_place(const struct rk_gossip *g);

#endif

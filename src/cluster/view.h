/* The cluster view: what a worker needs to place and route a request — the
 * partition ring built from the member list, and each member's peer
 * address and health. Built by the main loop after every membership change
 * and published to the workers; a view never changes once published, and
 * stays alive while any worker holds it (reference count), so a request in
 * flight keeps the placement it started with.
 */
#ifndef RK_VIEW_H
#define RK_VIEW_H

#include "cluster/holdings.h"
#include "cluster/members.h"
#include "cluster/ring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rk_view_member {
    char id[RK_MEMBER_ID_MAX + 1];
    char peer_addr[RK_MEMBER_ADDR_MAX + 1];
    uint8_t state; /* enum rk_member_state */
    bool stopped;  /* DEAD by its own stop announcement (members.h) */
};

/* One partition's serving and pending members (placement.h), as indices
 * into the view's m[]. */
struct rk_view_part {
    uint8_t nserve, npend;
    uint16_t serve[RK_RING_REPLICAS_MAX];
    uint16_t pend[RK_RING_REPLICAS_MAX];
    int8_t partner[RK_RING_REPLICAS_MAX]; /* pend[k]'s displaced owner: an index into serve */
};

struct rk_view {
    atomic_uint refs;
    struct rk_ring *ring; /* placement: members neither LEFT nor LEAVING */
    size_t n;             /* entries of m, sorted by id */
    struct rk_view_member *m;
    size_t self;                        /* index of this node in m */
    uint64_t epoch;                     /* increases with every published view */
    struct rk_view_part *part;          /* one per partition */
    uint8_t *held;                      /* this node's holdings bitmap */
    bool heard_all;                     /* the holdings of every member up are known */
    bool agreed;                        /* every member up has our member set (gossip.h) */
    uint64_t agreed_since_ms;           /* agreed: since when (wall ms) */
    char unheard[RK_MEMBER_ID_MAX + 1]; /* !heard_all: a member whose holdings are unknown */
};

/* What the view is built from besides the member table: each member's
 * holdings (NULL: not known yet, so it holds nothing here) and gossip's
 * agreement verdict. */
struct rk_view_in {
    const struct rk_holdings *(*holdings)(void *arg, const char *id);
    void *arg;
    bool agreed;
    uint64_t agreed_since_ms;
};

/* Where views are published; owned by the main loop, read by workers. */
struct rk_view_slot {
    pthread_mutex_t lock;
    struct rk_view *cur;
    uint64_t epoch;
};

void rk_view_slot_init(struct rk_view_slot *s);
void rk_view_slot_fini(struct rk_view_slot *s); /* releases the current view */

/* Build a view of table t. NULL when out of memory. This node's own
 * entry is never DEAD in it (ALIVE instead): a node that announced its stop still serves
 * its own replicas for the requests in flight until it exits; the
 * announcement is for the others. */
/* in NULL: every member holds every partition (tests, and tools that
 * only place keys). */
struct rk_view *rk_view_build(const struct rk_members *t, uint32_t partitions, uint32_t replicas,
                              const struct rk_view_in *in);

/* Does this node hold partition p? */
static inline bool rk_view_holds(const struct rk_view *v, uint32_t p)
{
    return v->held[p / 8] >> (p % 8) & 1u;
}

/* Is this node one of p's preference list (an owner, holding it or not)? */
bool rk_view_owns(const struct rk_view *v, uint32_t p);

/* Is this node in Serve(p)? */
bool rk_view_serves(const struct rk_view *v, uint32_t p);

/* Publish v (the slot takes the caller's reference). Any thread. */
void rk_view_publish(struct rk_view_slot *s, struct rk_view *v);

/* The current view with a reference the caller releases; NULL before the
 * first publish. Any thread. */
struct rk_view *rk_view_acquire(struct rk_view_slot *s);
void rk_view_release(struct rk_view *v);

/* A member by id, or NULL. */
const struct rk_view_member *rk_view_find(const struct rk_view *v, const char *id);

/* Healthy enough to be sent requests: alive or leaving (a suspect or dead
 * member is skipped in favour of a fallback). */
bool rk_view_up(const struct rk_view_member *m);

/* Members of partition's serving list that are up (rk_view_up): the
 * replicas whose acks count toward W (a fallback's never does, coord.c),
 * and *n the list's length. */
size_t rk_view_up_replicas(const struct rk_view *v, uint32_t partition, size_t *n);

/* Partitions of v where fewer than need serving replicas are up (none
 * can meet a quorum of need right now); *first is the first of them.
 * O(partitions x replicas). */
uint32_t rk_view_short_partitions(const struct rk_view *v, uint32_t need, uint32_t *first);

#endif

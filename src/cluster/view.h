/* The cluster view: what a worker needs to place and route a request — the
 * partition ring built from the member list, and each member's peer
 * address and health. Built by the main loop after every membership change
 * and published to the workers; a view never changes once published, and
 * stays alive while any worker holds it (reference count), so a request in
 * flight keeps the placement it started with.
 */
#ifndef RK_VIEW_H
#define RK_VIEW_H

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

struct rk_view {
    atomic_uint refs;
    struct rk_ring *ring; /* members not LEFT */
    size_t n;             /* entries of m, sorted by id */
    struct rk_view_member *m;
    size_t self;    /* index of this node in m */
    uint64_t epoch; /* increases with every published view */
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
struct rk_view *rk_view_build(const struct rk_members *t, uint32_t partitions, uint32_t replicas);

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

/* Members of partition's preference list that are up (rk_view_up): the
 * replicas a write's coordinator asks and whose acks count toward W (a
 * fallback's never does, coord.c), and *n the list's length. */
size_t rk_view_up_replicas(const struct rk_view *v, uint32_t partition, size_t *n);

/* Partitions of v where fewer than need preference replicas are up (none
 * can meet a quorum of need right now); *first is the first of them.
 * O(partitions x replicas). */
uint32_t rk_view_short_partitions(const struct rk_view *v, uint32_t need, uint32_t *first);

#endif

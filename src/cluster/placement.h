/* Placement with pending owners (docs/TRANSFERS.md §1): which members
 * serve a partition and which are still receiving it. Pure functions of
 * the preference list, the walk of the ring and who holds what, so every
 * node that knows the same members and holdings computes the same lists.
 *
 *   Pref(p)    the cluster.replicas members that should hold p (ring.h)
 *   Serve(p)   the first `replicas` of: the members of Pref(p) holding p,
 *              in Pref order, then the other holders of p in walk order
 *   Pending(p) the members of Pref(p) not holding p
 *   partner    a pending member's displaced owner: a member of Serve(p)
 *              outside Pref(p), the last one not yet taken (the one the
 *              pending member will replace); -1 when there is none (a
 *              removal, or a cluster that had fewer holders)
 *
 * Reads count answers from Serve(p) only; writes go to Serve ∪ Pending
 * and count Serve's acks, a displaced owner's only together with its
 * pending partner's (the pairing rule: docs/TRANSFERS.md §3).
 */
#ifndef RK_PLACEMENT_H
#define RK_PLACEMENT_H

#include "cluster/ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rk_place {
    uint8_t nserve, npend;
    const char *serve[RK_RING_REPLICAS_MAX];
    const char *pend[RK_RING_REPLICAS_MAX];
    int8_t partner[RK_RING_REPLICAS_MAX]; /* for pend[k]: index into serve[], or -1 */
};

/* Does member id hold the partition? */
typedef bool rk_place_holds_fn(void *arg, const char *id);

/* The lists of one partition: pref[0..npref) its preference list, walk
 * the whole walk of the ring (every candidate holder once, in walk order;
 * may include members outside the placement ring, e.g. leaving ones), or
 * NULL when nwalk is 0. ids point into pref and walk. */
void rk_place_compute(const char *const *pref, size_t npref, const char *const *walk, size_t nwalk,
                      size_t replicas, rk_place_holds_fn *holds, void *arg, struct rk_place *out);

#endif

/* What a membership change would move: the difference between the
 * preference lists of two rings (ring.h) over the same partitions and
 * replicas. Pure: no I/O, clocks or threads; kvctl plan builds the rings
 * (current members, and the members after the join, leave or remove) and
 * weighs each move with the per-partition sizes the members report.
 * Unit-tested in tests/unit/test_plan.c.
 *
 * A move is (partition, new owner): a member in the partition's preference
 * list after the change that is not in it before. It would stream the
 * partition from one of the members holding it before (the "from" list:
 * the preference list before, minus members that are gone after). Members
 * that drop out of a list are not moves: they keep their copy until every
 * new owner is ready (docs/TRANSFERS.md), then drop it without streaming.
 */
#ifndef RK_PLAN_H
#define RK_PLAN_H

#include "cluster/ring.h"

#include <stddef.h>
#include <stdint.h>

struct rk_plan_move {
    uint32_t partition;
    const char *to;                         /* borrowed from the after ring */
    const char *from[RK_RING_REPLICAS_MAX]; /* borrowed from the before ring */
    size_t nfrom;                           /* 0: no current holder (nothing to stream) */
};

/* Called once per move, in partition order, then new-owner order. */
typedef void (*rk_plan_move_fn)(void *arg, const struct rk_plan_move *m);

struct rk_plan_totals {
    uint32_t partitions;         /* partitions of the rings */
    uint32_t partitions_changed; /* partitions with at least one move */
    uint64_t moves;              /* (partition, new owner) pairs */
    uint64_t replicas_after;     /* sum of the preference list lengths after */
};

/* Walks every partition of before and after (same partitions and replicas)
 * and reports each move to fn (may be NULL) and the totals to *t (may be
 * NULL). "from" is the preference list before, without the member named
 * gone (NULL: none): a removed member is dead and cannot stream, while a
 * leaving one is the source of its own partitions and stays in it.
 * 0, or RK_EINVAL if the rings' partitions or replicas differ. */
int rk_plan_diff(const struct rk_ring *before, const struct rk_ring *after, const char *gone,
                 rk_plan_move_fn fn, void *arg, struct rk_plan_totals *t);

/* moves / replicas_after: the share of all replicas that would be
 * streamed (0 when there are none). For "M+1 joins M": ideal 1/(M+1). */
double rk_plan_moved_share(const struct rk_plan_totals *t);

#endif

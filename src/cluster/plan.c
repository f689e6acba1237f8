/* The ring difference behind kvctl plan (design in plan.h). */
#include "plan.h"

#include "util/err.h"

#include <stdbool.h>
#include <string.h>

static bool listed(const char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return true;
    return false;
}

/* m->from = pre[0..npre) without gone. */
static void sources(struct rk_plan_move *m, const char *const *pre, size_t npre, const char *gone)
{
    m->nfrom = 0;
    for (size_t i = 0; i < npre; i++)
        if (!gone || strcmp(pre[i], gone) != 0)
            m->from[m->nfrom++] = pre[i];
}

int rk_plan_diff(const struct rk_ring *before, const struct rk_ring *after, const char *gone,
                 rk_plan_move_fn fn, void *arg, struct rk_plan_totals *t)
{
    uint32_t parts = rk_ring_partitions(before);
    if (parts != rk_ring_partitions(after) || rk_ring_replicas(before) != rk_ring_replicas(after))
        return RK_EINVAL;
    struct rk_plan_totals tot = {.partitions = parts};
    for (uint32_t p = 0; p < parts; p++) {
        const char *pre[RK_RING_REPLICAS_MAX], *post[RK_RING_REPLICAS_MAX];
        size_t npre = rk_ring_preference(before, p, pre, RK_RING_REPLICAS_MAX);
        size_t npost = rk_ring_preference(after, p, post, RK_RING_REPLICAS_MAX);
        tot.replicas_after += npost;
        bool changed = false;
        for (size_t j = 0; j < npost; j++) {
            if (listed(pre, npre, post[j]))
                continue;
            struct rk_plan_move m = {.partition = p, .to = post[j]};
            sources(&m, pre, npre, gone);
            changed = true;
            tot.moves++;
            if (fn)
                fn(arg, &m);
        }
        tot.partitions_changed += changed;
    }
    if (t)
        *t = tot;
    return 0;
}

double rk_plan_moved_share(const struct rk_plan_totals *t)
{
    return t->replicas_after ? (double)t->moves / (double)t->replicas_after : 0.0;
}

/* Serve and pending lists (placement.h). */
#include "cluster/placement.h"

#include <string.h>

static bool listed(const char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return true;
    return false;
}

void rk_place_compute(const char *const *pref, size_t npref, const char *const *walk, size_t nwalk,
                      size_t replicas, rk_place_holds_fn *holds, void *arg, struct rk_place *out)
{
    memset(out, 0, sizeof(*out));
    if (replicas > RK_RING_REPLICAS_MAX)
        replicas = RK_RING_REPLICAS_MAX;
    npref = npref < replicas ? npref : replicas;
    for (size_t i = 0; i < npref; i++) {
        if (holds(arg, pref[i]))
            out->serve[out->nserve++] = pref[i];
        else
            out->pend[out->npend++] = pref[i];
    }
    size_t in_pref = out->nserve;
    for (size_t j = 0; j < nwalk && out->nserve < replicas; j++)
        if (!listed(pref, npref, walk[j]) && holds(arg, walk[j]))
            out->serve[out->nserve++] = walk[j];
    /* Displaced owners: the holders outside Pref, last first, one per
     * pending member in Pref order. */
    size_t next = out->nserve;
    for (size_t k = 0; k < out->npend; k++)
        out->partner[k] = next > in_pref ? (int8_t)--next : -1;
}

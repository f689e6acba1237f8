/* Replicas moved by adding member M+1 to M members, as a ratio to the ideal
 * 1/(M+1) of the data, for M = 3, 5, 8 (and any M given as arguments).
 * Ring math only (src/cluster/plan.h): no node, no data. Prints one line
 * per M: partitions, replicas, moved share, ideal, ratio. */
#include "cluster/plan.h"

#include <stdio.h>
#include <stdlib.h>

static int build(struct rk_ring **r, size_t n, uint32_t parts, uint32_t nrep)
{
    static char buf[RK_RING_MEMBERS_MAX][32];
    static const char *ids[RK_RING_MEMBERS_MAX];
    for (size_t i = 0; i < n; i++) {
        snprintf(buf[i], sizeof buf[i], "node-%zu", i + 1);
        ids[i] = buf[i];
    }
    return rk_ring_build(r, ids, n, parts, nrep);
}

static int one(size_t m, uint32_t parts, uint32_t nrep)
{
    struct rk_ring *a = NULL, *b = NULL;
    struct rk_plan_totals t;
    if (build(&a, m, parts, nrep) || build(&b, m + 1, parts, nrep) ||
        rk_plan_diff(a, b, NULL, NULL, NULL, &t)) {
        fprintf(stderr, "bench_plan: cannot build rings for M = %zu\n", m);
        return 1;
    }
    double share = rk_plan_moved_share(&t), ideal = 1.0 / (double)(m + 1);
    printf("M=%-3zu partitions=%u replicas=%u moved=%llu/%llu share=%.4f ideal=%.4f ratio=%.3f\n",
           m, parts, nrep, (unsigned long long)t.moves, (unsigned long long)t.replicas_after, share,
           ideal, share / ideal);
    rk_ring_free(a);
    rk_ring_free(b);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t def[] = {3, 5, 8};
    const uint32_t parts[] = {256, 4096};
    int rc = 0;
    for (size_t pi = 0; pi < 2; pi++) {
        if (argc > 1) {
            for (int i = 1; i < argc; i++)
                rc |= one((size_t)strtoul(argv[i], NULL, 10), parts[pi], 3);
        } else {
            for (size_t i = 0; i < 3; i++)
                rc |= one(def[i], parts[pi], 3);
        }
    }
    return rc;
}

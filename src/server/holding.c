/* Holdings on the main loop (holding.h). Only this loop changes the
 * node's holdings (through gossip, which sends them); workers report
 * finished transfers and drop copies when asked. */
#include "server/holding.h"
#include "cluster/peerhold.h"
#include "cluster/view.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/events.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

static struct rk_worker *worker_of(struct rk_shared *sh, uint32_t p)
{
    return sh->workers[p % sh->nworkers];
}

int rk_holding_load(struct rk_shared *sh, struct rk_holdings *h, char *err, size_t errlen)
{
    int rc = rk_holdings_load(h, sh->cfg.data_dir);
    if (rc == RK_ECORRUPT) {
        snprintf(err, errlen,
                 "%s/%s is damaged (checksum or partition count); move the data dir aside to "
                 "make this node receive its partitions again from the cluster (removing the "
                 "file alone would make it hold whatever records it has)",
                 sh->cfg.data_dir, RK_HOLDINGS_FILE);
        return -1;
    }
    if (rc < 0 && rc != RK_ENOTFOUND) {
        snprintf(err, errlen, "cannot read %s/%s: %s", sh->cfg.data_dir, RK_HOLDINGS_FILE,
                 rk_strerror(rc));
        return -1;
    }
    uint32_t legacy = 0;
    for (uint32_t p = 0; rc == RK_ENOTFOUND && p < sh->partitions; p++) {
        uint64_t keys, bytes;
        rk_worker_partition_size(worker_of(sh, p), (uint16_t)p, &keys, &bytes);
        if (keys) {
            rk_holdings_set(h, p, true);
            legacy++;
        }
    }
    if (legacy) {
        rk_holdings_bump(h, rk_clock_wall_ms());
        rk_info("transfers", "no %s file: holding the %u partitions with records here",
                RK_HOLDINGS_FILE, legacy);
        if ((rc = rk_holdings_save(h, sh->cfg.data_dir)) < 0) {
            snprintf(err, errlen, "cannot write %s/%s: %s", sh->cfg.data_dir, RK_HOLDINGS_FILE,
                     rk_strerror(rc));
            return -1;
        }
    }
    uint64_t dropped = 0;
    for (uint32_t p = 0; p < sh->partitions; p++) {
        int64_t n = rk_holdings_has(h, p) ? 0 : rk_worker_drop_now(worker_of(sh, p), p);
        dropped += n > 0 ? (uint64_t)n : 0;
    }
    if (dropped)
        rk_info("transfers", "%llu records of partitions this node does not hold left out",
                (unsigned long long)dropped);
    return 0;
}

/* The partitions one look handled, for one event: a burst of transfers
 * can finish (or hand over) dozens at once, and one line per partition
 * would push everything else out of the ring (util/events.h). */
struct part_list {
    size_t n;      /* partitions added */
    size_t shown;  /* of them, numbers in text */
    char text[80]; /* "12, 17, 40" */
};

static void list_add(struct part_list *l, uint32_t p)
{
    size_t len = strlen(l->text);
    l->n++;
    if (len + 12 >= sizeof(l->text)) /* ", 65535" and the NUL fit, with room to spare */
        return;
    snprintf(l->text + len, sizeof(l->text) - len, "%s%u", len ? ", " : "", p);
    l->shown++;
}

/* "partition 12 received" or "3 partitions received: 12, 17, 40" (", ..."
 * when not every number fit). */
static void list_event(const struct part_list *l, const char *what)
{
    if (l->n == 1)
        rk_event(RK_EVENT_TRANSFER, "partition %s %s", l->text, what);
    else if (l->n > 1)
        rk_event(RK_EVENT_TRANSFER, "%zu partitions %s: %s%s", l->n, what, l->text,
                 l->shown < l->n ? ", ..." : "");
}

/* Completed transfers: held now, if the partition is still ours to take. */
static bool take_ready(struct rk_shared *sh, const struct rk_view *v, struct rk_holdings *own)
{
    uint32_t parts[256];
    struct part_list got = {0};
    bool any = false;
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        size_t n;
        while ((n = rk_worker_take_ready(sh->workers[i], parts, 256)) > 0) {
            for (size_t k = 0; k < n; k++) {
                if (rk_holdings_has(own, parts[k]) || !rk_view_owns(v, parts[k]))
                    continue;
                rk_holdings_set(own, parts[k], true);
                rk_info("transfers", "partition %u received: this node holds it now", parts[k]);
                list_add(&got, parts[k]);
                any = true;
            }
        }
    }
    list_event(&got, "received");
    return any;
}

/* The genesis (holdings.h): true when our holdings changed. */
static bool genesis(struct rk_shared *sh, struct rk_gossip *g, const struct rk_view *v,
                    struct rk_holdings *own)
{
    if (own->genesis_digest)
        return false;
    const struct rk_members *t = rk_gossip_members(g);
    size_t members = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct rk_member *m = &t->m[i];
        if (m->state == RK_MEMBER_LEFT)
            continue;
        if (i != t->self && m->state != RK_MEMBER_ALIVE)
            return false;
        members++;
    }
    if (members < sh->cfg.expect_nodes || !rk_gossip_agreed(g, NULL, NULL, 0) || !v->heard_all)
        return false;
    uint64_t d = rk_gossip_place(g);
    for (size_t i = 0; i < t->n; i++) {
        const struct rk_holdings *h = i == t->self || t->m[i].state == RK_MEMBER_LEFT
                                          ? NULL
                                          : rk_gossip_holdings(g, t->m[i].id);
        if (!h || !h->genesis_digest || (h->genesis_digest == d && h->genesis_ms >= sh->start_ms))
            continue;
        /* A cluster that formed before this process started: this node
         * joins it as a pending owner of its partitions. */
        own->genesis_digest = h->genesis_digest;
        own->genesis_ms = h->genesis_ms;
        rk_info("transfers",
                "joined a cluster formed before this start (seen at %s): "
                "receiving this node's partitions",
                t->m[i].id);
        rk_event(RK_EVENT_NODE, "joined a cluster formed before (seen at %s): receiving",
                 t->m[i].id);
        return true;
    }
    uint32_t n = 0;
    for (uint32_t p = 0; p < sh->partitions; p++)
        if (rk_view_owns(v, p) && !rk_holdings_has(own, p)) {
            rk_holdings_set(own, p, true);
            n++;
        }
    own->genesis_digest = d;
    own->genesis_ms = rk_clock_wall_ms();
    rk_info("transfers", "cluster formed with %zu members: this node holds its %u partitions",
            members, n);
    rk_event(RK_EVENT_NODE, "cluster formed with %zu members: this node holds %u partitions",
             members, n);
    return true;
}

/* Copies no longer ours: held, not owned, and every owner holds it now
 * (no pending owner left: placement.h); or not held and not owned, with
 * records left over (a transfer cancelled by a newer ring). The bit goes
 * first: no coordinator counts a node whose copy is going. */
static bool drops(struct rk_shared *sh, const struct rk_view *v, struct rk_holdings *own)
{
    struct part_list gone = {0};
    bool any = false;
    for (uint32_t p = 0; p < sh->partitions; p++) {
        if (rk_view_owns(v, p))
            continue;
        if (rk_holdings_has(own, p)) {
            if (v->part[p].npend || v->part[p].nserve == 0 || !v->agreed)
                continue;
            rk_holdings_set(own, p, false);
            list_add(&gone, p);
            any = true;
        } else {
            uint64_t keys, bytes;
            rk_worker_partition_size(worker_of(sh, p), (uint16_t)p, &keys, &bytes);
            if (!keys)
                continue;
        }
        rk_worker_drop_request(worker_of(sh, p), p);
    }
    list_event(&gone, "handed over (this node's copy dropped)");
    return any;
}

void rk_holding_review(struct rk_shared *sh, struct rk_gossip *g)
{
    struct rk_view *v = rk_view_acquire(&sh->views);
    if (!v)
        return;
    struct rk_holdings *own = rk_gossip_own_holdings(g);
    bool changed = take_ready(sh, v, own);
    changed |= genesis(sh, g, v, own);
    changed |= drops(sh, v, own);
    rk_view_release(v);
    if (!changed)
        return;
    int rc = rk_gossip_holdings_commit(g);
    if (rc < 0)
        rk_error("transfers", "cannot save %s/%s: %s", sh->cfg.data_dir, RK_HOLDINGS_FILE,
                 rk_strerror(rc));
}

/* kvctl plan: asks the node at -a for the member table and the ring shape,
 * every member for the keys and bytes it stores per partition (PARTS), then
 * computes the preference lists before and after the change with the same
 * pure ring the nodes use (cluster/plan.h) and prints what would move.
 *
 * The joining node's id: --id NODE_ID if given, else the node listening at
 * ADDR is asked (STATUS) for its id. Asking is the default because the ring
 * depends on the exact id and the running node is the one authority on it;
 * --id plans a node that is not started yet.
 *
 * Each partition's size is the largest report among the members (replicas
 * of one partition hold the same keys once anti-entropy has run; a replica
 * that lags reports fewer, and the largest is the one a transfer would
 * have to stream). */
#include "kvctl/plan.h"
#include "kvctl/nodes.h"

#include "client/ajson.h"
#include "client/client.h"
#include "cluster/plan.h"
#include "util/err.h"
#include "util/jbuf.h"

#include <stdlib.h>
#include <string.h>

/* transfers.max_bytes_per_second's default, for a node that does not
 * report the key (TRANSFERS). */
#define PLAN_RATE_DEFAULT (64ull << 20)

enum change { JOIN, LEAVE, REMOVE };

struct psize {
    uint64_t keys, bytes;
};

struct target {
    const char *id;
    uint32_t partitions;
    uint64_t keys, bytes;
};

struct plan {
    enum change kind;
    char node[RK_RING_ID_MAX + 1];
    uint32_t partitions, replicas;
    struct rk_kvctl_member *m;
    size_t nm;
    struct psize *size; /* partitions */
    struct target tgt[RK_RING_MEMBERS_MAX];
    size_t ntgt;
    uint64_t keys, bytes;
    uint64_t rate;         /* bytes per second of the estimate; 0: unlimited */
    const char *rate_from; /* "node": the node's transfers.max_bytes_per_second */
    struct rk_jbuf moves;  /* JSON array body */
};

static const char *const change_name[] = {"join", "leave", "remove"};

/* The member table of the node at -a (nodes.h). */
static int load_members(const struct rk_kvctl_opts *o, struct plan *pl)
{
    return rk_kvctl_members(o, "plan", &pl->m, &pl->nm);
}

static int ask(const struct rk_kvctl_opts *o, const char *who, const char *addr, enum rk_op op,
               struct rk_ajson **doc)
{
    return rk_kvctl_ask(o, "plan", who, addr, op, doc);
}

static int load_shape(const struct rk_kvctl_opts *o, struct plan *pl)
{
    struct rk_ajson *doc = NULL;
    int code = ask(o, "the node", o->addr, RK_OP_RING, &doc);
    if (code != RK_EXIT_OK)
        return code;
    uint64_t p = 0, r = 0;
    const struct rk_ajson_val *root = rk_ajson_root(doc);
    if (rk_ajson_u64(rk_ajson_member(root, "partitions"), &p) != 0 ||
        rk_ajson_u64(rk_ajson_member(root, "replicas"), &r) != 0 || p == 0 ||
        p > RK_RING_PARTITIONS_MAX || r == 0 || r > RK_RING_REPLICAS_MAX) {
        rk_kvctl_err("plan: the node's RING reply has no valid partitions/replicas");
        rk_ajson_free(doc);
        return RK_EXIT_CLUSTER;
    }
    pl->partitions = (uint32_t)p;
    pl->replicas = (uint32_t)r;
    rk_ajson_free(doc);
    return RK_EXIT_OK;
}

static const struct rk_kvctl_member *find(const struct plan *pl, const char *id)
{
    for (size_t i = 0; i < pl->nm; i++)
        if (strcmp(pl->m[i].id, id) == 0)
            return &pl->m[i];
    return NULL;
}

/* Folds one member's PARTS rows [partition, keys, bytes, replica] into the
 * sizes (the largest report wins). */
static int add_parts(struct plan *pl, const struct rk_kvctl_member *m, const struct rk_ajson *doc)
{
    const struct rk_ajson_val *rows = rk_ajson_path(rk_ajson_root(doc), "parts");
    for (const struct rk_ajson_val *r = rk_ajson_first(rows); r; r = rk_ajson_next(r)) {
        uint64_t p, k, b;
        if (rk_ajson_u64(rk_ajson_index(r, 0), &p) != 0 ||
            rk_ajson_u64(rk_ajson_index(r, 1), &k) != 0 ||
            rk_ajson_u64(rk_ajson_index(r, 2), &b) != 0 || p >= pl->partitions) {
            rk_kvctl_err("plan: %s sent a malformed PARTS row", m->id);
            return RK_EXIT_CLUSTER;
        }
        if (k > pl->size[p].keys)
            pl->size[p].keys = k;
        if (b > pl->size[p].bytes)
            pl->size[p].bytes = b;
    }
    return RK_EXIT_OK;
}

/* Every member but a removed one (it is dead: it cannot stream). */
static int load_sizes(const struct rk_kvctl_opts *o, struct plan *pl)
{
    pl->size = calloc(pl->partitions, sizeof(*pl->size));
    if (!pl->size)
        rk_kvctl_oom();
    for (size_t i = 0; i < pl->nm; i++) {
        const struct rk_kvctl_member *m = &pl->m[i];
        if (pl->kind == REMOVE && strcmp(m->id, pl->node) == 0)
            continue;
        struct rk_ajson *doc = NULL;
        int code = ask(o, m->id, m->client, RK_OP_PARTS, &doc);
        if (code == RK_EXIT_OK)
            code = add_parts(pl, m, doc);
        rk_ajson_free(doc);
        if (code != RK_EXIT_OK)
            return code;
    }
    return RK_EXIT_OK;
}

/* The ring of the current members, plus add, minus drop (either NULL). */
static int ring_of(const struct plan *pl, const char *add, const char *drop, struct rk_ring **r)
{
    const char **ids = calloc(pl->nm + 1, sizeof(*ids));
    if (!ids)
        rk_kvctl_oom();
    size_t n = 0;
    for (size_t i = 0; i < pl->nm; i++)
        if (!drop || strcmp(pl->m[i].id, drop) != 0)
            ids[n++] = pl->m[i].id;
    if (add)
        ids[n++] = add;
    int rv = rk_ring_build(r, ids, n, pl->partitions, pl->replicas);
    free(ids);
    if (rv != 0)
        rk_kvctl_err("plan: cannot build the ring (%s)", rk_strerror(rv));
    return rv == 0 ? RK_EXIT_OK : RK_EXIT_USAGE;
}

static struct target *target_of(struct plan *pl, const char *id)
{
    for (size_t i = 0; i < pl->ntgt; i++)
        if (strcmp(pl->tgt[i].id, id) == 0)
            return &pl->tgt[i];
    pl->tgt[pl->ntgt] = (struct target){.id = id};
    return &pl->tgt[pl->ntgt++];
}

static void on_move(void *arg, const struct rk_plan_move *mv)
{
    struct plan *pl = arg;
    const struct psize *s = &pl->size[mv->partition];
    struct target *t = target_of(pl, mv->to);
    t->partitions++;
    t->keys += s->keys;
    t->bytes += s->bytes;
    pl->keys += s->keys;
    pl->bytes += s->bytes;
    rk_jadd(&pl->moves, "%s{\"partition\":%u,\"to\":", pl->moves.len ? "," : "", mv->partition);
    rk_jstr(&pl->moves, mv->to);
    rk_jadd(&pl->moves, ",\"from\":[");
    for (size_t i = 0; i < mv->nfrom; i++) {
        rk_jadd(&pl->moves, "%s", i ? "," : "");
        rk_jstr(&pl->moves, mv->from[i]);
    }
    rk_jadd(&pl->moves, "],\"keys\":%llu,\"bytes\":%llu}", (unsigned long long)s->keys,
            (unsigned long long)s->bytes);
}

/* The node's transfers.max_bytes_per_second (its TRANSFERS reply), else
 * the default. */
static void load_rate(const struct rk_kvctl_opts *o, struct plan *pl)
{
    struct rk_ajson *doc = NULL;
    uint64_t r;
    pl->rate = PLAN_RATE_DEFAULT, pl->rate_from = "default";
    if (rk_kvctl_ask(o, "plan", "the node", o->addr, RK_OP_TRANSFERS, &doc) == RK_EXIT_OK &&
        rk_ajson_u64(rk_ajson_member(rk_ajson_root(doc), "max_bytes_per_second"), &r) == 0)
        pl->rate = r, pl->rate_from = "node";
    rk_ajson_free(doc);
}

/* Seconds at the plan's rate; 0 when unlimited (bounded by disk and network). */
static double eta_s(const struct plan *pl, uint64_t bytes)
{
    return pl->rate ? (double)bytes / (double)pl->rate : 0.0;
}

static void print_json(const struct plan *pl, const struct rk_plan_totals *t, size_t after)
{
    struct rk_jbuf b = {0};
    rk_jadd(&b, "{\"change\":\"%s\",\"node\":", change_name[pl->kind]);
    rk_jstr(&b, pl->node);
    rk_jadd(&b,
            ",\"members_before\":%zu,\"members_after\":%zu,\"partitions\":%u,\"replicas\":%u,"
            "\"partitions_changed\":%u,\"moves\":%llu,\"replicas_total\":%llu,\"keys\":%llu,"
            "\"bytes\":%llu,\"rate_bytes_per_second\":%llu,\"rate_source\":\"%s\","
            "\"eta_s\":%.3f,\"targets\":[",
            pl->nm, after, pl->partitions, pl->replicas, t->partitions_changed,
            (unsigned long long)t->moves, (unsigned long long)t->replicas_after,
            (unsigned long long)pl->keys, (unsigned long long)pl->bytes,
            (unsigned long long)pl->rate, pl->rate_from, eta_s(pl, pl->bytes));
    for (size_t i = 0; i < pl->ntgt; i++) {
        rk_jadd(&b, "%s{\"node\":", i ? "," : "");
        rk_jstr(&b, pl->tgt[i].id);
        rk_jadd(&b, ",\"partitions\":%u,\"keys\":%llu,\"bytes\":%llu}", pl->tgt[i].partitions,
                (unsigned long long)pl->tgt[i].keys, (unsigned long long)pl->tgt[i].bytes);
    }
    rk_jadd(&b, "],\"move_list\":[%s]}\n", pl->moves.p ? pl->moves.p : "");
    if (b.oom)
        rk_kvctl_oom();
    fputs(b.p, stdout);
    free(b.p);
}

static void print_text(const struct plan *pl, const struct rk_plan_totals *t, size_t after)
{
    printf("plan: %s %s (%zu -> %zu members, %u partitions, %u replicas)\n", change_name[pl->kind],
           pl->node, pl->nm, after, pl->partitions, pl->replicas);
    printf("moves: %llu of %llu replicas (%.1f%%) in %u partitions: %llu keys, %.1f MiB\n",
           (unsigned long long)t->moves, (unsigned long long)t->replicas_after,
           100.0 * rk_plan_moved_share(t), t->partitions_changed, (unsigned long long)pl->keys,
           (double)pl->bytes / (1 << 20));
    if (pl->rate)
        printf("estimated time: %.1f s at %.1f MiB/s (transfers.max_bytes_per_second, %s)\n",
               eta_s(pl, pl->bytes), (double)pl->rate / (1 << 20),
               strcmp(pl->rate_from, "node") == 0 ? "the node's" : "the default");
    else
        printf("estimated time: no limit (transfers.max_bytes_per_second = 0): bounded by disk "
               "and network\n");
    for (size_t i = 0; i < pl->ntgt; i++)
        printf("  to %-20s %6u partitions %10llu keys %10.1f MiB\n", pl->tgt[i].id,
               pl->tgt[i].partitions, (unsigned long long)pl->tgt[i].keys,
               (double)pl->tgt[i].bytes / (1 << 20));
}

/* The node id the change is about, checked against the member table. */
static int resolve_node(const struct rk_kvctl_opts *o, struct plan *pl, const char *arg,
                        const char *id_opt)
{
    if (pl->kind != JOIN) {
        const struct rk_kvctl_member *m = find(pl, arg);
        if (!m) {
            rk_kvctl_err("plan: %s: no member %s in the cluster", change_name[pl->kind], arg);
            return RK_EXIT_USAGE;
        }
        snprintf(pl->node, sizeof pl->node, "%s", m->id);
        return RK_EXIT_OK;
    }
    if (id_opt) {
        snprintf(pl->node, sizeof pl->node, "%s", id_opt);
    } else {
        struct rk_ajson *doc = NULL;
        int code = ask(o, "the joining node", arg, RK_OP_STATUS, &doc);
        if (code != RK_EXIT_OK)
            return code;
        rk_ajson_copy_text(pl->node, sizeof pl->node, rk_ajson_member(rk_ajson_root(doc), "node"));
        rk_ajson_free(doc);
    }
    if (pl->node[0] == '\0' || strlen(pl->node) > RK_RING_ID_MAX) {
        rk_kvctl_err("plan: join: bad node id '%s'", id_opt ? id_opt : pl->node);
        return RK_EXIT_USAGE;
    }
    if (find(pl, pl->node)) {
        rk_kvctl_err("plan: join: %s is already a member", pl->node);
        return RK_EXIT_USAGE;
    }
    return RK_EXIT_OK;
}

static int run(const struct rk_kvctl_opts *o, struct plan *pl, const char *arg, const char *id_opt)
{
    int code = load_members(o, pl);
    if (code == RK_EXIT_OK)
        code = load_shape(o, pl);
    if (code == RK_EXIT_OK)
        code = resolve_node(o, pl, arg, id_opt);
    if (code == RK_EXIT_OK)
        code = load_sizes(o, pl);
    if (code != RK_EXIT_OK)
        return code;
    load_rate(o, pl);
    struct rk_ring *before = NULL, *after = NULL;
    const char *add = pl->kind == JOIN ? pl->node : NULL;
    const char *drop = pl->kind == JOIN ? NULL : pl->node;
    code = ring_of(pl, NULL, NULL, &before);
    if (code == RK_EXIT_OK)
        code = ring_of(pl, add, drop, &after);
    struct rk_plan_totals t = {0};
    if (code == RK_EXIT_OK &&
        rk_plan_diff(before, after, pl->kind == REMOVE ? pl->node : NULL, on_move, pl, &t) != 0)
        code = RK_EXIT_USAGE;
    if (pl->moves.oom)
        rk_kvctl_oom();
    size_t nafter = pl->kind == JOIN ? pl->nm + 1 : pl->nm - 1;
    if (code == RK_EXIT_OK) {
        if (o->json)
            print_json(pl, &t, nafter);
        else
            print_text(pl, &t, nafter);
    }
    rk_ring_free(before);
    rk_ring_free(after);
    return code;
}

static const char plan_usage[] =
    "usage: kvctl [-a ADDR] [--json] plan join ADDR [--id NODE_ID] | leave NODE_ID | remove "
    "NODE_ID\n\n"
    "Print what the membership change would move, without doing it: the replicas of\n"
    "partitions that change owner, the keys and bytes to stream (each member reports\n"
    "what it stores per partition; all are asked), and the time at\n"
    "the node's transfers.max_bytes_per_second.\n"
    "  join ADDR       a node listening at client address ADDR joins; its id is asked\n"
    "                  from it, unless\n"
    "  --id NODE_ID    names it (a node not started yet)\n"
    "  leave NODE_ID   the member leaves (its partitions stream from it)\n"
    "  remove NODE_ID  the member is removed (the survivors stream its partitions)\n"
    "Exit 2: bad input or no such member; 3: a member did not answer.\n";

int rk_plan_main(struct rk_kvctl_opts *o, int argc, char **argv)
{
    const char *pos[2] = {0}, *id = NULL;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(plan_usage, stdout);
            return RK_EXIT_OK;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            int rv = rk_kvctl_global_opt(o, argc, argv, &i);
            if (rv == 0)
                rv = rk_kvctl_opt_value("--id", argc, argv, &i, &id);
            if (rv == 0)
                rk_kvctl_err("plan: unknown option '%s' (see kvctl plan --help)", argv[i]);
            if (rv <= 0)
                return RK_EXIT_USAGE;
            continue;
        }
        if (npos == 2) {
            rk_kvctl_err("plan: unexpected argument '%s' (see kvctl plan --help)", argv[i]);
            return RK_EXIT_USAGE;
        }
        pos[npos++] = argv[i];
    }
    struct plan *pl = calloc(1, sizeof(*pl));
    if (!pl)
        rk_kvctl_oom();
    int kind = -1;
    for (int k = 0; npos > 0 && k < 3; k++)
        if (strcmp(pos[0], change_name[k]) == 0)
            kind = k;
    int code = RK_EXIT_USAGE;
    if (kind < 0 || npos != 2 || pos[1][0] == '\0')
        rk_kvctl_err("plan: give join ADDR, leave NODE_ID or remove NODE_ID (see kvctl plan "
                     "--help)");
    else if (id && kind != JOIN)
        rk_kvctl_err("plan: --id is for join only");
    else {
        pl->kind = (enum change)kind;
        code = run(o, pl, pos[1], id);
    }
    free(pl->moves.p);
    free(pl->size);
    free(pl->m);
    free(pl);
    return code;
}

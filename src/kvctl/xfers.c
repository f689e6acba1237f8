/* kvctl transfers: asks every member that is up for the partitions it is
 * receiving (TRANSFERS), and each source for the size of what it sends
 * (PARTS), then prints one row per (partition, receiving member): source,
 * state, keys and bytes so far of the total, rate, ETA, and why a
 * transfer waits. Bytes so far count the transfer's messages (tree
 * comparisons included), the total the partition's records at the source:
 * the ETA is an estimate. */
#include "kvctl/xfers.h"
#include "kvctl/nodes.h"

#include "client/xfer.h"

#include "util/jbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rows {
    struct rk_xfer_row *r;
    size_t n, cap;
};

static struct rk_xfer_row *row_add(struct rows *rs)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        struct rk_xfer_row *r = realloc(rs->r, cap * sizeof(*r));
        if (!r)
            rk_kvctl_oom();
        rs->r = r, rs->cap = cap;
    }
    return &rs->r[rs->n++];
}

/* The rows of one member's TRANSFERS reply. */
static void take_rows(struct rows *rs, const char *to, const struct rk_ajson *doc)
{
    const struct rk_ajson_val *arr = rk_ajson_path(rk_ajson_root(doc), "receiving");
    for (const struct rk_ajson_val *e = rk_ajson_first(arr); e; e = rk_ajson_next(e))
        rk_xfer_row_read(row_add(rs), to, e);
}

static bool up_state(const char *s)
{
    return strcmp(s, "alive") == 0 || strcmp(s, "leaving") == 0 || strcmp(s, "suspect") == 0;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void print_json(const struct rows *rs, uint64_t now, size_t unanswered)
{
    struct rk_jbuf b = {0};
    rk_jadd(&b, "{\"count\":%zu,\"members_unanswered\":%zu,\"transfers\":[", rs->n, unanswered);
    for (size_t i = 0; i < rs->n; i++) {
        const struct rk_xfer_row *r = &rs->r[i];
        rk_jadd(&b, "%s{\"partition\":%u,\"from\":", i ? "," : "", r->part);
        rk_jstr(&b, r->from);
        rk_jadd(&b, ",\"to\":");
        rk_jstr(&b, r->to);
        rk_jadd(&b,
                ",\"state\":\"%s\",\"keys_done\":%llu,\"keys_total\":%llu,\"bytes_done\":%llu,"
                "\"bytes_total\":%llu,\"rate_bps\":%.0f,\"eta_s\":%.1f,\"started_ms\":%llu,"
                "\"why\":",
                r->state, (unsigned long long)r->keys_done, (unsigned long long)r->keys_total,
                (unsigned long long)r->bytes_done, (unsigned long long)r->bytes_total,
                rk_xfer_rate(r, now), rk_xfer_eta(r, now), (unsigned long long)r->started_ms);
        rk_jstr(&b, r->why);
        rk_jadd(&b, "}");
    }
    rk_jadd(&b, "]}\n");
    if (b.oom)
        rk_kvctl_oom();
    fputs(b.p, stdout);
    free(b.p);
}

static void print_text(const struct rows *rs, uint64_t now)
{
    if (rs->n == 0) {
        printf("no transfers: every partition is held by its owners\n");
        return;
    }
    size_t streaming = 0;
    printf("%-9s %-16s %-16s %-9s %-21s %-23s %-10s %-7s %s\n", "PARTITION", "FROM", "TO", "STATE",
           "KEYS", "BYTES", "RATE", "ETA", "WHY");
    for (size_t i = 0; i < rs->n; i++) {
        const struct rk_xfer_row *r = &rs->r[i];
        char keys[32], bytes[32], rate[16], eta[16];
        snprintf(keys, sizeof keys, "%llu/%llu", (unsigned long long)r->keys_done,
                 (unsigned long long)r->keys_total);
        snprintf(bytes, sizeof bytes, "%llu/%llu", (unsigned long long)r->bytes_done,
                 (unsigned long long)r->bytes_total);
        double rt = rk_xfer_rate(r, now), e = rk_xfer_eta(r, now);
        snprintf(rate, sizeof rate, rt > 0 ? "%.1fMiB/s" : "-", rt / (1 << 20));
        snprintf(eta, sizeof eta, e >= 0 ? "%.0fs" : "-", e);
        streaming += strcmp(r->state, "streaming") == 0;
        printf("%-9u %-16s %-16s %-9s %-21s %-23s %-10s %-7s %s\n", r->part, r->from, r->to,
               r->state, keys, bytes, rate, eta, r->why[0] ? r->why : "-");
    }
    printf("%zu transfers: %zu streaming, %zu waiting\n", rs->n, streaming, rs->n - streaming);
}

/* Each distinct source of a row is asked for its sizes once. */
static void load_sizes(const struct rk_kvctl_opts *o, struct rows *rs,
                       const struct rk_kvctl_member *m, size_t nm)
{
    for (size_t k = 0; k < nm; k++) {
        bool source = false;
        for (size_t i = 0; i < rs->n && !source; i++)
            source = strcmp(rs->r[i].from, m[k].id) == 0;
        struct rk_ajson *doc = NULL;
        if (source &&
            rk_kvctl_ask(o, "transfers", m[k].id, m[k].client, RK_OP_PARTS, &doc) == RK_EXIT_OK)
            rk_xfer_rows_sizes(rs->r, rs->n, m[k].id, rk_ajson_path(rk_ajson_root(doc), "parts"));
        rk_ajson_free(doc);
    }
}

static const char usage[] =
    "usage: kvctl [-a ADDR] [--json] transfers\n\n"
    "Every partition a member is receiving, or waiting to receive, after a join, a\n"
    "leave or a removal: from whom, to whom, keys and bytes so far of the source's\n"
    "total, rate, ETA, and why it waits (source down, limit reached, the members\n"
    "still learning of the change...). Every member that is up is asked.\n"
    "Exit 0; 3 when the node at -a or a member that is up did not answer.\n";

int rk_transfers_main(struct rk_kvctl_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return RK_EXIT_OK;
        }
        int rv = argv[i][0] == '-' ? rk_kvctl_global_opt(o, argc, argv, &i) : 0;
        if (rv == 0)
            rk_kvctl_err("transfers: unexpected argument '%s' (see kvctl transfers --help)",
                         argv[i]);
        if (rv <= 0)
            return RK_EXIT_USAGE;
    }
    struct rk_kvctl_member *m = NULL;
    size_t nm = 0, unanswered = 0;
    int code = rk_kvctl_members(o, "transfers", &m, &nm);
    if (code != RK_EXIT_OK)
        return code;
    struct rows rs = {0};
    for (size_t k = 0; k < nm; k++) {
        struct rk_ajson *doc = NULL;
        if (!up_state(m[k].state))
            continue;
        if (rk_kvctl_ask(o, "transfers", m[k].id, m[k].client, RK_OP_TRANSFERS, &doc) == RK_EXIT_OK)
            take_rows(&rs, m[k].id, doc);
        else
            unanswered++;
        rk_ajson_free(doc);
    }
    load_sizes(o, &rs, m, nm);
    uint64_t now = wall_ms();
    if (o->json)
        print_json(&rs, now, unanswered);
    else
        print_text(&rs, now);
    free(rs.r);
    free(m);
    return unanswered ? RK_EXIT_CLUSTER : RK_EXIT_OK;
}

/* Asking nodes (nodes.h). */
#include "kvctl/nodes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rk_kvctl_ask(const struct rk_kvctl_opts *o, const char *cmd, const char *who, const char *addr,
                 enum rk_op op, struct rk_ajson **doc)
{
    struct rk_client *c = NULL;
    char *json = NULL;
    int rv = rk_kvctl_client_open(&c, o, addr);
    if (rv == 0 && (rv = rk_kvctl_client_tls(c, o, cmd)) != 0) {
        rk_client_close(c);
        return rk_kvctl_exit_code(rv);
    }
    if (rv == 0)
        rv = rk_client_admin_arg(c, op, NULL, false, &json);
    if (rv == 0)
        rv = rk_ajson_parse(doc, json, strlen(json), 0);
    if (rv != 0)
        rk_kvctl_err("%s: %s (%s) did not answer: %s", cmd, who, addr,
                     c ? rk_client_error(c) : "out of memory");
    free(json);
    rk_client_close(c);
    return rv == 0 ? RK_EXIT_OK : RK_EXIT_CLUSTER;
}

int rk_kvctl_members(const struct rk_kvctl_opts *o, const char *cmd, struct rk_kvctl_member **out,
                     size_t *n)
{
    struct rk_ajson *doc = NULL;
    int code = rk_kvctl_ask(o, cmd, "the node", o->addr, RK_OP_MEMBERS, &doc);
    *out = NULL, *n = 0;
    if (code != RK_EXIT_OK)
        return code;
    const struct rk_ajson_val *arr = rk_ajson_path(rk_ajson_root(doc), "members");
    struct rk_kvctl_member *m = calloc(rk_ajson_count(arr) + 1, sizeof(*m));
    if (!m)
        rk_kvctl_oom();
    for (const struct rk_ajson_val *e = rk_ajson_first(arr); e; e = rk_ajson_next(e)) {
        struct rk_kvctl_member *x = &m[*n];
        rk_ajson_copy_text(x->id, sizeof x->id, rk_ajson_member(e, "id"));
        rk_ajson_copy_text(x->client, sizeof x->client, rk_ajson_member(e, "client"));
        rk_ajson_copy_text(x->gossip, sizeof x->gossip, rk_ajson_member(e, "gossip"));
        rk_ajson_copy_text(x->state, sizeof x->state, rk_ajson_member(e, "state"));
        if (strcmp(x->state, "left") != 0)
            (*n)++;
    }
    rk_ajson_free(doc);
    *out = m;
    return RK_EXIT_OK;
}

/* kvctl: the ringkv command-line client (DESIGN §2). Parses arguments,
 * runs one request through the client library and maps the outcome to an
 * exit code and at most one error line on stderr. Admin replies (JSON in
 * TEXT) are printed as aligned "key: value" lines by a small JSON walker,
 * or passed through with --json; `members`, `locate` and `ring` build their
 * listings from the same walker's lines. `kvctl bench` lives in bench.c. */
#include "kvctl/cli.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/ajson.h"
#include "client/client.h"
#include "kvctl/bench.h"
#include "kvctl/nodes.h"
#include "kvctl/plan.h"
#include "kvctl/xfers.h"
#include "util/err.h"

#define DEFAULT_ADDR       "tcp://127.0.0.1:7400"
#define DEFAULT_TIMEOUT_MS 5000

static const char usage_text[] =
    "usage: kvctl [-a ADDR] [--json] [--timeout DUR] [-r R] [-w W] [--secret-file FILE]\n"
    "             COMMAND ...\n"
    "       kvctl help [COMMAND] | --version\n"
    "\n"
    "commands:\n"
    "  put KEY VALUE [--ttl DUR]  store VALUE under KEY; VALUE \"-\" reads stdin (binary-safe)\n"
    "  get KEY                    print the value (raw bytes; a newline added only on a\n"
    "                             terminal); --json adds which replicas answered what\n"
    "  del KEY                    delete KEY\n"
    "  status | stats             node status / statistics\n"
    "  health | ready             probes: exit 0 yes, 1 no\n"
    "  members                    member table: state, last heard, RTT, addresses\n"
    "  join SEED_ADDR             join the cluster through a member's gossip address;\n"
    "                             exit 3 if nothing answers there\n"
    "  leave [--no-wait]          hand the node's partitions over, then stop it\n"
    "  remove NODE_ID [--force]   take a dead member out (--force: whatever its state)\n"
    "  locate KEY                 KEY's partition and its preference list of nodes\n"
    "  ring                       partitions per member, ring size and digest\n"
    "  bench [OPTIONS]            load generator (see kvctl bench --help)\n"
    "  ae [--partition P]         anti-entropy progress: the round, then per partition\n"
    "  repair [PARTITION] [--wait]  mark partitions to go first in anti-entropy\n"
    "  transfers                  partitions being handed to new owners: progress, why waiting\n"
    "  plan join ADDR|leave NODE_ID|remove NODE_ID  what the change would move (keys,\n"
    "                             bytes, time), without doing it (see kvctl plan --help)\n"
    "\n"
    "options (before or after COMMAND):\n"
    "  -a ADDR        node address, HOST:PORT or tcp://HOST:PORT, or a comma-separated\n"
    "                 list: the next is tried while one cannot be reached (refused, or\n"
    "                 the request could not be sent); default $KVCTL_ADDR, else\n"
    "                 " DEFAULT_ADDR "\n"
    "  --json         print one JSON object per line\n"
    "  --timeout DUR  per-request timeout: 250ms, 2s, 1m ... (default 5s)\n"
    "  -r R, -w W     read / write quorum for this request (default: the node's)\n"
    "  --secret-file FILE  sign requests with the cluster secret (the node's\n"
    "                 security.secret_file; default $KVCTL_SECRET_FILE): needed for join,\n"
    "                 leave, remove and repair on a node with a secret, and for every\n"
    "                 request with security.client_auth\n"
    "  --tls-ca FILE  the node uses TLS: dial tls+tcp:// and require its certificate to\n"
    "                 come from this CA (PEM); default $KVCTL_TLS_CA\n"
    "  --tls-cert FILE, --tls-key FILE\n"
    "                 a client certificate from the node's CA and its key (PEM), for\n"
    "                 nodes that require one (security.client_auth, or one listener\n"
    "                 for clients and peers); default $KVCTL_TLS_CERT, $KVCTL_TLS_KEY\n"
    "  --             end of options (for a KEY or VALUE starting with '-')\n"
    "\n"
    "exit status: 0 ok, 1 not found / probe says no, 2 usage or bad input (also\n"
    "             a membership change the node refuses, or an unknown member),\n"
    "             3 cluster or network error (timeout, unreachable, busy, quorum)\n";

static void base64_string(FILE *f, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc('"', f);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        fputc(tab[v >> 18 & 63], f);
        fputc(tab[v >> 12 & 63], f);
        fputc(i + 1 < n ? tab[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? tab[v & 63] : '=', f);
    }
    fputc('"', f);
}

/* ---- admin replies, read with the client library's JSON reader ---- */

/* A node's admin reply parsed for display: names and strings decoded on
 * one line each. NULL if json is not a JSON object. */
static struct rk_ajson *parse_reply(const char *json)
{
    struct rk_ajson *doc;
    int rv = rk_ajson_parse(&doc, json, strlen(json), RK_AJSON_ONE_LINE);
    if (rv == -ENOMEM)
        rk_kvctl_oom();
    if (rv != 0)
        return NULL;
    if (rk_ajson_type(rk_ajson_root(doc)) != RK_AJSON_OBJECT) {
        rk_ajson_free(doc);
        return NULL;
    }
    return doc;
}

/* The text of the reply's top-level member name (a scalar or an empty
 * container), or NULL. */
static const char *field(const struct rk_ajson *doc, const char *name)
{
    return rk_ajson_text(rk_ajson_member(rk_ajson_root(doc), name));
}

/* The text of member f of element k of the reply's array name, or NULL. */
static const char *elem_field(const struct rk_ajson *doc, const char *name, size_t k, const char *f)
{
    const struct rk_ajson_val *arr = rk_ajson_member(rk_ajson_root(doc), name);
    return rk_ajson_text(rk_ajson_member(rk_ajson_index(arr, k), f));
}

/* Called for each leaf of a reply with its dotted name and its text. */
typedef void leaf_fn(const char *name, const char *text, void *arg);

/* The leaves below container v in document order, each named by its path:
 * prefix.key in an object, prefix.K (the index) in an array. An empty
 * array or object is a leaf of its own ("[]", "{}"). name holds the prefix
 * and is left as it came. */
static void walk_leaves(const struct rk_ajson_val *v, struct rk_jbuf *name, leaf_fn *fn, void *arg)
{
    size_t base = name->len, k = 0, klen;
    for (const struct rk_ajson_val *c = rk_ajson_first(v); c != NULL; c = rk_ajson_next(c), k++) {
        name->len = base;
        if (base > 0)
            rk_jaddn(name, ".", 1);
        const char *key = rk_ajson_key(c, &klen);
        if (key != NULL)
            rk_jaddn(name, key, klen);
        else
            rk_jadd(name, "%zu", k);
        if (name->oom)
            rk_kvctl_oom();
        if (rk_ajson_text(c) != NULL)
            fn(name->p, rk_ajson_text(c), arg);
        else
            walk_leaves(c, name, fn, arg);
    }
    if (name->p != NULL)
        name->p[name->len = base] = '\0';
}

static void leaf_width(const char *name, const char *text, void *arg)
{
    int *width = arg, len = (int)strlen(name) + 1;
    (void)text;
    *width = len > *width ? len : *width;
}

static void leaf_print(const char *name, const char *text, void *arg)
{
    int width = *(int *)arg;
    printf("%s:%*s %s\n", name, width - (int)strlen(name) - 1, "", text);
}

/* json compacted onto one line. */
static void print_compact(const char *json)
{
    struct rk_jbuf out = {0};
    rk_ajson_compact(json, strlen(json), &out);
    if (out.oom)
        rk_kvctl_oom();
    printf("%s\n", out.p != NULL ? out.p : "{}");
    free(out.p);
}

/* Print an admin reply (doc: json parsed by parse_reply): one compact line
 * with --json, else aligned "key: value" lines. Text that is not a JSON
 * object (doc NULL) prints as is. */
static void print_admin(const char *json, bool as_json, const struct rk_ajson *doc)
{
    struct rk_jbuf name = {0};
    int width = 0;
    if (doc == NULL) {
        printf("%s\n", json);
        return;
    }
    if (as_json) {
        print_compact(json);
        return;
    }
    walk_leaves(rk_ajson_root(doc), &name, leaf_width, &width);
    walk_leaves(rk_ajson_root(doc), &name, leaf_print, &width);
    free(name.p);
}

/* ---- commands ---- */

struct cmd;

struct cmd_args {
    const char *pos[2];
    int npos;
    const char *ttl;          /* --ttl DUR (CMD_TTL) */
    bool force;               /* --force (CMD_FORCE) */
    const char *partition;    /* --partition P (CMD_PARTITION) */
    bool wait;                /* --wait (CMD_WAIT) */
    const char *wait_timeout; /* --wait-timeout DUR (CMD_WAIT) */
    bool no_wait;             /* --no-wait (CMD_NOWAIT) */
};

/* The options a command takes besides the global ones (struct cmd.opts). */
enum {
    CMD_TTL = 1u << 0,
    CMD_FORCE = 1u << 1,
    CMD_PARTITION = 1u << 2,
    CMD_WAIT = 1u << 3,
    CMD_NOWAIT = 1u << 4
};

typedef int cmd_fn(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct cmd_args *a);

struct cmd {
    const char *name;
    const char *synopsis; /* after "kvctl [OPTIONS] " */
    const char *help;
    int minpos, maxpos;
    unsigned opts; /* CMD_TTL | CMD_FORCE */
    int op;        /* admin opcode */
    cmd_fn *run;
};

static void cmd_usage(FILE *f, const struct cmd *cmd)
{
    fprintf(f, "usage: kvctl [-a ADDR] [--json] [--timeout DUR] [-r R] [-w W] %s\n\n%s\n",
            cmd->synopsis, cmd->help);
}

/* Escaped, shortened key for error lines. */
static const char *show_key(const char *k, char *buf, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; k[i] != '\0' && o + 8 < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (i == 48) {
            o += (size_t)snprintf(buf + o, n - o, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7F)
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/* Open the client; on failure print the line and return NULL with *code. */
static struct rk_client *open_client(const struct rk_kvctl_opts *o, const char *what, int *code)
{
    struct rk_client *c;
    int rv = rk_kvctl_client_open(&c, o, o->addr);
    if (rv == 0)
        rv = rk_client_set_quorum(c, o->r, o->w);
    if (rv == 0 && (rv = rk_kvctl_client_tls(c, o, what)) != 0) {
        *code = rk_kvctl_exit_code(rv);
        rk_client_close(c);
        return NULL;
    }
    if (rv == 0)
        return c;
    rk_kvctl_err("%s: %s", what, c != NULL ? rk_client_error(c) : "out of memory");
    *code = rk_kvctl_exit_code(rv);
    rk_client_close(c);
    return NULL;
}

/* All of stdin, binary-safe, bounded by the client's message limit. */
static int read_stdin(char **out, size_t *len)
{
    struct rk_jbuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (b.len + n > RK_CLIENT_MAX_MSG) {
            free(b.p);
            rk_kvctl_err("put: value on stdin exceeds %u MiB; store a smaller value",
                         RK_CLIENT_MAX_MSG >> 20);
            return -1;
        }
        rk_jaddn(&b, chunk, n);
        if (b.oom)
            rk_kvctl_oom();
    }
    if (ferror(stdin)) {
        free(b.p);
        rk_kvctl_err("put: cannot read the value from stdin: %s", strerror(errno));
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

static void print_key_version(const char *key, uint64_t version)
{
    fputs("{\"key\":", stdout);
    rk_kvctl_json_string(stdout, key, strlen(key));
    printf(",\"version\":%llu}\n", (unsigned long long)version);
}

static int cmd_put(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct cmd_args *a)
{
    char kb[256];
    const char *key = a->pos[0];
    uint64_t ttl = 0, version = 0;
    char *val = NULL;
    size_t vlen;
    int code = RK_EXIT_OK;
    if (a->ttl != NULL && rk_client_parse_ms(a->ttl, &ttl) != 0) {
        rk_kvctl_bad_value("--ttl", a->ttl, "use a duration such as 30s, 5m, 1h");
        return RK_EXIT_USAGE;
    }
    if (strcmp(a->pos[1], "-") == 0) {
        if (read_stdin(&val, &vlen) != 0)
            return RK_EXIT_USAGE;
    } else {
        vlen = strlen(a->pos[1]);
    }
    struct rk_client *c = open_client(o, "put", &code);
    if (c == NULL) {
        free(val);
        return code;
    }
    int rv = rk_client_put(c, key, strlen(key), val != NULL ? val : a->pos[1], vlen, ttl, &version);
    if (rv != 0)
        rk_kvctl_err("put %s: %s", show_key(key, kb, sizeof kb), rk_client_error(c));
    else if (o->json)
        print_key_version(key, version);
    rk_client_close(c);
    free(val);
    return rk_kvctl_exit_code(rv);
}

/* '{"key":' and the key (plus "key_base64" if it is not UTF-8), no brace
 * closing: the caller adds its fields. */
static void print_json_key(const char *key)
{
    fputs("{\"key\":", stdout);
    if (!rk_kvctl_json_string(stdout, key, strlen(key))) {
        fputs(",\"key_base64\":", stdout);
        base64_string(stdout, (const uint8_t *)key, strlen(key));
    }
}

/* trace_fields is "" or the ',"coordinator":..,"replicas":..' of the node's
 * trace (get_trace). */
static void print_get_json(const char *key, const char *val, size_t vlen, uint64_t version,
                           uint64_t expiry, const char *trace_fields)
{
    print_json_key(key);
    fputs(",\"value\":", stdout);
    if (!rk_kvctl_json_string(stdout, val, vlen)) {
        fputs(",\"value_base64\":", stdout);
        base64_string(stdout, (const uint8_t *)val, vlen);
    }
    printf(",\"version\":%llu,\"expiry_ms\":", (unsigned long long)version);
    if (expiry != 0)
        printf("%llu", (unsigned long long)expiry);
    else
        fputs("null", stdout);
    printf("%s}\n", trace_fields);
}

/* The "coordinator" and "replicas" members of a GET trace (the reply's TEXT,
 * or NULL), each as ',"name":' and its JSON text as the node wrote it,
 * compacted, into out; members it lacks are left out. A trace that is not a
 * JSON object adds nothing: on an OK reply that is worth a warning (a
 * NOT_FOUND reply from an older node may carry a plain line instead). */
static void get_trace(const char *key, const char *trace, bool ok, struct rk_jbuf *out)
{
    static const char *const names[] = {"coordinator", "replicas"};
    char kb[256];
    size_t n;
    rk_jaddn(out, "", 0);
    if (trace == NULL)
        return;
    struct rk_ajson *doc = parse_reply(trace);
    if (doc == NULL) {
        if (ok)
            rk_kvctl_err("get %s: the node's trace is not a JSON object; printed without it",
                         show_key(key, kb, sizeof kb));
        return;
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *raw = rk_ajson_raw(rk_ajson_member(rk_ajson_root(doc), names[k]), &n);
        if (raw == NULL)
            continue;
        rk_jadd(out, ",\"%s\":", names[k]);
        rk_ajson_compact(raw, n, out);
    }
    rk_ajson_free(doc);
    if (out->oom)
        rk_kvctl_oom();
}

/* stdout is closed, full or a broken pipe: the value did not get out. */
static int write_failed(const char *what, const char *key)
{
    char kb[256];
    rk_kvctl_err("%s %s: cannot write the value to stdout: %s (check the output file or pipe)",
                 what, show_key(key, kb, sizeof kb), strerror(errno));
    return RK_EXIT_USAGE;
}

/* Not found: the line on stderr and, with --json,
 * {"key":..,"found":false} on stdout (plus "coordinator" and "replicas"
 * when the node traced the read, so scripts see which replicas answered
 * missing). */
static void get_not_found(const char *key, const char *trace_fields, bool json)
{
    char kb[256];
    rk_kvctl_err("get %s: not found", show_key(key, kb, sizeof kb));
    if (!json)
        return;
    print_json_key(key);
    printf(",\"found\":false%s}\n", trace_fields);
}

/* get KEY. With --json the request asks for a trace (TRACE = 1): its
 * coordinator and replicas join the printed object. */
static int cmd_get(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct cmd_args *a)
{
    char kb[256];
    const char *key = a->pos[0];
    void *val;
    size_t vlen;
    uint64_t version, expiry;
    char *trace = NULL;
    struct rk_jbuf fields = {0};
    int code = RK_EXIT_OK;
    struct rk_client *c = open_client(o, "get", &code);
    if (c == NULL)
        return code;
    int rv = rk_client_get_ex(c, key, strlen(key), o->json, &val, &vlen, &version, &expiry,
                              o->json ? &trace : NULL);
    get_trace(key, trace, rv == 0, &fields);
    if (rv == RK_ENOTFOUND)
        get_not_found(key, fields.p ? fields.p : "", o->json);
    else if (rv != 0)
        rk_kvctl_err("get %s: %s", show_key(key, kb, sizeof kb), rk_client_error(c));
    else if (o->json)
        print_get_json(key, val, vlen, version, expiry, fields.p);
    else if (fwrite(val, 1, vlen, stdout) != vlen ||
             (isatty(STDOUT_FILENO) && putchar('\n') == EOF) || fflush(stdout) != 0)
        code = write_failed("get", key);
    rk_client_close(c);
    free(fields.p);
    free(trace);
    if (rv == 0)
        free(val);
    return rv != 0 ? rk_kvctl_exit_code(rv) : code;
}

static int cmd_del(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct cmd_args *a)
{
    char kb[256];
    const char *key = a->pos[0];
    uint64_t version = 0;
    int code = RK_EXIT_OK;
    struct rk_client *c = open_client(o, "del", &code);
    if (c == NULL)
        return code;
    int rv = rk_client_del(c, key, strlen(key), &version);
    if (rv != 0)
        rk_kvctl_err("del %s: %s", show_key(key, kb, sizeof kb), rk_client_error(c));
    else if (o->json)
        print_key_version(key, version);
    rk_client_close(c);
    return rk_kvctl_exit_code(rv);
}

/* A probe reply that says no: a top-level "ready", "healthy", "ok" or
 * "live" member that is false. */
static bool probe_says_no(const struct rk_ajson *doc)
{
    static const char *const names[] = {"ready", "healthy", "ok", "live"};
    const struct rk_ajson_val *m = rk_ajson_first(rk_ajson_root(doc));
    for (; m != NULL; m = rk_ajson_next(m)) {
        const char *text = rk_ajson_text(m);
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++)
            if (strcmp(rk_ajson_key(m, NULL), names[j]) == 0 && text != NULL &&
                strcmp(text, "false") == 0)
                return true;
    }
    return false;
}

/* The exit code of an admin command once a reply (or failure) is in. */
static int admin_outcome(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct rk_client *c,
                         int rv, const char *json)
{
    bool probe = cmd->op == RK_OP_HEALTH || cmd->op == RK_OP_READY;
    enum rk_status st = rk_client_last_status(c);
    bool replied = rv == 0 || st != RK_ST_OK;
    if (!replied || (rv != 0 && !probe) || st == RK_ST_UNSUPPORTED || st == RK_ST_MALFORMED) {
        rk_kvctl_err("%s: %s", cmd->name, rk_client_error(c));
        return rk_kvctl_exit_code(rv);
    }
    struct rk_ajson *doc = json != NULL ? parse_reply(json) : NULL;
    bool parsed = doc != NULL;
    if (rv != 0 && !parsed) { /* a probe answered no, with a plain line */
        rk_kvctl_err("%s: no: %s", cmd->name, rk_client_error(c));
        return RK_EXIT_NO;
    }
    print_admin(json, o->json, doc);
    bool no = rv != 0 || (probe && parsed && probe_says_no(doc));
    const char *reason = parsed ? field(doc, "reason") : NULL;
    if (no && probe) /* scripts read the exit code; people read why */
        rk_kvctl_err("%s: no: %s", cmd->name, reason ? reason : "the node says no");
    rk_ajson_free(doc);
    return no ? RK_EXIT_NO : RK_EXIT_OK;
}

static int cmd_admin(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct cmd_args *a)
{
    char *json = NULL;
    int code = RK_EXIT_OK;
    struct rk_client *c = open_client(o, cmd->name, &code);
    if (c == NULL)
        return code;
    int rv = rk_client_admin(c, (enum rk_op)cmd->op, &json);
    code = admin_outcome(o, cmd, c, rv, json);
    free(json);
    rk_client_close(c);
    return code;
}

/* ---- membership and placement: members, join, leave, remove, locate, ring ---- */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p == NULL) {
        rk_kvctl_err("out of memory");
        exit(RK_EXIT_CLUSTER);
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* A duration of us microseconds in at most 2-3 digits: "250us", "1.2ms",
 * "120ms", "3.2s", "45s", "5m07s", "2h05m". A tenth shows only while the
 * whole part is one digit, and not when it is 0. */
static char *fmt_us(uint64_t us)
{
    typedef unsigned long long ull;
    if (us >= 3600000000u)
        return xasprintf("%lluh%02llum", (ull)(us / 3600000000u), (ull)(us / 60000000u % 60));
    if (us >= 60000000u)
        return xasprintf("%llum%02llus", (ull)(us / 60000000u), (ull)(us / 1000000u % 60));
    if (us < 1000)
        return xasprintf("%lluus", (ull)us);
    uint64_t unit = us < 1000000 ? 1000 : 1000000;
    uint64_t whole = us / unit, tenth = us / (unit / 10) % 10;
    if (whole < 10 && tenth != 0)
        return xasprintf("%llu.%llu%s", (ull)whole, (ull)tenth, unit == 1000 ? "ms" : "s");
    return xasprintf("%llu%s", (ull)whole, unit == 1000 ? "ms" : "s");
}

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static const char *member_field(const struct rk_ajson *doc, size_t k, const char *f)
{
    return elem_field(doc, "members", k, f);
}

/* LAST-HEARD of member k: "-" if the node does not say (or for itself). */
static char *heard_cell(const struct rk_ajson *w, size_t k)
{
    uint64_t ms;
    const char *v = member_field(w, k, "last_heard_ms");
    if (v == NULL || rk_kvctl_parse_uint(v, 0, UINT64_MAX, &ms) != 0)
        return xasprintf("-");
    if (ms == 0)
        return xasprintf("0ms"); /* not fmt_us's "0us": ms is all the node measures */
    return fmt_us(ms > UINT64_MAX / 1000 ? UINT64_MAX : ms * 1000);
}

/* RTT of member k: "-" if 0 (not measured yet, or itself) or missing. */
static char *rtt_cell(const struct rk_ajson *w, size_t k)
{
    uint64_t us;
    const char *v = member_field(w, k, "rtt_us");
    if (v == NULL || rk_kvctl_parse_uint(v, 1, UINT64_MAX, &us) != 0)
        return xasprintf("-");
    return fmt_us(us);
}

enum { M_ID, M_STATE, M_INC, M_HEARD, M_RTT, M_CONFIG, M_CLIENT, M_GOSSIP, M_COLS };

static const char *const member_head[M_COLS] = {"ID",  "STATE",  "INC",    "LAST-HEARD",
                                                "RTT", "CONFIG", "CLIENT", "GOSSIP"};

/* The elements of array name in w, each of which must have fields f1 and
 * f2 (the others show as "-" when missing). -1 if w has no such array or
 * an element lacks one. */
static long array_rows(const struct rk_ajson *doc, const char *name, const char *f1, const char *f2)
{
    const struct rk_ajson_val *arr = rk_ajson_member(rk_ajson_root(doc), name);
    if (rk_ajson_type(arr) != RK_AJSON_ARRAY)
        return -1;
    long n = (long)rk_ajson_count(arr);
    for (long k = 0; k < n; k++)
        if (elem_field(doc, name, (size_t)k, f1) == NULL ||
            elem_field(doc, name, (size_t)k, f2) == NULL)
            return -1;
    return n;
}

/* The cells of member k, malloc'd. */
static void member_row(const struct rk_ajson *w, size_t k, char **cell)
{
    const char *id = member_field(w, k, "id"), *state = member_field(w, k, "state");
    const char *self = member_field(w, k, "self"), *match = member_field(w, k, "config_match");
    bool is_self = self != NULL && strcmp(self, "true") == 0;
    cell[M_ID] = xasprintf("%s%s", id, is_self ? "*" : "");
    cell[M_STATE] = xasprintf("%s", state);
    cell[M_INC] = xasprintf("%s", or_dash(member_field(w, k, "incarnation")));
    cell[M_HEARD] = is_self ? xasprintf("-") : heard_cell(w, k);
    cell[M_RTT] = rtt_cell(w, k);
    if (match == NULL)
        cell[M_CONFIG] = xasprintf("-");
    else
        cell[M_CONFIG] = xasprintf("%s", strcmp(match, "true") == 0 ? "same" : "differs");
    cell[M_CLIENT] = xasprintf("%s", or_dash(member_field(w, k, "client")));
    cell[M_GOSSIP] = xasprintf("%s", or_dash(member_field(w, k, "gossip")));
}

/* Terminal columns of UTF-8 text, counting each code point as one. */
static size_t text_width(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

#define TABLE_MAX_COLS 8 /* the member table's; print_table's widths */
static_assert(M_COLS <= TABLE_MAX_COLS, "print_table: too many columns");

/* Fills the cols cells of row k of a table from w, each malloc'd. */
typedef void row_fn(const struct rk_ajson *w, size_t k, char **cell);

/* A table: the header head (cols columns), then row(w, k, ...) for k < n;
 * each column as wide as its widest cell plus 2. */
static void print_table(const char *const *head, size_t cols, const struct rk_ajson *w, size_t n,
                        row_fn *row)
{
    size_t rows = n + 1, width[TABLE_MAX_COLS] = {0};
    char **cell = calloc(rows * cols, sizeof *cell);
    if (cell == NULL) {
        rk_kvctl_err("out of memory");
        exit(RK_EXIT_CLUSTER);
    }
    for (size_t c = 0; c < cols; c++)
        cell[c] = xasprintf("%s", head[c]);
    for (size_t k = 0; k < n; k++)
        row(w, k, cell + (k + 1) * cols);
    for (size_t i = 0; i < rows * cols; i++)
        if (text_width(cell[i]) > width[i % cols])
            width[i % cols] = text_width(cell[i]);
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            const char *s = cell[r * cols + c];
            fputs(s, stdout);
            if (c + 1 < cols)
                printf("%*s", (int)(width[c] - text_width(s) + 2), "");
        }
        putchar('\n');
    }
    for (size_t i = 0; i < rows * cols; i++)
        free(cell[i]);
    free(cell);
}

/* "3 members: 2 alive, 1 dead": non-zero counts by state in a fixed order,
 * then states this version does not know as "other". */
static void print_member_counts(const struct rk_ajson *w, size_t n)
{
    static const char *const states[] = {"alive",   "suspect", "dead", "stopped",
                                         "leaving", "left",    "other"};
    size_t count[7] = {0}, other = 6;
    for (size_t k = 0; k < n; k++) {
        const char *st = member_field(w, k, "state");
        size_t j = 0;
        while (j < other && strcmp(st, states[j]) != 0)
            j++;
        count[j]++;
    }
    printf("%zu member%s", n, n == 1 ? "" : "s");
    const char *sep = ": ";
    for (size_t j = 0; j <= other; j++) {
        if (count[j] == 0)
            continue;
        printf("%s%zu %s", sep, count[j], states[j]);
        sep = ", ";
    }
    putchar('\n');
}

/* Peers whose gossip this node ignores because a setting differs. */
static void print_refused(const struct rk_ajson *w)
{
    const struct rk_ajson_val *arr = rk_ajson_member(rk_ajson_root(w), "refused");
    long n = rk_ajson_type(arr) == RK_AJSON_ARRAY ? (long)rk_ajson_count(arr) : -1;
    for (size_t k = 0; n > 0 && k < (size_t)n; k++)
        printf("refused: %s at %s: %s differs (theirs %s, ours %s)\n",
               or_dash(elem_field(w, "refused", k, "id")),
               or_dash(elem_field(w, "refused", k, "peer")),
               or_dash(elem_field(w, "refused", k, "setting")),
               or_dash(elem_field(w, "refused", k, "theirs")),
               or_dash(elem_field(w, "refused", k, "ours")));
}

/* The member table (n members, checked by array_rows), the counts and the
 * refused peers. */
static void print_members_table(const struct rk_ajson *w, size_t n)
{
    print_table(member_head, M_COLS, w, n, member_row);
    print_member_counts(w, n);
    print_refused(w);
}

/* LOCATE's reply: "partition 12: node-2 (alive), node-3 (alive)", the
 * preference list in order (n entries, checked by array_rows). */
static void print_preference(const struct rk_ajson *w, size_t n)
{
    printf("partition %s:", or_dash(field(w, "partition")));
    for (size_t k = 0; k < n; k++)
        printf("%s %s (%s)", k > 0 ? "," : "", elem_field(w, "preference", k, "node"),
               elem_field(w, "preference", k, "state"));
    puts(n == 0 ? " (none)" : "");
}

enum { G_NODE, G_STATE, G_PRIMARY, G_REPLICA, G_COLS };

static const char *const ring_head[G_COLS] = {"NODE", "STATE", "PRIMARY", "REPLICA"};
static_assert(G_COLS <= TABLE_MAX_COLS, "print_table: too many columns");

static void ring_row(const struct rk_ajson *w, size_t k, char **cell)
{
    cell[G_NODE] = xasprintf("%s", elem_field(w, "members", k, "node"));
    cell[G_STATE] = xasprintf("%s", elem_field(w, "members", k, "state"));
    cell[G_PRIMARY] = xasprintf("%s", or_dash(elem_field(w, "members", k, "primary")));
    cell[G_REPLICA] = xasprintf("%s", or_dash(elem_field(w, "members", k, "replica")));
}

/* RING's reply: partitions per member (n members, checked by array_rows),
 * then the ring's size and digest. */
static void print_ring(const struct rk_ajson *w, size_t n)
{
    print_table(ring_head, G_COLS, w, n, ring_row);
    printf("%s partitions, %s replicas, digest %s\n", or_dash(field(w, "partitions")),
           or_dash(field(w, "replicas")), or_dash(field(w, "digest")));
}

/* The replies kvctl prints as a listing: the array each must hold, the two
 * fields each element must have, and the printer. */
static const struct listing {
    int op;
    const char *array, *f1, *f2;
    void (*print)(const struct rk_ajson *w, size_t n);
} listings[] = {
    {RK_OP_MEMBERS, "members", "id", "state", print_members_table},
    {RK_OP_LOCATE, "preference", "node", "state", print_preference},
    {RK_OP_RING, "members", "node", "state", print_ring},
};

static const struct listing *find_listing(int op)
{
    for (size_t k = 0; k < sizeof listings / sizeof listings[0]; k++)
        if (listings[k].op == op)
            return &listings[k];
    return NULL;
}

/* A listing reply (MEMBERS, LOCATE, RING): the object on one line with
 * --json, else its printer's lines. A reply that is not the expected
 * object is an error (exit 3), never printed as is: scripts read this. */
static int print_listing(const struct cmd *cmd, const struct listing *l, const char *json,
                         bool as_json)
{
    struct rk_ajson *doc = parse_reply(json);
    long n = doc != NULL ? array_rows(doc, l->array, l->f1, l->f2) : -1;
    if (n >= 0 && as_json)
        print_admin(json, true, doc);
    else if (n >= 0)
        l->print(doc, (size_t)n);
    else
        rk_kvctl_err("%s: the node sent a reply kvctl cannot read (kvctl and ringkvd "
                     "versions differ?)",
                     cmd->name);
    rk_ajson_free(doc);
    return n >= 0 ? RK_EXIT_OK : RK_EXIT_CLUSTER;
}

/* A JOIN, LEAVE or REMOVE reply: the object on one line with --json, else
 * its "message" if it has one, else "key: value" lines. */
static void print_member_reply(const char *json, bool as_json)
{
    struct rk_ajson *doc = parse_reply(json);
    const char *msg = doc != NULL && !as_json ? field(doc, "message") : NULL;
    if (msg != NULL)
        printf("%s\n", msg);
    else
        print_admin(json, as_json, doc);
    rk_ajson_free(doc);
}

/* A seed address as JOIN needs it: tcp://HOST:PORT, PORT 1..65535. The
 * node checks the rest (that HOST resolves, that a seed answers there). */
static bool valid_seed(const char *addr)
{
    static const char scheme[] = "tcp://";
    const char *host = addr + sizeof scheme - 1;
    uint64_t port;
    if (strncmp(addr, scheme, sizeof scheme - 1) != 0)
        return false;
    const char *colon = strrchr(host, ':');
    return colon != NULL && colon > host && rk_kvctl_parse_uint(colon + 1, 1, 65535, &port) == 0;
}

/* The node turning down a membership change (REFUSED, or NOT_FOUND: no such
 * member) is bad input, exit 2; for get, NOT_FOUND stays exit 1. */
static int member_exit_code(int err)
{
    return err == RK_EREFUSED || err == RK_ENOTFOUND ? RK_EXIT_USAGE : rk_kvctl_exit_code(err);
}

#define LEAVE_POLL_MS 500

static void ms_sleep(uint64_t ms);
static uint64_t mono_ms(void);

/* kvctl leave: the node stays until the members taking its partitions
 * over hold them (docs/TRANSFERS.md §4). Progress from its stats every
 * LEAVE_POLL_MS: partitions it still holds, bytes sent so far; done when
 * it stops answering (it left and exited). */
static int leave_wait(const struct rk_kvctl_opts *o, struct rk_client *c)
{
    long first = -1;
    uint64_t t0 = mono_ms();
    for (;;) {
        char *json = NULL;
        if (rk_client_admin(c, RK_OP_STATS, &json) != 0) {
            free(json);
            printf("left: the node handed its partitions over and stopped\n");
            return RK_EXIT_OK;
        }
        struct rk_ajson *doc = parse_reply(json);
        const struct rk_ajson_val *root = doc ? rk_ajson_root(doc) : NULL;
        uint64_t held = 0, bytes = 0;
        bool ok = root && rk_ajson_u64(rk_ajson_path(root, "transfers.held"), &held) == 0;
        if (root)
            rk_ajson_u64(rk_ajson_path(root, "storage.live_bytes"), &bytes);
        if (ok && first < 0)
            first = (long)held;
        if (!o->json && ok) {
            double el = (double)(mono_ms() - t0) / 1000.0;
            long done = first - (long)held;
            printf("leaving: %ld of %ld partitions handed over, %llu still held (%.1f MiB)", done,
                   first, (unsigned long long)held, (double)bytes / (1 << 20));
            if (done > 0)
                printf(", ETA %.0f s", el * (double)held / (double)done);
            printf("\n");
            fflush(stdout);
        }
        rk_ajson_free(doc);
        free(json);
        ms_sleep(LEAVE_POLL_MS);
    }
}

#define JOIN_WAIT_MS 5000 /* several gossip intervals at the default 1s */

/* Members of the node's table (LEFT left out), and whether one gossips at
 * seed; -1 (after a line) if the node did not answer. */
static long count_members(const struct rk_kvctl_opts *o, const char *seed, bool *has_seed)
{
    struct rk_kvctl_member *m;
    size_t n;
    if (rk_kvctl_members(o, "join", &m, &n) != RK_EXIT_OK)
        return -1;
    *has_seed = false;
    for (size_t i = 0; i < n; i++)
        *has_seed |= strcmp(m[i].gossip, seed) == 0;
    free(m);
    return (long)n;
}

/* After JOIN was accepted: the node only starts dialling the seed, so
 * wait until its table shows a member it did not have before (or the seed
 * itself); nothing answering there is exit 3, not a silent success. */
static int join_wait(const struct rk_kvctl_opts *o, const char *seed, long before)
{
    uint64_t wait = o->timeout_ms > JOIN_WAIT_MS ? o->timeout_ms : JOIN_WAIT_MS;
    uint64_t deadline = mono_ms() + wait;
    for (;;) {
        bool has_seed;
        long n = count_members(o, seed, &has_seed);
        if (n < 0)
            return RK_EXIT_CLUSTER;
        if (n > before || has_seed) {
            printf("joined through %s: the node now knows %ld members\n", seed, n);
            return RK_EXIT_OK;
        }
        if (mono_ms() >= deadline) {
            char t[32];
            rk_kvctl_err("join: nothing answered at %s within %s (is a member's listen.gossip "
                         "there, and reachable from the node?)",
                         seed, rk_client_fmt_ms(wait, t, sizeof t));
            return RK_EXIT_CLUSTER;
        }
        ms_sleep(100);
    }
}

/* members, join SEED_ADDR, leave, remove NODE_ID [--force], locate KEY,
 * ring. */
static int cmd_member(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct cmd_args *a)
{
    char kb[256];
    const char *arg = a->npos > 0 ? a->pos[0] : NULL;
    char *json = NULL;
    int code = RK_EXIT_OK;
    if (cmd->op == RK_OP_JOIN && !valid_seed(arg)) {
        rk_kvctl_err("join: bad seed address '%s': use tcp://HOST:PORT, the seed's gossip "
                     "address (its listen.gossip, e.g. tcp://10.0.0.1:7402)",
                     show_key(arg, kb, sizeof kb));
        return RK_EXIT_USAGE;
    }
    bool had_seed = false;
    long before = cmd->op == RK_OP_JOIN ? count_members(o, arg, &had_seed) : 0;
    if (before < 0)
        return RK_EXIT_CLUSTER;
    struct rk_client *c = open_client(o, cmd->name, &code);
    if (c == NULL)
        return code;
    int rv = rk_client_admin_arg(c, (enum rk_op)cmd->op, arg, a->force, &json);
    const struct listing *l = find_listing(cmd->op);
    if (rv != 0) {
        rk_kvctl_err("%s: %s", cmd->name, rk_client_error(c));
        code = member_exit_code(rv);
    } else if (l != NULL) {
        code = print_listing(cmd, l, json, o->json);
    } else if (cmd->op == RK_OP_JOIN && had_seed) {
        printf("%s is already a member's gossip address: nothing to join\n", arg);
    } else {
        if (cmd->op != RK_OP_JOIN || o->json)
            print_member_reply(json, o->json);
        if (cmd->op == RK_OP_LEAVE && !a->no_wait)
            code = leave_wait(o, c);
        if (cmd->op == RK_OP_JOIN)
            code = join_wait(o, arg, before);
    }
    free(json);
    rk_client_close(c);
    return code;
}

/* ---- anti-entropy: ae, repair ---- */

#define AE_POLL_MS      500           /* repair --wait: how often it asks */
#define AE_WAIT_DEFAULT (10 * 60000u) /* repair --wait: 10 minutes */

enum { A_PART, A_REPLICAS, A_LAST, A_DIFF, A_REPAIRED, A_MARKS, A_COLS };

static const char *const ae_head[A_COLS] = {"PARTITION",   "REPLICAS",      "LAST-EXCHANGE",
                                            "DIFFERENCES", "KEYS-REPAIRED", "MARKS"};
static_assert(A_COLS <= TABLE_MAX_COLS, "print_table: too many columns");

static uint64_t ae_u64(const struct rk_ajson *w, const char *path)
{
    uint64_t v = 0;
    rk_ajson_u64(rk_ajson_path(rk_ajson_root(w), path), &v);
    return v;
}

/* "12s ago (ok)", by the node's clock (its now_ms), or "never". */
static char *ago_cell(const struct rk_ajson *w, uint64_t at, const char *result)
{
    uint64_t now = ae_u64(w, "now_ms");
    if (at == 0)
        return xasprintf("never");
    uint64_t s = now > at ? (now - at) / 1000 : 0;
    return xasprintf("%llu%s ago (%s)", (unsigned long long)(s < 3600 ? s : s / 3600),
                     s < 3600 ? "s" : "h", or_dash(result));
}

/* Elements of array v joined by sep into one cell. */
static char *join_cell(const struct rk_ajson_val *v, const char *sep)
{
    struct rk_jbuf b = {0};
    size_t k = 0;
    for (const struct rk_ajson_val *c = rk_ajson_first(v); c != NULL; c = rk_ajson_next(c))
        rk_jadd(&b, "%s%s", k++ ? sep : "", or_dash(rk_ajson_text(c)));
    if (b.oom)
        rk_kvctl_oom();
    char *s = xasprintf("%s", k ? b.p : "-");
    free(b.p);
    return s;
}

static void ae_row(const struct rk_ajson *w, size_t k, char **cell)
{
    char path[64];
    const struct rk_ajson_val *row =
        rk_ajson_index(rk_ajson_member(rk_ajson_root(w), "partitions"), k);
    snprintf(path, sizeof path, "partitions.%zu.last_exchange_ms", k);
    cell[A_PART] = xasprintf("%s", or_dash(elem_field(w, "partitions", k, "partition")));
    cell[A_REPLICAS] = join_cell(rk_ajson_member(row, "replicas"), ",");
    cell[A_LAST] = ago_cell(w, ae_u64(w, path), elem_field(w, "partitions", k, "last_result"));
    cell[A_DIFF] = xasprintf("%s", or_dash(elem_field(w, "partitions", k, "leaves_differing")));
    cell[A_REPAIRED] = xasprintf("%s", or_dash(elem_field(w, "partitions", k, "keys_repaired")));
    cell[A_MARKS] = join_cell(rk_ajson_member(row, "marks"), ",");
}

/* "round 3 in progress: 120/256 partitions compared, ..." */
static void print_ae_summary(const struct rk_ajson *w)
{
    uint64_t round = ae_u64(w, "round.number"), fin = ae_u64(w, "round.finished_ms");
    const char *eta = rk_ajson_text(rk_ajson_path(rk_ajson_root(w), "round.eta_s"));
    bool running = strcmp(or_dash(field(w, "exchanges_running")), "true") == 0;
    bool active =
        strcmp(or_dash(rk_ajson_text(rk_ajson_path(rk_ajson_root(w), "round.in_progress"))),
               "true") == 0;
    printf("%s: round %llu ", or_dash(field(w, "node")), (unsigned long long)round);
    if (active)
        printf("in progress");
    else if (round == 0)
        printf("not started (never compared)");
    else
        printf("finished %llus ago", (unsigned long long)(ae_u64(w, "now_ms") - fin) / 1000);
    printf(": %llu/%llu partitions compared, %llu leaves differing, %llu keys repaired "
           "(%s keys/s), ETA %s%s; %llu marked; %s\n",
           (unsigned long long)ae_u64(w, "round.partitions_compared"),
           (unsigned long long)ae_u64(w, "round.partitions_total"),
           (unsigned long long)ae_u64(w, "round.leaves_differing"),
           (unsigned long long)(ae_u64(w, "round.keys_pulled") + ae_u64(w, "round.keys_pushed")),
           or_dash(rk_ajson_text(rk_ajson_path(rk_ajson_root(w), "round.keys_per_second"))),
           eta && strcmp(eta, "null") != 0 ? eta : "-", eta && strcmp(eta, "null") != 0 ? "s" : "",
           (unsigned long long)ae_u64(w, "marked_partitions"),
           strcmp(or_dash(field(w, "enabled")), "true") != 0 ? "disabled (antientropy.enabled)"
           : running                                         ? "exchanges running"
                                                             : "between rounds");
}

static void print_ae(const struct rk_ajson *w, size_t n)
{
    print_ae_summary(w);
    print_table(ae_head, A_COLS, w, n, ae_row);
}

/* A partition number from the command line: 0 or exit 2 after the line. */
static int parse_partition(const char *opt, const char *s, char *out, size_t n)
{
    uint64_t v;
    if (rk_kvctl_parse_uint(s, 0, 65535, &v) != 0) {
        rk_kvctl_bad_value(opt, s, "a partition number, 0..65535");
        return RK_EXIT_USAGE;
    }
    snprintf(out, n, "%llu", (unsigned long long)v);
    return RK_EXIT_OK;
}

/* One request; on failure the error line and the exit code. */
static int admin_call(struct rk_client *c, const char *name, enum rk_op op, const char *arg,
                      char **json)
{
    int rv = rk_client_admin_arg(c, op, arg, false, json);
    if (rv == 0)
        return RK_EXIT_OK;
    rk_kvctl_err("%s: %s", name, rk_client_error(c));
    return rv == RK_EREFUSED ? RK_EXIT_USAGE : rk_kvctl_exit_code(rv);
}

static int cmd_ae(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct cmd_args *a)
{
    static const struct listing l = {RK_OP_AE, "partitions", "partition", "last_result", print_ae};
    char part[16], *json = NULL;
    int code = a->partition ? parse_partition("--partition", a->partition, part, sizeof part) : 0;
    if (code != RK_EXIT_OK)
        return code;
    struct rk_client *c = open_client(o, cmd->name, &code);
    if (c == NULL)
        return code;
    code = admin_call(c, cmd->name, RK_OP_AE, a->partition ? part : NULL, &json);
    if (code == RK_EXIT_OK)
        code = print_listing(cmd, &l, json, o->json);
    free(json);
    rk_client_close(c);
    return code;
}

/* Whether every partition in an AE reply has exchanged with all its other
 * replicas since since_ms (its watermark is past it). */
static bool ae_all_since(const struct rk_ajson *w, size_t n, uint64_t since_ms)
{
    char path[64];
    for (size_t k = 0; k < n; k++) {
        snprintf(path, sizeof path, "partitions.%zu.watermark_ms", k);
        if (ae_u64(w, path) <= since_ms)
            return false;
    }
    return true;
}

static void ms_sleep(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One poll of `ae` for repair --wait: 1 done (printed), 0 not yet, or
 * -exit code after the error line. */
static int repair_poll(const struct rk_kvctl_opts *o, struct rk_client *c, const char *part,
                       uint64_t since_ms)
{
    char *json = NULL;
    int code = admin_call(c, "repair", RK_OP_AE, part, &json);
    if (code != RK_EXIT_OK)
        return -code;
    struct rk_ajson *doc = parse_reply(json);
    long n = doc != NULL ? array_rows(doc, "partitions", "partition", "last_result") : -1;
    int done = 0;
    if (n < 0) {
        rk_kvctl_err("repair: the node sent a reply kvctl cannot read (kvctl and ringkvd "
                     "versions differ?)");
        done = -RK_EXIT_CLUSTER;
    } else if (strcmp(or_dash(field(doc, "enabled")), "true") != 0) {
        rk_kvctl_err("repair: anti-entropy is disabled on %s (antientropy.enabled = false): "
                     "the partitions stay marked; enable it and reload (SIGHUP) to repair",
                     or_dash(field(doc, "node")));
        done = -RK_EXIT_CLUSTER;
    } else if (ae_all_since(doc, (size_t)n, since_ms)) {
        if (o->json)
            print_compact(json);
        else
            print_ae(doc, (size_t)n);
        done = 1;
    }
    rk_ajson_free(doc);
    free(json);
    return done;
}

/* repair --wait: poll until every partition asked for exchanged with all
 * its other replicas after the request (the node's requested_ms), or the
 * deadline passes. */
static int repair_wait(const struct rk_kvctl_opts *o, struct rk_client *c, const char *part,
                       uint64_t since_ms, uint64_t wait_ms, const char *wait_text)
{
    uint64_t deadline = mono_ms() + wait_ms;
    for (;;) {
        int rv = repair_poll(o, c, part, since_ms);
        if (rv != 0)
            return rv > 0 ? RK_EXIT_OK : -rv;
        if (mono_ms() >= deadline)
            break;
        ms_sleep(AE_POLL_MS);
    }
    rk_kvctl_err("repair %s: not done after %s: no exchange with every other replica since the "
                 "request (replicas down or unreachable?); %s stays marked",
                 part ? part : "(all)", wait_text, part ? "the partition" : "each partition");
    return RK_EXIT_CLUSTER;
}

static int cmd_repair(const struct rk_kvctl_opts *o, const struct cmd *cmd, struct cmd_args *a)
{
    char part[16], *json = NULL;
    const char *arg = a->npos > 0 ? part : NULL;
    uint64_t wait_ms = AE_WAIT_DEFAULT;
    int code = a->npos > 0 ? parse_partition("PARTITION", a->pos[0], part, sizeof part) : 0;
    if (code != RK_EXIT_OK)
        return code;
    if (a->wait_timeout && rk_client_parse_ms(a->wait_timeout, &wait_ms) != 0)
        return rk_kvctl_bad_value("--wait-timeout", a->wait_timeout, "a duration: 30s, 5m, 1h"),
               RK_EXIT_USAGE;
    struct rk_client *c = open_client(o, cmd->name, &code);
    if (c == NULL)
        return code;
    code = admin_call(c, cmd->name, RK_OP_REPAIR, arg, &json);
    struct rk_ajson *doc = code == RK_EXIT_OK ? parse_reply(json) : NULL;
    uint64_t since = doc != NULL ? ae_u64(doc, "requested_ms") : 0;
    if (code == RK_EXIT_OK && (doc == NULL || since == 0)) {
        rk_kvctl_err("repair: the node sent a reply kvctl cannot read (kvctl and ringkvd "
                     "versions differ?)");
        code = RK_EXIT_CLUSTER;
    } else if (code == RK_EXIT_OK && !a->wait) {
        print_member_reply(json, o->json);
    } else if (code == RK_EXIT_OK) {
        code = repair_wait(o, c, arg, since, wait_ms, a->wait_timeout ? a->wait_timeout : "10m");
    }
    rk_ajson_free(doc);
    free(json);
    rk_client_close(c);
    return code;
}

static const struct cmd commands[] = {
    {"put", "put KEY VALUE [--ttl DUR]",
     "Store VALUE under KEY. VALUE \"-\" reads the value from stdin (binary-safe).\n"
     "  --ttl DUR   the key expires DUR after the write (30s, 5m, 1h)\n"
     "Prints nothing; with --json {\"key\":..,\"version\":..}.",
     2, 2, CMD_TTL, 0, cmd_put},
    {"get", "get KEY",
     "Print the value of KEY as raw bytes; exit 1 if absent. A newline follows the\n"
     "value only when stdout is a terminal, so a pipe or file gets the exact bytes.\n"
     "With --json: {\"key\",\"value\",\"value_base64\" (if not UTF-8),\"version\",\"expiry_ms\",\n"
     "\"coordinator\",\"replicas\"}: the node that served the read and each replica it\n"
     "asked with the version it returned, or \"missing\", or an \"error\" (a node that\n"
     "does not trace reads leaves the two out). If absent, --json prints\n"
     "{\"key\",\"found\":false} (with \"coordinator\",\"replicas\" when the node traced\n"
     "the read) and exits 1.",
     1, 1, 0, 0, cmd_get},
    {"del", "del KEY", "Delete KEY (absent keys are not an error). --json prints the version.", 1,
     1, 0, 0, cmd_del},
    {"status", "status", "Print the node's status.", 0, 0, 0, RK_OP_STATUS, cmd_admin},
    {"stats", "stats", "Print the node's statistics.", 0, 0, 0, RK_OP_STATS, cmd_admin},
    {"health", "health", "Probe: exit 0 if the node is healthy, 1 if not.", 0, 0, false,
     RK_OP_HEALTH, cmd_admin},
    {"ready", "ready", "Probe: exit 0 if the node is ready for traffic, 1 if not.", 0, 0, false,
     RK_OP_READY, cmd_admin},
    {"members", "members",
     "Print the node's view of the cluster: one row per member (* = this node) with\n"
     "its state, incarnation, when it was last heard from, round-trip time, whether\n"
     "its settings match this node's, and its client and gossip addresses; then a\n"
     "count by state and any peer refused because a setting differs.\n"
     "With --json: the node's reply object on one line.",
     0, 0, 0, RK_OP_MEMBERS, cmd_member},
    {"join", "join SEED_ADDR",
     "Make the node join the cluster that SEED_ADDR belongs to. SEED_ADDR is a\n"
     "member's gossip address, tcp://HOST:PORT (its listen.gossip). Waits (up to 5s,\n"
     "or --timeout if longer) until the node has heard from a new member; exit 3 if\n"
     "none answered.",
     1, 1, 0, RK_OP_JOIN, cmd_member},
    {"leave", "leave [--no-wait]",
     "Make the node leave the cluster: it hands every partition it holds to the members\n"
     "taking it over, then announces its departure and stops. Prints progress until it\n"
     "stopped, unless --no-wait.",
     0, 0, CMD_NOWAIT, RK_OP_LEAVE, cmd_member},
    {"remove", "remove NODE_ID [--force]",
     "Take member NODE_ID out of the cluster; ask any other member. Only a member\n"
     "that is dead or has left is removed unless\n"
     "  --force   remove it whatever its state (a live node must be stopped first)\n"
     "Exit 2 if the node refuses or knows no member NODE_ID.",
     1, 1, CMD_FORCE, RK_OP_REMOVE, cmd_member},
    {"locate", "locate KEY",
     "Print the partition KEY hashes to and its preference list: the nodes that hold\n"
     "it, in order, each with its state:\n"
     "  partition 12: node-2 (alive), node-3 (alive), node-1 (alive)\n"
     "With --json: the node's reply object on one line.",
     1, 1, 0, RK_OP_LOCATE, cmd_member},
    {"ring", "ring",
     "Print the ring as this node sees it: one row per member with its state, the\n"
     "partitions it is first in the preference list of (PRIMARY) and those it holds\n"
     "a replica of, primaries included (REPLICA); then the number of partitions, the\n"
     "replication factor and the ring's digest (equal digests = the same ring).\n"
     "With --json: the node's reply object on one line.",
     0, 0, 0, RK_OP_RING, cmd_member},
    {"ae", "ae [--partition P]",
     "Print anti-entropy progress: one summary line (the round, partitions compared,\n"
     "leaves differing, keys repaired, rate and ETA, partitions marked), then a row\n"
     "per partition the node holds: its replicas, the last exchange and its result,\n"
     "leaves found differing and keys repaired (ever), and why it is marked.\n"
     "  --partition P   only partition P (whether the node holds it or not)\n"
     "Kept in the node's data dir: a restart shows the same round.\n"
     "With --json: the node's reply object on one line.",
     0, 0, CMD_PARTITION, RK_OP_AE, cmd_ae},
    {"repair", "repair [PARTITION] [--wait] [--wait-timeout DUR]",
     "Mark PARTITION (default: every partition the node holds) to go first in\n"
     "anti-entropy. Exit 2 if the node holds no replica of PARTITION.\n"
     "  --wait               then wait until every other replica of it exchanged with\n"
     "                       this node after the request, and print what was repaired\n"
     "  --wait-timeout DUR   give up waiting after DUR (default 10m): exit 3",
     0, 1, CMD_WAIT, RK_OP_REPAIR, cmd_repair},
};

/* If argv[*i] is one of cmd's own options, record it in a and return 1
 * with *i on its last word; 0 if it is not one; -1 after an error line. */
static int cmd_opt(const struct cmd *cmd, struct cmd_args *a, int argc, char **argv, int *i)
{
    if ((cmd->opts & CMD_FORCE) && strcmp(argv[*i], "--force") == 0) {
        a->force = true;
        return 1;
    }
    if ((cmd->opts & CMD_NOWAIT) && strcmp(argv[*i], "--no-wait") == 0) {
        a->no_wait = true;
        return 1;
    }
    if ((cmd->opts & CMD_WAIT) && strcmp(argv[*i], "--wait") == 0) {
        a->wait = true;
        return 1;
    }
    if (cmd->opts & CMD_WAIT)
        return rk_kvctl_opt_value("--wait-timeout", argc, argv, i, &a->wait_timeout);
    if (cmd->opts & CMD_PARTITION)
        return rk_kvctl_opt_value("--partition", argc, argv, i, &a->partition);
    if (cmd->opts & CMD_TTL)
        return rk_kvctl_opt_value("--ttl", argc, argv, i, &a->ttl);
    return 0;
}

/* The name of positional argument k (0-based) in cmd's synopsis: "KEY". */
static const char *arg_name(const struct cmd *cmd, int k, char *buf, size_t n)
{
    const char *s = cmd->synopsis;
    for (int j = 0; j <= k; j++) {
        s += strcspn(s, " ");
        s += strspn(s, " ");
    }
    snprintf(buf, n, "%.*s", (int)strcspn(s, " "), s);
    return buf;
}

/* Parse the words after the command; 0 ok, 1 help printed, -1 error. */
static int parse_cmd_args(struct rk_kvctl_opts *o, const struct cmd *cmd, int argc, char **argv,
                          struct cmd_args *a)
{
    bool opts = true;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (opts && s[0] == '-' && s[1] != '\0') {
            if (strcmp(s, "--") == 0) {
                opts = false;
                continue;
            }
            if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
                cmd_usage(stdout, cmd);
                return 1;
            }
            int rv = rk_kvctl_global_opt(o, argc, argv, &i);
            if (rv == 0)
                rv = cmd_opt(cmd, a, argc, argv, &i);
            if (rv == 0)
                rk_kvctl_err("%s: unknown option '%s' (see kvctl %s --help; use -- before "
                             "an argument that starts with '-')",
                             cmd->name, s, cmd->name);
            if (rv <= 0)
                return -1;
            continue;
        }
        if (a->npos == cmd->maxpos) {
            rk_kvctl_err("%s: unexpected argument '%s' (usage: kvctl %s)", cmd->name, s,
                         cmd->synopsis);
            return -1;
        }
        a->pos[a->npos++] = s;
    }
    if (a->npos < cmd->minpos) {
        char name[32];
        rk_kvctl_err("%s: missing %s (usage: kvctl %s)", cmd->name,
                     arg_name(cmd, a->npos, name, sizeof name), cmd->synopsis);
        return -1;
    }
    return 0;
}

static int run_command(struct rk_kvctl_opts *o, int argc, char **argv);

/* kvctl help [COMMAND]: the overview, or COMMAND's own help (as COMMAND
 * --help prints it). */
static int cmd_help(struct rk_kvctl_opts *o, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, stdout);
        return RK_EXIT_OK;
    }
    if (argc > 2) {
        rk_kvctl_err("help: one COMMAND at most (usage: kvctl help [COMMAND])");
        return RK_EXIT_USAGE;
    }
    char *args[] = {argv[1], "--help", NULL};
    return run_command(o, 2, args);
}

static int run_command(struct rk_kvctl_opts *o, int argc, char **argv)
{
    const char *name = argv[0];
    if (strcmp(name, "help") == 0)
        return cmd_help(o, argc, argv);
    if (strcmp(name, "bench") == 0)
        return rk_bench_main(o, argc, argv);
    if (strcmp(name, "plan") == 0)
        return rk_plan_main(o, argc, argv);
    if (strcmp(name, "transfers") == 0)
        return rk_transfers_main(o, argc, argv);
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(name, commands[k].name) != 0)
            continue;
        struct cmd_args a = {0};
        int rv = parse_cmd_args(o, &commands[k], argc, argv, &a);
        if (rv != 0)
            return rv > 0 ? RK_EXIT_OK : RK_EXIT_USAGE;
        if (a.npos > 0 && a.pos[0][0] == '\0') {
            char arg[32];
            arg_name(&commands[k], 0, arg, sizeof arg);
            rk_kvctl_err("%s: %s is empty; give a non-empty %s", name, arg, arg);
            return RK_EXIT_USAGE;
        }
        return commands[k].run(o, &commands[k], &a);
    }
    rk_kvctl_err("unknown command '%s' (see kvctl --help)", name);
    return RK_EXIT_USAGE;
}

/* With fd 0, 1 or 2 closed, nng's sockets would take those numbers and a
 * value written to "stdout" would land in one of them: park /dev/null
 * there first. */
static void guard_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n >= 0 && n != fd) { /* not expected: lower fds are open by now */
            dup2(n, fd);
            close(n);
        }
    }
}

int main(int argc, char **argv)
{
    guard_std_fds();
    const char *env = getenv("KVCTL_ADDR");
    struct rk_kvctl_opts o = {.addr = env != NULL && env[0] != '\0' ? env : DEFAULT_ADDR,
                              .timeout_ms = DEFAULT_TIMEOUT_MS};
    const char *secret = getenv("KVCTL_SECRET_FILE");
    if (secret && secret[0] && rk_kvctl_load_secret(&o, "$KVCTL_SECRET_FILE", secret) < 0)
        return RK_EXIT_USAGE;
    rk_kvctl_tls_env(&o);
    int i = 1;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] != '-' || s[1] == '\0')
            break;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(usage_text, stdout);
            return RK_EXIT_OK;
        }
        if (strcmp(s, "--version") == 0) {
            printf("kvctl %s (ringkv protocol %u)\n", RINGKV_VERSION, RK_PROTO_VERSION);
            return RK_EXIT_OK;
        }
        int rv = rk_kvctl_global_opt(&o, argc, argv, &i);
        if (rv == 0)
            rk_kvctl_err("unknown option '%s' (see kvctl --help)", s);
        if (rv <= 0)
            return RK_EXIT_USAGE;
    }
    if (i == argc) {
        rk_kvctl_err("no command given (see kvctl --help)");
        return RK_EXIT_USAGE;
    }
    return run_command(&o, argc - i, argv + i);
}

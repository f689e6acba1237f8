/* Node configuration (contract in config.h). One table, `keys`, holds a row
 * per setting: its dotted name, type, default, limits and field. Loading,
 * defaults, validation, reload diffs and the test that etc/ringkv.toml
 * documents every setting all walk that table, so a new setting is a new
 * field plus one row (and its lines in etc/ringkv.toml). */
#include "config/config.h"
#include "config/toml.h"
#include "util/auth.h"
#include "util/err.h"
#include "util/ident.h"
#include "util/tls.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum ktype {
    K_STR,  /* string into a char array */
    K_UINT, /* TOML integer */
    K_BOOL,
    K_DUR,  /* "250ms", "30s", "5m", "1h" → milliseconds */
    K_SIZE, /* "512B", "1KiB", "64MiB", "1GiB" → bytes */
    K_ENUM, /* one of names[]; stored as its index */
    K_STRS, /* array of strings (cluster.seeds) */
};

enum {
    F_LIVE = 1,     /* SIGHUP applies it without a restart */
    F_POW2 = 2,     /* a power of two */
    F_NONEMPTY = 4, /* a string (or each string of an array) must not be "" */
    F_IDENT = 8,    /* a string, unless "", is an identifier (util/ident.h) */
    F_SECRET = 16,  /* a string, unless "", names a secret file fit for use (util/auth.h) */
};

struct key {
    const char *name; /* "storage.fsync": [table] and key */
    enum ktype type;
    size_t off, width; /* field in struct rk_config; width 1 = bool, 4 or 8 = integer */
    const char *def;   /* default, spelled as in the TOML file (no quotes) */
    uint64_t min, max; /* numbers: inclusive range (ms, bytes); K_STRS: entries */
    unsigned flags;
    const char *const *names; /* K_ENUM: value i is spelled names[i]; NULL-terminated */
    size_t elem, count_off;   /* K_STRS: bytes per string, offset of the uint32_t count */
    /* A K_STR the file may name but the node does not implement yet: any
     * value but "" is refused naming what is missing, never ignored. */
    const char *later;
};

#define AT(f)           .off = offsetof(struct rk_config, f), .width = sizeof(((struct rk_config *)0)->f)
#define ROW(n, t, f, d) .name = n, .type = t, AT(f), .def = d

#define SEC  UINT64_C(1000)
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define KIB  UINT64_C(1024)
#define MIB  (1024 * KIB)
#define GIB  (1024 * MIB)
#define TIB  (1024 * GIB)

static const char *const fsync_names[] = {"always", "interval", "never", NULL};
static const char *const compression_names[] = {"none", "lz4", NULL}; /* index = bool */
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"text", "json", NULL};

static_assert(RK_FSYNC_ALWAYS == 0 && RK_FSYNC_INTERVAL == 1 && RK_FSYNC_NEVER == 2,
              "fsync_names follows enum rk_fsync");
static_assert(RK_LOG_DEBUG == 0 && RK_LOG_INFO == 1 && RK_LOG_WARN == 2 && RK_LOG_ERROR == 3,
              "level_names follows enum rk_log_level");
static_assert(RK_LOG_TEXT == 0 && RK_LOG_JSON == 1, "format_names follows enum rk_log_format");
static_assert(sizeof(enum rk_fsync) == 4 && sizeof(enum rk_log_level) == 4 &&
                  sizeof(enum rk_log_format) == 4,
              "enum fields are stored as 4-byte integers");

/* Ranges are what the code can honour plus a margin against typos (a
 * gossip interval of 10 minutes is an error, not a choice). */
static const struct key keys[] = {
    {ROW("node.id", K_STR, node_id, ""), .flags = F_IDENT},
    {ROW("node.data_dir", K_STR, data_dir, "./ringkv-data"), .flags = F_NONEMPTY},
    {ROW("node.workers", K_UINT, workers, "0"), .min = 0, .max = 1024},
    {ROW("node.pin_workers", K_BOOL, pin_workers, "true")},
    {ROW("listen.client", K_STR, listen_client, "tcp://0.0.0.0:7400"), .flags = F_NONEMPTY},
    {ROW("listen.peer", K_STR, listen_peer, "tcp://0.0.0.0:7401"), .flags = F_NONEMPTY},
    {ROW("listen.gossip", K_STR, listen_gossip, "tcp://0.0.0.0:7402"), .flags = F_NONEMPTY},
    {ROW("listen.http", K_STR, listen_http, "127.0.0.1:7480")},
    {ROW("listen.advertise", K_STR, advertise, "127.0.0.1"), .flags = F_NONEMPTY},
    {ROW("cluster.name", K_STR, cluster_name, "default"), .flags = F_NONEMPTY},
    {ROW("cluster.seeds", K_STRS, seeds, "tcp://127.0.0.1:7402"), .min = 0,
     .max = RK_CONFIG_MAX_SEEDS, .flags = F_NONEMPTY,
     .elem = sizeof(((struct rk_config *)0)->seeds[0]),
     .count_off = offsetof(struct rk_config, nseeds)},
    {ROW("cluster.partitions", K_UINT, partitions, "256"), .min = 1,
     .max = RK_CONFIG_PARTITIONS_MAX, .flags = F_POW2},
    {ROW("cluster.replicas", K_UINT, replicas, "3"), .min = 1, .max = 16},
    {ROW("cluster.read_quorum", K_UINT, read_quorum, "2"), .min = 1, .max = 16},
    {ROW("cluster.write_quorum", K_UINT, write_quorum, "2"), .min = 1, .max = 16},
    {ROW("cluster.expect_nodes", K_UINT, expect_nodes, "3"), .min = 1, .max = 65536},
    {ROW("cluster.auto_remove_after", K_DUR, auto_remove_after_ms, "0s"), .min = 0,
     .max = 30 * 24 * HOUR},
    {ROW("cluster.request_timeout", K_DUR, request_timeout_ms, "1s"), .min = 10, .max = MIN},
    {ROW("cluster.max_clock_skew", K_DUR, max_clock_skew_ms, "500ms"), .min = 1, .max = HOUR},
    {ROW("gossip.interval", K_DUR, gossip_interval_ms, "1s"), .min = 10, .max = MIN},
    {ROW("gossip.suspect_after", K_DUR, suspect_after_ms, "3s"), .min = 10, .max = HOUR},
    {ROW("gossip.dead_after", K_DUR, dead_after_ms, "10s"), .min = 10, .max = 24 * HOUR},
    {ROW("storage.fsync", K_ENUM, fsync, "always"), .names = fsync_names},
    {ROW("storage.fsync_interval", K_DUR, fsync_interval_ms, "10ms"), .min = 1, .max = 10 * SEC},
    {ROW("storage.segment_size", K_SIZE, segment_size, "64MiB"), .min = MIB, .max = GIB},
    {ROW("storage.compression", K_ENUM, compression, "lz4"), .names = compression_names},
    {ROW("storage.max_key_size", K_SIZE, max_key_size, "1KiB"), .min = 1, .max = RK_CONFIG_KEY_MAX},
    {ROW("storage.max_value_size", K_SIZE, max_value_size, "1MiB"), .min = 0,
     .max = RK_CONFIG_VALUE_MAX},
    /* Not live: every segment's purge schedule is computed from it. Past
     * hints.max_age's own maximum (30 days), with room. */
    {ROW("storage.tombstone_grace", K_DUR, tombstone_grace_ms, "24h"), .min = SEC,
     .max = 90 * 24 * HOUR},
    {ROW("hints.max_bytes_per_target", K_SIZE, hints_max_bytes, "64MiB"), .min = 0,
     .max = 1024 * GIB},
    {ROW("hints.max_age", K_DUR, hints_max_age_ms, "3h"), .min = SEC, .max = 30 * 24 * HOUR},
    {ROW("antientropy.enabled", K_BOOL, ae_enabled, "true"), .flags = F_LIVE},
    {ROW("antientropy.interval", K_DUR, ae_interval_ms, "30s"), .min = SEC, .max = 24 * HOUR,
     .flags = F_LIVE},
    {ROW("antientropy.max_keys_per_second", K_UINT, ae_max_keys_per_second, "50000"), .min = 1,
     .max = 100000000, .flags = F_LIVE},
    /* 0 = no byte budget (the key budget still holds); 64 GiB/s is past
     * any disk or link a node has, so more is a typo. */
    {ROW("antientropy.max_bytes_per_second", K_SIZE, ae_max_bytes_per_second, "32MiB"), .min = 0,
     .max = 64 * GIB, .flags = F_LIVE},
    /* Partitions this node receives at once, and the bytes per second it
     * pulls for them (0 = no limit; 64 GiB/s as above). */
    {ROW("transfers.max_concurrent", K_UINT, xfer_max_concurrent, "2"), .min = 1, .max = 1024,
     .flags = F_LIVE},
    {ROW("transfers.max_bytes_per_second", K_SIZE, xfer_max_bytes_per_second, "64MiB"), .min = 0,
     .max = 64 * GIB, .flags = F_LIVE},
    {ROW("limits.max_inflight", K_UINT, max_inflight, "10000"), .min = 1, .max = 10000000,
     .flags = F_LIVE},
    /* Client requests per second per client address (token buckets,
     * util/ratelimit.h), and the bucket's size; 0 = off / one second's
     * worth. */
    {ROW("limits.client_rate", K_UINT, client_rate, "0"), .min = 0, .max = 100000000,
     .flags = F_LIVE},
    {ROW("limits.client_burst", K_UINT, client_burst, "0"), .min = 0, .max = 100000000,
     .flags = F_LIVE},
    /* A connection costs a descriptor and, stalled mid-message, up to one
     * message of memory: 65536 is far past what one node serves usefully. */
    {ROW("limits.max_connections", K_UINT, max_connections, "256"), .min = 1, .max = 65536,
     .flags = F_LIVE},
    /* Peers, and admin requests that change the cluster, prove the secret
     * in every message (util/auth.h); with client_auth, clients do too. */
    {ROW("security.secret_file", K_STR, secret_file, ""), .flags = F_SECRET},
    {ROW("security.client_auth", K_BOOL, client_auth, "false")},
    /* Without a secret, connections from other hosts are refused unless
     * this is true (util/conns.h: protected mode). */
    {ROW("security.allow_unauthenticated", K_BOOL, allow_unauthenticated, "false")},
    /* All three or none; the files are checked with the rest (tls_rule). */
    {ROW("security.tls_cert", K_STR, tls_cert, "")},
    {ROW("security.tls_key", K_STR, tls_key, "")},
    {ROW("security.tls_ca", K_STR, tls_ca, "")},
    {ROW("log.level", K_ENUM, log_level, "info"), .names = level_names, .flags = F_LIVE},
    {ROW("log.format", K_ENUM, log_format, "text"), .names = format_names, .flags = F_LIVE},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* ---- fields ---- */

static uint64_t get_num(const struct rk_config *c, const struct key *k)
{
    const char *f = (const char *)c + k->off;
    bool b;
    uint32_t u32;
    uint64_t u64;
    switch (k->width) {
    case 1:
        memcpy(&b, f, 1);
        return b;
    case 4:
        memcpy(&u32, f, 4);
        return u32;
    default:
        memcpy(&u64, f, 8);
        return u64;
    }
}

/* The range checks ran first, so x fits the field. */
static void set_num(struct rk_config *c, const struct key *k, uint64_t x)
{
    char *f = (char *)c + k->off;
    bool b = x != 0;
    uint32_t u32 = (uint32_t)x;
    if (k->width == 1)
        memcpy(f, &b, 1);
    else if (k->width == 4)
        memcpy(f, &u32, 4);
    else
        memcpy(f, &x, 8);
}

static void set_str(char *f, size_t width, const char *s, size_t len)
{
    memset(f, 0, width);
    memcpy(f, s, len < width ? len : width - 1);
}

static uint32_t get_count(const struct rk_config *c, const struct key *k)
{
    uint32_t n;
    memcpy(&n, (const char *)c + k->count_off, sizeof(n));
    return n;
}

/* ---- durations and sizes ---- */

/* "250ms", "30s", "5m", "1h", or a sum of them ("1m30s"), in ms. -1 if
 * malformed; a sum past 64 bits saturates (the range check reports it). */
static int parse_duration(const char *s, uint64_t *out)
{
    uint64_t total = 0;
    if (!*s)
        return -1;
    while (*s) {
        uint64_t n = 0, unit;
        if (*s < '0' || *s > '9')
            return -1;
        for (; *s >= '0' && *s <= '9'; s++)
            n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + (uint64_t)(*s - '0');
        if (strncmp(s, "ms", 2) == 0)
            unit = 1, s += 2;
        else if (*s == 's' || *s == 'm' || *s == 'h')
            unit = *s == 's' ? SEC : *s == 'm' ? MIN : HOUR, s++;
        else
            return -1;
        total = n > (UINT64_MAX - total) / unit ? UINT64_MAX : total + n * unit;
    }
    *out = total;
    return 0;
}

/* "512B", "1KiB", "64MiB", "1GiB", "1TiB" in bytes. -1 if malformed, -2
 * for decimal units (KB, MB, ...), which are refused as ambiguous. */
static int parse_size(const char *s, uint64_t *out)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    static const char *const decimal[] = {"K", "KB", "kB", "k", "M", "MB", "G", "GB", "T", "TB"};
    uint64_t n = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++)
        n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + (uint64_t)(*s - '0');
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, units[i]) == 0) {
            uint64_t unit = 1ull << (10 * i);
            *out = n > UINT64_MAX / unit ? UINT64_MAX : n * unit;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(decimal) / sizeof(decimal[0]); i++)
        if (strcmp(s, decimal[i]) == 0)
            return -2;
    return -1;
}

/* The largest unit that divides ms exactly: 3600000 → "1h", 1500 → "1500ms". */
static void fmt_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms && ms % HOUR == 0)
        snprintf(buf, len, "%" PRIu64 "h", ms / HOUR);
    else if (ms && ms % MIN == 0)
        snprintf(buf, len, "%" PRIu64 "m", ms / MIN);
    else if (ms % SEC == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / SEC);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
}

static void fmt_size(uint64_t b, char *buf, size_t len)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        uint64_t unit = 1ull << (10 * (4 - i));
        if (b && b % unit == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", b / unit, units[i]);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64 "B", b);
}

static void fmt_num(const struct key *k, uint64_t x, char *buf, size_t len)
{
    if (k->type == K_DUR)
        fmt_duration(x, buf, len);
    else if (k->type == K_SIZE)
        fmt_size(x, buf, len);
    else
        snprintf(buf, len, "%" PRIu64, x);
}

/* Range and power-of-two checks of a number; shown is the value as the
 * user wrote it. 0, or -1 with msg. */
static int check_num(const struct key *k, uint64_t x, const char *shown, char *msg, size_t len)
{
    char lo[32], hi[32];
    fmt_num(k, k->min, lo, sizeof(lo));
    fmt_num(k, k->max, hi, sizeof(hi));
    if (x < k->min || x > k->max) {
        snprintf(msg, len, "%s = %s is out of range: %s..%s", k->name, shown, lo, hi);
        return -1;
    }
    if ((k->flags & F_POW2) && (x & (x - 1))) {
        snprintf(msg, len, "%s = %s is not a power of two (1, 2, 4, ... %s)", k->name, shown, hi);
        return -1;
    }
    return 0;
}

static const char *unit_example(const struct key *k)
{
    return k->type == K_DUR ? "such as \"30s\" or \"250ms\" (units: ms, s, m, h)"
                            : "such as \"64MiB\" or \"512B\" (units: B, KiB, MiB, GiB, TiB)";
}

/* "always, interval, never" */
static void enum_list(const struct key *k, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; k->names[i] && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", k->names[i]);
}

static int enum_index(const struct key *k, const char *s)
{
    for (int i = 0; k->names[i]; i++)
        if (strcmp(k->names[i], s) == 0)
            return i;
    return -1;
}

/* ---- suggestions ---- */

/* Optimal string alignment distance (Levenshtein plus adjacent swaps, so
 * "fsnyc" is one edit from "fsync"). Inputs past 63 bytes are cut: such a
 * key is not a typo of ours anyway. */
static unsigned edit_distance(const char *a, size_t n, const char *b, size_t m)
{
    enum { CAP = 63 };
    unsigned d[CAP + 1][CAP + 1];
    n = n > CAP ? CAP : n;
    m = m > CAP ? CAP : m;
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

static const char *leaf(const char *name)
{
    return strchr(name, '.') + 1;
}

static size_t table_len(const char *name)
{
    return (size_t)(strchr(name, '.') - name);
}

/* Close enough to be a typo: about one edit per three characters. */
static bool near(unsigned dist, size_t len)
{
    return dist <= (len / 3 > 1 ? len / 3 : 1);
}

/* The known key nearest to an unknown one (full dotted name and its last
 * part), or NULL. The last part alone also counts, one edit dearer, so a
 * key put in the wrong table ([node] fsync) still finds its home. */
static const char *nearest_key(const char *full, const char *last, size_t last_len)
{
    const char *best = NULL;
    unsigned best_d = ~0u;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *name = keys[i].name;
        unsigned d = edit_distance(full, strlen(full), name, strlen(name));
        unsigned dl = edit_distance(last, last_len, leaf(name), strlen(leaf(name))) + 1;
        if (dl < d)
            d = dl;
        if (d < best_d)
            best_d = d, best = name;
    }
    return best && near(best_d, last_len) ? best : NULL;
}

/* The table name nearest to t (n bytes), written to out, or false. */
static bool nearest_table(const char *t, size_t n, char *out, size_t len)
{
    unsigned best_d = ~0u;
    for (size_t i = 0; i < NKEYS; i++) {
        size_t tl = table_len(keys[i].name);
        unsigned d = edit_distance(t, n, keys[i].name, tl);
        if (d < best_d) {
            best_d = d;
            snprintf(out, len, "%.*s", (int)tl, keys[i].name);
        }
    }
    return near(best_d, n);
}

/* "node, listen, ..." or, with table set, the keys of that table. */
static void list_names(const char *table, size_t tlen, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NKEYS && o < len; i++) {
        const char *name = keys[i].name;
        size_t tl = table_len(name);
        if (table && (tl != tlen || memcmp(name, table, tl) != 0))
            continue;
        if (!table && i > 0 && tl == table_len(keys[i - 1].name) &&
            memcmp(name, keys[i - 1].name, tl) == 0)
            continue; /* rows are grouped by table: name each table once */
        o += (size_t)snprintf(buf + o, len - o, "%s%.*s", o ? ", " : "",
                              table ? (int)strlen(leaf(name)) : (int)tl, table ? leaf(name) : name);
    }
}

/* ---- loading ---- */

struct loader {
    struct rk_config *c;
    const char *file;
    char *err;
    size_t errlen;
    bool all;      /* go on after an error; each is a line of err (rk_config_check) */
    unsigned nerr; /* errors so far (all) */
    size_t used;   /* bytes of err used (all) */
};

/* One error line: err's only line, or (all) one more line of it, as far
 * as it fits. */
static void note(struct loader *L, const char *line)
{
    L->nerr++;
    if (!L->all) {
        snprintf(L->err, L->errlen, "%s", line);
        return;
    }
    if (L->used >= L->errlen)
        return;
    int n = snprintf(L->err + L->used, L->errlen - L->used, "%s\n", line);
    if (n > 0 && (size_t)n < L->errlen - L->used)
        L->used += (size_t)n;
    else
        L->err[L->used] = '\0'; /* a cut line is left out, not half-shown */
}

/* "FILE:LINE:COL: message" at the value v (or at its key, with at_key). */
__attribute__((format(printf, 4, 5))) static int
errat(struct loader *L, const struct rk_toml_value *v, bool at_key, const char *fmt, ...)
{
    bool key = at_key && v->key_line;
    char line[1200];
    int n = snprintf(line, sizeof line, "%s:%u:%u: ", L->file, key ? v->key_line : v->line,
                     key ? v->key_col : v->col);
    if (n >= 0 && (size_t)n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    note(L, line);
    return -1;
}

static int unknown(struct loader *L, const struct rk_toml_value *v)
{
    char path[128], known[512], near_name[64];
    rk_toml_path(v, path, sizeof(path));
    bool top = v->parent && !v->parent->parent;
    if (top && v->type == RK_TOML_TABLE) {
        if (nearest_table(v->key, v->key_len, near_name, sizeof(near_name)))
            return errat(L, v, true, "unknown table [%s] (did you mean [%s]?)", path, near_name);
        list_names(NULL, 0, known, sizeof(known));
        return errat(L, v, true, "unknown table [%s] (tables: %s)", path, known);
    }
    const char *s = nearest_key(path, v->key ? v->key : "", v->key_len);
    if (s)
        return errat(L, v, true, "unknown key \"%s\" (did you mean \"%s\"?)", path, s);
    if (top) {
        list_names(NULL, 0, known, sizeof(known));
        return errat(L, v, true, "unknown key \"%s\" (settings go in tables: %s)", path, known);
    }
    list_names(v->parent->key, v->parent->key_len, known, sizeof(known));
    return errat(L, v, true, "unknown key \"%s\" ([%s] has: %s)", path, v->parent->key, known);
}

/* F_IDENT: why s[0..n) is not an identifier (one line in msg), or 0. */
static int ident_error(const char *label, const char *s, size_t n, unsigned flags, char *msg,
                       size_t len)
{
    size_t bad;
    if (!(flags & F_IDENT) || n == 0 || rk_ident_valid(s, n, &bad))
        return 0;
    if (bad == n)
        snprintf(msg, len, "%s is %zu bytes long; at most %d", label, n, RK_IDENT_MAX);
    else
        snprintf(msg, len, "%s has byte 0x%02x at offset %zu; it may hold only %s", label,
                 (unsigned char)s[bad], bad, RK_IDENT_CHARSET);
    return -1;
}

/* A string value into dst (width bytes); label names it in messages. */
static int take_str(struct loader *L, const struct key *k, const struct rk_toml_value *v,
                    const char *label, char *dst, size_t width)
{
    if (v->type != RK_TOML_STRING)
        return errat(L, v, false, "%s must be a string", label);
    if (strlen(v->str) != v->len)
        return errat(L, v, false, "%s must not contain a NUL character", label);
    if (v->len >= width)
        return errat(L, v, false, "%s is %zu bytes long; at most %zu", label, v->len, width - 1);
    if (v->len == 0 && (k->flags & F_NONEMPTY))
        return errat(L, v, false, "%s must not be empty", label);
    char why[512]; /* label (a key name, < 128) and the fixed text */
    if (ident_error(label, v->str, v->len, k->flags, why, sizeof(why)))
        return errat(L, v, false, "%s", why);
    set_str(dst, width, v->str, v->len);
    return 0;
}

static int take_strs(struct loader *L, const struct key *k, const struct rk_toml_value *v)
{
    if (v->type != RK_TOML_ARRAY)
        return errat(L, v, false, "%s must be an array of strings, e.g. [\"%s\"]", k->name, k->def);
    if (v->count > k->max)
        return errat(L, v, false, "%s has %zu entries; at most %" PRIu64, k->name, v->count,
                     k->max);
    char *base = (char *)L->c + k->off, label[96];
    uint32_t n = 0;
    memset(base, 0, k->width);
    for (const struct rk_toml_value *e = v->first; e; e = e->next, n++) {
        snprintf(label, sizeof(label), "%s[%" PRIu32 "]", k->name, n);
        if (take_str(L, k, e, label, base + n * k->elem, k->elem))
            return -1;
    }
    memcpy((char *)L->c + k->count_off, &n, sizeof(n));
    return 0;
}

static int take_uint(struct loader *L, const struct key *k, const struct rk_toml_value *v)
{
    char lo[32], hi[32], shown[32], msg[256];
    fmt_num(k, k->min, lo, sizeof(lo));
    fmt_num(k, k->max, hi, sizeof(hi));
    if (v->type != RK_TOML_INT)
        return errat(L, v, false, "%s must be an integer (%s..%s)", k->name, lo, hi);
    snprintf(shown, sizeof(shown), "%" PRId64, v->i);
    if (v->i < 0)
        return errat(L, v, false, "%s = %s is out of range: %s..%s", k->name, shown, lo, hi);
    if (check_num(k, (uint64_t)v->i, shown, msg, sizeof(msg)))
        return errat(L, v, false, "%s", msg);
    set_num(L->c, k, (uint64_t)v->i);
    return 0;
}

/* A duration or size: a string with a unit, never a bare number, since a
 * bare 30 could mean seconds to one reader and milliseconds to another. */
static int take_amount(struct loader *L, const struct key *k, const struct rk_toml_value *v)
{
    const char *what = k->type == K_DUR ? "duration" : "size";
    char shown[64], msg[256];
    uint64_t x = 0;
    if (v->type != RK_TOML_STRING)
        return errat(L, v, false, "%s must be a %s string %s%s", k->name, what, unit_example(k),
                     v->type == RK_TOML_INT ? ", not a bare number" : "");
    rk_toml_quote(shown, sizeof(shown), v->str, v->len);
    int rc = strlen(v->str) != v->len ? -1
             : k->type == K_DUR       ? parse_duration(v->str, &x)
                                      : parse_size(v->str, &x);
    if (rc == -2)
        return errat(L, v, false, "%s = %s: use binary units %s", k->name, shown, unit_example(k));
    if (rc)
        return errat(L, v, false, "%s = %s is not a %s: expected a number and a unit %s", k->name,
                     shown, what, unit_example(k));
    if (check_num(k, x, shown, msg, sizeof(msg)))
        return errat(L, v, false, "%s", msg);
    set_num(L->c, k, x);
    return 0;
}

static int take_enum(struct loader *L, const struct key *k, const struct rk_toml_value *v)
{
    char list[128], shown[64];
    enum_list(k, list, sizeof(list));
    if (v->type != RK_TOML_STRING)
        return errat(L, v, false, "%s must be a string: one of %s", k->name, list);
    int i = strlen(v->str) == v->len ? enum_index(k, v->str) : -1;
    if (i < 0) {
        rk_toml_quote(shown, sizeof(shown), v->str, v->len);
        return errat(L, v, false, "%s = %s is not one of %s", k->name, shown, list);
    }
    set_num(L->c, k, (uint64_t)i);
    return 0;
}

static int take(struct loader *L, const struct key *k, const struct rk_toml_value *v)
{
    switch (k->type) {
    case K_STR:
        return take_str(L, k, v, k->name, (char *)L->c + k->off, k->width);
    case K_STRS:
        return take_strs(L, k, v);
    case K_UINT:
        return take_uint(L, k, v);
    case K_BOOL:
        if (v->type != RK_TOML_BOOL)
            return errat(L, v, false, "%s must be true or false", k->name);
        set_num(L->c, k, v->b);
        return 0;
    case K_DUR:
    case K_SIZE:
        return take_amount(L, k, v);
    case K_ENUM:
        return take_enum(L, k, v);
    }
    return -1;
}

/* The row for key in table t (lengths given: keys may hold any bytes). */
static const struct key *find_key(const char *t, size_t tlen, const char *key, size_t klen)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *name = keys[i].name;
        if (table_len(name) == tlen && memcmp(name, t, tlen) == 0 && strlen(leaf(name)) == klen &&
            memcmp(leaf(name), key, klen) == 0)
            return &keys[i];
    }
    return NULL;
}

static bool is_table(const char *t, size_t tlen)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (table_len(keys[i].name) == tlen && memcmp(keys[i].name, t, tlen) == 0)
            return true;
    return false;
}

/* Every table and key of the file into L->c; the first error ends it
 * unless L->all. */
static int load_tree(struct loader *L, const struct rk_toml_value *root)
{
    int rc = 0;
    for (const struct rk_toml_value *t = root->first; t && (rc == 0 || L->all); t = t->next) {
        if (!is_table(t->key, t->key_len)) {
            rc = unknown(L, t);
            continue;
        }
        if (t->type != RK_TOML_TABLE) {
            rc = errat(L, t, false, "%s must be a table: [%s]", t->key, t->key);
            continue;
        }
        for (const struct rk_toml_value *v = t->first; v && (rc == 0 || L->all); v = v->next) {
            const struct key *k = find_key(t->key, t->key_len, v->key, v->key_len);
            if (!k ? unknown(L, v) : take(L, k, v))
                rc = -1;
        }
    }
    return rc;
}

static int validate(const struct rk_config *c, char *err, size_t errlen, const char *const **at);

/* validate's *at for an error of one field's own: its message starts with
 * the key's name. */
static const char *const field_error[] = {NULL};

/* The value in the file of the key a field's message starts with
 * ("storage.fsync = ...", "security.tls_ca: ..."), or NULL. */
static const struct rk_toml_value *named_in(const struct rk_toml_value *root, const char *msg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        size_t n = strlen(keys[i].name);
        if (strncmp(msg, keys[i].name, n) == 0 && (msg[n] == ' ' || msg[n] == ':'))
            return rk_toml_lookup(root, keys[i].name);
    }
    return NULL;
}

static int check_field(const struct rk_config *c, const struct key *k, char *msg, size_t len);
static int cross_check(const struct rk_config *c, char *err, size_t errlen, const char *const **at);

/* A validation message at the first of the keys at that the file sets (at
 * field_error: the key msg starts with), else at the file. */
static void report(struct loader *L, const rk_toml_doc *doc, const char *const *at, const char *msg)
{
    const struct rk_toml_value *v = NULL;
    if (at == field_error)
        v = named_in(rk_toml_root(doc), msg);
    for (; at && *at && !v; at++)
        v = rk_toml_lookup(rk_toml_root(doc), *at);
    if (v) {
        errat(L, v, false, "%s", msg);
    } else {
        char line[1200];
        snprintf(line, sizeof line, "%s: %s", L->file, msg);
        note(L, line);
    }
}

/* validate(), with each message reported where the file sets the key; with
 * L->all every field's error, and the cross-key rules only on fields that
 * are all valid (a rule between two wrong values says nothing more). */
static void check_doc(struct loader *L, const rk_toml_doc *doc)
{
    char msg[512];
    const char *const *at;
    unsigned before = L->nerr;
    for (size_t i = 0; i < NKEYS && (L->nerr == 0 || L->all); i++)
        if (check_field(L->c, &keys[i], msg, sizeof(msg)))
            report(L, doc, field_error, msg);
    if (L->nerr == before && cross_check(L->c, msg, sizeof(msg), &at))
        report(L, doc, at, msg);
}

/* The node addresses a file may write tls+tcp:// (when TLS is set, which
 * tls_rule checked), kept as tcp:// like every address ringkv passes
 * around: the sockets map them (util/tls.h). */
static void plain_addrs(struct rk_config *c)
{
    char *addrs[3 + RK_CONFIG_MAX_SEEDS] = {c->listen_client, c->listen_peer, c->listen_gossip};
    size_t n = 3;
    for (uint32_t i = 0; i < c->nseeds && i < RK_CONFIG_MAX_SEEDS; i++)
        addrs[n++] = c->seeds[i];
    for (size_t i = 0; i < n; i++) {
        char tmp[sizeof(c->seeds[0])];
        if (rk_tls_url_is_tls(addrs[i]) && rk_tls_url(addrs[i], false, tmp, sizeof tmp) == 0)
            memcpy(addrs[i], tmp, sizeof tmp);
    }
}

static int load_doc(struct rk_config *c, const char *file, const rk_toml_doc *doc, char *err,
                    size_t errlen, bool all)
{
    struct rk_config *tmp = malloc(sizeof(*tmp));
    if (!tmp) {
        snprintf(err, errlen, "%s: out of memory", file);
        return -1;
    }
    rk_config_defaults(tmp);
    struct loader L = {tmp, file, err, errlen, all, 0, 0};
    if (load_tree(&L, rk_toml_root(doc)) == 0 || all)
        check_doc(&L, doc);
    int rc = L.nerr ? -1 : 0;
    if (rc == 0)
        plain_addrs(tmp);
    if (rc == 0 && c)
        *c = *tmp;
    free(tmp);
    return all ? (int)L.nerr : rc;
}

int rk_config_load_buf(struct rk_config *c, const char *name, const char *buf, size_t len,
                       char *err, size_t errlen)
{
    rk_toml_doc *doc;
    if (errlen)
        err[0] = '\0';
    if (rk_toml_parse(&doc, name, buf, len, err, errlen))
        return -1;
    int rc = load_doc(c, name, doc, err, errlen, false);
    rk_toml_free(doc);
    return rc;
}

int rk_config_load(struct rk_config *c, const char *path, char *err, size_t errlen)
{
    rk_toml_doc *doc;
    if (errlen)
        err[0] = '\0';
    if (rk_toml_parse_file(&doc, path, err, errlen))
        return -1;
    int rc = load_doc(c, path, doc, err, errlen, false);
    rk_toml_free(doc);
    return rc;
}

int rk_config_check(const char *path, char *errs, size_t len)
{
    rk_toml_doc *doc;
    if (len)
        errs[0] = '\0';
    if (rk_toml_parse_file(&doc, path, errs, len))
        return 1;
    int n = load_doc(NULL, path, doc, errs, len, true);
    rk_toml_free(doc);
    return n;
}

/* ---- defaults, validation, diff ---- */

void rk_config_defaults(struct rk_config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        uint64_t x = 0;
        if (k->type == K_STR) {
            set_str((char *)c + k->off, k->width, k->def, strlen(k->def));
            continue;
        }
        if (k->type == K_STRS) {
            uint32_t n = *k->def != '\0';
            set_str((char *)c + k->off, k->elem, k->def, strlen(k->def));
            memcpy((char *)c + k->count_off, &n, sizeof(n));
            continue;
        }
        if (k->type == K_UINT)
            x = strtoull(k->def, NULL, 10);
        else if (k->type == K_BOOL)
            x = strcmp(k->def, "true") == 0;
        else if (k->type == K_DUR)
            parse_duration(k->def, &x);
        else if (k->type == K_SIZE)
            parse_size(k->def, &x);
        else
            x = (uint64_t)enum_index(k, k->def);
        set_num(c, k, x);
    }
}

void rk_config_single_node(struct rk_config *c)
{
    rk_config_defaults(c);
    c->replicas = c->read_quorum = c->write_quorum = c->expect_nodes = 1;
}

static int check_str(const char *label, const char *f, size_t width, unsigned flags, char *msg,
                     size_t len)
{
    size_t n = strnlen(f, width);
    if (n == width) {
        snprintf(msg, len, "%s is not NUL-terminated", label);
        return -1;
    }
    if (n == 0 && (flags & F_NONEMPTY)) {
        snprintf(msg, len, "%s must not be empty", label);
        return -1;
    }
    if (n && (flags & F_SECRET)) {
        uint8_t secret[RK_AUTH_SECRET_MAX];
        size_t slen;
        int rc = rk_auth_secret_read(f, secret, &slen, msg, len);
        memset(secret, 0, sizeof(secret));
        return rc;
    }
    return ident_error(label, f, n, flags, msg, len);
}

/* One row's own constraints on a filled config. */
static int check_field(const struct rk_config *c, const struct key *k, char *msg, size_t len)
{
    const char *f = (const char *)c + k->off;
    char shown[64];
    uint64_t x = k->type == K_STR || k->type == K_STRS ? 0 : get_num(c, k);
    if (k->later && (k->type == K_STR ? f[0] != '\0' : x != 0)) {
        snprintf(msg, len, "%s: not supported yet (%s); leave it %s or remove the line", k->name,
                 k->later, k->type == K_STR ? "\"\"" : "0");
        return -1;
    }
    switch (k->type) {
    case K_STR:
        return check_str(k->name, f, k->width, k->flags, msg, len);
    case K_STRS:
        if (get_count(c, k) > k->max) {
            snprintf(msg, len, "%s has %" PRIu32 " entries; at most %" PRIu64, k->name,
                     get_count(c, k), k->max);
            return -1;
        }
        for (uint32_t i = 0; i < get_count(c, k); i++) {
            snprintf(shown, sizeof(shown), "%s[%" PRIu32 "]", k->name, i);
            if (check_str(shown, f + i * k->elem, k->elem, k->flags, msg, len))
                return -1;
        }
        return 0;
    case K_BOOL:
        return 0;
    case K_ENUM:
        for (uint64_t i = 0; k->names[i]; i++)
            if (i == x)
                return 0;
        snprintf(msg, len, "%s has no valid value (%" PRIu64 ")", k->name, x);
        return -1;
    default:
        fmt_num(k, x, shown, sizeof(shown));
        return check_num(k, x, shown, msg, len);
    }
}

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* "A = x must be longer than B = y" unless ms_a > ms_b. */
static int longer(char *err, size_t errlen, const char *a, uint64_t ms_a, const char *b,
                  uint64_t ms_b, const char *or_off)
{
    char x[32], y[32];
    if (ms_a > ms_b)
        return 0;
    fmt_duration(ms_a, x, sizeof(x));
    fmt_duration(ms_b, y, sizeof(y));
    return bad(err, errlen, "%s = %s must be %slonger than %s = %s", a, x, or_off, b, y);
}

/* DESIGN §5: a tombstone outlives what could still bring its key's older
 * value back. 0, or -1 with err and in *at the keys whose line a message
 * should point at (the grace first), NULL-terminated. */
static int grace_rule(const struct rk_config *c, char *err, size_t errlen, const char *const **at)
{
    static const char *const by_hints[] = {"storage.tombstone_grace", "hints.max_age", NULL};
    static const char *const by_ae[] = {"storage.tombstone_grace", "antientropy.interval", NULL};
    const char *other, *why;
    uint64_t ms;
    if (c->tombstone_grace_ms <= c->hints_max_age_ms) {
        other = "hints.max_age", ms = c->hints_max_age_ms, *at = by_hints;
        why = "a hint of an older write, delivered after the tombstone is purged, would bring "
              "the deleted value back";
    } else if (c->tombstone_grace_ms <= c->ae_interval_ms) {
        other = "antientropy.interval", ms = c->ae_interval_ms, *at = by_ae;
        why = "a replica that missed the delete could have its older value copied back by an "
              "anti-entropy exchange once the tombstone is purged";
    } else {
        return 0;
    }
    char x[32], y[32];
    fmt_duration(c->tombstone_grace_ms, x, sizeof(x));
    fmt_duration(ms, y, sizeof(y));
    return bad(err, errlen, "storage.tombstone_grace = %s must be longer than %s = %s (%s)", x,
               other, y, why);
}

/* An address of the node's (listen.client, cluster.seeds[i], ...) fits
 * the TLS setting: tls+tcp:// needs TLS, and with TLS it must become
 * tls+tcp:// (tcp://, or tls+tcp:// written out; not ipc:// etc.). */
static int tls_addr(bool tls, const char *name, const char *addr, char *err, size_t errlen)
{
    char url[300];
    if (!tls && rk_tls_url_is_tls(addr))
        return bad(err, errlen,
                   "%s = \"%s\" needs TLS: set security.tls_cert, tls_key and tls_ca, or write "
                   "tcp://",
                   name, addr);
    if (tls && (rk_tls_url(addr, true, url, sizeof url) || !rk_tls_url_is_tls(url)))
        return bad(err, errlen,
                   "%s = \"%s\" cannot use TLS (security.tls_* are set): write tcp://HOST:PORT",
                   name, addr);
    return 0;
}

/* security.tls_cert, tls_key and tls_ca: all three or none; when set, the
 * files are usable (util/tls.h checks them) and every address takes TLS. */
static int tls_rule(const struct rk_config *c, char *err, size_t errlen, const char *const **at)
{
    static const char *const cert_at[] = {"security.tls_cert", NULL};
    static const char *const key_at[] = {"security.tls_key", NULL};
    static const char *const ca_at[] = {"security.tls_ca", NULL};
    static const char *const seeds_at[] = {"cluster.seeds", NULL};
    const char *files[] = {c->tls_cert, c->tls_key, c->tls_ca};
    const char *const *ats[] = {cert_at, key_at, ca_at};
    unsigned set = !!files[0][0] + !!files[1][0] + !!files[2][0];
    for (size_t i = 0; set && set < 3 && i < 3; i++)
        if (!files[i][0]) {
            *at = ats[files[0][0] ? 0 : files[1][0] ? 1 : 2];
            return bad(err, errlen,
                       "%s is not set: TLS needs security.tls_cert, tls_key and tls_ca together "
                       "(or none of them)",
                       ats[i][0]);
        }
    bool tls = set == 3;
    *at = field_error;
    if (tls_addr(tls, "listen.client", c->listen_client, err, errlen) ||
        tls_addr(tls, "listen.peer", c->listen_peer, err, errlen) ||
        tls_addr(tls, "listen.gossip", c->listen_gossip, err, errlen))
        return -1;
    *at = seeds_at;
    for (uint32_t i = 0; i < c->nseeds && i < RK_CONFIG_MAX_SEEDS; i++) {
        char name[32];
        snprintf(name, sizeof name, "cluster.seeds[%" PRIu32 "]", i);
        if (tls_addr(tls, name, c->seeds[i], err, errlen))
            return -1;
    }
    *at = NULL;
    if (!tls)
        return 0;
    char why[900];
    if (rk_tls_check_files(c->tls_cert, c->tls_key, c->tls_ca, why, sizeof why) == 0)
        return 0;
    /* The line names the file first: point at the key that names it. */
    for (size_t i = 0; i < 3 && !*at; i++)
        if (strncmp(why, files[i], strlen(files[i])) == 0 && why[strlen(files[i])] == ':')
            *at = ats[i];
    return bad(err, errlen, "%s: %s", *at ? (*at)[0] : "security.tls_cert", why);
}

/* Constraints between keys; *at as for grace_rule (NULL for the others). */
/* client_auth only with something to prove: the secret, or a TLS client
 * certificate (the secret file itself is the field's own check, F_SECRET). */
static int security_rule(const struct rk_config *c, char *err, size_t errlen,
                         const char *const **at)
{
    static const char *const client_at[] = {"security.client_auth", NULL};
    if (c->client_auth && !c->secret_file[0] && !c->tls_ca[0]) {
        *at = client_at;
        return bad(err, errlen,
                   "security.client_auth = true needs security.secret_file (the secret clients "
                   "prove) or TLS (security.tls_*: the certificate they present)");
    }
    return 0;
}

static int cross_check(const struct rk_config *c, char *err, size_t errlen, const char *const **at)
{
    *at = NULL;
    const char *q = c->read_quorum > c->replicas    ? "read_quorum"
                    : c->write_quorum > c->replicas ? "write_quorum"
                                                    : NULL;
    if (q)
        return bad(err, errlen, "cluster.%s = %" PRIu32 " is more than cluster.replicas = %" PRIu32,
                   q, q[0] == 'r' ? c->read_quorum : c->write_quorum, c->replicas);
    /* Suspecting at or before the next heartbeat is due would suspect
     * every node on every late beat. */
    if (longer(err, errlen, "gossip.suspect_after", c->suspect_after_ms, "gossip.interval",
               c->gossip_interval_ms, "") ||
        longer(err, errlen, "gossip.dead_after", c->dead_after_ms, "gossip.suspect_after",
               c->suspect_after_ms, ""))
        return -1;
    /* Removing a node before it is even declared dead would move its
     * partitions while it may still be serving. */
    if (c->auto_remove_after_ms &&
        longer(err, errlen, "cluster.auto_remove_after", c->auto_remove_after_ms,
               "gossip.dead_after", c->dead_after_ms, "\"0s\" (off) or "))
        return -1;
    static const char *const http_at[] = {"listen.http", NULL};
    char url[300];
    if (rk_config_http_url(c->listen_http, url, sizeof(url), err, errlen) < 0) {
        *at = http_at;
        return -1;
    }
    if (security_rule(c, err, errlen, at) < 0 || tls_rule(c, err, errlen, at))
        return -1;
    return grace_rule(c, err, errlen, at);
}

/* HOST:PORT's host: a name or IPv4 address, or an IPv6 one in brackets. */
static bool http_host(const char *h, size_t n)
{
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
        return n > 2 && strspn(h + 1, "0123456789abcdefABCDEF:.") == n - 2;
    return n > 0 &&
           strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") >= n;
}

int rk_config_http_url(const char *listen, char *url, size_t len, char *err, size_t errlen)
{
    const char *s = strncmp(listen, "http://", 7) == 0 ? listen + 7 : listen;
    url[0] = '\0';
    if (!listen[0])
        return 0;
    const char *colon = strrchr(s, ':');
    const char *port = colon ? colon + 1 : "";
    size_t pn = strlen(port);
    unsigned long p =
        pn && pn <= 5 && strspn(port, "0123456789") == pn ? strtoul(port, NULL, 10) : 0;
    if (!colon || p == 0 || p > 65535 || !http_host(s, (size_t)(colon - s)))
        return bad(err, errlen,
                   "listen.http = \"%s\" is not HOST:PORT or http://HOST:PORT (port 1-65535; \"\" "
                   "turns HTTP off)",
                   listen);
    snprintf(url, len, "http://%s", s);
    return 0;
}

/* rk_config_validate, and in *at the keys a cross-key message is about
 * (NULL when none is, or the error is a field's own). */
static int validate(const struct rk_config *c, char *err, size_t errlen, const char *const **at)
{
    char msg[512];
    *at = NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        if (check_field(c, &keys[i], msg, sizeof(msg))) {
            snprintf(err, errlen, "%s", msg);
            *at = field_error;
            return -1;
        }
    }
    return cross_check(c, err, errlen, at);
}

int rk_config_validate(const struct rk_config *c, char *err, size_t errlen)
{
    const char *const *at;
    return validate(c, err, errlen, &at);
}

static bool same(const struct rk_config *a, const struct rk_config *b, const struct key *k)
{
    const char *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;
    if (k->type == K_STR)
        return strncmp(fa, fb, k->width) == 0;
    if (k->type != K_STRS)
        return get_num(a, k) == get_num(b, k);
    uint32_t n = get_count(a, k);
    if (n != get_count(b, k))
        return false;
    for (uint32_t i = 0; i < n && i < k->max; i++)
        if (strncmp(fa + i * k->elem, fb + i * k->elem, k->elem) != 0)
            return false;
    return true;
}

static void add_name(char *buf, size_t len, const char *name)
{
    if (!len)
        return;
    size_t n = strlen(buf);
    snprintf(buf + n, len - n, "%s%s", n ? "," : "", name);
}

void rk_config_diff(const struct rk_config *old, const struct rk_config *neu, char *live,
                    size_t live_len, char *restart, size_t restart_len)
{
    if (live_len)
        live[0] = '\0';
    if (restart_len)
        restart[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (same(old, neu, k))
            continue;
        if (k->flags & F_LIVE)
            add_name(live, live_len, k->name);
        else
            add_name(restart, restart_len, k->name);
    }
}

const char *rk_config_key_name(size_t i)
{
    return i < NKEYS ? keys[i].name : NULL;
}

/* Settings that differ per node by design: identity, addresses, paths,
 * seeds and secrets. Everything else should match across a cluster. */
static bool node_local(const char *name)
{
    return strncmp(name, "node.", 5) == 0 || strncmp(name, "listen.", 7) == 0 ||
           strncmp(name, "security.", 9) == 0 || strcmp(name, "cluster.seeds") == 0;
}

uint64_t rk_config_digest(const struct rk_config *c)
{
    /* Every shared key as name NUL value, in table order; strings are
     * bounded by their fields (at most 1 KiB), so this fits. */
    uint8_t buf[16384];
    size_t n = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (node_local(k->name))
            continue;
        size_t nl = strlen(k->name) + 1;
        const char *f = (const char *)c + k->off;
        size_t vl = k->type == K_STR ? strnlen(f, k->width) + 1 : 8;
        if (n + nl + vl > sizeof(buf))
            break; /* cannot happen with today's table; checked by the unit test */
        memcpy(buf + n, k->name, nl);
        n += nl;
        if (k->type == K_STR) {
            memcpy(buf + n, f, vl - 1);
            buf[n + vl - 1] = 0;
        } else {
            uint64_t v = get_num(c, k);
            for (int b = 0; b < 8; b++)
                buf[n + (size_t)b] = (uint8_t)(v >> (8 * b));
        }
        n += vl;
    }
    return XXH3_64bits(buf, n);
}

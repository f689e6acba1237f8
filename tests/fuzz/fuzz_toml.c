/* Fuzz target: arbitrary bytes as a config file, through the TOML reader
 * and the config loader. Neither may crash, leak or hang. A document that
 * parses must be a consistent tree (positions set, strings NUL-terminated,
 * child counts right), its strings must survive rk_toml_quote and a
 * re-parse byte for byte, and every error must be one line that starts
 * with the file name. A config that loads must also validate. */
#include "fuzz.h"
#include "config/config.h"
#include "config/toml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz.toml"

/* Valid, and using as many TOML forms as the settings allow, so that
 * mutations reach every part of the reader. */
/* clang-format off */
static const char seed_text[] =
    "# ringkv test config\n"
    "limits.max_inflight = 10000   # a dotted key at the top\n"
    "log = { level = \"warn\" }\n"
    "[node]\n"
    "id = \"node\\u002D1\"          # escape\n"
    "data_dir = '''/var/lib/ringkv'''\n"
    "workers = 0x0\n"
    "pin_workers = false\n"
    "[listen]\n"
    "client = 'tcp://0.0.0.0:7400'\n"
    "peer   = \"tcp://0.0.0.0:7401\"\n"
    "gossip = \"\"\"\\\n"
    "    tcp://0.0.0.0:7402\"\"\"\n"
    "http = \"\"\n"
    "\"advertise\" = \"10.0.0.1\"\n"
    "[cluster]\n"
    "name = \"prod\\t\\\"eu\\\"\"\n"
    "seeds = [\n"
    "  \"tcp://10.0.0.1:7402\",   # first\n"
    "  # a comment line\n"
    "  'tcp://10.0.0.2:7402',\n"
    "]\n"
    "partitions = 1_024\n"
    "replicas = +3\n"
    "read_quorum = 2\n"
    "write_quorum = 0b10\n"
    "expect_nodes = 0o3\n"
    "auto_remove_after = \"1h30m\"\n"
    "[gossip]\n"
    "interval = \"500ms\"\n"
    "suspect_after = \"3s\"\n"
    "dead_after = \"1m\"\n"
    "[storage]\n"
    "fsync = \"interval\"\n"
    "fsync_interval = \"10ms\"\n"
    "segment_size = \"64MiB\"\n"
    "compression = \"none\"\n"
    "max_key_size = \"1KiB\"\n"
    "max_value_size = \"1048576B\"\n"
    "[antientropy]\n"
    "interval = \"30s\"\n"
    "max_keys_per_second = 50000\n"
    "[security]\n"
    "tls_cert = \"/etc/ringkv/cert.pem\"\n"
    "tls_key = \"/etc/ringkv/key.pem\"\n"
    "tls_ca = \"\"\n";
/* clang-format on */

uint8_t *rk_fuzz_seed(size_t *len)
{
    *len = sizeof(seed_text) - 1;
    uint8_t *b = malloc(*len);
    if (b)
        memcpy(b, seed_text, *len);
    return b;
}

static void check_error(const char *err)
{
    if (strncmp(err, NAME ":", sizeof(NAME)) != 0 || strchr(err, '\n'))
        abort();
}

/* A string value quoted by rk_toml_quote must parse back to the same bytes. */
static void check_round_trip(const struct rk_toml_value *v)
{
    static char text[8192];
    size_t n = (size_t)snprintf(text, sizeof(text), "k = ");
    size_t q = rk_toml_quote(text + n, sizeof(text) - n, v->str, v->len);
    if (n + q >= sizeof(text))
        return; /* cut: not a faithful copy */
    rk_toml_doc *d;
    char err[256];
    if (rk_toml_parse(&d, NAME, text, n + q, err, sizeof(err)) != 0)
        abort();
    const struct rk_toml_value *k = rk_toml_get(rk_toml_root(d), "k");
    if (!k || k->type != RK_TOML_STRING || k->len != v->len || memcmp(k->str, v->str, v->len))
        abort();
    rk_toml_free(d);
}

static void check_node(const struct rk_toml_value *v, size_t *budget)
{
    char path[256];
    if (v->line < 1 || v->col < 1)
        abort();
    if (v->parent && v->parent->type == RK_TOML_TABLE &&
        (!v->key || v->key[v->key_len] != '\0' || v->key_line < 1 || v->key_col < 1))
        abort();
    if (v->type == RK_TOML_STRING && (!v->str || v->str[v->len] != '\0'))
        abort();
    size_t n = 0;
    for (const struct rk_toml_value *c = v->first; c; c = c->next, n++)
        if (c->parent != v)
            abort();
    if (n != v->count)
        abort();
    /* Paths and round trips cost more than the walk: do a bounded few. */
    if (*budget > 0) {
        --*budget;
        rk_toml_path(v, path, sizeof(path));
        if (v->type == RK_TOML_STRING)
            check_round_trip(v);
    }
}

/* Pre-order walk through parent and next pointers: no recursion, so a
 * deep tree cannot overflow the stack here either. */
static void check_tree(const rk_toml_doc *d)
{
    const struct rk_toml_value *root = rk_toml_root(d), *v = root;
    size_t budget = 64;
    while (v) {
        check_node(v, &budget);
        if (v->first) {
            v = v->first;
            continue;
        }
        while (v != root && !v->next)
            v = v->parent;
        v = v == root ? NULL : v->next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    rk_toml_doc *d;
    if (rk_toml_parse(&d, NAME, (const char *)data, size, err, sizeof(err)) == 0) {
        check_tree(d);
        rk_toml_free(d);
    } else {
        check_error(err);
    }
    static struct rk_config c, def;
    rk_config_defaults(&def);
    if (rk_config_load_buf(&c, NAME, (const char *)data, size, err, sizeof(err)) != 0) {
        check_error(err);
        return 0;
    }
    if (rk_config_validate(&c, err, sizeof(err)) != 0)
        abort();
    char live[1024], restart[1024];
    rk_config_diff(&def, &c, live, sizeof(live), restart, sizeof(restart));
    return 0;
}

/* The seed; the smallest config a node starts with; documents of TOML
 * forms the settings do not use (nested tables, arrays of tables,
 * literal and multi-line strings, floats and dates), which the reader
 * must parse and the loader refuse in one line. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    static const struct {
        const char *name, *text;
    } c[] = {
        {"every-setting", seed_text},
        {"minimal", "[node]\nid = \"node-1\"\n[cluster]\nseeds = [\"tcp://10.0.0.1:7402\"]\n"},
        {"other-forms",
         "title = 'x'\n[a.b]\nc = 1.5e3\nd = 1979-05-27T07:32:00Z\n"
         "[[arr]]\nx = [1, [2, 3], {y = true}]\n[[arr]]\ns = \"\"\"\nmulti\n\"\"\"\n"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        put(c[i].name, (const uint8_t *)c[i].text, strlen(c[i].text));
}

/* Helpers every kvctl command shares, `kvctl bench` included: options,
 * durations and counts, the one error line, exit codes, JSON strings. */
#include "kvctl/cli.h"

#include "client/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/auth.h"
#include "util/err.h"

void rk_kvctl_err(const char *fmt, ...)
{
    va_list ap;
    fputs("kvctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void rk_kvctl_oom(void)
{
    rk_kvctl_err("out of memory");
    exit(RK_EXIT_CLUSTER);
}

int rk_kvctl_exit_code(int err)
{
    switch (err) {
    case 0:
        return RK_EXIT_OK;
    case RK_ENOTFOUND:
        return RK_EXIT_NO;
    case RK_ETOOLARGE:
    case RK_EINVAL:
    case RK_EMALFORMED:
    case RK_EUNSUPPORTED:
        return RK_EXIT_USAGE;
    default:
        return RK_EXIT_CLUSTER;
    }
}

int rk_kvctl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return RK_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return RK_EINVAL;
    *out = v;
    return 0;
}

int rk_kvctl_opt_value(const char *name, int argc, char **argv, int *i, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        rk_kvctl_err("option %s needs a value (see kvctl --help)", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

int rk_kvctl_bad_value(const char *opt, const char *val, const char *want)
{
    rk_kvctl_err("bad value '%s' for %s: %s", val, opt, want);
    return -1;
}

int rk_kvctl_load_secret(struct rk_kvctl_opts *o, const char *name, const char *path)
{
    static struct rk_auth_key key; /* one per process: kvctl has one set of options */
    char err[400];
    if (rk_auth_key_from_file(path, "rpc", &key, err, sizeof(err)) < 0) {
        /* err names security.secret_file, the node's key: say ours. */
        const char *why = strstr(err, path);
        rk_kvctl_err("%s %s", name, why ? why : err);
        return -1;
    }
    o->secret = &key;
    return 0;
}

int rk_kvctl_client_open(struct rk_client **c, const struct rk_kvctl_opts *o, const char *addr)
{
    int rv = rk_client_open(c, addr, (int)o->timeout_ms);
    if (rv == 0 && o->secret)
        rk_client_set_key(*c, o->secret);
    return rv;
}

/* --tls-ca, --tls-cert, --tls-key: as rk_kvctl_global_opt. */
static int tls_opt(struct rk_kvctl_opts *o, int argc, char **argv, int *i)
{
    const char *names[] = {"--tls-ca", "--tls-cert", "--tls-key"};
    const char **fields[] = {&o->tls_ca, &o->tls_cert, &o->tls_key};
    for (size_t k = 0; k < 3; k++) {
        const char *v;
        int rv = rk_kvctl_opt_value(names[k], argc, argv, i, &v);
        if (rv > 0 && !v[0])
            return rk_kvctl_bad_value(names[k], v, "a PEM file");
        if (rv > 0)
            *fields[k] = v;
        if (rv != 0)
            return rv;
    }
    return 0;
}

void rk_kvctl_tls_env(struct rk_kvctl_opts *o)
{
    const char *names[] = {"KVCTL_TLS_CA", "KVCTL_TLS_CERT", "KVCTL_TLS_KEY"};
    const char **fields[] = {&o->tls_ca, &o->tls_cert, &o->tls_key};
    for (size_t k = 0; k < 3; k++) {
        const char *v = getenv(names[k]);
        if (v && v[0])
            *fields[k] = v;
    }
}

int rk_kvctl_client_tls(struct rk_client *c, const struct rk_kvctl_opts *o, const char *what)
{
    if (!o->tls_ca && (o->tls_cert || o->tls_key)) {
        rk_kvctl_err("%s: --tls-cert and --tls-key need --tls-ca (the CA the node's certificate "
                     "is from)",
                     what);
        return RK_EINVAL;
    }
    if (!o->tls_ca)
        return 0;
    int rv = rk_client_set_tls(c, o->tls_ca, o->tls_cert, o->tls_key);
    if (rv != 0)
        rk_kvctl_err("%s: %s", what, rk_client_error(c));
    return rv;
}

int rk_kvctl_global_opt(struct rk_kvctl_opts *o, int argc, char **argv, int *i)
{
    const char *v;
    uint64_t u;
    int rv;
    if (strcmp(argv[*i], "--json") == 0) {
        o->json = true;
        return 1;
    }
    if ((rv = rk_kvctl_opt_value("-a", argc, argv, i, &v)) != 0 ||
        (rv = rk_kvctl_opt_value("--addr", argc, argv, i, &v)) != 0) {
        if (rv > 0)
            o->addr = v;
        return rv;
    }
    if ((rv = rk_kvctl_opt_value("--timeout", argc, argv, i, &v)) != 0) {
        if (rv > 0 && rk_client_parse_ms(v, &o->timeout_ms) != 0)
            return rk_kvctl_bad_value("--timeout", v, "use a duration such as 250ms, 2s, 1m");
        if (rv > 0 && o->timeout_ms > 24 * 3600 * 1000)
            return rk_kvctl_bad_value("--timeout", v, "at most 24h");
        return rv;
    }
    if ((rv = rk_kvctl_opt_value("--secret-file", argc, argv, i, &v)) != 0)
        return rv > 0 && rk_kvctl_load_secret(o, "--secret-file", v) < 0 ? -1 : rv;
    if ((rv = tls_opt(o, argc, argv, i)) != 0)
        return rv;
    for (int k = 0; k < 2; k++) {
        const char *name = k == 0 ? "-r" : "-w";
        if ((rv = rk_kvctl_opt_value(name, argc, argv, i, &v)) == 0)
            continue;
        if (rv > 0 && rk_kvctl_parse_uint(v, 1, 255, &u) != 0)
            return rk_kvctl_bad_value(name, v, "use a replica count from 1 to 255");
        if (rv > 0)
            *(k == 0 ? &o->r : &o->w) = (unsigned)u;
        return rv;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid
 * (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        len = 2, cp = p[0] & 0x1Fu;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        len = 3, cp = p[0] & 0x0Fu;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        len = 4, cp = p[0] & 0x07u;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
        return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
        return 0;
    return len;
}

bool rk_kvctl_json_string(FILE *f, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    bool valid = true;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(p + i, n - i);
        uint8_t c = p[i];
        if (len > 1) {
            fwrite(p + i, 1, len, f);
            i += len;
            continue;
        }
        valid = valid && len == 1;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c < 0x20 || c >= 0x7F)
            fprintf(f, "\\u%04x", c); /* invalid UTF-8 byte: as if Latin-1 */
        else
            fputc(c, f);
        i++;
    }
    fputc('"', f);
    return valid;
}

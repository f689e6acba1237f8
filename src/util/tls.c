/* TLS files, nng TLS configurations and URL mapping (tls.h). */
#include "util/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <nng/supplemental/tls/tls.h>

#define PEM_MAX (1u << 20) /* a certificate chain or key file; far larger is not one */

struct rk_tls {
    nng_tls_config *dial;       /* client mode: the server must chain to the CA */
    nng_tls_config *listen_req; /* server mode: a client certificate from the CA required */
    nng_tls_config *listen_any; /* server mode: no client certificate asked for */
};

static struct rk_tls *node_tls;

/* ---- files ---- */

/* path's whole contents, NUL-terminated, in *out (malloc'd). 0, or -1
 * with "PATH: why" in err. */
static int read_pem(const char *path, char **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf || e || n > PEM_MAX) {
        snprintf(err, errlen, "%s: cannot read: %s", path,
                 !buf ? "out of memory"
                 : e  ? strerror(e)
                      : "larger than 1 MiB, not a PEM file");
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* mbedTLS's text for rv, without its "X509 - " style prefix. */
static const char *mbed_reason(int rv, char *buf, size_t len)
{
    mbedtls_strerror(rv, buf, len);
    const char *dash = strstr(buf, " - ");
    return dash ? dash + 3 : buf;
}

/* Parse every PEM certificate of pem (loaded from path) into crt. */
static int parse_certs(mbedtls_x509_crt *crt, const char *path, const char *pem, char *err,
                       size_t errlen)
{
    char why[160];
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
        snprintf(err, errlen, "%s: not a PEM certificate (no BEGIN CERTIFICATE line)", path);
        return -1;
    }
    int rv = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1);
    if (rv != 0) { /* > 0: some certificates of the file did not parse */
        snprintf(err, errlen, "%s: a certificate does not parse: %s", path,
                 rv < 0 ? mbed_reason(rv, why, sizeof why) : "damaged PEM block");
        return -1;
    }
    return 0;
}

static void fmt_time(const mbedtls_x509_time *t, char *buf, size_t len)
{
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d UTC", t->year, t->mon, t->day, t->hour,
             t->min, t->sec);
}

/* The certificate's validity period includes now. */
static int check_dates(const mbedtls_x509_crt *crt, const char *path, char *err, size_t errlen)
{
    char from[40], to[40];
    fmt_time(&crt->valid_from, from, sizeof from);
    fmt_time(&crt->valid_to, to, sizeof to);
    if (mbedtls_x509_time_is_past(&crt->valid_to)) {
        snprintf(err, errlen, "%s: certificate expired on %s (valid from %s)", path, to, from);
        return -1;
    }
    if (mbedtls_x509_time_is_future(&crt->valid_from)) {
        snprintf(err, errlen, "%s: certificate is not valid yet: from %s (is the clock right?)",
                 path, from);
        return -1;
    }
    return 0;
}

/* key (PEM, loaded from path) parses and is the private half of crt's. */
static int check_key(const mbedtls_x509_crt *crt, const char *cert_path, const char *path,
                     const char *pem, char *err, size_t errlen)
{
    char why[160];
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rv = -1;
    int e = strstr(pem, "-----BEGIN")
                ? mbedtls_pk_parse_key(&pk, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0)
                : MBEDTLS_ERR_PK_KEY_INVALID_FORMAT;
    if (e == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
        snprintf(err, errlen, "%s: the key is encrypted; ringkvd needs it unencrypted", path);
    else if (e != 0)
        snprintf(err, errlen, "%s: not a PEM private key: %s", path,
                 mbed_reason(e, why, sizeof why));
    else if (mbedtls_pk_check_pair(&crt->pk, &pk) != 0)
        snprintf(err, errlen, "%s: the key does not match the certificate in %s", path, cert_path);
    else
        rv = 0;
    mbedtls_pk_free(&pk);
    return rv;
}

/* crt chains to a certificate of ca. */
static int check_chain(mbedtls_x509_crt *crt, mbedtls_x509_crt *ca, const char *cert_path,
                       const char *ca_path, char *err, size_t errlen)
{
    uint32_t flags = 0;
    if (mbedtls_x509_crt_verify(crt, ca, NULL, NULL, &flags, NULL, NULL) == 0)
        return 0;
    char info[512];
    mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
    info[strcspn(info, "\n")] = '\0'; /* the first reason: one line */
    snprintf(err, errlen, "%s: certificate does not verify against %s: %s", cert_path, ca_path,
             info[0] ? info : "unknown reason");
    return -1;
}

/* The checks of rk_tls_check_files on loaded files (cert_pem NULL: the CA
 * alone). */
static int check_loaded(const char *cert, const char *cert_pem, const char *key,
                        const char *key_pem, const char *ca, const char *ca_pem, char *err,
                        size_t errlen)
{
    mbedtls_x509_crt crt, cas;
    mbedtls_x509_crt_init(&crt);
    mbedtls_x509_crt_init(&cas);
    int rv = parse_certs(&cas, ca, ca_pem, err, errlen);
    if (rv == 0 && cert_pem)
        rv = parse_certs(&crt, cert, cert_pem, err, errlen);
    if (rv == 0 && cert_pem)
        rv = check_dates(&crt, cert, err, errlen);
    if (rv == 0 && cert_pem)
        rv = check_key(&crt, cert, key, key_pem, err, errlen);
    if (rv == 0 && cert_pem)
        rv = check_chain(&crt, &cas, cert, ca, err, errlen);
    mbedtls_x509_crt_free(&crt);
    mbedtls_x509_crt_free(&cas);
    return rv;
}

struct pems {
    char *cert, *key, *ca;
};

static void pems_free(struct pems *p)
{
    free(p->cert);
    free(p->key);
    free(p->ca);
}

/* Load and check the files (cert and key NULL or "": the CA alone). */
static int load_checked(struct pems *p, const char *cert, const char *key, const char *ca,
                        char *err, size_t errlen)
{
    bool own = cert && cert[0];
    memset(p, 0, sizeof *p);
    int rv = own ? read_pem(cert, &p->cert, err, errlen) : 0;
    if (rv == 0 && own)
        rv = read_pem(key, &p->key, err, errlen);
    if (rv == 0)
        rv = read_pem(ca, &p->ca, err, errlen);
    if (rv == 0)
        rv = check_loaded(cert, p->cert, key, p->key, ca, p->ca, err, errlen);
    if (rv != 0)
        pems_free(p);
    return rv;
}

int rk_tls_check_files(const char *cert, const char *key, const char *ca, char *err, size_t errlen)
{
    struct pems p;
    if (load_checked(&p, cert, key, ca, err, errlen) != 0)
        return -1;
    pems_free(&p);
    return 0;
}

/* ---- nng configurations ---- */

static int make_config(nng_tls_config **cfg, nng_tls_mode mode, nng_tls_auth_mode auth,
                       const struct pems *p)
{
    int rv = nng_tls_config_alloc(cfg, mode);
    if (rv != 0)
        return rv;
    rv = nng_tls_config_auth_mode(*cfg, auth);
    if (rv == 0 && auth != NNG_TLS_AUTH_MODE_NONE)
        rv = nng_tls_config_ca_chain(*cfg, p->ca, NULL);
    if (rv == 0 && p->cert)
        rv = nng_tls_config_own_cert(*cfg, p->cert, p->key, NULL);
    if (rv != 0) {
        nng_tls_config_free(*cfg);
        *cfg = NULL;
    }
    return rv;
}

int rk_tls_new(struct rk_tls **out, const char *cert, const char *key, const char *ca, char *err,
               size_t errlen)
{
    struct pems p;
    *out = NULL;
    if (load_checked(&p, cert, key, ca, err, errlen) != 0)
        return -1;
    struct rk_tls *t = calloc(1, sizeof *t);
    int rv =
        t ? make_config(&t->dial, NNG_TLS_MODE_CLIENT, NNG_TLS_AUTH_MODE_REQUIRED, &p) : NNG_ENOMEM;
    /* A listener without a certificate of its own cannot serve TLS. */
    if (rv == 0 && p.cert)
        rv = make_config(&t->listen_req, NNG_TLS_MODE_SERVER, NNG_TLS_AUTH_MODE_REQUIRED, &p);
    if (rv == 0 && p.cert)
        rv = make_config(&t->listen_any, NNG_TLS_MODE_SERVER, NNG_TLS_AUTH_MODE_NONE, &p);
    pems_free(&p);
    if (rv != 0) {
        snprintf(err, errlen, "TLS configuration from %s, %s, %s: %s", cert && cert[0] ? cert : "-",
                 key && key[0] ? key : "-", ca, nng_strerror(rv));
        rk_tls_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void rk_tls_free(struct rk_tls *t)
{
    if (!t)
        return;
    nng_tls_config *cfgs[] = {t->dial, t->listen_req, t->listen_any};
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        if (cfgs[i])
            nng_tls_config_free(cfgs[i]);
    free(t);
}

int rk_tls_dialer(nng_dialer d, const struct rk_tls *t)
{
    return nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, t->dial);
}

int rk_tls_listener(nng_listener l, const struct rk_tls *t, bool require_cert)
{
    nng_tls_config *cfg = require_cert ? t->listen_req : t->listen_any;
    return cfg ? nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg) : NNG_EINVAL;
}

/* ---- URLs ---- */

/* tcp://, tcp4:// or tcp6:// (nng's TCP transports, each with a tls+). */
static bool plain_tcp(const char *url)
{
    return strncmp(url, "tcp://", 6) == 0 || strncmp(url, "tcp4://", 7) == 0 ||
           strncmp(url, "tcp6://", 7) == 0;
}

int rk_tls_url(const char *in, bool tls, char *out, size_t len)
{
    const char *fmt = "%s";
    if (tls && plain_tcp(in))
        fmt = "tls+%s";
    else if (!tls && rk_tls_url_is_tls(in))
        in += 4; /* "tls+" */
    int n = snprintf(out, len, fmt, in);
    if (n < 0 || (size_t)n >= len) {
        if (len)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

bool rk_tls_url_is_tls(const char *url)
{
    return strncmp(url, "tls+", 4) == 0 && plain_tcp(url + 4);
}

/* ---- the node's identity ---- */

void rk_tls_set_node(struct rk_tls *t)
{
    rk_tls_free(node_tls);
    node_tls = t;
}

const struct rk_tls *rk_tls_node(void)
{
    return node_tls;
}

int rk_tls_node_url(const char *addr, char *url, size_t len)
{
    return rk_tls_url(addr, node_tls != NULL, url, len);
}

int rk_tls_node_dialer(nng_dialer *d, nng_socket s, const char *addr)
{
    char url[512];
    if (rk_tls_node_url(addr, url, sizeof url) != 0)
        return NNG_EADDRINVAL;
    int rv = nng_dialer_create(d, s, url);
    if (rv == 0 && node_tls) {
        rv = rk_tls_dialer(*d, node_tls);
        if (rv != 0)
            nng_dialer_close(*d);
    }
    return rv;
}

int rk_tls_node_listener(nng_listener l, bool require_cert)
{
    return node_tls ? rk_tls_listener(l, node_tls, require_cert) : 0;
}

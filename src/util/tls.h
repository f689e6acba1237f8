/* TLS for ringkv's nng sockets (tls+tcp://, nng's mbedTLS engine): the
 * certificate files checked, nng TLS configurations built from them, and
 * the one mapping between the tcp:// addresses ringkv writes everywhere
 * (config, member table, gossip) and the tls+tcp:// URL a socket uses.
 *
 * Verification is by CA only: a dialer requires the server's certificate
 * to chain to tls_ca, and a listener that requires certificates requires
 * the same of the client; no host name is checked. Nodes reach each other
 * at whatever IP gossip advertises, and mbedTLS 2.28 (under Debian's nng
 * 1.5.2) matches a name against the CN and DNS SANs only, never an IP SAN.
 * So tls_ca should be a CA that signs this cluster's certificates only:
 * holding one of its certificates is what makes a peer a peer. */
#ifndef RK_UTIL_TLS_H
#define RK_UTIL_TLS_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

/* Check a node's three files: each readable; cert a PEM X.509 certificate
 * valid now (not expired, not yet to come); key a PEM private key (not
 * encrypted) that matches cert; ca one or more PEM certificates that cert
 * verifies against. 0, or -1 with one line in err naming the file and the
 * problem ("/etc/ringkv/node.pem: certificate expired on 2024-01-31 ..."). */
int rk_tls_check_files(const char *cert, const char *key, const char *ca, char *err, size_t errlen);

/* nng TLS configurations for one identity. */
struct rk_tls;

/* Build them from ca (required) and cert + key (both, or both NULL/"" for
 * a client without a certificate): one for dialers (the server must chain
 * to ca; cert is presented when asked), one for listeners that require a
 * client certificate from ca, one for listeners that do not ask. The files
 * are checked first as rk_tls_check_files does (the CA alone without a
 * cert). 0 and *out, or -1 with one line in err. */
int rk_tls_new(struct rk_tls **out, const char *cert, const char *key, const char *ca, char *err,
               size_t errlen);

/* Release t's configurations (sockets that use them keep their own hold).
 * NULL is a no-op. */
void rk_tls_free(struct rk_tls *t);

/* Use t on dialer d, or on listener l (require_cert: a client must present
 * a certificate from the CA, else none is asked for). Before starting it.
 * 0 or an nng error. */
int rk_tls_dialer(nng_dialer d, const struct rk_tls *t);
int rk_tls_listener(nng_listener l, const struct rk_tls *t, bool require_cert);

/* in as the URL a socket uses: with tls, tcp://X becomes tls+tcp://X;
 * without, tls+tcp://X becomes tcp://X. Other schemes are copied as they
 * are. 0, or -1 when it does not fit in len (out is then ""). */
int rk_tls_url(const char *in, bool tls, char *out, size_t len);

/* Does url use TLS (tls+tcp://)? */
bool rk_tls_url_is_tls(const char *url);

/* The node's own identity, for every socket a ringkvd process opens: set
 * once at start, before any socket, and never changed while sockets use
 * it (NULL = plain TCP, the default; unit tests never set it). The
 * process owns t from then on: a later call frees it (sockets that use it
 * keep their own holds on its configurations). */
void rk_tls_set_node(struct rk_tls *t);
const struct rk_tls *rk_tls_node(void);

/* With the node's TLS (rk_tls_node), the dialer recipe every node-side
 * dialer shares: *d created on s for addr written tcp://, dialled as
 * tls+tcp:// and using the node's TLS when that is set. 0 or an nng
 * error (nothing left created). */
int rk_tls_node_dialer(nng_dialer *d, nng_socket s, const char *addr);

/* The URL a node-side socket uses for addr: rk_tls_url(addr, node TLS
 * set, url, len). 0 or -1. */
int rk_tls_node_url(const char *addr, char *url, size_t len);

/* The node's TLS on listener l (created on rk_tls_node_url's URL), when
 * it is set; require_cert as for rk_tls_listener. 0 or an nng error. */
int rk_tls_node_listener(nng_listener l, bool require_cert);

#endif

/* Synchronous ringkv client: one nng req0 socket to one node, one request at
 * a time. Used by kvctl and the dashboard (tui/). Speaks src/proto.h.
 *
 * Threads: an rk_client is not thread-safe. Use one per thread (or guard it
 * with your own lock); different rk_clients are independent.
 *
 * Errors: every call returns 0 or a negative code (util/err.h): a reply
 * status maps through rk_proto_error() (RK_ENOTFOUND, RK_EBUSY, RK_EQUORUM,
 * RK_ETOOLARGE, ...); no answer within the timeout is RK_ETIMEDOUT; other
 * transport failures are -errno (-ECONNRESET, -ENOMEM, -EPROTO for a reply
 * that is not a well-formed ringkv reply). After any failure
 * rk_client_error() holds one line for a human.
 */
#ifndef RK_CLIENT_H
#define RK_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define RK_CLIENT_MAX_MSG RK_PROTO_MAX_MSG /* what the client accepts (proto.h) */

struct rk_client;

/* Open a client for the node at addr: HOST:PORT or an nng URL
 * (tcp://127.0.0.1:7400), or a comma-separated list of them. The dial is
 * non-blocking: a node that is down is not an error here, and nng keeps
 * redialling. A request made while no connection is up first tries a
 * plain TCP connect: when it is refused the next address of the list is
 * used, and when every address refuses the request fails at once with
 * -ECONNREFUSED (a node that accepts nothing within the timeout is
 * RK_ETIMEDOUT). A request whose send timed out was never sent, so it
 * goes to the next address too; one that was sent is never sent again.
 * rk_client_addr() names the address in use.
 * timeout_ms (> 0) bounds each request: send + receive. A request is never
 * resent: a connection lost mid-request fails the call with -ECONNRESET at
 * once (a put is never applied twice by the client's doing).
 * Returns 0 and *out, or RK_EINVAL for a malformed address or timeout
 * (*out is then still allocated so that rk_client_error(*out) explains;
 * close it), or -ENOMEM (then *out is NULL). */
int rk_client_open(struct rk_client **out, const char *addr, int timeout_ms);

/* Use TLS for every address of c (tcp:// and HOST:PORT are dialled as
 * tls+tcp://): the node's certificate must chain to ca (PEM; no host name
 * is checked, util/tls.h says why); cert and key (PEM, both or neither:
 * NULL or "") are presented when the node asks for a client certificate.
 * The files are checked as a node checks its own. Call it before the
 * first request (the connection made so far is redialled). 0, or
 * RK_EINVAL with the file and the problem in rk_client_error(). Without
 * it an address written tls+tcp:// fails each request with RK_EINVAL. */
int rk_client_set_tls(struct rk_client *c, const char *ca, const char *cert, const char *key);

/* Close the socket and free c. NULL is a no-op. Any reply views from
 * rk_client_call() become invalid. */
void rk_client_close(struct rk_client *c);

/* Per-request quorum overrides sent with later requests: r goes with GET,
 * w with PUT and DEL. 0 = the node's default. Values above 255 are refused
 * with RK_EINVAL. */
int rk_client_set_quorum(struct rk_client *c, unsigned r, unsigned w);

/* Store key → val. ttl_ms > 0 makes the key expire that long after the
 * write; 0 = no expiry. On success *version (may be NULL) is the stored
 * version. The caller keeps ownership of key and val. */
int rk_client_put(struct rk_client *c, const void *key, size_t klen, const void *val, size_t vlen,
                  uint64_t ttl_ms, uint64_t *version);

/* Read key. On success *val is a malloc'd copy of the value, NUL-terminated
 * for convenience (the NUL is not counted in *vlen); the caller frees it.
 * *version and *expiry_ms (0 = no expiry; absolute wall-clock ms) may be
 * NULL. An absent, deleted or expired key is RK_ENOTFOUND and *val = NULL.
 * rk_client_get_ex(c, key, klen, false, val, vlen, version, expiry_ms,
 * NULL). */
int rk_client_get(struct rk_client *c, const void *key, size_t klen, void **val, size_t *vlen,
                  uint64_t *version, uint64_t *expiry_ms);

/* rk_client_get, optionally traced. trace sends TRACE = 1: the node then
 * describes in the reply's TEXT which replicas it asked and what each
 * answered (one JSON object, see proto.h); a node without tracing ignores
 * the field and sends no TEXT. text may be NULL; otherwise *text is a
 * malloc'd NUL-terminated copy of the reply's TEXT if the reply carried
 * one, else NULL, whatever the return code (a NOT_FOUND reply carries the
 * trace too; another non-OK status carries an error line); the caller
 * frees it. A transport error leaves *text NULL. */
int rk_client_get_ex(struct rk_client *c, const void *key, size_t klen, bool trace, void **val,
                     size_t *vlen, uint64_t *version, uint64_t *expiry_ms, char **text);

/* Delete key (writes a tombstone). *version (may be NULL) is the
 * tombstone's version. Deleting an absent key is not an error. */
int rk_client_del(struct rk_client *c, const void *key, size_t klen, uint64_t *version);

/* Admin request op: RK_OP_STATUS, RK_OP_STATS, RK_OP_HEALTH, RK_OP_READY,
 * RK_OP_MEMBERS, RK_OP_LEAVE, RK_OP_RING (arg NULL) or RK_OP_JOIN (arg = a
 * seed's gossip address), RK_OP_REMOVE (arg = a node id), RK_OP_LOCATE
 * (arg = a key; its bytes up to the NUL), RK_OP_AE and RK_OP_REPAIR (arg =
 * a partition number in decimal, or NULL for all), RK_OP_PARTS and
 * RK_OP_TRANSFERS (arg NULL), RK_OP_OVERVIEW (arg NULL, or "placement" to
 * add every partition's placement; the node answers MALFORMED for another
 * arg; the reply stays far below RK_CLIENT_MAX_MSG: about 50 KB with
 * placement for 4096 partitions). arg goes out as KEY;
 * force sends FORCE = 1 (REMOVE: take out a member that is not dead). Any
 * other op, or arg NULL where one is needed or given where none is, is
 * RK_EINVAL. On success *json is a malloc'd NUL-terminated copy of the
 * reply's TEXT (one JSON object; "{}" if the node sent none); the caller
 * frees it. On a non-OK status (READY answered UNAVAILABLE, REMOVE answered
 * REFUSED or NOT_FOUND, ...) the code is returned and *json still gets the
 * reply's TEXT if it carried one, else NULL. The caller keeps arg. */
int rk_client_admin_arg(struct rk_client *c, enum rk_op op, const char *arg, bool force,
                        char **json);

/* rk_client_admin_arg(c, op, NULL, false, json): the requests without an
 * argument. */
int rk_client_admin(struct rk_client *c, enum rk_op op, char **json);

/* Generic exchange: encode req (its id is replaced by the client's next
 * request id; flags and status are sent as given), send it, wait for the
 * reply and decode it into *rep. rep's byte fields borrow from a buffer the
 * client owns until the next call on c or rk_client_close(). Returns 0 when
 * the reply status is OK, the mapped code of a non-OK status (with *rep
 * filled), or a transport error (*rep undefined). */
int rk_client_call(struct rk_client *c, const struct rk_msg *req, struct rk_msg *rep);

/* One line describing the last failure on c: the node's TEXT if it sent
 * one, else what went wrong and what to try. "" before any failure. Valid
 * until the next call on c. */
const char *rk_client_error(const struct rk_client *c);

/* Sign every request from now on with the cluster secret's request key
 * (util/auth.h: rk_auth_derive(secret, len, "rpc", ...)); NULL stops
 * signing. A node with security.secret_file requires it for admin
 * requests that change the cluster, and with security.client_auth for
 * every request. The key is copied. */
struct rk_auth_key;
void rk_client_set_key(struct rk_client *c, const struct rk_auth_key *k);

/* The address in use (normalised: tcp://HOST:PORT). */
const char *rk_client_addr(const struct rk_client *c);

/* The status of the last reply received (RK_ST_OK if none yet): lets a
 * caller tell a reply error from a transport error. */
enum rk_status rk_client_last_status(const struct rk_client *c);

/* One address as rk_client_open takes it (in, len bytes: HOST:PORT or a
 * URL) into out as a URL: "tcp://" is put before an address without a
 * scheme. 0, or RK_EINVAL when empty or over outlen. Thread-safe. */
int rk_client_norm_addr(const char *in, size_t len, char *out, size_t outlen);

/* Format a duration in ms the way users write it ("250ms", "2s", "1m"):
 * writes at most n bytes to buf, returns buf. Thread-safe. */
const char *rk_client_fmt_ms(uint64_t ms, char *buf, size_t n);

/* Parse a duration as users write it: a positive decimal number and a unit
 * (ms, s, m, h), e.g. "250ms", "1.5s". Returns 0 and *ms (rounded up to a
 * whole ms), or RK_EINVAL. Thread-safe. */
int rk_client_parse_ms(const char *s, uint64_t *ms);

#endif

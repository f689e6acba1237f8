/* Connections per listening address: a limit (limits.max_connections) and
 * counters, kept by nng pipe callbacks on every socket that listens. A
 * stalled or idle connection costs a descriptor and up to one message of
 * memory (nng allocates a message whole when its length arrives), so the
 * limit is what bounds both under hostile load.
 *
 * Protected mode (local_only): a node without a cluster secret that was
 * not told security.allow_unauthenticated = true accepts connections from
 * its own host only (loopback addresses, ipc, inproc); one from another
 * host is closed as it is accepted, before anything of it is read, counted
 * per listener, and logged at most once a minute with what to change. */
#ifndef RK_CONNS_H
#define RK_CONNS_H

#include <nng/nng.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RK_CONNS_LISTENERS 4 /* client, peer, gossip, and one spare */

struct rk_conns_listener {
    int id;           /* nng_listener_id; written before the listener starts */
    const char *name; /* "client", "peer", "gossip" (static storage) */
    atomic_uint open; /* pipes of this listener that nng holds (refused ones until reaped) */
    atomic_ullong accepted, refused;
    atomic_ullong refused_remote; /* closed by protected mode */
};

struct rk_conns {
    atomic_uint max;                  /* limits.max_connections, per listener; reloadable */
    atomic_uint n;                    /* slots in use; a slot is complete before n covers it */
    atomic_bool local_only;           /* protected mode (above) */
    atomic_uint_fast64_t last_log_ms; /* when protected mode last logged */
    struct rk_conns_listener l[RK_CONNS_LISTENERS];
};

/* Set up c with a limit of max connections per listener. Main thread. */
void rk_conns_init(struct rk_conns *c, uint32_t max);

/* Count and limit the pipes of socket s's listeners added with
 * rk_conns_add (dialed pipes are left alone). 0 or an nng error. Call
 * once per socket, before its listeners start. */
int rk_conns_watch(struct rk_conns *c, nng_socket s);

/* Create (not start) a listener on s for addr, counted as name. 0 or an
 * nng error; *out is valid on 0. Main thread. */
int rk_conns_listener_create(struct rk_conns *c, nng_socket s, const char *addr, const char *name,
                             nng_listener *out);

/* A new limit, for connections accepted from now on (open ones stay).
 * Any thread. */
void rk_conns_set_max(struct rk_conns *c, uint32_t max);

/* Protected mode on or off, for connections accepted from now on. */
void rk_conns_set_local_only(struct rk_conns *c, bool on);

/* Is sa an address of this host (loopback IPv4 or IPv6, IPv4-mapped
 * loopback, ipc, inproc)? */
bool rk_conns_is_local(const nng_sockaddr *sa);

/* Does a listen URL ("tcp://HOST:PORT") bind only to this host (HOST a
 * loopback address or "localhost"; ipc:// and inproc:// too)? */
bool rk_conns_url_is_local(const char *url);

#endif

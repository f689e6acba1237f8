/* Connection limit per listener (contract in conns.h). The callbacks run
 * on nng's threads: ADD_PRE before a pipe joins its socket, REM_POST on
 * nng's reaper once it is gone. A pipe over the limit is closed in ADD_PRE,
 * before the protocol starts reading from it; it still gets its REM_POST,
 * so `open` counts every pipe nng holds for the listener. */
#include "util/conns.h"
#include "util/clock.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define PROTECTED_LOG_EVERY_MS 60000u

void rk_conns_init(struct rk_conns *c, uint32_t max)
{
    memset(c, 0, sizeof(*c));
    atomic_init(&c->max, max);
    atomic_init(&c->n, 0);
    atomic_init(&c->local_only, false);
    atomic_init(&c->last_log_ms, 0);
    for (size_t i = 0; i < RK_CONNS_LISTENERS; i++) {
        atomic_init(&c->l[i].open, 0);
        atomic_init(&c->l[i].accepted, 0);
        atomic_init(&c->l[i].refused, 0);
        atomic_init(&c->l[i].refused_remote, 0);
    }
}

void rk_conns_set_max(struct rk_conns *c, uint32_t max)
{
    atomic_store(&c->max, max);
}

void rk_conns_set_local_only(struct rk_conns *c, bool on)
{
    atomic_store(&c->local_only, on);
}

bool rk_conns_is_local(const nng_sockaddr *sa)
{
    static const uint8_t v6_loop[16] = {[15] = 1};
    static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
    switch (sa->s_family) {
    case NNG_AF_IPC:
    case NNG_AF_INPROC:
    case NNG_AF_ABSTRACT:
        return true;
    case NNG_AF_INET:
        return ((const uint8_t *)&sa->s_in.sa_addr)[0] == 127; /* network byte order */
    case NNG_AF_INET6:
        return memcmp(sa->s_in6.sa_addr, v6_loop, 16) == 0 ||
               (memcmp(sa->s_in6.sa_addr, v4_mapped, 12) == 0 && sa->s_in6.sa_addr[12] == 127);
    default:
        return false;
    }
}

bool rk_conns_url_is_local(const char *url)
{
    if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
        return true;
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    char host[256];
    size_t n;
    if (h[0] == '[') { /* [v6]:port */
        const char *e = strchr(h, ']');
        n = e ? (size_t)(e - h - 1) : 0;
        h++;
    } else {
        const char *e = strrchr(h, ':');
        n = e ? (size_t)(e - h) : strlen(h);
    }
    if (n == 0 || n >= sizeof(host))
        return false; /* "" or "*": every address */
    memcpy(host, h, n);
    host[n] = 0;
    uint8_t a[16];
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    static const uint8_t v6_loop[16] = {[15] = 1};
    return inet_pton(AF_INET6, host, a) == 1 && memcmp(a, v6_loop, 16) == 0;
}

/* A connection from another host refused in protected mode: logged with
 * the fix, at most once a minute (a scan cannot flood the log). */
static void log_refused(struct rk_conns *c, const struct rk_conns_listener *l, nng_pipe p,
                        const nng_sockaddr *sa)
{
    uint64_t now = rk_clock_mono_ns() / 1000000, last = atomic_load(&c->last_log_ms);
    if ((last && now - last < PROTECTED_LOG_EVERY_MS) ||
        !atomic_compare_exchange_strong(&c->last_log_ms, &last, now ? now : 1))
        return;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (sa->s_family == NNG_AF_INET)
        inet_ntop(AF_INET, &sa->s_in.sa_addr, addr, sizeof(addr));
    else if (sa->s_family == NNG_AF_INET6)
        inet_ntop(AF_INET6, sa->s_in6.sa_addr, addr, sizeof(addr));
    (void)p;
    rk_warn("conns",
            "refused a connection from %s on the %s address: this node has no cluster secret and "
            "accepts only connections from its own host (set security.allow_unauthenticated = "
            "true to accept others without one); %llu refused there so far, logged at most once "
            "a minute",
            addr, l->name, (unsigned long long)atomic_load(&l->refused_remote));
}

/* True if p comes from another host while protected mode is on. */
static bool refused_remote(struct rk_conns *c, struct rk_conns_listener *l, nng_pipe p)
{
    if (!atomic_load(&c->local_only))
        return false;
    nng_sockaddr sa = {.s_family = NNG_AF_UNSPEC};
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0 && rk_conns_is_local(&sa))
        return false;
    atomic_fetch_add(&l->refused_remote, 1);
    log_refused(c, l, p, &sa);
    return true;
}

static struct rk_conns_listener *slot_of(struct rk_conns *c, nng_pipe p)
{
    int id = nng_listener_id(nng_pipe_listener(p));
    unsigned n = atomic_load_explicit(&c->n, memory_order_acquire);
    for (unsigned i = 0; id > 0 && i < n; i++)
        if (c->l[i].id == id)
            return &c->l[i];
    return NULL;
}

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct rk_conns *c = arg;
    struct rk_conns_listener *l = slot_of(c, p);
    if (!l)
        return;
    if (ev == NNG_PIPE_EV_REM_POST) {
        atomic_fetch_sub(&l->open, 1);
        return;
    }
    if (refused_remote(c, l, p)) {
        atomic_fetch_add(&l->open, 1); /* its REM_POST still comes */
        nng_pipe_close(p);
        return;
    }
    if (atomic_fetch_add(&l->open, 1) >= atomic_load(&c->max)) {
        atomic_fetch_add(&l->refused, 1);
        nng_pipe_close(p); /* before pipe_start: nothing of it is read or queued */
        return;
    }
    atomic_fetch_add(&l->accepted, 1);
}

int rk_conns_watch(struct rk_conns *c, nng_socket s)
{
    int rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, on_pipe, c);
    if (rv == 0)
        rv = nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, on_pipe, c);
    return rv;
}

int rk_conns_listener_create(struct rk_conns *c, nng_socket s, const char *addr, const char *name,
                             nng_listener *out)
{
    unsigned n = atomic_load(&c->n);
    if (n == RK_CONNS_LISTENERS)
        return NNG_ENOMEM;
    int rv = nng_listener_create(out, s, addr);
    if (rv != 0)
        return rv;
    c->l[n].id = nng_listener_id(*out);
    c->l[n].name = name;
    atomic_store_explicit(&c->n, n + 1, memory_order_release);
    return 0;
}

/* Connection limit per listener (contract in conns.h). The callbacks run
 * on nng's threads: ADD_PRE before a pipe joins its socket, REM_POST on
 * nng's reaper once it is gone. A pipe over the limit is closed in ADD_PRE,
 * before the protocol starts reading from it; it still gets its REM_POST,
 * so `open` counts every pipe nng holds for the listener. */
#include "util/conns.h"

#include <stdio.h>
#include <string.h>

void rk_conns_init(struct rk_conns *c, uint32_t max)
{
    memset(c, 0, sizeof(*c));
    atomic_init(&c->max, max);
    atomic_init(&c->n, 0);
    for (size_t i = 0; i < RK_CONNS_LISTENERS; i++) {
        atomic_init(&c->l[i].open, 0);
        atomic_init(&c->l[i].accepted, 0);
        atomic_init(&c->l[i].refused, 0);
    }
}

void rk_conns_set_max(struct rk_conns *c, uint32_t max)
{
    atomic_store(&c->max, max);
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

/* Bounded nng_close (see nng_close.h). The helper and the caller share one
 * heap block; whichever of them finishes last frees it. */
#include "util/nng_close.h"
#include "util/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct closing {
    nng_socket s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int refs; /* 2 while both sides hold it */
};

static void release(struct closing *c)
{
    pthread_mutex_lock(&c->mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void *closer(void *arg)
{
    struct closing *c = arg;
    nng_close(c->s);
    pthread_mutex_lock(&c->mu);
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    release(c);
    return NULL;
}

bool rk_nng_close_bounded(nng_socket s, unsigned limit_ms, const char *what)
{
    struct closing *c = calloc(1, sizeof(*c));
    pthread_condattr_t ca;
    pthread_t t;
    if (!c)
        return false;
    c->s = s;
    c->refs = 2;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&t, NULL, closer, c) != 0) {
        rk_warn("net", "cannot start a thread to close the %s socket; leaving it open", what);
        c->refs = 1;
        release(c);
        return false;
    }
    pthread_detach(t);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += limit_ms / 1000;
    until.tv_nsec += (long)(limit_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&c->mu);
    while (!c->done && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
        ;
    bool done = c->done;
    pthread_mutex_unlock(&c->mu);
    if (!done)
        rk_warn("net",
                "closing the %s socket did not finish within %u ms (a known nng 1.5.2 "
                "hang); going on without it",
                what, limit_ms);
    release(c);
    return done;
}

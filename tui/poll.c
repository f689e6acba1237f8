/* Pollers: a thread per target, each on its own schedule (poll.h). */
#include "tui/poll.h"

#include "client/client.h"
#include "util/clock.h"
#include "util/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEADER_BYTES 32 /* a reply's framing beyond its JSON text, for the traffic figure */

struct target {
    struct tui_poll *p;
    pthread_t thread;
    bool started;
    struct tui_answer a; /* under p->lock */
    char want_addr[128]; /* where the thread should aim (under p->lock) */
};

struct tui_poll {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    unsigned interval_ms, timeout_ms;
    const char *tls_ca, *tls_cert, *tls_key; /* tui_poll_set_tls; written before any thread */
    const struct rk_auth_key *key;           /* tui_poll_set_key; written before any thread */
    bool stop, want_parts;
    uint64_t kicks;      /* bumped by tui_poll_kick: every thread asks at once */
    uint64_t generation; /* bumped by every attempt's end */
    size_t n;
    struct target t[TUI_POLL_MAX];
};

static void abstime_in(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L)
        ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

/* One admin request; on success *json (malloc'd). Counts the bytes. */
static int ask(struct rk_client *c, enum rk_op op, const char *arg, char **json, uint64_t *rx,
               uint64_t *tx)
{
    *json = NULL;
    int rc = rk_client_admin_arg(c, op, arg, false, json);
    *tx += HEADER_BYTES + (arg ? strlen(arg) : 0);
    if (*json)
        *rx += HEADER_BYTES + strlen(*json);
    if (rc != 0) {
        free(*json);
        *json = NULL;
    }
    return rc;
}

static void replace(char **slot, char *text)
{
    free(*slot);
    *slot = text;
}

/* The member id an OVERVIEW reply names ("node":"..."), without a full
 * parse: the model parses the whole reply later on the main thread. */
static void id_of(const char *json, char *id, size_t cap)
{
    const char *k = json ? strstr(json, "\"node\":\"") : NULL;
    if (!k)
        return;
    k += 8;
    size_t n = strcspn(k, "\"\\");
    if (n >= cap)
        n = cap - 1;
    memcpy(id, k, n);
    id[n] = '\0';
}

/* One round for target t: OVERVIEW (+ MEMBERS and placement when anchor,
 * + PARTS when asked). */
static void round_once(struct target *t, struct rk_client **c, char *aimed, size_t aimed_cap)
{
    struct tui_poll *p = t->p;
    pthread_mutex_lock(&p->lock);
    bool anchor = t->a.anchor, parts = p->want_parts;
    char addr[128];
    snprintf(addr, sizeof addr, "%s", t->want_addr);
    pthread_mutex_unlock(&p->lock);

    if (!*c || strcmp(aimed, addr) != 0) {
        rk_client_close(*c);
        *c = NULL;
        if (rk_client_open(c, addr, (int)p->timeout_ms) != 0 ||
            (p->tls_ca && rk_client_set_tls(*c, p->tls_ca, p->tls_cert, p->tls_key) != 0)) {
            rk_client_close(*c);
            *c = NULL;
        }
        if (*c && p->key)
            rk_client_set_key(*c, p->key);
        snprintf(aimed, aimed_cap, "%s", addr);
    }
    uint64_t rx = 0, tx = 0, t0 = rk_clock_mono_ns();
    char *ov = NULL, *mem = NULL, *pa = NULL, err[200] = "";
    int rc = *c ? ask(*c, RK_OP_OVERVIEW, anchor ? "placement" : NULL, &ov, &rx, &tx) : -ENOMEM;
    uint32_t took = (uint32_t)((rk_clock_mono_ns() - t0) / 1000);
    if (rc == 0 && anchor)
        ask(*c, RK_OP_MEMBERS, NULL, &mem, &rx, &tx);
    if (rc == 0 && parts)
        ask(*c, RK_OP_PARTS, NULL, &pa, &rx, &tx);
    if (rc != 0)
        snprintf(err, sizeof err, "%s", *c ? rk_client_error(*c) : "out of memory");

    pthread_mutex_lock(&p->lock);
    struct tui_answer *a = &t->a;
    a->tried_ms = rk_clock_wall_ms();
    p->generation++;
    a->rx_bytes += rx, a->tx_bytes += tx;
    a->ok = rc == 0;
    snprintf(a->error, sizeof a->error, "%s", err);
    if (rc == 0) {
        id_of(ov, a->id, sizeof a->id);
        replace(&a->overview, ov);
        a->ok_ms = a->tried_ms, a->took_us = took, a->answers++;
        if (mem || !anchor)
            replace(&a->members, mem);
        if (pa || !parts)
            replace(&a->parts, pa);
    }
    pthread_mutex_unlock(&p->lock);
}

static void *run(void *arg)
{
    struct target *t = arg;
    struct tui_poll *p = t->p;
    struct rk_client *c = NULL;
    char aimed[128] = "";
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        uint64_t kicks = p->kicks;
        pthread_mutex_unlock(&p->lock);
        round_once(t, &c, aimed, sizeof aimed);
        pthread_mutex_lock(&p->lock);
        /* The next round starts one interval after this one ended (a node
         * that took its whole timeout is not asked back to back), or at
         * once on a kick. */
        struct timespec until;
        abstime_in(&until, p->interval_ms);
        while (!p->stop && p->kicks == kicks &&
               pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&p->lock);
    rk_client_close(c);
    return NULL;
}

int tui_poll_open(struct tui_poll **out, unsigned interval_ms, unsigned timeout_ms)
{
    struct tui_poll *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->lock, NULL);
    p->interval_ms = interval_ms, p->timeout_ms = timeout_ms;
    *out = p;
    return 0;
}

void tui_poll_set_key(struct tui_poll *p, const struct rk_auth_key *key)
{
    p->key = key;
}

void tui_poll_set_tls(struct tui_poll *p, const char *ca, const char *cert, const char *key)
{
    p->tls_ca = ca, p->tls_cert = cert, p->tls_key = key;
}

void tui_poll_close(struct tui_poll *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->n; i++) {
        if (p->t[i].started)
            pthread_join(p->t[i].thread, NULL);
        free(p->t[i].a.overview);
        free(p->t[i].a.members);
        free(p->t[i].a.parts);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static struct target *find(struct tui_poll *p, const char *id, const char *addr)
{
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        if ((id[0] && strcmp(t->a.id, id) == 0) || strcmp(t->want_addr, addr) == 0)
            return t;
    }
    return NULL;
}

int tui_poll_add(struct tui_poll *p, const char *id, const char *addr)
{
    pthread_mutex_lock(&p->lock);
    struct target *t = find(p, id, addr);
    if (t) {
        if (id[0] && strcmp(t->a.id, id) == 0 && strcmp(t->want_addr, addr) != 0)
            snprintf(t->want_addr, sizeof t->want_addr, "%s", addr);
        if (id[0] && !t->a.id[0])
            snprintf(t->a.id, sizeof t->a.id, "%s", id);
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    if (p->n == TUI_POLL_MAX) {
        pthread_mutex_unlock(&p->lock);
        return -ENOSPC;
    }
    t = &p->t[p->n];
    memset(t, 0, sizeof(*t));
    t->p = p;
    snprintf(t->a.id, sizeof t->a.id, "%s", id);
    snprintf(t->a.addr, sizeof t->a.addr, "%s", addr);
    snprintf(t->want_addr, sizeof t->want_addr, "%s", addr);
    t->a.anchor = p->n == 0;
    int rc = pthread_create(&t->thread, NULL, run, t);
    if (rc == 0) {
        t->started = true;
        p->n++;
    }
    pthread_mutex_unlock(&p->lock);
    return -rc;
}

void tui_poll_set_anchor(struct tui_poll *p, size_t i)
{
    pthread_mutex_lock(&p->lock);
    for (size_t k = 0; k < p->n; k++)
        p->t[k].a.anchor = k == i;
    pthread_mutex_unlock(&p->lock);
}

void tui_poll_want_parts(struct tui_poll *p, bool on)
{
    pthread_mutex_lock(&p->lock);
    p->want_parts = on;
    pthread_mutex_unlock(&p->lock);
}

void tui_poll_kick(struct tui_poll *p)
{
    pthread_mutex_lock(&p->lock);
    p->kicks++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

size_t tui_poll_snapshot(struct tui_poll *p, struct tui_answer *out, size_t max)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->n < max ? p->n : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = p->t[i].a;
        snprintf(out[i].addr, sizeof out[i].addr, "%s", p->t[i].want_addr);
        out[i].overview = dup_or_null(p->t[i].a.overview);
        out[i].members = dup_or_null(p->t[i].a.members);
        out[i].parts = dup_or_null(p->t[i].a.parts);
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

void tui_poll_snapshot_free(struct tui_answer *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].overview);
        free(a[i].members);
        free(a[i].parts);
        a[i].overview = a[i].members = a[i].parts = NULL;
    }
}

uint64_t tui_poll_generation(struct tui_poll *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t g = p->generation;
    pthread_mutex_unlock(&p->lock);
    return g;
}

void tui_poll_wait_round(struct tui_poll *p, unsigned deadline_ms)
{
    uint64_t end = rk_clock_mono_ns() + (uint64_t)deadline_ms * 1000000;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool all = true;
        for (size_t i = 0; i < p->n; i++)
            all = all && p->t[i].a.tried_ms != 0;
        pthread_mutex_unlock(&p->lock);
        if (all || rk_clock_mono_ns() >= end)
            return;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* HTTP: /metrics, /health, /ready (http.h). */
#include "server/http.h"
#include "server/admin_int.h"
#include "server/metrics.h"
#include "config/config.h"
#include "util/jbuf.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STOP_WAIT_MS 5000 /* a handler renders in microseconds; 5 s is stuck */

enum page { PAGE_METRICS, PAGE_HEALTH, PAGE_READY, NPAGES };

struct route {
    struct rk_http *h;
    enum page page;
};

struct rk_http {
    struct rk_shared *sh;
    nng_http_server *srv;
    struct route routes[NPAGES]; /* each handler's data */
    atomic_uint running;         /* handlers under way */
    atomic_bool stopping;
};

/* Finish aio with status and body (copied), or with an error if even the
 * reply cannot be allocated (nng then answers 500 itself). */
static void reply(nng_aio *aio, uint16_t status, const char *ctype, const char *body, size_t len)
{
    nng_http_res *res;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0)
        rv = nng_http_res_set_status(res, status);
    if (rv == 0)
        rv = nng_http_res_set_header(res, "Content-Type", ctype);
    if (rv == 0)
        rv = nng_http_res_set_header(res, "Cache-Control", "no-store");
    if (rv == 0)
        rv = nng_http_res_copy_data(res, body, len);
    if (rv != 0) {
        if (res)
            nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void reply_text(nng_aio *aio, uint16_t status, const char *line)
{
    char body[700];
    int n = snprintf(body, sizeof(body), "%s\n", line);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1;
    reply(aio, status, "text/plain; charset=utf-8", body, len);
}

static void metrics_page(nng_aio *aio, struct rk_shared *sh)
{
    struct rk_jbuf b = {0};
    rk_metrics_render(sh, &b);
    if (b.oom || !b.p)
        reply_text(aio, 500, "out of memory rendering the metrics");
    else if (b.len > RK_HTTP_MAX_REPLY)
        reply_text(aio, 500, "the metrics exceed the reply limit (RK_HTTP_MAX_REPLY)");
    else
        reply(aio, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    free(b.p);
}

static void health_page(nng_aio *aio, struct rk_shared *sh)
{
    char why[512];
    bool protected_mode;
    if (!rk_admin_health(sh, why, sizeof(why))) {
        reply_text(aio, 503, why);
    } else if (rk_admin_exposed(sh, &protected_mode, why, sizeof(why))) {
        char line[600];
        snprintf(line, sizeof(line), "ok; warning: %s", why);
        reply_text(aio, 200, line);
    } else {
        reply_text(aio, 200, "ok");
    }
}

static void ready_page(nng_aio *aio, struct rk_shared *sh)
{
    struct rk_admin_readiness r;
    rk_admin_ready(sh, &r);
    reply_text(aio, r.ready ? 200 : 503, r.ready ? "ok" : r.reason);
}

/* Every route's callback (nng thread). The running count bounds the
 * replies being built at once and lets rk_http_stop wait for them. */
static void on_request(nng_aio *aio)
{
    nng_http_handler *hd = nng_aio_get_input(aio, 1);
    struct route *r = nng_http_handler_get_data(hd);
    struct rk_http *h = r->h;
    unsigned n = atomic_fetch_add(&h->running, 1);
    if (atomic_load(&h->stopping))
        reply_text(aio, 503, "shutting down");
    else if (n >= RK_HTTP_MAX_CONCURRENT)
        reply_text(aio, 503, "too many HTTP requests at once; retry");
    else if (r->page == PAGE_METRICS)
        metrics_page(aio, h->sh);
    else if (r->page == PAGE_HEALTH)
        health_page(aio, h->sh);
    else
        ready_page(aio, h->sh);
    atomic_fetch_sub(&h->running, 1);
}

static int add_route(struct rk_http *h, struct route *r, const char *path)
{
    nng_http_handler *hd;
    int rv = nng_http_handler_alloc(&hd, path, on_request);
    if (rv != 0)
        return rv;
    /* GET, and HEAD, which nng answers from it (405 to the others); no body. */
    if ((rv = nng_http_handler_set_method(hd, "GET")) != 0 ||
        (rv = nng_http_handler_collect_body(hd, true, 0)) != 0 ||
        (rv = nng_http_handler_set_data(hd, r, NULL)) != 0 ||
        (rv = nng_http_server_add_handler(h->srv, hd)) != 0) {
        nng_http_handler_free(hd);
        return rv;
    }
    return 0;
}

static void bind_error(int rv, const char *url, char *err, size_t errlen)
{
    if (rv == NNG_EADDRINUSE)
        snprintf(err, errlen, "bind %s: address in use (listen.http)", url);
    else if (rv == NNG_EADDRINVAL)
        snprintf(err, errlen, "bind %s: invalid address (listen.http)", url);
    else
        snprintf(err, errlen, "listen.http %s: %s", url, nng_strerror(rv));
}

int rk_http_start(struct rk_http **out, struct rk_shared *sh, const char *listen, char *err,
                  size_t errlen)
{
    char url_s[300], why[200];
    *out = NULL;
    if (rk_config_http_url(listen, url_s, sizeof(url_s), why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (!url_s[0])
        return 0; /* off */
    struct rk_http *h = calloc(1, sizeof(*h));
    nng_url *url = NULL;
    if (!h) {
        snprintf(err, errlen, "listen.http: out of memory");
        return -1;
    }
    h->sh = sh;
    static const char *const paths[NPAGES] = {"/metrics", "/health", "/ready"};
    int rv = nng_url_parse(&url, url_s);
    if (rv == 0)
        rv = nng_http_server_hold(&h->srv, url);
    for (int i = 0; rv == 0 && i < NPAGES; i++) {
        h->routes[i] = (struct route){h, (enum page)i};
        rv = add_route(h, &h->routes[i], paths[i]);
    }
    if (rv == 0)
        rv = nng_http_server_start(h->srv);
    if (url)
        nng_url_free(url);
    if (rv != 0) {
        bind_error(rv, url_s, err, errlen);
        if (h->srv)
            nng_http_server_release(h->srv);
        free(h);
        return -1;
    }
    *out = h;
    return 0;
}

void rk_http_stop(struct rk_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    nng_http_server_stop(h->srv);
    /* A callback that began before the stop may still be reading the
     * workers' copies: wait for it, bounded. */
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < STOP_WAIT_MS && atomic_load(&h->running); i++)
        nanosleep(&ms, NULL);
    nng_http_server_release(h->srv);
    free(h);
}

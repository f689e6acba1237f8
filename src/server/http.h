/* The HTTP listener (listen.http): GET /metrics (metrics.h), /health (the
 * HEALTH rule) and /ready (the READY rule, as `kvctl ready`), for
 * Prometheus and load-balancer or Kubernetes probes. nng's HTTP server
 * runs the handlers on its own threads; they read only what the workers
 * publish, so a scrape never blocks a worker loop.
 *
 * Limits: at most RK_HTTP_MAX_CONCURRENT requests are rendered at once
 * (more are answered 503 at once, with nothing built), a reply is at most
 * RK_HTTP_MAX_REPLY bytes (else 500), and a request may carry no body
 * (nng answers 400). nng 1.5.2 closes a connection whose request header
 * passes about 8 KB (measured) and has no option to limit connections:
 * each idle connection costs nng's small per-connection state, and a
 * slow reader holds at most the one reply it asked for.
 */
#ifndef RK_HTTP_H
#define RK_HTTP_H

#include "server/worker.h"

#include <stddef.h>

#define RK_HTTP_MAX_CONCURRENT 4
#define RK_HTTP_MAX_REPLY      (1u << 20)

struct rk_http;

/* Serve sh over HTTP at listen (listen.http, already checked by the
 * config: rk_config_http_url). *out NULL and 0 when listen is "" (off).
 * -1 with one line in err when the address cannot be bound. Main thread,
 * once the workers exist. */
int rk_http_start(struct rk_http **out, struct rk_shared *sh, const char *listen, char *err,
                  size_t errlen);

/* Stop listening and wait for handlers under way (NULL is a no-op). Main
 * thread, before the workers are destroyed. */
void rk_http_stop(struct rk_http *h);

#endif

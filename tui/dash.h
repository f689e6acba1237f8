/* The dashboard: `ringkvd dashboard`, `ringkvd run --dashboard` and the
 * screen of `ringkvd demo`. It reads only the admin API (through
 * src/client), so it works the same on a remote node. */
#ifndef TUI_DASH_H
#define TUI_DASH_H

#include <stdatomic.h>
#include <stdbool.h>

struct tui_demo;

struct tui_dash_opts {
    const char *addr;      /* the node to attach to (its client address) */
    unsigned interval_ms;  /* refresh; 1000 by default */
    bool once, json;       /* one frame (text, or the data as JSON) to stdout */
    struct tui_demo *demo; /* ringkvd demo: its cluster and its keys; else NULL */
    const char *note;      /* a line for the status bar at start (where logs go) */
    /* TLS files (client.h, rk_client_set_tls); tls_ca NULL = plain TCP. */
    const char *tls_ca, *tls_cert, *tls_key;
    /* The cluster secret's request key (util/auth.h): every request is
     * signed with it (a node with security.client_auth wants that); NULL =
     * unsigned. */
    const struct rk_auth_key *secret;
    /* Set to end the dashboard: by a signal handler (a lock-free atomic
     * store is async-signal-safe), or by the thread running the node. */
    atomic_int *quit;
};

/* Run until q (or *quit). Returns an exit code: 0, 1 the node did not
 * answer (--once), 2 usage (no terminal). Main thread of the dashboard. */
int tui_dash_run(const struct tui_dash_opts *o);

#endif

/* Server life cycle (main thread, libev default loop). Startup order:
 * lock + identity → open every worker's storage (recovery) → bind the
 * client listener → start workers → READY=1. Shutdown: STOPPING=1 → every
 * worker stops receiving → once all have, each answers what it holds,
 * commits, syncs and closes its storage → join → exit 0. */
#include "server/server.h"
#include "server/holding.h"
#include "server/http.h"
#include "server/admin_int.h"
#include "util/conns.h"
#include "server/admin.h"
#include "server/control.h"
#include "cluster/gossip.h"
#include "util/nng_close.h"
#include "server/node.h"
#include "server/reapwatch.h"
#include "util/fsutil.h"
#include "server/worker.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/tls.h"

#include <errno.h>
#include <ev.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define SEND_BUF                                                                                   \
    1024                       /* raw rep with the default 0-message buffers costs ~60%            \
                                  more CPU per request (NNG-NOTES); max_inflight bounds use */
#define STOP_POLL_S      0.005 /* how often shutdown checks that receiving stopped */
#define STOP_DEADLINE_S  8.0   /* systemd and operators expect an exit within 10 s */
#define STOP_ANNOUNCE_MS 300   /* longest wait for peers to confirm a stop announcement */
#define CLOSE_LIMIT_MS   1000  /* see nng_close.h */
#define REAP_PROBE_S     1.0   /* how often nng's reaper is probed (reapwatch.h) */
#define REAP_STUCK_NS    (5ull * 1000000000) /* a probe is freed in microseconds; 5 s is stuck */

struct server {
    struct rk_shared sh;
    const char *config_path;
    struct ev_loop *loop;
    ev_signal sigterm, sigint, sighup;
    ev_timer watchdog, status, stop_poll, stop_deadline, reaper;
    int lock_fd;
    bool restart; /* stopping to restart in place (rk_server_run's RK_SERVER_RESTART) */
    bool listening;
    struct rk_gossip *gossip;
    ev_timer holding;       /* rk_holding_review */
    uint64_t members_saved; /* rk_members_digest of the table last saved */
    struct rk_control control;
    struct rk_member self;
    struct rk_http *http; /* listen.http; NULL when off */
};

#define HOLDING_LOOK_S 0.1 /* completed transfers, genesis and drops looked at */

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fatal(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    rk_error("ringkvd", "%s", line);
    sd_notifyf(0, "STATUS=failed: %s", line);
}

static uint32_t worker_count(const struct rk_config *c)
{
    long n = c->workers ? (long)c->workers : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if ((uint32_t)n > c->partitions)
        n = (long)c->partitions; /* a worker without partitions would only idle */
    return (uint32_t)n;
}

/* Over the receive limit nng drops the connection without a word; keep it
 * well above the value limit so oversized values get a TOO_LARGE answer
 * that names the limit. It is also what one stalled connection can cost. */
static size_t recv_max(const struct rk_config *c)
{
    return 2 * ((size_t)c->max_value_size + c->max_key_size) + 65536;
}

static int open_socket(struct server *s)
{
    struct rk_shared *sh = &s->sh;
    size_t maxsz = recv_max(&sh->cfg);
    int rv = nng_rep0_open_raw(&sh->sock);
    if (rv == 0)
        rv = nng_socket_set_size(sh->sock, NNG_OPT_RECVMAXSZ, maxsz);
    if (rv == 0)
        rv = nng_socket_set_int(sh->sock, NNG_OPT_SENDBUF, SEND_BUF);
    if (rv == 0)
        rv = nng_socket_set_int(sh->sock, NNG_OPT_RECVBUF, SEND_BUF);
    if (rv == 0)
        rv = rk_conns_watch(&sh->conns, sh->sock);
    if (rv != 0)
        fatal("client socket: %s", nng_strerror(rv));
    return rv ? -1 : 0;
}

/* One socket serves clients and peers (the same protocol): it listens on
 * both addresses, each with its own connection limit (conns.h), over TLS
 * when the node has it (require_cert: mutual TLS). */
static int listen_on(struct server *s, const char *addr, const char *key, const char *name,
                     bool require_cert)
{
    nng_listener l;
    char url[300];
    int rv = rk_tls_node_url(addr, url, sizeof url) ? NNG_EADDRINVAL : 0;
    if (rv == 0)
        rv = rk_conns_listener_create(&s->sh.conns, s->sh.sock, url, name, &l);
    if (rv == 0)
        rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, recv_max(&s->sh.cfg));
    if (rv == 0)
        rv = rk_tls_node_listener(l, require_cert);
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    if (rv == NNG_EADDRINUSE)
        fatal("bind %s: address in use (is another ringkvd running?)", addr);
    else if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP)
        fatal("bind %s: invalid address (%s wants tcp://HOST:PORT)", addr, key);
    else if (rv != 0)
        fatal("bind %s: %s", addr, nng_strerror(rv));
    return rv ? -1 : 0;
}

/* With TLS, peers must present a certificate from tls_ca; clients must
 * when security.client_auth is set, or when they share the peers'
 * listener (listen.client = listen.peer). */
static int listen_client(struct server *s)
{
    const struct rk_config *c = &s->sh.cfg;
    bool shared = strcmp(c->listen_peer, c->listen_client) == 0;
    if (listen_on(s, c->listen_client, "listen.client", "client", c->client_auth || shared) < 0)
        return -1;
    if (shared)
        return 0;
    return listen_on(s, c->listen_peer, "listen.peer", "peer", true);
}

/* The node's TLS identity for every socket it opens (util/tls.h), when
 * security.tls_* are set (the config checked the files already; they are
 * read again here, so a file changed since is caught too). */
static int node_tls(const struct rk_config *c)
{
    struct rk_tls *t;
    char err[1200];
    if (!c->tls_cert[0])
        return 0;
    if (rk_tls_new(&t, c->tls_cert, c->tls_key, c->tls_ca, err, sizeof(err)) < 0) {
        fatal("TLS: %s", err);
        return -1;
    }
    rk_tls_set_node(t);
    rk_info("server", "TLS on every listener and dialer (tls+tcp): certificate %s, CA %s; %s",
            c->tls_cert, c->tls_ca,
            c->client_auth || strcmp(c->listen_peer, c->listen_client) == 0
                ? "clients must present a certificate from the CA"
                : "clients need the CA only");
    return 0;
}

/* tcp://HOST:PORT as peers reach it: the advertised host and the
 * listener's port (a listener on 0.0.0.0 is not an address to dial).
 * false (with the error said) when it does not fit a member address. */
static bool advertised(const char *listen, const char *host, const char *key, char *out, size_t len)
{
    const char *colon = strrchr(listen, ':');
    int n;
    if (strncmp(listen, "tcp://", 6) == 0 && colon && colon > listen + 6)
        n = snprintf(out, len, "tcp://%s%s", host, colon);
    else
        n = snprintf(out, len, "%s", listen);
    if (n >= 0 && (size_t)n < len)
        return true;
    fatal("%s with listen.advertise makes an address of %d bytes; peers take at most %zu", key, n,
          len - 1);
    return false;
}

#define MEMBERS_FILE "MEMBERS"

/* The member table as of now, in data_dir/MEMBERS (the gossip wire
 * encoding): a restart places keys on the whole ring from its first
 * request, not on whatever part of the cluster it has heard from yet. */
static void save_members(struct server *s, const struct rk_members *t)
{
    size_t len;
    uint8_t *buf = malloc(RK_MEMBERS_WIRE_MAX);
    if (!buf || rk_members_encode(t->m, t->n, buf, RK_MEMBERS_WIRE_MAX, &len) < 0) {
        free(buf);
        return;
    }
    int rc = rk_fs_write_file(s->sh.cfg.data_dir, MEMBERS_FILE, buf, len);
    if (rc < 0)
        rk_warn("server", "cannot save the member list in %s/%s: %s", s->sh.cfg.data_dir,
                MEMBERS_FILE, rk_strerror(rc));
    free(buf);
}

/* Members saved by the previous run (none on a first start or when the
 * file is unreadable, which is logged: gossip rebuilds the list). */
static struct rk_member *load_members(struct server *s, size_t *n)
{
    char path[RK_PATH_MAX];
    size_t len;
    *n = 0;
    rk_fs_path(path, s->sh.cfg.data_dir, MEMBERS_FILE); /* data_dir < 1 KiB: fits */
    uint8_t *buf = malloc(RK_MEMBERS_WIRE_MAX);
    struct rk_member *m = calloc(RK_MEMBERS_MAX, sizeof(*m));
    int rc = buf && m ? rk_fs_read_file(path, buf, RK_MEMBERS_WIRE_MAX, &len) : -ENOMEM;
    if (rc == 0)
        rc = rk_members_decode(buf, len, m, RK_MEMBERS_MAX, n);
    if (rc < 0 && rc != -ENOENT)
        rk_warn("server", "ignoring %s: %s; the member list comes from gossip", path,
                rk_strerror(rc));
    free(buf);
    return m;
}

static const struct rk_holdings *view_holdings(void *arg, const char *id)
{
    return rk_gossip_holdings(arg, id);
}

static void on_holding(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct server *s = t->data;
    rk_holding_review(&s->sh, s->gossip);
}

/* Publish the member counts for readiness, STATUS and the status line. */
static void on_members_changed(struct rk_gossip *g, void *arg)
{
    struct server *s = arg;
    const struct rk_members *t = rk_gossip_members(g);
    uint64_t digest = rk_members_digest(t);
    if (digest != s->members_saved) { /* not for a holdings or agreement change */
        save_members(s, t);
        s->members_saved = digest;
    }
    size_t c[RK_MEMBER_NSTATES];
    rk_members_counts(t, c);
    atomic_store(&s->sh.members_total, (unsigned)t->n);
    atomic_store(&s->sh.members_alive, (unsigned)c[RK_MEMBER_ALIVE]);
    atomic_store(&s->sh.members_seen, (unsigned)rk_gossip_seen(g));
    char why[400];
    rk_admin_set_island(&s->sh, rk_gossip_islanded(g, why, sizeof(why)) ? why : NULL);
    struct rk_view_in in = {.holdings = view_holdings, .arg = g};
    in.agreed = rk_gossip_agreed(g, &in.agreed_since_ms, NULL, 0);
    struct rk_view *v = rk_view_build(t, s->sh.partitions, s->sh.cfg.replicas, &in);
    if (v)
        rk_view_publish(&s->sh.views, v);
    else
        rk_error("server", "out of memory building the cluster view; keeping the previous one");
}

static void begin_stop(struct server *s, const char *why);

static void on_left(void *arg)
{
    begin_stop(arg, "left the cluster");
}

/* A restart comes back with a higher incarnation than its previous life,
 * so its news outranks what others still say about that life: wall-clock
 * ms, or one more than the saved one when refutations (or a clock that
 * stepped back) put that ahead. A saved value beyond max_clock_skew is not
 * inherited: peers would refuse it (members.h). */
static uint64_t next_incarnation(const struct server *s, const struct rk_member *known,
                                 size_t nknown)
{
    uint64_t now = rk_clock_wall_ms(), inc = now;
    for (size_t i = 0; known && i < nknown; i++)
        if (strcmp(known[i].id, s->self.id) == 0 && known[i].incarnation >= inc &&
            known[i].incarnation < now + s->sh.cfg.max_clock_skew_ms)
            inc = known[i].incarnation + 1;
    return inc;
}

static int start_gossip(struct server *s)
{
    const struct rk_config *c = &s->sh.cfg;
    struct rk_member *me = &s->self;
    char err[600] = "";
    snprintf(me->id, sizeof(me->id), "%s", s->sh.node_id);
    if (!advertised(c->listen_client, c->advertise, "listen.client", me->client_addr,
                    sizeof(me->client_addr)) ||
        !advertised(c->listen_peer, c->advertise, "listen.peer", me->peer_addr,
                    sizeof(me->peer_addr)) ||
        !advertised(c->listen_gossip, c->advertise, "listen.gossip", me->gossip_addr,
                    sizeof(me->gossip_addr)))
        return -1;
    me->settings_digest = rk_members_settings_digest(c->cluster_name, c->partitions, c->replicas);
    me->config_digest = rk_config_digest(c);
    const char *seeds[RK_CONFIG_MAX_SEEDS];
    for (uint32_t i = 0; i < c->nseeds; i++)
        seeds[i] = c->seeds[i];
    struct rk_holdings hold;
    if (rk_holdings_init(&hold, c->partitions) < 0) {
        fatal("out of memory");
        return -1;
    }
    if (rk_holding_load(&s->sh, &hold, err, sizeof(err)) < 0) {
        rk_holdings_fini(&hold);
        fatal("%s", err);
        return -1;
    }
    size_t nknown;
    struct rk_member *known = load_members(s, &nknown);
    me->incarnation = next_incarnation(s, known, nknown);
    struct rk_gossip_opts o = {.listen = c->listen_gossip,
                               .self = me,
                               .cluster_name = c->cluster_name,
                               .partitions = c->partitions,
                               .replicas = c->replicas,
                               .seeds = seeds,
                               .nseeds = c->nseeds,
                               .interval_ms = c->gossip_interval_ms,
                               .suspect_after_ms = c->suspect_after_ms,
                               .dead_after_ms = c->dead_after_ms,
                               .auto_remove_ms = c->auto_remove_after_ms,
                               .max_clock_skew_ms = c->max_clock_skew_ms,
                               .on_change = on_members_changed,
                               .arg = s,
                               .known = known,
                               .nknown = nknown,
                               .conns = &s->sh.conns,
                               .holdings = &hold,
                               .data_dir = c->data_dir,
                               .auth = &s->sh.auth};
    int rc = rk_gossip_start(&s->gossip, s->loop, &o, err, sizeof(err));
    free(known);
    rk_holdings_fini(&hold);
    if (rc < 0) {
        fatal("%s", err);
        return -1;
    }
    on_members_changed(s->gossip, s);
    ev_timer_init(&s->holding, on_holding, 0.0, HOLDING_LOOK_S);
    s->holding.data = s;
    ev_timer_start(s->loop, &s->holding);
    if (rk_control_init(&s->control, s->loop, &s->sh, s->gossip, on_left, s) < 0) {
        fatal("out of memory");
        return -1;
    }
    return 0;
}

static int start_workers(struct server *s)
{
    struct rk_shared *sh = &s->sh;
    sh->workers = calloc(sh->nworkers, sizeof(*sh->workers));
    if (!sh->workers)
        return -1;
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        char err[1024] = ""; /* a path under data_dir and what to do about it */
        sd_notifyf(0, "STATUS=recovering storage of worker %u/%u", i + 1, sh->nworkers);
        if (rk_worker_create(&sh->workers[i], sh, i, err, sizeof(err)) < 0) {
            fatal("%s", err);
            return -1;
        }
    }
    if (listen_client(s) < 0)
        return -1;
    /* Bound with the other listeners, before any thread runs, so a bad
     * address stops the start cleanly. A worker's heartbeat is set when
     * it is created: /health judges it from here on. */
    char err[1200];
    if (rk_http_start(&s->http, sh, sh->cfg.listen_http, err, sizeof(err)) < 0) {
        fatal("%s", err);
        return -1;
    }
    s->listening = true;
    if (start_gossip(s) < 0)
        return -1;
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        if (rk_worker_start(sh->workers[i], sh->cfg.pin_workers) < 0) {
            fatal("cannot start worker thread %u", i);
            return -1;
        }
    }
    return 0;
}

/* ---- running ---- */

static bool loops_turning(struct rk_shared *sh)
{
    uint64_t now = rk_clock_mono_ns();
    for (uint32_t i = 0; i < sh->nworkers; i++)
        if (now - rk_worker_heartbeat(sh->workers[i]) > 2ull * 1000000000)
            return false;
    return true;
}

static void on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct server *s = t->data;
    if (loops_turning(&s->sh))
        sd_notify(0, "WATCHDOG=1"); /* withheld while a loop is stuck: systemd restarts us */
}

static void on_status(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct server *s = t->data;
    uint64_t keys = 0;
    for (uint32_t i = 0; i < s->sh.nworkers; i++) {
        struct rk_worker_stats st;
        rk_worker_stats(s->sh.workers[i], &st);
        keys += st.storage.keys;
    }
    sd_notifyf(0, "STATUS=%u members, %u alive; serving %s: %llu keys, %u workers",
               atomic_load(&s->sh.members_total), atomic_load(&s->sh.members_alive),
               s->sh.cfg.listen_client, (unsigned long long)keys, s->sh.nworkers);
}

/* The settings a reload applies (the live ones), from neu into cfg.
 * Workers never read these fields of cfg. */
static void take_live(struct rk_config *cfg, const struct rk_config *neu)
{
    cfg->log_level = neu->log_level;
    cfg->log_format = neu->log_format;
    cfg->max_inflight = neu->max_inflight;
    cfg->max_connections = neu->max_connections;
    cfg->client_rate = neu->client_rate;
    cfg->client_burst = neu->client_burst;
    cfg->ae_interval_ms = neu->ae_interval_ms;
    cfg->ae_max_keys_per_second = neu->ae_max_keys_per_second;
    cfg->ae_enabled = neu->ae_enabled;
    cfg->ae_max_bytes_per_second = neu->ae_max_bytes_per_second;
    cfg->xfer_max_concurrent = neu->xfer_max_concurrent;
    cfg->xfer_max_bytes_per_second = neu->xfer_max_bytes_per_second;
}

/* Whether the node would still run a valid config after the reload: the
 * live settings of neu with the others at their running values (a longer
 * antientropy.interval must stay below the running
 * storage.tombstone_grace, which changes only at restart). */
static bool live_valid(const struct rk_config *run, const struct rk_config *neu, char *err,
                       size_t errlen)
{
    struct rk_config *eff = malloc(sizeof(*eff));
    if (!eff)
        return snprintf(err, errlen, "out of memory"), false;
    *eff = *run;
    take_live(eff, neu);
    bool ok = rk_config_validate(eff, err, errlen) == 0;
    free(eff);
    return ok;
}

static void reload(struct server *s)
{
    if (!s->config_path) {
        rk_info("server", "reload: no config file (built-in defaults); nothing to reload");
        return;
    }
    struct rk_config *neu = malloc(sizeof(*neu));
    char err[600], live[512], restart[512];
    if (!neu)
        return;
    if (rk_config_load(neu, s->config_path, err, sizeof(err)) < 0) {
        rk_error("server", "reload failed, keeping the running config: %s", err);
        free(neu);
        return;
    }
    rk_config_diff(&s->sh.cfg, neu, live, sizeof(live), restart, sizeof(restart));
    if (live[0] && !live_valid(&s->sh.cfg, neu, err, sizeof(err))) {
        rk_error("server",
                 "reload failed, keeping the running config: %s, with the settings that need a "
                 "restart at their running values",
                 err);
        free(neu);
        return;
    }
    if (live[0]) {
        rk_log_set_level(neu->log_level);
        rk_log_set_format(neu->log_format);
        atomic_store(&s->sh.max_inflight, neu->max_inflight);
        rk_ratelimit_set(s->sh.ratelimit, neu->client_rate, neu->client_burst);
        rk_conns_set_max(&s->sh.conns, neu->max_connections);
        rk_ae_pace_set(&s->sh.ae, neu);
        rk_xfer_limits_set(&s->sh.xfer, neu);
        /* Remember what was applied, so the next reload compares against the
         * running values. */
        take_live(&s->sh.cfg, neu);
        rk_info("server", "reloaded: %s", live);
    }
    if (restart[0])
        rk_warn("server", "reload: %s need a restart to change", restart);
    if (!live[0] && !restart[0])
        rk_info("server", "reloaded: nothing changed");
    free(neu);
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)revents;
    sd_notify(0, "RELOADING=1");
    reload(w->data);
    sd_notify(0, "READY=1");
}

/* ---- stopping ---- */

static void on_stop_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct server *s = t->data;
    if (atomic_load(&s->sh.rx_stopped) < s->sh.nworkers)
        return;
    ev_timer_stop(loop, t);
    for (uint32_t i = 0; i < s->sh.nworkers; i++)
        rk_worker_exit(s->sh.workers[i]);
    ev_break(loop, EVBREAK_ALL);
}

/* A worker that does not stop in time (stuck in I/O): leave without it.
 * Acknowledged writes are already durable per the fsync policy; recovery
 * rebuilds whatever index files are missing. */
static void on_stop_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)t, (void)revents;
    rk_error("server", "workers did not stop within %.0f s; exiting without them", STOP_DEADLINE_S);
    _exit(1);
}

/* The stop is announced (or could not be): drain the workers. */
static void on_stop_announced(void *arg)
{
    struct server *s = arg;
    for (uint32_t i = 0; i < s->sh.nworkers; i++)
        rk_worker_stop_rx(s->sh.workers[i]);
    ev_timer_start(s->loop, &s->stop_poll);
}

static void begin_stop(struct server *s, const char *why)
{
    if (atomic_exchange(&s->sh.stopping, true))
        return;
    rk_info("server", "stopping (%s): answering in-flight requests", why);
    /* A restart in place keeps the pid: to systemd it is a reload (the new
     * image says READY=1 again), never a stop it would wait to see exit. */
    sd_notify(0, s->restart ? "RELOADING=1\nSTATUS=restarting in place"
                            : "STOPPING=1\nSTATUS=stopping");
    ev_timer_init(&s->stop_deadline, on_stop_deadline, STOP_DEADLINE_S, 0.0);
    ev_timer_start(s->loop, &s->stop_deadline);
    /* Peers are told first, so they stop sending here (writes for this node
     * become hints, nothing waits on it) while it still answers what they
     * sent before they knew. Also on a restart in place: recovery can take
     * a while, and the new image refutes with a higher incarnation as soon
     * as its gossip runs. Not after a leave: a left node is out already. */
    if (!s->gossip || rk_gossip_stopping(s->gossip, STOP_ANNOUNCE_MS, on_stop_announced, s) < 0)
        on_stop_announced(s);
}

/* nng's reaper is stuck for good (reapwatch.h): every connection closed
 * from now on would keep its descriptor. Stop as on SIGTERM, then restart
 * in place (same pid, same arguments). */
static void on_reaper(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct server *s = t->data;
    uint64_t now = rk_clock_mono_ns();
    if (!rk_reapwatch_stuck(now, REAP_STUCK_NS)) {
        rk_reapwatch_probe(now);
        return;
    }
    ev_timer_stop(s->loop, t);
    rk_error("server",
             "nng's reaper has been stuck for over %llu s (an nng 1.5.2 bug: closed "
             "connections keep their descriptors); restarting in place",
             REAP_STUCK_NS / 1000000000);
    s->restart = true;
    begin_stop(s, "restarting: nng's reaper is stuck");
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)revents;
    char why[32];
    snprintf(why, sizeof(why), "signal %d", w->signum);
    begin_stop(w->data, why);
}

static void watchers_start(struct server *s)
{
    s->loop = ev_default_loop(0);
    ev_signal_init(&s->sigterm, on_stop_signal, SIGTERM);
    ev_signal_init(&s->sigint, on_stop_signal, SIGINT);
    ev_signal_init(&s->sighup, on_sighup, SIGHUP);
    ev_timer_init(&s->status, on_status, 1.0, 5.0);
    ev_timer_init(&s->stop_poll, on_stop_poll, STOP_POLL_S, STOP_POLL_S);
    ev_timer_init(&s->reaper, on_reaper, REAP_PROBE_S, REAP_PROBE_S);
    s->reaper.data = s;
    s->sigterm.data = s->sigint.data = s->sighup.data = s;
    s->status.data = s->stop_poll.data = s->watchdog.data = s;
    ev_signal_start(s->loop, &s->sigterm);
    ev_signal_start(s->loop, &s->sigint);
    ev_signal_start(s->loop, &s->sighup);
    ev_timer_start(s->loop, &s->status);
    ev_timer_start(s->loop, &s->reaper);
    uint64_t usec;
    if (sd_watchdog_enabled(0, &usec) > 0) {
        double half = (double)usec / 2e6; /* systemd's advice: ping at half the timeout */
        ev_timer_init(&s->watchdog, on_watchdog, half, half);
        ev_timer_start(s->loop, &s->watchdog);
    }
}

static void teardown(struct server *s)
{
    struct rk_shared *sh = &s->sh;
    rk_http_stop(s->http); /* its handlers read the workers */
    for (uint32_t i = 0; sh->workers && i < sh->nworkers; i++) {
        if (!sh->workers[i])
            continue;
        rk_worker_join(sh->workers[i]);
        rk_worker_destroy(sh->workers[i]);
    }
    free(sh->workers);
    rk_control_fini(&s->control);
    ev_timer_stop(s->loop, &s->holding);
    rk_gossip_stop(s->gossip);
    rk_view_slot_fini(&sh->views);
    pthread_mutex_destroy(&sh->island_lock);
    if (nng_socket_id(sh->sock) > 0)
        rk_nng_close_bounded(sh->sock, CLOSE_LIMIT_MS, "client");
    if (s->lock_fd >= 0)
        close(s->lock_fd);
}

/* Say at start whether other hosts can reach this node unauthenticated
 * (a warning, also in STATUS and /health) or are refused (protected mode). */
static void log_exposure(const struct rk_shared *sh)
{
    char why[512];
    bool protected_mode;
    const struct rk_config *c = &sh->cfg;
    if (rk_admin_exposed(sh, &protected_mode, why, sizeof(why)))
        rk_warn("server", "%s", why);
    else if (protected_mode &&
             !(rk_conns_url_is_local(c->listen_client) && rk_conns_url_is_local(c->listen_peer) &&
               rk_conns_url_is_local(c->listen_gossip)))
        rk_info("server",
                "protected mode: no cluster secret, so connections from other hosts are refused "
                "(security.allow_unauthenticated = true accepts them)");
}

static int startup(struct server *s)
{
    struct rk_shared *sh = &s->sh;
    char err[1200] = "";
    sh->nworkers = worker_count(&sh->cfg);
    if (rk_node_open(&sh->cfg, sh->nworkers, sh->node_id, sizeof(sh->node_id), &s->lock_fd, err,
                     sizeof(err)) < 0) {
        fatal("%s", err);
        return -1;
    }
    if (node_tls(&sh->cfg) < 0 || open_socket(s) < 0 || start_workers(s) < 0)
        return -1;
    rk_info("server", "ready node=%s client=%s gossip=%s workers=%u partitions=%u data_dir=%s",
            sh->node_id, sh->cfg.listen_client, sh->cfg.listen_gossip, sh->nworkers, sh->partitions,
            sh->cfg.data_dir);
    log_exposure(sh);
    return 0;
}

int rk_server_run(const struct rk_config *cfg, const char *config_path, bool repair)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return 1;
    s->config_path = config_path;
    s->lock_fd = -1;
    s->sh.cfg = *cfg;
    s->sh.repair = repair;
    s->sh.partitions = cfg->partitions;
    s->sh.start_ms = rk_clock_wall_ms();
    atomic_store(&s->sh.max_inflight, cfg->max_inflight);
    if (!(s->sh.ratelimit = rk_ratelimit_new())) {
        free(s);
        return 1;
    }
    rk_ratelimit_set(s->sh.ratelimit, cfg->client_rate, cfg->client_burst);
    char err[600];
    /* A request is looked at in time for its coordinator: never refuse as
     * stale one younger than cluster.request_timeout. */
    uint64_t slack =
        cfg->request_timeout_ms > RK_AUTH_SLACK_MS ? cfg->request_timeout_ms : RK_AUTH_SLACK_MS;
    if (rk_auth_init(&s->sh.auth, cfg->secret_file, cfg->max_clock_skew_ms + slack, err,
                     sizeof(err)) < 0) {
        fatal("%s", err);
        rk_auth_fini(&s->sh.auth);
        rk_ratelimit_free(s->sh.ratelimit);
        free(s);
        return 2;
    }
    rk_ae_pace_set(&s->sh.ae, cfg);
    rk_xfer_limits_set(&s->sh.xfer, cfg);
    rk_ae_budget_init(&s->sh.xfer.budget);
    rk_conns_init(&s->sh.conns, cfg->max_connections);
    /* Protected mode: without a secret, only this host unless told. */
    rk_conns_set_local_only(&s->sh.conns,
                            !rk_admin_authenticated(cfg) && !cfg->allow_unauthenticated);
    rk_view_slot_init(&s->sh.views);
    pthread_mutex_init(&s->sh.island_lock, NULL);
    rk_hlc_init(&s->sh.hlc, cfg->max_clock_skew_ms);
    signal(SIGPIPE, SIG_IGN);
    rk_log_set_level(cfg->log_level);
    rk_log_set_format(cfg->log_format);
    int code = 1;
    watchers_start(s); /* signals are caught from here on, also during recovery */
    if (startup(s) == 0) {
        sd_notify(0, "READY=1");
        on_status(s->loop, &s->status, 0);
        ev_run(s->loop, 0);
        code = s->restart ? RK_SERVER_RESTART : 0;
    }
    teardown(s);
    if (code == 0)
        rk_info("server", "stopped");
    else if (code == RK_SERVER_RESTART)
        rk_info("server", "stopped; restarting");
    rk_ratelimit_free(s->sh.ratelimit);
    rk_auth_fini(&s->sh.auth);
    rk_tls_set_node(NULL); /* sockets still closing hold their own configurations */
    free(s);
    return code;
}

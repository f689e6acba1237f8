/* ringkvd: argument parsing and subcommand dispatch. Exit codes: 0 ok,
 * 1 the node could not start, 2 usage or configuration error. */
#include "client/client.h"
#include "config/config.h"
#include "server/server.h"
#include "tui/dash.h"
#include "tui/demo.h"
#include "util/auth.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: ringkvd [run] [-c FILE] [--dashboard] [--repair]\n"
    "                                     run a node (without -c: built-in defaults,\n"
    "                                     a single node, data in ./ringkv-data)\n"
    "         --dashboard                 show the live dashboard in this terminal; the\n"
    "                                     node's log goes to DATA_DIR/ringkvd.log\n"
    "         --repair                    a data segment that fails its checksums is\n"
    "                                     moved aside (seg-N.rks.corrupt) instead of\n"
    "                                     refusing the start; anti-entropy then copies\n"
    "                                     its records back from the other replicas\n"
    "       ringkvd dashboard [-a ADDR] [--interval DUR] [--once [--json]]\n"
    "                         [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]\n"
    "                         [--secret-file FILE]\n"
    "                                     attach the live dashboard to a running node\n"
    "                                     (ADDR: $KVCTL_ADDR, else tcp://127.0.0.1:7400);\n"
    "                                     --once prints one frame (--json: the data);\n"
    "                                     --tls-*: as kvctl's, for a node with TLS\n"
    "                                     --secret-file: as kvctl's, for a node with\n"
    "                                     security.client_auth\n"
    "       ringkvd demo [--nodes N] [--dir DIR] [--interval DUR] [--no-load]\n"
    "                                     a local N-node cluster (3; at most 9) with a light\n"
    "                                     load and the dashboard; q stops every node\n"
    "       ringkvd check-config FILE     validate a config file; exit 0 or 2\n"
    "       ringkvd version\n";

static int load(struct rk_config *c, const char *path)
{
    char err[1200];
    if (!path) {
        rk_config_single_node(c);
        return 0;
    }
    if (rk_config_load(c, path, err, sizeof(err)) < 0) {
        rk_error("ringkvd", "%s", err);
        return -1;
    }
    return 0;
}

static int bad_arg(const char *cmd, const char *arg, const char *why)
{
    fprintf(stderr, "ringkvd %s: %s \"%s\" (see ringkvd --help)\n", cmd, why, arg);
    return 2;
}

/* What a valid config's TLS asks of clients, for check-config's output. */
static void tls_note(const char *path)
{
    char err[1200];
    struct rk_config *c = malloc(sizeof(*c));
    if (c && rk_config_load(c, path, err, sizeof(err)) == 0 && c->tls_cert[0])
        printf("%s: TLS on every listener; %s\n", path,
               strcmp(c->listen_client, c->listen_peer) == 0
                   ? "listen.client = listen.peer: one listener, so clients must present a "
                     "certificate from tls_ca (kvctl --tls-cert, --tls-key)"
               : c->client_auth ? "clients must present a certificate from tls_ca"
                                : "clients need tls_ca only (kvctl --tls-ca)");
    free(c);
}

static int cmd_check(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "ringkvd check-config: no config file given (usage: ringkvd check-config "
                        "FILE, e.g. /etc/ringkv/ringkv.toml)\n");
        return 2;
    }
    if (argc > 3)
        return bad_arg("check-config", argv[3], "one FILE only; unexpected");
    char err[8192];
    int n = rk_config_check(argv[2], err, sizeof(err));
    if (n > 0) {
        /* Every error, one line each (a syntax error's line has no newline). */
        size_t len = strlen(err);
        fprintf(stderr, "%s%s", err, len && err[len - 1] == '\n' ? "" : "\n");
        return 2;
    }
    printf("%s: ok\n", argv[2]);
    tls_note(argv[2]);
    return 0;
}

/* Start this program again in this process (same pid for systemd and
 * supervisors): every descriptor but stdio is closed by the exec, which is
 * the point (nng holds the leaked ones). Returns only on failure: 1. */
static int restart_in_place(char **argv)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(d))
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (d)
        closedir(d);
    execv("/proc/self/exe", argv);
    rk_error("ringkvd", "restart: exec /proc/self/exe: %s (exiting; a supervisor restarts it)",
             strerror(errno));
    return 1;
}

/* ---- the dashboard beside a node (run --dashboard) ---- */

static atomic_int dash_quit; /* ends the dashboard: signal handlers, the node's thread */

struct dash_thread {
    pthread_t t;
    char addr[300], note[1200];
    const char *tls_ca, *tls_cert, *tls_key; /* the node's config's, or NULL */
    struct rk_auth_key key;                  /* the node's secret's, when it has one */
    bool has_key;
};

/* The node's client address as a local dashboard dials it: a wildcard
 * listen address becomes loopback. */
static void local_addr(const char *listen, char *out, size_t len)
{
    const char *any4 = strstr(listen, "0.0.0.0"), *any6 = strstr(listen, "[::]");
    if (any4)
        snprintf(out, len, "%.*s127.0.0.1%s", (int)(any4 - listen), listen, any4 + 7);
    else if (any6)
        snprintf(out, len, "%.*s[::1]%s", (int)(any6 - listen), listen, any6 + 4);
    else
        snprintf(out, len, "%s", listen);
}

static void *dash_main(void *arg)
{
    struct dash_thread *d = arg;
    struct tui_dash_opts o = {.addr = d->addr,
                              .interval_ms = 1000,
                              .note = d->note,
                              .quit = &dash_quit,
                              .tls_ca = d->tls_ca,
                              .tls_cert = d->tls_cert,
                              .tls_key = d->tls_key,
                              .secret = d->has_key ? &d->key : NULL};
    int rc = tui_dash_run(&o);
    if (!atomic_load(&dash_quit)) /* q (or no terminal): the node stops with the screen */
        kill(getpid(), SIGTERM);
    return (void *)(intptr_t)rc;
}

/* Logs go to DATA_DIR/ringkvd.log while the dashboard owns the terminal:
 * never over the screen. */
static int logs_to_file(const struct rk_config *c, char *path, size_t len)
{
    if (mkdir(c->data_dir, 0750) < 0 && errno != EEXIST) {
        rk_error("ringkvd", "--dashboard: cannot create %s: %s", c->data_dir, strerror(errno));
        return -1;
    }
    snprintf(path, len, "%s/ringkvd.log", c->data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        rk_error("ringkvd", "--dashboard: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    dup2(fd, STDERR_FILENO);
    close(fd);
    return 0;
}

static int run_with_dashboard(struct rk_config *c, const char *path, bool repair)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        rk_error("ringkvd", "--dashboard needs a terminal (run without it under a supervisor)");
        return 2;
    }
    struct dash_thread *d = calloc(1, sizeof(*d));
    char log[1100];
    if (!d || logs_to_file(c, log, sizeof log) < 0) {
        free(d);
        return d ? 2 : 1;
    }
    local_addr(c->listen_client, d->addr, sizeof d->addr);
    if (c->tls_cert[0]) /* the node's own files: its client listener accepts them */
        d->tls_ca = c->tls_ca, d->tls_cert = c->tls_cert, d->tls_key = c->tls_key;
    char err[400];
    /* The node's own secret, for security.client_auth (checked at load). */
    d->has_key = c->secret_file[0] &&
                 rk_auth_key_from_file(c->secret_file, "rpc", &d->key, err, sizeof(err)) == 0;
    snprintf(d->note, sizeof d->note, "q stops the node; its log: %s", log);
    if (pthread_create(&d->t, NULL, dash_main, d) != 0) {
        free(d);
        return 1;
    }
    int code = rk_server_run(c, path, repair);
    atomic_store(&dash_quit, 1);
    pthread_join(d->t, NULL);
    free(d);
    return code;
}

static int cmd_run(int argc, char **argv, int first)
{
    const char *path = NULL;
    bool repair = false, dashboard = false;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 == argc) {
                rk_error("ringkvd",
                         "%s needs a config FILE (e.g. ringkvd run -c "
                         "/etc/ringkv/ringkv.toml; without -c: built-in defaults)",
                         argv[i]);
                return 2;
            }
            path = argv[++i];
        } else if (strcmp(argv[i], "--repair") == 0) {
            repair = true;
        } else if (strcmp(argv[i], "--dashboard") == 0) {
            dashboard = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("%s", usage);
            return 0;
        } else {
            rk_error("ringkvd", "unknown argument \"%s\" (see ringkvd --help)", argv[i]);
            return 2;
        }
    }
    struct rk_config *c = malloc(sizeof(*c));
    if (!c)
        return 1;
    int code = load(c, path) < 0 ? 2
               : dashboard       ? run_with_dashboard(c, path, repair)
                                 : rk_server_run(c, path, repair);
    free(c);
    return code == RK_SERVER_RESTART ? restart_in_place(argv) : code;
}

/* ---- ringkvd dashboard / ringkvd demo ---- */

static void on_quit_signal(int sig)
{
    (void)sig;
    atomic_store(&dash_quit, 1);
}

/* Ctrl-C, SIGTERM and a closed terminal end the dashboard cleanly (the
 * demo then stops its nodes). No SA_RESTART: the key wait returns. */
static void quit_on_signals(void)
{
    struct sigaction sa = {.sa_handler = on_quit_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static int parse_interval(const char *cmd, const char *v, unsigned *ms)
{
    uint64_t x;
    if (rk_client_parse_ms(v, &x) != 0 || x < 100 || x > 60000)
        return bad_arg(cmd, v, "--interval wants a duration from 100ms to 60s, not");
    *ms = (unsigned)x;
    return 0;
}

/* --tls-ca, --tls-cert, --tls-key FILE as kvctl takes them: true (with
 * *i on the value) if argv[*i] is one. */
static bool tls_opt(char **argv, int argc, int *i, struct tui_dash_opts *o)
{
    const char *names[] = {"--tls-ca", "--tls-cert", "--tls-key"};
    const char **fields[] = {&o->tls_ca, &o->tls_cert, &o->tls_key};
    for (size_t k = 0; k < 3; k++)
        if (strcmp(argv[*i], names[k]) == 0 && *i + 1 < argc) {
            *fields[k] = argv[++*i];
            return true;
        }
    return false;
}

/* The TLS files of o, checked once with a client (as kvctl's are): one
 * line and -1 if they cannot work. $KVCTL_TLS_* are the defaults. */
static int check_tls(struct tui_dash_opts *o)
{
    const char *env[] = {"KVCTL_TLS_CA", "KVCTL_TLS_CERT", "KVCTL_TLS_KEY"};
    const char **fields[] = {&o->tls_ca, &o->tls_cert, &o->tls_key};
    for (size_t k = 0; k < 3; k++)
        if (!*fields[k] && getenv(env[k]) && getenv(env[k])[0])
            *fields[k] = getenv(env[k]);
    if (!o->tls_ca && (o->tls_cert || o->tls_key)) {
        fprintf(stderr, "ringkvd dashboard: --tls-cert and --tls-key need --tls-ca\n");
        return -1;
    }
    struct rk_client *c = NULL;
    int rv = o->tls_ca ? rk_client_open(&c, o->addr, 1000) : 0;
    if (rv == 0 && c)
        rv = rk_client_set_tls(c, o->tls_ca, o->tls_cert, o->tls_key);
    if (rv != 0)
        fprintf(stderr, "ringkvd dashboard: %s\n", c ? rk_client_error(c) : "out of memory");
    rk_client_close(c);
    return rv ? -1 : 0;
}

/* --secret-file FILE, else $KVCTL_SECRET_FILE: o signs with its key. 0, or
 * -1 after one line. */
static int dash_secret(struct tui_dash_opts *o, const char *path)
{
    static struct rk_auth_key key;
    char err[400];
    if (!path) {
        path = getenv("KVCTL_SECRET_FILE");
        if (!path || !path[0])
            return 0;
    }
    if (rk_auth_key_from_file(path, "rpc", &key, err, sizeof(err)) < 0) {
        const char *why = strstr(err, path);
        fprintf(stderr, "ringkvd dashboard: --secret-file %s\n", why ? why : err);
        return -1;
    }
    o->secret = &key;
    return 0;
}

static int cmd_dashboard(int argc, char **argv)
{
    const char *env = getenv("KVCTL_ADDR");
    struct tui_dash_opts o = {.addr = env && env[0] ? env : "tcp://127.0.0.1:7400",
                              .interval_ms = 1000,
                              .quit = &dash_quit};
    const char *secret = NULL;
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-a") == 0 || strcmp(argv[i], "--addr") == 0) && i + 1 < argc)
            o.addr = argv[++i];
        else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            if (parse_interval("dashboard", argv[++i], &o.interval_ms))
                return 2;
        } else if (tls_opt(argv, argc, &i, &o))
            continue;
        else if (strcmp(argv[i], "--secret-file") == 0 && i + 1 < argc)
            secret = argv[++i];
        else if (strcmp(argv[i], "--once") == 0)
            o.once = true;
        else if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else
            return bad_arg("dashboard", argv[i], "unknown argument");
    }
    if (o.json && !o.once)
        return bad_arg("dashboard", "--json", "--json goes with --once:");
    if (check_tls(&o) != 0 || dash_secret(&o, secret) != 0)
        return 2;
    if (strchr(o.addr, ','))
        return bad_arg("dashboard", o.addr,
                       "-a wants one address, HOST:PORT or tcp://HOST:PORT, not");
    quit_on_signals();
    return tui_dash_run(&o);
}

static int cmd_demo(int argc, char **argv)
{
    struct tui_demo_opts d = {.nodes = 3, .load_ops = 200};
    unsigned interval = 1000;
    for (int i = 2; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) {
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > 9)
                return bad_arg("demo", argv[i], "--nodes wants 1 to 9, not");
            d.nodes = (unsigned)n;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            d.dir = argv[++i];
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            if (parse_interval("demo", argv[++i], &interval))
                return 2;
        } else if (strcmp(argv[i], "--no-load") == 0) {
            d.load_ops = 0;
        } else {
            return bad_arg("demo", argv[i], "unknown argument");
        }
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "ringkvd demo: needs a terminal (it shows the dashboard)\n");
        return 2;
    }
    char exe[PATH_MAX], err[600];
    if (!realpath("/proc/self/exe", exe)) {
        fprintf(stderr, "ringkvd demo: cannot find this binary: %s\n", strerror(errno));
        return 1;
    }
    d.exe = exe;
    quit_on_signals();
    printf("ringkvd demo: starting %u nodes...\n", d.nodes);
    fflush(stdout);
    struct tui_demo *demo;
    if (tui_demo_start(&demo, &d, err, sizeof err) != 0) {
        fprintf(stderr, "ringkvd demo: %s\n", err);
        return 1;
    }
    struct tui_dash_opts o = {
        .addr = tui_demo_addr(demo),
        .interval_ms = interval,
        .demo = demo,
        .quit = &dash_quit,
        .note = "select a member (Up/Down), then k kill -9, r restart, z pause/resume; ? help"};
    int rc = tui_dash_run(&o);
    tui_demo_stop(demo, stdout);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "run";
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ringkvd %s\n", RINGKV_VERSION);
        return 0;
    }
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check(argc, argv);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        printf("%s", usage);
        return 0;
    }
    if (strcmp(cmd, "dashboard") == 0)
        return cmd_dashboard(argc, argv);
    if (strcmp(cmd, "demo") == 0)
        return cmd_demo(argc, argv);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc, argv, 2);
    return cmd_run(argc, argv, 1); /* ringkvd -c FILE */
}

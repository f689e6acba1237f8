/* `ringkvd demo`'s cluster manager (demo.h): configs, child processes,
 * their signals and reaping, and the light load. Everything here runs on the
 * caller's thread except the load, which has a thread and a client of its
 * own and shares only the node table's states (under mu) and two counters.
 */
#include "tui/demo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/ajson.h"
#include "client/client.h"
#include "util/clock.h"
#include "util/err.h"

extern char **environ;

#define MS 1000000ull /* ns */

enum {
    START_WAIT_MS = 30000, /* every node answers STATUS within this at start */
    STOP_WAIT_MS = 10000,  /* SIGTERM to SIGKILL at stop */
    REAP_WAIT_MS = 5000,   /* restart: a SIGKILL'd process is gone by then */
    PROBE_MS = 500,        /* one STATUS probe while starting */
    LEAVE_MS = 1000,       /* a running node answers LEAVE well within this */
    LOAD_TIMEOUT_MS = 500, /* a dead or paused node costs the load this much */
    LOAD_KEYS = 10000,
    LOAD_VALUE = 100,
    /* The configs hold DIR/node-K/data, and the daemon joins file names
     * to its data_dir within 1 KiB (config.h: data_dir[1024]). */
    DIR_MAX = 900,
    PORT_FLOOR = 10000, /* below: well-known services, often firewalled */
    /* Room above the random base for every node's ports and some taken
     * ones in between. */
    PORT_ROOM = 256,
};

/* Variables of our own environment a node must not inherit: under systemd
 * they would make the child notify or take sockets meant for the caller
 * (tests/cluster/harness.py scrubs the same). */
static const char *const scrub_env[] = {
    "NOTIFY_SOCKET", "WATCHDOG_USEC",  "WATCHDOG_PID", "LISTEN_FDS",
    "LISTEN_PID",    "LISTEN_FDNAMES", "KVCTL_ADDR",   NULL};

struct node {
    /* Fixed once the slot exists (the load thread reads client). */
    char id[32];
    char client[64], peer[64], gossip[64];
    char dir[PATH_MAX], conf[PATH_MAX], log[PATH_MAX];
    /* Written by the caller's thread only; state also under d->mu. */
    pid_t pid; /* > 0 while the process exists (until reaped) */
    enum tui_demo_state state;
    int exit_code; /* -1 while pid > 0 */
    int end_sig;   /* the signal that ended the last process, 0 if none did */
    unsigned starts;
};

struct tui_demo {
    char dir[PATH_MAX];
    char exe[PATH_MAX];
    char **envp;      /* environ without scrub_env, owned */
    unsigned initial; /* expect_nodes, and the replicas derived from it */
    unsigned port_next, port_end;
    pthread_mutex_t mu;
    /* Guarded by mu: n grows and states change on the caller's thread,
     * the load thread reads them. */
    size_t n;
    struct node nodes[TUI_DEMO_MAX_NODES];
    pthread_cond_t cv; /* with mu: load_on or quit changed */
    /* Written under mu by the caller's thread, which alone may also read
     * them without it. */
    bool load_on, quit;
    pthread_t load_thread; /* the caller's: valid while load_started */
    bool load_started;
    uint64_t period_ns;          /* fixed before the load thread starts */
    _Atomic uint64_t ok, failed; /* the load thread's, read by the caller */
};

static const char *state_name(enum tui_demo_state s)
{
    static const char *const names[] = {"running", "paused", "killed", "exited", "leaving"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* Write one status line into msg and return rc. */
__attribute__((format(printf, 4, 5))) static int say(char *msg, size_t len, int rc, const char *fmt,
                                                     ...)
{
    if (msg && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static uint64_t mono_ms(void)
{
    return rk_clock_mono_ns() / MS;
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * (long)MS};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void set_state(struct tui_demo *d, struct node *n, enum tui_demo_state s)
{
    pthread_mutex_lock(&d->mu);
    n->state = s;
    pthread_mutex_unlock(&d->mu);
}

/* ---- ports ---- */

/* First port of the kernel's ephemeral range: outgoing connections (the
 * nodes dialling each other, the load's client) take their local ports
 * from there, so a node's listening port taken from it could be in use
 * when the node restarts. */
static unsigned ephemeral_low(void)
{
    unsigned lo = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u", &lo) != 1)
            lo = 32768;
        fclose(f);
    }
    return lo;
}

static bool port_free(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* A random base below the ephemeral range, so that two demos (or a demo
 * and a test run) rarely try the same ports. */
static int pick_port_base(struct tui_demo *d, char *err, size_t len)
{
    unsigned end = ephemeral_low();
    unsigned floor = end > PORT_FLOOR + 2 * PORT_ROOM ? PORT_FLOOR : 1024;
    if (end > 65536 || end < floor + 2 * PORT_ROOM)
        return say(err, len, -EADDRNOTAVAIL,
                   "demo: the ephemeral port range starts at %u: no room below it for the "
                   "nodes' ports (see /proc/sys/net/ipv4/ip_local_port_range)",
                   end);
    uint64_t x = rk_clock_mono_ns() ^ ((uint64_t)getpid() << 32);
    x = (x ^ (x >> 31)) * 0x9E3779B97F4A7C15ull; /* spread the clock's low bits */
    d->port_next = floor + (unsigned)((x >> 16) % (end - PORT_ROOM - floor));
    d->port_end = end;
    return 0;
}

/* Three ports that were free a moment ago: client, peer, gossip. */
static int take_ports(struct tui_demo *d, unsigned out[3])
{
    for (int k = 0; k < 3; k++) {
        while (d->port_next < d->port_end && !port_free(d->port_next))
            d->port_next++;
        if (d->port_next >= d->port_end)
            return -EADDRINUSE;
        out[k] = d->port_next++;
    }
    return 0;
}

/* ---- files ---- */

/* s as a TOML basic string. */
static void toml_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The seeds are the first nodes' gossip addresses: every node, an added
 * one too, joins through them, and any one of them answering is enough. */
static void write_seeds(FILE *f, const struct tui_demo *d)
{
    size_t k = d->initial < 3 ? d->initial : 3;
    fputs("seeds = [", f);
    for (size_t i = 0; i < k; i++) {
        fputs(i ? ", " : "", f);
        toml_str(f, d->nodes[i].gossip);
    }
    fputs("]\n", f);
}

/* The node's config. Intervals are short so that a demo shows suspicion,
 * death, hints and anti-entropy within seconds; everything else is the
 * default a real cluster would run with. */
static void write_config_body(FILE *f, const struct tui_demo *d, const struct node *n)
{
    unsigned r = d->initial < 3 ? d->initial : 3; /* N, R, W: all nodes must agree */
    char data[PATH_MAX + 8];
    snprintf(data, sizeof(data), "%s/data", n->dir);
    fprintf(f, "# %s of a local demo cluster, written by `ringkvd demo`.\n\n[node]\nid = ", n->id);
    toml_str(f, n->id);
    fputs("\ndata_dir = ", f);
    toml_str(f, data);
    /* Up to nine nodes share one machine: two workers each, left to the
     * scheduler rather than all pinned to the same first cores. */
    fputs("\nworkers = 2\npin_workers = false\n\n[listen]\nclient = ", f);
    toml_str(f, n->client);
    fputs("\npeer = ", f);
    toml_str(f, n->peer);
    fputs("\ngossip = ", f);
    toml_str(f, n->gossip);
    fputs("\nhttp = \"\"\nadvertise = \"127.0.0.1\"\n\n[cluster]\nname = \"demo\"\n", f);
    write_seeds(f, d);
    fprintf(f, "replicas = %u\nread_quorum = %u\nwrite_quorum = %u\nexpect_nodes = %u\n\n", r,
            r / 2 + 1, r / 2 + 1, d->initial);
    fputs("[gossip]\ninterval = \"250ms\"\nsuspect_after = \"1s\"\ndead_after = \"3s\"\n\n"
          "[antientropy]\ninterval = \"10s\"\n\n"
          /* Segments are preallocated: nine nodes of two workers stay small. */
          "[storage]\nsegment_size = \"8MiB\"\n",
          f);
}

static int write_config(const struct tui_demo *d, const struct node *n)
{
    FILE *f = fopen(n->conf, "we");
    if (!f)
        return -errno;
    write_config_body(f, d, n);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* The last non-empty line of the log at path, control bytes shown as '?'. */
static void log_tail(const char *path, char *out, size_t len)
{
    char buf[4096];
    snprintf(out, len, "(its log is empty)");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t got = size > 0 ? pread(fd, buf, sizeof(buf) - 1, from) : 0;
    close(fd);
    if (got <= 0)
        return;
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r' || buf[got - 1] == ' '))
        got--;
    buf[got] = '\0';
    char *line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    if (*line)
        say(out, len, 0, "%s", line);
}

/* mkdir dir, or accept an existing empty one. */
static int make_empty_dir(const char *dir, char *err, size_t len)
{
    if (mkdir(dir, 0755) == 0)
        return 0;
    int e = errno;
    if (e != EEXIST)
        return say(err, len, -e, "demo: cannot create %s: %s", dir, strerror(e));
    DIR *dh = opendir(dir);
    if (!dh)
        return say(err, len, -errno, "demo: %s: %s", dir, strerror(errno));
    struct dirent *de;
    bool empty = true;
    while (empty && (de = readdir(dh)) != NULL)
        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
    closedir(dh);
    if (!empty)
        return say(err, len, RK_EINVAL,
                   "demo: %s is not empty; give a new or empty directory for the demo's data", dir);
    return 0;
}

static int make_demo_dir(struct tui_demo *d, const char *want, char *err, size_t len)
{
    char tmpl[PATH_MAX];
    if (!want) {
        const char *tmp = getenv("TMPDIR");
        snprintf(tmpl, sizeof(tmpl), "%s/ringkv-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(tmpl))
            return say(err, len, -errno, "demo: cannot create %s: %s", tmpl, strerror(errno));
        want = tmpl;
    } else {
        int rc = make_empty_dir(want, err, len);
        if (rc < 0)
            return rc;
    }
    if (!realpath(want, d->dir))
        return say(err, len, -errno, "demo: %s: %s", want, strerror(errno));
    if (strlen(d->dir) > DIR_MAX)
        return say(err, len, RK_EINVAL, "demo: %s is too long for a data dir (at most %d bytes)",
                   d->dir, DIR_MAX);
    return 0;
}

/* ---- processes ---- */

static int build_env(struct tui_demo *d)
{
    size_t n = 0, k = 0;
    while (environ && environ[n])
        n++;
    d->envp = calloc(n + 1, sizeof(char *));
    if (!d->envp)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        bool drop = false;
        for (const char *const *s = scrub_env; *s && !drop; s++) {
            size_t l = strlen(*s);
            drop = strncmp(environ[i], *s, l) == 0 && environ[i][l] == '=';
        }
        if (!drop && !(d->envp[k++] = strdup(environ[i])))
            return -ENOMEM;
    }
    return 0;
}

static void free_env(char **envp)
{
    for (size_t i = 0; envp && envp[i]; i++)
        free(envp[i]);
    free(envp);
}

/* What the child needs, prepared before fork: between fork and exec a
 * child of a threaded process may only make async-signal-safe calls. */
struct exec_plan {
    char *argv[5];
    char **envp;
    int nullfd, logfd, errfd; /* errfd: close-on-exec pipe end for exec's errno */
    pid_t parent;
    sigset_t none;
};

/* In the forked child: set the process up and exec the node; on failure
 * report errno through the pipe and exit. Only system calls from here on. */
__attribute__((noreturn)) static void child_exec(const struct exec_plan *p)
{
    /* Its own process group: a Ctrl-C in the terminal reaches the
     * dashboard only, which then stops the nodes in order. */
    setpgid(0, 0);
    /* Should the dashboard die without stopping the demo (a crash, kill
     * -9), its nodes stop too instead of running on unseen. A stopped
     * (paused) one gets it once the orphaned group is sent SIGCONT. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != p->parent) /* it died before prctl */
        _exit(127);
    dup2(p->nullfd, 0);
    dup2(p->logfd, 1);
    dup2(p->logfd, 2);
    /* Nothing else of ours (the load's sockets, the caller's terminal
     * state) leaks into a node; errfd closes itself at exec. */
    if (p->errfd > 3)
        close_range(3, (unsigned)p->errfd - 1, 0);
    close_range((unsigned)p->errfd + 1, ~0u, 0);
    /* Signals the caller ignores or blocks must not stay so in the node. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP and the like refuse: fine */
    sigprocmask(SIG_SETMASK, &p->none, NULL);
    execve(p->argv[0], p->argv, p->envp);
    int e = errno;
    ssize_t w = write(p->errfd, &e, sizeof(e));
    (void)w;
    _exit(127);
}

/* fd itself, or a close-on-exec copy of it at 3 or above (closing fd): the
 * child's dup2s onto 0, 1 and 2 must not clobber one another's source. */
static int high_fd(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return h;
}

/* Fork and exec plan; returns the pid, or -errno (exec's own error when
 * exec failed: the child reports it through a close-on-exec pipe). */
static pid_t fork_exec(struct exec_plan *p)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    p->errfd = pfd[1] = high_fd(pfd[1]);
    if (pfd[1] < 0) {
        int e = errno;
        close(pfd[0]);
        return -e;
    }
    pid_t pid = fork();
    if (pid == 0)
        child_exec(p);
    int e = errno;
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return -e;
    }
    setpgid(pid, pid); /* also here, so that it holds whoever runs first */
    int child_errno = 0;
    ssize_t r;
    while ((r = read(pfd[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    if (r > 0) { /* exec failed: the child has exited; reap it here */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -(child_errno ? child_errno : EIO);
    }
    return pid;
}

/* Start `exe run -c CONF`, stdout and stderr appended to the node's log.
 * Returns 0 (n->pid set, state RUNNING) or -errno with msg saying why. */
static int spawn_node(struct tui_demo *d, struct node *n, char *msg, size_t len)
{
    struct exec_plan p = {
        .argv = {d->exe, "run", "-c", n->conf, NULL}, .envp = d->envp, .parent = getpid()};
    sigemptyset(&p.none);
    p.logfd = high_fd(open(n->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (p.logfd < 0)
        return say(msg, len, -errno, "%s: cannot open %s: %s", n->id, n->log, strerror(errno));
    p.nullfd = high_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (p.nullfd < 0) {
        int e = errno;
        close(p.logfd);
        return say(msg, len, -e, "%s: cannot open /dev/null: %s", n->id, strerror(e));
    }
    n->starts++;
    dprintf(p.logfd, "==== demo: start #%u of %s: %s run -c %s\n", n->starts, n->id, d->exe,
            n->conf);
    pid_t pid = fork_exec(&p);
    close(p.logfd);
    close(p.nullfd);
    if (pid < 0)
        return say(msg, len, (int)pid, "%s: cannot start %s: %s", n->id, d->exe,
                   strerror((int)-pid));
    n->pid = pid;
    n->exit_code = -1;
    set_state(d, n, TUI_DEMO_RUNNING);
    return 0;
}

/* Reap n's process if it has ended (block: wait for it). A process the
 * demo killed stays KILLED; any other end is EXITED. Returns true when n
 * has no process left. */
static bool reap(struct tui_demo *d, struct node *n, bool block)
{
    if (n->pid <= 0)
        return true;
    int st = 0;
    pid_t r;
    while ((r = waitpid(n->pid, &st, block ? 0 : WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return false;
    /* ECHILD: someone else reaped it (SIGCHLD ignored): gone, status unknown. */
    n->exit_code = r < 0             ? -1
                   : WIFEXITED(st)   ? WEXITSTATUS(st)
                   : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
                                     : -1;
    n->end_sig = r > 0 && WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    n->pid = 0;
    if (n->state != TUI_DEMO_KILLED)
        set_state(d, n, TUI_DEMO_EXITED);
    return true;
}

/* Poll-reap n for up to ms; true once it is gone. */
static bool reap_within(struct tui_demo *d, struct node *n, unsigned ms)
{
    uint64_t deadline = mono_ms() + ms;
    while (!reap(d, n, false)) {
        if (mono_ms() >= deadline)
            return false;
        nap_ms(10);
    }
    return true;
}

/* Every node process ends: paused ones resumed, SIGTERM, up to
 * STOP_WAIT_MS, then SIGKILL. Only the PIDs in the table are signalled. */
static void stop_nodes(struct tui_demo *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        struct node *n = &d->nodes[i];
        if (n->pid > 0 && !reap(d, n, false)) {
            if (n->state == TUI_DEMO_PAUSED)
                kill(n->pid, SIGCONT);
            kill(n->pid, SIGTERM);
        }
    }
    uint64_t deadline = mono_ms() + STOP_WAIT_MS;
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < d->n; i++)
            all = reap(d, &d->nodes[i], false) && all;
        if (all || mono_ms() >= deadline)
            break;
        nap_ms(20);
    }
    for (size_t i = 0; i < d->n; i++) {
        struct node *n = &d->nodes[i];
        if (n->pid <= 0)
            continue;
        pid_t pid = n->pid;
        kill(pid, SIGKILL);
        reap(d, n, true);
        if (out)
            fprintf(out, "%s (pid %ld) did not stop within %d s of SIGTERM: killed\n", n->id,
                    (long)pid, STOP_WAIT_MS / 1000);
    }
}

/* ---- starting ---- */

/* Ask n for STATUS on c; RK_EREFUSED if another node answers there. */
static int probe_status(struct rk_client *c, const struct node *n, char *why, size_t len)
{
    char *json = NULL;
    int rc = rk_client_admin(c, RK_OP_STATUS, &json);
    if (rc < 0) {
        snprintf(why, len, "%s", rk_client_error(c));
        free(json);
        return rc;
    }
    struct rk_ajson *doc = NULL;
    rc = rk_ajson_parse(&doc, json, strlen(json), RK_AJSON_ONE_LINE);
    const char *id = rc == 0 ? rk_ajson_text(rk_ajson_member(rk_ajson_root(doc), "node")) : NULL;
    if (rc == 0 && (!id || strcmp(id, n->id) != 0)) {
        snprintf(why, len, "node \"%s\" answers on %s, not %s", id ? id : "?", n->client, n->id);
        rc = RK_EREFUSED;
    } else if (rc < 0) {
        snprintf(why, len, "its STATUS reply is not JSON");
    }
    rk_ajson_free(doc);
    free(json);
    return rc;
}

/* Ask n for READY; 0 once the node judges the formed cluster (its reply
 * then counts the under-replicated partitions: a node still waiting for
 * cluster.expect_nodes answers ready without that judgement), else a code
 * and the node's reason in why. */
static int probe_ready(struct rk_client *c, char *why, size_t len)
{
    char *json = NULL;
    struct rk_ajson *doc = NULL;
    int rc = rk_client_admin(c, RK_OP_READY, &json);
    if (json && rk_ajson_parse(&doc, json, strlen(json), RK_AJSON_ONE_LINE) < 0)
        doc = NULL;
    const struct rk_ajson_val *root = doc ? rk_ajson_root(doc) : NULL;
    const char *reason = rk_ajson_text(rk_ajson_member(root, "reason"));
    if (rc == 0 && !rk_ajson_member(root, "partitions_under_replicated"))
        rc = RK_EBUSY;
    if (rc < 0)
        snprintf(why, len, "not ready: %s", reason ? reason : rk_client_error(c));
    rk_ajson_free(doc);
    free(json);
    return rc;
}

/* How far a node has come while the demo starts. */
struct probe {
    struct rk_client *c;
    enum { P_STATUS, P_READY, P_DONE } stage;
    char why[256]; /* why the last probe did not pass */
};

static int start_failed(const struct node *n, int rc, const char *what, char *err, size_t len)
{
    char tail[512];
    log_tail(n->log, tail, sizeof(tail));
    return say(err, len, rc, "demo: %s %s; %s ends: %s", n->id, what, n->log, tail);
}

/* One step for node n: fails (err set) if it has exited or another node
 * answers on its port; else advances p->stage when its probe passes. */
static int probe_one(struct tui_demo *d, struct node *n, struct probe *p, char *err, size_t len)
{
    if (reap(d, n, false)) {
        char what[96];
        if (n->end_sig)
            snprintf(what, sizeof(what), "was ended by signal %d (%s) while starting", n->end_sig,
                     strsignal(n->end_sig));
        else
            snprintf(what, sizeof(what), "exited with status %d while starting", n->exit_code);
        return start_failed(n, RK_EREFUSED, what, err, len);
    }
    if (!p->c && rk_client_open(&p->c, n->client, PROBE_MS) < 0)
        return start_failed(n, -ENOMEM, "cannot get a client", err, len);
    if (p->stage == P_STATUS) {
        int rc = probe_status(p->c, n, p->why, sizeof(p->why));
        if (rc == RK_EREFUSED)
            return start_failed(n, rc, p->why, err, len);
        if (rc == 0)
            p->stage = P_READY;
    }
    if (p->stage == P_READY && probe_ready(p->c, p->why, sizeof(p->why)) == 0)
        p->stage = P_DONE;
    return 0;
}

/* Wait until every node answers STATUS with its own id, then until each
 * judges the cluster formed (READY): a load started earlier meets
 * partitions no replica holds yet, and the first frames would show a
 * failure that is only the cluster forming. */
static int wait_serving(struct tui_demo *d, char *err, size_t len)
{
    struct probe p[TUI_DEMO_MAX_NODES] = {0};
    uint64_t deadline = mono_ms() + START_WAIT_MS;
    int rc = 0;
    for (;;) {
        size_t waiting = 0, first = d->n; /* first: the lowest slot not done */
        for (size_t i = 0; i < d->n && rc == 0; i++) {
            if (p[i].stage != P_DONE)
                rc = probe_one(d, &d->nodes[i], &p[i], err, len);
            if (p[i].stage != P_DONE && waiting++ == 0)
                first = i;
        }
        if (rc < 0 || waiting == 0)
            break;
        if (mono_ms() >= deadline) {
            char what[320];
            say(what, sizeof(what), 0, "did not %s within %d s (%s)",
                p[first].stage == P_STATUS ? "answer STATUS" : "become ready", START_WAIT_MS / 1000,
                p[first].why);
            rc = start_failed(&d->nodes[first], RK_ETIMEDOUT, what, err, len);
            break;
        }
        nap_ms(50); /* a refused connection fails at once: do not spin */
    }
    for (size_t i = 0; i < d->n; i++)
        rk_client_close(p[i].c);
    return rc;
}

/* Fill slot i: id, ports, addresses, paths. Its files come later: the
 * seeds in every config name the first nodes' gossip addresses. */
static int init_slot(struct tui_demo *d, size_t i, char *msg, size_t len)
{
    struct node *n = &d->nodes[i];
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "node-%zu", i + 1);
    unsigned p[3];
    if (take_ports(d, p) < 0)
        return say(msg, len, -EADDRINUSE, "%s: no free loopback port left below %u", n->id,
                   d->port_end);
    snprintf(n->client, sizeof(n->client), "tcp://127.0.0.1:%u", p[0]);
    snprintf(n->peer, sizeof(n->peer), "tcp://127.0.0.1:%u", p[1]);
    snprintf(n->gossip, sizeof(n->gossip), "tcp://127.0.0.1:%u", p[2]);
    /* d->dir is at most DIR_MAX bytes: every path fits. */
    say(n->dir, sizeof(n->dir), 0, "%s/%s", d->dir, n->id);
    say(n->conf, sizeof(n->conf), 0, "%s/%s/ringkv.toml", d->dir, n->id);
    say(n->log, sizeof(n->log), 0, "%s/%s/ringkvd.log", d->dir, n->id);
    n->exit_code = -1;
    n->state = TUI_DEMO_EXITED; /* not started yet; not counted in d->n either */
    return 0;
}

/* Create slot d->n's dir and config and start it; the slot counts from
 * then on. */
static int launch_slot(struct tui_demo *d, char *msg, size_t len)
{
    struct node *n = &d->nodes[d->n];
    if (mkdir(n->dir, 0755) < 0 && errno != EEXIST)
        return say(msg, len, -errno, "%s: cannot create %s: %s", n->id, n->dir, strerror(errno));
    int rc = write_config(d, n);
    if (rc < 0)
        return say(msg, len, rc, "%s: cannot write %s: %s", n->id, n->conf, strerror(-rc));
    rc = spawn_node(d, n, msg, len);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&d->mu);
    d->n++;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* ---- the load ---- */

struct load {
    struct rk_client *c;
    char addr[64];
    size_t cursor; /* slot to try next when the current node fails */
    uint64_t rng;
};

/* Under d->mu: the client address of the next RUNNING node from
 * l->cursor on; false if none runs. */
static bool pick_target(struct tui_demo *d, struct load *l)
{
    for (size_t k = 0; k < d->n; k++) {
        size_t i = (l->cursor + k) % d->n;
        if (d->nodes[i].state == TUI_DEMO_RUNNING) {
            memcpy(l->addr, d->nodes[i].client, sizeof(l->addr));
            l->cursor = i;
            return true;
        }
    }
    return false;
}

static uint64_t next_rand(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* One PUT or GET; counts it. On failure the client is dropped so that the
 * next operation goes to the next running node. Not under d->mu. */
static void load_op(struct tui_demo *d, struct load *l)
{
    if (!l->c && rk_client_open(&l->c, l->addr, LOAD_TIMEOUT_MS) < 0) {
        rk_client_close(l->c);
        l->c = NULL;
        atomic_fetch_add(&d->failed, 1);
        return;
    }
    uint64_t r = next_rand(&l->rng);
    char key[16], val[LOAD_VALUE];
    int klen = snprintf(key, sizeof(key), "demo-%05u", (unsigned)(r % LOAD_KEYS));
    int rc;
    if (r & (1ull << 32)) {
        for (size_t i = 0; i < sizeof(val); i++)
            val[i] = (char)('a' + (r >> (i % 48)) % 26);
        rc = rk_client_put(l->c, key, (size_t)klen, val, sizeof(val), 0, NULL);
    } else {
        void *got = NULL;
        size_t glen = 0;
        rc = rk_client_get(l->c, key, (size_t)klen, &got, &glen, NULL, NULL);
        free(got);
        if (rc == RK_ENOTFOUND) /* a key the load has not written yet: an answer */
            rc = 0;
    }
    if (rc == 0) {
        atomic_fetch_add(&d->ok, 1);
        return;
    }
    atomic_fetch_add(&d->failed, 1);
    rk_client_close(l->c);
    l->c = NULL;
    l->cursor++;
}

static void abs_time(uint64_t mono_ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000ull);
    ts->tv_nsec = (long)(mono_ns % 1000000000ull);
}

/* Paced at period_ns per operation; a stall (every node down or slow) is
 * not made up for by a burst afterwards beyond one second's worth. */
static void *load_main(void *arg)
{
    struct tui_demo *d = arg;
    struct load l = {.rng = rk_clock_mono_ns()};
    uint64_t next = rk_clock_mono_ns();
    pthread_mutex_lock(&d->mu);
    while (!d->quit) {
        if (!d->load_on) {
            pthread_cond_wait(&d->cv, &d->mu);
            next = rk_clock_mono_ns();
            continue;
        }
        uint64_t now = rk_clock_mono_ns();
        if (now < next) {
            struct timespec ts;
            abs_time(next, &ts);
            pthread_cond_timedwait(&d->cv, &d->mu, &ts);
            continue; /* the flags may have changed */
        }
        next = now > next + 1000 * MS ? now : next + d->period_ns;
        if (!l.c && !pick_target(d, &l))
            continue; /* nothing runs: try again next tick */
        pthread_mutex_unlock(&d->mu);
        load_op(d, &l);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    rk_client_close(l.c);
    return NULL;
}

static int start_load_thread(struct tui_demo *d)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* rk_clock_mono_ns's clock */
    int rc = pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -rc;
    rc = pthread_create(&d->load_thread, NULL, load_main, d);
    if (rc != 0) {
        pthread_cond_destroy(&d->cv);
        return -rc;
    }
    d->load_started = true;
    return 0;
}

static void stop_load_thread(struct tui_demo *d)
{
    if (!d->load_started)
        return;
    pthread_mutex_lock(&d->mu);
    d->quit = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->load_thread, NULL); /* at most one operation: LOAD_TIMEOUT_MS */
    pthread_cond_destroy(&d->cv);
    d->load_started = false;
}

/* ---- the demo ---- */

/* Stop the load and every node; with out, say where the data and logs
 * are (a failed start has said so in its error). */
static void demo_free(struct tui_demo *d, FILE *out)
{
    stop_load_thread(d);
    stop_nodes(d, out);
    if (out)
        fprintf(out, "data and logs: %s (node-K/ringkvd.log, node-K/data for K = 1..%zu)\n", d->dir,
                d->n);
    pthread_mutex_destroy(&d->mu);
    free_env(d->envp);
    free(d);
}

static int check_opts(const struct tui_demo_opts *o, unsigned *nodes, char *err, size_t len)
{
    if (!o || !o->exe || !*o->exe)
        return say(err, len, RK_EINVAL, "demo: no ringkvd binary given to start the nodes with");
    *nodes = o->nodes ? o->nodes : TUI_DEMO_DEFAULT_NODES;
    if (*nodes > TUI_DEMO_MAX_NODES)
        return say(err, len, RK_EINVAL, "demo: --nodes %u is out of range 1..%d", o->nodes,
                   TUI_DEMO_MAX_NODES);
    if (strlen(o->exe) >= PATH_MAX)
        return say(err, len, -ENAMETOOLONG, "demo: the ringkvd path is too long (%zu bytes)",
                   strlen(o->exe));
    if (access(o->exe, X_OK) < 0)
        return say(err, len, -errno, "demo: cannot run %s: %s", o->exe, strerror(errno));
    return 0;
}

static int demo_alloc(struct tui_demo **out, const struct tui_demo_opts *o, char *err, size_t len)
{
    unsigned nodes = 0;
    int rc = check_opts(o, &nodes, err, len);
    if (rc < 0)
        return rc;
    struct tui_demo *d = calloc(1, sizeof(*d));
    if (!d)
        return say(err, len, -ENOMEM, "demo: out of memory");
    pthread_mutex_init(&d->mu, NULL);
    snprintf(d->exe, sizeof(d->exe), "%s", o->exe);
    d->initial = nodes;
    unsigned ops = o->load_ops ? o->load_ops : TUI_DEMO_DEFAULT_LOAD_OPS;
    d->period_ns = 1000000000ull / ops;
    d->load_on = o->load_ops > 0;
    if (build_env(d) < 0)
        rc = say(err, len, -ENOMEM, "demo: out of memory");
    if (rc == 0)
        rc = pick_port_base(d, err, len);
    if (rc == 0)
        rc = make_demo_dir(d, o->dir, err, len);
    if (rc < 0) {
        demo_free(d, NULL);
        return rc;
    }
    *out = d;
    return 0;
}

int tui_demo_start(struct tui_demo **out, const struct tui_demo_opts *o, char *err, size_t len)
{
    struct tui_demo *d = NULL;
    *out = NULL;
    say(err, len, 0, "%s", "");
    int rc = demo_alloc(&d, o, err, len);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < d->initial && rc == 0; i++)
        rc = init_slot(d, i, err, len);
    for (unsigned i = 0; i < d->initial && rc == 0; i++)
        rc = launch_slot(d, err, len);
    if (rc == 0)
        rc = wait_serving(d, err, len);
    if (rc == 0)
        rc = start_load_thread(d);
    if (rc < 0) {
        if (err && !*err)
            say(err, len, rc, "demo: %s", rk_strerror(rc));
        demo_free(d, NULL);
        return rc;
    }
    *out = d;
    return 0;
}

const char *tui_demo_dir(const struct tui_demo *d)
{
    return d->dir;
}

const char *tui_demo_addr(const struct tui_demo *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->nodes[i].state == TUI_DEMO_RUNNING)
            return d->nodes[i].client;
    return d->nodes[0].client;
}

size_t tui_demo_count(const struct tui_demo *d)
{
    return d->n;
}

void tui_demo_node(const struct tui_demo *d, size_t i, struct tui_demo_node *out)
{
    memset(out, 0, sizeof(*out));
    if (i >= d->n)
        return;
    const struct node *n = &d->nodes[i];
    snprintf(out->id, sizeof(out->id), "%s", n->id);
    snprintf(out->client, sizeof(out->client), "%s", n->client);
    out->pid = n->pid;
    out->state = n->state;
    out->exit_code = n->exit_code;
}

void tui_demo_poll(struct tui_demo *d)
{
    for (size_t i = 0; i < d->n; i++)
        reap(d, &d->nodes[i], false);
}

/* Slot i after reaping it, or NULL with msg set. */
static struct node *slot(struct tui_demo *d, size_t i, char *msg, size_t len)
{
    if (i >= d->n) {
        say(msg, len, RK_EINVAL, "no node-%zu: the demo has node-1..node-%zu", i + 1, d->n);
        return NULL;
    }
    reap(d, &d->nodes[i], false); /* act on its state as of now */
    return &d->nodes[i];
}

int tui_demo_kill(struct tui_demo *d, size_t i, char *msg, size_t len)
{
    struct node *n = slot(d, i, msg, len);
    if (!n)
        return RK_EINVAL;
    if (n->pid <= 0 || n->state == TUI_DEMO_KILLED)
        return say(msg, len, RK_EREFUSED, "%s is not running (%s)", n->id, state_name(n->state));
    if (kill(n->pid, SIGKILL) < 0)
        return say(msg, len, -errno, "%s: kill -9 %ld: %s", n->id, (long)n->pid, strerror(errno));
    set_state(d, n, TUI_DEMO_KILLED);
    return say(msg, len, 0, "%s killed (pid %ld, kill -9)", n->id, (long)n->pid);
}

int tui_demo_restart(struct tui_demo *d, size_t i, char *msg, size_t len)
{
    struct node *n = slot(d, i, msg, len);
    if (!n)
        return RK_EINVAL;
    if (n->state != TUI_DEMO_KILLED && n->state != TUI_DEMO_EXITED)
        return say(msg, len, RK_EREFUSED, "%s is %s (pid %ld): kill it before restarting it", n->id,
                   state_name(n->state), (long)n->pid);
    /* The old process holds the data dir's lock until it is gone. */
    if (!reap_within(d, n, REAP_WAIT_MS))
        return say(msg, len, RK_EBUSY, "%s (pid %ld) has not ended %d s after kill -9; try again",
                   n->id, (long)n->pid, REAP_WAIT_MS / 1000);
    int rc = spawn_node(d, n, msg, len);
    if (rc < 0)
        return rc;
    return say(msg, len, 0, "%s started again (pid %ld), same config and data", n->id,
               (long)n->pid);
}

int tui_demo_pause(struct tui_demo *d, size_t i, char *msg, size_t len)
{
    struct node *n = slot(d, i, msg, len);
    if (!n)
        return RK_EINVAL;
    if (n->state != TUI_DEMO_RUNNING)
        return say(msg, len, RK_EREFUSED, "%s is %s: only a running node can be paused", n->id,
                   state_name(n->state));
    if (kill(n->pid, SIGSTOP) < 0)
        return say(msg, len, -errno, "%s: kill -STOP %ld: %s", n->id, (long)n->pid,
                   strerror(errno));
    set_state(d, n, TUI_DEMO_PAUSED);
    return say(msg, len, 0, "%s paused (pid %ld, SIGSTOP)", n->id, (long)n->pid);
}

int tui_demo_resume(struct tui_demo *d, size_t i, char *msg, size_t len)
{
    struct node *n = slot(d, i, msg, len);
    if (!n)
        return RK_EINVAL;
    if (n->state != TUI_DEMO_PAUSED)
        return say(msg, len, RK_EREFUSED, "%s is %s, not paused", n->id, state_name(n->state));
    if (kill(n->pid, SIGCONT) < 0)
        return say(msg, len, -errno, "%s: kill -CONT %ld: %s", n->id, (long)n->pid,
                   strerror(errno));
    set_state(d, n, TUI_DEMO_RUNNING);
    return say(msg, len, 0, "%s resumed (pid %ld, SIGCONT)", n->id, (long)n->pid);
}

int tui_demo_add(struct tui_demo *d, char *msg, size_t len)
{
    if (d->n >= TUI_DEMO_MAX_NODES)
        return say(msg, len, RK_EREFUSED, "the demo runs at most %d nodes", TUI_DEMO_MAX_NODES);
    int rc = init_slot(d, d->n, msg, len);
    if (rc == 0)
        rc = launch_slot(d, msg, len);
    if (rc < 0)
        return rc;
    const struct node *n = &d->nodes[d->n - 1];
    size_t seeds = d->initial < 3 ? d->initial : 3;
    char via[32] = "node-1";
    if (seeds > 1)
        snprintf(via, sizeof(via), "node-1..node-%zu", seeds);
    return say(msg, len, 0, "%s added (pid %ld); it joins through %s", n->id, (long)n->pid, via);
}

int tui_demo_leave(struct tui_demo *d, size_t i, char *msg, size_t len)
{
    struct node *n = slot(d, i, msg, len);
    if (!n)
        return RK_EINVAL;
    if (n->state != TUI_DEMO_RUNNING)
        return say(msg, len, RK_EREFUSED, "%s is %s: only a running node can leave", n->id,
                   state_name(n->state));
    struct rk_client *c = NULL;
    char *json = NULL;
    int rc = rk_client_open(&c, n->client, LEAVE_MS);
    if (rc == 0)
        rc = rk_client_admin(c, RK_OP_LEAVE, &json);
    if (rc < 0) {
        say(msg, len, rc, "%s did not take LEAVE: %s", n->id,
            c ? rk_client_error(c) : rk_strerror(rc));
    } else {
        struct rk_ajson *doc = NULL;
        const char *m = NULL;
        if (rk_ajson_parse(&doc, json, strlen(json), RK_AJSON_ONE_LINE) == 0)
            m = rk_ajson_text(rk_ajson_member(rk_ajson_root(doc), "message"));
        say(msg, len, 0, "%s %s", n->id, m ? m : "leaving");
        rk_ajson_free(doc);
        set_state(d, n, TUI_DEMO_LEAVING);
    }
    free(json);
    rk_client_close(c);
    return rc;
}

void tui_demo_set_load(struct tui_demo *d, bool on)
{
    pthread_mutex_lock(&d->mu);
    d->load_on = on;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

bool tui_demo_load(const struct tui_demo *d, uint64_t *ok, uint64_t *failed)
{
    if (ok)
        *ok = atomic_load(&d->ok);
    if (failed)
        *failed = atomic_load(&d->failed);
    return d->load_on; /* written on this thread only */
}

void tui_demo_stop(struct tui_demo *d, FILE *out)
{
    if (d)
        demo_free(d, out);
}

/* `ringkvd demo`'s cluster manager against the real daemon (RK_RINGKVD, the
 * build's ringkvd): a 3-node demo in a temp dir goes through every action
 * (load, kill -9, restart, pause, resume, add, leave, stop) and each one is
 * checked from outside: through the admin API and through the processes
 * themselves (/proc, kill(pid, 0)). Actions in the wrong state must refuse
 * with a message. A failing start must name the node and its log's last
 * line and leave no process behind. Every wait polls with a deadline; the
 * demo dir is printed first and kept when a check fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tui/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/ajson.h"
#include "client/client.h"
#include "testutil.h"

#ifndef RK_RINGKVD
#error "RK_RINGKVD must name the ringkvd binary (tests/unit/CMakeLists.txt)"
#endif

extern char **environ;

#define MAX_PIDS 32

/* Deadlines, generous for an ASan build on two shared cores. */
#define UP_MS       30000 /* a started node answers STATUS */
#define CONVERGE_MS 30000 /* gossip agrees on a membership change */
#define LEAVE_MS    60000 /* a leaving node hands its partitions over and stops */

static struct tui_demo *demo;
static char dir[PATH_MAX];
static pid_t pids[MAX_PIDS]; /* every node process seen, to check stop by PID */
static size_t npids;

static void note_pids(void)
{
    for (size_t i = 0; i < tui_demo_count(demo); i++) {
        struct tui_demo_node n;
        tui_demo_node(demo, i, &n);
        bool known = n.pid <= 0;
        for (size_t k = 0; k < npids && !known; k++)
            known = pids[k] == n.pid;
        if (!known && npids < MAX_PIDS)
            pids[npids++] = n.pid;
    }
}

static struct tui_demo_node node(size_t i)
{
    struct tui_demo_node n;
    tui_demo_node(demo, i, &n);
    return n;
}

/* Poll cond (tui_demo_poll first each time, if a demo runs) until it holds, or fail naming
 * what and the demo dir. */
#define WAIT_FOR(cond, ms, ...)                                                                    \
    do {                                                                                           \
        uint64_t deadline_ = tu_mono_us() + (uint64_t)(ms)*1000;                                   \
        for (;;) {                                                                                 \
            if (demo)                                                                              \
                tui_demo_poll(demo);                                                               \
            if (cond)                                                                              \
                break;                                                                             \
            if (tu_mono_us() >= deadline_) {                                                       \
                print_error("timed out after %d ms; demo dir (kept): %s\n", (int)(ms), dir);       \
                fail_msg("waited in vain for " __VA_ARGS__);                                       \
            }                                                                                      \
            tu_usleep(20000);                                                                      \
        }                                                                                          \
    } while (0)

/* One admin request to addr; the parsed reply in *doc on success. */
static int admin(const char *addr, enum rk_op op, struct rk_ajson **doc)
{
    struct rk_client *c = NULL;
    char *json = NULL;
    *doc = NULL;
    int rc = rk_client_open(&c, addr, 1000);
    if (rc == 0)
        rc = rk_client_admin(c, op, &json);
    if (rc == 0)
        rc = rk_ajson_parse(doc, json, strlen(json), 0);
    free(json);
    rk_client_close(c);
    return rc;
}

/* Node i answers STATUS with its own id. */
static bool answers(size_t i)
{
    struct tui_demo_node n = node(i);
    struct rk_ajson *doc;
    if (admin(n.client, RK_OP_STATUS, &doc) < 0)
        return false;
    const char *id = rk_ajson_text(rk_ajson_path(rk_ajson_root(doc), "node"));
    bool ok = id && strcmp(id, n.id) == 0;
    rk_ajson_free(doc);
    return ok;
}

/* Node i answers READY as a member of the formed cluster: its reply
 * judges the partitions (a node still forming answers without that). */
static bool ready_formed(size_t i)
{
    struct rk_ajson *doc;
    if (admin(node(i).client, RK_OP_READY, &doc) < 0)
        return false;
    bool ok = rk_ajson_member(rk_ajson_root(doc), "partitions_under_replicated") != NULL;
    rk_ajson_free(doc);
    return ok;
}

/* Node i's MEMBERS: its count of alive members (-1 if it does not answer)
 * and, with id, that member's state copied to state ("" if not listed). */
static int members(size_t i, const char *id, char *state, size_t cap)
{
    struct rk_ajson *doc;
    if (state)
        state[0] = '\0';
    if (admin(node(i).client, RK_OP_MEMBERS, &doc) < 0)
        return -1;
    const struct rk_ajson_val *root = rk_ajson_root(doc);
    uint64_t alive = 0;
    rk_ajson_u64(rk_ajson_path(root, "counts.alive"), &alive);
    const struct rk_ajson_val *arr = rk_ajson_member(root, "members");
    for (const struct rk_ajson_val *m = rk_ajson_first(arr); m && id; m = rk_ajson_next(m)) {
        const char *mid = rk_ajson_text(rk_ajson_member(m, "id"));
        const char *st = rk_ajson_text(rk_ajson_member(m, "state"));
        if (mid && st && strcmp(mid, id) == 0)
            snprintf(state, cap, "%s", st);
    }
    rk_ajson_free(doc);
    return (int)alive;
}

static bool member_is(size_t i, const char *id, const char *want)
{
    char st[16];
    members(i, id, st, sizeof(st));
    return strcmp(st, want) == 0;
}

/* The process state letter of pid from /proc (R, S, T, Z ...); 0 if gone. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    return p && p[1] == ' ' ? p[2] : 0;
}

static bool pid_gone(pid_t pid)
{
    return kill(pid, 0) < 0 && errno == ESRCH;
}

static uint64_t load_ok(void)
{
    uint64_t ok = 0;
    tui_demo_load(demo, &ok, NULL);
    return ok;
}

static uint64_t load_total(void)
{
    uint64_t ok = 0, failed = 0;
    tui_demo_load(demo, &ok, &failed);
    return ok + failed;
}

/* Run argv, return its exit status (or -1). */
static int run(char *const argv[])
{
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* How many times needle occurs in the file at path (0 if unreadable). */
static size_t count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *buf = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    fclose(f);
    buf[len] = '\0';
    size_t count = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        count++;
    free(buf);
    return count;
}

static void expect_refused(int rc, const char *msg, const char *what, const char *id)
{
    if (rc != RK_EREFUSED || !strstr(msg, id))
        fail_msg("%s: rc %d (%s), msg \"%s\": want RK_EREFUSED and a line naming %s", what, rc,
                 rk_strerror(rc), msg, id);
}

/* ---- the steps of the lifecycle test ---- */

static void step_started(void)
{
    char real[PATH_MAX];
    assert_non_null(realpath(dir, real));
    assert_string_equal(tui_demo_dir(demo), real);
    assert_int_equal(tui_demo_count(demo), 3);
    for (size_t i = 0; i < 3; i++) {
        struct tui_demo_node n = node(i);
        char id[16], conf[PATH_MAX + 64];
        snprintf(id, sizeof(id), "node-%zu", i + 1);
        assert_string_equal(n.id, id);
        assert_int_equal(n.state, TUI_DEMO_RUNNING);
        assert_true(n.pid > 0);
        assert_int_equal(n.exit_code, -1);
        assert_true(answers(i));
        assert_true(ready_formed(i)); /* tui_demo_start waited for it */
        /* The generated config is one the daemon's own checker accepts. */
        snprintf(conf, sizeof(conf), "%s/%s/ringkv.toml", dir, n.id);
        char *argv[] = {RK_RINGKVD, "check-config", conf, NULL};
        assert_int_equal(run(argv), 0);
    }
    note_pids();
    assert_string_equal(tui_demo_addr(demo), node(0).client);
    for (size_t i = 0; i < 3; i++)
        WAIT_FOR(members(i, NULL, NULL, 0) == 3, CONVERGE_MS, "node-%zu to see 3 alive", i + 1);
}

static void step_load(void)
{
    assert_true(tui_demo_load(demo, NULL, NULL));
    WAIT_FOR(load_ok() >= 50, 20000, "50 load operations to succeed");
    tui_demo_set_load(demo, false);
    assert_false(tui_demo_load(demo, NULL, NULL));
    /* "Off" is a negative: only time shows it. Past one operation's
     * timeout (500 ms) nothing but the one in flight may have finished. */
    uint64_t before = load_total();
    tu_usleep(800 * 1000);
    uint64_t after = load_total();
    if (after > before + 1)
        fail_msg("load off, yet %llu operations ran in 800 ms",
                 (unsigned long long)(after - before));
    tui_demo_set_load(demo, true);
    uint64_t ok = load_ok();
    WAIT_FOR(load_ok() >= ok + 20, 20000, "the load to run again");
}

static void step_kill_restart(void)
{
    char msg[256];
    struct tui_demo_node n = node(1);
    assert_int_equal(tui_demo_kill(demo, 1, msg, sizeof(msg)), 0);
    char want[96];
    snprintf(want, sizeof(want), "node-2 killed (pid %d, kill -9)", n.pid);
    assert_string_equal(msg, want);
    assert_int_equal(node(1).state, TUI_DEMO_KILLED);
    WAIT_FOR(pid_gone(n.pid), 10000, "pid %d of node-2 to be gone", n.pid);
    assert_int_equal(node(1).state, TUI_DEMO_KILLED);
    assert_int_equal(node(1).pid, 0);
    assert_int_equal(node(1).exit_code, 128 + SIGKILL);

    /* Nothing to do on a killed node but restart it. */
    expect_refused(tui_demo_kill(demo, 1, msg, sizeof(msg)), msg, "kill of a killed node",
                   "node-2");
    expect_refused(tui_demo_pause(demo, 1, msg, sizeof(msg)), msg, "pause of a killed node",
                   "node-2");
    expect_refused(tui_demo_resume(demo, 1, msg, sizeof(msg)), msg, "resume of a killed node",
                   "node-2");
    expect_refused(tui_demo_leave(demo, 1, msg, sizeof(msg)), msg, "leave of a killed node",
                   "node-2");
    assert_int_equal(tui_demo_kill(demo, 7, msg, sizeof(msg)), RK_EINVAL);
    assert_non_null(strstr(msg, "node-8"));
    assert_int_equal(node(1).state, TUI_DEMO_KILLED);

    /* The load moves to the nodes still running. */
    uint64_t ok = load_ok();
    WAIT_FOR(load_ok() >= ok + 20, 20000, "the load to go on with node-2 down");

    assert_int_equal(tui_demo_restart(demo, 1, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "node-2 started again"));
    struct tui_demo_node r = node(1);
    assert_int_equal(r.state, TUI_DEMO_RUNNING);
    assert_true(r.pid > 0 && r.pid != n.pid);
    note_pids();
    WAIT_FOR(answers(1), UP_MS, "node-2 to answer after its restart");
    expect_refused(tui_demo_restart(demo, 1, msg, sizeof(msg)), msg, "restart of a running node",
                   "node-2");
    /* Same log, appended: one header per start. */
    char log[PATH_MAX + 32];
    snprintf(log, sizeof(log), "%s/node-2/ringkvd.log", dir);
    assert_int_equal(count_in_file(log, "==== demo: start #"), 2);
}

static void step_pause_resume(void)
{
    char msg[256];
    pid_t pid = node(2).pid;
    assert_int_equal(tui_demo_pause(demo, 2, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "node-3 paused"));
    assert_int_equal(node(2).state, TUI_DEMO_PAUSED);
    WAIT_FOR(proc_state(pid) == 'T', 5000, "node-3 (pid %d) to be stopped", pid);
    expect_refused(tui_demo_pause(demo, 2, msg, sizeof(msg)), msg, "pause of a paused node",
                   "node-3");
    expect_refused(tui_demo_restart(demo, 2, msg, sizeof(msg)), msg, "restart of a paused node",
                   "node-3");
    expect_refused(tui_demo_leave(demo, 2, msg, sizeof(msg)), msg, "leave of a paused node",
                   "node-3");
    assert_int_equal(node(2).state, TUI_DEMO_PAUSED);
    assert_int_equal(tui_demo_resume(demo, 2, msg, sizeof(msg)), 0);
    assert_int_equal(node(2).state, TUI_DEMO_RUNNING);
    WAIT_FOR(proc_state(pid) != 'T', 5000, "node-3 (pid %d) to run again", pid);
    WAIT_FOR(answers(2), UP_MS, "node-3 to answer after resume");
    expect_refused(tui_demo_resume(demo, 2, msg, sizeof(msg)), msg, "resume of a running node",
                   "node-3");
}

static void step_add_leave(void)
{
    char msg[256];
    assert_int_equal(tui_demo_add(demo, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "node-4 added"));
    assert_int_equal(tui_demo_count(demo), 4);
    assert_string_equal(node(3).id, "node-4");
    note_pids();
    WAIT_FOR(answers(3), UP_MS, "node-4 to answer");
    for (size_t i = 0; i < 3; i++)
        WAIT_FOR(member_is(i, "node-4", "alive"), CONVERGE_MS, "node-%zu to list node-4 alive",
                 i + 1);

    assert_int_equal(tui_demo_leave(demo, 3, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "node-4"));
    assert_int_equal(node(3).state, TUI_DEMO_LEAVING);
    expect_refused(tui_demo_leave(demo, 3, msg, sizeof(msg)), msg, "leave of a leaving node",
                   "node-4");
    WAIT_FOR(member_is(0, "node-4", "left"), LEAVE_MS, "node-1 to list node-4 as left");
    /* Having left, the node stops by itself: poll reaps it as EXITED. */
    WAIT_FOR(node(3).state == TUI_DEMO_EXITED, LEAVE_MS, "node-4's process to exit");
    assert_int_equal(node(3).exit_code, 0);
    assert_int_equal(node(3).pid, 0);
    expect_refused(tui_demo_kill(demo, 3, msg, sizeof(msg)), msg, "kill of a node that left",
                   "node-4");
}

static void step_stop(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    tui_demo_stop(demo, out);
    demo = NULL;
    fclose(out);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof(want), "data and logs: %s", dir);
    if (!strstr(text, want))
        fail_msg("stop said \"%s\", want a line starting \"%s\"", text, want);
    free(text);
    /* Sanitizer builds: no node reported a bug, at exit either. */
    for (size_t i = 1; i <= 4; i++) {
        char log[PATH_MAX + 32];
        snprintf(log, sizeof(log), "%s/node-%zu/ringkvd.log", dir, i);
        assert_int_equal(count_in_file(log, "==== demo: start #1 "), 1);
        if (count_in_file(log, "Sanitizer") || count_in_file(log, "runtime error"))
            fail_msg("%s holds a sanitizer report", log);
    }
    assert_true(npids >= 5); /* 3 + node-2's restart + node-4 */
    for (size_t k = 0; k < npids; k++) {
        if (!pid_gone(pids[k]))
            fail_msg("pid %d outlived tui_demo_stop", pids[k]);
        assert_int_equal(waitpid(pids[k], NULL, WNOHANG), -1); /* reaped: no zombie */
        assert_int_equal(errno, ECHILD);
    }
}

/* A failed check leaves the demo running: stop it (the dir stays). */
static int stop_demo(void **state)
{
    if (demo) {
        fprintf(stderr, "test_demo: stopping the demo after a failed check\n");
        tui_demo_stop(demo, stderr);
        demo = NULL;
    }
    return 0;
}

static void test_lifecycle(void **state)
{
    char err[512];
    assert_rc(tu_mkdtemp(dir, sizeof(dir), "demo"), 0);
    fprintf(stderr, "test_demo: demo dir %s (kept if a check fails)\n", dir);
    struct tui_demo_opts o = {.nodes = 3, .dir = dir, .exe = RK_RINGKVD, .load_ops = 200};
    int rc = tui_demo_start(&demo, &o, err, sizeof(err));
    if (rc != 0)
        fail_msg("tui_demo_start: %s (%s)", err, rk_strerror(rc));
    step_started();
    step_load();
    step_kill_restart();
    step_pause_resume();
    step_add_leave();
    step_stop();
    tu_rmrf(dir);
}

/* ---- a start that fails ---- */

/* A stand-in for ringkvd: node-2 refuses to start at once, node-1 runs but
 * never answers (and says its PID, to check it was stopped). */
static void write_fake(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\n"
          "# argv: run -c DIR/node-K/ringkv.toml\n"
          "case \"$3\" in\n"
          "*/node-2/*) echo \"fake ringkvd: refusing to start\" >&2; exit 3;;\n"
          "esac\n"
          "echo $$ > \"${3%/ringkv.toml}/pid\"\n"
          "exec sleep 600\n",
          f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
}

static void test_start_failure(void **state)
{
    char err[512], fake[PATH_MAX + 16], pidfile[PATH_MAX + 16], log[PATH_MAX + 32];
    assert_rc(tu_mkdtemp(dir, sizeof(dir), "demofail"), 0);
    snprintf(fake, sizeof(fake), "%s/fake", dir);
    write_fake(fake);
    char *ddir = NULL;
    assert_true(asprintf(&ddir, "%s/demo", dir) > 0);
    struct tui_demo_opts o = {.nodes = 2, .dir = ddir, .exe = fake};
    static char sentinel;
    struct tui_demo *d = (struct tui_demo *)&sentinel; /* a failed start sets it to NULL */
    int rc = tui_demo_start(&d, &o, err, sizeof(err));
    assert_rc(rc, RK_EREFUSED);
    assert_null(d);
    if (!strstr(err, "node-2 exited with status 3") || !strstr(err, "refusing to start"))
        fail_msg("err \"%s\": want node-2, its exit status and its log's last line", err);
    /* node-1 was started and must have been stopped; nothing was removed. */
    snprintf(pidfile, sizeof(pidfile), "%s/node-1/pid", ddir);
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    long pid = 0;
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    assert_true(pid > 0);
    assert_true(pid_gone((pid_t)pid));
    snprintf(log, sizeof(log), "%s/node-2/ringkvd.log", ddir);
    assert_int_equal(count_in_file(log, "fake ringkvd: refusing to start"), 1);
    free(ddir);
    tu_rmrf(dir);
}

static void test_bad_options(void **state)
{
    char err[512], file[PATH_MAX + 16];
    struct tui_demo *d = NULL;
    struct tui_demo_opts o = {.nodes = 10, .exe = RK_RINGKVD};
    assert_rc(tui_demo_start(&d, &o, err, sizeof(err)), RK_EINVAL);
    assert_non_null(strstr(err, "1..9"));
    o = (struct tui_demo_opts){.nodes = 3};
    assert_rc(tui_demo_start(&d, &o, err, sizeof(err)), RK_EINVAL);
    o = (struct tui_demo_opts){.nodes = 3, .exe = "/nonexistent/ringkvd"};
    assert_rc(tui_demo_start(&d, &o, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/ringkvd"));
    /* A dir with something in it is not the demo's to fill. */
    assert_rc(tu_mkdtemp(dir, sizeof(dir), "demobad"), 0);
    snprintf(file, sizeof(file), "%s/keep", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    o = (struct tui_demo_opts){.nodes = 3, .dir = dir, .exe = RK_RINGKVD};
    assert_rc(tui_demo_start(&d, &o, err, sizeof(err)), RK_EINVAL);
    assert_null(d);
    assert_non_null(strstr(err, "not empty"));
    assert_int_equal(tu_count_names(dir, "", NULL, 0), 1); /* only "keep" */
    /* A binary that exec refuses: the error comes back from the child. */
    snprintf(file, sizeof(file), "%s/notabinary", dir);
    assert_non_null(f = fopen(file, "w"));
    fputs("\x7f"
          "ELF garbage\n",
          f);
    fclose(f);
    assert_int_equal(chmod(file, 0755), 0);
    char *ddir = NULL;
    assert_true(asprintf(&ddir, "%s/demo", dir) > 0);
    o = (struct tui_demo_opts){.nodes = 1, .dir = ddir, .exe = file};
    assert_rc(tui_demo_start(&d, &o, err, sizeof(err)), -ENOEXEC);
    assert_null(d);
    if (!strstr(err, "node-1: cannot start") || !strstr(err, strerror(ENOEXEC)))
        fail_msg("err \"%s\": want node-1 and exec's error", err);
    free(ddir);
    tu_rmrf(dir);
}

/* The caller role of test_caller_dies, run as `test_demo caller DIR FD`
 * (a fresh process: nng may not be used in a forked copy of one that has
 * used it): start a 1-node demo, write the node's pid to FD, and exit
 * without tui_demo_stop. */
static int caller_main(const char *ddir, int fd)
{
    char err[512];
    struct tui_demo *d = NULL;
    struct tui_demo_opts o = {.nodes = 1, .dir = ddir, .exe = RK_RINGKVD};
    if (tui_demo_start(&d, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "caller: %s\n", err);
        return 2;
    }
    struct tui_demo_node n;
    tui_demo_node(d, 0, &n);
    if (write(fd, &n.pid, sizeof(n.pid)) != sizeof(n.pid))
        return 3;
    return 0; /* exit() with the demo still running */
}

/* The caller dies without tui_demo_stop: its nodes must not run on. */
static void test_caller_dies(void **state)
{
    int pfd[2];
    assert_rc(tu_mkdtemp(dir, sizeof(dir), "demodies"), 0);
    assert_int_equal(pipe(pfd), 0);
    char fdarg[16];
    snprintf(fdarg, sizeof(fdarg), "%d", pfd[1]);
    char *argv[] = {"/proc/self/exe", "caller", dir, fdarg, NULL};
    pid_t child;
    assert_int_equal(posix_spawn(&child, argv[0], NULL, NULL, argv, environ), 0);
    close(pfd[1]);
    int pid = 0, st = 0;
    ssize_t got = read(pfd[0], &pid, sizeof(pid));
    close(pfd[0]);
    assert_int_equal(waitpid(child, &st, 0), child);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the demo's caller ended with " TU_STATUS_FMT, TU_STATUS_ARGS(st));
    assert_int_equal(got, sizeof(pid));
    assert_true(pid > 0);
    WAIT_FOR(pid_gone(pid), 15000, "node-1 (pid %d) to stop after its caller died", pid);
    tu_rmrf(dir);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "caller") == 0)
        return caller_main(argv[2], atoi(argv[3]));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_start_failure),
        cmocka_unit_test(test_caller_dies),
        cmocka_unit_test_teardown(test_lifecycle, stop_demo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

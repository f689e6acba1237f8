/* `ringkvd demo`'s cluster manager: starts a local N-node ringkv cluster on
 * loopback as child processes of the caller, drives a light load against
 * it, and carries out the demo's actions (kill -9, restart, pause, resume,
 * add a node, make one leave) on the nodes it started, and on nothing else.
 *
 * Layout of the demo dir DIR:
 *   DIR/node-K/ringkv.toml   the node's config (ringkvd check-config accepts it)
 *   DIR/node-K/data          its data_dir
 *   DIR/node-K/ringkvd.log   its stdout and stderr, appended across restarts
 * Node ids are node-1..node-N; added nodes continue the numbering, up to
 * TUI_DEMO_MAX_NODES in all. Every node listens on 127.0.0.1 on three ports
 * (client, peer, gossip) below the kernel's ephemeral range, so a node
 * restarted on its ports finds them free. The seeds are the gossip
 * addresses of the first (at most three) nodes.
 *
 * Processes: each node runs in its own process group, so a Ctrl-C in the
 * terminal reaches the caller only; the caller then calls tui_demo_stop.
 * Should the caller die without doing so (a crash, kill -9), the kernel
 * sends every node SIGTERM (PR_SET_PDEATHSIG), so none runs on unseen.
 * Nothing here installs signal handlers: the caller reaps through
 * tui_demo_poll, and must not reap the nodes itself (no waitpid(-1), no
 * SIGCHLD set to SIG_IGN), or their exit codes are lost (then -1).
 *
 * Threads: every function is for one thread, the same throughout and alive
 * as long as the demo (the dashboard's main thread; the kernel ties a
 * child's death signal to the thread that started it). The load runs in a
 * thread of its own, which the functions here start and stop.
 *
 * Errors: the actions return 0 or a negative code (util/err.h) and always
 * write one line for a status bar into msg (what was done, or why nothing
 * was): RK_EINVAL for a node index out of range, RK_EREFUSED for an action
 * the node's state does not allow (nothing is done then), RK_EBUSY when a
 * killed node's process has not ended yet (restart: try again), the
 * client's code when a node did not take an admin request (leave), -errno
 * when a system call failed.
 */
#ifndef TUI_DEMO_H
#define TUI_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TUI_DEMO_MAX_NODES        9   /* one digit per id keeps the panes narrow */
#define TUI_DEMO_DEFAULT_NODES    3   /* the smallest cluster with N = 3 replicas */
#define TUI_DEMO_DEFAULT_LOAD_OPS 200 /* visible on the traffic pane, light on a laptop */

struct tui_demo_opts {
    unsigned nodes;    /* 1..TUI_DEMO_MAX_NODES; 0 = TUI_DEMO_DEFAULT_NODES */
    const char *dir;   /* NULL: a fresh dir from mkdtemp under $TMPDIR or /tmp
                          ("ringkv-demo-XXXXXX"); else created if missing, and
                          refused unless empty */
    const char *exe;   /* the ringkvd binary to start (the caller passes
                          /proc/self/exe resolved); required */
    unsigned load_ops; /* ops/s of the light load, 0 = start with load off;
                          TUI_DEMO_DEFAULT_LOAD_OPS is the command's default */
};

/* What the demo knows of a node. Arrows are the functions that take them
 * (poll: tui_demo_poll reaping a process that ended by itself):
 *
 *   RUNNING --pause--> PAUSED --resume--> RUNNING
 *   RUNNING, PAUSED, LEAVING --kill--> KILLED --restart--> RUNNING
 *   RUNNING --leave--> LEAVING --poll--> EXITED --restart--> RUNNING
 *   RUNNING, PAUSED --poll--> EXITED
 */
enum tui_demo_state {
    TUI_DEMO_RUNNING, /* started (answering or about to) */
    TUI_DEMO_PAUSED,  /* SIGSTOP'd by the demo */
    TUI_DEMO_KILLED,  /* SIGKILL'd by the demo (pid stays until reaped) */
    TUI_DEMO_EXITED,  /* ended by itself: crash, refused start, or after leave */
    TUI_DEMO_LEAVING, /* asked to LEAVE; stops once the others have heard it */
};

struct tui_demo_node {
    char id[32]; /* "node-K" */
    int pid;     /* the node's process until it is reaped; 0 after */
    enum tui_demo_state state;
    int exit_code;   /* once reaped: the exit status, or 128 + the signal
                        that ended it; -1 while the process exists */
    char client[64]; /* client address, "tcp://127.0.0.1:PORT" */
};

struct tui_demo;

/* Create the dir and the configs, start every node and wait (at most 30 s)
 * until each answers STATUS with its own id, and then READY as a member of
 * the formed cluster (so the load and the first frames do not show the
 * cluster forming as failures); start the load if o->load_ops > 0. On success *out is the demo
 * (give it to tui_demo_stop). On failure *out is NULL, every process started has been stopped,
 * nothing is removed, and err holds one line naming the node that failed and the last line of its
 * log. Returns 0, RK_EINVAL for bad options, RK_ETIMEDOUT, RK_EREFUSED (a node exited or another
 * process answered on its port), or -errno. */
int tui_demo_start(struct tui_demo **out, const struct tui_demo_opts *o, char *err, size_t len);

/* The demo dir (absolute), valid until tui_demo_stop. */
const char *tui_demo_dir(const struct tui_demo *d);

/* The client address of the first node in state RUNNING (node-1's if none
 * is), for a dashboard to attach to. Valid until tui_demo_stop. */
const char *tui_demo_addr(const struct tui_demo *d);

/* Node slots so far, added ones included (left and killed nodes keep their
 * slot). Slot i holds node-(i+1). */
size_t tui_demo_count(const struct tui_demo *d);

/* A copy of slot i (i < tui_demo_count; otherwise *out is zeroed). */
void tui_demo_node(const struct tui_demo *d, size_t i, struct tui_demo_node *out);

/* Reap the nodes' processes that have ended (waitpid WNOHANG on each PID
 * the demo started, never -1): a node that ended by itself becomes EXITED,
 * a killed one stays KILLED; both get exit_code and pid 0. Call it every
 * refresh. */
void tui_demo_poll(struct tui_demo *d);

/* SIGKILL node i (RUNNING, PAUSED or LEAVING): "node-2 killed (pid 1234,
 * kill -9)". Does not wait: tui_demo_poll reaps it. */
int tui_demo_kill(struct tui_demo *d, size_t i, char *msg, size_t len);

/* Start node i again (KILLED or EXITED) with the same config and data; a
 * killed process not yet reaped is reaped first (it holds the data dir's
 * lock until it is gone). Does not wait for it to answer. */
int tui_demo_restart(struct tui_demo *d, size_t i, char *msg, size_t len);

/* SIGSTOP node i (RUNNING only). */
int tui_demo_pause(struct tui_demo *d, size_t i, char *msg, size_t len);

/* SIGCONT node i (PAUSED only). */
int tui_demo_resume(struct tui_demo *d, size_t i, char *msg, size_t len);

/* Start node-(count+1), which joins through the seeds (fails with
 * RK_EREFUSED at TUI_DEMO_MAX_NODES). Does not wait for it to answer. */
int tui_demo_add(struct tui_demo *d, char *msg, size_t len);

/* Send node i (RUNNING only) the LEAVE admin request and return once it
 * has answered (at most 1 s), without waiting for the departure: the
 * process exits once the others have heard it (then EXITED). */
int tui_demo_leave(struct tui_demo *d, size_t i, char *msg, size_t len);

/* Turn the load on or off. Off takes effect before the next operation (at
 * most the one in flight, 500 ms, still completes); never blocks. */
void tui_demo_set_load(struct tui_demo *d, bool on);

/* Whether the load is on; *ok and *failed (either may be NULL) get the
 * operations completed so far (a GET of an absent key counts as ok) and
 * failed so far (timeouts, quorum not met, connection lost). */
bool tui_demo_load(const struct tui_demo *d, uint64_t *ok, uint64_t *failed);

/* Stop the load, resume paused nodes, SIGTERM every node process, wait up
 * to 10 s for them (polling waitpid), then SIGKILL and reap what remains:
 * no process the demo started outlives this call. Writes to out (may be
 * NULL) "data and logs: DIR (...)", and a line for each node that had to
 * be killed. Frees d (NULL is a no-op). */
void tui_demo_stop(struct tui_demo *d, FILE *out);

#endif

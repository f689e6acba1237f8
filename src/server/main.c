/* ringkvd: argument parsing and subcommand dispatch. Exit codes: 0 ok,
 * 1 the node could not start, 2 usage or configuration error. */
#include "config/config.h"
#include "server/server.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RINGKV_VERSION "0.1.0"

static const char usage[] =
    "usage: ringkvd [run] [-c FILE] [--repair]\n"
    "                                     run a node (without -c: built-in defaults,\n"
    "                                     a single node, data in ./ringkv-data)\n"
    "         --repair                    a data segment that fails its checksums is\n"
    "                                     moved aside (seg-N.rks.corrupt) instead of\n"
    "                                     refusing the start; anti-entropy then copies\n"
    "                                     its records back from the other replicas\n"
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

static int cmd_check(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    struct rk_config *c = malloc(sizeof(*c));
    char err[1200];
    if (!c)
        return 1;
    int rc = rk_config_load(c, argv[2], err, sizeof(err));
    free(c);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    printf("%s: ok\n", argv[2]);
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

static int cmd_run(int argc, char **argv, int first)
{
    const char *path = NULL;
    bool repair = false;
    for (int i = first; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--repair") == 0) {
            repair = true;
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
    int code = load(c, path) < 0 ? 2 : rk_server_run(c, path, repair);
    free(c);
    return code == RK_SERVER_RESTART ? restart_in_place(argv) : code;
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
    if (strcmp(cmd, "dashboard") == 0 || strcmp(cmd, "demo") == 0) {
        rk_error("ringkvd", "\"%s\" is not available in this version", cmd);
        return 2;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc, argv, 2);
    return cmd_run(argc, argv, 1); /* ringkvd -c FILE */
}

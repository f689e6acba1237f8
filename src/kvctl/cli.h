/* Helpers every kvctl command shares, `kvctl bench` included (cli.c):
 * exit codes, global options, argument parsing, the error line. Not a
 * library interface: they build into the kvctl executable only, which
 * runs them on its main thread. */
#ifndef RK_KVCTL_CLI_H
#define RK_KVCTL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* kvctl exit codes (DESIGN §2). */
enum {
    RK_EXIT_OK = 0,
    RK_EXIT_NO = 1,      /* key not found, probe says no */
    RK_EXIT_USAGE = 2,   /* usage or bad input */
    RK_EXIT_CLUSTER = 3, /* timeout, unreachable, BUSY, QUORUM, node-side failure */
};

/* Options that every command accepts. */
struct rk_kvctl_opts {
    const char *addr;    /* -a ADDR; default $KVCTL_ADDR, else tcp://127.0.0.1:7400 */
    bool json;           /* --json */
    uint64_t timeout_ms; /* --timeout DUR, per request; default 5s */
    unsigned r, w;       /* -r R, -w W; 0 = the node's default */
    /* --secret-file FILE, else $KVCTL_SECRET_FILE: the cluster secret's
     * request key (util/auth.h), read once when the option is parsed;
     * NULL = requests go unsigned. */
    const struct rk_auth_key *secret;
    /* --tls-ca, --tls-cert, --tls-key FILE; defaults $KVCTL_TLS_CA, ...
     * (rk_kvctl_tls_env); NULL = unset. With a CA every address is dialled
     * as tls+tcp:// (rk_kvctl_client_tls). */
    const char *tls_ca, *tls_cert, *tls_key;
};

/* Read the cluster secret file path (same checks as the node) into o's
 * key. 0, or -1 after printing the error line (name: where the path came
 * from, "--secret-file" or "$KVCTL_SECRET_FILE"). */
int rk_kvctl_load_secret(struct rk_kvctl_opts *o, const char *name, const char *path);

/* rk_client_open on addr with o's timeout and secret: 0, or an error code
 * with *c (when not NULL) explaining, as rk_client_open. */
struct rk_client;
int rk_kvctl_client_open(struct rk_client **c, const struct rk_kvctl_opts *o, const char *addr);

/* o's TLS files from $KVCTL_TLS_CA, $KVCTL_TLS_CERT, $KVCTL_TLS_KEY (an
 * option given later wins). */
void rk_kvctl_tls_env(struct rk_kvctl_opts *o);

/* Give client c o's TLS files, if any: 0, or (after printing the error
 * line, prefixed with what) a code for rk_kvctl_exit_code. A certificate
 * or key without --tls-ca, or a file that is missing or bad, is a usage
 * error. */
int rk_kvctl_client_tls(struct rk_client *c, const struct rk_kvctl_opts *o, const char *what);

/* Parse an unsigned decimal integer in [min, max]; 0 or RK_EINVAL. */
int rk_kvctl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Match argv[*i] against option name ("--ttl" or "-a"): "name VALUE" or
 * "name=VALUE". Returns 1 with *val set and *i on the value's word, 0 if
 * argv[*i] is another argument, -1 (after printing the error line) if the
 * value is missing. */
int rk_kvctl_opt_value(const char *name, int argc, char **argv, int *i, const char **val);

/* If argv[*i] is a global option (-a, --json, --timeout, -r, -w,
 * --secret-file, --tls-*), apply it
 * to o and return 1 with *i on its last word; 0 if it is not one; -1
 * after printing the error line for a bad value. */
int rk_kvctl_global_opt(struct rk_kvctl_opts *o, int argc, char **argv, int *i);

/* Print one error line "kvctl: ..." to stderr. */
void rk_kvctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The error line "bad value 'VAL' for OPT: WANT"; returns -1 (for
 * rk_kvctl_global_opt's callers). */
int rk_kvctl_bad_value(const char *opt, const char *val, const char *want);

/* Out of memory: the error line, then exit(RK_EXIT_CLUSTER). A one-shot
 * command has nothing to save, and the exit code tells scripts. */
void rk_kvctl_oom(void) __attribute__((noreturn));

/* The exit code for a failed request's error code (client.h). */
int rk_kvctl_exit_code(int err);

/* JSON string literal of n bytes to f: valid UTF-8 passes through, control
 * characters and every byte of an invalid sequence become \u00XX. Returns
 * true when the bytes were valid UTF-8. */
bool rk_kvctl_json_string(FILE *f, const void *p, size_t n);

#endif

/* The cmocka side of the storage tests (test_storage*.c), header-only: a
 * temporary data dir per test, kept when the test fails; a fake wall clock
 * with HLC-like versions; open-or-fail; model assertions; forking and
 * waiting for children. Everything here may call cmocka, so forked children
 * use testutil.h instead (test_opts and next_ver excepted: they are plain).
 *
 * Include it once per test file, after the system headers. SF_TAG, if
 * defined before the include, names the temp dirs ("ringkv-<tag>-XXXXXX"). */
#ifndef RK_STORAGE_FIXTURE_H
#define RK_STORAGE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/storage.h"
#include "storage_model.h"
#include "util/err.h"
#include "util/io.h"
#include "util/log.h"

#ifndef SF_TAG
#define SF_TAG "storage"
#endif

/* ---- fixture: one temp data dir per test, kept when the test fails ---- */

struct fx {
    char dir[512];
    bool ok;           /* set as the test's last statement */
    struct tu_model m; /* freed by teardown, also when an assertion fails */
    void *buf;         /* likewise */
};

static uint64_t now_ms;   /* the engine's wall clock (opts.now_ms) */
static uint64_t last_ver; /* last version handed out by next_ver */

static inline uint64_t fake_now(void)
{
    return now_ms;
}

/* An HLC-like version: wall ms << 16 | logical, strictly increasing. */
static inline uint64_t next_ver(void)
{
    uint64_t v = now_ms << 16;
    if (v <= last_ver)
        v = last_ver + 1;
    last_ver = v;
    return v;
}

/* Default options on the fake clock. */
static inline void test_opts(struct rk_storage_opts *o)
{
    rk_storage_opts_default(o);
    o->now_ms = fake_now;
}

static inline int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f || tu_mkdtemp(f->dir, sizeof(f->dir), SF_TAG) < 0) {
        free(f);
        return -1;
    }
    now_ms = 1700000000000ull;
    last_ver = 0;
    *state = f;
    return 0;
}

static inline int fx_teardown(void **state)
{
    struct fx *f = *state;
    for (int op = 0; op < RK_IO_NOPS; op++)
        rk_io_fault_arm((enum rk_io_op)op, 0, 0);
    rk_log_set_sink(NULL, NULL);
    tu_model_free(&f->m);
    free(f->buf);
    if (f->ok)
        tu_rmrf(f->dir);
    else
        fprintf(stderr, "test failed: data kept in %s\n", f->dir);
    free(f);
    return 0;
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

/* out = f->dir/name; with create set, the directory must not exist yet. */
static inline void fx_path(const struct fx *f, const char *name, char *out, size_t cap, bool create)
{
    int n = snprintf(out, cap, "%s/%s", f->dir, name);
    assert_true(n > 0 && (size_t)n < cap);
    if (create)
        assert_int_equal(mkdir(out, 0750), 0);
}

/* ---- opening and checking a store ---- */

/* Open or fail the test; ctx (or NULL) prefixes the failure message. */
static inline rk_storage *open_ok_ctx(const char *dir, const struct rk_storage_opts *o,
                                      struct rk_storage_report *rep, const char *ctx)
{
    struct rk_storage_report r;
    if (!rep)
        rep = &r;
    rk_storage *s;
    int rc = tu_open(&s, dir, o, rep);
    if (rc != 0)
        fail_msg("%s%sopen %s = %d (%s): %s", ctx ? ctx : "", ctx ? ": " : "", dir, rc,
                 rk_strerror(rc), rep->error);
    assert_non_null(s);
    return s;
}

static inline rk_storage *open_ok(const char *dir, const struct rk_storage_opts *o,
                                  struct rk_storage_report *rep)
{
    return open_ok_ctx(dir, o, rep, NULL);
}

/* Fail unless s holds what m says at wall time now; the message starts
 * with ctx (a printf format and its arguments). */
#define assert_model_at(s, m, now, flags, ...)                                                     \
    do {                                                                                           \
        char why_[1024], ctx_[256];                                                                \
        if (tu_check((s), (m), (now), (flags), why_, sizeof(why_)) != 0) {                         \
            snprintf(ctx_, sizeof(ctx_), __VA_ARGS__);                                             \
            fail_msg("%s%s%s", ctx_, ctx_[0] ? ": " : "", why_);                                   \
        }                                                                                          \
    } while (0)

#define assert_model(s, m, flags) assert_model_at((s), (m), now_ms, (flags), "%s", "")

/* Close s, which is open on dir, then check that dir opened again holds
 * what m says (on the fake clock) and close it again. */
static inline void close_reopen_check(rk_storage *s, const char *dir,
                                      const struct rk_storage_opts *o, const struct tu_model *m,
                                      unsigned flags)
{
    assert_rc(rk_storage_close(s), 0);
    s = open_ok(dir, o, NULL);
    assert_model(s, m, flags);
    assert_rc(rk_storage_close(s), 0);
}

/* ---- writing ---- */

/* Put ids from, from + step, ... below to, each at a new version. */
static inline void put_ids(rk_storage *s, struct tu_model *m, uint32_t from, uint32_t to,
                           uint32_t step)
{
    for (uint32_t id = from; id < to; id += step)
        assert_rc(tu_put(s, m, id, next_ver(), 0), 0);
}

/* Commit after every every-th call. */
static inline void commit_every(rk_storage *s, uint32_t *ops, uint32_t every)
{
    if (++*ops % every == 0)
        assert_rc(rk_storage_commit(s), 0);
}

/* ---- child processes ---- */

/* fork() after flushing stdio, so the child does not repeat buffered text. */
static inline pid_t fx_fork(void)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    return pid;
}

/* Wait for pid and return its status. */
static inline int fx_wait(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

#endif

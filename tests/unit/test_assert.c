/* RK_ASSERT: a violated invariant logs file:line and the expression, then
 * aborts, in every build (this file is compiled with NDEBUG forced on, as a
 * release build is). Checked in a forked child, whose stderr the parent
 * reads. */
#ifndef NDEBUG
#define NDEBUG /* as RelWithDebInfo: assert() is gone, RK_ASSERT is not */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/assert.h"
#include "util/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct death {
    int status;     /* the child's, from waitpid */
    char err[1024]; /* what it wrote to stderr */
};

/* Run fn(arg) in a child with stderr on a pipe; the child exits 0 if fn
 * returns. */
static void run_child(void (*fn)(int), int arg, struct death *d)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t o = 0;
    ssize_t r;
    while (o < sizeof(d->err) - 1 && (r = read(fds[0], d->err + o, sizeof(d->err) - 1 - o)) > 0)
        o += (size_t)r;
    d->err[o] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &d->status, 0), pid);
}

static const int violate_line = __LINE__ + 3; /* the RK_ASSERT below */
static void violate(int x)
{
    RK_ASSERT(x + 1 == 3 && "two");
}

static void test_violated_logs_file_line_and_aborts(void **state)
{
    (void)state;
    struct death d;
    run_child(violate, 1, &d);
    assert_true(WIFSIGNALED(d.status));
    assert_int_equal(WTERMSIG(d.status), SIGABRT);
    char want[128];
    snprintf(want, sizeof(want), "test_assert.c:%d: assertion failed: x + 1 == 3 && \"two\"\n",
             violate_line);
    assert_non_null(strstr(d.err, want));
    /* One logger line: "<ISO-8601 time> error assert: ..." */
    const char *sp = strchr(d.err, ' ');
    assert_non_null(sp);
    assert_true(sp - d.err == 24 && d.err[23] == 'Z');
    assert_true(strncmp(sp + 1, "error assert: ", 14) == 0);
    assert_ptr_equal(strchr(d.err, '\n') + 1, d.err + strlen(d.err));
}

static int evaluated;

static int count(void)
{
    return ++evaluated;
}

static void hold(int x)
{
    RK_ASSERT(x == 2);
    RK_ASSERT(count() == 1);
}

static void test_holding_returns_and_evaluates_once(void **state)
{
    (void)state;
    struct death d;
    run_child(hold, 2, &d);
    assert_true(WIFEXITED(d.status));
    assert_int_equal(WEXITSTATUS(d.status), 0);
    assert_string_equal(d.err, "");
    hold(2); /* here too: a holding check costs one evaluation, no output */
    assert_int_equal(evaluated, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_violated_logs_file_line_and_aborts),
        cmocka_unit_test(test_holding_returns_and_evaluates_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

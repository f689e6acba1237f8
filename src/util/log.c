/* Logging: formats a whole line first and emits it with one write, so lines
 * from different threads never interleave. */
#include "util/log.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int min_level = RK_LOG_INFO;
static rk_log_sink *sink_fn;
static void *sink_arg;

static const char *const names[] = {"debug", "info", "warn", "error"};

void rk_log_set_level(enum rk_log_level lvl)
{
    atomic_store(&min_level, (int)lvl);
}

int rk_log_parse_level(const char *s, enum rk_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum rk_log_level)i;
            return 0;
        }
    }
    return RK_EINVAL;
}

void rk_log_set_sink(rk_log_sink *sink, void *arg)
{
    sink_fn = sink;
    sink_arg = arg;
}

void rk_log(enum rk_log_level lvl, const char *component, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&min_level))
        return;
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s %s: ", names[lvl], component);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (size_t)(m < 0 ? 0 : m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    if (sink_fn) {
        line[len] = '\0';
        sink_fn(lvl, line, sink_arg);
        return;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* One line per event: "level component: message key=value" on stderr
 * (journald adds time and unit). Every byte of a message outside printable
 * ASCII is written as \xNN (a backslash as \\), so a string that came
 * from a peer or a client can neither break a line nor forge one. A sink can be installed to
 * capture lines, which tests use to assert on what recovery reported. */
#ifndef RK_UTIL_LOG_H
#define RK_UTIL_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum rk_log_level { RK_LOG_DEBUG, RK_LOG_INFO, RK_LOG_WARN, RK_LOG_ERROR };

typedef void rk_log_sink(enum rk_log_level lvl, const char *line, void *arg);

/* Lines below lvl are dropped. Any thread; takes effect for later calls. */
void rk_log_set_level(enum rk_log_level lvl);
/* Parse "debug|info|warn|error"; returns 0 or RK_EINVAL. */
int rk_log_parse_level(const char *s, enum rk_log_level *out);
/* Replace stderr output with sink (NULL restores stderr). Not for use while
 * other threads log. */
void rk_log_set_sink(rk_log_sink *sink, void *arg);

void rk_log(enum rk_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A complaint that can repeat is logged at most once per RK_LOG_EVERY_MS.
 * rk_log_due: true, and *last_ms = now_ms, when that long has passed since
 * *last_ms (0: never logged). One thread per *last_ms. */
#define RK_LOG_EVERY_MS 60000

static inline bool rk_log_due(uint64_t *last_ms, uint64_t now_ms)
{
    if (now_ms - *last_ms < RK_LOG_EVERY_MS)
        return false;
    *last_ms = now_ms;
    return true;
}

#define rk_debug(c, ...) rk_log(RK_LOG_DEBUG, c, __VA_ARGS__)
#define rk_info(c, ...)  rk_log(RK_LOG_INFO, c, __VA_ARGS__)
#define rk_warn(c, ...)  rk_log(RK_LOG_WARN, c, __VA_ARGS__)
#define rk_error(c, ...) rk_log(RK_LOG_ERROR, c, __VA_ARGS__)

#endif

/* Logging: formats a whole line first and emits it with one write, so lines
 * from different threads never interleave. */
#include "util/log.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdbool.h>
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

/* Copy src into dst (room bytes, at least 1) with every byte that is not
 * printable ASCII written as \xNN and a backslash as \\: whatever a peer
 * or a client managed to get into a message (a node id with a newline, a
 * key with a terminal escape), a log line stays one line of plain text and
 * cannot pass for another. Returns the bytes written; cuts at a whole
 * escape. */
static size_t escape(char *dst, size_t room, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        bool plain = c >= 0x20 && c < 0x7f && c != '\\';
        size_t need = plain ? 1 : c == '\\' ? 2 : 4;
        if (o + need > room)
            break;
        if (plain) {
            dst[o++] = (char)c;
        } else if (c == '\\') {
            dst[o++] = '\\';
            dst[o++] = '\\';
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    return o;
}

void rk_log(enum rk_log_level lvl, const char *component, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&min_level))
        return;
    char msg[1024], line[1024];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    int n = snprintf(line, sizeof(line), "%s %s: ", names[lvl], component);
    /* Room for the newline and the NUL. */
    size_t len = (size_t)n + escape(line + n, sizeof(line) - 2 - (size_t)n, msg, mlen);
    if (sink_fn) {
        line[len] = '\0';
        sink_fn(lvl, line, sink_arg);
        return;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

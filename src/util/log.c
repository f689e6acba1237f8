/* Logging: formats a whole line first and emits it with one write, so lines
 * from different threads never interleave. */
#include "util/log.h"
#include "util/err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = RK_LOG_INFO;
static atomic_int format = RK_LOG_TEXT;
static rk_log_sink *sink_fn;
static void *sink_arg;

static const char *const names[] = {"debug", "info", "warn", "error"};

void rk_log_set_level(enum rk_log_level lvl)
{
    atomic_store(&min_level, (int)lvl);
}

void rk_log_set_format(enum rk_log_format f)
{
    atomic_store(&format, (int)f);
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

/* The syslog priority of each level (sd-daemon(3): "<7>" debug ... "<3>" err). */
static const char prio[] = {'7', '6', '4', '3'};

/* "2026-12-07T15:04:05.123Z" into buf (at least 25 bytes). */
static void iso_ms(char *buf, size_t len, uint64_t wall_ms)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03uZ", (unsigned)(wall_ms % 1000));
}

/* src (already escaped: printable ASCII) into dst as the inside of a JSON
 * string: only '"' and '\\' need a backslash. Cuts before a pair would
 * split. */
static size_t json_quote(char *dst, size_t room, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        bool esc = src[i] == '"' || src[i] == '\\';
        if (o + 1 + esc > room)
            break;
        if (esc)
            dst[o++] = '\\';
        dst[o++] = src[i];
    }
    return o;
}

size_t rk_log_render(char *line, size_t room, enum rk_log_level lvl, const char *component,
                     const char *msg, size_t mlen, enum rk_log_format f, bool journal,
                     uint64_t wall_ms)
{
    char ts[32], body[1024];
    size_t o = 0;
    iso_ms(ts, sizeof ts, wall_ms);
    if (journal)
        o += (size_t)snprintf(line, room, "<%c>", prio[lvl]);
    if (f == RK_LOG_JSON) {
        /* Escaped first, as a text line would be, so both formats carry the
         * same message bytes; then quoted for JSON. Room for the "}. */
        size_t blen = escape(body, sizeof body, msg, mlen);
        o += (size_t)snprintf(line + o, room - o,
                              "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"", ts,
                              names[lvl], component);
        if (o + 3 > room)
            o = room - 3;
        o += json_quote(line + o, room - 3 - o, body, blen);
        line[o++] = '"';
        line[o++] = '}';
    } else {
        if (!journal)
            o += (size_t)snprintf(line + o, room - o, "%s ", ts);
        o += (size_t)snprintf(line + o, room - o, "%s %s: ", names[lvl], component);
        if (o + 1 > room)
            o = room - 1;
        o += escape(line + o, room - 1 - o, msg, mlen);
    }
    line[o] = '\0';
    return o;
}

bool rk_log_is_journal(const char *env, int fd)
{
    unsigned long long dev, ino;
    struct stat st;
    if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* Asked once: stderr does not change under a running daemon. */
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static bool to_journal;

static void journal_check(void)
{
    to_journal = rk_log_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO);
}

void rk_log(enum rk_log_level lvl, const char *component, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&min_level))
        return;
    char msg[1024], line[1100];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    if (sink_fn) {
        int n = snprintf(line, sizeof(line), "%s %s: ", names[lvl], component);
        /* The sink's lines stay within 1 KiB, as they always were. */
        size_t len = (size_t)n + escape(line + n, 1022 - (size_t)n, msg, mlen);
        line[len] = '\0';
        sink_fn(lvl, line, sink_arg);
        return;
    }
    pthread_once(&journal_once, journal_check);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t wall_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    /* Room for the newline. */
    size_t len = rk_log_render(line, sizeof(line) - 1, lvl, component, msg, mlen,
                               (enum rk_log_format)atomic_load(&format), to_journal, wall_ms);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

bool rk_log_due_from(struct rk_log_slot *slots, size_t n, const char *src, uint64_t now_ms,
                     uint64_t *skipped)
{
    struct rk_log_slot *l = NULL, *oldest = &slots[0];
    for (size_t i = 0; i < n && !l; i++) {
        if (strcmp(slots[i].src, src) == 0)
            l = &slots[i];
        else if (slots[i].last_ms < oldest->last_ms)
            oldest = &slots[i];
    }
    if (!l) {
        l = oldest;
        snprintf(l->src, sizeof(l->src), "%s", src);
        l->last_ms = 0;
        l->skipped = 0;
    }
    if (!rk_log_due(&l->last_ms, now_ms)) {
        l->skipped++;
        return false;
    }
    *skipped = l->skipped;
    l->skipped = 0;
    return true;
}

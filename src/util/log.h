/* One line per event on stderr. Text: "TIMESTAMP level component: message
 * key=value" with an ISO-8601 UTC timestamp in milliseconds
 * ("2026-12-07T15:04:05.123Z"). When stderr is the journal (JOURNAL_STREAM
 * names fd 2) the line starts with its syslog priority "<N>" instead of the
 * timestamp (journald keeps its own time). JSON (log.format = "json"): one
 * object per line, {"ts","level","component","msg"}, after the "<N>" when
 * stderr is the journal. Every byte of a message outside printable
 * ASCII is written as \xNN (a backslash as \\), so a string that came
 * from a peer or a client can neither break a line nor forge one. A sink can be installed to
 * capture lines, which tests use to assert on what recovery reported. */
#ifndef RK_UTIL_LOG_H
#define RK_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rk_log_level { RK_LOG_DEBUG, RK_LOG_INFO, RK_LOG_WARN, RK_LOG_ERROR };
enum rk_log_format { RK_LOG_TEXT, RK_LOG_JSON };

typedef void rk_log_sink(enum rk_log_level lvl, const char *line, void *arg);

/* Lines below lvl are dropped. Any thread; takes effect for later calls. */
void rk_log_set_level(enum rk_log_level lvl);
/* Parse "debug|info|warn|error"; returns 0 or RK_EINVAL. */
int rk_log_parse_level(const char *s, enum rk_log_level *out);
/* Text or JSON lines. Any thread; takes effect for later calls. */
void rk_log_set_format(enum rk_log_format f);
/* Whether fd is the stream journald gave this process: env is the value of
 * JOURNAL_STREAM ("DEV:INODE", may be NULL) and must match fstat(fd). The
 * logger asks once, at its first line, for stderr. */
bool rk_log_is_journal(const char *env, int fd);
/* Render one line into line (room bytes, at least 64): the prefix (the
 * priority when journal, else the timestamp of wall_ms), level, component
 * and msg (mlen bytes, escaped as above; JSON-quoted as well for
 * RK_LOG_JSON), no newline, NUL-terminated. Returns its length; a long msg
 * is cut at a whole escape. Pure: tests call it directly. */
size_t rk_log_render(char *line, size_t room, enum rk_log_level lvl, const char *component,
                     const char *msg, size_t mlen, enum rk_log_format f, bool journal,
                     uint64_t wall_ms);
/* Replace stderr output with sink (NULL restores stderr): the sink gets
 * "level component: message" (escaped, no prefix, no newline) whatever
 * the format. Not for use while other threads log. */
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

/* rk_log_due per source (an address): a complaint about many senders is
 * logged at most once per RK_LOG_EVERY_MS for each, with how many were not
 * logged since. A table of n slots; a new source takes the slot logged
 * longest ago. rk_log_due_from: true, with *skipped (then reset), when
 * src's line is due at now_ms; false counts one more skipped. One thread
 * at a time per table (callers lock). */
struct rk_log_slot {
    char src[64];
    uint64_t last_ms, skipped;
};
bool rk_log_due_from(struct rk_log_slot *slots, size_t n, const char *src, uint64_t now_ms,
                     uint64_t *skipped);

#define rk_debug(c, ...) rk_log(RK_LOG_DEBUG, c, __VA_ARGS__)
#define rk_info(c, ...)  rk_log(RK_LOG_INFO, c, __VA_ARGS__)
#define rk_warn(c, ...)  rk_log(RK_LOG_WARN, c, __VA_ARGS__)
#define rk_error(c, ...) rk_log(RK_LOG_ERROR, c, __VA_ARGS__)

#endif

/* The process's ring of recent events (events.h). */
#include "util/events.h"
#include "util/clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ring[(seq - 1) % RK_EVENTS_RING] holds event seq; next is the seq of the
 * next event. Both guarded by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rk_event ring[RK_EVENTS_RING];
static uint64_t next = 1;

/* Cut s (NUL-terminated, at most RK_EVENT_TEXT - 1 bytes after vsnprintf
 * cut it) back to a UTF-8 boundary: vsnprintf may have cut a character's
 * bytes in two, and half a character is not UTF-8 (a JSON reader may
 * refuse the whole reply). */
static void utf8_trim(char *s, size_t full)
{
    size_t n = strlen(s);
    if (full <= n || n == 0)
        return; /* nothing was cut */
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--; /* continuation bytes of the last character */
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < want)
        s[i - 1] = '\0'; /* the last character is incomplete: drop it */
}

void rk_event(enum rk_event_kind kind, const char *fmt, ...)
{
    struct rk_event e = {.ms = rk_clock_wall_ms(), .kind = kind};
    va_list ap;
    va_start(ap, fmt);
    int full = vsnprintf(e.text, sizeof(e.text), fmt, ap);
    va_end(ap);
    if (full > 0)
        utf8_trim(e.text, (size_t)full);
    pthread_mutex_lock(&lock);
    e.seq = next++;
    ring[(e.seq - 1) % RK_EVENTS_RING] = e;
    pthread_mutex_unlock(&lock);
}

size_t rk_events_last(struct rk_event *out, size_t k)
{
    pthread_mutex_lock(&lock);
    uint64_t have = next - 1;
    if (have > RK_EVENTS_RING)
        have = RK_EVENTS_RING;
    if (k > have)
        k = (size_t)have;
    for (size_t i = 0; i < k; i++) {
        uint64_t seq = next - k + i;
        out[i] = ring[(seq - 1) % RK_EVENTS_RING];
    }
    pthread_mutex_unlock(&lock);
    return k;
}

const char *rk_event_kind_name(enum rk_event_kind kind)
{
    static const char *const names[RK_EVENT_KINDS] = {"member", "transfer", "ae", "node"};
    return (unsigned)kind < RK_EVENT_KINDS ? names[kind] : "?";
}

void rk_events_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(ring, 0, sizeof(ring));
    next = 1;
    pthread_mutex_unlock(&lock);
}

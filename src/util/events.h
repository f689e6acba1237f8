/* The node's recent events: membership changes, transfers, anti-entropy
 * rounds, the node's own leaving, as one-line texts in a ring of the last
 * RK_EVENTS_RING, for the admin API (OVERVIEW) and the dashboard. A log
 * line says the same at the same place; the ring is what a client can ask
 * for without reading the log.
 *
 * Process-wide: one ring per process, written by any thread (a mutex;
 * events are rare: a few per membership change or round), read by any
 * thread. Each event gets the next sequence number (1 for the first since
 * the process started), so a reader that polls tells new events from ones
 * it has seen, and a gap in seq from events the ring let go.
 */
#ifndef RK_UTIL_EVENTS_H
#define RK_UTIL_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define RK_EVENTS_RING 128 /* kept: a dashboard shows the last 32; the rest spans a burst */
#define RK_EVENT_TEXT  121 /* 120 bytes of text and the NUL: one line of a pane */

enum rk_event_kind {
    RK_EVENT_MEMBER,   /* a member's state changed, or a member is new */
    RK_EVENT_TRANSFER, /* partitions received, handed over, a transfer failed */
    RK_EVENT_AE,       /* an anti-entropy round finished */
    RK_EVENT_NODE,     /* this node: formed a cluster, leaving, left */
    RK_EVENT_KINDS,
};

struct rk_event {
    uint64_t seq; /* 1, 2, ... in the order recorded */
    uint64_t ms;  /* wall clock when recorded */
    enum rk_event_kind kind;
    char text[RK_EVENT_TEXT]; /* NUL-terminated; cut at 120 bytes, on a UTF-8 boundary */
};

/* Record an event (printf-style text). Any thread. */
void rk_event(enum rk_event_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy the last k events (at most RK_EVENTS_RING, fewer when fewer were
 * recorded) into out, oldest first. Returns how many. Any thread. */
size_t rk_events_last(struct rk_event *out, size_t k);

/* "member", "transfer", "ae", "node" ("?" for another value). Static. */
const char *rk_event_kind_name(enum rk_event_kind kind);

/* Forget every event and restart seq at 1 (unit tests). Any thread. */
void rk_events_reset(void);

#endif

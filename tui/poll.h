/* The dashboard's pollers: one thread per member, each asking its node for
 * an OVERVIEW on its own schedule with its own timeout, so a dead or
 * paused node shows as such and never delays the other nodes' numbers.
 *
 * The main thread adds targets (the -a address first, then the members it
 * learns of) and, each refresh, copies the latest answers out with
 * tui_poll_snapshot. One target at a time is the anchor: it is also asked
 * for the member table (MEMBERS) and the placement, which every node holds
 * the same way, so one copy per refresh is enough. While any transfer is
 * running every target is also asked for PARTS (the sizes the transfer
 * progress is measured against).
 *
 * Threads: every function is for the main thread; the poll threads touch
 * only their own slot, under the poll's lock. */
#ifndef TUI_POLL_H
#define TUI_POLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TUI_POLL_MAX 32 /* targets: members of one cluster shown at once */

struct tui_poll;

/* What one target answered last. Text fields are malloc'd copies (NULL:
 * never answered that request); the snapshot owns them. */
struct tui_answer {
    char id[64];    /* the member id ("" until the node said it) */
    char addr[128]; /* client address asked */
    char *overview; /* OVERVIEW reply (JSON) */
    char *members;  /* MEMBERS reply, anchor only */
    char *parts;    /* PARTS reply, while transfers run */
    bool anchor;
    bool ok;           /* the last attempt answered */
    uint64_t ok_ms;    /* wall ms of the last answer (0: never) */
    uint64_t tried_ms; /* wall ms the last attempt ended */
    uint32_t took_us;  /* the last OVERVIEW's round trip */
    uint64_t answers;  /* OVERVIEW answers so far */
    uint64_t rx_bytes; /* reply bytes received so far, all requests */
    uint64_t tx_bytes; /* request bytes sent so far */
    char error[200];   /* the last failure, "" if the last attempt answered */
};

/* Start polling every interval_ms; each request times out after
 * timeout_ms. Returns 0 or -errno. */
int tui_poll_open(struct tui_poll **out, unsigned interval_ms, unsigned timeout_ms);

/* Dial every target over TLS with these files (client.h,
 * rk_client_set_tls; ca NULL = plain TCP). The strings must outlive p.
 * Before the first tui_poll_add. */
void tui_poll_set_tls(struct tui_poll *p, const char *ca, const char *cert, const char *key);

/* Sign every request with key (rk_client_set_key; NULL = unsigned). key
 * must outlive p. Before the first tui_poll_add. */
struct rk_auth_key;
void tui_poll_set_key(struct tui_poll *p, const struct rk_auth_key *key);

/* Stop every thread (each ends within its timeout) and free p. */
void tui_poll_close(struct tui_poll *p);

/* Poll addr too (its id filled in when known; "" if not yet). A known id or
 * address is not added twice; an id whose address changed is re-aimed.
 * Returns 0, or -ENOSPC past TUI_POLL_MAX, or -errno. */
int tui_poll_add(struct tui_poll *p, const char *id, const char *addr);

/* Make target i the anchor (the others stop asking MEMBERS). */
void tui_poll_set_anchor(struct tui_poll *p, size_t i);

/* Ask PARTS too (true while transfers run). */
void tui_poll_want_parts(struct tui_poll *p, bool on);

/* Ask every target now instead of at its next tick (a key press). */
void tui_poll_kick(struct tui_poll *p);

/* Copy every target's latest answer into out (at most max): returns how
 * many. Free with tui_poll_snapshot_free. */
size_t tui_poll_snapshot(struct tui_poll *p, struct tui_answer *out, size_t max);
void tui_poll_snapshot_free(struct tui_answer *a, size_t n);

/* A counter that moves whenever any target's answer (or failure) comes
 * in: the screen redraws soon after news, not a whole refresh later. */
uint64_t tui_poll_generation(struct tui_poll *p);

/* Wait until every target has tried at least once since open (or
 * deadline_ms passes): for --once. */
void tui_poll_wait_round(struct tui_poll *p, unsigned deadline_ms);

#endif

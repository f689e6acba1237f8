/* Canned admin replies for the dashboard's model: what N members would
 * answer (OVERVIEW, MEMBERS), for test_tui and tests/bench/bench_tui. */
#ifndef RK_TEST_TUI_FIXTURE_H
#define RK_TEST_TUI_FIXTURE_H

#include "tui/poll.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tui_fixture {
    size_t nodes;           /* members node-1..node-N (3..TUI_POLL_MAX); node-1 the anchor */
    uint32_t parts;         /* partition p is served by members (p+k) % N, k < 3; p = 5 has a
                               pending owner (member 2) */
    uint64_t now_ms, gets;  /* the nodes' clock and GET counter */
    uint64_t lat[4];        /* latency counts over the bounds 100, 1000, 10000 us (+ overflow) */
    const char *last_state; /* the last member's gossip state ("alive", "dead", ...) */
    bool last_silent;       /* the last member did not answer the dashboard */
    const char *marked;     /* hex bitmap of partitions marked for anti-entropy; NULL none */
};

/* Fill a[0..nodes) as the pollers would (malloc'd texts: free with
 * tui_poll_snapshot_free). Each node keeps 4 hints for the last member and
 * reports one event, "node-N: alive -> suspect". Returns nodes. */
size_t tui_fixture_answers(struct tui_answer *a, const struct tui_fixture *f);

#endif

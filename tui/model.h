/* The dashboard's picture of the cluster, built from the pollers' answers
 * (poll.h) on the main thread. Pure: no I/O, no clock of its own (the
 * caller passes "now"), so tests feed it canned replies.
 *
 * Liveness: a member counts as live for the ring's quorum marks when the
 * anchor's gossip says alive and the dashboard itself heard from it within
 * TUI_STALE_INTERVALS refreshes (or has not asked it yet: gossip alone
 * then). Rates are per second between a node's two
 * latest answers, measured by the node's own clock (its now_ms). */
#ifndef TUI_MODEL_H
#define TUI_MODEL_H

#include "client/xfer.h"
#include "tui/poll.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TUI_MAX_PARTS       4096
#define TUI_MAX_PEERS       TUI_POLL_MAX
#define TUI_MAX_XFERS       64
#define TUI_MAX_EVENTS      200
#define TUI_HISTORY         120 /* traffic samples kept for the sparklines */
#define TUI_STALE_INTERVALS 3
#define TUI_LAT_BUCKETS     40

/* Partition marks, in the order they win a cell (worst first). */
enum {
    TUI_P_NO_READ = 1u << 0,  /* fewer live serving replicas than R */
    TUI_P_NO_WRITE = 1u << 1, /* fewer than W */
    TUI_P_UNDER = 1u << 2,    /* fewer than N */
    TUI_P_MOVING = 1u << 3,   /* a pending owner: a transfer waits or runs */
    TUI_P_MARKED = 1u << 4,   /* anti-entropy marks on some node */
};

struct tui_part {
    int16_t owner; /* index into peers of the first serving member; -1 none */
    uint8_t flags; /* TUI_P_* */
    uint8_t live;  /* live serving replicas */
    uint8_t serving;
};

struct tui_peer {
    char id[64], addr[128], state[16]; /* state: gossip's, or "unknown" */
    bool self_anchor;                  /* the node the member table came from */
    bool answered;                     /* the dashboard's last attempt answered */
    bool asked;                        /* the dashboard has tried it at least once */
    bool live;
    uint64_t incarnation, last_heard_ms, rtt_us, state_for_ms;
    bool config_match;
    uint64_t answer_age_ms; /* since the dashboard's last answer (UINT64_MAX: never) */
    uint32_t took_us;       /* the dashboard's last round trip */
    char error[200];        /* the dashboard's last failure */
    char refused[200];      /* a refusal the anchor logged for it */
    uint32_t held;          /* partitions it holds */
    double gets, puts, dels, errors, busy; /* per second; < 0: not known yet */
    double p50_ms, p99_ms;                 /* this node's client requests, last interval */
    uint64_t hints_for;                    /* hints other nodes keep for it */
    uint64_t uptime_s;
    uint64_t rx_bytes, tx_bytes, answers; /* admin traffic so far */
    /* Anti-entropy (its OVERVIEW "ae") */
    bool ae_enabled, ae_running;
    uint64_t ae_round, ae_compared, ae_total, ae_repaired, ae_bytes, ae_max_kps, ae_marked;
    double ae_kps;
    int64_t ae_eta_s;   /* -1 unknown */
    char ae_peers[160]; /* "node-2 ok 3s, node-3 never" */
    /* transfers summary */
    uint64_t xfer_pending, xfer_active, xfer_done, xfer_failed;
    char xfer_waiting[120];
};

struct tui_event {
    uint64_t ms, seq;
    char node[64], kind[16], text[128];
    unsigned seen_by; /* nodes that reported the same event (one row for all) */
};

/* Cluster totals of one refresh, for the traffic pane. */
struct tui_sample {
    double gets, puts, errors, busy; /* per second, summed over nodes */
};

struct tui_model {
    uint64_t now_ms;
    char anchor[128]; /* address the member table came from */
    char cluster[64];
    uint32_t partitions, replicas, r, w;
    bool have_placement;
    size_t npeers;
    struct tui_peer peers[TUI_MAX_PEERS];
    struct tui_part part[TUI_MAX_PARTS];
    uint32_t counts[5]; /* partitions per TUI_P_* bit, index = bit number */
    uint32_t healthy;   /* partitions with no mark */
    size_t nxfers;
    struct rk_xfer_row xfers[TUI_MAX_XFERS]; /* every node's receiving rows, sized */
    size_t nevents;                          /* newest last */
    struct tui_event events[TUI_MAX_EVENTS];
    size_t nhist;     /* newest last, one per refresh interval */
    uint64_t hist_ms; /* when the newest was taken */
    struct tui_sample hist[TUI_HISTORY];
    double p50_ms, p99_ms; /* cluster, last interval; < 0 unknown */
    uint64_t frames;
    /* private: each node's previous counters, for rates */
    struct tui_prev {
        char id[64];
        uint64_t now_ms, get, put, del, errors, busy;
        uint64_t lat[TUI_LAT_BUCKETS + 1];
        size_t nlat;
        double bounds[TUI_LAT_BUCKETS];
        uint64_t dlat[TUI_LAT_BUCKETS + 1]; /* the last interval's counts */
        uint64_t ev_seq;                    /* the newest event taken from this node */
    } prev[TUI_MAX_PEERS];
    size_t nprev;
};

/* Fold the answers of one refresh into m (whose previous contents give the
 * rates and the history). now_ms: the wall clock. interval_ms: the refresh. */
void tui_model_update(struct tui_model *m, const struct tui_answer *a, size_t n, uint64_t now_ms,
                      unsigned interval_ms);

/* The members to poll (id, client address) that the member table lists
 * and are not LEFT: calls add for each. */
void tui_model_members(const struct tui_answer *anchor,
                       void (*add)(const char *id, const char *addr, void *arg), void *arg);

/* One mark character for a partition's cell (ASCII): the owner's digit or
 * letter, or the worst mark. */
char tui_model_cell(const struct tui_model *m, uint32_t p);

/* The mark characters of TUI_P_* by bit number, and the owner glyph of
 * peer i ('1'..'9', 'a'..'z', '+'). */
extern const char tui_mark_chars[5];
char tui_owner_glyph(size_t i);

#endif

/* Drawing the model into a grid: the six panes, the header, the status
 * line and the help. Pure: the same model and UI state give the same
 * frame, so tests compare text. */
#ifndef TUI_RENDER_H
#define TUI_RENDER_H

#include "tui/grid.h"
#include "tui/model.h"

#define TUI_MIN_W 80
#define TUI_MIN_H 24

enum tui_pane { TUI_RING, TUI_PEERS, TUI_AE, TUI_XFERS, TUI_TRAFFIC, TUI_EVENTS, TUI_NPANES };
enum tui_sort {
    TUI_SORT_ID,
    TUI_SORT_STATE,
    TUI_SORT_OPS,
    TUI_SORT_P99,
    TUI_SORT_HELD,
    TUI_NSORTS
};

/* What the user chose: owned by the main loop (keys.c changes it). */
struct tui_ui {
    enum tui_pane focus;
    bool zoom;           /* the focused pane fills the screen */
    bool help;           /* the help overlay */
    bool paused;         /* the picture is frozen */
    bool editing_filter; /* '/' typed: keys go to the filter */
    char filter[64];     /* rows whose text holds it are shown ("" = all) */
    enum tui_sort sort;
    size_t sel;          /* selected peer: index into the sorted, filtered rows */
    char sel_id[64];     /* its id, filled by the renderer */
    char status[200];    /* the status line's message */
    bool demo;           /* show the demo's keys */
    char demo_line[200]; /* the demo's own facts (load, dir) */
    unsigned interval_ms;
    uint64_t frame_ms; /* wall ms the frame was made */
    /* Per peer extra state the demo knows (process paused/killed), by id. */
    size_t nproc;
    struct tui_proc {
        char id[64];
        char what[24];
    } proc[TUI_MAX_PEERS];
};

extern const char *const tui_pane_names[TUI_NPANES];
extern const char *const tui_sort_names[TUI_NSORTS];

/* Draw one frame of the whole screen into g (any size; below the minimum
 * it says so instead). */
void tui_render(struct tui_grid *g, const struct tui_model *m, struct tui_ui *ui);

/* The peers in display order (sorted and filtered): their indices into
 * m->peers in idx (at least TUI_MAX_PEERS); returns how many. */
size_t tui_render_peer_order(const struct tui_model *m, const struct tui_ui *ui, size_t *idx);

#endif

/* A screen as a grid of character cells with a style each: the renderer
 * draws into it, curses blits it, --once prints it. Keeping the picture
 * apart from the terminal makes every frame testable as text. */
#ifndef TUI_GRID_H
#define TUI_GRID_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Styles: what a cell means; the terminal decides how it looks (colour
 * when it has colours and NO_COLOR is unset, else bold / reverse / dim). */
enum tui_style {
    TUI_S_NORMAL,
    TUI_S_DIM,
    TUI_S_BOLD,
    TUI_S_TITLE,  /* header and footer bars */
    TUI_S_FOCUS,  /* the focused pane's title, the selected row */
    TUI_S_OK,     /* alive, done */
    TUI_S_WARN,   /* suspect, waiting, under-replicated */
    TUI_S_BAD,    /* dead, no quorum, errors */
    TUI_S_INFO,   /* moving, marked */
    TUI_S_OWNER0, /* owners' colours: TUI_S_OWNER0 + (index % TUI_OWNER_STYLES) */
};
#define TUI_OWNER_STYLES 6

struct tui_cell {
    uint32_t ch; /* a Unicode code point */
    uint8_t style;
};

struct tui_grid {
    int w, h;
    bool utf8; /* box drawing and blocks may be used; else ASCII only */
    struct tui_cell *c;
};

/* Allocate a w x h grid of blanks. Returns 0 or -ENOMEM. */
int tui_grid_init(struct tui_grid *g, int w, int h, bool utf8);
void tui_grid_free(struct tui_grid *g);
void tui_grid_clear(struct tui_grid *g);

/* Put one code point; outside the grid is ignored. */
void tui_grid_put(struct tui_grid *g, int x, int y, uint32_t ch, enum tui_style s);

/* Write UTF-8 text from (x, y), clipped at max_x (exclusive); returns the x
 * after the last cell written. Control bytes show as '?'. */
int tui_grid_text(struct tui_grid *g, int x, int y, int max_x, enum tui_style s, const char *text);

/* printf into the grid the same way. */
int tui_grid_printf(struct tui_grid *g, int x, int y, int max_x, enum tui_style s, const char *fmt,
                    ...) __attribute__((format(printf, 6, 7)));

/* A box with a title on its top edge (focus draws it in TUI_S_FOCUS). */
void tui_grid_box(struct tui_grid *g, int x, int y, int w, int h, const char *title, bool focus);

/* Fill a row segment with a style (bars). */
void tui_grid_fill(struct tui_grid *g, int x, int y, int w, uint32_t ch, enum tui_style s);

/* The grid as text, one line per row, trailing blanks trimmed: UTF-8 when
 * g->utf8, else ASCII. */
void tui_grid_print(const struct tui_grid *g, FILE *out);

/* Glyphs with an ASCII fallback. */
uint32_t tui_glyph_spark(const struct tui_grid *g, unsigned level); /* 0..7 */
uint32_t tui_glyph_bar(const struct tui_grid *g, bool full);

#endif

/* The terminal: ncurses set up for the dashboard, a grid blitted onto it,
 * keys read with a timeout. Only the dashboard's main thread calls these. */
#ifndef TUI_TERM_H
#define TUI_TERM_H

#include "tui/grid.h"

#include <stdbool.h>

/* Key codes beyond bytes that tui_term_key returns. */
enum {
    TUI_KEY_NONE = -1,
    TUI_KEY_RESIZE = 0x1000,
    TUI_KEY_UP,
    TUI_KEY_DOWN,
    TUI_KEY_LEFT,
    TUI_KEY_RIGHT,
    TUI_KEY_ENTER,
    TUI_KEY_ESC,
    TUI_KEY_BACKSPACE,
    TUI_KEY_TAB,
    TUI_KEY_BTAB,
    TUI_KEY_HANGUP, /* the terminal is gone (closed window, lost ssh) */
};

/* Whether text can use UTF-8 (the locale's codeset), after setlocale. */
bool tui_term_utf8(void);

/* Take the terminal. Returns 0, or -1 with one line in err (not a
 * terminal, unknown TERM). */
int tui_term_open(char *err, size_t len);

/* Give the terminal back as it was. Safe to call twice. */
void tui_term_close(void);

/* The terminal's size now. */
void tui_term_size(int *w, int *h);

/* Show g (same size as the terminal): only changed cells are sent. */
void tui_term_blit(const struct tui_grid *g);

/* The next key, waiting at most ms; TUI_KEY_NONE on timeout,
 * TUI_KEY_HANGUP once the terminal has gone away. */
int tui_term_key(int ms);

#endif

/* ncurses for the dashboard (term.h). Colours only when the terminal has
 * them and NO_COLOR is unset or empty (no-color.org); every meaning is
 * also a character, so a monochrome terminal loses nothing. */
#include "tui/term.h"

#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <langinfo.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

static bool open_;
static bool colour;

bool tui_term_utf8(void)
{
    const char *cs = nl_langinfo(CODESET);
    return cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}

static void colours(void)
{
    const char *nc = getenv("NO_COLOR");
    colour = has_colors() && !(nc && nc[0]);
    if (!colour)
        return;
    start_color();
    use_default_colors();
    init_pair(1, COLOR_GREEN, -1);
    init_pair(2, COLOR_YELLOW, -1);
    init_pair(3, COLOR_RED, -1);
    init_pair(4, COLOR_CYAN, -1);
    init_pair(5, COLOR_BLACK, COLOR_CYAN);
    init_pair(6, COLOR_WHITE, COLOR_BLUE);
    static const short owners[TUI_OWNER_STYLES] = {COLOR_BLUE, COLOR_GREEN,  COLOR_MAGENTA,
                                                   COLOR_CYAN, COLOR_YELLOW, COLOR_WHITE};
    for (int i = 0; i < TUI_OWNER_STYLES; i++)
        init_pair((short)(10 + i), owners[i], -1);
}

int tui_term_open(char *err, size_t len)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        snprintf(err, len, "the dashboard needs a terminal (for scripts: --once or --once --json)");
        return -1;
    }
    if (!newterm(NULL, stdout, stdin)) {
        snprintf(err, len, "cannot use the terminal (TERM=%s): try TERM=xterm or --once",
                 getenv("TERM") ? getenv("TERM") : "");
        return -1;
    }
    open_ = true;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    colours();
    return 0;
}

void tui_term_close(void)
{
    if (!open_)
        return;
    endwin();
    open_ = false;
}

void tui_term_size(int *w, int *h)
{
    *w = COLS, *h = LINES;
}

/* How a style looks: a colour pair and attributes (colour), or attributes
 * alone (monochrome). */
static attr_t look(enum tui_style s, short *pair)
{
    *pair = 0;
    switch (s) {
    case TUI_S_DIM:
        return A_DIM;
    case TUI_S_BOLD:
        return A_BOLD;
    case TUI_S_TITLE:
        *pair = colour ? 6 : 0;
        return A_REVERSE * !colour;
    case TUI_S_FOCUS:
        *pair = colour ? 5 : 0;
        return colour ? A_BOLD : A_REVERSE;
    case TUI_S_OK:
        *pair = colour ? 1 : 0;
        return 0;
    case TUI_S_WARN:
        *pair = colour ? 2 : 0;
        return A_BOLD;
    case TUI_S_BAD:
        *pair = colour ? 3 : 0;
        return A_BOLD;
    case TUI_S_INFO:
        *pair = colour ? 4 : 0;
        return 0;
    case TUI_S_NORMAL:
        return 0;
    default:
        *pair = colour ? (short)(10 + (s - TUI_S_OWNER0) % TUI_OWNER_STYLES) : 0;
        return 0;
    }
}

void tui_term_blit(const struct tui_grid *g)
{
    erase();
    for (int y = 0; y < g->h && y < LINES; y++) {
        for (int x = 0; x < g->w && x < COLS; x++) {
            const struct tui_cell *c = &g->c[y * g->w + x];
            short pair;
            attr_t a = look((enum tui_style)c->style, &pair);
            wchar_t wc[2] = {(wchar_t)c->ch, 0};
            cchar_t cc;
            if (!g->utf8 && c->ch > 0x7e)
                wc[0] = '?';
            setcchar(&cc, wc, a, pair, NULL);
            mvadd_wch(y, x,
                      &cc); /* the last cell "fails" (the cursor cannot move on): drawn anyway */
        }
    }
    refresh();
}

int tui_term_key(int ms)
{
    timeout(ms);
    int ch = getch();
    switch (ch) {
    case ERR: {
        /* A hung-up terminal reads as ERR at once, forever: tell it from a
         * timeout, or the loop would spin. */
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        bool gone = poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLNVAL));
        return gone || !isatty(STDIN_FILENO) ? TUI_KEY_HANGUP : TUI_KEY_NONE;
    }
    case KEY_RESIZE:
        return TUI_KEY_RESIZE;
    case KEY_UP:
        return TUI_KEY_UP;
    case KEY_DOWN:
        return TUI_KEY_DOWN;
    case KEY_LEFT:
        return TUI_KEY_LEFT;
    case KEY_RIGHT:
        return TUI_KEY_RIGHT;
    case KEY_ENTER:
    case '\r':
    case '\n':
        return TUI_KEY_ENTER;
    case 27:
        return TUI_KEY_ESC;
    case KEY_BACKSPACE:
    case 127:
    case 8:
        return TUI_KEY_BACKSPACE;
    case '\t':
        return TUI_KEY_TAB;
    case KEY_BTAB:
        return TUI_KEY_BTAB;
    default:
        return ch >= 0 && ch < 256 ? ch : TUI_KEY_NONE;
    }
}

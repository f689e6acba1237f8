/* The character grid (grid.h). */
#include "tui/grid.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int tui_grid_init(struct tui_grid *g, int w, int h, bool utf8)
{
    g->w = w > 0 ? w : 1, g->h = h > 0 ? h : 1, g->utf8 = utf8;
    g->c = calloc((size_t)g->w * (size_t)g->h, sizeof(*g->c));
    if (!g->c)
        return -ENOMEM;
    tui_grid_clear(g);
    return 0;
}

void tui_grid_free(struct tui_grid *g)
{
    free(g->c);
    g->c = NULL;
}

void tui_grid_clear(struct tui_grid *g)
{
    for (int i = 0; i < g->w * g->h; i++)
        g->c[i] = (struct tui_cell){' ', TUI_S_NORMAL};
}

void tui_grid_put(struct tui_grid *g, int x, int y, uint32_t ch, enum tui_style s)
{
    if (x < 0 || y < 0 || x >= g->w || y >= g->h)
        return;
    if (!g->utf8 && ch > 0x7e)
        ch = '?';
    g->c[y * g->w + x] = (struct tui_cell){ch, (uint8_t)s};
}

/* The next code point of s (advancing *s); a malformed byte is '?'. */
static uint32_t next_cp(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t c = *p++;
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (c >= 0x80 && more == 0) {
        *s = p;
        return '?';
    }
    if (more)
        c &= 0x3f >> more;
    for (int i = 0; i < more; i++, p++) {
        if ((*p & 0xc0) != 0x80) {
            *s = p;
            return '?';
        }
        c = (c << 6) | (*p & 0x3f);
    }
    *s = p;
    return c < 0x20 || c == 0x7f ? '?' : c;
}

int tui_grid_text(struct tui_grid *g, int x, int y, int max_x, enum tui_style s, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    if (max_x > g->w)
        max_x = g->w;
    while (*p && x < max_x)
        tui_grid_put(g, x++, y, next_cp(&p), s);
    return x;
}

int tui_grid_printf(struct tui_grid *g, int x, int y, int max_x, enum tui_style s, const char *fmt,
                    ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return tui_grid_text(g, x, y, max_x, s, line);
}

void tui_grid_fill(struct tui_grid *g, int x, int y, int w, uint32_t ch, enum tui_style s)
{
    for (int i = 0; i < w; i++)
        tui_grid_put(g, x + i, y, ch, s);
}

void tui_grid_box(struct tui_grid *g, int x, int y, int w, int h, const char *title, bool focus)
{
    uint32_t hz = g->utf8 ? 0x2500 : '-', vt = g->utf8 ? 0x2502 : '|';
    uint32_t tl = g->utf8 ? 0x250c : '+', tr = g->utf8 ? 0x2510 : '+';
    uint32_t bl = g->utf8 ? 0x2514 : '+', br = g->utf8 ? 0x2518 : '+';
    enum tui_style s = focus ? TUI_S_FOCUS : TUI_S_DIM;
    tui_grid_fill(g, x + 1, y, w - 2, hz, s);
    tui_grid_fill(g, x + 1, y + h - 1, w - 2, hz, s);
    for (int r = y + 1; r < y + h - 1; r++) {
        tui_grid_put(g, x, r, vt, s);
        tui_grid_put(g, x + w - 1, r, vt, s);
    }
    tui_grid_put(g, x, y, tl, s);
    tui_grid_put(g, x + w - 1, y, tr, s);
    tui_grid_put(g, x, y + h - 1, bl, s);
    tui_grid_put(g, x + w - 1, y + h - 1, br, s);
    if (title)
        tui_grid_printf(g, x + 2, y, x + w - 2, focus ? TUI_S_FOCUS : TUI_S_BOLD, " %s ", title);
}

static void put_utf8(uint32_t c, FILE *out)
{
    if (c < 0x80) {
        fputc((int)c, out);
    } else if (c < 0x800) {
        fputc((int)(0xc0 | (c >> 6)), out);
        fputc((int)(0x80 | (c & 0x3f)), out);
    } else if (c < 0x10000) {
        fputc((int)(0xe0 | (c >> 12)), out);
        fputc((int)(0x80 | ((c >> 6) & 0x3f)), out);
        fputc((int)(0x80 | (c & 0x3f)), out);
    } else {
        fputc((int)(0xf0 | (c >> 18)), out);
        fputc((int)(0x80 | ((c >> 12) & 0x3f)), out);
        fputc((int)(0x80 | ((c >> 6) & 0x3f)), out);
        fputc((int)(0x80 | (c & 0x3f)), out);
    }
}

void tui_grid_print(const struct tui_grid *g, FILE *out)
{
    for (int y = 0; y < g->h; y++) {
        int end = g->w;
        while (end > 0 && g->c[y * g->w + end - 1].ch == ' ')
            end--;
        for (int x = 0; x < end; x++) {
            uint32_t c = g->c[y * g->w + x].ch;
            if (g->utf8)
                put_utf8(c, out);
            else
                fputc(c < 0x7f ? (int)c : '?', out);
        }
        fputc('\n', out);
    }
}

uint32_t tui_glyph_spark(const struct tui_grid *g, unsigned level)
{
    static const char ascii[] = "_.,:-=+*";
    if (level > 7)
        level = 7;
    return g->utf8 ? 0x2581 + level : (uint32_t)ascii[level];
}

uint32_t tui_glyph_bar(const struct tui_grid *g, bool full)
{
    return full ? (g->utf8 ? 0x2588 : '#') : (g->utf8 ? 0x2591 : '.');
}

/* JSON text buffer (see jbuf.h). */
#include "util/jbuf.h"
#include "util/grow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL; false (and b->oom) when there is none. */
static bool room(struct rk_jbuf *b, size_t n)
{
    if (!b->oom && rk_grow(&b->p, &b->cap, b->len + n + 1, 1, 512, 0) < 0)
        b->oom = true;
    return !b->oom;
}

void rk_jadd(struct rk_jbuf *b, const char *fmt, ...)
{
    /* Format into the room there is; only when it does not fit, grow and
     * format again. */
    for (int pass = 0; pass < 2 && !b->oom; pass++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
        } else if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        } else {
            room(b, (size_t)n);
        }
    }
}

void rk_jaddn(struct rk_jbuf *b, const void *p, size_t n)
{
    if (!room(b, n))
        return;
    if (n > 0) /* p may be NULL then */
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void rk_jstr(struct rk_jbuf *b, const char *s)
{
    rk_jadd(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rk_jadd(b, "\\%c", c);
        else if (c < 0x20)
            rk_jadd(b, "\\u%04x", c);
        else
            rk_jadd(b, "%c", c);
    }
    rk_jadd(b, "\"");
}

void rk_jbuf_move(struct rk_jbuf *b, struct rk_jbuf *part)
{
    rk_jaddn(b, part->p ? part->p : "", part->len);
    b->oom = b->oom || part->oom;
    free(part->p);
    *part = (struct rk_jbuf){0};
}

/* JSON text buffer (see jbuf.h). */
#include "util/jbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rk_jadd(struct rk_jbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 512) + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

void rk_jaddn(struct rk_jbuf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->p == NULL || b->cap - b->len <= n) { /* room for n and the NUL */
        size_t cap = (b->cap ? b->cap * 2 : 512) + n;
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
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

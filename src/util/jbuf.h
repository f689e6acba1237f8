/* A growing text buffer for building JSON replies: admin answers, the
 * member table, a GET's trace. Appends never fail halfway: out of memory,
 * the buffer is marked and its owner answers without it. */
#ifndef RK_UTIL_JBUF_H
#define RK_UTIL_JBUF_H

#include <stdbool.h>
#include <stddef.h>

struct rk_jbuf {
    char *p; /* NUL-terminated once anything was added; free() it */
    size_t len, cap;
    bool oom; /* an append did not fit: the text is incomplete */
};

/* Append printf-style. */
void rk_jadd(struct rk_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append n bytes as they are (NUL bytes too: len counts them, and a NUL
 * still follows the last byte). n == 0 still allocates, so p is "" after. */
void rk_jaddn(struct rk_jbuf *b, const void *p, size_t n);

/* Append what part holds and free it (part is empty after; its running
 * out of memory carries over to b). */
void rk_jbuf_move(struct rk_jbuf *b, struct rk_jbuf *part);

/* Append s as a JSON string literal: quotes, backslashes and control
 * bytes escaped (other bytes go as they are: ids and paths are UTF-8). */
void rk_jstr(struct rk_jbuf *b, const char *s);

#endif

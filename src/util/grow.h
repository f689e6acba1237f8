/* Growing an array by doubling: one piece of code for every buffer that
 * fills up (reply queues, batch buffers, parse buffers, id lists). */
#ifndef RK_UTIL_GROW_H
#define RK_UTIL_GROW_H

#include <stddef.h>

/* Make room for at least need elements of elem bytes in *buf, whose
 * capacity is *cap elements: the capacity doubles, starting at min (> 0),
 * until need fits; never past max elements (0: no limit but size_t). 0,
 * or -ENOMEM / -EOVERFLOW with *buf and *cap unchanged. */
int rk_grow(void *buf, size_t *cap, size_t need, size_t elem, size_t min, size_t max);

#endif

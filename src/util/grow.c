/* Doubling growth (grow.h). */
#include "util/grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int rk_grow(void *buf, size_t *cap, size_t need, size_t elem, size_t min, size_t max)
{
    if (need <= *cap)
        return 0;
    size_t limit = SIZE_MAX / elem;
    if (max && max < limit)
        limit = max;
    if (need > limit)
        return -EOVERFLOW;
    size_t c = *cap ? *cap : min;
    while (c < need)
        c = c > limit / 2 ? limit : c * 2;
    void *old;
    memcpy(&old, buf, sizeof(old)); /* buf is a T **: no aliasing games */
    void *nb = realloc(old, c * elem);
    if (!nb)
        return -ENOMEM;
    memcpy(buf, &nb, sizeof(nb));
    *cap = c;
    return 0;
}

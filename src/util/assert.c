/* The failure path of RK_ASSERT (see assert.h). */
#include "util/assert.h"
#include "util/log.h"

#include <stdlib.h>

_Noreturn void rk_assert_fail(const char *file, int line, const char *expr)
{
    rk_error("assert", "%s:%d: assertion failed: %s", file, line, expr);
    abort();
}

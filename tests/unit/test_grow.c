/* Doubling growth (util/grow.h): capacities double from the minimum until
 * the need fits, stop at the maximum, and a failure changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_doubles_from_min_and_keeps_contents(void **state)
{
    (void)state;
    uint32_t *a = NULL;
    size_t cap = 0;
    assert_int_equal(rk_grow(&a, &cap, 1, sizeof(*a), 4, 0), 0);
    assert_int_equal(cap, 4);
    for (uint32_t i = 0; i < 4; i++)
        a[i] = i;
    assert_int_equal(rk_grow(&a, &cap, 4, sizeof(*a), 4, 0), 0); /* fits: nothing */
    assert_int_equal(cap, 4);
    assert_int_equal(rk_grow(&a, &cap, 5, sizeof(*a), 4, 0), 0);
    assert_int_equal(cap, 8);
    assert_int_equal(rk_grow(&a, &cap, 100, sizeof(*a), 4, 0), 0);
    assert_int_equal(cap, 128);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(a[i], i);
    free(a);
}

static void test_max_and_overflow(void **state)
{
    (void)state;
    char *b = NULL;
    size_t cap = 0;
    assert_int_equal(rk_grow(&b, &cap, 10, 1, 8, 12), 0);
    assert_int_equal(cap, 12); /* doubling stops at the maximum */
    assert_int_equal(rk_grow(&b, &cap, 13, 1, 8, 12), -EOVERFLOW);
    assert_int_equal(cap, 12);
    assert_non_null(b);
    void *before = b;
    assert_int_equal(rk_grow(&b, &cap, SIZE_MAX / 2, 16, 8, 0), -EOVERFLOW);
    assert_ptr_equal(b, before);
    assert_int_equal(cap, 12);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_from_min_and_keeps_contents),
        cmocka_unit_test(test_max_and_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

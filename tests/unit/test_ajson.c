/* Unit tests for client/ajson: the admin-JSON reader kvctl and the
 * dashboard share. Well-formed replies, nesting, escapes, the u64 limits,
 * and malformed text refused; inputs are cut copies in their own heap
 * blocks, so ASan sees any read past the given length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/ajson.h"
#include "util/err.h"

/* Parse exactly the bytes of s (no NUL after them) with flags. */
static int parse(struct rk_ajson **d, const char *s, unsigned flags)
{
    size_t n = strlen(s);
    char *copy = malloc(n > 0 ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    int rv = rk_ajson_parse(d, copy, n, flags);
    free(copy);
    return rv;
}

static struct rk_ajson *must_parse(const char *s, unsigned flags)
{
    struct rk_ajson *d;
    assert_int_equal(parse(&d, s, flags), 0);
    return d;
}

static void test_object_paths(void **state)
{
    (void)state;
    struct rk_ajson *d = must_parse(" {\"node\": \"n1\", \"uptime_ms\": 1200,\n"
                                    "  \"ok\": true, \"gone\": null, \"ratio\": -1.5e3,"
                                    "  \"storage\": {\"puts\": 7, \"dirs\": []}} ",
                                    0);
    const struct rk_ajson_val *r = rk_ajson_root(d);
    assert_int_equal(rk_ajson_type(r), RK_AJSON_OBJECT);
    assert_int_equal(rk_ajson_count(r), 6);
    assert_string_equal(rk_ajson_str(rk_ajson_member(r, "node"), NULL), "n1");
    assert_string_equal(rk_ajson_text(rk_ajson_member(r, "uptime_ms")), "1200");
    assert_string_equal(rk_ajson_text(rk_ajson_member(r, "ratio")), "-1.5e3");
    assert_string_equal(rk_ajson_text(rk_ajson_member(r, "gone")), "null");
    assert_int_equal(rk_ajson_type(rk_ajson_member(r, "gone")), RK_AJSON_NULL);
    bool b = false;
    assert_int_equal(rk_ajson_bool(rk_ajson_member(r, "ok"), &b), 0);
    assert_true(b);
    double x;
    assert_int_equal(rk_ajson_double(rk_ajson_member(r, "ratio"), &x), 0);
    assert_true(x == -1500.0);
    uint64_t u;
    assert_int_equal(rk_ajson_u64(rk_ajson_path(r, "storage.puts"), &u), 0);
    assert_int_equal(u, 7);
    assert_string_equal(rk_ajson_text(rk_ajson_path(r, "storage.dirs")), "[]");
    assert_null(rk_ajson_text(rk_ajson_member(r, "storage"))); /* not empty */
    assert_null(rk_ajson_member(r, "missing"));
    assert_null(rk_ajson_path(r, "storage.puts.x"));
    assert_null(rk_ajson_str(rk_ajson_member(r, "uptime_ms"), NULL)); /* not a string */
    size_t n;
    const char *raw = rk_ajson_raw(rk_ajson_member(r, "storage"), &n);
    assert_int_equal(n, strlen("{\"puts\": 7, \"dirs\": []}"));
    assert_memory_equal(raw, "{\"puts\": 7, \"dirs\": []}", n);
    rk_ajson_free(d);
}

/* Iteration in document order, arrays by index and by path, and NULL
 * passed through every accessor. */
static void test_arrays_and_iteration(void **state)
{
    (void)state;
    struct rk_ajson *d = must_parse("{\"members\":[{\"id\":\"a\",\"state\":\"alive\"},"
                                    "{\"id\":\"b\",\"state\":\"dead\",\"x\":[1,[2,3],{}]}],"
                                    "\"n\":2}",
                                    0);
    const struct rk_ajson_val *r = rk_ajson_root(d), *m = rk_ajson_member(r, "members");
    assert_int_equal(rk_ajson_type(m), RK_AJSON_ARRAY);
    assert_int_equal(rk_ajson_count(m), 2);
    const char *ids[] = {"a", "b"};
    size_t k = 0;
    for (const struct rk_ajson_val *e = rk_ajson_first(m); e != NULL; e = rk_ajson_next(e), k++) {
        assert_null(rk_ajson_key(e, NULL)); /* array elements have no name */
        assert_string_equal(rk_ajson_text(rk_ajson_member(e, "id")), ids[k]);
    }
    assert_int_equal(k, 2);
    assert_string_equal(rk_ajson_text(rk_ajson_path(r, "members.1.x.1.0")), "2");
    assert_string_equal(rk_ajson_text(rk_ajson_path(r, "members.1.x.2")), "{}");
    assert_null(rk_ajson_path(r, "members.2.id"));
    assert_null(rk_ajson_path(r, "members.-1"));
    assert_null(rk_ajson_path(r, "members.99999999999999999999999"));
    assert_null(rk_ajson_index(m, 2));
    assert_null(rk_ajson_index(r, 0)); /* an object is not indexed */
    /* the member after a nested container is reached */
    const char *names[] = {"members", "n"};
    k = 0;
    for (const struct rk_ajson_val *e = rk_ajson_first(r); e != NULL; e = rk_ajson_next(e), k++)
        assert_string_equal(rk_ajson_key(e, NULL), names[k]);
    assert_int_equal(k, 2);
    /* NULL in, NULL out */
    assert_null(rk_ajson_text(rk_ajson_member(rk_ajson_index(NULL, 0), "id")));
    assert_int_equal(rk_ajson_type(NULL), RK_AJSON_NONE);
    assert_int_equal(rk_ajson_count(NULL), 0);
    uint64_t u;
    assert_int_equal(rk_ajson_u64(NULL, &u), RK_EINVAL);
    rk_ajson_free(d);
    rk_ajson_free(NULL);
}

/* Escapes decode exactly by default: \n, \u00e9, a surrogate pair, \u0000
 * (a NUL inside the length), an unpaired surrogate as U+FFFD. */
static void test_escapes_exact(void **state)
{
    (void)state;
    struct rk_ajson *d = must_parse("{\"s\":\"a\\n\\\"\\\\\\/\\t\\u00e9\\ud83d\\ude00\\u0000z\","
                                    "\"lone\":\"\\ud800x\",\"k\\u0065y\":1}",
                                    0);
    const struct rk_ajson_val *r = rk_ajson_root(d);
    size_t n;
    const char *s = rk_ajson_str(rk_ajson_member(r, "s"), &n);
    const char want[] = "a\n\"\\/\t\xc3\xa9\xf0\x9f\x98\x80\0z";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(s, want, n);
    assert_string_equal(rk_ajson_str(rk_ajson_member(r, "lone"), NULL), "\xef\xbf\xbdx");
    assert_non_null(rk_ajson_member(r, "key")); /* names compare decoded */
    rk_ajson_free(d);
}

/* RK_AJSON_ONE_LINE: control characters and unpaired surrogates keep their
 * escapes (a value stays on one line); the rest decodes as before. */
static void test_escapes_one_line(void **state)
{
    (void)state;
    struct rk_ajson *d =
        must_parse("{\"s\":\"a\\nb\\u0001\\u00e9\\ud800\\/\",\"n\\tk\":0}", RK_AJSON_ONE_LINE);
    const struct rk_ajson_val *r = rk_ajson_root(d);
    assert_string_equal(rk_ajson_str(rk_ajson_member(r, "s"), NULL),
                        "a\\nb\\u0001\xc3\xa9\\ud800/");
    assert_string_equal(rk_ajson_key(rk_ajson_path(r, "n\\tk"), NULL), "n\\tk");
    rk_ajson_free(d);
}

static void test_u64_limits(void **state)
{
    (void)state;
    struct rk_ajson *d = must_parse("[0, 18446744073709551615, 18446744073709551616, -1, 1.0,"
                                    " 1e3, 99999999999999999999999, \"5\", 1e400]",
                                    0);
    const struct rk_ajson_val *a = rk_ajson_root(d);
    uint64_t u = 42;
    assert_int_equal(rk_ajson_u64(rk_ajson_index(a, 0), &u), 0);
    assert_int_equal(u, 0);
    assert_int_equal(rk_ajson_u64(rk_ajson_index(a, 1), &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(rk_ajson_u64(rk_ajson_index(a, 2), &u), -ERANGE);
    assert_int_equal(rk_ajson_u64(rk_ajson_index(a, 3), &u), RK_EINVAL);
    assert_int_equal(rk_ajson_u64(rk_ajson_index(a, 4), &u), RK_EINVAL);
    assert_int_equal(rk_ajson_u64(rk_ajson_index(a, 5), &u), RK_EINVAL);
    assert_int_equal(rk_ajson_u64(rk_ajson_index(a, 6), &u), -ERANGE);
    assert_int_equal(rk_ajson_u64(rk_ajson_index(a, 7), &u), RK_EINVAL); /* a string */
    assert_true(u == UINT64_MAX);                                        /* untouched */
    double x;
    assert_int_equal(rk_ajson_double(rk_ajson_index(a, 8), &x), -ERANGE);
    rk_ajson_free(d);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "{a:1}",
        "{\"a\":1}x",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"a\nb\"",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "1e+",
        "+1",
        "tru",
        "truex",
        "nul",
        "[nan]",
        "{\"a\":1 \"b\":2}",
        "[\"\\",
        "{\"a\"\"b\"}",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct rk_ajson *d = (struct rk_ajson *)1;
        assert_int_equal(parse(&d, bad[k], 0), RK_EMALFORMED);
        assert_null(d);
    }
    /* a NUL byte inside the given length is refused, in and out of strings */
    struct rk_ajson *d;
    assert_int_equal(rk_ajson_parse(&d, "{\"a\":1}\0", 8, 0), RK_EMALFORMED);
    assert_int_equal(rk_ajson_parse(&d, "\"a\0b\"", 5, 0), RK_EMALFORMED);
    /* a valid prefix is not enough: only len bytes are read */
    assert_int_equal(rk_ajson_parse(&d, "{\"a\":1}", 6, 0), RK_EMALFORMED);
}

/* Nesting up to RK_AJSON_MAX_DEPTH parses; one more is refused. */
static void test_depth_limit(void **state)
{
    (void)state;
    char s[2 * (RK_AJSON_MAX_DEPTH + 1) + 1];
    for (int depth = RK_AJSON_MAX_DEPTH; depth <= RK_AJSON_MAX_DEPTH + 1; depth++) {
        memset(s, '[', (size_t)depth);
        memset(s + depth, ']', (size_t)depth);
        s[2 * depth] = '\0';
        struct rk_ajson *d;
        int rv = parse(&d, s, 0);
        assert_int_equal(rv, depth <= RK_AJSON_MAX_DEPTH ? 0 : RK_EMALFORMED);
        rk_ajson_free(d);
    }
}

/* Every cut of a valid reply is refused or parses, never read past. */
static void test_every_prefix(void **state)
{
    (void)state;
    const char *s = "{\"a\":[1,-2.5e1,true,null,\"x\\u00e9\\ud83d\\ude00\"],\"b\":{}}";
    for (size_t n = 0; n <= strlen(s); n++) {
        char *copy = malloc(n > 0 ? n : 1);
        assert_non_null(copy);
        memcpy(copy, s, n);
        struct rk_ajson *d;
        int rv = rk_ajson_parse(&d, copy, n, RK_AJSON_ONE_LINE);
        assert_int_equal(rv, n == strlen(s) ? 0 : RK_EMALFORMED);
        rk_ajson_free(d);
        free(copy);
    }
}

static void test_compact(void **state)
{
    (void)state;
    const char *s = " { \"a b\" : [ 1 , \"x \\\" y\" ] ,\n\t\"c\" : {} } ";
    struct rk_jbuf out = {0};
    rk_ajson_compact(s, strlen(s), &out);
    assert_false(out.oom);
    assert_string_equal(out.p, "{\"a b\":[1,\"x \\\" y\"],\"c\":{}}");
    free(out.p);
}

/* The display helpers: absent or unfit values show as 0 / "", text is cut
 * to the buffer. */
static void test_display_helpers(void **state)
{
    (void)state;
    struct rk_ajson *d =
        must_parse("{\"n\": 42, \"neg\": -1, \"s\": \"node-12345\", \"f\": 1.5}", 0);
    const struct rk_ajson_val *r = rk_ajson_root(d);
    assert_int_equal(rk_ajson_u64_or0(rk_ajson_member(r, "n")), 42);
    assert_int_equal(rk_ajson_u64_or0(rk_ajson_member(r, "neg")), 0);
    assert_int_equal(rk_ajson_u64_or0(rk_ajson_member(r, "f")), 0);
    assert_int_equal(rk_ajson_u64_or0(rk_ajson_member(r, "absent")), 0);
    char b[8];
    rk_ajson_copy_text(b, sizeof b, rk_ajson_member(r, "s"));
    assert_string_equal(b, "node-12");
    rk_ajson_copy_text(b, sizeof b, rk_ajson_member(r, "n"));
    assert_string_equal(b, "42");
    rk_ajson_copy_text(b, sizeof b, NULL);
    assert_string_equal(b, "");
    rk_ajson_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_paths),  cmocka_unit_test(test_arrays_and_iteration),
        cmocka_unit_test(test_escapes_exact), cmocka_unit_test(test_escapes_one_line),
        cmocka_unit_test(test_u64_limits),    cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_depth_limit),   cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_compact),       cmocka_unit_test(test_display_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* TOML reader: every supported form parses to the right tree with the right
 * positions; every error class is reported with its exact line, column and
 * message; parsing stays linear on large inputs; the printing helpers
 * escape whatever bytes they get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "config/toml.h"
#include "util/err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static rk_toml_doc *parse_ok(const char *text)
{
    rk_toml_doc *d = NULL;
    char err[512];
    int rc = rk_toml_parse(&d, "t.toml", text, strlen(text), err, sizeof(err));
    if (rc)
        fail_msg("parse failed (%d): %s\n--- input:\n%s", rc, err, text);
    return d;
}

/* The input must fail with exactly "t.toml:" + want. */
static void parse_err_n(const char *text, size_t len, const char *want)
{
    rk_toml_doc *d = NULL;
    char err[512], full[600];
    int rc = rk_toml_parse(&d, "t.toml", text, len, err, sizeof(err));
    assert_null(d);
    snprintf(full, sizeof(full), "t.toml:%s", want);
    if (rc != RK_EMALFORMED || strcmp(err, full) != 0)
        fail_msg("rc %d, error\n  got:  %s\n  want: %s\n--- input:\n%.*s", rc, err, full, (int)len,
                 text);
}

static void parse_err(const char *text, const char *want)
{
    parse_err_n(text, strlen(text), want);
}

static const struct rk_toml_value *at(const rk_toml_doc *d, const char *path)
{
    const struct rk_toml_value *v = rk_toml_lookup(rk_toml_root(d), path);
    if (!v)
        fail_msg("no value at %s", path);
    return v;
}

static void want_str(const rk_toml_doc *d, const char *path, const char *s, size_t len)
{
    const struct rk_toml_value *v = at(d, path);
    assert_int_equal(v->type, RK_TOML_STRING);
    assert_int_equal(v->len, len);
    assert_memory_equal(v->str, s, len);
    assert_int_equal(v->str[len], '\0');
}

static void want_int(const rk_toml_doc *d, const char *path, int64_t i)
{
    const struct rk_toml_value *v = at(d, path);
    assert_int_equal(v->type, RK_TOML_INT);
    if (v->i != i)
        fail_msg("%s = %lld, want %lld", path, (long long)v->i, (long long)i);
}

static void want_float(const rk_toml_doc *d, const char *path, double f)
{
    const struct rk_toml_value *v = at(d, path);
    assert_int_equal(v->type, RK_TOML_FLOAT);
    assert_true(v->f == f);
}

static void test_tables_and_keys(void **state)
{
    rk_toml_doc *d = parse_ok("\xEF\xBB\xBF# a config\n"
                              "top = 1\n"
                              "[a]\n"
                              "x = 1\n"
                              "[ a . b ]   # spaces allowed around dots\n"
                              "\"quoted key\" = 2\n"
                              "'literal.key' = 3\n"
                              "\"\" = 4\n"
                              "1234 = 5\n"
                              "c.d.e = 6\n"
                              "c.d.f = 7\n"
                              "[x.y.z]\n"
                              "[x]\n"
                              "w = 8\n"
                              "[x.y]\n"
                              "v = 9\n"
                              "[t]\n"
                              "in = { p = 1, q.r = \"s\", nest = { k = [1] } }\n"
                              "empty = {}\n");
    const struct rk_toml_value *root = rk_toml_root(d);
    assert_int_equal(root->type, RK_TOML_TABLE);
    assert_int_equal(root->count, 4);
    want_int(d, "top", 1);
    want_int(d, "a.x", 1);
    const struct rk_toml_value *b = at(d, "a.b");
    assert_int_equal(b->type, RK_TOML_TABLE);
    want_int(d, "a.b.quoted key", 2);
    assert_int_equal(rk_toml_get(b, "literal.key")->i, 3);
    assert_int_equal(rk_toml_get(b, "")->i, 4);
    want_int(d, "a.b.1234", 5);
    want_int(d, "a.b.c.d.e", 6);
    want_int(d, "a.b.c.d.f", 7);
    want_int(d, "x.w", 8);
    want_int(d, "x.y.v", 9);
    assert_int_equal(at(d, "x.y.z")->type, RK_TOML_TABLE);
    want_int(d, "t.in.p", 1);
    want_str(d, "t.in.q.r", "s", 1);
    assert_int_equal(at(d, "t.in.nest.k")->type, RK_TOML_ARRAY);
    assert_int_equal(at(d, "t.empty")->count, 0);
    assert_null(rk_toml_lookup(root, "a.nope"));
    assert_null(rk_toml_lookup(root, "top.x"));
    assert_null(rk_toml_get(at(d, "top"), "x"));
    /* Document order. */
    const char *order[] = {"top", "a", "x", "t"};
    int i = 0;
    for (const struct rk_toml_value *c = root->first; c; c = c->next)
        assert_string_equal(c->key, order[i++]);
    rk_toml_free(d);
}

static void test_empty_and_blank_documents(void **state)
{
    const char *docs[] = {"", "\n\n", "# only a comment", "  \t \r\n# x\r\n", "\xEF\xBB\xBF"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        rk_toml_doc *d = parse_ok(docs[i]);
        assert_int_equal(rk_toml_root(d)->count, 0);
        rk_toml_free(d);
    }
    rk_toml_free(NULL);
}

static void test_basic_strings(void **state)
{
    rk_toml_doc *d = parse_ok("esc = \"\\b\\t\\n\\f\\r\\\"\\\\\"\n"
                              "uni = \"\\u00E9\\U0001F600\\u0041\"\n"
                              "nul = \"a\\u0000b\"\n"
                              "raw = \"caf\xC3\xA9 \xE2\x82\xAC\ttab\"\n"
                              "empty = \"\"\n"
                              "hash = \"# not a comment\"\n");
    want_str(d, "esc", "\b\t\n\f\r\"\\", 7);
    want_str(d, "uni",
             "\xC3\xA9\xF0\x9F\x98\x80"
             "A",
             7);
    want_str(d, "nul", "a\0b", 3);
    want_str(d, "raw", "caf\xC3\xA9 \xE2\x82\xAC\ttab", 13);
    want_str(d, "empty", "", 0);
    want_str(d, "hash", "# not a comment", 15);
    rk_toml_free(d);
}

static void test_literal_and_multiline_strings(void **state)
{
    rk_toml_doc *d = parse_ok("lit = 'C:\\Users\\x \"quoted\"'\n"
                              "ml = \"\"\"\n"
                              "one\n"
                              "two \\\n"
                              "     three\\t\n"
                              "\"\"\"\n"
                              "crlf = \"\"\"a\r\nb\"\"\"\n"
                              "q = \"\"\"x\"\"y\"\"\"\"\"\n"
                              "mll = '''\n"
                              "raw \\n 'one' ''two'''\n"
                              "mll2 = '''x'''''\n");
    want_str(d, "lit", "C:\\Users\\x \"quoted\"", 19);
    want_str(d, "ml", "one\ntwo three\t\n", 15);
    want_str(d, "crlf", "a\nb", 3);
    want_str(d, "q", "x\"\"y\"\"", 6);
    want_str(d, "mll", "raw \\n 'one' ''two", 18);
    want_str(d, "mll2", "x''", 3);
    rk_toml_free(d);
}

static void test_numbers_and_booleans(void **state)
{
    rk_toml_doc *d = parse_ok("a = 0\nb = +17\nc = -42\nd = 1_000_000\n"
                              "max = 9223372036854775807\nmin = -9223372036854775808\n"
                              "hex = 0xDEAD_beef\noct = 0o755\nbin = 0b1101\n"
                              "hexmax = 0x7FFFFFFFFFFFFFFF\nz = -0\n"
                              "f1 = 1.5\nf2 = -0.25\nf3 = 6.02e23\nf4 = 1E-3\nf5 = 1_000.5\n"
                              "f6 = 3e+2\nf7 = 0.0\n"
                              "pinf = inf\nninf = -inf\nn = nan\npn = +nan\n"
                              "t = true\nf = false\n");
    want_int(d, "a", 0);
    want_int(d, "b", 17);
    want_int(d, "c", -42);
    want_int(d, "d", 1000000);
    want_int(d, "max", INT64_MAX);
    want_int(d, "min", INT64_MIN);
    want_int(d, "hex", 0xDEADBEEF);
    want_int(d, "oct", 0755);
    want_int(d, "bin", 13);
    want_int(d, "hexmax", INT64_MAX);
    want_int(d, "z", 0);
    want_float(d, "f1", 1.5);
    want_float(d, "f2", -0.25);
    want_float(d, "f3", 6.02e23);
    want_float(d, "f4", 1e-3);
    want_float(d, "f5", 1000.5);
    want_float(d, "f6", 300);
    want_float(d, "f7", 0);
    want_float(d, "pinf", INFINITY);
    want_float(d, "ninf", -INFINITY);
    assert_true(isnan(at(d, "n")->f));
    assert_true(isnan(at(d, "pn")->f));
    assert_int_equal(at(d, "t")->type, RK_TOML_BOOL);
    assert_true(at(d, "t")->b);
    assert_false(at(d, "f")->b);
    rk_toml_free(d);
}

static void test_arrays(void **state)
{
    rk_toml_doc *d = parse_ok("e = []\n"
                              "one = [ 1 ]\n"
                              "trail = [1, 2, 3,]\n"
                              "multi = [\n"
                              "  \"a\",   # first\n"
                              "  # a comment line\n"
                              "\n"
                              "  \"b\"\n"
                              "  ,\"c\",\n"
                              "]\n"
                              "nested = [[1, 2], [\"x\"], [], [[true]]]\n"
                              "mixed = [1, \"two\", 3.0, {k = 4}]\n");
    assert_int_equal(at(d, "e")->type, RK_TOML_ARRAY);
    assert_int_equal(at(d, "e")->count, 0);
    assert_int_equal(at(d, "one")->count, 1);
    assert_int_equal(at(d, "one")->first->i, 1);
    assert_int_equal(at(d, "trail")->count, 3);
    const struct rk_toml_value *m = at(d, "multi");
    assert_int_equal(m->count, 3);
    const char *want[] = {"a", "b", "c"};
    int i = 0;
    for (const struct rk_toml_value *e = m->first; e; e = e->next, i++) {
        assert_null(e->key);
        assert_string_equal(e->str, want[i]);
    }
    const struct rk_toml_value *n = at(d, "nested");
    assert_int_equal(n->count, 4);
    assert_int_equal(n->first->count, 2);
    assert_true(n->first->next->next->next->first->first->b);
    const struct rk_toml_value *x = at(d, "mixed")->first->next->next->next;
    assert_int_equal(x->type, RK_TOML_TABLE);
    assert_int_equal(rk_toml_get(x, "k")->i, 4);
    rk_toml_free(d);
}

/* Lines and columns are 1-based; columns count characters, not bytes. */
static void test_positions(void **state)
{
    rk_toml_doc *d = parse_ok("[node]\n"
                              "id = \"x\"\n"
                              "  workers = 4\n"
                              "\"\xC3\xA9t\xC3\xA9\" = 'y'\n"
                              "\ttab =\t1\n"
                              "arr = [\n"
                              "   10,\n"
                              "   20 ]\n"
                              "a.b = 2\n");
    const struct rk_toml_value *node = at(d, "node");
    assert_int_equal(node->line, 1);
    assert_int_equal(node->col, 1);
    assert_int_equal(node->key_line, 1);
    assert_int_equal(node->key_col, 2);
    const struct rk_toml_value *id = at(d, "node.id");
    assert_int_equal(id->key_line, 2);
    assert_int_equal(id->key_col, 1);
    assert_int_equal(id->line, 2);
    assert_int_equal(id->col, 6);
    const struct rk_toml_value *w = at(d, "node.workers");
    assert_int_equal(w->key_col, 3);
    assert_int_equal(w->line, 3);
    assert_int_equal(w->col, 13);
    const struct rk_toml_value *ete = rk_toml_get(node, "\xC3\xA9t\xC3\xA9");
    assert_non_null(ete);
    assert_int_equal(ete->line, 4);
    assert_int_equal(ete->col, 9); /* "été" = 'y': 5 characters, 7 bytes, before = */
    const struct rk_toml_value *tab = at(d, "node.tab");
    assert_int_equal(tab->key_col, 2);
    assert_int_equal(tab->col, 8);
    const struct rk_toml_value *arr = at(d, "node.arr");
    assert_int_equal(arr->line, 6);
    assert_int_equal(arr->col, 7);
    assert_int_equal(arr->first->line, 7);
    assert_int_equal(arr->first->col, 4);
    assert_int_equal(arr->first->next->line, 8);
    assert_int_equal(arr->first->next->col, 4);
    assert_int_equal(arr->first->key_line, 0);
    const struct rk_toml_value *ab = at(d, "node.a.b");
    assert_int_equal(ab->key_line, 9);
    assert_int_equal(ab->key_col, 3);
    assert_int_equal(at(d, "node.a")->key_col, 1);
    rk_toml_free(d);
}

struct err_case {
    const char *in, *want;
};

static void run_cases(const struct err_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        parse_err(c[i].in, c[i].want);
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void test_errors_duplicates_and_tables(void **state)
{
    static const struct err_case cases[] = {
        {"a = 1\na = 2\n", "2:1: duplicate key \"a\" (first set at line 1)"},
        {"[t]\nx = 1\n  x = 2\n", "3:3: duplicate key \"t.x\" (first set at line 2)"},
        {"a = 1\n\"a\" = 2\n", "2:1: duplicate key \"a\" (first set at line 1)"},
        {"a = {x = 1, x = 2}\n", "1:13: duplicate key \"a.x\" (first set at line 1)"},
        {"[a]\nx = 1\n[a]\n", "3:2: table [a] is defined twice (first at line 1)"},
        {"[a.b]\n[c]\n[ a . b ]\n", "3:7: table [a.b] is defined twice (first at line 1)"},
        {"a.b = 1\n[a]\n", "2:2: table [a] is already defined at line 1 by dotted keys"},
        {"[a]\nb.c = 1\n[a.b]\n", "3:4: table [a.b] is already defined at line 2 by dotted keys"},
        {"a = {x = 1}\n[a]\n", "2:2: table [a] is already defined at line 1 by an inline table"},
        {"a = {x = 1}\na.y = 2\n",
         "2:1: key \"a\" is an inline table (line 1) and cannot be extended"},
        {"a = {x = 1}\n[a.b]\n",
         "2:2: key \"a\" is an inline table (line 1) and cannot be extended"},
        {"[a.b]\n[a]\nb.c = 1\n",
         "3:1: table [a.b] is defined at line 1; a dotted key cannot add to it"},
        {"a = 1\na.b = 2\n", "2:1: key \"a\" is already an integer (line 1), not a table"},
        {"a = [1]\n[a]\n", "2:2: key \"a\" is already an array (line 1), not a table"},
        {"[a.b]\nc = 1\n[a]\nb = 2\n",
         "4:1: key \"a.b\" is already a table (line 1); it cannot be set to a value"},
        {"[[a]]\n", "1:1: arrays of tables ([[...]]) are not supported"},
        {"[a\n", "1:3: expected ] to close the table header, found end of line"},
        {"[]\n", "1:2: expected a key, found ']'"},
        {"[a] x\n", "1:5: expected end of line after the table header, found 'x'"},
    };
    RUN(cases);
}

static void test_errors_keys_and_values(void **state)
{
    static const struct err_case cases[] = {
        {"= 1\n", "1:1: expected a key, found '='"},
        {"a 1\n", "1:3: expected = after the key, found '1'"},
        {"a\n= 1\n", "1:2: expected = after the key, found end of line"},
        {"a.\n", "1:3: expected a key, found end of line"},
        {"\"\"\"k\"\"\" = 1\n", "1:1: a key cannot be a multi-line string"},
        {"\xC3\xA9 = 1\n", "1:1: expected a key, found U+00E9"},
        {"a =\nb = 1\n", "1:4: expected a value, found end of line"},
        {"a = ", "1:5: expected a value, found end of file"},
        {"a = # no value\n", "1:5: expected a value, found '#'"},
        {"a = 1 2\n", "1:7: expected end of line after the value, found '2'"},
        {"a = \"x\" y\n", "1:9: expected end of line after the value, found 'y'"},
        {"a = true false\n", "1:10: expected end of line after the value, found 'f'"},
        {"a = 1.2.3\n", "1:8: expected end of line after the value, found '.'"},
        {"level = info\n", "1:9: expected a value, found info (strings need quotes: \"info\")"},
        {"t = 5m\n", "1:5: expected a value, found 5m (strings need quotes: \"5m\")"},
        {"t = truely\n", "1:5: expected a value, found truely (strings need quotes: \"truely\")"},
        {"\"\xC3\xA9\" = x\n", "1:7: expected a value, found x (strings need quotes: \"x\")"},
        {"a\t=\t@\n", "1:5: expected a value, found '@'"},
        {"a = 1\r\nb = \r\n", "2:5: expected a value, found end of line"},
        {"d = 1979-05-27\n", "1:5: dates and times are not supported"},
        {"d = 07:32:00\n", "1:5: dates and times are not supported"},
    };
    RUN(cases);
    char deep[64 + 40];
    snprintf(deep, sizeof(deep), "%s",
             "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a = 1");
    parse_err(deep, "1:65: a key may have at most 32 dotted parts");
}

static void test_errors_strings(void **state)
{
    static const struct err_case cases[] = {
        {"a = \"x\\qy\"\n", "1:7: invalid escape \\q (valid: \\\" \\\\ \\b \\f \\n \\r \\t "
                            "\\uXXXX \\UXXXXXXXX)"},
        {"a = \"x\\ y\"\n", "1:7: invalid escape \\ followed by ' ' (valid: \\\" \\\\ \\b \\f "
                            "\\n \\r \\t \\uXXXX \\UXXXXXXXX)"},
        {"a = \"\\u12G4\"\n", "1:6: \\u needs 4 hex digits, as in \\u00E9"},
        {"a = \"\\U0001F6\"\n", "1:6: \\U needs 8 hex digits, as in \\U0001F600"},
        {"a = \"\\uD800\"\n", "1:6: \\uD800 is not a Unicode scalar value (surrogates and values "
                              "past 10FFFF are not allowed)"},
        {"a = \"\\U00110000\"\n", "1:6: \\U00110000 is not a Unicode scalar value (surrogates "
                                  "and values past 10FFFF are not allowed)"},
        {"a = \"abc\nb = 1\n", "1:5: unterminated string: no closing \" on its line"},
        {"a = \"abc", "1:5: unterminated string: no closing \" on its line"},
        {"a = 'abc\n", "1:5: unterminated string: no closing ' on its line"},
        {"x = 1\ns = \"\"\"\nabc\ndef", "2:5: unterminated multi-line string: no closing \"\"\""},
        {"s = '''abc''\n", "1:5: unterminated multi-line string: no closing '''"},
        {"a = \"\"\"x\"\"\"\"\"\"\n", "1:9: three or more \" in a row inside a multi-line "
                                      "string must be escaped or split"},
        {"a = \"x\x01\"\n", "1:7: control character U+0001 is not allowed in a string (write it "
                            "as an escape, e.g. \\n or \\u0007)"},
        {"a = 'x\x7f'\n", "1:7: control character U+007F is not allowed in a string (write it "
                          "as an escape, e.g. \\n or \\u0007)"},
        {"a = \"\"\"x\ry\"\"\"\n", "1:9: control character U+000D is not allowed in a string "
                                   "(write it as an escape, e.g. \\n or \\u0007)"},
        {"# fine\n# bell \x07\n", "2:8: control character U+0007 is not allowed in a comment"},
        {"a = \"\xC3\x28\"\n", "1:6: invalid UTF-8 (byte 0xC3) in a string"},
        {"a = \"\xED\xA0\x80\"\n", "1:6: invalid UTF-8 (byte 0xED) in a string"},
        {"a = \"\xC0\xAF\"\n", "1:6: invalid UTF-8 (byte 0xC0) in a string"},
        {"a = 1 # \xFF\n", "1:9: invalid UTF-8 (byte 0xFF) in a comment"},
        {"a = 1\rb = 2\n", "1:6: expected end of line after the value, found U+000D"},
    };
    RUN(cases);
    parse_err_n("a = \"x\0y\"\n", 10,
                "1:7: control character U+0000 is not allowed in a "
                "string (write it as an escape, e.g. \\n or \\u0007)");
}

static void test_errors_numbers(void **state)
{
    static const struct err_case cases[] = {
        {"a = 9223372036854775808\n", "1:5: integer 9223372036854775808 does not fit in 64 bits "
                                      "(-9223372036854775808..9223372036854775807)"},
        {"a = -9223372036854775809\n", "1:5: integer -9223372036854775809 does not fit in 64 "
                                       "bits (-9223372036854775808..9223372036854775807)"},
        {"a = 0x8000000000000000\n", "1:5: integer 0x8000000000000000 does not fit in 64 bits "
                                     "(-9223372036854775808..9223372036854775807)"},
        {"a = 99999999999999999999999999999999999999999999\n",
         "1:5: integer 9999999999999999999999999999999999999999... does not fit in 64 bits "
         "(-9223372036854775808..9223372036854775807)"},
        {"a = 1e400\n", "1:5: float 1e400 is out of range"},
        {"a = 01\n", "1:5: leading zeros are not allowed in a number"},
        {"a = -00.5\n", "1:6: leading zeros are not allowed in a number"},
        {"a = 1__0\n", "1:6: an underscore in a number must stand between two digits"},
        {"a = 1_\n", "1:6: an underscore in a number must stand between two digits"},
        {"a = 0x_1\n", "1:7: an underscore in a number must stand between two digits"},
        {"a = _1\n", "1:5: expected a value, found _1 (strings need quotes: \"_1\")"},
        {"a = 1.\n", "1:7: expected a digit after the decimal point"},
        {"a = .5\n", "1:5: expected a value, found '.'"},
        {"a = 1e\n", "1:7: expected a digit in the exponent"},
        {"a = 1e+\n", "1:8: expected a digit in the exponent"},
        {"a = 0x\n", "1:7: expected hex digits after 0x"},
        {"a = 0b2\n", "1:7: expected binary digits after 0b"},
        {"a = 0o8\n", "1:7: expected octal digits after 0o"},
        {"a = -0x1\n", "1:5: hex, octal and binary integers cannot have a sign"},
        {"a = +\n", "1:5: expected a digit after the sign"},
        {"a = 12abc\n", "1:5: expected a value, found 12abc (strings need quotes: \"12abc\")"},
    };
    RUN(cases);
}

static void test_errors_arrays_and_inline_tables(void **state)
{
    static const struct err_case cases[] = {
        {"a = [1, 2\n", "1:5: unterminated array: no closing ]"},
        {"a = [1,\n 2,\n", "1:5: unterminated array: no closing ]"},
        {"a = [1 2]\n", "1:8: expected , or ] after an array element, found '2'"},
        {"a = [,]\n", "1:6: expected a value, found ','"},
        {"a = [1,,]\n", "1:8: expected a value, found ','"},
        {"a = [1, # c \x01\n]\n", "1:13: control character U+0001 is not allowed in a comment"},
        {"a = {x = 1,}\n", "1:12: an inline table cannot end with a comma"},
        {"a = {x = 1\n}\n", "1:5: unterminated inline table: no closing } on its line"},
        {"a = {\nx = 1}\n", "1:5: unterminated inline table: no closing } on its line"},
        {"a = {x = 1 y = 2}\n", "1:12: expected , or } in an inline table, found 'y'"},
        {"a = {x}\n", "1:7: expected = after the key, found '}'"},
    };
    RUN(cases);
    /* Nesting: 64 levels parse, 65 are refused at the 65th bracket. */
    char buf[300];
    memset(buf, 0, sizeof(buf));
    strcpy(buf, "a = ");
    memset(buf + 4, '[', 64);
    strcat(buf, "1");
    memset(buf + strlen(buf), ']', 64);
    rk_toml_free(parse_ok(buf));
    strcpy(buf, "a = ");
    memset(buf + 4, '[', 65);
    buf[69] = '\0';
    parse_err(buf, "1:69: arrays and inline tables nested more than 64 deep");
    strcpy(buf, "a = ");
    for (int i = 0; i < 65; i++)
        strcat(buf, "{b=");
    parse_err(buf, "1:197: arrays and inline tables nested more than 64 deep");
}

static void test_parse_file(void **state)
{
    char dir[512], path[600], err[700];
    rk_toml_doc *d;
    assert_int_equal(tu_mkdtemp(dir, sizeof(dir), "toml"), 0);
    snprintf(path, sizeof(path), "%s/missing.toml", dir);
    assert_int_equal(rk_toml_parse_file(&d, path, err, sizeof(err)), -ENOENT);
    assert_null(d);
    char want[700];
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_int_equal(rk_toml_parse_file(&d, dir, err, sizeof(err)), -EISDIR);
    snprintf(path, sizeof(path), "%s/ok.toml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[a]\nb = \"c\"\nx = 1 2\n", f);
    fclose(f);
    assert_int_equal(rk_toml_parse_file(&d, path, err, sizeof(err)), RK_EMALFORMED);
    snprintf(want, sizeof(want), "%s:3:7: expected end of line after the value, found '2'", path);
    assert_string_equal(err, want);
    f = fopen(path, "w");
    fputs("[a]\nb = \"c\"\n", f);
    fclose(f);
    assert_int_equal(rk_toml_parse_file(&d, path, err, sizeof(err)), 0);
    want_str(d, "a.b", "c", 1);
    rk_toml_free(d);
    /* Past RK_TOML_MAX_FILE: refused before parsing. */
    f = fopen(path, "w");
    for (unsigned i = 0; i <= RK_TOML_MAX_FILE / 8; i++)
        fputs("# 45678\n", f);
    fclose(f);
    assert_int_equal(rk_toml_parse_file(&d, path, err, sizeof(err)), RK_ETOOLARGE);
    snprintf(want, sizeof(want), "%s: larger than 1 MiB; is this a config file?", path);
    assert_string_equal(err, want);
    assert_int_equal(tu_rmrf(dir), 0);
}

/* A small err buffer is cut, never overrun; errlen 0 is allowed. */
static void test_error_buffer_sizes(void **state)
{
    rk_toml_doc *d;
    char small[12];
    memset(small, 'X', sizeof(small));
    assert_int_equal(rk_toml_parse(&d, "t.toml", "a = ", 4, small, 8), RK_EMALFORMED);
    assert_string_equal(small, "t.toml:");
    assert_int_equal(small[9], 'X');
    assert_int_equal(rk_toml_parse(&d, "t.toml", "a = ", 4, NULL, 0), RK_EMALFORMED);
}

static void test_path_and_quote(void **state)
{
    rk_toml_doc *d = parse_ok("[a]\n\"b c\" = [1, [2, {\"d.e\" = 3}]]\n\"\" = 1\n");
    const struct rk_toml_value *arr = at(d, "a")->first;
    const struct rk_toml_value *deep = arr->first->next->first->next->first;
    char buf[64];
    assert_int_equal(rk_toml_path(deep, buf, sizeof(buf)), strlen("a.\"b c\"[1][1].\"d.e\""));
    assert_string_equal(buf, "a.\"b c\"[1][1].\"d.e\"");
    rk_toml_path(arr->next, buf, sizeof(buf));
    assert_string_equal(buf, "a.\"\"");
    assert_int_equal(rk_toml_path(deep, buf, 5), 19);
    assert_string_equal(buf, "a.\"b");
    rk_toml_path(rk_toml_root(d), buf, sizeof(buf));
    assert_string_equal(buf, "");
    rk_toml_free(d);

    assert_int_equal(rk_toml_quote(buf, sizeof(buf), "a\"b\\c\n\x01\x7f\xC3\xA9", 10), 25);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\n\\u0001\\u007F\xC3\xA9\"");
    rk_toml_quote(buf, sizeof(buf), "\xFF", 1);
    assert_string_equal(buf, "\"\\uFFFD\"");
    rk_toml_quote(buf, sizeof(buf), "x\0y", 3);
    assert_string_equal(buf, "\"x\\u0000y\"");
    assert_int_equal(rk_toml_quote(buf, 10, "abcdefghijkl", 12), 14);
    assert_string_equal(buf, "\"abcd...\"");
    assert_int_equal(rk_toml_quote(buf, 3, "abcdefghijkl", 12), 14);
    assert_string_equal(buf, "..");
    assert_int_equal(rk_toml_quote(NULL, 0, "abc", 3), 5);
    /* Exactly fitting is not cut. */
    assert_int_equal(rk_toml_quote(buf, 15, "abcdefghijkl", 12), 14);
    assert_string_equal(buf, "\"abcdefghijkl\"");
    assert_int_equal(rk_toml_quote(buf, 14, "abcdefghijkl", 12), 14);
    assert_string_equal(buf, "\"abcdefgh...\"");
    assert_string_equal(rk_toml_type_name(RK_TOML_INT), "integer");
    assert_string_equal(rk_toml_type_name(RK_TOML_BOOL), "boolean");
}

/* Regression (fuzz_toml): rk_toml_quote used to return the bytes it wrote,
 * so a caller could not tell a cut string (NULs quote to 6 bytes each)
 * from a whole one. It now returns the whole length, as snprintf does. */
static void test_quote_result_tells_a_cut_string(void **state)
{
    static char text[4096], out[1024];
    size_t n = (size_t)snprintf(text, sizeof(text), "k = \"");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "\\u0000");
    n += (size_t)snprintf(text + n, sizeof(text) - n, "\"");
    rk_toml_doc *d = parse_ok(text);
    const struct rk_toml_value *k = at(d, "k");
    assert_int_equal(k->len, 300);
    size_t q = rk_toml_quote(out, sizeof(out), k->str, k->len);
    assert_int_equal(q, 2 + 300 * 6);
    assert_true(q >= sizeof(out));
    assert_int_equal(strlen(out), 1 + 169 * 6 + 4); /* whole pieces only, then ..." */
    assert_string_equal(out + strlen(out) - 4, "...\"");
    rk_toml_free(d);
}

static double elapsed(struct timespec a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

/* 200k keys in one table and a 200k-element array on one line: a hash for
 * duplicates and a column cache keep both linear (a quadratic parse would
 * take minutes here). */
static void test_large_inputs_stay_linear(void **state)
{
    enum { N = 200000 };
    size_t cap = (size_t)N * 24 + 64, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    n += (size_t)snprintf(buf + n, cap - n, "[t]\n");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(buf + n, cap - n, "k%d = %d\n", i, i);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rk_toml_doc *d;
    char err[256];
    assert_int_equal(rk_toml_parse(&d, "big", buf, n, err, sizeof(err)), 0);
    assert_int_equal(at(d, "t")->count, N);
    want_int(d, "t.k199999", 199999);
    rk_toml_free(d);
    n = (size_t)snprintf(buf, cap, "a = [");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%d,", i);
    n += (size_t)snprintf(buf + n, cap - n, "x]");
    assert_int_equal(rk_toml_parse(&d, "big", buf, n, err, sizeof(err)), RK_EMALFORMED);
    char want[128];
    snprintf(want, sizeof(want),
             "big:1:%zu: expected a value, found x (strings need quotes: "
             "\"x\")",
             n - 1);
    assert_string_equal(err, want);
    assert_true(elapsed(t0) < 20.0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_and_keys),
        cmocka_unit_test(test_empty_and_blank_documents),
        cmocka_unit_test(test_basic_strings),
        cmocka_unit_test(test_literal_and_multiline_strings),
        cmocka_unit_test(test_numbers_and_booleans),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_errors_duplicates_and_tables),
        cmocka_unit_test(test_errors_keys_and_values),
        cmocka_unit_test(test_errors_strings),
        cmocka_unit_test(test_errors_numbers),
        cmocka_unit_test(test_errors_arrays_and_inline_tables),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_error_buffer_sizes),
        cmocka_unit_test(test_path_and_quote),
        cmocka_unit_test(test_quote_result_tells_a_cut_string),
        cmocka_unit_test(test_large_inputs_stay_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

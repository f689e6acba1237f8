/* Fuzz target: arbitrary bytes as an admin reply, through the admin-JSON
 * reader (client/ajson). It may not crash, leak or read past the input.
 * Both decoding modes accept the same texts; a parsed document must be a
 * consistent tree (each container's count matches its iteration, every
 * scalar has its text), one-line decoding must leave no control byte in a
 * string or name, and compacting the text must give a document that
 * parses again to a tree of the same shape. */
#include "fuzz.h"
#include "client/ajson.h"

#include <stdio.h>
#include <string.h>

/* A MEMBERS-like reply with every value type and escape kvctl meets. */
static const char seed_text[] =
    "{\"members\": [{\"id\": \"node-1\", \"state\": \"alive\", \"self\": true,\n"
    "  \"incarnation\": 1700000000000, \"rtt_us\": 0, \"last_heard_ms\": null},\n"
    " {\"id\": \"n\\u00e9\\ud83d\\ude00\\t2\", \"state\": \"suspect\", \"load\": -1.5e3}],\n"
    " \"refused\": [], \"digest\": \"18446744073709551615\", \"x\": {\"y\": [[], {}]}}";

uint8_t *rk_fuzz_seed(size_t *len)
{
    *len = sizeof(seed_text) - 1;
    uint8_t *b = malloc(*len);
    if (b)
        memcpy(b, seed_text, *len);
    return b;
}

static bool no_control(const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        if ((unsigned char)*s < 0x20)
            return false;
    return true;
}

/* Check v and below; returns the number of values in the subtree. The
 * parser bounds the depth, so the recursion is bounded too. */
static size_t check(const struct rk_ajson_val *v, bool one_line)
{
    enum rk_ajson_type t = rk_ajson_type(v);
    size_t n = 1, k = 0;
    uint64_t u;
    CHECK(t != RK_AJSON_NONE);
    if (t != RK_AJSON_ARRAY && t != RK_AJSON_OBJECT) {
        CHECK(rk_ajson_text(v) != NULL && rk_ajson_first(v) == NULL);
        if (t == RK_AJSON_NUMBER)
            (void)rk_ajson_u64(v, &u);
        CHECK(!one_line || t != RK_AJSON_STRING || no_control(rk_ajson_str(v, NULL)));
        return 1;
    }
    CHECK((rk_ajson_text(v) == NULL) == (rk_ajson_count(v) > 0));
    for (const struct rk_ajson_val *c = rk_ajson_first(v); c != NULL; c = rk_ajson_next(c), k++) {
        CHECK((rk_ajson_key(c, NULL) != NULL) == (t == RK_AJSON_OBJECT));
        CHECK(!one_line || no_control(rk_ajson_key(c, NULL)));
        if (t == RK_AJSON_ARRAY)
            CHECK(rk_ajson_index(v, k) == c);
        n += check(c, one_line);
    }
    CHECK(k == rk_ajson_count(v));
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rk_ajson *exact, *line, *again;
    int rv = rk_ajson_parse(&exact, (const char *)data, size, 0);
    CHECK(rv == rk_ajson_parse(&line, (const char *)data, size, RK_AJSON_ONE_LINE));
    if (rv != 0)
        return 0;
    size_t n = check(rk_ajson_root(exact), false);
    CHECK(check(rk_ajson_root(line), true) == n);
    struct rk_jbuf c = {0};
    rk_ajson_compact((const char *)data, size, &c);
    if (!c.oom) {
        CHECK(rk_ajson_parse(&again, c.p, c.len, 0) == 0);
        CHECK(check(rk_ajson_root(again), false) == n);
        rk_ajson_free(again);
    }
    free(c.p);
    rk_ajson_free(exact);
    rk_ajson_free(line);
    return 0;
}

/* The seed; scalars alone; an error object; deep nesting. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    static const char *const c[][2] = {
        {"members-reply", seed_text},
        {"scalar", "18446744073709551615"},
        {"error", "{\"error\":\"not ready: holdings of node-2 not heard yet\",\"retry\":true}"},
        {"nested", "[[[[[{\"a\":[1,2,{\"b\":null}]}]]]],\"\\\"q\\\\\",-0.0,false]"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        put(c[i][0], (const uint8_t *)c[i][1], strlen(c[i][1]));
}

/* Per-address token buckets (util/ratelimit.h): off by default, a burst
 * then the rate, the wait until the next token, addresses apart (ports
 * ignored), a lowered burst, a flood of new addresses that can neither
 * evict a limited client nor grow the table, and the top talkers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/ratelimit.h"

#include <arpa/inet.h>
#include <string.h>

#define MS 1000000ull

static struct rk_rl_addr v4(const char *ip, uint16_t port)
{
    nng_sockaddr sa = {.s_in = {.sa_family = NNG_AF_INET, .sa_port = htons(port)}};
    inet_pton(AF_INET, ip, &sa.s_in.sa_addr);
    struct rk_rl_addr a;
    rk_rl_addr_from_nng(&sa, &a);
    return a;
}

/* Requests allowed of n sent by a at now. */
static unsigned allowed(struct rk_ratelimit *rl, const struct rk_rl_addr *a, unsigned n,
                        uint64_t now)
{
    unsigned ok = 0;
    for (unsigned i = 0; i < n; i++)
        ok += rk_ratelimit_take(rl, a, now) == 0;
    return ok;
}

static void test_off_until_set_then_burst_then_rate(void **state)
{
    (void)state;
    struct rk_ratelimit *rl = rk_ratelimit_new();
    assert_non_null(rl);
    struct rk_rl_addr a = v4("10.0.0.1", 1000);
    uint64_t t = 5000 * MS;
    assert_int_equal(allowed(rl, &a, 1000, t), 1000); /* off */
    rk_ratelimit_set(rl, 10, 5);
    assert_int_equal(allowed(rl, &a, 5, t), 5);
    assert_int_equal(rk_ratelimit_take(rl, &a, t), 100); /* one token per 100 ms */
    assert_int_equal(rk_ratelimit_take(rl, &a, t + 40 * MS), 60);
    assert_int_equal(rk_ratelimit_take(rl, &a, t + 100 * MS), 0);
    /* A second later: ten more tokens, capped at the burst of 5. */
    assert_int_equal(allowed(rl, &a, 20, t + 1100 * MS), 5);
    struct rk_rl_totals tot;
    rk_ratelimit_totals(rl, &tot);
    assert_int_equal(tot.rate, 10);
    assert_int_equal(tot.burst, 5);
    assert_int_equal(tot.limited, 2 + 15);
    assert_int_equal(tot.addresses, 1);
    rk_ratelimit_free(rl);
}

static void test_the_wait_rounds_up_and_burst_zero_is_one_second(void **state)
{
    (void)state;
    struct rk_ratelimit *rl = rk_ratelimit_new();
    rk_ratelimit_set(rl, 3, 0);
    struct rk_rl_addr a = v4("10.0.0.1", 1);
    assert_int_equal(allowed(rl, &a, 10, MS), 3);
    assert_int_equal(rk_ratelimit_take(rl, &a, MS), 334); /* 333.3 ms, rounded up */
    rk_ratelimit_set(rl, 1000000, 0);
    assert_int_equal(allowed(rl, &a, 10, 2 * MS), 10);
    rk_ratelimit_free(rl);
}

static void test_addresses_apart_ports_alike(void **state)
{
    (void)state;
    struct rk_ratelimit *rl = rk_ratelimit_new();
    rk_ratelimit_set(rl, 100, 10);
    struct rk_rl_addr a1 = v4("127.0.0.1", 40000), a2 = v4("127.0.0.1", 40001);
    struct rk_rl_addr b = v4("127.0.0.2", 40000);
    assert_memory_equal(&a1, &a2, sizeof(a1));
    assert_int_equal(allowed(rl, &a1, 6, MS), 6);
    assert_int_equal(allowed(rl, &a2, 6, MS), 4); /* the same client */
    assert_int_equal(allowed(rl, &b, 10, MS), 10);
    char text[64];
    rk_rl_addr_text(&b, text, sizeof(text));
    assert_string_equal(text, "127.0.0.2");
    nng_sockaddr six = {.s_in6 = {.sa_family = NNG_AF_INET6}};
    six.s_in6.sa_addr[15] = 1;
    struct rk_rl_addr s;
    rk_rl_addr_from_nng(&six, &s);
    rk_rl_addr_text(&s, text, sizeof(text));
    assert_string_equal(text, "::1");
    nng_sockaddr ipc = {.s_ipc = {.sa_family = NNG_AF_IPC}};
    rk_rl_addr_from_nng(&ipc, &s);
    rk_rl_addr_text(&s, text, sizeof(text));
    assert_string_equal(text, "local");
    rk_ratelimit_free(rl);
}

static void test_a_lowered_burst_cuts_the_tokens(void **state)
{
    (void)state;
    struct rk_ratelimit *rl = rk_ratelimit_new();
    rk_ratelimit_set(rl, 1, 100);
    struct rk_rl_addr a = v4("10.1.1.1", 1);
    assert_int_equal(allowed(rl, &a, 10, MS), 10); /* 90 left */
    rk_ratelimit_set(rl, 1, 2);
    assert_int_equal(allowed(rl, &a, 10, MS), 2);
    rk_ratelimit_free(rl);
}

/* More new addresses than the table holds, while a limited client keeps
 * sending: it keeps its bucket (still limited), the newcomers beyond the
 * table share the overflow buckets, and the top lists the client first. */
static void test_a_flood_of_addresses_evicts_no_limited_client(void **state)
{
    (void)state;
    struct rk_ratelimit *rl = rk_ratelimit_new();
    rk_ratelimit_set(rl, 10, 10);
    struct rk_rl_addr hot = v4("192.168.1.1", 1);
    assert_int_equal(allowed(rl, &hot, 50, MS), 10);
    unsigned extra = 0, n = 3 * RK_RL_STRIPES * RK_RL_WAYS;
    for (unsigned i = 0; i < n; i++) {
        struct rk_rl_addr a = v4("10.0.0.0", 1);
        a.b[13] = (uint8_t)(i >> 16), a.b[14] = (uint8_t)(i >> 8), a.b[15] = (uint8_t)i;
        extra += rk_ratelimit_take(rl, &a, MS) != 0;
    }
    /* Newcomers past the table share 64 overflow buckets of 10 tokens. */
    assert_true(extra > 0);
    assert_true(extra <= n - RK_RL_STRIPES * RK_RL_WAYS / 2);
    struct rk_rl_totals tot;
    rk_ratelimit_totals(rl, &tot);
    assert_int_equal(tot.addresses, RK_RL_STRIPES * RK_RL_WAYS);
    assert_int_not_equal(rk_ratelimit_take(rl, &hot, MS), 0); /* still limited */

    struct rk_rl_top top[4];
    size_t k = rk_ratelimit_top(rl, top, 4);
    assert_int_equal(k, 4);
    bool hot_seen = false, shared_seen = false;
    for (size_t i = 0; i < k; i++) {
        hot_seen |= memcmp(&top[i].addr, &hot, sizeof(hot)) == 0 && !top[i].shared;
        shared_seen |= top[i].shared != 0;
        if (i)
            assert_true(top[i - 1].limited >= top[i].limited);
    }
    assert_true(shared_seen); /* the overflow refused the most, together */
    assert_true(hot_seen);
    /* Two seconds on, every bucket is full again: new addresses get their
     * own once more. */
    struct rk_rl_addr late = v4("172.16.0.1", 1);
    assert_int_equal(allowed(rl, &late, 10, 3000 * MS), 10);
    assert_int_equal(rk_ratelimit_take(rl, &late, 3000 * MS), 100);
    rk_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_until_set_then_burst_then_rate),
        cmocka_unit_test(test_the_wait_rounds_up_and_burst_zero_is_one_second),
        cmocka_unit_test(test_addresses_apart_ports_alike),
        cmocka_unit_test(test_a_lowered_burst_cuts_the_tokens),
        cmocka_unit_test(test_a_flood_of_addresses_evicts_no_limited_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

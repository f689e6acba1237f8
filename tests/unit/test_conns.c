/* Which addresses are this host's (util/conns.h): the protected mode's
 * test of a connection's remote address, and of a listen URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/conns.h"

#include <arpa/inet.h>
#include <string.h>

static nng_sockaddr v4(const char *ip)
{
    nng_sockaddr sa = {.s_in = {.sa_family = NNG_AF_INET}};
    assert_int_equal(inet_pton(AF_INET, ip, &sa.s_in.sa_addr), 1);
    return sa;
}

static nng_sockaddr v6(const char *ip)
{
    nng_sockaddr sa = {.s_in6 = {.sa_family = NNG_AF_INET6}};
    assert_int_equal(inet_pton(AF_INET6, ip, sa.s_in6.sa_addr), 1);
    return sa;
}

static void test_remote_addresses(void **state)
{
    (void)state;
    nng_sockaddr sa = v4("127.0.0.1");
    assert_true(rk_conns_is_local(&sa));
    sa = v4("127.255.0.9");
    assert_true(rk_conns_is_local(&sa));
    sa = v4("10.0.0.1");
    assert_false(rk_conns_is_local(&sa));
    sa = v4("128.0.0.1");
    assert_false(rk_conns_is_local(&sa));
    sa = v6("::1");
    assert_true(rk_conns_is_local(&sa));
    sa = v6("::ffff:127.0.0.5");
    assert_true(rk_conns_is_local(&sa));
    sa = v6("::ffff:192.0.2.2");
    assert_false(rk_conns_is_local(&sa));
    sa = v6("fd00::2");
    assert_false(rk_conns_is_local(&sa));
    nng_sockaddr ipc = {.s_ipc = {.sa_family = NNG_AF_IPC}};
    assert_true(rk_conns_is_local(&ipc));
    nng_sockaddr none = {.s_family = NNG_AF_UNSPEC};
    assert_false(rk_conns_is_local(&none)); /* unknown: not trusted */
}

static void test_listen_urls(void **state)
{
    (void)state;
    assert_true(rk_conns_url_is_local("tcp://127.0.0.1:7400"));
    assert_true(rk_conns_url_is_local("tcp://127.1.2.3:7400"));
    assert_true(rk_conns_url_is_local("tcp://localhost:7400"));
    assert_true(rk_conns_url_is_local("tcp://[::1]:7400"));
    assert_true(rk_conns_url_is_local("ipc:///tmp/x.sock"));
    assert_true(rk_conns_url_is_local("inproc://x"));
    assert_false(rk_conns_url_is_local("tcp://0.0.0.0:7400"));
    assert_false(rk_conns_url_is_local("tcp://:7400"));
    assert_false(rk_conns_url_is_local("tcp://*:7400"));
    assert_false(rk_conns_url_is_local("tcp://[::]:7400"));
    assert_false(rk_conns_url_is_local("tcp://192.0.2.2:7400"));
    assert_false(rk_conns_url_is_local("tcp://db1.example:7400"));
    assert_false(rk_conns_url_is_local("tcp4://10.0.0.1:7400"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote_addresses),
        cmocka_unit_test(test_listen_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

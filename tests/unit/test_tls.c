/* util/tls.h: the URL mapping, the checks of a node's certificate files
 * (fixtures/tls, made once with openssl), and a mutual-TLS exchange over
 * loopback with configurations built from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/tls.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <string.h>

#define F(name) RK_FIXTURES_DIR "/tls/" name

static void url_is(const char *in, bool tls, const char *want)
{
    char out[64];
    assert_int_equal(rk_tls_url(in, tls, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_urls(void **state)
{
    (void)state;
    url_is("tcp://10.0.0.1:7400", true, "tls+tcp://10.0.0.1:7400");
    url_is("tcp4://10.0.0.1:7400", true, "tls+tcp4://10.0.0.1:7400");
    url_is("tcp6://[::1]:7400", true, "tls+tcp6://[::1]:7400");
    url_is("tls+tcp://10.0.0.1:7400", true, "tls+tcp://10.0.0.1:7400");
    url_is("tls+tcp://10.0.0.1:7400", false, "tcp://10.0.0.1:7400");
    url_is("tcp://10.0.0.1:7400", false, "tcp://10.0.0.1:7400");
    url_is("ipc:///tmp/x", true, "ipc:///tmp/x"); /* not TCP: left as it is */
    url_is("tcpx://h:1", true, "tcpx://h:1");
    assert_true(rk_tls_url_is_tls("tls+tcp://h:1"));
    assert_false(rk_tls_url_is_tls("tcp://h:1"));
    char small[12] = "junk";
    assert_int_equal(rk_tls_url("tcp://h:7400", true, small, sizeof small), -1);
    assert_string_equal(small, "");
}

/* rk_tls_check_files fails with a line that contains want. */
static void refused(const char *cert, const char *key, const char *ca, const char *want)
{
    char err[600];
    assert_int_equal(rk_tls_check_files(cert, key, ca, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    assert_null(strchr(err, '\n'));
}

static void test_file_checks(void **state)
{
    (void)state;
    char err[600];
    assert_int_equal(rk_tls_check_files(F("node.crt"), F("node.key"), F("ca.crt"), err, sizeof err),
                     0);
    refused(F("none.crt"), F("node.key"), F("ca.crt"),
            F("none.crt") ": cannot open: No such file or directory");
    refused(F("node.crt"), F("node.key"), RK_FIXTURES_DIR "/tls",
            RK_FIXTURES_DIR "/tls: cannot read: Is a directory");
    refused(F("node.key"), F("node.key"), F("ca.crt"), F("node.key") ": not a PEM certificate");
    refused(F("node.crt"), F("node.crt"), F("ca.crt"), F("node.crt") ": not a PEM private key");
    refused(F("node.crt"), F("other.key"), F("ca.crt"),
            F("other.key") ": the key does not match the certificate in " F("node.crt"));
    refused(F("expired.crt"), F("expired.key"), F("ca.crt"),
            F("expired.crt") ": certificate expired on 2021-01-01 00:00:00 UTC");
    refused(F("future.crt"), F("future.key"), F("ca.crt"),
            F("future.crt") ": certificate is not valid yet: from 2100-01-01");
    refused(F("alien.crt"), F("alien.key"), F("ca.crt"),
            F("alien.crt") ": certificate does not verify against " F("ca.crt"));
}

/* A listener requiring client certificates and a dialer, each built with
 * rk_tls_new, exchange one request over tls+tcp on loopback; a dialer
 * with the CA but no certificate of its own gets no connection. */
static void test_mutual_tls_exchange(void **state)
{
    (void)state;
    char err[600], url[64];
    struct rk_tls *srv, *cli, *anon;
    assert_int_equal(rk_tls_new(&srv, F("node.crt"), F("node.key"), F("ca.crt"), err, sizeof err),
                     0);
    assert_int_equal(rk_tls_new(&cli, F("node.crt"), F("node.key"), F("ca.crt"), err, sizeof err),
                     0);
    assert_int_equal(rk_tls_new(&anon, NULL, NULL, F("ca.crt"), err, sizeof err), 0);
    nng_socket rep, req, req2;
    nng_listener l;
    nng_dialer d, d2;
    int port;
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_listener_create(&l, rep, "tls+tcp://127.0.0.1:0"), 0);
    assert_int_equal(rk_tls_listener(l, srv, true), 0);
    assert_int_equal(nng_listener_start(l, 0), 0);
    assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);

    assert_int_equal(nng_req0_open(&req2), 0);
    assert_int_equal(nng_dialer_create(&d2, req2, url), 0);
    assert_int_equal(rk_tls_dialer(d2, anon), 0);
    assert_int_not_equal(nng_dialer_start(d2, 0), 0); /* no client certificate: refused */

    assert_int_equal(nng_req0_open(&req), 0);
    assert_int_equal(nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 5000), 0);
    assert_int_equal(nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 5000), 0);
    assert_int_equal(nng_dialer_create(&d, req, url), 0);
    assert_int_equal(rk_tls_dialer(d, cli), 0);
    assert_int_equal(nng_dialer_start(d, 0), 0);
    assert_int_equal(nng_send(req, "ping", 5, 0), 0);
    char buf[8];
    size_t n = sizeof buf;
    assert_int_equal(nng_recv(rep, buf, &n, 0), 0);
    assert_string_equal(buf, "ping");
    assert_int_equal(nng_send(rep, "pong", 5, 0), 0);
    n = sizeof buf;
    assert_int_equal(nng_recv(req, buf, &n, 0), 0);
    assert_string_equal(buf, "pong");
    nng_close(req);
    nng_close(req2);
    nng_close(rep);
    rk_tls_free(srv);
    rk_tls_free(cli);
    rk_tls_free(anon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_file_checks),
        cmocka_unit_test(test_mutual_tls_exchange),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

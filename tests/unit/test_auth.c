/* The cluster secret (util/auth.h, util/replay.h): the secret file's
 * checks, per-purpose keys, trailers that fail on any changed byte, on
 * another key and outside the window, replays refused within the window
 * and forgotten only after it, and a replay set that refuses rather than
 * grows past its cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/auth.h"
#include "util/clock.h"
#include "util/replay.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WINDOW_MS 10000u

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rk-auth-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *secret_file(const char *name, size_t len, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)(i * 7 + 1);
        assert_int_equal(write(fd, &b, 1), 1);
    }
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void refused_with(const char *path, const char *want)
{
    uint8_t buf[RK_AUTH_SECRET_MAX];
    size_t len = 0;
    char err[300] = "";
    assert_int_equal(rk_auth_secret_read(path, buf, &len, err, sizeof(err)), -1);
    if (!strstr(err, want) || strncmp(err, "security.secret_file ", 21) != 0)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_the_secret_file_must_be_long_private_and_regular(void **state)
{
    (void)state;
    uint8_t buf[RK_AUTH_SECRET_MAX];
    size_t len = 0;
    char err[300];
    const char *ok = secret_file("ok", 64, 0600);
    assert_int_equal(rk_auth_secret_read(ok, buf, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 64);
    assert_int_equal(buf[63], (uint8_t)(63 * 7 + 1));
    assert_int_equal(rk_auth_secret_read(secret_file("ro", 32, 0400), buf, &len, err, sizeof(err)),
                     0);
    refused_with(secret_file("short", 31, 0600), "holds 31 bytes, fewer than 32");
    refused_with(secret_file("huge", RK_AUTH_SECRET_MAX + 1, 0600), "more than 4096");
    refused_with(secret_file("group", 64, 0640), "(mode 0640); chmod 600 it");
    refused_with(secret_file("world", 64, 0604), "(mode 0604)");
    char link[128];
    snprintf(link, sizeof(link), "%s/link", dir);
    assert_int_equal(symlink(ok, link), 0);
    refused_with(link, "symbolic link");
    refused_with(dir, "not a regular file");
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/none", dir);
    refused_with(missing, "No such file or directory");
}

static void keys(struct rk_auth_key *rpc, struct rk_auth_key *gossip, uint8_t fill)
{
    uint8_t secret[48];
    memset(secret, fill, sizeof(secret));
    rk_auth_derive(secret, sizeof(secret), "rpc", rpc);
    rk_auth_derive(secret, sizeof(secret), "gossip", gossip);
}

static void test_a_sealed_message_passes_and_any_change_fails(void **state)
{
    (void)state;
    struct rk_auth_key rpc, gossip, other, other_g;
    keys(&rpc, &gossip, 1);
    keys(&other, &other_g, 2);
    assert_memory_not_equal(rpc.k, gossip.k, sizeof(rpc.k));
    uint8_t msg[100 + RK_AUTH_TRAILER];
    for (size_t i = 0; i < 100; i++)
        msg[i] = (uint8_t)i;
    uint64_t now = 1800000000000ull;
    rk_auth_seal(&rpc, msg, sizeof(msg), now);
    assert_int_equal(rk_auth_check_mac(&rpc, msg, sizeof(msg), now, WINDOW_MS), RK_AUTH_OK);
    /* Another purpose's key, another secret's: refused. */
    assert_int_equal(rk_auth_check_mac(&gossip, msg, sizeof(msg), now, WINDOW_MS), RK_AUTH_BAD_MAC);
    assert_int_equal(rk_auth_check_mac(&other, msg, sizeof(msg), now, WINDOW_MS), RK_AUTH_BAD_MAC);
    /* Every byte counts: the body, the time, the nonce and the MAC. */
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] ^= 0x20;
        assert_int_equal(rk_auth_check_mac(&rpc, msg, sizeof(msg), now, WINDOW_MS),
                         RK_AUTH_BAD_MAC);
        msg[i] ^= 0x20;
    }
    /* Within the window either way, and not a ms beyond. */
    assert_int_equal(rk_auth_check_mac(&rpc, msg, sizeof(msg), now + WINDOW_MS, WINDOW_MS),
                     RK_AUTH_OK);
    assert_int_equal(rk_auth_check_mac(&rpc, msg, sizeof(msg), now - WINDOW_MS, WINDOW_MS),
                     RK_AUTH_OK);
    assert_int_equal(rk_auth_check_mac(&rpc, msg, sizeof(msg), now + WINDOW_MS + 1, WINDOW_MS),
                     RK_AUTH_STALE);
    assert_int_equal(rk_auth_check_mac(&rpc, msg, sizeof(msg), now - WINDOW_MS - 1, WINDOW_MS),
                     RK_AUTH_STALE);
    assert_int_equal(rk_auth_check_mac(&rpc, msg, RK_AUTH_TRAILER - 1, now, WINDOW_MS),
                     RK_AUTH_BAD_MAC);
    /* The same bytes sealed twice differ (a fresh nonce): no false replay. */
    uint8_t again[sizeof(msg)];
    memcpy(again, msg, sizeof(msg));
    rk_auth_seal(&rpc, again, sizeof(again), now);
    assert_memory_not_equal(again + sizeof(again) - RK_AUTH_MAC, msg + sizeof(msg) - RK_AUTH_MAC,
                            RK_AUTH_MAC);
}

static void test_a_request_is_taken_once(void **state)
{
    (void)state;
    struct rk_auth a;
    const char *path = secret_file("node", 64, 0600);
    char err[300];
    assert_int_equal(rk_auth_init(&a, path, WINDOW_MS, err, sizeof(err)), 0);
    assert_true(a.on);
    uint8_t msg[20 + RK_AUTH_TRAILER] = {0};
    rk_auth_seal(&a.rpc, msg, sizeof(msg), rk_clock_wall_ms());
    assert_int_equal(rk_auth_check(&a, &a.rpc, msg, sizeof(msg), true), RK_AUTH_OK);
    assert_int_equal(rk_auth_check(&a, &a.rpc, msg, sizeof(msg), true), RK_AUTH_REPLAY);
    /* A reply is checked without the set: taking it twice is the caller's
     * business (it matches replies to its requests). */
    assert_int_equal(rk_auth_check(&a, &a.rpc, msg, sizeof(msg), false), RK_AUTH_OK);
    rk_auth_refused(&a, RK_AUTH_PEER, RK_AUTH_REPLAY, "127.0.0.9");
    rk_auth_refused(&a, RK_AUTH_PEER, RK_AUTH_REPLAY, "127.0.0.9");
    assert_int_equal(atomic_load(&a.refused[RK_AUTH_PEER][RK_AUTH_REPLAY]), 2);
    assert_string_equal(rk_auth_reason_name(RK_AUTH_BAD_MAC), "bad_mac");
    assert_string_equal(rk_auth_channel_name(RK_AUTH_GOSSIP), "gossip");
    rk_auth_fini(&a);
    /* No file: off, nothing to free. */
    assert_int_equal(rk_auth_init(&a, "", WINDOW_MS, err, sizeof(err)), 0);
    assert_false(a.on);
    rk_auth_fini(&a);
}

static void mac_of(uint64_t k, uint8_t mac[RK_AUTH_MAC])
{
    memset(mac, 0, RK_AUTH_MAC);
    memcpy(mac, &k, sizeof(k));
}

static void test_the_replay_set_remembers_for_the_window_then_forgets(void **state)
{
    (void)state;
    const uint64_t w = 1000, t0 = 1800000000000ull;
    struct rk_replay *r = rk_replay_new(w);
    assert_non_null(r);
    uint8_t mac[RK_AUTH_MAC];
    for (uint64_t i = 1; i <= 1000; i++) {
        mac_of(i * 0x9E3779B97F4A7C15ull, mac);
        assert_int_equal(rk_replay_take(r, mac, t0), RK_REPLAY_NEW);
    }
    assert_int_equal(rk_replay_size(r, t0), 1000);
    mac_of(5 * 0x9E3779B97F4A7C15ull, mac);
    /* Remembered for at least 2W: a message's time may be W old when taken
     * and W ahead of the clock when replayed. */
    assert_int_equal(rk_replay_take(r, mac, t0 + 2 * w - 1), RK_REPLAY_SEEN);
    assert_int_equal(rk_replay_take(r, mac, t0 + 2 * w + 1), RK_REPLAY_SEEN);
    /* Forgotten by 4W: memory follows the rate, not the uptime. */
    assert_int_equal(rk_replay_take(r, mac, t0 + 4 * w + 1), RK_REPLAY_NEW);
    assert_int_equal(rk_replay_size(r, t0 + 4 * w + 1), 1);
    rk_replay_free(r);
}

static void test_a_full_stripe_refuses_instead_of_growing(void **state)
{
    (void)state;
    struct rk_replay *r = rk_replay_new(1000);
    uint8_t mac[RK_AUTH_MAC];
    /* Same top six bits: one stripe. */
    size_t n = 0;
    enum rk_replay_result res = RK_REPLAY_NEW;
    for (uint64_t i = 1; res == RK_REPLAY_NEW; i++, n++) {
        mac_of(i * 2, mac);
        res = rk_replay_take(r, mac, 1800000000000ull);
    }
    assert_int_equal(res, RK_REPLAY_FULL);
    assert_int_equal(n - 1, RK_REPLAY_STRIPE_MAX);
    assert_int_equal(rk_replay_size(r, 1800000000000ull), RK_REPLAY_STRIPE_MAX);
    rk_replay_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_secret_file_must_be_long_private_and_regular),
        cmocka_unit_test(test_a_sealed_message_passes_and_any_change_fails),
        cmocka_unit_test(test_a_request_is_taken_once),
        cmocka_unit_test(test_the_replay_set_remembers_for_the_window_then_forgets),
        cmocka_unit_test(test_a_full_stripe_refuses_instead_of_growing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

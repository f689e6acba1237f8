/* The logger: one line per call, whatever the message holds. Strings that
 * came from peers and clients (node ids, keys, addresses) are logged as
 * they are, so the logger itself must keep them from breaking or forging a
 * line. */
#include "util/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char got[2048];

static void sink(enum rk_log_level lvl, const char *line, void *arg)
{
    (void)lvl, (void)arg;
    snprintf(got, sizeof(got), "%s", line);
}

static const char *logged(const char *fmt, const char *s)
{
    got[0] = '\0';
    rk_log_set_sink(sink, NULL);
    rk_warn("gossip", fmt, s);
    rk_log_set_sink(NULL, NULL);
    return got;
}

static void test_control_bytes_are_escaped(void **state)
{
    (void)state;
    assert_string_equal(logged("member %s joined", "evil\nerror ringkvd: FORGED"),
                        "warn gossip: member evil\\x0aerror ringkvd: FORGED joined");
    assert_string_equal(logged("key %s", "\x1b[2J\r\t\x7f"),
                        "warn gossip: key \\x1b[2J\\x0d\\x09\\x7f");
    /* Bytes above ASCII too: a raw C1 control (0x9b is CSI on some terminals). */
    assert_string_equal(logged("%s", "\x9b"
                                     "1m\xc3\xa9"),
                        "warn gossip: \\x9b1m\\xc3\\xa9");
    /* A backslash is doubled, so "\x0a" typed by a peer is not a newline. */
    assert_string_equal(logged("%s", "a\\x0ab"), "warn gossip: a\\\\x0ab");
    assert_string_equal(logged("plain %s", "tcp://127.0.0.1:7400 node-1"),
                        "warn gossip: plain tcp://127.0.0.1:7400 node-1");
}

static void test_long_lines_are_cut_whole(void **state)
{
    (void)state;
    char big[3000];
    memset(big, '\n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *line = logged("%s", big);
    size_t n = strlen(line);
    assert_true(n < 1024);
    assert_null(strchr(line, '\n'));
    /* Cut at a whole escape: the line ends with "\x0a", never a part. */
    assert_int_equal(strncmp(line + n - 4, "\\x0a", 4), 0);
    assert_int_equal((n - strlen("warn gossip: ")) % 4, 0);
}

static const char *render(enum rk_log_level lvl, const char *msg, enum rk_log_format f,
                          bool journal)
{
    /* 2026-12-07T15:04:05.123Z */
    rk_log_render(got, sizeof(got), lvl, "gossip", msg, strlen(msg), f, journal,
                  UINT64_C(1796655845123));
    return got;
}

static void test_text_lines_start_with_a_utc_timestamp(void **state)
{
    (void)state;
    assert_string_equal(render(RK_LOG_WARN, "peer n2 down", RK_LOG_TEXT, false),
                        "2026-12-07T15:04:05.123Z warn gossip: peer n2 down");
    /* Milliseconds keep their leading zeros. */
    rk_log_render(got, sizeof(got), RK_LOG_INFO, "server", "x", 1, RK_LOG_TEXT, false,
                  UINT64_C(1796655845007));
    assert_string_equal(got, "2026-12-07T15:04:05.007Z info server: x");
}

static void test_journal_lines_carry_the_priority_and_no_timestamp(void **state)
{
    (void)state;
    assert_string_equal(render(RK_LOG_DEBUG, "m", RK_LOG_TEXT, true), "<7>debug gossip: m");
    assert_string_equal(render(RK_LOG_INFO, "m", RK_LOG_TEXT, true), "<6>info gossip: m");
    assert_string_equal(render(RK_LOG_WARN, "m", RK_LOG_TEXT, true), "<4>warn gossip: m");
    assert_string_equal(render(RK_LOG_ERROR, "m", RK_LOG_TEXT, true), "<3>error gossip: m");
    assert_string_equal(render(RK_LOG_ERROR, "m", RK_LOG_JSON, true),
                        "<3>{\"ts\":\"2026-12-07T15:04:05.123Z\",\"level\":\"error\","
                        "\"component\":\"gossip\",\"msg\":\"m\"}");
}

static void test_json_lines_escape_the_message(void **state)
{
    (void)state;
    /* A quote, a backslash and a newline stay inside the string: the newline
     * as the text format's \x0a, the backslashes doubled for JSON. */
    assert_string_equal(render(RK_LOG_INFO, "key \"a\\b\"\n}", RK_LOG_JSON, false),
                        "{\"ts\":\"2026-12-07T15:04:05.123Z\",\"level\":\"info\","
                        "\"component\":\"gossip\",\"msg\":\"key \\\"a\\\\\\\\b\\\"\\\\x0a}\"}");
}

static void test_long_json_lines_stay_closed(void **state)
{
    (void)state;
    char big[3000], line[600];
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    size_t n = rk_log_render(line, sizeof(line), RK_LOG_INFO, "gossip", big, strlen(big),
                             RK_LOG_JSON, false, 0);
    assert_true(n < sizeof(line));
    assert_int_equal(strlen(line), n);
    assert_string_equal(line + n - 2, "\"}");
    /* Whole pairs only: the body before the closing quote is \" repeated. */
    const char *body = strstr(line, "\"msg\":\"") + 7;
    assert_int_equal((size_t)(line + n - 2 - body) % 2, 0);
}

static void test_journal_stream_must_name_the_fd(void **state)
{
    (void)state;
    char path[] = "/tmp/rk_log_XXXXXX", env[64];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    assert_true(rk_log_is_journal(env, fd));
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    assert_false(rk_log_is_journal(env, fd));
    assert_false(rk_log_is_journal(NULL, fd));
    assert_false(rk_log_is_journal("junk", fd));
    close(fd);
    unlink(path);
}

/* Once a minute per source, with the count not logged; a new source takes
 * the slot logged longest ago. */
static void test_due_once_a_minute_per_source(void **state)
{
    (void)state;
    struct rk_log_slot slots[2] = {0};
    uint64_t skipped = 99, t = 1000000;
    assert_true(rk_log_due_from(slots, 2, "a", t, &skipped));
    assert_int_equal(skipped, 0);
    assert_false(rk_log_due_from(slots, 2, "a", t + 1, &skipped));
    assert_false(rk_log_due_from(slots, 2, "a", t + 2, &skipped));
    assert_true(rk_log_due_from(slots, 2, "b", t + 3, &skipped)); /* its own slot */
    assert_true(rk_log_due_from(slots, 2, "a", t + RK_LOG_EVERY_MS, &skipped));
    assert_int_equal(skipped, 2);
    /* A third source takes b's slot (logged longest ago); b starts over. */
    assert_true(rk_log_due_from(slots, 2, "c", t + RK_LOG_EVERY_MS + 1, &skipped));
    assert_true(rk_log_due_from(slots, 2, "b", t + RK_LOG_EVERY_MS + 2, &skipped));
    assert_string_equal(slots[0].src, "b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_bytes_are_escaped),
        cmocka_unit_test(test_long_lines_are_cut_whole),
        cmocka_unit_test(test_text_lines_start_with_a_utc_timestamp),
        cmocka_unit_test(test_journal_lines_carry_the_priority_and_no_timestamp),
        cmocka_unit_test(test_json_lines_escape_the_message),
        cmocka_unit_test(test_long_json_lines_stay_closed),
        cmocka_unit_test(test_journal_stream_must_name_the_fd),
        cmocka_unit_test(test_due_once_a_minute_per_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

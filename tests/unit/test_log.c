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
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_bytes_are_escaped),
        cmocka_unit_test(test_long_lines_are_cut_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

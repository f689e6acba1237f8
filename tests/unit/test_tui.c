/* The dashboard's model, renderer and grid, fed canned admin replies: the
 * ring's quorum marks follow member liveness, rates come from counter
 * differences, and every frame fits its grid (or says it cannot). */
#include "tui/grid.h"
#include "tui/model.h"
#include "tui/render.h"
#include "tui_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PARTS 16

/* One refresh of three members into m at now_ms: node-1 the anchor, node-3
 * in gossip state state3 and answering or not. */
static void feed(struct tui_model *m, uint64_t now_ms, uint64_t gets, const uint64_t lat[4],
                 const char *state3, bool node3_answers, const char *marked)
{
    struct tui_fixture f = {.nodes = 3,
                            .parts = PARTS,
                            .now_ms = now_ms,
                            .gets = gets,
                            .last_state = state3,
                            .last_silent = !node3_answers,
                            .marked = marked};
    memcpy(f.lat, lat, sizeof f.lat);
    struct tui_answer a[3];
    size_t n = tui_fixture_answers(a, &f);
    tui_model_update(m, a, n, now_ms, 1000);
    tui_poll_snapshot_free(a, n);
}

static void test_marks_follow_liveness(void **state)
{
    (void)state;
    struct tui_model *m = calloc(1, sizeof(*m));
    uint64_t lat[4] = {0};
    feed(m, 100000, 0, lat, "alive", true, "0000");
    assert_int_equal(m->npeers, 3);
    assert_true(m->have_placement);
    assert_int_equal(m->partitions, PARTS);
    assert_int_equal(m->counts[2], 0); /* none under-replicated */
    assert_int_equal(m->counts[3], 1); /* partition 5 moving */
    assert_int_equal(m->healthy, PARTS - 1);
    assert_int_equal(tui_model_cell(m, 5), '>');
    assert_int_equal(tui_model_cell(m, 1), '2'); /* first serving member of partition 1: node-2 */
    assert_int_equal(m->peers[2].hints_for, 12); /* 4 kept by each of the three nodes */
    assert_int_equal(m->peers[0].held, PARTS);

    /* node-3 dead and silent: every partition has 2 live replicas: under
     * N, still R and W. */
    feed(m, 105000, 0, lat, "dead", false, "0000");
    assert_false(m->peers[2].live);
    assert_int_equal(m->counts[2], PARTS);
    assert_int_equal(m->counts[0], 0);
    assert_int_equal(m->counts[1], 0);
    assert_int_equal(tui_model_cell(m, 0), 'u');
    free(m);
}

static void test_rates_and_latency_from_differences(void **state)
{
    (void)state;
    struct tui_model *m = calloc(1, sizeof(*m));
    uint64_t lat0[4] = {10, 0, 0, 0}, lat1[4] = {10 + 98, 1, 1, 0};
    feed(m, 200000, 1000, lat0, "alive", true, "0000");
    assert_true(m->peers[0].gets < 0); /* one answer: no rate yet */
    feed(m, 202000, 1400, lat1, "alive", true, "0100");
    assert_true(m->peers[0].gets > 199.9 && m->peers[0].gets < 200.1); /* 400 in 2 s */
    /* 98 requests under 100 us, 1 under 1 ms, 1 under 10 ms: the median is
     * interpolated in the first bucket (50 of 98), p99 ends the second. */
    assert_true(m->peers[0].p50_ms > 0.050 && m->peers[0].p50_ms < 0.052);
    assert_true(m->peers[0].p99_ms > 0.99 && m->peers[0].p99_ms < 1.01);
    assert_true(m->hist[m->nhist - 1].gets > 599 && m->hist[m->nhist - 1].gets < 601);
    /* "0100": partition 4 marked for anti-entropy (char 1, bit 0) */
    assert_int_equal(m->counts[4], 1);
    assert_int_equal(tui_model_cell(m, 4), '~');
    /* The same change reported by three nodes is one row, and the second
     * answers (same seq) add nothing. */
    assert_int_equal(m->nevents, 1);
    assert_int_equal(m->events[0].seen_by, 3);
    free(m);
}

static char *frame(const struct tui_model *m, struct tui_ui *ui, int w, int h, bool utf8)
{
    struct tui_grid g;
    assert_int_equal(tui_grid_init(&g, w, h, utf8), 0);
    tui_render(&g, m, ui);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tui_grid_print(&g, f);
    fclose(f);
    tui_grid_free(&g);
    return buf;
}

static void test_frames_fit_and_say_so_when_small(void **state)
{
    (void)state;
    struct tui_model *m = calloc(1, sizeof(*m));
    uint64_t lat[4] = {0};
    feed(m, 300000, 0, lat, "suspect", true, "0000");
    struct tui_ui ui = {.interval_ms = 1000, .focus = TUI_PEERS};
    int sizes[][2] = {{80, 24}, {200, 60}, {120, 40}};
    for (size_t i = 0; i < 3; i++) {
        for (int utf8 = 0; utf8 < 2; utf8++) {
            char *f = frame(m, &ui, sizes[i][0], sizes[i][1], utf8);
            if (getenv("TUI_SHOW")) /* TUI_SHOW=1 test_tui: see the frames */
                fputs(f, stdout);
            int lines = 0;
            for (char *p = f; *p; p++)
                lines += *p == '\n';
            assert_int_equal(lines, sizes[i][1]);
            for (const char *pane = "1 Ring\0002 Peers\0003 Anti-entropy\0004 Transfers\0005 "
                                    "Traffic\0006 Events\0";
                 *pane; pane += strlen(pane) + 1)
                assert_non_null(strstr(f, pane));
            assert_non_null(strstr(f, "node-3"));
            assert_non_null(strstr(f, "suspect"));
            if (!utf8)
                for (char *p = f; *p; p++)
                    assert_true((unsigned char)*p < 0x80);
            free(f);
        }
    }
    char *f = frame(m, &ui, 60, 20, true);
    assert_non_null(strstr(f, "the terminal is 60x20"));
    free(f);
    /* Help and the filter */
    ui.help = true;
    f = frame(m, &ui, 80, 24, false);
    assert_non_null(strstr(f, "no read quorum"));
    free(f);
    ui.help = false;
    snprintf(ui.filter, sizeof ui.filter, "node-2");
    f = frame(m, &ui, 80, 24, false);
    assert_null(strstr(f, "node-3  "));
    assert_string_equal(ui.sel_id, "node-2");
    free(f);
    free(m);
}

static void test_grid_clips_and_replaces_controls(void **state)
{
    (void)state;
    struct tui_grid g;
    assert_int_equal(tui_grid_init(&g, 10, 2, false), 0);
    int x = tui_grid_text(&g, 0, 0, 5, TUI_S_NORMAL, "ab\x01\xc3\xa9xyz");
    assert_int_equal(x, 5);
    assert_int_equal(g.c[2].ch, '?');           /* control byte */
    assert_int_equal(g.c[3].ch, '?');           /* non-ASCII on an ASCII grid */
    assert_int_equal(g.c[5].ch, ' ');           /* clipped at max_x */
    tui_grid_put(&g, 10, 0, 'z', TUI_S_NORMAL); /* outside: ignored */
    tui_grid_put(&g, -1, 5, 'z', TUI_S_NORMAL);
    tui_grid_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marks_follow_liveness),
        cmocka_unit_test(test_rates_and_latency_from_differences),
        cmocka_unit_test(test_frames_fit_and_say_so_when_small),
        cmocka_unit_test(test_grid_clips_and_replaces_controls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

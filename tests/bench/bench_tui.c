/* The dashboard's frame time: folding one refresh of N members' answers
 * into the model, and drawing it into a grid, at 80x24 and 200x60, for
 * N = 3 and 9 (256 partitions). Canned answers (tests/unit/tui_fixture.c):
 * no node, no terminal. Prints the median of 7 runs of 200 frames each. */
#include "tui/grid.h"
#include "tui/model.h"
#include "tui/render.h"
#include "tui_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FRAMES 200
#define RUNS   7

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median µs per frame of (update, render) for nodes at w x h. */
static void one(size_t nodes, int w, int h)
{
    struct tui_model *m = calloc(1, sizeof(*m));
    struct tui_grid g;
    struct tui_ui ui = {.interval_ms = 1000, .focus = TUI_PEERS};
    struct tui_answer a[TUI_POLL_MAX];
    if (!m || tui_grid_init(&g, w, h, true) < 0) {
        fprintf(stderr, "bench_tui: out of memory\n");
        exit(1);
    }
    double upd[RUNS], ren[RUNS];
    uint64_t t = 1000000;
    for (int r = 0; r < RUNS; r++) {
        double u = 0, d = 0;
        for (int i = 0; i < FRAMES; i++, t += 1000) {
            struct tui_fixture f = {.nodes = nodes,
                                    .parts = 256,
                                    .now_ms = t,
                                    .gets = t,
                                    .lat = {t, t / 10, t / 100, 0},
                                    .last_state = "alive"};
            size_t n = tui_fixture_answers(a, &f);
            double t0 = now_us();
            tui_model_update(m, a, n, t, 1000);
            double t1 = now_us();
            tui_render(&g, m, &ui);
            double t2 = now_us();
            u += t1 - t0, d += t2 - t1;
            tui_poll_snapshot_free(a, n);
        }
        upd[r] = u / FRAMES, ren[r] = d / FRAMES;
    }
    qsort(upd, RUNS, sizeof(double), cmp);
    qsort(ren, RUNS, sizeof(double), cmp);
    printf("nodes=%zu size=%dx%d model_update_us=%.1f render_us=%.1f frame_us=%.1f\n", nodes, w, h,
           upd[RUNS / 2], ren[RUNS / 2], upd[RUNS / 2] + ren[RUNS / 2]);
    tui_grid_free(&g);
    free(m);
}

int main(void)
{
    one(3, 80, 24);
    one(3, 200, 60);
    one(9, 80, 24);
    one(9, 200, 60);
    return 0;
}

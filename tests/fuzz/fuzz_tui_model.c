/* Fuzz target: arbitrary bytes as what members answer the dashboard (an
 * OVERVIEW, a MEMBERS and a PARTS reply, split at NUL bytes), through the
 * model and the renderer (tui/). A node is not trusted: whatever it sends,
 * the dashboard may not crash, leak, read out of bounds or loop on a
 * claimed size; the counts it derives stay within the partitions it shows,
 * and every frame fits its grid. */
#include "fuzz.h"
#include "tui/grid.h"
#include "tui/model.h"
#include "tui/render.h"

#include <stdio.h>
#include <string.h>

static const char seed_text[] =
    "{\"node\":\"node-1\",\"now_ms\":1000,\"partitions\":8,\"replicas\":3,\"read_quorum\":2,"
    "\"write_quorum\":2,\"requests\":{\"get\":5,\"put\":1,\"del\":0},\"busy\":0,\"errors\":0,"
    "\"latency\":{\"bounds_us\":[16,32],\"counts\":[1,2,3]},\"held\":\"ff\",\"pending\":\"0\","
    "\"marked\":\"10\",\"hints\":{\"by_target\":{\"node-2\":3}},\"ae\":{\"enabled\":true,"
    "\"round\":1,\"eta_s\":null,\"peers\":[{\"node\":\"node-2\",\"result\":\"ok\"}]},"
    "\"transfers\":{\"receiving\":[{\"partition\":3,\"from\":\"node-2\",\"state\":\"streaming\","
    "\"bytes_done\":10,\"started_ms\":900}]},\"events\":[{\"seq\":1,\"ms\":999,\"text\":\"x\"}],"
    "\"placement\":{\"members\":[\"node-1\",\"node-2\"],\"serve\":[[0,1],[1],[],[0],[1,0],[9],"
    "[0],[1]],\"pending\":[[],[0],[],[1],[],[],[],[]]}}"
    "\0"
    "{\"cluster\":\"c\",\"members\":[{\"id\":\"node-1\",\"self\":true,\"state\":\"alive\","
    "\"client\":\"tcp://127.0.0.1:1\"},{\"id\":\"node-2\",\"state\":\"dead\",\"client\":\"x\"}],"
    "\"refused\":[{\"id\":\"node-2\",\"setting\":\"s\",\"theirs\":\"a\",\"ours\":\"b\"}]}"
    "\0"
    "{\"parts\":[[3,10,100,1]]}";

uint8_t *rk_fuzz_seed(size_t *len)
{
    *len = sizeof(seed_text) - 1;
    uint8_t *b = malloc(*len);
    if (b)
        memcpy(b, seed_text, *len);
    return b;
}

/* Part k (0..2) of the input as a NUL-terminated copy; NULL if absent. */
static char *part(const uint8_t *data, size_t size, int k)
{
    size_t start = 0;
    for (int i = 0; i < k; i++) {
        const uint8_t *z = memchr(data + start, 0, size - start);
        if (!z)
            return NULL;
        start = (size_t)(z - data) + 1;
    }
    const uint8_t *z = memchr(data + start, 0, size - start);
    size_t n = z ? (size_t)(z - data) - start : size - start;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, data + start, n);
        s[n] = '\0';
    }
    return s;
}

static void frame(const struct tui_model *m, int w, int h, bool utf8)
{
    struct tui_grid g;
    struct tui_ui ui = {.interval_ms = 1000, .focus = TUI_PEERS, .help = w > 100};
    if (tui_grid_init(&g, w, h, utf8) < 0)
        return;
    tui_render(&g, m, &ui);
    for (int i = 0; i < g.w * g.h; i++)
        CHECK(g.c[i].ch >= 0x20 && (utf8 || g.c[i].ch < 0x7f));
    tui_grid_free(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tui_model *m = calloc(1, sizeof(*m));
    if (!m)
        return 0;
    for (int round = 0; round < 2; round++) {
        struct tui_answer a[2] = {0};
        snprintf(a[0].id, sizeof a[0].id, "node-1");
        snprintf(a[1].id, sizeof a[1].id, "node-2");
        a[0].anchor = true;
        a[0].ok = a[1].ok = true;
        a[0].ok_ms = a[0].tried_ms = a[1].ok_ms = a[1].tried_ms = 1000 + (uint64_t)round * 1000;
        a[0].overview = part(data, size, 0);
        a[0].members = part(data, size, 1);
        a[0].parts = a[1].parts = part(data, size, 2);
        a[1].overview = a[0].overview ? strdup(a[0].overview) : NULL;
        a[1].parts = a[0].parts ? strdup(a[0].parts) : NULL;
        tui_model_update(m, a, 2, 1000 + (uint64_t)round * 1000, 1000);
        tui_poll_snapshot_free(a, 2);
    }
    CHECK(m->npeers <= TUI_MAX_PEERS && m->nxfers <= TUI_MAX_XFERS);
    CHECK(m->nevents <= TUI_MAX_EVENTS && m->nhist <= TUI_HISTORY);
    uint32_t shown = m->partitions < TUI_MAX_PARTS ? m->partitions : TUI_MAX_PARTS;
    for (int b = 0; b < 5; b++)
        CHECK(m->counts[b] <= shown);
    CHECK(m->healthy <= shown);
    for (uint32_t p = 0; m->have_placement && p < shown; p++) {
        char c = tui_model_cell(m, p);
        CHECK(c > 0x20 && c < 0x7f);
        CHECK(m->part[p].owner < (int)m->npeers);
    }
    for (size_t i = 0; i < m->npeers; i++)
        CHECK(m->peers[i].held <= m->partitions);
    frame(m, 80, 24, false);
    frame(m, 200, 60, true);
    free(m);
    return 0;
}

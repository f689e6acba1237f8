/* The dashboard's frame (render.h).
 *
 * Layout at 80x24 (more room goes to the panes that can use it):
 *   row 0          header: cluster, members alive, anchor, frame time
 *   rows 1..H-3    Ring | Peers  /  Anti-entropy | Transfers  /  Traffic | Events
 *   row H-2        status line (messages, the filter being typed)
 *   row H-1        keys
 * The left column is the ring's: it is as wide as 32 cells plus borders,
 * wider on wide screens. Zoom gives the focused pane the whole body. */
#include "tui/render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const tui_pane_names[TUI_NPANES] = {"Ring",      "Peers",   "Anti-entropy",
                                                "Transfers", "Traffic", "Events"};
const char *const tui_sort_names[TUI_NSORTS] = {"id", "state", "ops/s", "p99", "held"};

struct rect {
    int x, y, w, h;
};

/* ---- small formatting helpers ---- */

static const char *fmt_rate(double v, char *b, size_t n)
{
    if (v < 0)
        snprintf(b, n, "-");
    else if (v >= 10000)
        snprintf(b, n, "%.0fk", v / 1000);
    else if (v >= 1000)
        snprintf(b, n, "%.1fk", v / 1000);
    else
        snprintf(b, n, "%.0f", v);
    return b;
}

static const char *fmt_ms(double ms, char *b, size_t n)
{
    if (ms < 0)
        snprintf(b, n, "-");
    else if (ms >= 1000)
        snprintf(b, n, "%.1fs", ms / 1000);
    else if (ms >= 10)
        snprintf(b, n, "%.0fms", ms);
    else
        snprintf(b, n, "%.1fms", ms);
    return b;
}

static const char *fmt_age(uint64_t ms, char *b, size_t n)
{
    if (ms == UINT64_MAX)
        snprintf(b, n, "never");
    else if (ms < 10000)
        snprintf(b, n, "%.1fs", (double)ms / 1000);
    else if (ms < 120000)
        snprintf(b, n, "%llus", (unsigned long long)(ms / 1000));
    else if (ms < 7200000)
        snprintf(b, n, "%llum", (unsigned long long)(ms / 60000));
    else
        snprintf(b, n, "%lluh", (unsigned long long)(ms / 3600000));
    return b;
}

static const char *fmt_bytes(uint64_t v, char *b, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)v;
    int i = 0;
    while (x >= 1024 && i < 4)
        x /= 1024, i++;
    snprintf(b, n, i ? "%.1f%s" : "%.0f%s", x, u[i]);
    return b;
}

static const char *fmt_secs(int64_t s, char *b, size_t n)
{
    if (s < 0)
        snprintf(b, n, "?");
    else if (s < 120)
        snprintf(b, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(b, n, "%lldm", (long long)(s / 60));
    else
        snprintf(b, n, "%lldh", (long long)(s / 3600));
    return b;
}

static const char *fmt_clock(uint64_t ms, char *b, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(b, n, "%H:%M:%S", &tm);
    return b;
}

static enum tui_style state_style(const char *state)
{
    if (strcmp(state, "alive") == 0)
        return TUI_S_OK;
    if (strcmp(state, "suspect") == 0 || strcmp(state, "leaving") == 0)
        return TUI_S_WARN;
    if (strcmp(state, "dead") == 0 || strcmp(state, "unknown") == 0)
        return TUI_S_BAD;
    return TUI_S_DIM;
}

static bool matches(const struct tui_ui *ui, const char *a, const char *b)
{
    return !ui->filter[0] || (a && strstr(a, ui->filter)) || (b && strstr(b, ui->filter));
}

static const char *proc_of(const struct tui_ui *ui, const char *id)
{
    for (size_t i = 0; i < ui->nproc; i++)
        if (strcmp(ui->proc[i].id, id) == 0)
            return ui->proc[i].what;
    return "";
}

/* A progress bar of width w for done/total. */
static void bar(struct tui_grid *g, int x, int y, int w, uint64_t done, uint64_t total,
                enum tui_style s)
{
    int full = total ? (int)((double)w * (double)done / (double)total) : 0;
    if (full > w)
        full = w;
    for (int i = 0; i < w; i++)
        tui_grid_put(g, x + i, y, tui_glyph_bar(g, i < full), i < full ? s : TUI_S_DIM);
}

/* ---- peers order ---- */

static int state_rank(const char *s)
{
    static const char *order[] = {"dead", "unknown", "suspect", "leaving", "alive", "left"};
    for (int i = 0; i < 6; i++)
        if (strcmp(s, order[i]) == 0)
            return i;
    return 6;
}

struct order {
    const struct tui_model *m;
    enum tui_sort key;
};

static int cmp_peer(const void *a, const void *b, void *arg)
{
    const struct order *o = arg;
    const struct tui_peer *x = &o->m->peers[*(const size_t *)a];
    const struct tui_peer *y = &o->m->peers[*(const size_t *)b];
    double dx = 0, dy = 0;
    switch (o->key) {
    case TUI_SORT_STATE:
        dx = state_rank(x->state), dy = state_rank(y->state);
        break;
    case TUI_SORT_OPS:
        dx = -(x->gets + x->puts + x->dels), dy = -(y->gets + y->puts + y->dels);
        break;
    case TUI_SORT_P99:
        dx = -x->p99_ms, dy = -y->p99_ms;
        break;
    case TUI_SORT_HELD:
        dx = -(double)x->held, dy = -(double)y->held;
        break;
    default:
        break;
    }
    if (dx != dy)
        return dx < dy ? -1 : 1;
    return strcmp(x->id, y->id);
}

size_t tui_render_peer_order(const struct tui_model *m, const struct tui_ui *ui, size_t *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < m->npeers; i++)
        if (matches(ui, m->peers[i].id, m->peers[i].state))
            idx[n++] = i;
    struct order o = {m, ui->sort};
    qsort_r(idx, n, sizeof(*idx), cmp_peer, &o);
    return n;
}

/* ---- panes ---- */

static void ring_pane(struct tui_grid *g, const struct tui_model *m, const struct tui_ui *ui,
                      struct rect r)
{
    int cols = r.w - 2 > 64 ? 64 : r.w - 2;
    uint32_t want_rows =
        ((m->partitions ? m->partitions : 1) + (uint32_t)cols - 1) / (uint32_t)cols;
    /* Two legend lines with words when there is room, else one of counts. */
    bool wordy = want_rows + 4 <= (uint32_t)r.h;
    int rows = r.h - (wordy ? 4 : 3);
    if (!m->have_placement || m->partitions == 0) {
        tui_grid_text(g, r.x + 1, r.y + 1, r.x + r.w - 1, TUI_S_DIM, "no placement yet");
        return;
    }
    uint32_t np = m->partitions < TUI_MAX_PARTS ? m->partitions : TUI_MAX_PARTS;
    /* Each cell shows per partitions (the worst of them), so the whole ring
     * fits whatever the size. */
    uint32_t per = 1;
    while ((np + per - 1) / per > (uint32_t)(cols * rows) && per < np)
        per *= 2;
    uint32_t cells = (np + per - 1) / per;
    if (cells < (uint32_t)cols)
        cols = (int)cells;
    for (uint32_t c = 0; c < cells; c++) {
        uint8_t flags = 0;
        uint32_t worst = c * per;
        for (uint32_t p = c * per; p < (c + 1) * per && p < np; p++) {
            if (m->part[p].flags > flags ||
                (m->part[p].flags & ~flags & (m->part[worst].flags ^ m->part[p].flags)))
                worst = p;
            flags |= m->part[p].flags;
        }
        char ch = tui_model_cell(m, worst);
        const struct tui_part *t = &m->part[worst];
        enum tui_style s = flags & (TUI_P_NO_READ | TUI_P_NO_WRITE) ? TUI_S_BAD
                           : flags & TUI_P_UNDER                    ? TUI_S_WARN
                           : flags & (TUI_P_MOVING | TUI_P_MARKED)  ? TUI_S_INFO
                           : t->owner >= 0
                               ? (enum tui_style)(TUI_S_OWNER0 + t->owner % TUI_OWNER_STYLES)
                               : TUI_S_DIM;
        if (ui->filter[0] && t->owner >= 0 && !strstr(m->peers[t->owner].id, ui->filter))
            ch = '.', s = TUI_S_DIM;
        tui_grid_put(g, r.x + 1 + (int)(c % (uint32_t)cols), r.y + 1 + (int)(c / (uint32_t)cols),
                     (uint32_t)(unsigned char)ch, s);
    }
    int ly = r.y + r.h - (wordy ? 3 : 2), x = r.x + 1, end = r.x + r.w - 1;
    if (!wordy) {
        x = tui_grid_printf(g, x, ly, end, TUI_S_BAD, "X%u x%u ", m->counts[0], m->counts[1]);
        x = tui_grid_printf(g, x, ly, end, TUI_S_WARN, "u%u ", m->counts[2]);
        x = tui_grid_printf(g, x, ly, end, TUI_S_INFO, ">%u ~%u ", m->counts[3], m->counts[4]);
        x = tui_grid_printf(g, x, ly, end, TUI_S_OK, "ok%u", m->healthy);
        if (per > 1)
            tui_grid_printf(g, x, ly, end, TUI_S_DIM, " %u/cell", per);
        return;
    }
    x = tui_grid_printf(g, x, ly, end, TUI_S_BAD, "X%u", m->counts[0]);
    x = tui_grid_printf(g, x, ly, end, TUI_S_NORMAL, " no R ");
    x = tui_grid_printf(g, x, ly, end, TUI_S_BAD, "x%u", m->counts[1]);
    x = tui_grid_printf(g, x, ly, end, TUI_S_NORMAL, " no W ");
    x = tui_grid_printf(g, x, ly, end, TUI_S_WARN, "u%u", m->counts[2]);
    tui_grid_printf(g, x, ly, end, TUI_S_NORMAL, " under");
    x = r.x + 1;
    x = tui_grid_printf(g, x, ly + 1, end, TUI_S_INFO, ">%u", m->counts[3]);
    x = tui_grid_printf(g, x, ly + 1, end, TUI_S_NORMAL, " moving ");
    x = tui_grid_printf(g, x, ly + 1, end, TUI_S_INFO, "~%u", m->counts[4]);
    x = tui_grid_printf(g, x, ly + 1, end, TUI_S_NORMAL, " AE ");
    x = tui_grid_printf(g, x, ly + 1, end, TUI_S_OK, "%u ok", m->healthy);
    if (per > 1)
        tui_grid_printf(g, x, ly + 1, end, TUI_S_DIM, " %u/cell", per);
}

struct col {
    const char *name;
    int w;
    int min_width; /* the pane width from which the column is shown */
};

/* At 80 columns the pane is 44 wide: RTT and the rest appear with room
 * (the selected member's line below the table shows its RTT always). */
static const struct col peer_cols[] = {
    {"ID", 9, 0},    {"STATE", 8, 0}, {"HEARD", 6, 0}, {"RTT", 6, 50},   {"HELD", 5, 0},
    {"OPS/S", 6, 0}, {"P99", 6, 0},   {"INC", 6, 56},  {"HINTS", 6, 62}, {"CFG", 5, 68},
    {"ANS", 6, 74},  {"UP", 6, 80},   {"PROC", 9, 88},
};
#define NCOLS (sizeof(peer_cols) / sizeof(peer_cols[0]))

/* Column col of peer p (index i in the model) as text, and its style. */
static void peer_cell(char *b, size_t n, size_t col, const struct tui_peer *p, size_t i,
                      const struct tui_ui *ui, enum tui_style *s)
{
    char t[32];
    *s = TUI_S_NORMAL;
    switch (col) {
    case 0:
        snprintf(b, n, "%c %s", tui_owner_glyph(i), p->id);
        break;
    case 1:
        snprintf(b, n, "%s", p->state);
        *s = state_style(p->state);
        break;
    case 2:
        snprintf(b, n, "%s", p->self_anchor ? "self" : fmt_age(p->last_heard_ms, t, sizeof t));
        break;
    case 3:
        snprintf(b, n, "%s", p->self_anchor ? "-" : fmt_ms((double)p->rtt_us / 1000, t, sizeof t));
        break;
    case 4:
        snprintf(b, n, "%u", p->held);
        break;
    case 5:
        snprintf(b, n, "%s", fmt_rate(p->gets < 0 ? -1 : p->gets + p->puts + p->dels, t, sizeof t));
        break;
    case 6:
        snprintf(b, n, "%s", fmt_ms(p->p99_ms, t, sizeof t));
        break;
    case 7:
        snprintf(b, n, "%llu", (unsigned long long)(p->incarnation % 100000));
        break;
    case 8:
        snprintf(b, n, "%llu", (unsigned long long)p->hints_for);
        *s = p->hints_for ? TUI_S_WARN : TUI_S_NORMAL;
        break;
    case 9:
        snprintf(b, n, "%s", p->config_match ? "same" : "DIFF");
        *s = p->config_match ? TUI_S_NORMAL : TUI_S_BAD;
        break;
    case 10:
        snprintf(b, n, "%s", fmt_age(p->answer_age_ms, t, sizeof t));
        *s = p->answered ? TUI_S_NORMAL : TUI_S_BAD;
        break;
    case 11:
        snprintf(b, n, "%s", p->answered ? fmt_secs((int64_t)p->uptime_s, t, sizeof t) : "-");
        break;
    default:
        snprintf(b, n, "%s", proc_of(ui, p->id));
        *s = TUI_S_WARN;
        break;
    }
}

/* Why the selected peer is in its state, in one or two lines. */
static void peer_detail(struct tui_grid *g, const struct tui_peer *p, int x, int y, int end)
{
    char a[32], b[32];
    int cx = tui_grid_printf(g, x, y, end, TUI_S_BOLD, "%s", p->id);
    char c[32];
    cx = tui_grid_printf(g, cx, y, end, TUI_S_NORMAL, " %s for %s, rtt %s, answer %s ago", p->state,
                         fmt_age(p->state_for_ms, a, sizeof a),
                         p->self_anchor ? "-" : fmt_ms((double)p->rtt_us / 1000, c, sizeof c),
                         fmt_age(p->answer_age_ms, b, sizeof b));
    if (p->error[0])
        tui_grid_printf(g, cx, y, end, TUI_S_BAD, "; %s", p->error);
    else if (p->refused[0])
        tui_grid_printf(g, cx, y, end, TUI_S_BAD, "; %s", p->refused);
    else if (p->answered)
        tui_grid_printf(g, cx, y, end, TUI_S_DIM, " (%s)",
                        fmt_ms((double)p->took_us / 1000, a, sizeof a));
}

static void peers_pane(struct tui_grid *g, const struct tui_model *m, struct tui_ui *ui,
                       struct rect r)
{
    size_t idx[TUI_MAX_PEERS];
    size_t n = tui_render_peer_order(m, ui, idx);
    int x = r.x + 1, end = r.x + r.w - 1, inner = r.w - 2;
    for (size_t c = 0; c < NCOLS; c++) {
        if (peer_cols[c].min_width > inner || x + peer_cols[c].w > end + 1)
            continue;
        tui_grid_text(g, x, r.y + 1, end, TUI_S_BOLD, peer_cols[c].name);
        x += peer_cols[c].w;
    }
    if (n && ui->sel >= n)
        ui->sel = n - 1;
    int rows = r.h - 4; /* header, detail line, borders */
    size_t first = ui->sel >= (size_t)rows ? ui->sel - (size_t)rows + 1 : 0;
    for (size_t k = first; k < n && (int)(k - first) < rows; k++) {
        const struct tui_peer *p = &m->peers[idx[k]];
        int y = r.y + 2 + (int)(k - first);
        bool sel = k == ui->sel && ui->focus == TUI_PEERS;
        x = r.x + 1;
        for (size_t c = 0; c < NCOLS; c++) {
            if (peer_cols[c].min_width > inner || x + peer_cols[c].w > end + 1)
                continue;
            char cell[64];
            enum tui_style s;
            peer_cell(cell, sizeof cell, c, p, idx[k], ui, &s);
            if (c == 0)
                s = (enum tui_style)(TUI_S_OWNER0 + idx[k] % TUI_OWNER_STYLES);
            tui_grid_text(g, x, y, x + peer_cols[c].w - 1, sel ? TUI_S_FOCUS : s, cell);
            x += peer_cols[c].w;
        }
    }
    if (n) {
        snprintf(ui->sel_id, sizeof ui->sel_id, "%s", m->peers[idx[ui->sel]].id);
        peer_detail(g, &m->peers[idx[ui->sel]], r.x + 1, r.y + r.h - 2, end);
    } else {
        ui->sel_id[0] = '\0';
        tui_grid_text(g, r.x + 1, r.y + 2, end, TUI_S_DIM,
                      ui->filter[0] ? "no member matches the filter" : "no members yet");
    }
}

static void ae_pane(struct tui_grid *g, const struct tui_model *m, const struct tui_ui *ui,
                    struct rect r)
{
    int end = r.x + r.w - 1, y = r.y + 1, last = r.y + r.h - 1;
    bool peers_lines = r.h - 2 >= (int)m->npeers * 2;
    for (size_t i = 0; i < m->npeers && y < last; i++) {
        const struct tui_peer *p = &m->peers[i];
        if (!matches(ui, p->id, NULL))
            continue;
        char a[16], b[16], c[16];
        int x = tui_grid_printf(g, r.x + 1, y, end, TUI_S_NORMAL, "%-7.7s ", p->id);
        if (!p->answered && p->answer_age_ms == UINT64_MAX) {
            tui_grid_text(g, x, y++, end, TUI_S_DIM, "no answer yet");
            continue;
        }
        if (!p->ae_enabled) {
            tui_grid_text(g, x, y++, end, TUI_S_DIM, "anti-entropy off");
            continue;
        }
        bool wide = r.w >= 60;
        x = tui_grid_printf(g, x, y, end, TUI_S_NORMAL, "r%llu ", (unsigned long long)p->ae_round);
        int bw = wide ? 16 : 6;
        bar(g, x, y, bw, p->ae_running ? p->ae_compared : p->ae_total, p->ae_total,
            p->ae_running ? TUI_S_INFO : TUI_S_OK);
        x += bw + 1;
        if (p->ae_running)
            x = tui_grid_printf(g, x, y, end, TUI_S_NORMAL, "%llu/%llu %s ",
                                (unsigned long long)p->ae_compared, (unsigned long long)p->ae_total,
                                fmt_secs(p->ae_eta_s, a, sizeof a));
        else
            x = tui_grid_printf(g, x, y, end, TUI_S_OK, "done ");
        x = tui_grid_printf(g, x, y, end, TUI_S_NORMAL, "rep %llu ",
                            (unsigned long long)p->ae_repaired);
        if (wide)
            x = tui_grid_printf(g, x, y, end, TUI_S_NORMAL, "%s ",
                                fmt_bytes(p->ae_bytes, b, sizeof b));
        x = tui_grid_printf(g, x, y, end, TUI_S_NORMAL, "%s/%s/s", fmt_rate(p->ae_kps, c, sizeof c),
                            fmt_rate((double)p->ae_max_kps, a, sizeof a));
        if (p->ae_marked)
            tui_grid_printf(g, x, y, end, TUI_S_INFO, " ~%llu", (unsigned long long)p->ae_marked);
        y++;
        if (peers_lines && y < last && p->ae_peers[0])
            tui_grid_printf(g, r.x + 10, y++, end, TUI_S_DIM, "last: %s", p->ae_peers);
    }
}

static void xfers_pane(struct tui_grid *g, const struct tui_model *m, const struct tui_ui *ui,
                       struct rect r)
{
    int end = r.x + r.w - 1, y = r.y + 1, last = r.y + r.h - 1;
    uint64_t done = 0, failed = 0, pending = 0;
    for (size_t i = 0; i < m->npeers; i++)
        done += m->peers[i].xfer_done, failed += m->peers[i].xfer_failed,
            pending += m->peers[i].xfer_pending;
    tui_grid_printf(g, r.x + 1, y++, end, TUI_S_DIM,
                    "%zu running or waiting, %llu done, %llu failed", m->nxfers,
                    (unsigned long long)done, (unsigned long long)failed);
    (void)pending;
    for (size_t i = 0; i < m->nxfers && y < last; i++) {
        const struct rk_xfer_row *t = &m->xfers[i];
        char line[160];
        snprintf(line, sizeof line, "p%u %s>%s", t->part, t->from[0] ? t->from : "*", t->to);
        if (!matches(ui, line, t->state))
            continue;
        int x = tui_grid_printf(g, r.x + 1, y, end, TUI_S_NORMAL, "%-22.22s ", line);
        if (strcmp(t->state, "streaming") != 0) {
            tui_grid_printf(g, x, y++, end, TUI_S_WARN, "waits: %s", t->why[0] ? t->why : t->state);
            continue;
        }
        char a[16], b[16], c[16], d[16];
        double rate = rk_xfer_rate(t, m->now_ms), eta = rk_xfer_eta(t, m->now_ms);
        bar(g, x, y, 8, t->bytes_done, t->bytes_total ? t->bytes_total : t->bytes_done * 2 + 1,
            TUI_S_INFO);
        x += 9;
        tui_grid_printf(g, x, y++, end, TUI_S_NORMAL, "%s/%s %s/s eta %s",
                        fmt_bytes(t->bytes_done, a, sizeof a),
                        t->bytes_total ? fmt_bytes(t->bytes_total, b, sizeof b) : "?",
                        fmt_bytes((uint64_t)rate, c, sizeof c),
                        fmt_secs(eta < 0 ? -1 : (int64_t)eta, d, sizeof d));
    }
    for (size_t i = 0; i < m->npeers && y < last && m->nxfers == 0; i++)
        if (m->peers[i].xfer_waiting[0] && m->peers[i].xfer_pending)
            tui_grid_printf(g, r.x + 1, y++, end, TUI_S_WARN, "%s: %s", m->peers[i].id,
                            m->peers[i].xfer_waiting);
}

/* A sparkline of the newest samples that fit in w cells. */
static void spark(struct tui_grid *g, int x, int y, int w, const struct tui_model *m, bool puts)
{
    size_t n = m->nhist < (size_t)w ? m->nhist : (size_t)w;
    double max = 1;
    for (size_t i = m->nhist - n; i < m->nhist; i++) {
        double v = puts ? m->hist[i].puts : m->hist[i].gets;
        if (v > max)
            max = v;
    }
    for (size_t i = 0; i < n; i++) {
        const struct tui_sample *s = &m->hist[m->nhist - n + i];
        double v = puts ? s->puts : s->gets;
        unsigned level = (unsigned)(v * 7.0 / max + 0.5);
        tui_grid_put(g, x + w - (int)n + (int)i, y, tui_glyph_spark(g, level),
                     puts ? TUI_S_INFO : TUI_S_OK);
    }
}

static void traffic_pane(struct tui_grid *g, const struct tui_model *m, struct rect r)
{
    int end = r.x + r.w - 1, y = r.y + 1;
    const struct tui_sample *s = m->nhist ? &m->hist[m->nhist - 1] : NULL;
    char a[16], b[16];
    int sw = r.w - 2 - 16;
    tui_grid_printf(g, r.x + 1, y, end, TUI_S_NORMAL, "gets %7s/s",
                    fmt_rate(s ? s->gets : -1, a, sizeof a));
    spark(g, r.x + 16, y++, sw, m, false);
    tui_grid_printf(g, r.x + 1, y, end, TUI_S_NORMAL, "puts %7s/s",
                    fmt_rate(s ? s->puts : -1, a, sizeof a));
    spark(g, r.x + 16, y++, sw, m, true);
    int x = tui_grid_printf(g, r.x + 1, y, end, TUI_S_NORMAL, "p50 %s  p99 %s  ",
                            fmt_ms(m->p50_ms, a, sizeof a), fmt_ms(m->p99_ms, b, sizeof b));
    x = tui_grid_printf(g, x, y, end, s && s->errors > 0 ? TUI_S_BAD : TUI_S_NORMAL,
                        "errors %s/s  ", fmt_rate(s ? s->errors : -1, a, sizeof a));
    tui_grid_printf(g, x, y, end, s && s->busy > 0 ? TUI_S_WARN : TUI_S_NORMAL, "busy %s/s",
                    fmt_rate(s ? s->busy : -1, a, sizeof a));
}

static void events_pane(struct tui_grid *g, const struct tui_model *m, const struct tui_ui *ui,
                        struct rect r)
{
    int end = r.x + r.w - 1, rows = r.h - 2;
    size_t shown[TUI_MAX_EVENTS], n = 0;
    for (size_t i = m->nevents; i-- > 0 && n < (size_t)rows;)
        if (matches(ui, m->events[i].node, m->events[i].text))
            shown[n++] = i;
    if (!n)
        tui_grid_text(g, r.x + 1, r.y + 1, end, TUI_S_DIM, "no events yet");
    for (size_t k = 0; k < n; k++) {
        const struct tui_event *e = &m->events[shown[n - 1 - k]];
        char t[16];
        enum tui_style s = strstr(e->text, "dead") || strstr(e->text, "failed") ? TUI_S_BAD
                           : strstr(e->text, "suspect")                         ? TUI_S_WARN
                                                                                : TUI_S_NORMAL;
        char who[80];
        if (e->seen_by > 1)
            snprintf(who, sizeof who, "%s+%u", e->node, e->seen_by - 1);
        else
            snprintf(who, sizeof who, "%s", e->node);
        tui_grid_printf(g, r.x + 1, r.y + 1 + (int)k, end, s, "%s %s %s",
                        fmt_clock(e->ms, t, sizeof t), who, e->text);
    }
}

static void draw_pane(struct tui_grid *g, const struct tui_model *m, struct tui_ui *ui,
                      enum tui_pane p, struct rect r)
{
    char title[48];
    snprintf(title, sizeof title, "%d %s", (int)p + 1, tui_pane_names[p]);
    if (p == TUI_PEERS && ui->sort != TUI_SORT_ID)
        snprintf(title, sizeof title, "2 Peers by %s", tui_sort_names[ui->sort]);
    tui_grid_box(g, r.x, r.y, r.w, r.h, title, ui->focus == p);
    switch (p) {
    case TUI_RING:
        ring_pane(g, m, ui, r);
        break;
    case TUI_PEERS:
        peers_pane(g, m, ui, r);
        break;
    case TUI_AE:
        ae_pane(g, m, ui, r);
        break;
    case TUI_XFERS:
        xfers_pane(g, m, ui, r);
        break;
    case TUI_TRAFFIC:
        traffic_pane(g, m, r);
        break;
    default:
        events_pane(g, m, ui, r);
        break;
    }
}

static void header(struct tui_grid *g, const struct tui_model *m, const struct tui_ui *ui)
{
    tui_grid_fill(g, 0, 0, g->w, ' ', TUI_S_TITLE);
    size_t alive = 0, live = 0;
    for (size_t i = 0; i < m->npeers; i++)
        alive += strcmp(m->peers[i].state, "alive") == 0, live += m->peers[i].answered;
    char t[16], right[64];
    snprintf(right, sizeof right, " %s#%llu %s every %.1fs ", ui->paused ? "PAUSED " : "",
             (unsigned long long)m->frames, fmt_clock(ui->frame_ms, t, sizeof t),
             (double)ui->interval_ms / 1000);
    int rx = g->w - (int)strlen(right);
    int x = tui_grid_printf(
        g, 0, 0, rx, TUI_S_TITLE, " ringkv %s  %zu/%zu alive %zu answering  N%u R%u W%u",
        m->cluster[0] ? m->cluster : "?", alive, m->npeers, live, m->replicas, m->r, m->w);
    if (rx - x > 12)
        tui_grid_printf(g, x, 0, rx, TUI_S_TITLE, "  via %s", m->anchor[0] ? m->anchor : "?");
    tui_grid_text(g, rx, 0, g->w, TUI_S_TITLE, right);
}

static void footer(struct tui_grid *g, const struct tui_ui *ui)
{
    int y = g->h - 2;
    if (ui->editing_filter)
        tui_grid_printf(g, 0, y, g->w, TUI_S_BOLD, "filter: %s_  (Enter keeps it, Esc clears)",
                        ui->filter);
    else if (ui->status[0])
        tui_grid_text(g, 0, y, g->w, TUI_S_BOLD, ui->status);
    else if (ui->filter[0])
        tui_grid_printf(g, 0, y, g->w, TUI_S_DIM, "filter: %s  (/ to change)", ui->filter);
    else if (ui->demo_line[0])
        tui_grid_text(g, 0, y, g->w, TUI_S_DIM, ui->demo_line);
    tui_grid_fill(g, 0, g->h - 1, g->w, ' ', TUI_S_TITLE);
    tui_grid_text(g, 0, g->h - 1, g->w, TUI_S_TITLE,
                  ui->demo
                      ? " ?help q quit Tab / s p | k kill r restart z pause a add l leave t load"
                      : " ? help  q quit  Tab/1-6 pane  Enter zoom  / filter  s sort  p pause");
}

static const char *const help_lines[] = {
    "Keys",
    "  ?          this help (any key closes it)",
    "  q          quit (the demo stops its nodes)",
    "  Tab 1-6    focus a pane; Enter zooms it",
    "  Up/Down    select a member (Peers)",
    "  /          filter members, transfers, events",
    "  s          sort members: id, state, ops/s, p99, held",
    "  p          pause / resume the refresh",
    "Demo (the selected member)",
    "  k kill -9   r restart   z SIGSTOP / SIGCONT",
    "  a add a node   l leave   t load on / off",
    "Ring cells: owner 1-9 a-z; marks win over owners:",
    "  X no read quorum  x no write quorum  u under-",
    "  replicated  > moving (transfer)  ~ AE marked",
    "Live = gossip alive and answering the dashboard",
};

static void help_overlay(struct tui_grid *g)
{
    int n = (int)(sizeof(help_lines) / sizeof(help_lines[0]));
    int w = 56, h = n + 2, x = (g->w - w) / 2, y = (g->h - h) / 2;
    for (int r = y; r < y + h; r++)
        tui_grid_fill(g, x, r, w, ' ', TUI_S_NORMAL);
    tui_grid_box(g, x, y, w, h, "help", true);
    for (int i = 0; i < n; i++)
        tui_grid_text(g, x + 2, y + 1 + i, x + w - 1, i == 0 || i == 8 ? TUI_S_BOLD : TUI_S_NORMAL,
                      help_lines[i]);
}

void tui_render(struct tui_grid *g, const struct tui_model *m, struct tui_ui *ui)
{
    tui_grid_clear(g);
    if (g->w < TUI_MIN_W || g->h < TUI_MIN_H) {
        tui_grid_printf(g, 0, 0, g->w, TUI_S_BOLD, "ringkv dashboard: the terminal is %dx%d;", g->w,
                        g->h);
        tui_grid_printf(g, 0, 1, g->w, TUI_S_NORMAL, "it needs at least %dx%d.", TUI_MIN_W,
                        TUI_MIN_H);
        tui_grid_text(g, 0, 2, g->w, TUI_S_NORMAL, "Enlarge it, or q to quit.");
        return;
    }
    header(g, m, ui);
    int top = 1, body = g->h - 3;
    if (ui->zoom) {
        draw_pane(g, m, ui, ui->focus, (struct rect){0, top, g->w, body});
    } else {
        int lw = g->w * 42 / 100;
        if (lw < 34)
            lw = 34;
        if (lw > 70)
            lw = 70;
        int rw = g->w - lw;
        /* Top band: the ring (its cells, two legend lines, borders) and the
         * peers (a row each, header, detail, borders); the rest is split. */
        int cols = lw - 2 > 64 ? 64 : lw - 2;
        int need_ring =
            (int)((m->partitions ? m->partitions : 256) + (uint32_t)cols - 1) / cols + 4;
        int need_peers = (int)m->npeers + 4;
        int t = need_ring > need_peers ? need_ring : need_peers;
        int rest_min = 10;
        if (t > body - rest_min)
            t = body - rest_min;
        if (t < 11)
            t = 11;
        int rest = body - t;
        int mid = (int)m->npeers * (g->w >= 120 ? 2 : 1) + 2;
        if (mid < rest / 2)
            mid = rest / 2;
        if (mid > rest - 5)
            mid = rest - 5;
        int bot = rest - mid;
        draw_pane(g, m, ui, TUI_RING, (struct rect){0, top, lw, t});
        draw_pane(g, m, ui, TUI_PEERS, (struct rect){lw, top, rw, t});
        draw_pane(g, m, ui, TUI_AE, (struct rect){0, top + t, g->w / 2, mid});
        draw_pane(g, m, ui, TUI_XFERS, (struct rect){g->w / 2, top + t, g->w - g->w / 2, mid});
        draw_pane(g, m, ui, TUI_TRAFFIC, (struct rect){0, top + t + mid, g->w / 2, bot});
        draw_pane(g, m, ui, TUI_EVENTS,
                  (struct rect){g->w / 2, top + t + mid, g->w - g->w / 2, bot});
    }
    footer(g, ui);
    if (ui->help)
        help_overlay(g);
}

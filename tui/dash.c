/* The dashboard's main loop, --once and --json (dash.h).
 *
 *   pollers (a thread per member) ──answers──▶ snapshot each refresh
 *        ▲ members learned from the anchor            │
 *        └──────────── tui_poll_add ◀── model ◀───────┘
 *                                         │
 *                         render ──▶ grid ──▶ terminal (or stdout)
 *
 * The screen is redrawn every refresh and on every key, from the latest
 * answers: a node that does not answer only ages its own row. */
#include "tui/dash.h"

#include "tui/demo.h"
#include "tui/keys.h"
#include "tui/model.h"
#include "tui/poll.h"
#include "tui/render.h"
#include "tui/term.h"

#include "util/clock.h"
#include "util/jbuf.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define NEWS_MS     250 /* the fastest the picture follows new answers */
#define KEY_WAIT_MS 100 /* how often the loop looks for news between keys */

struct dash {
    const struct tui_dash_opts *o;
    struct tui_poll *poll;
    struct tui_model *m;
    struct tui_ui ui;
    struct tui_answer ans[TUI_POLL_MAX];
    size_t nans;
};

static void add_member(const char *id, const char *addr, void *arg)
{
    tui_poll_add(arg, id, addr);
}

/* The anchor is the first target that answered lately, the -a node first. */
static void choose_anchor(struct dash *d)
{
    uint64_t now = rk_clock_wall_ms(), fresh = 2ull * d->o->interval_ms + 1000;
    for (size_t i = 0; i < d->nans; i++)
        if (d->ans[i].anchor && d->ans[i].ok_ms + fresh >= now)
            return;
    for (size_t i = 0; i < d->nans; i++) {
        if (d->ans[i].ok && d->ans[i].ok_ms + fresh >= now) {
            tui_poll_set_anchor(d->poll, i);
            return;
        }
    }
}

/* Take the pollers' latest answers into the model. */
static void refresh(struct dash *d)
{
    tui_poll_snapshot_free(d->ans, d->nans);
    d->nans = tui_poll_snapshot(d->poll, d->ans, TUI_POLL_MAX);
    for (size_t i = 0; i < d->nans; i++)
        if (d->ans[i].anchor && d->ans[i].members)
            tui_model_members(&d->ans[i], add_member, d->poll);
    uint64_t now = rk_clock_wall_ms();
    tui_model_update(d->m, d->ans, d->nans, now, d->o->interval_ms);
    d->ui.frame_ms = now;
    tui_poll_want_parts(d->poll, d->m->nxfers > 0);
    choose_anchor(d);
}

/* The demo's processes as the peers pane's PROC column, and its line. */
static void demo_facts(struct dash *d)
{
    struct tui_demo *demo = d->o->demo;
    if (!demo)
        return;
    tui_demo_poll(demo);
    d->ui.nproc = 0;
    static const char *names[] = {"running", "STOPPED", "killed", "exited", "leaving"};
    for (size_t i = 0; i < tui_demo_count(demo) && i < TUI_MAX_PEERS; i++) {
        struct tui_demo_node n;
        tui_demo_node(demo, i, &n);
        struct tui_proc *p = &d->ui.proc[d->ui.nproc++];
        snprintf(p->id, sizeof p->id, "%s", n.id);
        if (n.state == TUI_DEMO_EXITED)
            snprintf(p->what, sizeof p->what, "exit %d", n.exit_code);
        else
            snprintf(p->what, sizeof p->what, "%s", names[n.state]);
        tui_poll_add(d->poll, n.id, n.client);
    }
    uint64_t ok, failed;
    bool on = tui_demo_load(demo, &ok, &failed);
    snprintf(
        d->ui.demo_line, sizeof d->ui.demo_line,
        "demo: %zu nodes started, load %s (%llu ok, %llu failed); select a member, then k r z l",
        tui_demo_count(demo), on ? "on" : "off", (unsigned long long)ok,
        (unsigned long long)failed);
}

static int live(struct dash *d)
{
    char err[200];
    if (tui_term_open(err, sizeof err) < 0) {
        fprintf(stderr, "ringkvd dashboard: %s\n", err);
        return 2;
    }
    struct tui_grid g = {0};
    struct tui_keys keys = {0};
    if (d->o->note)
        snprintf(d->ui.status, sizeof d->ui.status, "%s", d->o->note);
    uint64_t next = 0, last = 0, seen = 0;
    bool dirty = true;
    while (!(d->o->quit && atomic_load(d->o->quit))) {
        uint64_t now = rk_clock_mono_ns() / 1000000, gen = tui_poll_generation(d->poll);
        /* Every interval (ages move on), and soon after an answer came in
         * (news shows within NEWS_MS, not a whole refresh later). */
        if (now >= next || (gen != seen && now - last >= NEWS_MS)) {
            demo_facts(d);
            if (!d->ui.paused)
                refresh(d);
            if (now >= next)
                next = now + d->o->interval_ms;
            last = now, seen = gen;
            dirty = true;
        }
        int w, h;
        tui_term_size(&w, &h);
        if (dirty) {
            if (g.w != w || g.h != h || !g.c) {
                tui_grid_free(&g);
                if (tui_grid_init(&g, w, h, tui_term_utf8()) < 0)
                    break;
            }
            tui_render(&g, d->m, &d->ui);
            tui_term_blit(&g);
            dirty = false;
        }
        uint64_t wait = next > now ? next - now : 0;
        int key = tui_term_key((int)(wait < KEY_WAIT_MS ? wait : KEY_WAIT_MS));
        enum tui_key_result r = tui_keys_handle(&keys, &d->ui, d->m, d->o->demo, key);
        if (r == TUI_KEYS_QUIT)
            break;
        if (r == TUI_KEYS_REFRESH) {
            tui_poll_kick(d->poll);
            next = 0;
        }
        dirty = dirty || r != TUI_KEYS_NONE;
    }
    tui_term_close();
    tui_grid_free(&g);
    return 0;
}

/* ---- --once ---- */

static void json_peer(struct rk_jbuf *b, const struct tui_peer *p)
{
    rk_jadd(b, "{\"id\":");
    rk_jstr(b, p->id);
    rk_jadd(b, ",\"state\":");
    rk_jstr(b, p->state);
    rk_jadd(b, ",\"client\":");
    rk_jstr(b, p->addr);
    rk_jadd(b,
            ",\"incarnation\":%llu,\"last_heard_ms\":%llu,\"rtt_us\":%llu,\"config_match\":%s,"
            "\"answered\":%s,\"error\":",
            (unsigned long long)p->incarnation, (unsigned long long)p->last_heard_ms,
            (unsigned long long)p->rtt_us, p->config_match ? "true" : "false",
            p->answered ? "true" : "false");
    rk_jstr(b, p->error);
    rk_jadd(b,
            ",\"held\":%u,\"hints_for\":%llu,\"live\":%s,\"poll\":{\"answers\":%llu,"
            "\"rx_bytes\":%llu,\"tx_bytes\":%llu}}",
            p->held, (unsigned long long)p->hints_for, p->live ? "true" : "false",
            (unsigned long long)p->answers, (unsigned long long)p->rx_bytes,
            (unsigned long long)p->tx_bytes);
}

static void json_xfer(struct rk_jbuf *b, const struct rk_xfer_row *x)
{
    rk_jadd(b, "{\"partition\":%u,\"from\":", x->part);
    rk_jstr(b, x->from);
    rk_jadd(b, ",\"to\":");
    rk_jstr(b, x->to);
    rk_jadd(b, ",\"state\":");
    rk_jstr(b, x->state);
    rk_jadd(b, ",\"keys_done\":%llu,\"bytes_done\":%llu,\"bytes_total\":%llu,\"why\":",
            (unsigned long long)x->keys_done, (unsigned long long)x->bytes_done,
            (unsigned long long)x->bytes_total);
    rk_jstr(b, x->why);
    rk_jadd(b, "}");
}

/* The aggregated data: the model's members, ring counts and transfers,
 * and each node's OVERVIEW as it sent it. */
static void print_json(const struct dash *d)
{
    const struct tui_model *m = d->m;
    struct rk_jbuf b = {0};
    rk_jadd(&b, "{\"attached\":");
    rk_jstr(&b, d->o->addr);
    rk_jadd(&b, ",\"anchor\":");
    rk_jstr(&b, m->anchor);
    rk_jadd(&b, ",\"cluster\":");
    rk_jstr(&b, m->cluster);
    rk_jadd(&b,
            ",\"at_ms\":%llu,\"partitions\":%u,\"replicas\":%u,\"read_quorum\":%u,"
            "\"write_quorum\":%u,\"members\":[",
            (unsigned long long)m->now_ms, m->partitions, m->replicas, m->r, m->w);
    for (size_t i = 0; i < m->npeers; i++) {
        rk_jadd(&b, "%s", i ? "," : "");
        json_peer(&b, &m->peers[i]);
    }
    rk_jadd(&b,
            "],\"ring\":{\"placement\":%s,\"no_read_quorum\":%u,\"no_write_quorum\":%u,"
            "\"under_replicated\":%u,\"moving\":%u,\"marked\":%u,\"healthy\":%u,\"cells\":\"",
            m->have_placement ? "true" : "false", m->counts[0], m->counts[1], m->counts[2],
            m->counts[3], m->counts[4], m->healthy);
    for (uint32_t p = 0; m->have_placement && p < m->partitions && p < TUI_MAX_PARTS; p++)
        rk_jadd(&b, "%c", tui_model_cell(m, p));
    rk_jadd(&b, "\"},\"transfers\":[");
    for (size_t i = 0; i < m->nxfers; i++) {
        rk_jadd(&b, "%s", i ? "," : "");
        json_xfer(&b, &m->xfers[i]);
    }
    rk_jadd(&b, "],\"nodes\":[");
    for (size_t i = 0; i < d->nans; i++) {
        const struct tui_answer *a = &d->ans[i];
        rk_jadd(&b, "%s{\"id\":", i ? "," : "");
        rk_jstr(&b, a->id);
        rk_jadd(&b, ",\"addr\":");
        rk_jstr(&b, a->addr);
        rk_jadd(&b, ",\"answered\":%s,\"error\":", a->ok ? "true" : "false");
        rk_jstr(&b, a->error);
        rk_jadd(&b, ",\"overview\":%s}", a->overview ? a->overview : "null");
    }
    rk_jadd(&b, "]}\n");
    if (b.p && !b.oom)
        fputs(b.p, stdout);
    free(b.p);
}

static void term_or_default(int *w, int *h)
{
    struct winsize ws;
    *w = TUI_MIN_W, *h = TUI_MIN_H;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col &&
        ws.ws_row)
        *w = ws.ws_col, *h = ws.ws_row;
}

static int once(struct dash *d)
{
    unsigned wait = d->o->interval_ms * 3 > 3000 ? d->o->interval_ms * 3 : 3000;
    tui_poll_wait_round(d->poll, wait);
    refresh(d); /* learns the members: asks them too */
    tui_poll_wait_round(d->poll, wait);
    refresh(d);
    bool any = false;
    for (size_t i = 0; i < d->nans; i++)
        any = any || d->ans[i].ok;
    if (!any) {
        fprintf(stderr, "ringkvd dashboard: %s did not answer: %s\n", d->o->addr,
                d->nans ? d->ans[0].error : "?");
        return 1;
    }
    if (d->o->json) {
        print_json(d);
        return 0;
    }
    int w, h;
    term_or_default(&w, &h);
    struct tui_grid g;
    if (tui_grid_init(&g, w, h, tui_term_utf8()) < 0)
        return 1;
    tui_render(&g, d->m, &d->ui);
    tui_grid_print(&g, stdout);
    tui_grid_free(&g);
    return 0;
}

int tui_dash_run(const struct tui_dash_opts *o)
{
    struct dash d = {.o = o};
    /* Characters only: LC_NUMERIC stays "C", so no number anywhere in the
     * process (JSON replies of a node run with --dashboard) changes form. */
    setlocale(LC_CTYPE, "");
    unsigned timeout = o->interval_ms < 2000 ? o->interval_ms : 2000;
    if (timeout < 500)
        timeout = 500;
    d.m = calloc(1, sizeof(*d.m));
    if (!d.m || tui_poll_open(&d.poll, o->interval_ms, timeout) < 0) {
        fprintf(stderr, "ringkvd dashboard: out of memory\n");
        free(d.m);
        return 1;
    }
    tui_poll_set_tls(d.poll, o->tls_ca, o->tls_cert, o->tls_key);
    tui_poll_set_key(d.poll, o->secret);
    tui_poll_add(d.poll, "", o->addr);
    d.ui.interval_ms = o->interval_ms;
    d.ui.demo = o->demo != NULL;
    d.ui.focus = TUI_PEERS;
    int rc = o->once ? once(&d) : live(&d);
    tui_poll_close(d.poll);
    tui_poll_snapshot_free(d.ans, d.nans);
    free(d.m);
    return rc;
}

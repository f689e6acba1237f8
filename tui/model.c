/* The dashboard's model: answers in, the cluster picture out (model.h). */
#include "tui/model.h"

#include "client/ajson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char tui_mark_chars[5] = {'X', 'x', 'u', '>', '~'};

char tui_owner_glyph(size_t i)
{
    if (i < 9)
        return (char)('1' + i);
    if (i < 9 + 26)
        return (char)('a' + (i - 9));
    return '+';
}

static double dbl(const struct rk_ajson_val *v)
{
    double x = 0;
    rk_ajson_double(v, &x);
    return x;
}

static struct rk_ajson *parse(const char *json)
{
    struct rk_ajson *d = NULL;
    if (json && rk_ajson_parse(&d, json, strlen(json), RK_AJSON_ONE_LINE) != 0)
        d = NULL;
    return d;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Whether bitmap hex (OVERVIEW's encoding) has partition p. */
static bool bit(const char *hex, size_t len, uint32_t p)
{
    if (!hex || p / 4 >= len)
        return false;
    int v = hexval(hex[p / 4]);
    return v > 0 && (v & (1 << (p % 4)));
}

static struct tui_prev *prev_of(struct tui_model *m, const char *id)
{
    for (size_t i = 0; i < m->nprev; i++)
        if (strcmp(m->prev[i].id, id) == 0)
            return &m->prev[i];
    if (m->nprev == TUI_MAX_PEERS)
        return NULL;
    struct tui_prev *p = &m->prev[m->nprev++];
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof p->id, "%s", id);
    return p;
}

static struct tui_peer *peer_of(struct tui_model *m, const char *id)
{
    for (size_t i = 0; i < m->npeers; i++)
        if (strcmp(m->peers[i].id, id) == 0)
            return &m->peers[i];
    if (m->npeers == TUI_MAX_PEERS)
        return NULL;
    struct tui_peer *p = &m->peers[m->npeers++];
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof p->id, "%s", id);
    snprintf(p->state, sizeof p->state, "unknown");
    p->answer_age_ms = UINT64_MAX;
    p->gets = p->puts = p->dels = p->errors = p->busy = -1;
    p->p50_ms = p->p99_ms = -1;
    p->ae_eta_s = -1;
    return p;
}

/* The quantile q of a histogram's counts in ms, interpolated within the
 * bucket that holds it (bucket i spans bounds[i-1]..bounds[i]); -1 when
 * empty. */
static double quantile(const double *bounds, const uint64_t *c, size_t nb, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= nb; i++)
        total += c[i];
    if (total == 0)
        return -1;
    double want = q * (double)total, run = 0;
    for (size_t i = 0; i <= nb; i++) {
        if (c[i] == 0 || run + (double)c[i] < want) {
            run += (double)c[i];
            continue;
        }
        double lo = i ? bounds[i - 1] : 0, hi = i < nb ? bounds[i] : bounds[nb - 1] * 2;
        return (lo + (hi - lo) * (want - run) / (double)c[i]) / 1000.0;
    }
    return bounds[nb - 1] / 1000.0;
}

static double rate(uint64_t now, uint64_t was, double secs)
{
    return now >= was ? (double)(now - was) / secs : 0;
}

/* Traffic counters and the latency histogram: rates against this node's
 * previous answer. */
static void take_traffic(struct tui_peer *pe, struct tui_prev *pv, const struct rk_ajson_val *r)
{
    uint64_t now = rk_ajson_u64_or0(rk_ajson_member(r, "now_ms"));
    uint64_t get = rk_ajson_u64_or0(rk_ajson_path(r, "requests.get")),
             put = rk_ajson_u64_or0(rk_ajson_path(r, "requests.put"));
    uint64_t del = rk_ajson_u64_or0(rk_ajson_path(r, "requests.del"));
    uint64_t errs = rk_ajson_u64_or0(rk_ajson_member(r, "errors")),
             busy = rk_ajson_u64_or0(rk_ajson_member(r, "busy"));
    const struct rk_ajson_val *b = rk_ajson_path(r, "latency.bounds_us");
    const struct rk_ajson_val *c = rk_ajson_path(r, "latency.counts");
    size_t nb = rk_ajson_count(b);
    if (nb > TUI_LAT_BUCKETS || rk_ajson_count(c) != nb + 1)
        nb = 0;
    uint64_t lat[TUI_LAT_BUCKETS + 1] = {0};
    for (size_t i = 0; i < nb; i++)
        pv->bounds[i] = dbl(rk_ajson_index(b, i));
    for (size_t i = 0; nb && i <= nb; i++)
        lat[i] = rk_ajson_u64_or0(rk_ajson_index(c, i));
    if (pv->now_ms && now > pv->now_ms) {
        double s = (double)(now - pv->now_ms) / 1000.0;
        pe->gets = rate(get, pv->get, s), pe->puts = rate(put, pv->put, s);
        pe->dels = rate(del, pv->del, s);
        pe->errors = rate(errs, pv->errors, s), pe->busy = rate(busy, pv->busy, s);
        if (nb && nb == pv->nlat) {
            for (size_t i = 0; i <= nb; i++)
                pv->dlat[i] = lat[i] >= pv->lat[i] ? lat[i] - pv->lat[i] : 0;
            pe->p50_ms = quantile(pv->bounds, pv->dlat, nb, 0.50);
            pe->p99_ms = quantile(pv->bounds, pv->dlat, nb, 0.99);
        }
    } else if (pv->now_ms == now) {
        return; /* the same answer again: keep the rates of the last one */
    }
    pv->now_ms = now, pv->get = get, pv->put = put, pv->del = del;
    pv->errors = errs, pv->busy = busy, pv->nlat = nb;
    memcpy(pv->lat, lat, sizeof lat);
}

static void take_ae(struct tui_peer *pe, const struct rk_ajson_val *ae)
{
    rk_ajson_bool(rk_ajson_member(ae, "enabled"), &pe->ae_enabled);
    rk_ajson_bool(rk_ajson_member(ae, "in_progress"), &pe->ae_running);
    pe->ae_round = rk_ajson_u64_or0(rk_ajson_member(ae, "round"));
    pe->ae_compared = rk_ajson_u64_or0(rk_ajson_member(ae, "compared"));
    pe->ae_total = rk_ajson_u64_or0(rk_ajson_member(ae, "total"));
    pe->ae_repaired = rk_ajson_u64_or0(rk_ajson_member(ae, "keys_repaired"));
    pe->ae_bytes = rk_ajson_u64_or0(rk_ajson_member(ae, "bytes"));
    pe->ae_kps = dbl(rk_ajson_member(ae, "keys_per_second"));
    pe->ae_max_kps = rk_ajson_u64_or0(rk_ajson_member(ae, "max_keys_per_second"));
    pe->ae_marked = rk_ajson_u64_or0(rk_ajson_member(ae, "marked"));
    const struct rk_ajson_val *eta = rk_ajson_member(ae, "eta_s");
    pe->ae_eta_s = rk_ajson_type(eta) == RK_AJSON_NUMBER ? (int64_t)rk_ajson_u64_or0(eta) : -1;
    pe->ae_peers[0] = '\0';
    size_t used = 0;
    for (const struct rk_ajson_val *e = rk_ajson_first(rk_ajson_member(ae, "peers")); e;
         e = rk_ajson_next(e)) {
        char node[64], res[24];
        rk_ajson_copy_text(node, sizeof node, rk_ajson_member(e, "node"));
        rk_ajson_copy_text(res, sizeof res, rk_ajson_member(e, "result"));
        int w = snprintf(pe->ae_peers + used, sizeof pe->ae_peers - used, "%s%s %s",
                         used ? ", " : "", node, res);
        if (w < 0 || (size_t)w >= sizeof pe->ae_peers - used)
            break;
        used += (size_t)w;
    }
}

#define SAME_EVENT_MS 10000 /* one change seen by several nodes within this is one row */

static void take_events(struct tui_model *m, struct tui_prev *pv, const char *node,
                        const struct rk_ajson_val *evs)
{
    for (const struct rk_ajson_val *e = rk_ajson_first(evs); e; e = rk_ajson_next(e)) {
        uint64_t seq = rk_ajson_u64_or0(rk_ajson_member(e, "seq")),
                 ms = rk_ajson_u64_or0(rk_ajson_member(e, "ms"));
        if (seq <= pv->ev_seq)
            continue;
        pv->ev_seq = seq;
        char txt[128];
        rk_ajson_copy_text(txt, sizeof txt, rk_ajson_member(e, "text"));
        struct tui_event *same = NULL;
        for (size_t i = 0; i < m->nevents && !same; i++) {
            struct tui_event *x = &m->events[i];
            uint64_t d = x->ms > ms ? x->ms - ms : ms - x->ms;
            if (d < SAME_EVENT_MS && strcmp(x->text, txt) == 0 && strcmp(x->node, node) != 0)
                same = x;
        }
        if (same) {
            same->seen_by++;
            continue;
        }
        if (m->nevents == TUI_MAX_EVENTS)
            memmove(&m->events[0], &m->events[1], (--m->nevents) * sizeof(m->events[0]));
        struct tui_event *ev = &m->events[m->nevents++];
        ev->seq = seq, ev->ms = ms, ev->seen_by = 1;
        snprintf(ev->node, sizeof ev->node, "%s", node);
        rk_ajson_copy_text(ev->kind, sizeof ev->kind, rk_ajson_member(e, "kind"));
        snprintf(ev->text, sizeof ev->text, "%s", txt);
    }
}

static int cmp_event(const void *a, const void *b)
{
    const struct tui_event *x = a, *y = b;
    return x->ms < y->ms ? -1 : x->ms > y->ms ? 1 : 0;
}

static void take_xfers(struct tui_model *m, const char *to, const struct rk_ajson_val *rows)
{
    for (const struct rk_ajson_val *e = rk_ajson_first(rows); e && m->nxfers < TUI_MAX_XFERS;
         e = rk_ajson_next(e))
        rk_xfer_row_read(&m->xfers[m->nxfers++], to, e);
}

/* The transfers' totals, from their sources' PARTS answers. */
static void take_sizes(struct tui_model *m, const struct tui_answer *a, size_t n)
{
    for (size_t i = 0; i < n && m->nxfers; i++) {
        struct rk_ajson *d = a[i].parts ? parse(a[i].parts) : NULL;
        if (d)
            rk_xfer_rows_sizes(m->xfers, m->nxfers, a[i].id,
                               rk_ajson_member(rk_ajson_root(d), "parts"));
        rk_ajson_free(d);
    }
}

/* Per-partition marks from every node's bitmaps and the anchor's placement. */
static void take_placement(struct tui_model *m, const struct rk_ajson_val *pl,
                           const struct tui_answer *a, size_t n, struct rk_ajson **docs)
{
    const struct rk_ajson_val *mem = rk_ajson_member(pl, "members");
    const struct rk_ajson_val *serve = rk_ajson_member(pl, "serve");
    const struct rk_ajson_val *pend = rk_ajson_member(pl, "pending");
    size_t nm = rk_ajson_count(mem);
    int16_t map[256];
    for (size_t i = 0; i < nm && i < 256; i++) {
        char id[64];
        rk_ajson_copy_text(id, sizeof id, rk_ajson_index(mem, i));
        struct tui_peer *pe = peer_of(m, id);
        map[i] = pe ? (int16_t)(pe - m->peers) : -1;
    }
    memset(m->counts, 0, sizeof m->counts);
    m->healthy = 0;
    uint32_t np = m->partitions < TUI_MAX_PARTS ? m->partitions : TUI_MAX_PARTS;
    const struct rk_ajson_val *s = rk_ajson_first(serve), *q = rk_ajson_first(pend);
    for (uint32_t p = 0; p < np; p++, s = rk_ajson_next(s), q = rk_ajson_next(q)) {
        struct tui_part *t = &m->part[p];
        memset(t, 0, sizeof(*t));
        t->owner = -1;
        for (const struct rk_ajson_val *e = rk_ajson_first(s); e; e = rk_ajson_next(e)) {
            uint64_t k = rk_ajson_u64_or0(e);
            int16_t pi = k < nm && k < 256 ? map[k] : -1;
            if (pi < 0)
                continue;
            if (t->owner < 0)
                t->owner = pi;
            t->serving++;
            t->live += m->peers[pi].live;
        }
        if (t->live < m->r)
            t->flags |= TUI_P_NO_READ;
        if (t->live < m->w)
            t->flags |= TUI_P_NO_WRITE;
        if (t->live < m->replicas)
            t->flags |= TUI_P_UNDER;
        if (rk_ajson_count(q) > 0)
            t->flags |= TUI_P_MOVING;
        for (size_t i = 0; i < n; i++) {
            size_t len = 0;
            const char *hex = rk_ajson_str(rk_ajson_member(rk_ajson_root(docs[i]), "marked"), &len);
            if (bit(hex, len, p))
                t->flags |= TUI_P_MARKED;
        }
        for (int b = 0; b < 5; b++)
            m->counts[b] += (t->flags >> b) & 1;
        m->healthy += t->flags == 0;
    }
}

static void take_members(struct tui_model *m, const struct tui_answer *anchor)
{
    struct rk_ajson *d = parse(anchor->members);
    if (!d)
        return;
    const struct rk_ajson_val *r = rk_ajson_root(d);
    snprintf(m->anchor, sizeof m->anchor, "%s", anchor->addr);
    rk_ajson_copy_text(m->cluster, sizeof m->cluster, rk_ajson_member(r, "cluster"));
    for (const struct rk_ajson_val *e = rk_ajson_first(rk_ajson_member(r, "members")); e;
         e = rk_ajson_next(e)) {
        char id[64];
        rk_ajson_copy_text(id, sizeof id, rk_ajson_member(e, "id"));
        struct tui_peer *pe = peer_of(m, id);
        if (!pe)
            continue;
        rk_ajson_copy_text(pe->state, sizeof pe->state, rk_ajson_member(e, "state"));
        rk_ajson_copy_text(pe->addr, sizeof pe->addr, rk_ajson_member(e, "client"));
        bool self = false;
        rk_ajson_bool(rk_ajson_member(e, "self"), &self);
        pe->self_anchor = self;
        pe->incarnation = rk_ajson_u64_or0(rk_ajson_member(e, "incarnation"));
        pe->last_heard_ms = rk_ajson_u64_or0(rk_ajson_member(e, "last_heard_ms"));
        pe->rtt_us = rk_ajson_u64_or0(rk_ajson_member(e, "rtt_us"));
        pe->state_for_ms = rk_ajson_u64_or0(rk_ajson_member(e, "state_for_ms"));
        pe->config_match = true;
        rk_ajson_bool(rk_ajson_member(e, "config_match"), &pe->config_match);
        pe->refused[0] = '\0';
    }
    for (const struct rk_ajson_val *e = rk_ajson_first(rk_ajson_member(r, "refused")); e;
         e = rk_ajson_next(e)) {
        char id[64], setting[64], theirs[64], ours[64];
        rk_ajson_copy_text(id, sizeof id, rk_ajson_member(e, "id"));
        rk_ajson_copy_text(setting, sizeof setting, rk_ajson_member(e, "setting"));
        rk_ajson_copy_text(theirs, sizeof theirs, rk_ajson_member(e, "theirs"));
        rk_ajson_copy_text(ours, sizeof ours, rk_ajson_member(e, "ours"));
        struct tui_peer *pe = peer_of(m, id);
        if (pe)
            snprintf(pe->refused, sizeof pe->refused, "refused: %.40s is %.50s there, %.50s here",
                     setting, theirs, ours);
    }
    rk_ajson_free(d);
}

/* The node-wide figures of one OVERVIEW answer. */
static void take_overview(struct tui_model *m, struct tui_peer *pe, const struct rk_ajson_val *r)
{
    struct tui_prev *pv = prev_of(m, pe->id);
    if (pv)
        take_traffic(pe, pv, r);
    pe->uptime_s = rk_ajson_u64_or0(rk_ajson_member(r, "uptime_s"));
    size_t len = 0;
    const char *held = rk_ajson_str(rk_ajson_member(r, "held"), &len);
    pe->held = 0;
    /* Bounded by the text too: a node's claimed partition count is not
     * trusted to size a loop. */
    for (uint32_t p = 0; held && p < m->partitions && p / 4 < len; p++)
        pe->held += bit(held, len, p);
    take_ae(pe, rk_ajson_member(r, "ae"));
    const struct rk_ajson_val *x = rk_ajson_member(r, "transfers");
    pe->xfer_pending = rk_ajson_u64_or0(rk_ajson_member(x, "pending"));
    pe->xfer_active = rk_ajson_u64_or0(rk_ajson_member(x, "active"));
    pe->xfer_done = rk_ajson_u64_or0(rk_ajson_member(x, "done"));
    pe->xfer_failed = rk_ajson_u64_or0(rk_ajson_member(x, "failed"));
    rk_ajson_copy_text(pe->xfer_waiting, sizeof pe->xfer_waiting, rk_ajson_member(x, "waiting"));
    take_xfers(m, pe->id, rk_ajson_member(x, "receiving"));
    if (pv)
        take_events(m, pv, pe->id, rk_ajson_member(r, "events"));
}

/* Hints kept for each member: summed over every node's by_target. */
static void take_hints(struct tui_model *m, struct rk_ajson **docs, size_t n)
{
    for (size_t i = 0; i < m->npeers; i++)
        m->peers[i].hints_for = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rk_ajson_val *bt = rk_ajson_path(rk_ajson_root(docs[i]), "hints.by_target");
        for (const struct rk_ajson_val *e = rk_ajson_first(bt); e; e = rk_ajson_next(e)) {
            const char *id = rk_ajson_key(e, NULL);
            for (size_t k = 0; id && k < m->npeers; k++)
                if (strcmp(m->peers[k].id, id) == 0)
                    m->peers[k].hints_for += rk_ajson_u64_or0(e);
        }
    }
}

/* Cluster traffic of this refresh: sums, and quantiles of the merged
 * last-interval histograms. */
static void take_sample(struct tui_model *m, unsigned interval_ms)
{
    struct tui_sample s = {0};
    uint64_t merged[TUI_LAT_BUCKETS + 1] = {0};
    const double *bounds = NULL;
    size_t nb = 0;
    for (size_t i = 0; i < m->npeers; i++) {
        const struct tui_peer *pe = &m->peers[i];
        if (!pe->answered || pe->gets < 0)
            continue;
        s.gets += pe->gets, s.puts += pe->puts + pe->dels;
        s.errors += pe->errors, s.busy += pe->busy;
        const struct tui_prev *pv = NULL;
        for (size_t k = 0; k < m->nprev && !pv; k++)
            if (strcmp(m->prev[k].id, pe->id) == 0)
                pv = &m->prev[k];
        if (!pv || !pv->nlat || (nb && pv->nlat != nb))
            continue;
        nb = pv->nlat, bounds = pv->bounds;
        for (size_t b = 0; b <= nb; b++)
            merged[b] += pv->dlat[b];
    }
    m->p50_ms = bounds ? quantile(bounds, merged, nb, 0.50) : -1;
    m->p99_ms = bounds ? quantile(bounds, merged, nb, 0.99) : -1;
    /* The screen follows news faster than the refresh: the newest sample
     * is updated in place until an interval has passed. */
    if (m->nhist && m->now_ms < m->hist_ms + interval_ms * 9 / 10) {
        m->hist[m->nhist - 1] = s;
        return;
    }
    if (m->nhist == TUI_HISTORY)
        memmove(&m->hist[0], &m->hist[1], (--m->nhist) * sizeof(m->hist[0]));
    m->hist[m->nhist++] = s;
    m->hist_ms = m->now_ms;
}

void tui_model_update(struct tui_model *m, const struct tui_answer *a, size_t n, uint64_t now_ms,
                      unsigned interval_ms)
{
    m->now_ms = now_ms;
    m->frames++;
    m->nxfers = 0;
    struct rk_ajson *docs[TUI_POLL_MAX] = {0};
    const struct tui_answer *anchor = NULL;
    for (size_t i = 0; i < n; i++) {
        docs[i] = parse(a[i].overview);
        if (a[i].anchor && a[i].members)
            anchor = &a[i];
    }
    if (anchor)
        take_members(m, anchor);
    for (size_t i = 0; i < n; i++) {
        if (!a[i].id[0])
            continue;
        struct tui_peer *pe = peer_of(m, a[i].id);
        if (!pe)
            continue;
        pe->answered = a[i].ok;
        pe->asked = a[i].tried_ms != 0;
        pe->answer_age_ms =
            a[i].ok_ms ? (now_ms > a[i].ok_ms ? now_ms - a[i].ok_ms : 0) : UINT64_MAX;
        pe->took_us = a[i].took_us;
        pe->rx_bytes = a[i].rx_bytes, pe->tx_bytes = a[i].tx_bytes, pe->answers = a[i].answers;
        snprintf(pe->error, sizeof pe->error, "%s", a[i].error);
        if (!pe->addr[0])
            snprintf(pe->addr, sizeof pe->addr, "%s", a[i].addr);
        const struct rk_ajson_val *r = rk_ajson_root(docs[i]);
        if (!r)
            continue;
        if (a[i].anchor || !m->partitions) {
            m->partitions = (uint32_t)rk_ajson_u64_or0(rk_ajson_member(r, "partitions"));
            m->replicas = (uint32_t)rk_ajson_u64_or0(rk_ajson_member(r, "replicas"));
            m->r = (uint32_t)rk_ajson_u64_or0(rk_ajson_member(r, "read_quorum"));
            m->w = (uint32_t)rk_ajson_u64_or0(rk_ajson_member(r, "write_quorum"));
        }
        take_overview(m, pe, r);
    }
    for (size_t i = 0; i < m->npeers; i++) {
        struct tui_peer *pe = &m->peers[i];
        bool heard = !pe->asked || pe->answer_age_ms <= (uint64_t)interval_ms * TUI_STALE_INTERVALS;
        pe->live = strcmp(pe->state, "alive") == 0 && heard;
    }
    take_sizes(m, a, n);
    take_hints(m, docs, n);
    const struct rk_ajson_val *pl = NULL;
    for (size_t i = 0; i < n && !pl; i++)
        if (a[i].anchor)
            pl = rk_ajson_member(rk_ajson_root(docs[i]), "placement");
    m->have_placement = pl != NULL;
    if (pl)
        take_placement(m, pl, a, n, docs);
    qsort(m->events, m->nevents, sizeof(m->events[0]), cmp_event);
    take_sample(m, interval_ms);
    for (size_t i = 0; i < n; i++)
        rk_ajson_free(docs[i]);
}

void tui_model_members(const struct tui_answer *anchor,
                       void (*add)(const char *id, const char *addr, void *arg), void *arg)
{
    struct rk_ajson *d = parse(anchor->members);
    for (const struct rk_ajson_val *e = rk_ajson_first(rk_ajson_path(rk_ajson_root(d), "members"));
         e; e = rk_ajson_next(e)) {
        char id[64], addr[128], state[16];
        rk_ajson_copy_text(id, sizeof id, rk_ajson_member(e, "id"));
        rk_ajson_copy_text(addr, sizeof addr, rk_ajson_member(e, "client"));
        rk_ajson_copy_text(state, sizeof state, rk_ajson_member(e, "state"));
        if (strcmp(state, "left") != 0 && id[0] && addr[0])
            add(id, addr, arg);
    }
    rk_ajson_free(d);
}

char tui_model_cell(const struct tui_model *m, uint32_t p)
{
    const struct tui_part *t = &m->part[p];
    for (int b = 0; b < 5; b++)
        if (t->flags & (1u << b))
            return tui_mark_chars[b];
    return t->owner < 0 ? '?' : tui_owner_glyph((size_t)t->owner);
}

/* Gossip runtime: sockets, timers and message flow around the membership
 * table.
 *
 *   timer (interval) ─► on_tick(): beat, tick (lag forgiven), reap, survey
 *   surveyor RECVFD  ─► on_answers(): merge, heard(responder, RTT)
 *   respondent RECVFD ─► on_surveys(): merge, heard(surveyor), answer
 *
 * Failure cases handled: a member that is down is redialled by nng (a
 * NONBLOCK dial keeps retrying with back-off) and goes suspect, then dead;
 * a late answer to an old survey still counts as heard, without an RTT; a
 * peer whose cluster settings differ is refused and named in the log on
 * both sides (once a minute per peer) and in the refusal list; a
 * malformed payload is dropped and logged (once a minute); our own lagging
 * loop does not accuse others; until any peer has answered, the seeds we
 * keep retrying are logged once a minute.
 */
#include "cluster/gossip.h"
#include "cluster/gossip_wire.h"
#include "util/auth.h"
#include "cluster/peerhold.h"
#include "util/conns.h"
#include "util/nng_close.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/events.h"
#include "util/log.h"
#include "util/nng_rx.h"
#include "util/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/survey0/respond.h>
#include <nng/protocol/survey0/survey.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOCK_BUF         256  /* queued messages per socket: a survey round of big clusters */
#define RECONNECT_MIN_MS 100  /* NNG-NOTES: a restarted peer is redialled in ~30 ms */
#define RECONNECT_MAX_MS 2000 /* back-off cap while a seed or member is down */
#define CLOSE_LIMIT_MS   1000 /* see nng_close.h */
#define MSG_MAX          (RK_GOSSIP_HDR_MAX + RK_MEMBERS_WIRE_MAX)
#define SURVEY_FLAG      0x80000000u /* raw surveyor: the last header word has the top bit */

struct dial {
    char addr[RK_MEMBER_ADDR_MAX + 1];
    nng_dialer d;
};

/* Sources of entries refused for an incarnation too far ahead, each
 * logged at most once a minute: a flood from one address cannot fill the
 * log, and another source is still named. 16 addresses cover a cluster's
 * worth of liars; past that the least recently logged slot is reused. */
#define AHEAD_SOURCES 16

struct rk_gossip {
    struct ev_loop *loop;
    struct rk_gossip_opts o;
    char listen[RK_MEMBER_ADDR_MAX + 1];
    struct rk_gossip_env env; /* ours: kind and digest set per message */
    struct rk_members table;
    nng_socket sv, rs; /* raw surveyor, raw respondent */
    ev_io sv_io, rs_io;
    ev_timer tick, leave, stop;
    uint64_t due_ns;    /* when the current tick was due (mono) */
    uint32_t survey_id; /* of the survey in flight */
    uint64_t survey_ns; /* when it went out (mono) */
    struct dial *dials; /* RK_MEMBERS_MAX */
    size_t ndials;
    char (*seeds)[RK_MEMBER_ADDR_MAX + 1];
    size_t nseeds;
    size_t seen;
    bool reached; /* some peer has answered or surveyed us */
    uint64_t start_ms, lonely_log_ms, malformed_log_ms, lag_log_ms, lags;
    struct rk_gossip_refusal refused[RK_GOSSIP_REFUSALS]; /* most recent first */
    size_t nrefused;
    bool islanded;  /* last verdict of rk_gossip_islanded published */
    int leave_step; /* 0 none, 1 leaving, 2 left (done pending) */
    void (*leave_done)(void *);
    void *leave_arg;
    /* Stop announcement: the survey carrying it, answers still awaited. */
    bool stop_sent;
    uint32_t stop_survey_id;
    size_t stop_waiting;
    void (*stop_done)(void *);
    void *stop_arg;
    struct rk_gossip_stats stats;
    struct rk_log_slot ahead[AHEAD_SOURCES]; /* refused incarnations: last log per source */
    struct rk_holdings own;                  /* ours (holdings.h), saved in o.data_dir */
    uint8_t *hold;                           /* own encoded, refreshed on commit */
    struct rk_peerhold *peers;               /* the others' holdings and placement digests */
    bool peers_dirty;                        /* a member's holdings changed since they were saved */
    bool agreed;
    uint64_t agreed_since_ms;
    char disagree[RK_MEMBER_ID_MAX + 1];
    uint8_t *buf;              /* MSG_MAX: encode buffer */
    struct rk_member *scratch; /* RK_MEMBERS_MAX: decode and encode lists */
};

static uint64_t wall_ms(void)
{
    return rk_clock_wall_ms();
}

/* Agreement (peerhold.h) judged again; true if the verdict changed. */
static bool reagree(struct rk_gossip *g)
{
    bool was = g->agreed;
    g->agreed = rk_peerhold_agreed(g->peers, &g->table, rk_place_digest(&g->table), g->disagree,
                                   sizeof(g->disagree));
    if (g->agreed && !was)
        g->agreed_since_ms = wall_ms();
    return g->agreed != was;
}

static void changed(struct rk_gossip *g)
{
    reagree(g);
    if (g->table.n > g->seen)
        g->seen = g->table.n;
    if (g->o.on_change)
        g->o.on_change(g, g->o.arg);
}

/* Logs ev; true if the table changed in a way the owner should publish. */
static bool log_event(const struct rk_member_event *ev)
{
    switch (ev->change) {
    case RK_MEMBER_STATE:
        rk_info("gossip", "member %s: %s -> %s incarnation=%llu", ev->id,
                rk_member_state_name(ev->from), rk_member_state_name(ev->to),
                (unsigned long long)ev->incarnation);
        rk_event(RK_EVENT_MEMBER, "%s: %s -> %s", ev->id, rk_member_state_name(ev->from),
                 rk_member_state_name(ev->to));
        return true;
    case RK_MEMBER_NEW:
        rk_info("gossip", "member %s joined: state=%s incarnation=%llu", ev->id,
                rk_member_state_name(ev->to), (unsigned long long)ev->incarnation);
        if (ev->to == RK_MEMBER_ALIVE)
            rk_event(RK_EVENT_MEMBER, "%s joined", ev->id);
        else
            rk_event(RK_EVENT_MEMBER, "%s joined: %s", ev->id, rk_member_state_name(ev->to));
        return true;
    case RK_MEMBER_REFUTED:
        rk_warn("gossip", "refuted a suspicion of this node: incarnation=%llu",
                (unsigned long long)ev->incarnation);
        return false;
    default:
        return false;
    }
}

/* ---- dialling ---- */

static bool is_self_addr(const struct rk_gossip *g, const char *addr)
{
    return strcmp(addr, g->listen) == 0 || strcmp(addr, g->table.m[g->table.self].gossip_addr) == 0;
}

/* Dial a gossip address once; nng keeps redialling it with back-off. */
static int dial(struct rk_gossip *g, const char *addr)
{
    if (!addr[0] || is_self_addr(g, addr))
        return 0;
    for (size_t i = 0; i < g->ndials; i++)
        if (strcmp(g->dials[i].addr, addr) == 0)
            return 0;
    if (g->ndials == RK_MEMBERS_MAX)
        return -ENOBUFS;
    nng_dialer d;
    int rv = rk_tls_node_dialer(&d, g->sv, addr); /* tls+tcp:// when the node has TLS */
    if (rv == 0) {
        nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
        nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
        nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, MSG_MAX);
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
        if (rv != 0)
            nng_dialer_close(d);
    }
    if (rv != 0) {
        rk_warn("gossip", "cannot dial %s: %s", addr, nng_strerror(rv));
        return RK_EINVAL;
    }
    struct dial *e = &g->dials[g->ndials++];
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    e->d = d;
    return 0;
}

/* ---- messages ---- */

static bool signing(const struct rk_gossip *g)
{
    return g->o.auth && g->o.auth->on;
}

/* A message with our envelope and either our whole table (self first) or
 * our own entry alone. NULL when out of memory. */
static nng_msg *encode(struct rk_gossip *g, uint8_t kind, bool whole)
{
    const struct rk_members *t = &g->table;
    size_t k = 0, tlen;
    g->scratch[k++] = t->m[t->self];
    for (size_t i = 0; whole && i < t->n; i++)
        if (i != t->self)
            g->scratch[k++] = t->m[i];
    g->env.kind = kind;
    g->env.digest = rk_members_digest(t);
    g->env.place = rk_place_digest(t);
    g->env.hold = g->hold;
    g->env.hold_len = (uint32_t)rk_holdings_wire_len(g->own.parts);
    size_t hl = rk_gossip_env_encode(&g->env, g->buf);
    size_t room = MSG_MAX - RK_AUTH_TRAILER; /* always left for the trailer */
    nng_msg *msg;
    if (hl == 0 || rk_members_encode(g->scratch, k, g->buf + hl, room - hl, &tlen) < 0 ||
        nng_msg_alloc(&msg, 0) != 0)
        return NULL;
    size_t len = hl + tlen;
    if (signing(g)) {
        g->buf[2] = RK_GOSSIP_SIGNED;
        len += RK_AUTH_TRAILER;
        rk_auth_seal(&g->o.auth->gossip, g->buf, len, wall_ms());
    }
    if (nng_msg_append(msg, g->buf, len) != 0) {
        nng_msg_free(msg);
        return NULL;
    }
    return msg;
}

/* Record (or refresh) the refusal of who; dialled: it refused in its
 * answer to our survey. Logged once a minute per peer, or at once when
 * the setting named changes. */
static void refuse(struct rk_gossip *g, const struct rk_member *who, const char *setting,
                   const char *theirs, const char *ours, bool dialled)
{
    uint64_t now = wall_ms();
    size_t i = 0;
    while (i < g->nrefused && strcmp(g->refused[i].id, who->id) != 0)
        i++;
    bool known = i < g->nrefused;
    struct rk_gossip_refusal r = known ? g->refused[i] : (struct rk_gossip_refusal){0};
    bool fresh = !known || now - r.logged_ms >= RK_LOG_EVERY_MS || strcmp(r.setting, setting) != 0;
    if (!known && g->nrefused < RK_GOSSIP_REFUSALS)
        g->nrefused++;
    if (i == g->nrefused) /* full: the oldest goes */
        i = g->nrefused - 1;
    r.at_ms = now;
    if (dialled)
        r.dialled_ms = now;
    if (fresh)
        r.logged_ms = now;
    snprintf(r.id, sizeof(r.id), "%s", who->id);
    snprintf(r.addr, sizeof(r.addr), "%s", who->gossip_addr);
    snprintf(r.setting, sizeof(r.setting), "%s", setting);
    snprintf(r.theirs, sizeof(r.theirs), "%s", theirs);
    snprintf(r.ours, sizeof(r.ours), "%s", ours);
    memmove(&g->refused[1], &g->refused[0], i * sizeof(r)); /* most recent first */
    g->refused[0] = r;
    if (fresh)
        rk_error("gossip",
                 "refused node %s at %s: %s differs (theirs %s, ours %s); it cannot join this "
                 "cluster until the settings match",
                 who->id, who->gossip_addr[0] ? who->gossip_addr : "?", setting, theirs, ours);
}

/* Drop the refusal of id (accepted or removed); true if there was one. */
static bool unrefuse(struct rk_gossip *g, const char *id)
{
    for (size_t i = 0; i < g->nrefused; i++) {
        if (strcmp(g->refused[i].id, id) != 0)
            continue;
        memmove(&g->refused[i], &g->refused[i + 1], (g->nrefused - i - 1) * sizeof(g->refused[0]));
        g->nrefused--;
        return true;
    }
    return false;
}

/* Drop refusals not renewed for dead_after: the peer stopped, or stopped
 * trying, as a member silent that long is dead. */
static void expire_refusals(struct rk_gossip *g, uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < g->nrefused; i++)
        if (now < g->refused[i].at_ms || now - g->refused[i].at_ms < g->o.dead_after_ms)
            g->refused[k++] = g->refused[i];
    g->nrefused = k;
}

/* Publish (on_change) when the island verdict flips: the owner refuses
 * client requests while it holds. */
static void recheck_island(struct rk_gossip *g)
{
    bool now = rk_gossip_islanded(g, NULL, 0);
    if (now == g->islanded)
        return;
    g->islanded = now;
    if (now) {
        char why[400];
        rk_gossip_islanded(g, why, sizeof(why));
        rk_error("gossip", "%s", why);
    } else {
        rk_info("gossip", "no longer cut off from the cluster");
    }
    changed(g);
}

/* "127.0.0.1:7402", the remote end of the connection m came on, or "?". */
static void msg_source(nng_msg *m, char *out, size_t len)
{
    nng_sockaddr sa;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (nng_pipe_get_addr(nng_msg_get_pipe(m), NNG_OPT_REMADDR, &sa) != 0) {
        snprintf(out, len, "?");
    } else if (sa.s_family == NNG_AF_INET) {
        inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip));
        snprintf(out, len, "%s:%u", ip, ntohs(sa.s_in.sa_port));
    } else if (sa.s_family == NNG_AF_INET6) {
        inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%u", ip, ntohs(sa.s_in6.sa_port));
    } else {
        snprintf(out, len, "?");
    }
}

/* An entry whose incarnation is further ahead of our clock than
 * cluster.max_clock_skew (members.h): counted, logged once a minute per
 * source, never merged. */
static void refused_ahead(struct rk_gossip *g, nng_msg *msg, const struct rk_member_event *ev,
                          uint64_t now)
{
    char src[64];
    g->stats.incarnations_refused++;
    msg_source(msg, src, sizeof(src));
    uint64_t skipped;
    if (!rk_log_due_from(g->ahead, AHEAD_SOURCES, src, now, &skipped))
        return;
    rk_warn("gossip",
            "refused news of member %s from %s: incarnation %llu is %llu ms ahead of "
            "this node's clock (cluster.max_clock_skew = %llu ms); %llu more refused since",
            ev->id, src, (unsigned long long)ev->incarnation,
            (unsigned long long)(ev->incarnation - now), (unsigned long long)g->o.max_clock_skew_ms,
            (unsigned long long)skipped);
}

enum { TAKEN, REFUSED, DROPPED };

/* With a secret, msg must be signed with it (version 3; checked, then
 * *len drops the trailer); without one, a signed message is refused too:
 * this node cannot tell a member from anyone else. Refusals are counted
 * and logged by the secret's owner; false: drop msg, answer nothing. */
static bool trusted(struct rk_gossip *g, nng_msg *msg, size_t *len)
{
    const uint8_t *p = nng_msg_body(msg);
    bool signed_msg = *len >= 3 && p[2] == RK_GOSSIP_SIGNED;
    enum rk_auth_verdict v = RK_AUTH_OK;
    if (signing(g))
        v = signed_msg ? rk_auth_check(g->o.auth, &g->o.auth->gossip, p, *len, true)
                       : RK_AUTH_MISSING;
    else if (signed_msg)
        v = RK_AUTH_NO_SECRET;
    if (v == RK_AUTH_OK) {
        if (signed_msg)
            *len -= RK_AUTH_TRAILER;
        return true;
    }
    char src[64];
    msg_source(msg, src, sizeof(src));
    if (g->o.auth)
        rk_auth_refused(g->o.auth, RK_AUTH_GOSSIP, v, src);
    return false;
}

/* Decode and merge a received message. TAKEN: *from is the sender's id
 * (copied) and *env its envelope; REFUSED: other cluster settings,
 * nothing merged; DROPPED: malformed. */
static int take(struct rk_gossip *g, nng_msg *msg, struct rk_gossip_env *env, char *from,
                bool dialled)
{
    const uint8_t *p = nng_msg_body(msg);
    size_t len = nng_msg_len(msg), used, n = 0;
    g->stats.bytes_in += len;
    if (!trusted(g, msg, &len))
        return DROPPED;
    int rc = rk_gossip_env_decode(p, len, env, &used);
    if (rc == 0)
        rc = rk_members_decode(p + used, len - used, g->scratch, RK_MEMBERS_MAX, &n);
    if (rc < 0 || n == 0) {
        uint64_t now = wall_ms();
        if (rk_log_due(&g->malformed_log_ms, now)) {
            rk_warn("gossip", "dropped a gossip message of %zu bytes: %s", len,
                    rc == RK_EUNSUPPORTED ? "unsupported version" : "malformed");
        }
        return DROPPED;
    }
    char theirs[RK_GOSSIP_NAME_MAX + 1], ours[RK_GOSSIP_NAME_MAX + 1];
    const char *setting = rk_gossip_env_mismatch(env, &g->env, theirs, ours);
    if (setting) {
        refuse(g, &g->scratch[0], setting, theirs, ours, dialled);
        return REFUSED;
    }
    snprintf(from, RK_MEMBER_ID_MAX + 1, "%s", g->scratch[0].id);
    unrefuse(g, from); /* its settings match now */
    uint64_t now = wall_ms();
    bool publish = false;
    if (strcmp(from, g->table.m[g->table.self].id) != 0 &&
        rk_peerhold_take(g->peers, from, env->place, env->hold, env->hold_len, &publish) < 0)
        rk_warn("gossip", "holdings from %s: malformed, ignored", from);
    g->peers_dirty |= publish;
    for (size_t i = 0; i < n; i++) {
        struct rk_member_event ev = {0};
        int mrc = rk_members_merge(&g->table, &g->scratch[i], now, &ev);
        if (mrc == RK_EREFUSED) {
            refused_ahead(g, msg, &ev, now);
            continue;
        }
        if (mrc == 0 && log_event(&ev))
            publish = true;
        if (g->scratch[i].state != RK_MEMBER_LEFT)
            dial(g, g->scratch[i].gossip_addr);
    }
    if (!g->reached && strcmp(from, g->table.m[g->table.self].id) != 0) {
        g->reached = true;
        rk_info("gossip", "reached the cluster through %s (%zu members known)", from, g->table.n);
    }
    if (publish)
        changed(g);
    else if (reagree(g))
        changed(g);
    return TAKEN;
}

/* ---- respondent: surveys in, answers out ---- */

static void answer(struct rk_gossip *g, nng_msg *msg)
{
    struct rk_gossip_env env;
    char from[RK_MEMBER_ID_MAX + 1] = "";
    int rc = take(g, msg, &env, from, false);
    if (rc == DROPPED) {
        nng_msg_free(msg);
        return;
    }
    if (rc == TAKEN)
        rk_members_heard(&g->table, from, wall_ms(), 0);
    /* A refused peer gets our own entry so it can name the mismatch too. */
    bool whole = rc == TAKEN && env.digest != rk_members_digest(&g->table);
    nng_msg *body = encode(g, RK_GOSSIP_ANSWER, whole);
    /* The reply keeps the request's header (pipe id and survey id): raw
     * mode routes it back by that. */
    nng_msg_clear(msg);
    size_t len = body ? nng_msg_len(body) : 0;
    if (!body || nng_msg_append(msg, nng_msg_body(body), len) != 0 ||
        nng_sendmsg(g->rs, msg, NNG_FLAG_NONBLOCK) != 0)
        nng_msg_free(msg);
    else
        g->stats.bytes_out += len;
    if (body)
        nng_msg_free(body);
}

static void answer_msg(void *arg, nng_msg *msg)
{
    answer(arg, msg);
}

static void on_surveys(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    struct rk_gossip *g = io->data;
    rk_nng_rx_batch(g->rs, RK_NNG_RX_BATCH, answer_msg, g);
}

/* ---- surveyor: answers in ---- */

static void stop_announced(struct rk_gossip *g);

/* An answer to the stop survey: that peer has merged our stop. */
static void stop_answered(struct rk_gossip *g, uint32_t id)
{
    if (!g->stop_done || id != g->stop_survey_id || g->stop_waiting == 0)
        return;
    if (--g->stop_waiting == 0)
        stop_announced(g);
}

/* One answer to a survey: merged; its sender heard, with the round trip
 * when it answers the survey in flight (raw surveyor: the survey id is
 * the header's last word). */
static void take_answer(void *arg, nng_msg *msg)
{
    struct rk_gossip *g = arg;
    uint32_t id = 0;
    size_t hl = nng_msg_header_len(msg);
    if (hl >= 4) {
        const uint8_t *h = (const uint8_t *)nng_msg_header(msg) + hl - 4;
        id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    }
    struct rk_gossip_env env;
    char from[RK_MEMBER_ID_MAX + 1] = "";
    g->stats.answers++;
    int rc = take(g, msg, &env, from, true);
    if (rc == TAKEN) {
        uint64_t rtt_us = id == g->survey_id ? (rk_clock_mono_ns() - g->survey_ns) / 1000 : 0;
        rk_members_heard(&g->table, from, wall_ms(),
                         (uint32_t)(rtt_us > UINT32_MAX ? UINT32_MAX : rtt_us));
        stop_answered(g, id);
    }
    nng_msg_free(msg);
    if (rc != DROPPED)
        recheck_island(g);
}

static void on_answers(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    struct rk_gossip *g = io->data;
    rk_nng_rx_batch(g->sv, RK_NNG_RX_BATCH, take_answer, g);
}

/* Peers the survey reaches: the members we dial that look reachable. */
static size_t connected(const struct rk_gossip *g)
{
    size_t k = 0;
    for (size_t i = 0; i < g->table.n; i++)
        if (i != g->table.self &&
            (g->table.m[i].state == RK_MEMBER_ALIVE || g->table.m[i].state == RK_MEMBER_LEAVING ||
             g->table.m[i].state == RK_MEMBER_SUSPECT))
            k++;
    return k;
}

static void send_survey(struct rk_gossip *g)
{
    nng_msg *msg = encode(g, RK_GOSSIP_SURVEY, true);
    if (!msg)
        return;
    g->survey_id = ((g->survey_id + 1) & ~SURVEY_FLAG) | SURVEY_FLAG;
    g->survey_ns = rk_clock_mono_ns();
    size_t len = nng_msg_len(msg);
    if (nng_msg_header_append_u32(msg, g->survey_id) != 0 ||
        nng_sendmsg(g->sv, msg, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(msg);
        return;
    }
    /* One survey goes to every connected peer: count each copy. */
    g->stats.surveys++;
    g->stats.bytes_out += len * connected(g);
}

/* ---- the interval ---- */

static void log_lonely(struct rk_gossip *g)
{
    uint64_t now = wall_ms();
    /* Not before suspect_after: a first answer needs a few intervals. */
    if (g->reached || g->ndials == 0 || now - g->start_ms < g->o.suspect_after_ms ||
        !rk_log_due(&g->lonely_log_ms, now))
        return;
    char list[512] = "";
    size_t o = 0;
    for (size_t i = 0; i < g->ndials && o < sizeof(list); i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", g->dials[i].addr);
    rk_warn("gossip",
            "no peer has answered yet; retrying %s with back-off (check cluster.seeds "
            "and that those nodes run)",
            list);
}

/* cluster.auto_remove_after: what an operator's `kvctl remove` would do
 * once a member has been dead that long. Every node may decide it; the
 * verdicts agree (LEFT at the member's incarnation). */
static bool auto_remove(struct rk_gossip *g, uint64_t now)
{
    bool any = false;
    for (size_t i = 0; g->o.auto_remove_ms && i < g->table.n; i++) {
        const struct rk_member *e = &g->table.m[i];
        if (e->state != RK_MEMBER_DEAD || now < e->state_since_ms ||
            now - e->state_since_ms < g->o.auto_remove_ms)
            continue;
        char id[RK_MEMBER_ID_MAX + 1];
        snprintf(id, sizeof(id), "%s", e->id);
        if (rk_members_remove(&g->table, id, false, now, NULL) == 0) {
            rk_warn("gossip", "removed member %s: dead for %llu s (cluster.auto_remove_after)", id,
                    (unsigned long long)(g->o.auto_remove_ms / 1000));
            rk_event(RK_EVENT_MEMBER, "%s removed: dead for %llu s", id,
                     (unsigned long long)(g->o.auto_remove_ms / 1000));
            any = true;
        }
    }
    return any;
}

/* Our loop ran late (paused, overloaded): say so, at most once a minute. */
static void log_lag(struct rk_gossip *g, uint64_t lag_ms)
{
    uint64_t now = wall_ms();
    g->lags++;
    if (!rk_log_due(&g->lag_log_ms, now))
        return;
    rk_warn("gossip",
            "this node's loop ran %llu ms late (%llu late runs since the last such "
            "line); not counting that time against peers",
            (unsigned long long)lag_ms, (unsigned long long)g->lags);
    g->lags = 0;
}

/* The others' holdings, once per interval at most (peerhold.h). */
static void save_peers(struct rk_gossip *g)
{
    if (!g->peers_dirty || !g->o.data_dir)
        return;
    g->peers_dirty = false;
    int rc = rk_peerhold_save(g->peers, g->o.data_dir);
    if (rc < 0)
        rk_warn("gossip", "cannot save %s/%s: %s", g->o.data_dir, RK_PEERHOLD_FILE,
                rk_strerror(rc));
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_gossip *g = t->data;
    uint64_t now_ns = rk_clock_mono_ns(), interval_ns = g->o.interval_ms * 1000000;
    /* Lag: how late this tick ran. Time we were not running is not
     * silence of the others (Lifeguard). */
    uint64_t lag_ms = now_ns > g->due_ns + interval_ns / 2 ? (now_ns - g->due_ns) / 1000000 : 0;
    if (lag_ms)
        log_lag(g, lag_ms);
    g->due_ns = now_ns + interval_ns;
    struct rk_member_event ev[64];
    size_t n = 0;
    uint64_t now = wall_ms();
    rk_members_beat(&g->table);
    rk_members_tick(&g->table, now, g->o.suspect_after_ms, g->o.dead_after_ms, lag_ms, ev, 64, &n);
    bool publish = n > 0;
    for (size_t i = 0; i < n && i < 64; i++)
        log_event(&ev[i]);
    if (auto_remove(g, now))
        publish = true;
    /* Departed members stay visible (as left) for a while, then go. */
    size_t reaped = rk_members_reap(&g->table, now, 10 * g->o.dead_after_ms);
    if (reaped) {
        rk_info("gossip", "forgot %zu member(s) that left", reaped);
        rk_peerhold_prune(g->peers, &g->table);
        publish = true;
    }
    if (publish || reagree(g))
        changed(g);
    save_peers(g);
    expire_refusals(g, now);
    recheck_island(g);
    log_lonely(g);
    send_survey(g);
}

/* ---- leaving ---- */

static void on_leave_step(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct rk_gossip *g = t->data;
    if (g->leave_step == 1 && rk_holdings_count(&g->own) > 0) {
        /* Our partitions' new owners are still receiving them from us
         * (docs/TRANSFERS.md §4): each copy is dropped once they hold it,
         * and we leave once nothing is held here. */
        ev_timer_set(t, (double)g->o.interval_ms / 1000.0, 0.0);
        ev_timer_start(loop, t);
        return;
    }
    if (g->leave_step == 1) {
        rk_members_left(&g->table, wall_ms());
        rk_info("gossip", "left the cluster: incarnation=%llu",
                (unsigned long long)g->table.m[g->table.self].incarnation);
        rk_event(RK_EVENT_NODE, "this node left the cluster");
        g->leave_step = 2;
        changed(g);
        send_survey(g);
        ev_timer_set(t, (double)g->o.interval_ms / 1000.0, 0.0);
        ev_timer_start(loop, t);
        return;
    }
    if (g->leave_done)
        g->leave_done(g->leave_arg);
}

int rk_gossip_leave(struct rk_gossip *g, void (*done)(void *arg), void *arg)
{
    if (g->leave_step || rk_members_leave(&g->table, wall_ms()) < 0)
        return RK_EINVAL;
    rk_info("gossip", "leaving the cluster: incarnation=%llu",
            (unsigned long long)g->table.m[g->table.self].incarnation);
    rk_event(RK_EVENT_NODE, "this node is leaving the cluster: handing its partitions over");
    g->leave_step = 1;
    g->leave_done = done;
    g->leave_arg = arg;
    changed(g);
    send_survey(g);
    ev_timer_init(&g->leave, on_leave_step, 2.0 * (double)g->o.interval_ms / 1000.0, 0.0);
    g->leave.data = g;
    ev_timer_start(g->loop, &g->leave);
    return 0;
}

/* ---- graceful stop ---- */

/* Every peer told, or the wait is over: hand back to the owner, once. */
static void stop_announced(struct rk_gossip *g)
{
    void (*done)(void *) = g->stop_done;
    ev_timer_stop(g->loop, &g->stop);
    g->stop_done = NULL;
    if (g->stop_waiting)
        rk_warn("gossip", "stop announced; %zu peer(s) did not confirm in time", g->stop_waiting);
    else
        rk_info("gossip", "stop announced; every peer confirmed");
    if (done)
        done(g->stop_arg);
}

static void on_stop_wait(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    stop_announced(t->data);
}

int rk_gossip_stopping(struct rk_gossip *g, uint64_t wait_ms, void (*done)(void *arg), void *arg)
{
    if (g->stop_sent || rk_members_stop(&g->table, wall_ms()) < 0)
        return RK_EINVAL;
    g->stop_sent = true;
    rk_info("gossip", "stopping: telling %zu peer(s) this node is down, incarnation=%llu",
            connected(g), (unsigned long long)g->table.m[g->table.self].incarnation);
    /* Answers awaited: the peers we would expect to answer any survey. A
     * silent (suspect) one may be gone; the wait bounds it. */
    g->stop_waiting = connected(g);
    g->stop_done = done;
    g->stop_arg = arg;
    changed(g);
    send_survey(g);
    g->stop_survey_id = g->survey_id;
    ev_timer_init(&g->stop, on_stop_wait, g->stop_waiting ? (double)wait_ms / 1000.0 : 0.0, 0.0);
    g->stop.data = g;
    ev_timer_start(g->loop, &g->stop);
    return 0;
}

/* ---- operator commands ---- */

int rk_gossip_join(struct rk_gossip *g, const char *addr, char *err, size_t errlen)
{
    int rc = dial(g, addr);
    if (rc < 0)
        snprintf(err, errlen, "cannot dial %s (want tcp://HOST:PORT)", addr);
    else
        rk_info("gossip", "join: dialling %s", addr);
    return rc < 0 ? RK_EINVAL : 0;
}

int rk_gossip_remove(struct rk_gossip *g, const char *id, bool force)
{
    struct rk_member_event ev = {0};
    int rc = rk_members_remove(&g->table, id, force, wall_ms(), &ev);
    if (rc == 0)
        unrefuse(g, id); /* out of the ring: its refusal is moot */
    if (rc == 0 && ev.change == RK_MEMBER_STATE) {
        rk_info("gossip", "removed member %s (was %s)%s", id, rk_member_state_name(ev.from),
                force ? " by force" : "");
        rk_event(RK_EVENT_MEMBER, "%s removed (was %s)%s", id, rk_member_state_name(ev.from),
                 force ? " by force" : "");
        changed(g);
        send_survey(g);
    }
    return rc;
}

const struct rk_members *rk_gossip_members(const struct rk_gossip *g)
{
    return &g->table;
}

void rk_gossip_stats(const struct rk_gossip *g, struct rk_gossip_stats *out)
{
    *out = g->stats;
}

size_t rk_gossip_seen(const struct rk_gossip *g)
{
    return g->seen;
}

size_t rk_gossip_refusals(const struct rk_gossip *g, const struct rk_gossip_refusal **out)
{
    *out = g->refused;
    return g->nrefused;
}

bool rk_gossip_islanded(const struct rk_gossip *g, char *why, size_t len)
{
    uint64_t now = wall_ms();
    const struct rk_gossip_refusal *by = NULL;
    for (size_t i = 0; i < g->nrefused && !by; i++)
        if (g->refused[i].dialled_ms && now >= g->refused[i].dialled_ms &&
            now - g->refused[i].dialled_ms < g->o.dead_after_ms)
            by = &g->refused[i]; /* most recent first */
    if (!by)
        return false;
    for (size_t i = 0; i < g->table.n; i++)
        if (i != g->table.self &&
            (g->table.m[i].state == RK_MEMBER_ALIVE || g->table.m[i].state == RK_MEMBER_LEAVING))
            return false;
    if (why && len)
        snprintf(why, len,
                 "cut off from the cluster: node %s at %s refused this node (%s differs: theirs "
                 "%s, ours %s) and no member is reachable; fix the setting and restart",
                 by->id, by->addr[0] ? by->addr : "?", by->setting, by->theirs, by->ours);
    return true;
}

/* ---- life cycle ---- */

static int watch(struct rk_gossip *g, nng_socket s, ev_io *io,
                 void (*cb)(struct ev_loop *, ev_io *, int))
{
    int fd;
    int rv = nng_socket_get_int(s, NNG_OPT_RECVFD, &fd);
    if (rv != 0)
        return rv;
    ev_io_init(io, cb, fd, EV_READ);
    io->data = g;
    ev_io_start(g->loop, io);
    return 0;
}

static int open_sockets(struct rk_gossip *g, char *err, size_t errlen)
{
    nng_listener l;
    int rv = nng_surveyor0_open_raw(&g->sv);
    if (rv == 0)
        rv = nng_respondent0_open_raw(&g->rs);
    nng_socket socks[] = {g->sv, g->rs};
    for (size_t i = 0; rv == 0 && i < 2; i++) {
        rv = nng_socket_set_size(socks[i], NNG_OPT_RECVMAXSZ, MSG_MAX);
        if (rv == 0)
            rv = nng_socket_set_int(socks[i], NNG_OPT_RECVBUF, SOCK_BUF);
        if (rv == 0)
            rv = nng_socket_set_int(socks[i], NNG_OPT_SENDBUF, SOCK_BUF);
    }
    if (rv != 0) {
        snprintf(err, errlen, "gossip sockets: %s", nng_strerror(rv));
        return -ENOMEM;
    }
    char url[sizeof(g->listen) + 8];
    rv = rk_tls_node_url(g->listen, url, sizeof(url)) ? NNG_EADDRINVAL : 0;
    if (rv == 0 && g->o.conns) {
        rv = rk_conns_watch(g->o.conns, g->rs);
        if (rv == 0)
            rv = rk_conns_listener_create(g->o.conns, g->rs, url, "gossip", &l);
    } else if (rv == 0) {
        rv = nng_listener_create(&l, g->rs, url);
    }
    if (rv == 0)
        rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, MSG_MAX);
    if (rv == 0)
        rv = rk_tls_node_listener(l, true); /* mutual TLS: members only */
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    if (rv != 0) {
        snprintf(err, errlen, "bind %s: %s%s", g->listen,
                 rv == NNG_EADDRINUSE ? "address in use" : nng_strerror(rv),
                 rv == NNG_EADDRINUSE ? " (is another ringkvd running?)"
                 : rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP
                     ? " (listen.gossip wants tcp://HOST:PORT)"
                     : "");
        return -EADDRINUSE;
    }
    rv = watch(g, g->sv, &g->sv_io, on_answers);
    if (rv == 0)
        rv = watch(g, g->rs, &g->rs_io, on_surveys);
    if (rv != 0) {
        snprintf(err, errlen, "gossip receive fds: %s", nng_strerror(rv));
        return -EIO;
    }
    return 0;
}

static int copy_opts(struct rk_gossip *g, const struct rk_gossip_opts *o)
{
    g->o = *o;
    snprintf(g->listen, sizeof(g->listen), "%s", o->listen);
    snprintf(g->env.name, sizeof(g->env.name), "%s", o->cluster_name);
    g->env.partitions = o->partitions;
    g->env.replicas = o->replicas;
    g->seeds = calloc(o->nseeds ? o->nseeds : 1, sizeof(*g->seeds));
    if (!g->seeds)
        return -ENOMEM;
    for (size_t i = 0; i < o->nseeds; i++)
        snprintf(g->seeds[i], sizeof(g->seeds[i]), "%s", o->seeds[i]);
    g->nseeds = o->nseeds;
    g->o.seeds = NULL; /* ours are in g->seeds */
    return 0;
}

int rk_gossip_start(struct rk_gossip **out, struct ev_loop *loop, const struct rk_gossip_opts *o,
                    char *err, size_t errlen)
{
    struct rk_gossip *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->loop = loop;
    g->buf = malloc(MSG_MAX);
    g->scratch = calloc(RK_MEMBERS_MAX, sizeof(*g->scratch));
    g->dials = calloc(RK_MEMBERS_MAX, sizeof(*g->dials));
    int rc = g->buf && g->scratch && g->dials ? copy_opts(g, o) : -ENOMEM;
    if (rc == 0 && (rk_holdings_init(&g->own, o->partitions) < 0 ||
                    !(g->hold = malloc(rk_holdings_wire_len(o->partitions))) ||
                    rk_peerhold_create(&g->peers, o->partitions) < 0))
        rc = -ENOMEM;
    if (rc == 0 && o->holdings)
        rk_holdings_copy(&g->own, o->holdings);
    if (rc == 0)
        rk_holdings_encode(&g->own, g->hold);
    if (rc == 0 && o->data_dir) {
        int lrc = rk_peerhold_load(g->peers, o->data_dir);
        if (lrc < 0 && lrc != RK_ENOTFOUND)
            rk_warn("gossip", "ignoring %s/%s: %s; the members' holdings come from gossip",
                    o->data_dir, RK_PEERHOLD_FILE, rk_strerror(lrc));
    }
    if (rc < 0)
        snprintf(err, errlen, "gossip: out of memory");
    if (rc == 0 && (rk_members_init(&g->table, o->self, wall_ms()) < 0 || !g->env.name[0])) {
        snprintf(err, errlen, "gossip: invalid node id, address or cluster name");
        rc = RK_EINVAL;
    }
    if (rc == 0)
        rk_members_bound_incarnations(&g->table, o->max_clock_skew_ms);
    if (rc == 0)
        rc = open_sockets(g, err, errlen);
    if (rc < 0) {
        rk_gossip_stop(g);
        return rc;
    }
    g->seen = 1;
    g->start_ms = wall_ms();
    /* Remembered members go back into the table at once (their last
     * known incarnation and state, heard "now"), so the ring is whole
     * from the first request; silence convicts them as usual. */
    for (size_t i = 0; i < o->nknown; i++) {
        if (strcmp(o->known[i].id, o->self->id) == 0 || o->known[i].state == RK_MEMBER_LEFT)
            continue;
        rk_members_merge(&g->table, &o->known[i], g->start_ms, NULL);
        dial(g, o->known[i].gossip_addr);
    }
    if (g->table.n > g->seen)
        g->seen = g->table.n;
    reagree(g); /* a cluster of one agrees with itself at once */
    for (size_t i = 0; i < g->nseeds; i++)
        dial(g, g->seeds[i]);
    if (g->ndials == 0)
        g->reached = true;                     /* only ourselves to reach: a cluster of one */
    g->survey_id = nng_random() | SURVEY_FLAG; /* distinct across restarts */
    /* The first survey goes out at once: a joining node learns the
     * cluster one interval sooner. */
    double iv = (double)o->interval_ms / 1000.0;
    ev_timer_init(&g->tick, on_tick, 0.0, iv);
    g->tick.data = g;
    g->due_ns = rk_clock_mono_ns();
    ev_timer_start(loop, &g->tick);
    *out = g;
    return 0;
}

void rk_gossip_stop(struct rk_gossip *g)
{
    if (!g)
        return;
    ev_timer_stop(g->loop, &g->tick);
    ev_timer_stop(g->loop, &g->leave);
    ev_timer_stop(g->loop, &g->stop);
    /* Stop watching the receive fds before closing: nng owns them. */
    ev_io_stop(g->loop, &g->sv_io);
    ev_io_stop(g->loop, &g->rs_io);
    if (nng_socket_id(g->sv) > 0)
        rk_nng_close_bounded(g->sv, CLOSE_LIMIT_MS, "gossip surveyor");
    if (nng_socket_id(g->rs) > 0)
        rk_nng_close_bounded(g->rs, CLOSE_LIMIT_MS, "gossip respondent");
    free(g->seeds);
    free(g->dials);
    free(g->scratch);
    free(g->buf);
    rk_holdings_fini(&g->own);
    free(g->hold);
    rk_peerhold_free(g->peers);
    free(g);
}

/* ---- holdings ---- */

const struct rk_holdings *rk_gossip_holdings(const struct rk_gossip *g, const char *id)
{
    if (strcmp(id, g->table.m[g->table.self].id) == 0)
        return &g->own;
    return rk_peerhold_get(g->peers, id);
}

struct rk_holdings *rk_gossip_own_holdings(struct rk_gossip *g)
{
    return &g->own;
}

int rk_gossip_holdings_commit(struct rk_gossip *g)
{
    rk_holdings_bump(&g->own, wall_ms());
    rk_holdings_encode(&g->own, g->hold);
    int rc = g->o.data_dir ? rk_holdings_save(&g->own, g->o.data_dir) : 0;
    changed(g);
    return rc;
}

bool rk_gossip_agreed(const struct rk_gossip *g, uint64_t *since_ms, char *who, size_t len)
{
    if (since_ms)
        *since_ms = g->agreed ? g->agreed_since_ms : 0;
    if (!g->agreed && who)
        snprintf(who, len, "%s", g->disagree);
    return g->agreed;
}

uint64_t rk_gossip_place(const struct rk_gossip *g)
{
    return rk_place_digest(&g->table);
}

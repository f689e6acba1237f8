/* The member table: merge rules (SWIM with Lifeguard's lesson for slow
 * observers), failure detection steps, the agreement digest and the wire
 * codec for survey payloads. Pure: no I/O, no clock reads, no allocation.
 *
 * Design
 * ------
 * Invariants:
 *  1. m[0..n) is sorted by id (strcmp, bytewise) with no duplicate ids;
 *     1 <= n <= RK_MEMBERS_MAX; m[self] is our own entry and is never
 *     removed.
 *  2. Every entry is valid: id of 1..63 bytes of RK_IDENT_CHARSET
 *     (util/ident.h), addresses <= 127 bytes,
 *     state < RK_MEMBER_NSTATES, settings digest equal to ours (a differing
 *     one is reported as CONFLICT and never stored).
 *  3. Only a member raises its own incarnation and heartbeat. Others only
 *     raise its state at the incarnation they know: ALIVE → SUSPECT → DEAD.
 *  4. News is ordered by the key (incarnation, rank(state), heartbeat), a
 *     total order on what one member can be said to be. A merge keeps the
 *     greater key, so tables that see the same news in any order end equal
 *     (test_merge_order_independent and the convergence test check this).
 *
 * Rank at equal incarnation (higher wins):
 *     ALIVE 0 < LEAVING 1 < SUSPECT 2 < DEAD 3 < LEFT 4
 *  - a suspicion overrides alive, dead overrides suspect;
 *  - SUSPECT outranks LEAVING, so a leaving node that goes silent is still
 *    detected; LEAVING outranks ALIVE (leave also bumps the incarnation);
 *  - LEFT is final at its incarnation. Only the member itself can come back
 *    (a restart under the same id) with a higher incarnation.
 *
 * States of another member, as seen by this table:
 *
 *        merge (higher incarnation, or refutation)
 *     +--------------------------------------------+
 *     v                                            |
 *   ALIVE --tick: silent >= suspect_after--> SUSPECT --tick: silent >= dead_after--> DEAD
 *     |            (or merge of SUSPECT)               (or merge of DEAD)
 *     | merge of LEAVING (member called rk_members_leave)
 *     v
 *   LEAVING --merge of LEFT (member called rk_members_left)--> LEFT
 *     (LEAVING is also subject to tick → SUSPECT → DEAD)
 *   DEAD --rk_members_remove--> LEFT (at the member's incarnation, so it spreads)
 *   LEFT --rk_members_reap, after a grace period--> gone; the id and
 *   incarnation stay in a ring of the last RK_MEMBERS_GONE reaped, and news
 *   of it at that incarnation or older is dropped, so it does not come back
 *   from a table that has not reaped it yet, only by its own return with a
 *   higher incarnation.
 *
 * Our own entry: ALIVE --rk_members_leave--> LEAVING --rk_members_left-->
 * LEFT; ALIVE or LEAVING --rk_members_stop--> DEAD (a graceful stop: the
 * incarnation is bumped so every table adopts it at once instead of
 * waiting for dead_after; a table that sees DEAD arrive with a higher
 * incarnation than it knew marks the entry stopped, which only the member
 * can cause, by invariant 3; the flag is local and only changes the name
 * shown, the state on the wire is DEAD, which older peers understand). News about self that
 * outranks it (SUSPECT or DEAD at our incarnation, anything at a higher one, e.g. from our previous
 * life) makes us refute in rk_members_merge: incarnation = theirs + 1, state kept.
 *
 * "Heard" (the silence clock, last_heard_ms) is reset by a direct answer
 * (rk_members_heard), and by a merge that brings a newer incarnation or a
 * higher heartbeat in state ALIVE or LEAVING: only the member raises those,
 * so they prove it ran recently even if our own link to it is down. Being
 * heard never clears a suspicion by itself; the member's refutation does.
 *
 * Incarnations are wall-clock milliseconds at a member's start, plus one
 * per refutation, leave and left. News whose incarnation is further ahead
 * of our clock than max_ahead_ms (cluster.max_clock_skew) is refused
 * whole: no honest member can have it, and one forged entry at 2^64-1
 * would otherwise outrank its member for good (LEFT at that incarnation
 * cannot be refuted). So news about self is always refutable: what we
 * accept is at most now + max_ahead_ms, and theirs + 1 fits.
 *
 * Failure cases: a paused observer (rk_members_tick forgives lag_ms);
 * one missed interval (suspect_after spans several intervals, and the
 * threshold is on silence, not on missed rounds); a restarted member
 * (refutes its old entries); a node with other cluster settings (CONFLICT);
 * hostile or truncated payloads (decode checks every length).
 */
#include "cluster/members.h"
#include "util/le.h"

#include "util/assert.h"
#include "util/err.h"
#include "util/ident.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <xxhash.h>

static_assert(RK_MEMBERS_MAX <= UINT16_MAX, "count is u16 on the wire");
static_assert(RK_MEMBER_ID_MAX <= UINT8_MAX && RK_MEMBER_ADDR_MAX <= UINT8_MAX,
              "string lengths are u8 on the wire");
static_assert(RK_MEMBERS_WIRE_FIXED == 4 * sizeof(uint64_t) + 1, "4 u64 + state u8");
static_assert(RK_MEMBER_NSTATES == 5, "the wire and rank() know five states");

static const uint8_t state_rank[RK_MEMBER_NSTATES] = {
    [RK_MEMBER_ALIVE] = 0, [RK_MEMBER_LEAVING] = 1, [RK_MEMBER_SUSPECT] = 2,
    [RK_MEMBER_DEAD] = 3,  [RK_MEMBER_LEFT] = 4,
};

const char *rk_member_state_name(unsigned state)
{
    static const char *const names[RK_MEMBER_NSTATES] = {"alive", "suspect", "dead", "leaving",
                                                         "left"};
    return state < RK_MEMBER_NSTATES ? names[state] : "?";
}

const char *rk_member_shown_state(const struct rk_member *m)
{
    return m->state == RK_MEMBER_DEAD && m->stopped ? "stopped" : rk_member_state_name(m->state);
}

/* ---- entries ---- */

static bool valid_str(const char *s, size_t max, bool nonempty)
{
    size_t l = strnlen(s, max + 1);
    return l <= max && (!nonempty || l > 0);
}

static bool valid_entry(const struct rk_member *e)
{
    return valid_str(e->id, RK_MEMBER_ID_MAX, true) && rk_ident_valid(e->id, strlen(e->id), NULL) &&
           valid_str(e->client_addr, RK_MEMBER_ADDR_MAX, false) &&
           valid_str(e->peer_addr, RK_MEMBER_ADDR_MAX, false) &&
           valid_str(e->gossip_addr, RK_MEMBER_ADDR_MAX, false) && e->state < RK_MEMBER_NSTATES;
}

/* <0, 0, >0 as news a is older, the same as, or newer than news b. */
static int cmp_news(const struct rk_member *a, const struct rk_member *b)
{
    if (a->incarnation != b->incarnation)
        return a->incarnation < b->incarnation ? -1 : 1;
    if (state_rank[a->state] != state_rank[b->state])
        return state_rank[a->state] < state_rank[b->state] ? -1 : 1;
    if (a->heartbeat != b->heartbeat)
        return a->heartbeat < b->heartbeat ? -1 : 1;
    return 0;
}

/* Binary search: the index of id, or (found false) where it would go. */
static size_t search(const struct rk_members *t, const char *id, bool *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->m[mid].id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void copy_gossip(struct rk_member *dst, const struct rk_member *src)
{
    memcpy(dst->id, src->id, sizeof(dst->id));
    memcpy(dst->client_addr, src->client_addr, sizeof(dst->client_addr));
    memcpy(dst->peer_addr, src->peer_addr, sizeof(dst->peer_addr));
    memcpy(dst->gossip_addr, src->gossip_addr, sizeof(dst->gossip_addr));
    dst->incarnation = src->incarnation;
    dst->heartbeat = src->heartbeat;
    dst->settings_digest = src->settings_digest;
    dst->config_digest = src->config_digest;
    dst->state = src->state;
}

static void set_event(struct rk_member_event *ev, enum rk_member_change c, uint8_t from,
                      const struct rk_member *after)
{
    ev->change = (uint8_t)c;
    ev->from = from;
    ev->to = after->state;
    ev->incarnation = after->incarnation;
    memcpy(ev->id, after->id, sizeof(ev->id));
}

/* ---- table ---- */

/* Invariant 1 after a change of the table's shape (init, insert, reap):
 * bounds, our own index, strict id order. O(n) with n <= RK_MEMBERS_MAX. */
static void check_shape(const struct rk_members *t)
{
    RK_ASSERT(t->n >= 1 && t->n <= RK_MEMBERS_MAX && t->self < t->n);
    for (size_t i = 1; i < t->n; i++)
        RK_ASSERT(strcmp(t->m[i - 1].id, t->m[i].id) < 0);
}

int rk_members_init(struct rk_members *t, const struct rk_member *self, uint64_t now_ms)
{
    if (!valid_entry(self) || self->state != RK_MEMBER_ALIVE)
        return RK_EINVAL;
    memset(&t->m[0], 0, sizeof(t->m[0]));
    copy_gossip(&t->m[0], self);
    t->m[0].last_heard_ms = now_ms;
    t->m[0].state_since_ms = now_ms;
    t->n = 1;
    t->self = 0;
    t->ngone = 0;
    t->max_ahead_ms = 0;
    check_shape(t);
    return 0;
}

void rk_members_bound_incarnations(struct rk_members *t, uint64_t max_ahead_ms)
{
    t->max_ahead_ms = max_ahead_ms;
}

static int insert(struct rk_members *t, size_t at, const struct rk_member *in, uint64_t now_ms)
{
    if (t->n >= RK_MEMBERS_MAX)
        return -ENOBUFS;
    memmove(&t->m[at + 1], &t->m[at], (t->n - at) * sizeof(t->m[0]));
    t->n++;
    if (t->self >= at)
        t->self++;
    struct rk_member *e = &t->m[at];
    memset(e, 0, sizeof(*e));
    copy_gossip(e, in);
    /* A new member gets a full suspect_after before any accusation. */
    e->last_heard_ms = now_ms;
    e->state_since_ms = now_ms;
    check_shape(t); /* at came from search(): the order holds */
    return 0;
}

/* News about ourselves. We never adopt it; if it outranks us we refute. */
static int merge_self(struct rk_members *t, const struct rk_member *in, struct rk_member_event *ev)
{
    struct rk_member *me = &t->m[t->self];
    /* Heartbeat is ignored: only we raise ours, an echo of it is no threat. */
    bool outranks =
        in->incarnation > me->incarnation ||
        (in->incarnation == me->incarnation && state_rank[in->state] > state_rank[me->state]);
    if (!outranks)
        return 0;
    if (in->incarnation == UINT64_MAX)
        return -EOVERFLOW;
    me->incarnation = in->incarnation + 1;
    set_event(ev, RK_MEMBER_REFUTED, me->state, me);
    return 0;
}

/* News about another member we know: keep the greater key (invariant 4). */
static void merge_known(struct rk_member *cur, const struct rk_member *in, uint64_t now_ms,
                        struct rk_member_event *ev)
{
    if (cmp_news(in, cur) <= 0)
        return;
    uint8_t from = cur->state;
    bool proof = in->state == RK_MEMBER_ALIVE || in->state == RK_MEMBER_LEAVING;
    /* DEAD at a higher incarnation: only the member raises it, so this is
     * its own stop announcement, not an accusation (rk_members_stop). An
     * accusation at the same incarnation keeps what we knew. */
    if (in->state != RK_MEMBER_DEAD)
        cur->stopped = false;
    else if (in->incarnation > cur->incarnation)
        cur->stopped = true;
    copy_gossip(cur, in);
    if (proof)
        cur->last_heard_ms = now_ms;
    if (from != cur->state) {
        cur->state_since_ms = now_ms;
        set_event(ev, RK_MEMBER_STATE, from, cur);
    } else {
        set_event(ev, RK_MEMBER_REFRESH, from, cur);
    }
}

/* A member reaped at an incarnation at least as high as in's. */
static bool forgotten(const struct rk_members *t, const struct rk_member *in)
{
    size_t n = t->ngone < RK_MEMBERS_GONE ? t->ngone : RK_MEMBERS_GONE;
    for (size_t i = 0; i < n; i++)
        if (t->gone[i].incarnation >= in->incarnation && strcmp(t->gone[i].id, in->id) == 0)
            return true;
    return false;
}

int rk_members_merge(struct rk_members *t, const struct rk_member *in, uint64_t now_ms,
                     struct rk_member_event *ev)
{
    struct rk_member_event scratch;
    if (!ev)
        ev = &scratch;
    memset(ev, 0, sizeof(*ev));
    if (!valid_entry(in))
        return RK_EINVAL;
    memcpy(ev->id, in->id, sizeof(ev->id));
    ev->from = ev->to = in->state;
    ev->incarnation = in->incarnation;
    if (t->max_ahead_ms && in->incarnation > now_ms + t->max_ahead_ms)
        return RK_EREFUSED;
    if (in->settings_digest != t->m[t->self].settings_digest) {
        ev->change = RK_MEMBER_CONFLICT;
        return 0;
    }
    bool found;
    size_t at = search(t, in->id, &found);
    if (found && at == t->self)
        return merge_self(t, in, ev);
    if (found) {
        merge_known(&t->m[at], in, now_ms, ev);
        return 0;
    }
    if (forgotten(t, in))
        return 0; /* reaped here: old news of it must not bring it back */
    int rc = insert(t, at, in, now_ms);
    if (rc < 0)
        return rc;
    set_event(ev, RK_MEMBER_NEW, in->state, &t->m[at]);
    return 0;
}

int rk_members_heard(struct rk_members *t, const char *id, uint64_t now_ms, uint32_t rtt_us)
{
    bool found;
    size_t at = search(t, id, &found);
    if (!found)
        return RK_ENOTFOUND;
    if (now_ms > t->m[at].last_heard_ms)
        t->m[at].last_heard_ms = now_ms;
    if (rtt_us)
        t->m[at].rtt_us = rtt_us; /* 0: contact without a timed round trip */
    return 0;
}

/* The state silence earns for e, or e's state if silence earns nothing. */
static uint8_t verdict(const struct rk_member *e, uint64_t silent, uint64_t suspect_after,
                       uint64_t dead_after)
{
    switch (e->state) {
    case RK_MEMBER_ALIVE:
    case RK_MEMBER_LEAVING:
        if (silent >= dead_after)
            return RK_MEMBER_DEAD;
        return silent >= suspect_after ? RK_MEMBER_SUSPECT : e->state;
    case RK_MEMBER_SUSPECT:
        return silent >= dead_after ? RK_MEMBER_DEAD : e->state;
    default:
        return e->state; /* DEAD and LEFT are final for their incarnation */
    }
}

int rk_members_tick(struct rk_members *t, uint64_t now_ms, uint64_t suspect_after_ms,
                    uint64_t dead_after_ms, uint64_t lag_ms, struct rk_member_event *ev, size_t cap,
                    size_t *changed)
{
    if (suspect_after_ms == 0 || dead_after_ms < suspect_after_ms)
        return RK_EINVAL;
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct rk_member *e = &t->m[i];
        if (i == t->self)
            continue;
        /* Forgive our own pause: it was not the member's silence. Clamped
         * at now so a later on-time tick sees no negative silence. */
        uint64_t room = now_ms > e->last_heard_ms ? now_ms - e->last_heard_ms : 0;
        e->last_heard_ms += lag_ms < room ? lag_ms : room;
        uint64_t silent = now_ms > e->last_heard_ms ? now_ms - e->last_heard_ms : 0;
        uint8_t to = verdict(e, silent, suspect_after_ms, dead_after_ms);
        if (to == e->state)
            continue;
        uint8_t from = e->state;
        e->state = to;
        e->state_since_ms = now_ms;
        if (k < cap)
            set_event(&ev[k], RK_MEMBER_STATE, from, e);
        k++;
    }
    if (changed)
        *changed = k;
    return 0;
}

void rk_members_beat(struct rk_members *t)
{
    t->m[t->self].heartbeat++;
}

static int self_move(struct rk_members *t, uint8_t from, uint8_t to, uint64_t now_ms)
{
    struct rk_member *me = &t->m[t->self];
    if (me->state != from || me->incarnation == UINT64_MAX)
        return RK_EINVAL;
    me->state = to;
    me->incarnation++;
    me->state_since_ms = now_ms;
    return 0;
}

int rk_members_leave(struct rk_members *t, uint64_t now_ms)
{
    return self_move(t, RK_MEMBER_ALIVE, RK_MEMBER_LEAVING, now_ms);
}

int rk_members_left(struct rk_members *t, uint64_t now_ms)
{
    return self_move(t, RK_MEMBER_LEAVING, RK_MEMBER_LEFT, now_ms);
}

int rk_members_stop(struct rk_members *t, uint64_t now_ms)
{
    uint8_t from = t->m[t->self].state;
    if (from != RK_MEMBER_ALIVE && from != RK_MEMBER_LEAVING)
        return RK_EINVAL;
    int rc = self_move(t, from, RK_MEMBER_DEAD, now_ms);
    if (rc == 0)
        t->m[t->self].stopped = true;
    return rc;
}

int rk_members_remove(struct rk_members *t, const char *id, bool force, uint64_t now_ms,
                      struct rk_member_event *ev)
{
    bool found;
    size_t at = search(t, id, &found);
    if (!found)
        return RK_ENOTFOUND;
    if (at == t->self)
        return RK_EINVAL;
    struct rk_member *e = &t->m[at];
    if (!force && e->state != RK_MEMBER_DEAD && e->state != RK_MEMBER_LEFT)
        return RK_EBUSY;
    if (e->state == RK_MEMBER_LEFT)
        return 0;
    /* LEFT at the member's own incarnation outranks whatever anyone says of
     * it at that incarnation, so the verdict spreads by gossip; only the
     * member itself, alive after all, can overrule it by refuting. */
    uint8_t from = e->state;
    e->state = RK_MEMBER_LEFT;
    e->state_since_ms = now_ms;
    if (ev)
        set_event(ev, RK_MEMBER_STATE, from, e);
    return 0;
}

size_t rk_members_reap(struct rk_members *t, uint64_t now_ms, uint64_t after_ms)
{
    size_t k = 0, gone = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct rk_member *e = &t->m[i];
        if (i != t->self && e->state == RK_MEMBER_LEFT && now_ms >= e->state_since_ms &&
            now_ms - e->state_since_ms >= after_ms) {
            struct rk_member_gone *g = &t->gone[t->ngone++ % RK_MEMBERS_GONE];
            memcpy(g->id, e->id, sizeof(g->id));
            g->incarnation = e->incarnation;
            gone++;
            continue;
        }
        if (i == t->self)
            t->self = k;
        if (k != i)
            t->m[k] = t->m[i];
        k++;
    }
    t->n = k;
    check_shape(t); /* self is never reaped */
    return gone;
}

const struct rk_member *rk_members_find(const struct rk_members *t, const char *id)
{
    bool found;
    size_t at = search(t, id, &found);
    return found ? &t->m[at] : NULL;
}

void rk_members_counts(const struct rk_members *t, size_t counts[RK_MEMBER_NSTATES])
{
    memset(counts, 0, RK_MEMBER_NSTATES * sizeof(counts[0]));
    for (size_t i = 0; i < t->n; i++)
        counts[t->m[i].state]++;
}

/* ---- digests ---- */

uint64_t rk_members_digest(const struct rk_members *t)
{
    /* Per member: id_len u8, id, incarnation u64 LE, state u8, each hashed
     * with the previous hash as seed, so order and content both count. */
    uint64_t h = 0;
    uint8_t buf[1 + RK_MEMBER_ID_MAX + 8 + 1];
    for (size_t i = 0; i < t->n; i++) {
        const struct rk_member *e = &t->m[i];
        size_t l = strlen(e->id);
        buf[0] = (uint8_t)l;
        memcpy(buf + 1, e->id, l);
        rk_le_put64(buf + 1 + l, e->incarnation);
        buf[1 + l + 8] = e->state;
        h = XXH3_64bits_withSeed(buf, l + 10, h);
    }
    return h;
}

uint64_t rk_members_settings_digest(const char *name, uint32_t partitions, uint32_t replicas)
{
    uint8_t nums[16];
    rk_le_put64(nums, partitions);
    rk_le_put64(nums + 8, replicas);
    return XXH3_64bits_withSeed(name, strlen(name), XXH3_64bits(nums, sizeof(nums)));
}

/* ---- wire codec ---- */

static int put_str(uint8_t *buf, size_t cap, size_t *off, const char *s)
{
    size_t l = strlen(s);
    if (cap - *off < 1 + l)
        return -ENOBUFS;
    buf[*off] = (uint8_t)l;
    memcpy(buf + *off + 1, s, l);
    *off += 1 + l;
    return 0;
}

static int put_entry(uint8_t *buf, size_t cap, size_t *off, const struct rk_member *e)
{
    if (!valid_entry(e))
        return RK_EINVAL;
    if (put_str(buf, cap, off, e->id) < 0 || put_str(buf, cap, off, e->client_addr) < 0 ||
        put_str(buf, cap, off, e->peer_addr) < 0 || put_str(buf, cap, off, e->gossip_addr) < 0 ||
        cap - *off < RK_MEMBERS_WIRE_FIXED)
        return -ENOBUFS;
    uint8_t *p = buf + *off;
    rk_le_put64(p, e->incarnation);
    rk_le_put64(p + 8, e->heartbeat);
    rk_le_put64(p + 16, e->settings_digest);
    rk_le_put64(p + 24, e->config_digest);
    p[32] = e->state;
    *off += RK_MEMBERS_WIRE_FIXED;
    return 0;
}

int rk_members_encode(const struct rk_member *e, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (n > RK_MEMBERS_MAX)
        return RK_EINVAL;
    if (cap < RK_MEMBERS_WIRE_HDR)
        return -ENOBUFS;
    buf[0] = RK_MEMBERS_WIRE_VERSION;
    buf[1] = 0;
    buf[2] = (uint8_t)n;
    buf[3] = (uint8_t)(n >> 8);
    size_t off = RK_MEMBERS_WIRE_HDR;
    for (size_t i = 0; i < n; i++) {
        int rc = put_entry(buf, cap, &off, &e[i]);
        if (rc < 0)
            return rc;
    }
    *len = off;
    return 0;
}

/* A length-prefixed string of at most max bytes, no NUL inside, into dst
 * (max + 1 bytes). *off only advances past bytes that exist. */
static int get_str(const uint8_t *buf, size_t len, size_t *off, char *dst, size_t max,
                   bool nonempty)
{
    if (len - *off < 1)
        return RK_EMALFORMED;
    size_t l = buf[*off];
    if (l > max || (nonempty && l == 0) || len - *off - 1 < l)
        return RK_EMALFORMED;
    if (l && memchr(buf + *off + 1, 0, l))
        return RK_EMALFORMED;
    memcpy(dst, buf + *off + 1, l);
    dst[l] = '\0';
    *off += 1 + l;
    return 0;
}

static int get_entry(const uint8_t *buf, size_t len, size_t *off, struct rk_member *e)
{
    memset(e, 0, sizeof(*e));
    if (get_str(buf, len, off, e->id, RK_MEMBER_ID_MAX, true) < 0 ||
        get_str(buf, len, off, e->client_addr, RK_MEMBER_ADDR_MAX, false) < 0 ||
        get_str(buf, len, off, e->peer_addr, RK_MEMBER_ADDR_MAX, false) < 0 ||
        get_str(buf, len, off, e->gossip_addr, RK_MEMBER_ADDR_MAX, false) < 0 ||
        !rk_ident_valid(e->id, strlen(e->id), NULL) || len - *off < RK_MEMBERS_WIRE_FIXED)
        return RK_EMALFORMED;
    const uint8_t *p = buf + *off;
    e->incarnation = rk_le_get64(p);
    e->heartbeat = rk_le_get64(p + 8);
    e->settings_digest = rk_le_get64(p + 16);
    e->config_digest = rk_le_get64(p + 24);
    e->state = p[32];
    if (e->state >= RK_MEMBER_NSTATES)
        return RK_EMALFORMED;
    *off += RK_MEMBERS_WIRE_FIXED;
    return 0;
}

int rk_members_decode(const uint8_t *buf, size_t len, struct rk_member *out, size_t cap, size_t *n)
{
    *n = 0;
    if (len < RK_MEMBERS_WIRE_HDR)
        return RK_EMALFORMED;
    if (buf[0] != RK_MEMBERS_WIRE_VERSION)
        return RK_EUNSUPPORTED;
    size_t count = (size_t)buf[2] | (size_t)buf[3] << 8;
    if (buf[1] != 0 || count > RK_MEMBERS_MAX)
        return RK_EMALFORMED;
    if (count > cap)
        return -ENOBUFS;
    size_t off = RK_MEMBERS_WIRE_HDR;
    for (size_t i = 0; i < count; i++) {
        if (get_entry(buf, len, &off, &out[i]) < 0)
            return RK_EMALFORMED;
    }
    if (off != len)
        return RK_EMALFORMED;
    *n = count;
    return 0;
}

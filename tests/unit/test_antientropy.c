/* The anti-entropy initiator (antientropy.h) on a loop of the test's own,
 * against fake peers: raw rep0 sockets (inproc) on the same loop that
 * answer AE_ROOT / AE_KEYS with rk_aex_respond over a second store and its
 * trees, RPUT / RGET from that store, and REPAIR as told. A round leaves
 * both stores with the newest version of every key; the key budget holds
 * over any 1 s window of what the peer received; nothing goes out while
 * the worker says it is busy; a dropped-hint mark is saved in the progress
 * before it leaves ae-marks and its partition goes first; a node that
 * is no replica hands its mark to a replica, trying another after a
 * refusal, and clears it only once one took it; and a transfer held back
 * while the worker is busy goes on after the pause, not at the next
 * round. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/aemarks.h"
#include "cluster/aepace.h"
#include "cluster/aeprogress.h"
#include "cluster/antientropy.h"
#include "cluster/hlc.h"
#include "cluster/members.h"
#include "cluster/ring.h"
#include "cluster/view.h"
#include "proto/proto.h"
#include "testutil.h"
#include "util/clock.h"
#include "util/err.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTS    8
#define MS       1000000ull
#define MAX_RECV 4096 /* requests a peer remembers */

/* A store with the trees that follow it, as a worker keeps them. */
struct side {
    char dir[512];
    rk_storage *s;
    struct rk_aetrees trees;
};

/* A fake peer: a raw rep0 socket on the loop, answering from its side. */
struct peer {
    const char *id;
    nng_socket sock;
    ev_io io;
    struct side *side;     /* NULL: answers REPAIR only */
    enum rk_status repair; /* its answer to REPAIR */
    unsigned repairs;
    /* what it received: opcode, partition (AE) and monotonic ns */
    size_t n;
    uint8_t op[MAX_RECV];
    uint16_t part[MAX_RECV];
    uint64_t at[MAX_RECV];
};

struct rig {
    struct side a, b;
    struct ev_loop *loop;
    ev_prepare commit; /* commits a's staged writes, as the worker's prepare does */
    struct rk_view_slot views;
    struct rk_hlc hlc;
    struct rk_aeprogress *prog;
    struct rk_aemarks *marks;
    struct rk_ae_budget budget;
    atomic_bool enabled;
    atomic_uint_fast64_t interval_ms;
    atomic_uint keys_ps;
    atomic_uint_fast64_t bytes_ps;
    uint64_t busy_until_ns; /* the fake load: lagging until then */
    struct peer peers[2];
    size_t npeers;
    struct rk_ae *ae;
    /* transfers (run only when xfer_on at rig_start): node-b's holdings,
     * the node's limits, and the partitions reported ready */
    bool xfer_on;
    struct rk_holdings b_holds, none;
    struct rk_xfer_limits xfer;
    unsigned xfer_ready;
};

static int url_seq;

/* ---- the stores ---- */

static struct rk_aetree *side_tree(void *arg, uint32_t partition, uint64_t now_ms)
{
    struct side *sd = arg;
    struct rk_aetree *t = rk_aetrees_get(&sd->trees, partition);
    if (t && rk_aetree_stale(t, now_ms) &&
        rk_aetrees_build(&sd->trees, sd->s, now_ms, true, NULL) < 0)
        return NULL;
    return t;
}

static void side_open(struct side *sd, const char *tag)
{
    struct rk_storage_opts o;
    rk_storage_opts_default(&o);
    o.fsync = RK_FSYNC_NEVER; /* durability is not what these tests look at */
    assert_int_equal(tu_mkdtemp(sd->dir, sizeof(sd->dir), tag), 0);
    assert_int_equal(rk_storage_open(&sd->s, sd->dir, &o, NULL), 0);
    assert_int_equal(rk_aetrees_init(&sd->trees, PARTS, 1, 0), 0);
    assert_int_equal(rk_aetrees_build(&sd->trees, sd->s, rk_clock_wall_ms(), false, NULL), 0);
    rk_storage_set_observer(sd->s, rk_aetrees_observe, &sd->trees);
}

static void side_close(struct side *sd)
{
    assert_int_equal(rk_storage_close(sd->s), 0);
    rk_aetrees_fini(&sd->trees);
    tu_rmrf(sd->dir);
}

static uint64_t version(uint64_t i)
{
    return (rk_clock_wall_ms() - 1000) << 16 | i; /* an HLC version of a second ago */
}

static void put(struct side *sd, unsigned i, uint64_t v)
{
    char key[32];
    int n = snprintf(key, sizeof(key), "key-%05u", i);
    struct rk_record r = {.key = key,
                          .klen = (uint32_t)n,
                          .val = key,
                          .vlen = (uint32_t)n,
                          .version = v,
                          .partition = (uint16_t)rk_ring_partition_of(key, (size_t)n, PARTS)};
    assert_int_equal(rk_storage_put(sd->s, &r, NULL), 0);
}

/* The version sd holds of key i, 0 for none. */
static uint64_t held(struct side *sd, unsigned i)
{
    char key[32];
    int n = snprintf(key, sizeof(key), "key-%05u", i);
    struct rk_record r;
    return rk_storage_get(sd->s, key, (uint32_t)n, RK_GET_TOMBSTONES, &r) == 0 ? r.version : 0;
}

static void on_commit(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop, (void)revents;
    struct rig *r = p->data;
    if (rk_storage_staged(r->a.s))
        assert_int_equal(rk_storage_commit(r->a.s), 0);
}

/* ---- the fake peers ---- */

static void answer(struct peer *p, nng_msg *msg, const struct rk_msg *rep)
{
    assert_int_equal(rk_proto_msg_encode(msg, rep), 0);
    assert_int_equal(nng_sendmsg(p->sock, msg, 0), 0);
}

static void serve_ae(struct peer *p, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_ae_local l = {
        .tree = side_tree, .arg = p->side, .store = p->side->s, .now_ms = rk_clock_wall_ms()};
    struct rk_ae_tree tree = {&rk_ae_local_ops, &l};
    uint8_t *buf = malloc(RK_AEW_MSG_MAX);
    size_t len;
    assert_non_null(buf);
    assert_int_equal(rk_aex_respond(&tree, req, 0, buf, &len), 0);
    rk_ae_local_release(&l);
    nng_msg_clear(msg);
    assert_int_equal(nng_msg_append(msg, buf, len), 0);
    free(buf);
    assert_int_equal(nng_sendmsg(p->sock, msg, 0), 0);
}

static void serve_move(struct peer *p, nng_msg *msg, const struct rk_msg *req)
{
    struct rk_msg rep = {.opcode = req->opcode, .flags = RK_MSG_REPLY, .id = req->id};
    struct rk_record r;
    if (req->opcode == RK_OP_RPUT) {
        uint64_t cur = 0;
        struct rk_record w = {.key = req->key,
                              .klen = req->klen,
                              .val = req->val,
                              .vlen = req->vlen,
                              .version = req->version,
                              .partition =
                                  (uint16_t)rk_ring_partition_of(req->key, req->klen, PARTS)};
        int rc = rk_storage_put(p->side->s, &w, &cur);
        assert_true(rc == 0 || rc == RK_ESTALE);
        assert_int_equal(rk_storage_commit(p->side->s), 0);
        rep.version = rc == RK_ESTALE ? cur : req->version, rep.has_version = true;
    } else if (rk_storage_get(p->side->s, req->key, req->klen, RK_GET_TOMBSTONES, &r) == 0) {
        rep.val = r.val, rep.vlen = r.vlen, rep.has_val = true;
        rep.version = r.version, rep.has_version = true;
    } else {
        rep.status = RK_ST_NOT_FOUND;
    }
    answer(p, msg, &rep);
}

static void on_peer(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    struct peer *p = io->data;
    nng_msg *msg;
    while (nng_recvmsg(p->sock, &msg, NNG_FLAG_NONBLOCK) == 0) {
        struct rk_msg req;
        assert_int_equal(rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req), 0);
        if (p->n < MAX_RECV) {
            p->op[p->n] = req.opcode;
            p->part[p->n] =
                req.has_val && req.vlen >= 4 ? (uint16_t)(req.val[2] | req.val[3] << 8) : 0;
            p->at[p->n++] = rk_clock_mono_ns();
        }
        if (req.opcode == RK_OP_REPAIR) {
            assert_true(req.has_hint && req.has_key); /* a mark handed over names its sender */
            p->repairs++;
            answer(p, msg,
                   &(struct rk_msg){.opcode = req.opcode,
                                    .flags = RK_MSG_REPLY,
                                    .id = req.id,
                                    .status = (uint16_t)p->repair});
        } else if (req.opcode == RK_OP_AE_ROOT || req.opcode == RK_OP_AE_KEYS) {
            serve_ae(p, msg, &req);
        } else {
            serve_move(p, msg, &req);
        }
    }
}

/* ---- the rig: node-a's initiator, its peers ---- */

static struct rk_member member(const char *id)
{
    struct rk_member m = {.incarnation = 1,
                          .state = RK_MEMBER_ALIVE,
                          .settings_digest = rk_members_settings_digest("t", PARTS, 2)};
    snprintf(m.id, sizeof(m.id), "%s", id);
    snprintf(m.peer_addr, sizeof(m.peer_addr), "inproc://test_antientropy-%d-%s", url_seq, id);
    return m;
}

static void peer_init(struct rig *r, struct peer *p, const char *id, struct side *sd)
{
    char url[128];
    int fd;
    snprintf(url, sizeof(url), "inproc://test_antientropy-%d-%s", url_seq, id);
    memset(p, 0, sizeof(*p));
    p->id = id, p->side = sd, p->repair = RK_ST_OK;
    assert_int_equal(nng_rep0_open_raw(&p->sock), 0);
    assert_int_equal(nng_listen(p->sock, url, NULL, 0), 0);
    assert_int_equal(nng_socket_get_int(p->sock, NNG_OPT_RECVFD, &fd), 0);
    ev_io_init(&p->io, on_peer, fd, EV_READ);
    p->io.data = p;
    ev_io_start(r->loop, &p->io);
}

static void fake_load(void *arg, struct rk_ae_load *out)
{
    struct rig *r = arg;
    *out = (struct rk_ae_load){.lag_ms = rk_clock_mono_ns() < r->busy_until_ns ? 100 : 0};
}

/* rk_view_in.holdings for a rig with transfers: node-b holds every
 * partition, node-a (this node) none, so node-a is pending for all. */
static const struct rk_holdings *xfer_holdings(void *arg, const char *id)
{
    struct rig *r = arg;
    return strcmp(id, "node-b") == 0 ? &r->b_holds : &r->none;
}

static void on_xfer_ready(void *arg, uint32_t partition)
{
    (void)partition;
    ((struct rig *)arg)->xfer_ready++;
}

/* node-a and the peers ids[0..n) (2 = replicas: with two members every
 * partition is on both), the initiator not created yet. With xfer, node-a
 * holds nothing and receives every partition from node-b (agreed on the
 * placement long ago). */
static void rig_init_with(struct rig *r, const char *const *ids, size_t n, bool xfer)
{
    memset(r, 0, sizeof(*r));
    ++url_seq;
    r->xfer_on = xfer;
    assert_int_equal(rk_holdings_init(&r->b_holds, PARTS), 0);
    assert_int_equal(rk_holdings_init(&r->none, PARTS), 0);
    for (uint32_t p = 0; p < PARTS; p++)
        rk_holdings_set(&r->b_holds, p, true);
    atomic_store(&r->xfer.max_concurrent, 1);
    atomic_store(&r->xfer.max_bytes_per_second, 0);
    rk_ae_budget_init(&r->xfer.budget);
    const struct rk_view_in xfer_in = {
        .holdings = xfer_holdings, .arg = r, .agreed = true, .agreed_since_ms = 1};
    side_open(&r->a, "ae-a");
    side_open(&r->b, "ae-b");
    r->loop = ev_loop_new(EVFLAG_AUTO);
    ev_prepare_init(&r->commit, on_commit);
    r->commit.data = r;
    ev_prepare_start(r->loop, &r->commit);
    rk_hlc_init(&r->hlc, 60000);
    rk_view_slot_init(&r->views);
    struct rk_members *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    struct rk_member self = member("node-a");
    assert_int_equal(rk_members_init(t, &self, rk_clock_wall_ms()), 0);
    for (size_t i = 0; i < n; i++) {
        struct rk_member m = member(ids[i]);
        assert_int_equal(rk_members_merge(t, &m, rk_clock_wall_ms(), NULL), 0);
        peer_init(r, &r->peers[i], ids[i], i == 0 ? &r->b : NULL);
    }
    r->npeers = n;
    struct rk_view *v = rk_view_build(t, PARTS, 2, r->xfer_on ? &xfer_in : NULL);
    assert_non_null(v);
    rk_view_publish(&r->views, v);
    free(t);
    assert_int_equal(rk_aeprogress_open(&r->prog, r->a.dir, PARTS, 1, 0), 0);
    assert_int_equal(rk_aemarks_open(&r->marks, r->a.dir, PARTS), 0);
    atomic_store(&r->enabled, true);
    atomic_store(&r->interval_ms, 10);
    atomic_store(&r->keys_ps, 0);
    atomic_store(&r->bytes_ps, 0);
}

static void rig_init(struct rig *r, const char *const *ids, size_t n)
{
    rig_init_with(r, ids, n, false);
}

static void rig_start(struct rig *r)
{
    struct rk_ae_env env = {.loop = r->loop,
                            .partitions = PARTS,
                            .nworkers = 1,
                            .worker = 0,
                            .replicas = 2,
                            .request_timeout_ms = 2000,
                            .self = "node-a",
                            .views = &r->views,
                            .hlc = &r->hlc,
                            .store = r->a.s,
                            .tree = side_tree,
                            .tree_arg = &r->a,
                            .progress = r->prog,
                            .pace = {&r->enabled, &r->interval_ms, &r->keys_ps, &r->bytes_ps},
                            .budget = &r->budget,
                            .load = fake_load,
                            .load_arg = r,
                            .hint_marks = r->marks};
    if (r->xfer_on) {
        env.xfer_ready = on_xfer_ready;
        env.xfer_arg = r;
        env.xfer = &r->xfer;
    }
    assert_int_equal(rk_ae_create(&r->ae, &env), 0);
}

static void rig_fini(struct rig *r)
{
    rk_ae_destroy(r->ae);
    for (size_t i = 0; i < r->npeers; i++) {
        ev_io_stop(r->loop, &r->peers[i].io);
        nng_close(r->peers[i].sock);
    }
    ev_prepare_stop(r->loop, &r->commit);
    ev_loop_destroy(r->loop);
    rk_view_slot_fini(&r->views);
    rk_aeprogress_close(r->prog);
    rk_aemarks_close(r->marks);
    side_close(&r->a);
    side_close(&r->b);
    rk_holdings_fini(&r->b_holds);
    rk_holdings_fini(&r->none);
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t, (void)revents;
    ev_break(loop, EVBREAK_ONE);
}

/* Run the loop until done(r) or ms pass; whether done. */
static bool run_until(struct rig *r, bool (*done)(struct rig *r), unsigned ms)
{
    uint64_t end = rk_clock_mono_ns() + ms * MS;
    ev_timer tick;
    ev_timer_init(&tick, on_deadline, 0.005, 0.005); /* look at done() often */
    ev_timer_start(r->loop, &tick);
    bool ok;
    while (!(ok = done(r)) && rk_clock_mono_ns() < end)
        ev_run(r->loop, EVRUN_ONCE);
    ev_timer_stop(r->loop, &tick);
    return ok;
}

static bool round_done(struct rig *r)
{
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(r->prog, &s);
    return s.totals.rounds >= 1;
}

/* ---- tests ---- */

static void test_a_round_converges_both_ways(void **state)
{
    (void)state;
    static struct rig r;
    const char *ids[] = {"node-b"};
    rig_init(&r, ids, 1);
    uint64_t v1 = version(1), v2 = version(2);
    for (unsigned i = 0; i < 300; i++)
        put(&r.a, i, i >= 200 && i < 250 ? v2 : v1); /* 200..249: ours newer */
    for (unsigned i = 150; i < 450; i++)
        put(&r.b, i, i < 200 ? v2 : v1); /* 150..199: theirs newer */
    assert_int_equal(rk_storage_commit(r.a.s), 0);
    assert_int_equal(rk_storage_commit(r.b.s), 0);
    rig_start(&r);
    assert_true(run_until(&r, round_done, 10000));
    for (unsigned i = 0; i < 450; i++) {
        uint64_t want = i >= 150 && i < 250 ? v2 : v1;
        if (held(&r.a, i) != want || held(&r.b, i) != want)
            fail_msg("key %u: node-a holds %llx, node-b %llx, want %llx", i,
                     (unsigned long long)held(&r.a, i), (unsigned long long)held(&r.b, i),
                     (unsigned long long)want);
    }
    struct rk_ae_stats st;
    rk_ae_stats(r.ae, &st);
    /* 0..149 and 200..249 pushed, 150..199 and 300..449 pulled; 250..299 alike. */
    assert_int_equal(st.keys_pushed, 200);
    assert_int_equal(st.keys_pulled, 200);
    assert_int_equal(st.exchanges, PARTS);
    assert_int_equal(st.exchanges_failed, 0);
    assert_false(st.exchanging);
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(r.prog, &s);
    assert_int_equal(s.compared, PARTS);
    assert_int_equal(s.totals.pulled + s.totals.pushed, 400);
    rig_fini(&r);
}

static bool b_has_all(struct rig *r)
{
    for (unsigned i = 0; i < 300; i++)
        if (!held(&r->b, i))
            return false;
    return true;
}

/* At 200 keys/s, 300 pushes take about 1.5 s, and no 1 s window of what
 * the peer received holds more than 1.1 x 200. */
static void test_the_key_budget_holds(void **state)
{
    (void)state;
    static struct rig r;
    const char *ids[] = {"node-b"};
    rig_init(&r, ids, 1);
    for (unsigned i = 0; i < 300; i++)
        put(&r.a, i, version(1));
    assert_int_equal(rk_storage_commit(r.a.s), 0);
    atomic_store(&r.keys_ps, 200);
    rig_start(&r);
    uint64_t t0 = rk_clock_mono_ns();
    assert_true(run_until(&r, b_has_all, 10000));
    uint64_t took = rk_clock_mono_ns() - t0;
    struct peer *p = &r.peers[0];
    uint64_t moves[MAX_RECV];
    size_t n = 0, most = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->op[i] == RK_OP_RPUT)
            moves[n++] = p->at[i];
    assert_int_equal(n, 300);
    for (size_t i = 0, j = 0; i < n; i++) {
        while (moves[i] - moves[j] > 1000 * MS)
            j++;
        most = i - j + 1 > most ? i - j + 1 : most;
    }
    print_message("300 keys at 200/s: %.2f s, at most %zu in any 1 s\n", (double)took / 1e9, most);
    assert_true(most <= 220);
    assert_true(took >= 1300 * MS); /* (300 - the 50 ms burst) / 200 */
    rig_fini(&r);
}

/* The worker lags for 300 ms from the start: nothing reaches the peer
 * before, then the round runs. */
static void test_nothing_goes_while_busy(void **state)
{
    (void)state;
    static struct rig r;
    const char *ids[] = {"node-b"};
    rig_init(&r, ids, 1);
    for (unsigned i = 0; i < 100; i++)
        put(&r.a, i, version(1));
    assert_int_equal(rk_storage_commit(r.a.s), 0);
    uint64_t t0 = rk_clock_mono_ns();
    r.busy_until_ns = t0 + 300 * MS;
    rig_start(&r);
    assert_true(run_until(&r, round_done, 10000));
    assert_true(r.peers[0].n > 0);
    assert_true(r.peers[0].at[0] >= r.busy_until_ns);
    struct rk_ae_stats st;
    rk_ae_stats(r.ae, &st);
    assert_true(st.busy_pauses >= 3); /* 50 + 100 + 200 ms */
    for (unsigned i = 0; i < 100; i++)
        assert_true(held(&r.b, i) != 0);
    rig_fini(&r);
}

static bool marks_taken(struct rig *r)
{
    return rk_aemarks_count(r->marks) == 0;
}

/* A dropped-hint mark is in the saved progress before it leaves ae-marks,
 * its partition is the first the round asks about, and the mark clears
 * once the only other replica exchanged. */
static void test_a_dropped_hint_goes_first(void **state)
{
    (void)state;
    static struct rig r;
    const char *ids[] = {"node-b"};
    rig_init(&r, ids, 1);
    for (unsigned i = 0; i < 200; i++)
        put(&r.b, i, version(1)); /* every partition differs */
    assert_int_equal(rk_storage_commit(r.b.s), 0);
    assert_true(rk_aemarks_mark(r.marks, 5));
    atomic_store(&r.enabled, false); /* the marks move on their own */
    rig_start(&r);
    assert_true(run_until(&r, marks_taken, 5000));
    struct rk_aeprogress *saved;
    assert_int_equal(rk_aeprogress_open(&saved, r.a.dir, PARTS, 1, 0), 0);
    assert_int_equal(rk_aeprogress_marks(saved, 5), RK_AE_MARK_HINT);
    rk_aeprogress_close(saved);
    assert_int_equal(rk_aeprogress_marks(r.prog, 5), RK_AE_MARK_HINT);

    atomic_store(&r.enabled, true);
    assert_true(run_until(&r, round_done, 10000));
    struct peer *p = &r.peers[0];
    assert_true(p->n > 0);
    assert_int_equal(p->op[0], RK_OP_AE_ROOT);
    assert_int_equal(p->part[0], 5);
    assert_int_equal(rk_aeprogress_marks(r.prog, 5), 0);
    struct rk_ae_stats st;
    rk_ae_stats(r.ae, &st);
    assert_int_equal(st.hint_marks_taken, 1);
    rig_fini(&r);
}

static bool asked_both(struct rig *r)
{
    return r->peers[0].repairs > 0 && r->peers[1].repairs > 0;
}

/* node-a holds no replica of some partitions (three members, two
 * replicas): the mark of one goes to a replica; the first asked refuses,
 * so the other is asked, takes it, and only then does ae-marks clear. */
static void test_a_non_replica_hands_its_mark_over(void **state)
{
    (void)state;
    static struct rig r;
    const char *ids[] = {"node-b", "node-c"};
    rig_init(&r, ids, 2);
    struct rk_view *v = rk_view_acquire(&r.views);
    uint32_t part = PARTS;
    for (uint32_t p = 0; p < PARTS && part == PARTS; p++) {
        const char *pref[RK_RING_REPLICAS_MAX];
        size_t n = rk_ring_preference(v->ring, p, pref, 2);
        if (n == 2 && strcmp(pref[0], "node-a") != 0 && strcmp(pref[1], "node-a") != 0)
            part = p;
    }
    rk_view_release(v);
    assert_true(part < PARTS); /* three members, two replicas: one is not ours */
    assert_true(rk_aemarks_mark(r.marks, part));
    r.peers[0].repair = r.peers[1].repair = RK_ST_REFUSED;
    atomic_store(&r.enabled, false); /* only the hand-over runs */
    rig_start(&r);
    assert_true(run_until(&r, asked_both, 5000));
    assert_int_equal(rk_aemarks_count(r.marks), 1); /* refused twice: kept */
    r.peers[1].repair = RK_ST_OK;
    assert_true(run_until(&r, marks_taken, 5000));
    struct rk_ae_stats st;
    rk_ae_stats(r.ae, &st);
    assert_int_equal(st.hint_marks_forwarded, 1);
    assert_int_equal(st.hint_marks_taken, 0);
    assert_int_equal(rk_aeprogress_marks(r.prog, part), 0); /* never marked here */
    rig_fini(&r);
}

static bool all_received(struct rig *r)
{
    return r->xfer_ready == PARTS;
}

/* node-a receives every partition from node-b between rounds (the next
 * one a minute away) while its worker lags for the first 400 ms: the
 * exchange held back by the busy pause goes on once the pause is over,
 * not when the round timer fires. */
static void test_a_transfer_held_while_busy_goes_on_after_the_pause(void **state)
{
    (void)state;
    static struct rig r;
    const char *ids[] = {"node-b"};
    rig_init_with(&r, ids, 1, true);
    for (unsigned i = 0; i < 100; i++)
        put(&r.b, i, version(1));
    assert_int_equal(rk_storage_commit(r.b.s), 0);
    atomic_store(&r.interval_ms, 60000);
    uint64_t t0 = rk_clock_mono_ns();
    r.busy_until_ns = t0 + 400 * MS; /* past the first look for transfers (250 ms) */
    rig_start(&r);
    assert_true(run_until(&r, all_received, 10000));
    struct rk_ae_stats st;
    rk_ae_stats(r.ae, &st);
    print_message("%u partitions received %.2f s after the start, %llu busy pauses\n", r.xfer_ready,
                  (double)(rk_clock_mono_ns() - t0) / 1e9, (unsigned long long)st.busy_pauses);
    assert_true(st.busy_pauses >= 1); /* the first exchange was held back */
    assert_true(r.peers[0].n > 0);
    assert_true(r.peers[0].at[0] >= r.busy_until_ns);
    assert_int_equal(st.xfer_done, PARTS);
    assert_int_equal(st.xfer_failed, 0);
    for (unsigned i = 0; i < 100; i++)
        assert_true(held(&r.a, i) != 0);
    struct rk_aeprogress_summary s;
    rk_aeprogress_summary(r.prog, &s);
    assert_int_equal(s.round, 0); /* no round ran: the transfers went on their own */
    rig_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_round_converges_both_ways),
        cmocka_unit_test(test_the_key_budget_holds),
        cmocka_unit_test(test_nothing_goes_while_busy),
        cmocka_unit_test(test_a_dropped_hint_goes_first),
        cmocka_unit_test(test_a_non_replica_hands_its_mark_over),
        cmocka_unit_test(test_a_transfer_held_while_busy_goes_on_after_the_pause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

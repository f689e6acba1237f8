/* The coordinator (coord.c): fan-out, quorums, timeouts, fallbacks, the
 * newest answer by rank, read repair; and, when it knows fewer members than
 * cluster.replicas, a preference list shorter than R or W fails the request
 * with QUORUM (saying how many members are known), never shrinks the
 * quorum to the list. Driven over real nng sockets (inproc) on a loop of
 * the test's own: a req0 client sends the request, a raw rep0 "node" takes
 * it to the coordinator. This node's own replica is answered by the test
 * through rk_coord_local_answer, or (setup_peers) every replica, this node
 * included, is a raw rep0 socket of the test that answers the RBATCH
 * messages the coordinator sends, as a node's batch.c would. A test that
 * checks an answer was not yet enough waits until the coordinator took it
 * (answer_taken), since the sockets deliver on nng's threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/coord.h"
#include "cluster/coord_int.h" /* answer_taken looks into the ops */
#include "cluster/members.h"
#include "storage/record.h"
#include "util/clock.h"
#include "util/err.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL     "inproc://test_coord"
#define PARTS   8
#define MEMBERS 4 /* at most, in these tests */
#define FRAMES  8 /* replica requests in one batch, at most, in these tests */

struct node {
    nng_socket sock; /* raw rep0: the node's client socket */
    struct rk_hlc hlc;
    struct rk_view_slot views;
    struct ev_loop *loop;
    struct rk_coord *c;
    nng_socket client;        /* raw req0 */
    nng_msg *local;           /* this node's replica request, waiting for the test */
    size_t k;                 /* members */
    const char *ids[MEMBERS]; /* ids[0]: this node */
    nng_socket peer[MEMBERS]; /* setup_peers: raw rep0, member i's peer address */
    bool peers;
    unsigned replies_sent; /* client replies the coordinator sent (send_reply) */
    unsigned replies_read; /* ... and the test received (reply, reply_value) */
};

/* An RBATCH a peer received: its frames decoded (borrowing from msg). */
struct batch {
    nng_msg *msg; /* keeps the header that routes the reply */
    struct rk_msg req;
    size_t n;
    uint32_t rid[FRAMES];
    struct rk_msg f[FRAMES];
};

static void take_local(void *arg, nng_msg *msg)
{
    struct node *n = arg;
    assert_null(n->local);
    n->local = msg;
}

/* The worker's part: the reply goes to the client, or the request ends. */
static void send_reply(void *arg, nng_msg *msg, bool answered)
{
    struct node *n = arg;
    if (!answered || nng_sendmsg(n->sock, msg, 0) != 0)
        nng_msg_free(msg);
    else
        n->replies_sent++;
}

static int url_seq; /* a failed test leaves its sockets open: fresh names each time */

static struct rk_member member(const char *id, uint8_t state, uint64_t settings, bool peers)
{
    struct rk_member e = {
        .incarnation = rk_clock_wall_ms(), .state = state, .settings_digest = settings};
    snprintf(e.id, sizeof(e.id), "%s", id);
    if (peers)
        snprintf(e.peer_addr, sizeof(e.peer_addr), "inproc://test_coord-%d-%s", url_seq, id);
    else
        snprintf(e.peer_addr, sizeof(e.peer_addr), "tcp://127.0.0.1:1"); /* nothing listens */
    return e;
}

/* A node "node-1" that knows the members ids[] (itself first), each in
 * state states[]; cluster.replicas = 3, R = W = 2. peers: every member,
 * this node too, is a socket of the test (no local path). */
/* cluster.request_timeout of the coordinators set up next: long, so a
 * test that waits for answers never sees one time out on a slow machine;
 * the timeout tests shorten it (timeout_test). */
#define LONG_TIMEOUT_MS  10000u
#define SHORT_TIMEOUT_MS 200u
static uint64_t request_timeout_ms = LONG_TIMEOUT_MS;
/* The holdings the next setup's view is built from (NULL: every member
 * holds every partition); the pairing tests set it around their setup. */
static const struct rk_view_in *view_in;

static void setup_with(struct node *n, const char *const *ids, const uint8_t *states, size_t k,
                       bool peers)
{
    memset(n, 0, sizeof(*n));
    assert_true(k <= MEMBERS);
    ++url_seq;
    n->k = k;
    n->peers = peers;
    for (size_t i = 0; i < k; i++) {
        n->ids[i] = ids[i];
        if (!peers)
            continue;
        char url[128];
        snprintf(url, sizeof(url), "inproc://test_coord-%d-%s", url_seq, ids[i]);
        assert_int_equal(nng_rep0_open_raw(&n->peer[i]), 0);
        assert_int_equal(nng_listen(n->peer[i], url, NULL, 0), 0);
        assert_int_equal(nng_socket_set_ms(n->peer[i], NNG_OPT_RECVTIMEO, 5), 0);
    }
    rk_hlc_init(&n->hlc, 500);
    rk_view_slot_init(&n->views);
    uint64_t settings = rk_members_settings_digest("t", PARTS, 3);
    struct rk_members *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    struct rk_member self = member(ids[0], RK_MEMBER_ALIVE, settings, peers);
    assert_int_equal(rk_members_init(t, &self, rk_clock_wall_ms()), 0);
    for (size_t i = 1; i < k; i++) {
        struct rk_member m = member(ids[i], states[i], settings, peers);
        assert_int_equal(rk_members_merge(t, &m, rk_clock_wall_ms(), NULL), 0);
    }
    struct rk_view *v = rk_view_build(t, PARTS, 3, view_in);
    assert_non_null(v);
    rk_view_publish(&n->views, v);
    free(t);
    n->loop = ev_loop_new(EVFLAG_AUTO);
    struct rk_coord_env env = {.replicas = 3,
                               .read_quorum = 2,
                               .write_quorum = 2,
                               .request_timeout_ms = request_timeout_ms,
                               .hlc = &n->hlc,
                               .views = &n->views,
                               .reply = send_reply,
                               .local = peers ? NULL : take_local,
                               .arg = n};
    assert_int_equal(rk_coord_create(&n->c, n->loop, &env), 0);
    assert_int_equal(nng_rep0_open_raw(&n->sock), 0);
    char url[64];
    snprintf(url, sizeof(url), "%s-%d", URL, url_seq);
    assert_int_equal(nng_listen(n->sock, url, NULL, 0), 0);
    /* Raw: a receive that times out between loop turns must not cancel the
     * request, as it would on a cooked req0 socket. */
    assert_int_equal(nng_req0_open_raw(&n->client), 0);
    assert_int_equal(nng_dial(n->client, url, NULL, 0), 0);
}

static void setup(struct node *n, const char *const *ids, const uint8_t *states, size_t k)
{
    setup_with(n, ids, states, k, false);
}

static void teardown(struct node *n)
{
    rk_coord_destroy(n->c);
    for (size_t i = 0; n->peers && i < n->k; i++)
        nng_close(n->peer[i]);
    nng_close(n->client);
    nng_close(n->sock);
    ev_loop_destroy(n->loop);
    rk_view_slot_fini(&n->views);
}

/* Send a client request through the socket and hand it to the coordinator
 * as the worker would. Returns rk_coord_start's verdict. */
static bool start_part(struct node *n, uint8_t op, uint8_t quorum, uint32_t part)
{
    struct rk_msg m = {
        .opcode = op, .id = 9, .key = (const uint8_t *)"k", .klen = 1, .has_key = true};
    if (op == RK_OP_PUT)
        m.val = (const uint8_t *)"v", m.vlen = 1, m.has_val = true;
    if (quorum && op == RK_OP_GET)
        m.r = quorum, m.has_r = true;
    else if (quorum)
        m.w = quorum, m.has_w = true;
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, rk_proto_size(&m)), 0);
    rk_proto_encode(&m, nng_msg_body(msg));
    assert_int_equal(nng_msg_header_append_u32(msg, 0x80000001u), 0); /* the request id */
    assert_int_equal(nng_sendmsg(n->client, msg, 0), 0);
    nng_msg *got;
    assert_int_equal(nng_recvmsg(n->sock, &got, 0), 0);
    struct rk_msg req;
    assert_int_equal(rk_proto_decode(nng_msg_body(got), nng_msg_len(got), &req), 0);
    bool taken = rk_coord_start(n->c, got, &req, part);
    if (!taken)
        nng_msg_free(got);
    return taken;
}

static bool start(struct node *n, uint8_t op, uint8_t quorum)
{
    return start_part(n, op, quorum, 0);
}

/* Answer this node's own replica request (the worker's part). */
static void answer_local(struct node *n)
{
    assert_non_null(n->local);
    struct rk_msg req, rep;
    assert_int_equal(rk_proto_decode(nng_msg_body(n->local), nng_msg_len(n->local), &req), 0);
    rep = (struct rk_msg){.opcode = req.opcode,
                          .flags = RK_MSG_REPLY,
                          .id = req.id,
                          .version = req.version,
                          .has_version = true};
    assert_int_equal(rk_proto_msg_encode(n->local, &rep), 0);
    nng_msg *m = n->local;
    n->local = NULL;
    rk_coord_local_answer(n->c, m);
}

/* The client's reply: status, and its text copied to text. Runs the loop
 * until it comes (timeouts are the loop's timers). */
static uint16_t reply(struct node *n, char *text, size_t len)
{
    nng_msg *m = NULL;
    uint64_t deadline = rk_clock_mono_ns() + 5000000000ull;
    /* Between turns of the loop, wait up to 5 ms for the reply. */
    assert_int_equal(nng_socket_set_ms(n->client, NNG_OPT_RECVTIMEO, 5), 0);
    while (nng_recvmsg(n->client, &m, 0) != 0) {
        assert_true(rk_clock_mono_ns() < deadline);
        rk_coord_flush(n->c);
        ev_run(n->loop, EVRUN_NOWAIT);
    }
    struct rk_msg rep;
    assert_int_equal(rk_proto_decode(nng_msg_body(m), nng_msg_len(m), &rep), 0);
    snprintf(text, len, "%.*s", (int)rep.tlen, rep.has_text ? (const char *)rep.text : "");
    uint16_t st = rep.status;
    nng_msg_free(m);
    n->replies_read++;
    return st;
}

static void test_one_member_known_fails_both_quorums(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1"};
    static const uint8_t states[] = {RK_MEMBER_ALIVE};
    struct node n;
    char text[256];
    setup(&n, ids, states, 1);
    assert_true(start(&n, RK_OP_PUT, 0));
    assert_null(n.local); /* nothing written anywhere */
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_QUORUM);
    assert_string_equal(text, "write quorum not met: 0 of 2 acks (only 1 of cluster.replicas = "
                              "3 members known yet)");
    assert_true(start(&n, RK_OP_GET, 0));
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_QUORUM);
    assert_string_equal(text, "read quorum not met: 0 of 2 answers (only 1 of cluster.replicas "
                              "= 3 members known yet)");
    assert_true(start(&n, RK_OP_DEL, 0));
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_QUORUM);
    /* A quorum of one, asked for by the client: this node alone serves it. */
    assert_false(start(&n, RK_OP_PUT, 1));
    assert_false(start(&n, RK_OP_GET, 1));
    /* More than cluster.replicas is a bad request, whatever is known. */
    assert_true(start(&n, RK_OP_PUT, 4));
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_MALFORMED);
    assert_string_equal(text, "-w = 4 is more than cluster.replicas = 3");
    teardown(&n);
}

static void test_two_known_one_down_is_one_ack_of_two(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1", "node-2"};
    static const uint8_t states[] = {RK_MEMBER_ALIVE, RK_MEMBER_DEAD};
    struct node n;
    char text[256];
    setup(&n, ids, states, 2);
    assert_true(start(&n, RK_OP_PUT, 0));
    /* Decided at once: node-2 is down, so even node-1's ack could not make 2. */
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_QUORUM);
    assert_string_equal(text, "write quorum not met: 0 of 2 acks (node-1 pending, node-2 down)");
    answer_local(&n); /* late: the op ends quietly */
    /* -w 1: one ack of a replica that holds the partition is enough. */
    assert_true(start(&n, RK_OP_PUT, 1));
    answer_local(&n);
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_OK);
    teardown(&n);
}

static void test_two_known_one_silent_times_out(void **state)
{
    (void)state;
    static const char *const ids[] = {"node-1", "node-2"};
    static const uint8_t states[] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE};
    struct node n;
    char text[256];
    request_timeout_ms = SHORT_TIMEOUT_MS;
    setup(&n, ids, states, 2);
    request_timeout_ms = LONG_TIMEOUT_MS;
    uint64_t t0 = rk_clock_mono_ns(); /* before the op starts: a lower bound on its wait */
    assert_true(start(&n, RK_OP_PUT, 0));
    answer_local(&n);
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_QUORUM);
    /* Not at once. The op's timer counts from the loop's cached time (the
     * last turn, which this test leaves idle between steps), so it may fire
     * a little early by the wall clock: at least 3/4 of the timeout. */
    assert_true(rk_clock_mono_ns() - t0 >= SHORT_TIMEOUT_MS * 750000ull);
    assert_string_equal(text, "write quorum not met: 1 of 2 acks (node-2 timed out)");
    teardown(&n);
}

/* ---- every replica a socket of the test (setup_peers) ---- */

/* Members node-1..node-k, alive unless states says otherwise; every
 * replica, this node's too, answered by the test. */
static void setup_peers(struct node *n, size_t k, const uint8_t *states)
{
    static const char *const ids[] = {"node-1", "node-2", "node-3", "node-4"};
    static const uint8_t alive[MEMBERS] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_ALIVE,
                                           RK_MEMBER_ALIVE};
    setup_with(n, ids, states ? states : alive, k, true);
}

/* One turn of the coordinator's loop, as the worker's: send the open
 * batches, then run what is ready. */
static void turn(struct node *n)
{
    rk_coord_flush(n->c);
    ev_run(n->loop, EVRUN_NOWAIT);
}

/* Member index of id. */
static size_t idx(const struct node *n, const char *id)
{
    for (size_t i = 0; i < n->k; i++)
        if (strcmp(n->ids[i], id) == 0)
            return i;
    fail_msg("no member %s", id);
    return 0;
}

/* The preference list of part (member indices), and the rest of the
 * ring's walk after it (walk[0..*nw)). Returns its length. */
static size_t preference(struct node *n, uint32_t part, size_t *pref, size_t *walk, size_t *nw)
{
    struct rk_view *v = rk_view_acquire(&n->views);
    const char *ids[MEMBERS];
    size_t np = rk_ring_preference(v->ring, part, ids, MEMBERS);
    for (size_t i = 0; i < np; i++)
        pref[i] = idx(n, ids[i]);
    if (walk) {
        *nw = rk_ring_walk(v->ring, part, ids, MEMBERS);
        for (size_t i = 0; i < *nw; i++)
            walk[i] = idx(n, ids[i]);
    }
    rk_view_release(v);
    return np;
}

/* The next batch member i receives, turning the loop until it comes. */
static void peer_batch(struct node *n, size_t i, struct batch *b)
{
    uint64_t deadline = rk_clock_mono_ns() + 5000000000ull;
    memset(b, 0, sizeof(*b));
    while (nng_recvmsg(n->peer[i], &b->msg, 0) != 0) {
        assert_true(rk_clock_mono_ns() < deadline);
        turn(n);
    }
    assert_int_equal(rk_proto_decode(nng_msg_body(b->msg), nng_msg_len(b->msg), &b->req), 0);
    assert_int_equal(b->req.opcode, RK_OP_RBATCH);
    size_t off = 0, flen;
    const uint8_t *f;
    while (rk_proto_frame_next(b->req.val, b->req.vlen, &off, &b->rid[b->n], &f, &flen) == 1) {
        assert_true(b->n < FRAMES);
        assert_int_equal(rk_proto_decode(f, flen, &b->f[b->n]), 0);
        b->n++;
    }
}

/* The one replica request member i receives next. */
static const struct rk_msg *peer_request(struct node *n, size_t i, struct batch *b)
{
    peer_batch(n, i, b);
    assert_int_equal(b->n, 1);
    return &b->f[0];
}

/* Answer b's frames with reps[0..b->n) (their ids are the requests'). */
static void peer_answer(struct node *n, size_t i, struct batch *b, struct rk_msg *reps)
{
    uint8_t buf[4096];
    size_t o = 0;
    for (size_t k = 0; k < b->n; k++) {
        reps[k].flags = RK_MSG_REPLY;
        reps[k].opcode = b->f[k].opcode;
        reps[k].id = b->f[k].id;
        assert_true(o + rk_proto_frame_size(&reps[k]) <= sizeof(buf));
        o += rk_proto_frame_put(buf + o, b->rid[k], &reps[k]);
    }
    struct rk_msg rep = {.opcode = RK_OP_RBATCH,
                         .flags = RK_MSG_REPLY,
                         .id = b->req.id,
                         .val = buf,
                         .vlen = (uint32_t)o,
                         .has_val = true};
    assert_int_equal(rk_proto_msg_encode(b->msg, &rep), 0);
    assert_int_equal(nng_sendmsg(n->peer[i], b->msg, 0), 0);
    b->msg = NULL;
}

/* Member i acknowledges (or answers with rep) its one request. */
static void peer_ok(struct node *n, size_t i, struct batch *b)
{
    struct rk_msg rep = {.version = b->f[0].version, .has_version = true};
    peer_answer(n, i, b, &rep);
}

/* A replica's answer to an RGET: a value, a tombstone (val NULL), or
 * NOT_FOUND (version 0). */
static struct rk_msg record(uint64_t version, const char *val)
{
    struct rk_msg m = {.version = version, .has_version = version != 0};
    if (version == 0)
        m.status = RK_ST_NOT_FOUND;
    else if (val)
        m.val = (const uint8_t *)val, m.vlen = (uint32_t)strlen(val), m.has_val = true;
    else
        m.tombstone = 1, m.has_tombstone = true;
    return m;
}

/* Member i receives nothing during a few turns of the loop. */
static void peer_silent(struct node *n, size_t i)
{
    nng_msg *m;
    for (int k = 0; k < 10; k++)
        turn(n);
    assert_int_not_equal(nng_recvmsg(n->peer[i], &m, NNG_FLAG_NONBLOCK), 0);
}

/* The client has no reply yet after a few turns of the loop: none was
 * sent (counted as the coordinator hands it over, so one still on its way
 * through the sockets is not missed), and none is waiting. */
static void no_reply_yet(struct node *n)
{
    nng_msg *m;
    for (int k = 0; k < 10; k++) {
        turn(n);
        assert_int_equal(n->replies_sent, n->replies_read);
        assert_int_not_equal(nng_recvmsg(n->client, &m, NNG_FLAG_NONBLOCK), 0);
    }
}

/* The client's reply, decoded into rep with its value copied to val. */
static uint16_t reply_value(struct node *n, struct rk_msg *rep, char *val, size_t len)
{
    nng_msg *m = NULL;
    uint64_t deadline = rk_clock_mono_ns() + 5000000000ull;
    assert_int_equal(nng_socket_set_ms(n->client, NNG_OPT_RECVTIMEO, 5), 0);
    while (nng_recvmsg(n->client, &m, 0) != 0) {
        assert_true(rk_clock_mono_ns() < deadline);
        turn(n);
    }
    assert_int_equal(rk_proto_decode(nng_msg_body(m), nng_msg_len(m), rep), 0);
    snprintf(val, len, "%.*s", (int)rep->vlen, rep->has_val ? (const char *)rep->val : "");
    rep->val = NULL, rep->text = NULL, rep->key = NULL; /* borrowed from m */
    nng_msg_free(m);
    n->replies_read++;
    return rep->status;
}

/* Is a replica request to member i of some op still waiting for its
 * answer? The ops are looked into (coord_int.h): an answer that does not
 * decide the request changes nothing the client sees. */
static bool answer_pending(const struct node *n, size_t i)
{
    const struct rk_coord *c = n->c;
    for (uint32_t s = 0; s < MAX_OPS; s++) {
        const struct op *op = &c->ops[s];
        for (uint8_t k = 0; op->used && k < op->n + op->nf; k++)
            if (op->r[k].st == RS_PENDING && strcmp(op->r[k].m->id, n->ids[i]) == 0)
                return true;
    }
    return false;
}

/* Turn the loop until the coordinator has taken member i's answer. */
static void answer_taken(struct node *n, size_t i)
{
    uint64_t deadline = rk_clock_mono_ns() + 5000000000ull;
    while (answer_pending(n, i)) {
        assert_true(rk_clock_mono_ns() < deadline);
        turn(n);
    }
}

static struct rk_coord_stats stats(const struct node *n)
{
    struct rk_coord_stats st;
    rk_coord_stats(n->c, &st);
    return st;
}

/* ---- tests over peers ---- */

static void test_fan_out_asks_every_replica(void **state)
{
    (void)state;
    struct node n;
    struct batch b[3];
    size_t pref[MEMBERS];
    setup_peers(&n, 3, NULL);
    assert_int_equal(preference(&n, 0, pref, NULL, NULL), 3);
    assert_true(start(&n, RK_OP_PUT, 0));
    uint64_t version = 0;
    uint32_t rids = 0;
    for (size_t k = 0; k < 3; k++) {
        const struct rk_msg *f = peer_request(&n, pref[k], &b[k]);
        assert_int_equal(f->opcode, RK_OP_RPUT);
        assert_memory_equal(f->key, "k", 1);
        assert_true(f->has_val && f->vlen == 1 && f->val[0] == 'v');
        assert_false(f->has_hint);
        assert_true(f->has_version && f->version != 0);
        assert_true(version == 0 || f->version == version); /* one version for all */
        version = f->version;
        rids |= 1u << (b[k].rid[0] & 15); /* each replica its own index */
    }
    assert_int_equal(rids, 7);
    for (size_t k = 0; k < 3; k++)
        peer_ok(&n, pref[k], &b[k]);
    struct rk_msg rep;
    char val[64];
    assert_int_equal(reply_value(&n, &rep, val, sizeof(val)), RK_ST_OK);
    assert_int_equal(rep.version, version);
    assert_true(start(&n, RK_OP_GET, 0));
    for (size_t k = 0; k < 3; k++) {
        const struct rk_msg *f = peer_request(&n, pref[k], &b[k]);
        assert_int_equal(f->opcode, RK_OP_RGET);
        assert_memory_equal(f->key, "k", 1);
    }
    assert_int_equal(stats(&n).coordinated, 2);
    teardown(&n); /* the GET is still waiting: answered UNAVAILABLE */
}

static void test_quorum_reached_at_w_acks_and_r_answers(void **state)
{
    (void)state;
    struct node n;
    struct batch b[3];
    size_t pref[MEMBERS];
    struct rk_msg rep;
    char val[64];
    setup_peers(&n, 3, NULL);
    preference(&n, 0, pref, NULL, NULL);
    assert_true(start(&n, RK_OP_PUT, 0)); /* W = 2 */
    for (size_t k = 0; k < 3; k++)
        peer_request(&n, pref[k], &b[k]);
    peer_ok(&n, pref[0], &b[0]);
    answer_taken(&n, pref[0]);
    no_reply_yet(&n); /* one ack of two */
    peer_ok(&n, pref[2], &b[2]);
    assert_int_equal(reply_value(&n, &rep, val, sizeof(val)), RK_ST_OK); /* pref[1] still silent */
    assert_int_equal(rep.version, b[0].f[0].version);
    peer_ok(&n, pref[1], &b[1]);          /* late: the op ends quietly */
    assert_true(start(&n, RK_OP_GET, 0)); /* R = 2 */
    for (size_t k = 0; k < 3; k++)
        peer_request(&n, pref[k], &b[k]);
    struct rk_msg a = record(5, "five"), missing = record(0, NULL);
    peer_answer(&n, pref[1], &b[1], &a);
    answer_taken(&n, pref[1]);
    no_reply_yet(&n);
    peer_answer(&n, pref[0], &b[0], &missing); /* NOT_FOUND is an answer too */
    assert_int_equal(reply_value(&n, &rep, val, sizeof(val)), RK_ST_OK);
    assert_string_equal(val, "five");
    assert_int_equal(rep.version, 5);
    assert_int_equal(stats(&n).quorum_failed, 0);
    teardown(&n);
}

static void test_silent_replica_fails_after_request_timeout(void **state)
{
    (void)state;
    struct node n;
    struct batch b[3];
    size_t pref[MEMBERS];
    char text[256], want[256];
    request_timeout_ms = SHORT_TIMEOUT_MS;
    setup_peers(&n, 3, NULL);
    request_timeout_ms = LONG_TIMEOUT_MS;
    preference(&n, 0, pref, NULL, NULL);
    uint64_t t0 = rk_clock_mono_ns();     /* before the op starts: a lower bound on its wait */
    assert_true(start(&n, RK_OP_PUT, 3)); /* -w 3 */
    for (size_t k = 0; k < 3; k++)
        peer_request(&n, pref[k], &b[k]);
    peer_ok(&n, pref[0], &b[0]);
    peer_ok(&n, pref[1], &b[1]);
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_QUORUM);
    assert_true(rk_clock_mono_ns() - t0 >= SHORT_TIMEOUT_MS * 750000ull); /* as above */
    snprintf(want, sizeof(want), "write quorum not met: 2 of 3 acks (%s timed out)",
             n.ids[pref[2]]);
    assert_string_equal(text, want);
    assert_int_equal(stats(&n).replica_timeouts, 1);
    /* A read, R = 2: one answer, two silent replicas. */
    assert_true(start(&n, RK_OP_GET, 0));
    for (size_t k = 0; k < 3; k++)
        peer_request(&n, pref[k], &b[k]);
    struct rk_msg a = record(5, "five");
    peer_answer(&n, pref[1], &b[1], &a);
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_QUORUM);
    snprintf(want, sizeof(want), "read quorum not met: 1 of 2 answers (%s timed out, %s timed out)",
             n.ids[pref[0]], n.ids[pref[2]]);
    assert_string_equal(text, want);
    assert_int_equal(stats(&n).replica_timeouts, 3);
    teardown(&n);
}

/* A partition whose preference list holds member i. */
static uint32_t part_holding(struct node *n, size_t i)
{
    size_t pref[MEMBERS];
    for (uint32_t part = 0; part < PARTS; part++) {
        size_t np = preference(n, part, pref, NULL, NULL);
        for (size_t k = 0; k < np; k++)
            if (pref[k] == i)
                return part;
    }
    fail_msg("no partition holds member %zu", i);
    return 0;
}

/* The fallback hand_off() appends is sent once, by it (fan_out's loop
 * covers only the replicas it started with): one frame, not two. */
static void test_down_replica_write_goes_to_fallback_with_hint(void **state)
{
    (void)state;
    static const uint8_t states[] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_ALIVE,
                                     RK_MEMBER_DEAD};
    struct node n;
    struct batch b[MEMBERS];
    size_t pref[MEMBERS], walk[MEMBERS], nw;
    setup_peers(&n, 4, states);
    const size_t dead = 3; /* node-4 */
    uint32_t part = part_holding(&n, dead);
    assert_int_equal(preference(&n, part, pref, walk, &nw), 3);
    assert_int_equal(nw, 4);
    size_t fb = walk[3]; /* the next member on the ring: the only one left, and up */
    assert_true(start_part(&n, RK_OP_PUT, 0, part)); /* W = 2 */
    size_t up[2], nup = 0;
    for (size_t k = 0; k < 3; k++) {
        if (pref[k] == dead)
            continue;
        up[nup] = pref[k];
        assert_false(peer_request(&n, up[nup], &b[up[nup]])->has_hint);
        nup++;
    }
    const struct rk_msg *f = peer_request(&n, fb, &b[fb]);
    assert_int_equal(f->opcode, RK_OP_RPUT);
    assert_true(f->has_hint);
    assert_int_equal(f->hlen, strlen("node-4"));
    assert_memory_equal(f->hint, "node-4", f->hlen); /* names the replica it stands in for */
    assert_int_equal(f->version, b[up[0]].f[0].version);
    peer_silent(&n, dead); /* never asked */
    peer_ok(&n, fb, &b[fb]);
    peer_ok(&n, up[0], &b[up[0]]);
    answer_taken(&n, fb);
    answer_taken(&n, up[0]);
    no_reply_yet(&n); /* the fallback's ack is not one of W */
    peer_ok(&n, up[1], &b[up[1]]);
    struct rk_msg rep;
    char val[64];
    assert_int_equal(reply_value(&n, &rep, val, sizeof(val)), RK_ST_OK);
    struct rk_coord_stats st = stats(&n);
    assert_int_equal(st.replicas_down, 1);
    assert_int_equal(st.hinted_writes, 1);
    teardown(&n);
}

/* Ask a GET of three replicas (R = 3) and answer replica pref[k] with
 * recs[k]; the client's reply lands in rep/val. */
static uint16_t read_three(struct node *n, const size_t *pref, struct rk_msg *recs,
                           struct rk_msg *rep, char *val, size_t len)
{
    struct batch b[3];
    assert_true(start(n, RK_OP_GET, 3));
    for (size_t k = 0; k < 3; k++)
        peer_request(n, pref[k], &b[k]);
    for (size_t k = 0; k < 3; k++)
        peer_answer(n, pref[k], &b[k], &recs[k]);
    return reply_value(n, rep, val, len);
}

/* The read repair member i receives: an RPUT of the newest record. */
static void expect_repair(struct node *n, size_t i, uint64_t version, const char *val)
{
    struct batch b;
    const struct rk_msg *f = peer_request(n, i, &b);
    assert_int_equal(f->opcode, RK_OP_RPUT);
    assert_memory_equal(f->key, "k", 1);
    assert_int_equal(f->version, version);
    if (val) {
        assert_true(f->has_val && f->vlen == strlen(val));
        assert_memory_equal(f->val, val, f->vlen);
    } else {
        assert_true(f->has_tombstone && f->tombstone);
        assert_false(f->has_val);
    }
    assert_false(f->has_hint);
    peer_ok(n, i, &b);
}

static void test_newest_answer_wins_by_version_then_rank(void **state)
{
    (void)state;
    struct node n;
    size_t pref[MEMBERS];
    struct rk_msg rep;
    char val[64];
    setup_peers(&n, 3, NULL);
    preference(&n, 0, pref, NULL, NULL);
    /* Two replicas at version 7 with different values: the higher rank wins,
     * as it would in either replica's storage. */
    bool a_wins = rk_record_rank(false, "aa", 2, 0) > rk_record_rank(false, "zz", 2, 0);
    const char *win = a_wins ? "aa" : "zz", *lose = a_wins ? "zz" : "aa";
    struct rk_msg recs[3] = {record(6, "old"), record(7, lose), record(7, win)};
    assert_int_equal(read_three(&n, pref, recs, &rep, val, sizeof(val)), RK_ST_OK);
    assert_string_equal(val, win);
    assert_int_equal(rep.version, 7);
    /* The older and the lower-ranked replicas are repaired; the winner is not. */
    expect_repair(&n, pref[0], 7, win);
    expect_repair(&n, pref[1], 7, win);
    peer_silent(&n, pref[2]);
    /* A tombstone beats a value at an equal version: NOT_FOUND. */
    assert_true(rk_record_rank(true, NULL, 0, 0) > rk_record_rank(false, "v", 1, 0));
    struct rk_msg recs2[3] = {record(9, "v"), record(9, NULL), record(8, "w")};
    assert_int_equal(read_three(&n, pref, recs2, &rep, val, sizeof(val)), RK_ST_NOT_FOUND);
    expect_repair(&n, pref[0], 9, NULL);
    expect_repair(&n, pref[2], 9, NULL);
    peer_silent(&n, pref[1]);
    assert_int_equal(stats(&n).read_repairs, 4);
    teardown(&n);
}

static void test_read_repair_sent_to_stale_replicas(void **state)
{
    (void)state;
    struct node n;
    struct batch b[3];
    size_t pref[MEMBERS];
    struct rk_msg rep;
    char val[64];
    setup_peers(&n, 3, NULL);
    preference(&n, 0, pref, NULL, NULL);
    assert_true(start(&n, RK_OP_GET, 0)); /* R = 2 */
    for (size_t k = 0; k < 3; k++)
        peer_request(&n, pref[k], &b[k]);
    struct rk_msg recs[3] = {record(10, "new"), record(5, "old"), record(0, NULL)};
    peer_answer(&n, pref[0], &b[0], &recs[0]);
    peer_answer(&n, pref[1], &b[1], &recs[1]);
    assert_int_equal(reply_value(&n, &rep, val, sizeof(val)), RK_ST_OK);
    assert_string_equal(val, "new");
    /* Repairs wait for every answer: the newest may still come. */
    peer_silent(&n, pref[1]);
    peer_answer(&n, pref[2], &b[2], &recs[2]);
    expect_repair(&n, pref[1], 10, "new"); /* older */
    expect_repair(&n, pref[2], 10, "new"); /* had none */
    peer_silent(&n, pref[0]);
    for (int k = 0; k < 10; k++)
        turn(&n); /* the repairs' acks end their flights */
    assert_int_equal(stats(&n).read_repairs, 2);
    teardown(&n);
}

/* ---- pending owners: the pairing rule (coord.c's design block) ---- */

/* Every member holds every partition except `lacks`, which lacks one. */
struct lacking {
    const char *lacks;
    struct rk_holdings all, some;
};

static const struct rk_holdings *lacking_holdings(void *arg, const char *id)
{
    struct lacking *l = arg;
    return strcmp(id, l->lacks) == 0 ? &l->some : &l->all;
}

/* The cast on partition part of node-1..node-4 (member indices): Pref is
 * [a, nn, b] and nn does not hold part, so nn is pending and the next
 * holder on the walk, d, serves in its place: Serve = [a, b, d], d
 * displaced by nn (its partner). */
struct pairing {
    uint32_t part;
    size_t a, b, d, nn;
};

/* setup_peers with that view; nn_state: the pending member's state. */
static void setup_pairing(struct node *n, struct pairing *pc, uint8_t nn_state)
{
    static const char *const ids[] = {"node-1", "node-2", "node-3", "node-4"};
    struct rk_ring *r;
    const char *walk[MEMBERS];
    pc->part = 0;
    assert_int_equal(rk_ring_build(&r, ids, MEMBERS, PARTS, 3), 0);
    assert_int_equal(rk_ring_walk(r, pc->part, walk, MEMBERS), MEMBERS);
    size_t w[MEMBERS]; /* walk as indices of ids */
    for (size_t j = 0; j < MEMBERS; j++)
        w[j] = (size_t)(walk[j][strlen("node-")] - '1');
    rk_ring_free(r);
    pc->a = w[0], pc->nn = w[1], pc->b = w[2], pc->d = w[3];
    struct lacking l = {.lacks = ids[pc->nn]};
    assert_int_equal(rk_holdings_init(&l.all, PARTS), 0);
    assert_int_equal(rk_holdings_init(&l.some, PARTS), 0);
    for (uint32_t p = 0; p < PARTS; p++) {
        rk_holdings_set(&l.all, p, true);
        rk_holdings_set(&l.some, p, p != pc->part);
    }
    struct rk_view_in in = {.holdings = lacking_holdings, .arg = &l, .agreed = true};
    uint8_t states[MEMBERS] = {RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_ALIVE, RK_MEMBER_ALIVE};
    states[pc->nn] = nn_state;
    assert_true(pc->nn != 0 || nn_state == RK_MEMBER_ALIVE); /* this node is alive */
    view_in = &in;
    setup_peers(n, MEMBERS, states);
    view_in = NULL;
    rk_holdings_fini(&l.all);
    rk_holdings_fini(&l.some);
    /* The view is what the tests below assume. */
    struct rk_view *v = rk_view_acquire(&n->views);
    const struct rk_view_part *vp = &v->part[pc->part];
    assert_int_equal(vp->nserve, 3);
    assert_int_equal(vp->serve[0], pc->a);
    assert_int_equal(vp->serve[1], pc->b);
    assert_int_equal(vp->serve[2], pc->d);
    assert_int_equal(vp->npend, 1);
    assert_int_equal(vp->pend[0], pc->nn);
    assert_int_equal(vp->partner[0], 2);
    rk_view_release(v);
}

/* A replica's refusal, with its reason. */
static struct rk_msg refusal(const char *why)
{
    return (struct rk_msg){.status = RK_ST_REFUSED,
                           .text = (const uint8_t *)why,
                           .tlen = (uint32_t)strlen(why),
                           .has_text = true};
}

/* Start a PUT (W = 2) on the pairing partition; every member of Serve and
 * the pending one receive the same RPUT, none with a hint. */
static void pairing_put(struct node *n, const struct pairing *pc, struct batch *b)
{
    const size_t to[] = {pc->a, pc->b, pc->d, pc->nn};
    assert_true(start_part(n, RK_OP_PUT, 0, pc->part));
    for (size_t k = 0; k < 4; k++) {
        const struct rk_msg *f = peer_request(n, to[k], &b[to[k]]);
        assert_int_equal(f->opcode, RK_OP_RPUT);
        assert_false(f->has_hint);
        assert_int_equal(f->version, b[pc->a].f[0].version);
    }
}

static void test_pairing_displaced_owner_counts_once_successor_acks(void **state)
{
    (void)state;
    struct node n;
    struct pairing pc;
    struct batch b[MEMBERS];
    struct rk_msg rep;
    char val[64];
    setup_pairing(&n, &pc, RK_MEMBER_ALIVE);
    pairing_put(&n, &pc, b);
    peer_ok(&n, pc.d, &b[pc.d]);
    peer_ok(&n, pc.a, &b[pc.a]);
    answer_taken(&n, pc.d);
    answer_taken(&n, pc.a);
    no_reply_yet(&n); /* two acks, but d's counts only with its successor's */
    peer_ok(&n, pc.nn, &b[pc.nn]);
    assert_int_equal(reply_value(&n, &rep, val, sizeof(val)), RK_ST_OK);
    assert_int_equal(rep.version, b[pc.a].f[0].version);
    peer_ok(&n, pc.b, &b[pc.b]); /* late: the op ends quietly */
    for (int k = 0; k < 10; k++)
        turn(&n);
    assert_int_equal(stats(&n).quorum_failed, 0);
    teardown(&n);
}

/* The QUORUM answer of a pairing write where b refused (disk full) and d
 * acked but its successor nn did not (why). */
static void assert_partner_quorum(struct node *n, const struct pairing *pc, const char *why)
{
    char text[512], want[512];
    assert_int_equal(reply(n, text, sizeof(text)), RK_ST_QUORUM);
    snprintf(want, sizeof(want),
             "write quorum not met: 1 of 2 acks (%s refused: disk full, %s acked but its "
             "successor %s did not: %s)",
             n->ids[pc->b], n->ids[pc->d], n->ids[pc->nn], why);
    assert_string_equal(text, want);
}

static void test_pairing_successor_failure_fails_the_write(void **state)
{
    (void)state;
    struct node n;
    struct pairing pc;
    struct batch b[MEMBERS];
    setup_pairing(&n, &pc, RK_MEMBER_ALIVE);
    pairing_put(&n, &pc, b);
    peer_ok(&n, pc.a, &b[pc.a]);
    peer_ok(&n, pc.d, &b[pc.d]);
    struct rk_msg full = refusal("disk full"), not_ready = refusal("not ready");
    peer_answer(&n, pc.b, &b[pc.b], &full);
    answer_taken(&n, pc.a);
    answer_taken(&n, pc.d);
    answer_taken(&n, pc.b);
    no_reply_yet(&n); /* d may still count: its successor has not answered */
    peer_answer(&n, pc.nn, &b[pc.nn], &not_ready);
    assert_partner_quorum(&n, &pc, "refused: not ready");
    assert_int_equal(stats(&n).quorum_failed, 1);
    teardown(&n);
}

static void test_pairing_down_successor_never_lets_its_partner_count(void **state)
{
    (void)state;
    struct node n;
    struct pairing pc;
    struct batch b[MEMBERS];
    setup_pairing(&n, &pc, RK_MEMBER_DEAD); /* the pending member is not this node */
    assert_true(start_part(&n, RK_OP_PUT, 0, pc.part));
    const size_t to[] = {pc.a, pc.b, pc.d};
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(peer_request(&n, to[k], &b[to[k]])->opcode, RK_OP_RPUT);
    peer_silent(&n, pc.nn); /* down: not asked, and no fallback for it */
    peer_ok(&n, pc.d, &b[pc.d]);
    peer_ok(&n, pc.a, &b[pc.a]);
    answer_taken(&n, pc.d);
    answer_taken(&n, pc.a);
    no_reply_yet(&n); /* b may still make two with a */
    struct rk_msg full = refusal("disk full");
    peer_answer(&n, pc.b, &b[pc.b], &full);
    assert_partner_quorum(&n, &pc, "down");
    assert_int_equal(stats(&n).replicas_down, 1);
    teardown(&n);
}

static void test_pairing_unpaired_serving_replicas_suffice_and_reads_skip_pending(void **state)
{
    (void)state;
    struct node n;
    struct pairing pc;
    struct batch b[MEMBERS];
    struct rk_msg rep;
    char val[64];
    setup_pairing(&n, &pc, RK_MEMBER_ALIVE);
    pairing_put(&n, &pc, b);
    peer_ok(&n, pc.b, &b[pc.b]);
    peer_ok(&n, pc.a, &b[pc.a]);
    /* W = 2 of the serving replicas without a partner: d and nn silent. */
    assert_int_equal(reply_value(&n, &rep, val, sizeof(val)), RK_ST_OK);
    assert_int_equal(rep.version, b[pc.a].f[0].version);
    /* A read asks Serve only, and d's answer counts on its own. */
    assert_true(start_part(&n, RK_OP_GET, 0, pc.part)); /* R = 2 */
    const size_t serve[] = {pc.a, pc.b, pc.d};
    struct batch rb[MEMBERS];
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(peer_request(&n, serve[k], &rb[serve[k]])->opcode, RK_OP_RGET);
    peer_silent(&n, pc.nn);
    struct rk_msg newer = record(9, "nine"), older = record(5, "five");
    peer_answer(&n, pc.d, &rb[pc.d], &newer);
    peer_answer(&n, pc.a, &rb[pc.a], &older);
    assert_int_equal(reply_value(&n, &rep, val, sizeof(val)), RK_ST_OK);
    assert_string_equal(val, "nine");
    assert_int_equal(rep.version, 9);
    peer_silent(&n, pc.nn);
    teardown(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_member_known_fails_both_quorums),
        cmocka_unit_test(test_two_known_one_down_is_one_ack_of_two),
        cmocka_unit_test(test_two_known_one_silent_times_out),
        cmocka_unit_test(test_fan_out_asks_every_replica),
        cmocka_unit_test(test_quorum_reached_at_w_acks_and_r_answers),
        cmocka_unit_test(test_silent_replica_fails_after_request_timeout),
        cmocka_unit_test(test_down_replica_write_goes_to_fallback_with_hint),
        cmocka_unit_test(test_newest_answer_wins_by_version_then_rank),
        cmocka_unit_test(test_read_repair_sent_to_stale_replicas),
        cmocka_unit_test(test_pairing_displaced_owner_counts_once_successor_acks),
        cmocka_unit_test(test_pairing_successor_failure_fails_the_write),
        cmocka_unit_test(test_pairing_down_successor_never_lets_its_partner_count),
        cmocka_unit_test(test_pairing_unpaired_serving_replicas_suffice_and_reads_skip_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

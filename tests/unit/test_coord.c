/* The coordinator when it knows fewer members than cluster.replicas: a
 * preference list shorter than R or W must fail the request with QUORUM
 * (saying how many members are known), never shrink the quorum to the
 * list. Driven over real nng sockets (inproc) on a loop of the test's own:
 * a req0 client sends the request, a raw rep0 "node" takes it to the
 * coordinator, this node's own replica is answered by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/coord.h"
#include "cluster/members.h"
#include "util/clock.h"
#include "util/err.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL "inproc://test_coord"
#define PARTS 8

struct node {
    nng_socket sock; /* raw rep0: the node's client socket */
    struct rk_hlc hlc;
    struct rk_view_slot views;
    struct ev_loop *loop;
    struct rk_coord *c;
    nng_socket client; /* raw req0 */
    nng_msg *local; /* this node's replica request, waiting for the test */
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
}

static struct rk_member member(const char *id, uint8_t state, uint64_t settings)
{
    struct rk_member e = {.incarnation = rk_clock_wall_ms(), .state = state,
                          .settings_digest = settings};
    snprintf(e.id, sizeof(e.id), "%s", id);
    snprintf(e.peer_addr, sizeof(e.peer_addr), "tcp://127.0.0.1:1"); /* nothing listens */
    return e;
}

/* A node "node-1" that knows the members ids[] (itself first), each in
 * state states[]; cluster.replicas = 3, R = W = 2. */
static void setup(struct node *n, const char *const *ids, const uint8_t *states, size_t k)
{
    memset(n, 0, sizeof(*n));
    rk_hlc_init(&n->hlc, 500);
    rk_view_slot_init(&n->views);
    uint64_t settings = rk_members_settings_digest("t", PARTS, 3);
    struct rk_members *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    struct rk_member self = member(ids[0], RK_MEMBER_ALIVE, settings);
    assert_int_equal(rk_members_init(t, &self, rk_clock_wall_ms()), 0);
    for (size_t i = 1; i < k; i++) {
        struct rk_member m = member(ids[i], states[i], settings);
        assert_int_equal(rk_members_merge(t, &m, rk_clock_wall_ms(), NULL), 0);
    }
    struct rk_view *v = rk_view_build(t, PARTS, 3);
    assert_non_null(v);
    rk_view_publish(&n->views, v);
    free(t);
    n->loop = ev_loop_new(EVFLAG_AUTO);
    struct rk_coord_env env = {.replicas = 3, .read_quorum = 2, .write_quorum = 2,
                               .request_timeout_ms = 200, .hlc = &n->hlc, .views = &n->views,
                               .reply = send_reply, .local = take_local, .arg = n};
    assert_int_equal(rk_coord_create(&n->c, n->loop, &env), 0);
    assert_int_equal(nng_rep0_open_raw(&n->sock), 0);
    static int seq;
    char url[64];
    snprintf(url, sizeof(url), "%s-%d", URL, ++seq); /* a failed test leaves its own open */
    assert_int_equal(nng_listen(n->sock, url, NULL, 0), 0);
    /* Raw: a receive that times out between loop turns must not cancel the
     * request, as it would on a cooked req0 socket. */
    assert_int_equal(nng_req0_open_raw(&n->client), 0);
    assert_int_equal(nng_dial(n->client, url, NULL, 0), 0);
}

static void teardown(struct node *n)
{
    rk_coord_destroy(n->c);
    nng_close(n->client);
    nng_close(n->sock);
    ev_loop_destroy(n->loop);
    rk_view_slot_fini(&n->views);
}

/* Send a client request through the socket and hand it to the coordinator
 * as the worker would. Returns rk_coord_start's verdict. */
static bool start(struct node *n, uint8_t op, uint8_t quorum)
{
    struct rk_msg m = {.opcode = op, .id = 9, .key = (const uint8_t *)"k", .klen = 1,
                       .has_key = true};
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
    bool taken = rk_coord_start(n->c, got, &req, 0);
    if (!taken)
        nng_msg_free(got);
    return taken;
}

/* Answer this node's own replica request (the worker's part). */
static void answer_local(struct node *n)
{
    assert_non_null(n->local);
    struct rk_msg req, rep;
    assert_int_equal(rk_proto_decode(nng_msg_body(n->local), nng_msg_len(n->local), &req), 0);
    rep = (struct rk_msg){.opcode = req.opcode, .flags = RK_MSG_REPLY, .id = req.id,
                          .version = req.version, .has_version = true};
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
    setup(&n, ids, states, 2);
    assert_true(start(&n, RK_OP_PUT, 0));
    answer_local(&n);
    uint64_t t0 = rk_clock_mono_ns();
    assert_int_equal(reply(&n, text, sizeof(text)), RK_ST_QUORUM);
    assert_true(rk_clock_mono_ns() - t0 >= 150000000ull); /* request_timeout, not at once */
    assert_string_equal(text, "write quorum not met: 1 of 2 acks (node-2 timed out)");
    teardown(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_member_known_fails_both_quorums),
        cmocka_unit_test(test_two_known_one_down_is_one_ack_of_two),
        cmocka_unit_test(test_two_known_one_silent_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

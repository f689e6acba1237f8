/* Client library against an in-process fake node: a rep0 socket on a
 * thread that answers each opcode in a fixed way (one stored key, canned
 * admin replies, a REMOVE that wants FORCE, a GET that traces when asked, a
 * key that never gets an answer, a reply with the wrong id). Checks results,
 * error codes, error lines and timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "client/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "util/clock.h"
#include "util/err.h"

#define TIMEOUT_MS 300
#define TRACE_JSON "{\"coordinator\":\"n1\",\"replicas\":[{\"node\":\"n2\",\"missing\":true}]}"

struct fake {
    nng_socket sock;
    pthread_t thread;
    char addr[64];
    atomic_bool stop;
    uint8_t *key, *val;
    size_t klen, vlen;
    struct rk_msg last; /* scalars of the last request (r, w, ttl) */
};

static struct fake fk;

static bool key_is(const struct rk_msg *m, const char *k)
{
    return m->klen == strlen(k) && memcmp(m->key, k, m->klen) == 0;
}

static void fake_store(const struct rk_msg *m)
{
    free(fk.key);
    free(fk.val);
    fk.key = malloc(m->klen + 1);
    fk.val = malloc(m->vlen + 1);
    memcpy(fk.key, m->key, m->klen);
    memcpy(fk.val, m->val, m->vlen);
    fk.klen = m->klen;
    fk.vlen = m->vlen;
}

static void fake_text(struct rk_msg *rep, enum rk_status st, const char *text)
{
    rep->status = st;
    if (text != NULL) {
        rep->text = (const uint8_t *)text;
        rep->tlen = (uint32_t)strlen(text);
        rep->has_text = true;
    }
}

/* Fill rep for req; false = send no reply at all. */
static bool fake_answer(const struct rk_msg *req, struct rk_msg *rep)
{
    bool stored = fk.key != NULL && req->klen == fk.klen && memcmp(req->key, fk.key, fk.klen) == 0;
    *rep = (struct rk_msg){.opcode = req->opcode, .flags = RK_MSG_REPLY, .id = req->id};
    switch (req->opcode) {
    case RK_OP_PUT:
        fake_store(req);
        rep->version = 42, rep->has_version = true;
        return true;
    case RK_OP_GET:
        if (key_is(req, "slow"))
            return false;
        if (key_is(req, "badid"))
            rep->id++;
        if (!stored)
            rep->status = RK_ST_NOT_FOUND;
        rep->val = fk.val, rep->vlen = (uint32_t)fk.vlen, rep->has_val = stored;
        rep->version = 42, rep->has_version = stored;
        rep->expiry_ms = 1234, rep->has_expiry = stored;
        if (req->has_trace && req->trace == 1)
            fake_text(rep, rep->status, TRACE_JSON);
        else if (key_is(req, "quorum"))
            fake_text(rep, RK_ST_QUORUM, "read quorum not met: 1 of 2 replies (n3 down)");
        return true;
    case RK_OP_DEL:
        rep->version = 43, rep->has_version = true;
        return true;
    case RK_OP_STATUS:
        fake_text(rep, RK_ST_OK, "{\"node\":\"fake\"}");
        return true;
    case RK_OP_STATS:
        fake_text(rep, RK_ST_BUSY, NULL);
        return true;
    case RK_OP_HEALTH:
        fake_text(rep, RK_ST_QUORUM, "write quorum not met: 1 of 2 acks");
        return true;
    case RK_OP_READY:
        fake_text(rep, RK_ST_UNAVAILABLE, "{\"ready\":false}");
        return true;
    case RK_OP_MEMBERS:
        fake_text(rep, RK_ST_OK, "{}");
        return true;
    case RK_OP_JOIN: /* echoes the seed; the reply is encoded before req's buffer goes */
        rep->text = req->key, rep->tlen = req->klen, rep->has_text = req->has_key;
        return true;
    case RK_OP_LOCATE: /* echoes the key, as LEAVE would not */
        rep->text = req->key, rep->tlen = req->klen, rep->has_text = req->has_key;
        return true;
    case RK_OP_RING:
        fake_text(rep, RK_ST_OK, "{\"partitions\":256}");
        return true;
    case RK_OP_OVERVIEW: /* placement only when asked for, as the node does */
        if (req->has_key && !key_is(req, "placement"))
            fake_text(rep, RK_ST_MALFORMED, "overview: unknown argument");
        else
            fake_text(rep, RK_ST_OK, req->has_key ? "{\"placement\":{}}" : "{\"node\":\"fake\"}");
        return true;
    case RK_OP_REMOVE:
        if (!key_is(req, "n2"))
            fake_text(rep, RK_ST_NOT_FOUND, "no member 'n9' (see kvctl members)");
        else if (!req->has_force || req->force != 1)
            fake_text(rep, RK_ST_REFUSED, "n2 is alive: remove only dead members, or use --force");
        else
            fake_text(rep, RK_ST_OK, "{\"message\":\"removed n2\"}");
        return true;
    default:
        fake_text(rep, RK_ST_UNSUPPORTED, NULL);
        return true;
    }
}

static void fake_serve_one(nng_msg *msg)
{
    struct rk_msg req, rep;
    nng_msg *out;
    if (rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &req) != 0 || !fake_answer(&req, &rep))
        return;
    fk.last = req;
    if (nng_msg_alloc(&out, rk_proto_size(&rep)) != 0)
        return;
    rk_proto_encode(&rep, nng_msg_body(out));
    if (nng_sendmsg(fk.sock, out, 0) != 0)
        nng_msg_free(out);
}

static void *fake_main(void *arg)
{
    while (!atomic_load(&fk.stop)) {
        nng_msg *msg;
        if (nng_recvmsg(fk.sock, &msg, 0) != 0)
            continue; /* receive timeout: look at stop again */
        fake_serve_one(msg);
        nng_msg_free(msg);
    }
    return NULL;
}

static int fake_start(void **state)
{
    nng_listener l;
    int port;
    memset(&fk, 0, sizeof fk);
    assert_int_equal(nng_rep0_open(&fk.sock), 0);
    assert_int_equal(nng_socket_set_ms(fk.sock, NNG_OPT_RECVTIMEO, 50), 0);
    assert_int_equal(nng_listen(fk.sock, "tcp://127.0.0.1:0", &l, 0), 0);
    assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    snprintf(fk.addr, sizeof fk.addr, "tcp://127.0.0.1:%d", port);
    assert_int_equal(pthread_create(&fk.thread, NULL, fake_main, NULL), 0);
    return 0;
}

static int fake_stop(void **state)
{
    atomic_store(&fk.stop, true);
    pthread_join(fk.thread, NULL);
    nng_close(fk.sock);
    free(fk.key);
    free(fk.val);
    return 0;
}

static struct rk_client *connect_fake(void)
{
    struct rk_client *c;
    assert_int_equal(rk_client_open(&c, fk.addr, TIMEOUT_MS), 0);
    return c;
}

static void test_put_get_del(void **state)
{
    struct rk_client *c = connect_fake();
    uint8_t val[1000];
    void *got;
    size_t n;
    uint64_t version = 0, expiry = 0;
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (uint8_t)(i * 7); /* NUL bytes and non-UTF-8 included */
    assert_int_equal(rk_client_put(c, "k\0x", 3, val, sizeof val, 5000, &version), 0);
    assert_int_equal(version, 42);
    assert_true(fk.last.has_ttl);
    assert_int_equal(fk.last.ttl_ms, 5000);
    assert_false(fk.last.has_w);
    assert_int_equal(rk_client_get(c, "k\0x", 3, &got, &n, &version, &expiry), 0);
    assert_int_equal(n, sizeof val);
    assert_memory_equal(got, val, n);
    assert_int_equal(((char *)got)[n], '\0');
    assert_int_equal(expiry, 1234);
    free(got);
    assert_int_equal(rk_client_del(c, "k\0x", 3, &version), 0);
    assert_int_equal(version, 43);
    assert_string_equal(rk_client_error(c), "");
    rk_client_close(c);
}

static void test_not_found(void **state)
{
    struct rk_client *c = connect_fake();
    void *got = (void *)1;
    size_t n;
    assert_int_equal(rk_client_get(c, "absent", 6, &got, &n, NULL, NULL), RK_ENOTFOUND);
    assert_null(got);
    assert_int_equal(rk_client_last_status(c), RK_ST_NOT_FOUND);
    rk_client_close(c);
}

static void test_quorum_override(void **state)
{
    struct rk_client *c = connect_fake();
    void *got;
    size_t n;
    assert_int_equal(rk_client_set_quorum(c, 2, 3), 0);
    assert_int_equal(rk_client_put(c, "q", 1, "v", 1, 0, NULL), 0);
    assert_true(fk.last.has_w && fk.last.w == 3 && !fk.last.has_r && !fk.last.has_ttl);
    assert_int_equal(rk_client_get(c, "q", 1, &got, &n, NULL, NULL), 0);
    free(got);
    assert_true(fk.last.has_r && fk.last.r == 2 && !fk.last.has_w);
    assert_int_equal(rk_client_set_quorum(c, 256, 1), RK_EINVAL);
    rk_client_close(c);
}

static void test_admin(void **state)
{
    struct rk_client *c = connect_fake();
    char *json;
    assert_int_equal(rk_client_admin(c, RK_OP_STATUS, &json), 0);
    assert_string_equal(json, "{\"node\":\"fake\"}");
    free(json);
    /* A non-OK reply with TEXT: the code, the text as error and as json. */
    assert_int_equal(rk_client_admin(c, RK_OP_HEALTH, &json), RK_EQUORUM);
    assert_string_equal(rk_client_error(c), "write quorum not met: 1 of 2 acks");
    free(json);
    assert_int_equal(rk_client_admin(c, RK_OP_READY, &json), -ESHUTDOWN);
    assert_string_equal(json, "{\"ready\":false}");
    free(json);
    /* Without TEXT: a line naming the node and the status. */
    assert_int_equal(rk_client_admin(c, RK_OP_STATS, &json), RK_EBUSY);
    assert_null(json);
    assert_non_null(strstr(rk_client_error(c), fk.addr));
    assert_non_null(strstr(rk_client_error(c), "BUSY"));
    assert_int_equal(rk_client_admin(c, RK_OP_PUT, &json), RK_EINVAL);
    rk_client_close(c);
}

/* The membership requests: KEY and FORCE go out as asked; REFUSED and
 * NOT_FOUND come back as codes with the node's line. */
static void test_admin_arg(void **state)
{
    struct rk_client *c = connect_fake();
    char *json;
    assert_int_equal(rk_client_admin_arg(c, RK_OP_MEMBERS, NULL, false, &json), 0);
    assert_string_equal(json, "{}");
    assert_false(fk.last.has_key || fk.last.has_force);
    free(json);
    assert_int_equal(rk_client_admin_arg(c, RK_OP_JOIN, "tcp://10.0.0.1:7402", false, &json), 0);
    assert_string_equal(json, "tcp://10.0.0.1:7402");
    free(json);
    assert_int_equal(rk_client_admin_arg(c, RK_OP_REMOVE, "n2", false, &json), RK_EREFUSED);
    assert_int_equal(rk_client_last_status(c), RK_ST_REFUSED);
    assert_non_null(strstr(rk_client_error(c), "n2 is alive"));
    assert_false(fk.last.has_force);
    free(json);
    assert_int_equal(rk_client_admin_arg(c, RK_OP_REMOVE, "n2", true, &json), 0);
    assert_string_equal(json, "{\"message\":\"removed n2\"}");
    assert_true(fk.last.has_force && fk.last.force == 1);
    free(json);
    assert_int_equal(rk_client_admin_arg(c, RK_OP_REMOVE, "n9", true, &json), RK_ENOTFOUND);
    assert_non_null(strstr(rk_client_error(c), "no member"));
    free(json);
    /* An argument where none belongs, or none where one is needed. */
    assert_int_equal(rk_client_admin_arg(c, RK_OP_LEAVE, "x", false, &json), RK_EINVAL);
    assert_null(json);
    assert_int_equal(rk_client_admin(c, RK_OP_REMOVE, &json), RK_EINVAL);
    assert_int_equal(rk_client_admin_arg(c, RK_OP_GET, "k", false, &json), RK_EINVAL);
    rk_client_close(c);
}

/* OVERVIEW: without an argument no KEY goes out; "placement" goes as KEY;
 * the node's MALFORMED for another comes back as a code with its line. */
static void test_overview_arg(void **state)
{
    (void)state;
    struct rk_client *c = connect_fake();
    char *json;
    assert_int_equal(rk_client_admin(c, RK_OP_OVERVIEW, &json), 0);
    assert_string_equal(json, "{\"node\":\"fake\"}");
    assert_false(fk.last.has_key);
    free(json);
    assert_int_equal(rk_client_admin_arg(c, RK_OP_OVERVIEW, "placement", false, &json), 0);
    assert_string_equal(json, "{\"placement\":{}}");
    assert_true(fk.last.has_key); /* the fake answered "placement" (its key) */
    free(json);
    assert_int_equal(rk_client_admin_arg(c, RK_OP_OVERVIEW, "bogus", false, &json), RK_EMALFORMED);
    assert_non_null(strstr(rk_client_error(c), "unknown argument"));
    free(json);
    rk_client_close(c);
}

/* GET with a trace: TRACE = 1 goes out only when asked, and the reply's
 * TEXT comes back on success and with NOT_FOUND alike. */
static void test_get_trace(void **state)
{
    struct rk_client *c = connect_fake();
    void *got;
    size_t n;
    uint64_t version = 0;
    char *text = (char *)1;
    assert_int_equal(rk_client_put(c, "t", 1, "v", 1, 0, NULL), 0);
    assert_int_equal(rk_client_get_ex(c, "t", 1, true, &got, &n, &version, NULL, &text), 0);
    assert_true(fk.last.has_trace && fk.last.trace == 1);
    assert_string_equal(got, "v");
    assert_int_equal(version, 42);
    assert_string_equal(text, TRACE_JSON);
    free(got);
    free(text);
    assert_int_equal(rk_client_get_ex(c, "absent", 6, true, &got, &n, NULL, NULL, &text),
                     RK_ENOTFOUND);
    assert_null(got);
    assert_string_equal(text, TRACE_JSON);
    free(text);
    /* Untraced: no TRACE field, no TEXT; rk_client_get is the same call. */
    assert_int_equal(rk_client_get_ex(c, "t", 1, false, &got, &n, NULL, NULL, &text), 0);
    assert_false(fk.last.has_trace);
    assert_null(text);
    free(got);
    assert_int_equal(rk_client_get(c, "t", 1, &got, &n, NULL, NULL), 0);
    assert_false(fk.last.has_trace);
    free(got);
    rk_client_close(c);
}

/* QUORUM: the node's line is the error (kvctl prints it, exit 3). */
static void test_get_quorum_text(void **state)
{
    struct rk_client *c = connect_fake();
    void *got;
    size_t n;
    char *text;
    assert_int_equal(rk_client_get_ex(c, "quorum", 6, false, &got, &n, NULL, NULL, &text),
                     RK_EQUORUM);
    assert_string_equal(rk_client_error(c), "read quorum not met: 1 of 2 replies (n3 down)");
    assert_string_equal(text, "read quorum not met: 1 of 2 replies (n3 down)");
    assert_null(got);
    free(text);
    rk_client_close(c);
}

/* LOCATE takes the key as KEY; RING takes nothing. */
static void test_locate_ring(void **state)
{
    struct rk_client *c = connect_fake();
    char *json;
    assert_int_equal(rk_client_admin_arg(c, RK_OP_LOCATE, "k\xff", false, &json), 0);
    assert_string_equal(json, "k\xff");
    free(json);
    assert_int_equal(rk_client_admin(c, RK_OP_RING, &json), 0);
    assert_string_equal(json, "{\"partitions\":256}");
    assert_false(fk.last.has_key);
    free(json);
    assert_int_equal(rk_client_admin(c, RK_OP_LOCATE, &json), RK_EINVAL);
    assert_int_equal(rk_client_admin_arg(c, RK_OP_RING, "k", false, &json), RK_EINVAL);
    rk_client_close(c);
}

static void test_no_answer_is_timeout(void **state)
{
    struct rk_client *c = connect_fake();
    void *got;
    size_t n;
    uint64_t t0 = rk_clock_mono_ns();
    assert_int_equal(rk_client_get(c, "slow", 4, &got, &n, NULL, NULL), RK_ETIMEDOUT);
    uint64_t ms = (rk_clock_mono_ns() - t0) / 1000000;
    assert_in_range(ms, TIMEOUT_MS - 10, TIMEOUT_MS + 500);
    assert_non_null(strstr(rk_client_error(c), "connected, but"));
    assert_non_null(strstr(rk_client_error(c), "300ms"));
    /* The socket is still usable afterwards. */
    assert_int_equal(rk_client_put(c, "k", 1, "v", 1, 0, NULL), 0);
    rk_client_close(c);
}

static void test_refused_fails_at_once(void **state)
{
    struct rk_client *c;
    void *got;
    size_t n;
    assert_int_equal(rk_client_open(&c, "tcp://127.0.0.1:1", TIMEOUT_MS), 0);
    uint64_t t0 = rk_clock_mono_ns();
    assert_int_equal(rk_client_get(c, "k", 1, &got, &n, NULL, NULL), -ECONNREFUSED);
    uint64_t ms = (rk_clock_mono_ns() - t0) / 1000000;
    assert_in_range(ms, 0, 100); /* not the 300 ms timeout */
    assert_non_null(strstr(rk_client_error(c), "tcp://127.0.0.1:1 refused the connection"));
    rk_client_close(c);
}

/* A TCP port that accepts connections (the kernel's backlog) and never
 * speaks: nng connects but no pipe ever comes up. Returns the fd. */
static int silent_listener(char *addr, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, len, "127.0.0.1:%u", ntohs(sa.sin_port));
    return fd;
}

static void test_address_list_passes_over_unreachable(void **state)
{
    struct rk_client *c;
    char silent[64], list[512];
    int fd = silent_listener(silent, sizeof silent);
    /* Refused, then silent (the send times out: never sent), then the
     * node, written HOST:PORT. */
    snprintf(list, sizeof list, "127.0.0.1:1,%s,%s", silent, fk.addr + strlen("tcp://"));
    assert_int_equal(rk_client_open(&c, list, TIMEOUT_MS), 0);
    assert_string_equal(rk_client_addr(c), "tcp://127.0.0.1:1");
    assert_int_equal(rk_client_put(c, "k", 1, "v", 1, 0, NULL), 0);
    assert_string_equal(rk_client_addr(c), fk.addr);
    rk_client_close(c);
    /* Every address refuses: at once, one line. */
    assert_int_equal(rk_client_open(&c, "127.0.0.1:1,tcp://127.0.0.1:1", TIMEOUT_MS), 0);
    assert_int_equal(rk_client_del(c, "k", 1, NULL), -ECONNREFUSED);
    assert_non_null(strstr(rk_client_error(c), "every address refused the connection"));
    rk_client_close(c);
    close(fd);
}

static void test_bad_address(void **state)
{
    struct rk_client *c;
    assert_int_equal(rk_client_open(&c, "nonsense", 1000), RK_EINVAL);
    assert_non_null(strstr(rk_client_error(c), "bad address 'tcp://nonsense'"));
    rk_client_close(c);
    assert_int_equal(rk_client_open(&c, "127.0.0.1:7400,", 1000), RK_EINVAL);
    assert_non_null(strstr(rk_client_error(c), "an empty or overlong entry"));
    rk_client_close(c);
    assert_int_equal(rk_client_open(&c, "127.0.0.1:7400,bogus://x", 1000), RK_EINVAL);
    assert_non_null(strstr(rk_client_error(c), "bad address 'bogus://x'"));
    rk_client_close(c);
    assert_int_equal(rk_client_open(&c, "tcp://127.0.0.1:7400", 0), RK_EINVAL);
    rk_client_close(c);
}

static void test_mismatched_reply(void **state)
{
    struct rk_client *c = connect_fake();
    void *got;
    size_t n;
    assert_int_equal(rk_client_get(c, "badid", 5, &got, &n, NULL, NULL), -EPROTO);
    assert_non_null(strstr(rk_client_error(c), "does not match"));
    rk_client_close(c);
}

static void test_generic_call(void **state)
{
    struct rk_client *c = connect_fake();
    struct rk_msg req = {.opcode = RK_OP_DEL,
                         .key = (const uint8_t *)"k",
                         .klen = 1,
                         .has_key = true,
                         .id = 7},
                  rep;
    assert_int_equal(rk_client_call(c, &req, &rep), 0);
    assert_true(rep.has_version && rep.version == 43);
    assert_int_not_equal(fk.last.id, 7); /* the client chooses ids */
    req = (struct rk_msg){.opcode = RK_OP_ECHO};
    assert_int_equal(rk_client_call(c, &req, &rep), RK_EUNSUPPORTED); /* the fake has no ECHO */
    assert_int_equal(rep.status, RK_ST_UNSUPPORTED);
    assert_int_equal(rk_client_last_status(c), RK_ST_UNSUPPORTED);
    assert_non_null(strstr(rk_client_error(c), "UNSUPPORTED"));
    rk_client_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_quorum_override),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_no_answer_is_timeout),
        cmocka_unit_test(test_refused_fails_at_once),
        cmocka_unit_test(test_address_list_passes_over_unreachable),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_mismatched_reply),
        cmocka_unit_test(test_generic_call),
        cmocka_unit_test(test_admin_arg),
        cmocka_unit_test(test_overview_arg),
        cmocka_unit_test(test_get_trace),
        cmocka_unit_test(test_get_quorum_text),
        cmocka_unit_test(test_locate_ring),
    };
    return cmocka_run_group_tests(tests, fake_start, fake_stop);
}

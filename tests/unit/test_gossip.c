/* Gossip over real loopback sockets: three instances on one loop find each
 * other from one seed, agree that all three are alive, see a stopped one go
 * suspect and then dead within dead_after plus two intervals, and see it
 * alive again when it comes back with a higher incarnation. Every wait is
 * a poll of the loop with a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cluster/gossip.h"
#include "util/err.h"
#include "util/clock.h"
#include "util/log.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N           3
#define INTERVAL_MS 100
#define SUSPECT_MS  400
#define DEAD_MS     800

/* A loopback port free a moment ago, below the kernel's ephemeral range:
 * a port from that range may be taken as the local end of any outgoing
 * connection (another node's dial) before the node binds it. */
static int free_port(void)
{
    static unsigned seed;
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    static int given[64], ngiven;
    for (int tries = 0; tries < 1000; tries++) {
        int port = 10000 + (int)(rand_r(&seed) % (unsigned)(low - 10000));
        bool seen = false;
        for (int k = 0; k < ngiven; k++)
            seen |= given[k] == port;
        if (seen)
            continue; /* handed out already, maybe not bound yet */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok && ngiven < 64)
            given[ngiven++] = port;
        if (ok)
            return port;
    }
    return -1;
}

struct node {
    struct rk_member self;
    struct rk_gossip *g;
};

static struct ev_loop *loop;
static struct node nodes[N];
static char addrs[N][64];

static void start_with(int i, uint64_t incarnation, uint32_t partitions)
{
    struct rk_member *m = &nodes[i].self;
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "node-%d", i + 1);
    snprintf(m->gossip_addr, sizeof(m->gossip_addr), "%s", addrs[i]);
    snprintf(m->client_addr, sizeof(m->client_addr), "tcp://127.0.0.1:1");
    snprintf(m->peer_addr, sizeof(m->peer_addr), "tcp://127.0.0.1:2");
    m->incarnation = incarnation;
    m->settings_digest = rk_members_settings_digest("test", partitions, 3);
    const char *seeds[] = {addrs[0]}; /* everyone knows only node-1 */
    struct rk_gossip_opts o = {.listen = addrs[i],
                               .self = m,
                               .seeds = seeds,
                               .nseeds = 1,
                               .cluster_name = "test",
                               .partitions = partitions,
                               .replicas = 3,
                               .interval_ms = INTERVAL_MS,
                               .suspect_after_ms = SUSPECT_MS,
                               .dead_after_ms = DEAD_MS};
    char err[256] = "";
    if (rk_gossip_start(&nodes[i].g, loop, &o, err, sizeof(err)) != 0)
        fail_msg("start node-%d: %s", i + 1, err);
}

static void start(int i, uint64_t incarnation)
{
    start_with(i, incarnation, 256);
}

/* State node `who` has in node `at`'s table, or -1 if absent. */
static int state_of(int at, int who)
{
    const struct rk_member *m = rk_members_find(rk_gossip_members(nodes[at].g), nodes[who].self.id);
    return m ? m->state : -1;
}

static bool all_see(int who, int state, const bool *running)
{
    for (int at = 0; at < N; at++)
        if (running[at] && at != who && state_of(at, who) != state)
            return false;
    return true;
}

/* Run the loop until pred holds; returns the ms it took, fails at deadline. */
static uint64_t run_until(bool (*pred)(void *), void *arg, uint64_t deadline_ms, const char *what)
{
    uint64_t t0 = rk_clock_mono_ns();
    while (!pred(arg)) {
        if ((rk_clock_mono_ns() - t0) / 1000000 > deadline_ms)
            fail_msg("timed out after %llu ms waiting for %s", (unsigned long long)deadline_ms,
                     what);
        ev_run(loop, EVRUN_ONCE);
    }
    return (rk_clock_mono_ns() - t0) / 1000000;
}

static bool running[N];

static bool converged(void *arg)
{
    (void)arg;
    for (int who = 0; who < N; who++)
        if (running[who] && !all_see(who, RK_MEMBER_ALIVE, running))
            return false;
    return true;
}

static bool dead3(void *arg)
{
    int *want = arg;
    return all_see(2, *want, running);
}

static void new_port(int i)
{
    int p = free_port();
    assert_true(p > 0);
    snprintf(addrs[i], sizeof(addrs[i]), "tcp://127.0.0.1:%d", p);
}

static void pick_ports(void)
{
    for (int i = 0; i < N; i++)
        new_port(i);
}

/* A new loop and N nodes on fresh ports, every one seeded with node-1. */
static void start_all(void)
{
    loop = ev_loop_new(0);
    pick_ports();
    for (int i = 0; i < N; i++) {
        start(i, 1);
        running[i] = true;
    }
}

static void test_join_detect_return(void **state)
{
    (void)state;
    start_all();
    uint64_t ms = run_until(converged, NULL, 10000, "three alive everywhere");
    print_message("converged in %llu ms\n", (unsigned long long)ms);

    rk_gossip_stop(nodes[2].g);
    running[2] = false;
    int want = RK_MEMBER_SUSPECT;
    uint64_t t_suspect = run_until(dead3, &want, SUSPECT_MS + 4 * INTERVAL_MS, "node-3 suspect");
    want = RK_MEMBER_DEAD;
    uint64_t t_dead = run_until(dead3, &want, DEAD_MS + 2 * INTERVAL_MS, "node-3 dead");
    print_message("suspect after %llu ms, then dead after %llu ms more\n",
                  (unsigned long long)t_suspect, (unsigned long long)t_dead);

    new_port(2); /* a stuck close may keep the old one (see nng_close.h) */
    start(2, 2); /* a restart: higher incarnation */
    running[2] = true;
    run_until(converged, NULL, 5000, "node-3 alive again");
    for (int at = 0; at < 2; at++)
        assert_int_equal(
            rk_members_find(rk_gossip_members(nodes[at].g), nodes[2].self.id)->incarnation, 2);
    for (int i = 0; i < N; i++)
        rk_gossip_stop(nodes[i].g);
    ev_loop_destroy(loop);
}

/* node's latest refusal names setting, or NULL if none yet. */
static const struct rk_gossip_refusal *refusal(int at)
{
    const struct rk_gossip_refusal *r;
    return rk_gossip_refusals(nodes[at].g, &r) > 0 ? r : NULL;
}

static bool both_refused(void *arg)
{
    (void)arg;
    return refusal(0) && refusal(1);
}

static bool island(void *arg)
{
    return rk_gossip_islanded(((struct node *)arg)->g, NULL, 0);
}

/* A node with other cluster settings is refused on both sides, with the
 * setting and both values named, and never enters either table. */
static void test_settings_mismatch_refused(void **state)
{
    (void)state;
    loop = ev_loop_new(0);
    pick_ports();
    start(0, 1);
    start_with(1, 1, 128);
    run_until(both_refused, NULL, 5000, "both nodes to refuse each other");
    const struct rk_gossip_refusal *a = refusal(0), *b = refusal(1);
    assert_string_equal(a->setting, "cluster.partitions");
    assert_string_equal(a->theirs, "128");
    assert_string_equal(a->ours, "256");
    assert_string_equal(a->id, "node-2");
    assert_string_equal(b->theirs, "256");
    assert_string_equal(b->ours, "128");
    assert_int_equal(rk_gossip_members(nodes[0].g)->n, 1);
    assert_int_equal(rk_gossip_members(nodes[1].g)->n, 1);
    /* node-2 sought node-1 out (its seed) and was refused: an island.
     * node-1 was only surveyed by a stranger and has no seed: not one. */
    char why[400] = "";
    run_until(island, &nodes[1], 2 * INTERVAL_MS + 1000, "node-2 to see itself cut off");
    assert_true(rk_gossip_islanded(nodes[1].g, why, sizeof(why)));
    assert_non_null(strstr(why, "node node-1"));
    assert_non_null(strstr(why, "cluster.partitions differs: theirs 256, ours 128"));
    assert_false(rk_gossip_islanded(nodes[0].g, why, sizeof(why)));
    rk_gossip_stop(nodes[0].g);
    rk_gossip_stop(nodes[1].g);
    ev_loop_destroy(loop);
}

static bool no_refusals(void *arg)
{
    struct node *n = arg;
    const struct rk_gossip_refusal *r;
    return rk_gossip_refusals(n->g, &r) == 0;
}

static bool alive_on_1(void *arg)
{
    return state_of(0, *(int *)arg) == RK_MEMBER_ALIVE;
}

/* node-1's refusal of node-2 lasts only while node-2 is refused: it goes
 * when node-2 stops trying (dead_after), when node-2 comes back with the
 * right settings and is accepted, and when node-2 is removed. */
static void test_refusal_lasts_only_while_refused(void **state)
{
    (void)state;
    loop = ev_loop_new(0);
    pick_ports();
    start(0, 1);
    start_with(1, 1, 128);
    run_until(both_refused, NULL, 5000, "both nodes to refuse each other");
    rk_gossip_stop(nodes[1].g);
    uint64_t ms = run_until(no_refusals, &nodes[0], DEAD_MS + 4 * INTERVAL_MS,
                            "node-1's refusal of a stopped node-2 to expire");
    print_message("refusal of a stopped node expired after %llu ms\n", (unsigned long long)ms);

    new_port(1);
    start_with(1, 2, 128);
    run_until(both_refused, NULL, 5000, "node-2 refused again");
    rk_gossip_stop(nodes[1].g);
    new_port(1);
    start_with(1, 3, 256); /* fixed: accepted, so the refusal goes at once */
    int who = 1;
    run_until(alive_on_1, &who, 5000, "node-2 accepted by node-1");
    assert_true(no_refusals(&nodes[0]));
    assert_false(rk_gossip_islanded(nodes[1].g, NULL, 0));

    rk_gossip_stop(nodes[1].g); /* a member comes back with other settings */
    new_port(1);
    start_with(1, 4, 128);
    run_until(both_refused, NULL, 5000, "node-2 refused with its new settings");
    assert_int_equal(rk_gossip_remove(nodes[0].g, nodes[1].self.id, true), 0);
    assert_true(no_refusals(&nodes[0])); /* out of the ring: moot */
    rk_gossip_stop(nodes[0].g);
    rk_gossip_stop(nodes[1].g);
    ev_loop_destroy(loop);
}

static bool left_done;
static void on_left(void *arg)
{
    (void)arg;
    left_done = true;
}

static bool two_see_left(void *arg)
{
    (void)arg;
    return left_done && state_of(0, 2) == RK_MEMBER_LEFT && state_of(1, 2) == RK_MEMBER_LEFT;
}

static bool two_see_removed(void *arg)
{
    (void)arg;
    return state_of(0, 1) == RK_MEMBER_LEFT && state_of(2, 1) == RK_MEMBER_LEFT;
}

/* leave: LEAVING, then LEFT everywhere, then done. remove: refused for a
 * live member, and a dead member's removal spreads to every table. */
static void test_leave_and_remove(void **state)
{
    (void)state;
    start_all();
    run_until(converged, NULL, 10000, "three alive everywhere");
    assert_int_equal(rk_gossip_remove(nodes[0].g, nodes[1].self.id, false), RK_EBUSY);
    assert_int_equal(rk_gossip_remove(nodes[0].g, nodes[0].self.id, true), RK_EINVAL);
    assert_int_equal(rk_gossip_remove(nodes[0].g, "nobody", true), RK_ENOTFOUND);

    assert_int_equal(rk_gossip_leave(nodes[2].g, on_left, NULL), 0);
    assert_int_equal(rk_gossip_leave(nodes[2].g, on_left, NULL), RK_EINVAL);
    run_until(two_see_left, NULL, 3000, "node-3 left everywhere");
    rk_gossip_stop(nodes[2].g);
    running[2] = false;

    /* node-2 dies; node-1 removes it once dead; node-3 comes back and
     * learns the removal from node-1. */
    rk_gossip_stop(nodes[1].g);
    running[1] = false;
    int want = RK_MEMBER_DEAD;
    uint64_t t0 = rk_clock_mono_ns();
    while (state_of(0, 1) != want) {
        assert_true((rk_clock_mono_ns() - t0) / 1000000 < DEAD_MS + 4 * INTERVAL_MS);
        ev_run(loop, EVRUN_ONCE);
    }
    assert_int_equal(rk_gossip_remove(nodes[0].g, nodes[1].self.id, false), 0);
    new_port(2);
    start(2, 2);
    running[2] = true;
    run_until(two_see_removed, NULL, 3000, "node-2's removal on node-3");
    rk_gossip_stop(nodes[0].g);
    rk_gossip_stop(nodes[2].g);
    ev_loop_destroy(loop);
}

int main(void)
{
    rk_log_set_level(RK_LOG_WARN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_join_detect_return),
                                       cmocka_unit_test(test_settings_mismatch_refused),
                                       cmocka_unit_test(test_refusal_lasts_only_while_refused),
                                       cmocka_unit_test(test_leave_and_remove)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

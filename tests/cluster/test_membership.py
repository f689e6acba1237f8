"""Membership over gossip, black-box: real ringkvd processes on loopback.

Every cluster here gossips every 200 ms, suspects after 1 s of silence and
convicts after 2 s, so each wait is bounded by those figures plus slack for
slow (sanitizer) builds; nothing sleeps a fixed time except the deliberate
SIGSTOP window of the short-pause test, which is the thing under test.
"""

import signal
import threading
import time

from harness import last_json, wait_for

INTERVAL_S, SUSPECT_S, DEAD_S = 0.2, 1.0, 2.0
GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
SLACK_S = 10  # extra time for convergence waits in slow builds


def members(node):
    """The node's member table as {id: entry}, or None if it did not answer."""
    r = node.kvctl("--timeout", "2s", "--json", "members", timeout=10)
    if r.rc != 0:
        return None
    j = last_json(r.out)
    return {m["id"]: m for m in j["members"]}


def state_of(node, who):
    t = members(node)
    return t[who.name]["state"] if t and who.name in t else None


def all_alive(nodes, count=None):
    """Every node sees `count` members (default len(nodes)), all alive."""
    count = count or len(nodes)
    for n in nodes:
        t = members(n)
        if t is None or len(t) != count or any(m["state"] != "alive" for m in t.values()):
            return False
    return True


def wait_converged(nodes, timeout=SLACK_S, count=None):
    wait_for(lambda: all_alive(nodes, count), timeout,
             f"{count or len(nodes)} members alive on every node")


def start_gossip_cluster(cluster, n, **kw):
    cluster.overrides.update(GOSSIP)
    nodes = cluster.start(n, **kw)
    wait_converged(nodes)
    return nodes


def test_three_nodes_all_alive_everywhere(cluster):
    nodes = start_gossip_cluster(cluster, 3)
    t = members(nodes[0])
    assert set(t) == {"node-1", "node-2", "node-3"}
    assert t["node-1"]["self"] is True and t["node-2"]["self"] is False
    for n in nodes:  # advertised addresses are the ones peers dial
        assert t[n.name]["client"] == n.client_addr
        assert t[n.name]["gossip"] == n.gossip_addr
        assert t[n.name]["config_match"] is True
    # Every node agrees on the same table.
    digests = {last_json(n.kvctl("--json", "members").out)["digest"] for n in nodes}
    assert len(digests) == 1, digests
    # The human table: one row per member and the summary line.
    out = nodes[0].kvctl("members").out.decode()
    assert "node-1*" in out and "node-3" in out, out
    assert "3 members: 3 alive" in out, out
    # RTT comes from the survey round trip.
    wait_for(lambda: all(m["rtt_us"] > 0 for m in members(nodes[0]).values() if not m["self"]),
             SLACK_S, "an RTT for every peer")
    status = last_json(nodes[1].kvctl("--json", "status").out)
    assert status["members"]["total"] == 3 and status["members"]["alive"] == 3, status


def test_reverse_order_with_delays(cluster):
    cluster.overrides.update(GOSSIP)
    nodes = [cluster.add_node() for _ in range(3)]
    for i, n in enumerate(reversed(nodes)):  # node-3 first: its seeds are not up yet
        n.start()
        if i < 2:  # fewer than expect_nodes seen: forming, ready (nobody waits for the others)
            assert n.kvctl("ready").rc == 0, "a forming cluster is ready"
    wait_converged(nodes)
    for n in nodes:  # all three seen: ready once formed (each holds its partitions)
        n.wait_serving(20)


def test_single_seed_of_itself_forms_a_cluster_of_one(cluster):
    n = cluster.add_node(overrides={**GOSSIP, "cluster.expect_nodes": 1})
    n.overrides["cluster.seeds"] = [n.gossip_addr]
    n.start()
    wait_for(lambda: members(n) is not None and len(members(n)) == 1, 5, "a table of one")
    assert n.kvctl("ready").rc == 0
    assert "no peer has answered" not in n.run_log()


def test_short_pause_convicts_nobody(cluster):
    nodes = start_gossip_cluster(cluster, 3)
    paused = nodes[2]
    marks = [n.log_mark() for n in nodes[:2]]
    # Half of suspect_after, the deliberate fault window, timed by its own
    # thread so slow polls cannot stretch it.
    resumed = threading.Event()

    def window():
        time.sleep(SUSPECT_S / 2)
        paused.resume()
        resumed.set()

    paused.pause()
    t = threading.Thread(target=window)
    t.start()
    try:
        while not resumed.is_set():
            for n in nodes[:2]:
                assert state_of(n, paused) != "dead"
    finally:
        t.join()
    wait_converged(nodes)
    for n, mark in zip(nodes[:2], marks):
        assert not any("node-3: " in line and "-> dead" in line for line in n.log_lines(mark))


def test_long_pause_suspect_then_dead_then_alive(cluster):
    nodes = start_gossip_cluster(cluster, 3)
    paused, others = nodes[2], nodes[:2]
    paused.pause()
    t0 = time.monotonic()
    try:
        wait_for(lambda: all(state_of(n, paused) in ("suspect", "dead") for n in others),
                 SUSPECT_S + 4 * INTERVAL_S + SLACK_S, "node-3 suspect on both others")
        wait_for(lambda: all(state_of(n, paused) == "dead" for n in others),
                 DEAD_S + 2 * INTERVAL_S + SLACK_S, "node-3 dead on both others")
        took = time.monotonic() - t0
        inc = members(others[0])["node-3"]["incarnation"]  # before it can refute
    finally:
        paused.resume()
    # Both saw it suspected before dead: the log says so, in that order.
    for n in others:
        lines = [ln for ln in n.log_lines() if "member node-3:" in ln]
        assert any("alive -> suspect" in ln for ln in lines), lines
        assert any("suspect -> dead" in ln for ln in lines), lines
    wait_converged(nodes)  # it refutes with a higher incarnation
    assert members(others[0])["node-3"]["incarnation"] > inc
    assert took >= SUSPECT_S, f"convicted after {took:.2f}s, before suspect_after"
    assert paused.log_mark() and "refuted a suspicion" in paused.run_log()


def test_kill9_restart_comes_back_with_higher_incarnation(cluster):
    nodes = start_gossip_cluster(cluster, 3)
    victim = nodes[1]
    inc = members(nodes[0])["node-2"]["incarnation"]
    victim.kill()
    wait_for(lambda: all(state_of(n, victim) == "dead" for n in (nodes[0], nodes[2])),
             DEAD_S + SLACK_S, "node-2 dead on both others")
    victim.start()
    t0 = time.monotonic()
    wait_converged(nodes)
    assert members(nodes[0])["node-2"]["incarnation"] > inc
    assert members(nodes[2])["node-2"]["incarnation"] > inc
    print(f"restarted node alive everywhere {time.monotonic() - t0:.2f}s after it was healthy")


def test_different_partitions_refused_with_both_values(cluster):
    nodes = start_gossip_cluster(cluster, 2)
    odd = cluster.add_node(overrides={"cluster.partitions": 128, **GOSSIP})
    odd.overrides["cluster.seeds"] = [nodes[0].gossip_addr]
    odd.start()
    line = odd.wait_log("refused node node-1", timeout=SLACK_S)
    assert "cluster.partitions" in line and "theirs 256" in line and "ours 128" in line, line
    line = nodes[0].wait_log("refused node node-3", timeout=SLACK_S)
    assert "cluster.partitions" in line and "theirs 128" in line and "ours 256" in line, line
    t = members(nodes[0])
    assert "node-3" not in t
    j = last_json(nodes[0].kvctl("--json", "members").out)
    assert any(r["id"] == "node-3" and r["setting"] == "cluster.partitions" for r in j["refused"]), j
    out = nodes[0].kvctl("members").out.decode()
    assert "refused: node-3" in out and "theirs 128, ours 256" in out, out
    assert len(members(odd)) == 1


def test_remove_dead_node_spreads_to_every_member(cluster):
    nodes = start_gossip_cluster(cluster, 3)
    a, b, dead = nodes
    r = a.kvctl("remove", "node-3")
    assert r.rc == 2 and "alive" in r.err and "--force" in r.err, r
    assert a.kvctl("remove", "node-1").rc == 2  # itself
    r = a.kvctl("remove", "node-9")
    assert r.rc == 2 and "no member node-9" in r.err, r
    dead.kill()
    wait_for(lambda: state_of(a, dead) == "dead", DEAD_S + SLACK_S, "node-3 dead on node-1")
    r = a.kvctl("remove", "node-3")
    assert r.rc == 0, r
    wait_for(lambda: state_of(b, dead) in ("left", None), SLACK_S, "node-3's removal on node-2")
    assert state_of(a, dead) in ("left", None)


def test_leave_announces_then_stops(cluster):
    nodes = start_gossip_cluster(cluster, 3)
    leaver = nodes[2]
    r = leaver.kvctl("leave")
    assert r.rc == 0, r
    assert leaver.wait_exit(SLACK_S + 5) == 0
    for n in nodes[:2]:
        assert state_of(n, leaver) == "left", members(n)
    assert "left the cluster" in leaver.run_log()


def test_join_command_links_two_single_node_clusters(cluster):
    cluster.overrides.update({**GOSSIP, "cluster.expect_nodes": 1})
    a, b = cluster.add_node(), cluster.add_node()
    a.overrides["cluster.seeds"] = [a.gossip_addr]
    b.overrides["cluster.seeds"] = [b.gossip_addr]
    a.start()
    b.start()
    wait_converged([a], count=1)
    r = b.kvctl("join", "localhost:1")
    assert r.rc == 2 and "tcp://HOST:PORT" in r.err, r
    r = b.kvctl("join", a.gossip_addr)
    assert r.rc == 0, r
    wait_converged([a, b])


def test_readiness_during_one_by_one_start_and_after_losses(cluster):
    cluster.overrides.update(GOSSIP)
    nodes = [cluster.add_node() for _ in range(3)]  # expect_nodes = 3, write quorum 2
    nodes[0].start()
    r = nodes[0].kvctl("ready")
    assert r.rc == 0 and "forming" in r.out.decode(), r
    nodes[1].start()
    assert nodes[1].kvctl("ready").rc == 0  # 2 of 3 seen: still forming
    nodes[2].start()
    wait_converged(nodes)
    for n in nodes:  # all three seen: ready once formed
        n.wait_serving(SLACK_S)
    # Two of three gone: one peer short of a write quorum of 2 → not ready.
    nodes[1].kill()
    nodes[2].kill()
    wait_for(lambda: nodes[0].kvctl("ready").rc == 1, DEAD_S + SLACK_S, "node-1 not ready")
    r = nodes[0].kvctl("ready")
    assert "ready: no:" in r.err and "write quorum" in r.err, r
    assert nodes[0].kvctl("health").rc == 0  # alive, only not ready
    nodes[1].start()
    wait_for(lambda: nodes[0].kvctl("ready").rc == 0, SLACK_S, "node-1 ready again")


def test_five_nodes_converge(cluster):
    start_gossip_cluster(cluster, 5)


def test_nine_nodes_converge(cluster):
    cluster.overrides["node.workers"] = 1
    start_gossip_cluster(cluster, 9, timeout=60)


def test_stop_with_peers_down_is_prompt(cluster):
    """A node whose peers are gone still stops at once on SIGTERM (its
    dialers keep retrying them while it closes)."""
    nodes = start_gossip_cluster(cluster, 3)
    nodes[1].kill()
    nodes[2].kill()
    t0 = time.monotonic()
    assert nodes[0].stop() == 0
    assert time.monotonic() - t0 < 8, "stop took too long"


def test_sigterm_node_is_seen_dead_not_left(cluster):
    """A plain stop is not a departure: it announces itself down (shown
    "stopped", dead on the wire, still in the ring) and rejoins on restart."""
    nodes = start_gossip_cluster(cluster, 3)
    assert nodes[2].stop() == 0
    wait_for(lambda: state_of(nodes[0], nodes[2]) == "stopped", SLACK_S, "node-3 stopped")
    nodes[2].start()
    wait_converged(nodes)
    nodes[2].signal(signal.SIGHUP)  # a reload does not disturb membership
    wait_converged(nodes)


def test_auto_remove_after(cluster):
    cluster.overrides["cluster.auto_remove_after"] = "3s"
    nodes = start_gossip_cluster(cluster, 3)
    nodes[2].kill()
    wait_for(lambda: all(state_of(n, nodes[2]) == "dead" for n in nodes[:2]),
             DEAD_S + SLACK_S, "node-3 dead")
    wait_for(lambda: all(state_of(n, nodes[2]) in ("left", None) for n in nodes[:2]),
             3 + SLACK_S, "node-3 removed after cluster.auto_remove_after")
    assert "cluster.auto_remove_after" in nodes[0].log() + nodes[1].log()


def test_unreachable_seed_is_retried_and_logged(cluster):
    cluster.overrides.update(GOSSIP)
    a = cluster.add_node()
    b = cluster.add_node()  # configured as a seed, started late
    a.overrides["cluster.seeds"] = [b.gossip_addr]
    b.overrides["cluster.seeds"] = [b.gossip_addr]
    a.start()
    line = a.wait_log("no peer has answered yet", timeout=SLACK_S)
    assert b.gossip_addr in line, line
    assert a.kvctl("ready").rc == 0  # still forming: ready without peers
    b.start()
    wait_converged([a, b])
    assert "reached the cluster through node-2" in a.run_log()

"""Readiness and islands, black-box: real ringkvd processes on loopback.

A node whose cluster settings differ from the cluster's is refused by the
peers it seeks out; it must not act as a cluster of its own: client reads
and writes fail with one line naming the setting and the peer, and
`kvctl ready` says no. `kvctl ready` also says no when a write quorum is
out of reach for some partition (members dead but not removed), and still
says yes while a cluster forms one node at a time.

Exit codes (DESIGN.md §2): a probe that says no exits 1; a read or write
refused by an island exits 3, "cluster error": the request was valid, the
node cannot carry it out until it reaches its cluster (not bad input, 2).

Gossip every 200 ms, suspect after 1 s, dead after 2 s: every wait is a
poll bounded by those plus slack for slow (sanitizer) builds.
"""

import shutil
import time

from harness import last_json, wait_for

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
DEAD_S = 2.0
SLACK_S = 15


def members_json(node):
    r = node.kvctl("--timeout", "2s", "--json", "members", timeout=10)
    return last_json(r.out) if r.rc == 0 else None


def all_alive(nodes):
    for n in nodes:
        j = members_json(n)
        if j is None or len(j["members"]) != len(nodes) or any(
                m["state"] != "alive" for m in j["members"]):
            return False
    return True


def start_cluster(cluster, n):
    cluster.overrides.update(GOSSIP)
    nodes = cluster.start(n)
    wait_for(lambda: all_alive(nodes), SLACK_S, f"{n} members alive on every node")
    return nodes


def ready(node):
    return node.kvctl("--timeout", "2s", "ready", timeout=10)


def refused_ids(node):
    j = members_json(node)
    return None if j is None else {r["id"] for r in j["refused"]}


def one_line(r):
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r
    return lines[0]


def test_island_refuses_and_is_not_ready_until_fixed(cluster):
    nodes = start_cluster(cluster, 3)
    assert nodes[0].kvctl("put", "before", "v").rc == 0
    odd = cluster.add_node(overrides={"cluster.partitions": 128, "cluster.expect_nodes": 4})
    odd.start()  # seeded with node-1..3, which refuse it
    wait_for(lambda: ready(odd).rc == 1, SLACK_S, "node-4 not ready")
    r = ready(odd)
    line = one_line(r)
    assert "cut off from the cluster" in line and "cluster.partitions differs" in line, r
    assert "theirs 256, ours 128" in line and "node node-" in line, r
    # Writes (even at -w 1, which one node could ack alone) and reads fail.
    for args in (("-w", "1", "put", "k", "v"), ("put", "k", "v"), ("del", "k"), ("get", "before"),
                 ("-r", "1", "get", "k")):
        r = odd.kvctl(*args)
        assert r.rc == 3, (args, r)
        line = one_line(r)
        assert "cluster.partitions differs" in line and "node node-" in line, (args, r)
    # The cluster names the refusal while it lasts, and stays ready.
    wait_for(lambda: "node-4" in (refused_ids(nodes[0]) or ()), SLACK_S, "node-1 lists node-4")
    out = nodes[0].kvctl("members").out.decode()
    assert "refused: node-4" in out and "theirs 128, ours 256" in out, out
    for n in nodes:
        assert ready(n).rc == 0, n
        assert "node-4" not in {m["id"] for m in members_json(n)["members"]}

    # Restarted with the cluster's settings (a fresh data dir: the layout
    # of 128 partitions refuses 256), it joins and the refusal line goes.
    odd.stop()
    shutil.rmtree(odd.data_dir)
    odd.set_config({"cluster.partitions": 256})
    odd.start()
    wait_for(lambda: all_alive(nodes + [odd]), SLACK_S, "node-4 alive everywhere")
    for n in nodes:
        assert "node-4" not in refused_ids(n), members_json(n)["refused"]
        assert "refused: node-4" not in n.kvctl("members").out.decode()
    wait_for(lambda: ready(odd).rc == 0, SLACK_S, "node-4 ready")
    assert odd.kvctl("put", "k", "v").rc == 0
    r = odd.kvctl("get", "before")
    assert r.rc == 0 and r.out == b"v", r


def test_refusal_line_goes_when_the_refused_node_stops(cluster):
    nodes = start_cluster(cluster, 2)
    odd = cluster.add_node(overrides={"cluster.replicas": 1, "cluster.read_quorum": 1,
                                      "cluster.write_quorum": 1})
    odd.start()
    wait_for(lambda: "node-3" in (refused_ids(nodes[0]) or ()), SLACK_S, "node-1 lists node-3")
    wait_for(lambda: ready(odd).rc == 1, SLACK_S, "node-3 not ready")
    assert "cluster.replicas differs" in one_line(ready(odd))
    odd.stop()
    # Not renewed for dead_after: gone, as a silent member would be dead.
    def expired():
        ids = refused_ids(nodes[0])
        return ids is not None and "node-3" not in ids

    wait_for(expired, DEAD_S + SLACK_S, "node-1's refusal of the stopped node-3 to expire")
    assert "refused:" not in nodes[0].kvctl("members").out.decode()


def test_dead_members_not_removed_make_a_node_not_ready(cluster):
    nodes = start_cluster(cluster, 4)  # replicas 3, W 2
    for n in nodes:
        r = ready(n)
        assert r.rc == 0 and b"reachable for all 256 partitions" in r.out, r
    for n in nodes[2:]:
        n.kill()
    wait_for(lambda: ready(nodes[0]).rc == 1, DEAD_S + SLACK_S, "node-1 not ready")
    line = one_line(ready(nodes[0]))
    assert "write quorum of 2 (cluster.write_quorum) is unreachable for" in line, line
    assert "of 256 partitions (partition " in line and "replicas up" in line, line
    # Short for some partitions (those with two dead replicas), not all.
    j = last_json(nodes[0].kvctl("--json", "ready").out)
    assert 0 < j["partitions_short"] < 256, j

    def dead_everywhere():
        t = {m["id"]: m["state"] for m in members_json(nodes[0])["members"]}
        return t["node-3"] == "dead" and t["node-4"] == "dead"

    wait_for(dead_everywhere, DEAD_S + SLACK_S, "node-3 and node-4 dead on node-1")
    line = one_line(ready(nodes[0]))
    assert "down: node-3 dead, node-4 dead" in line and "kvctl remove" in line, line
    # Removed, they leave the ring: two members hold every partition.
    for dead in ("node-3", "node-4"):
        assert nodes[0].kvctl("remove", dead).rc == 0
    t0 = time.monotonic()
    wait_for(lambda: ready(nodes[0]).rc == 0 and ready(nodes[1]).rc == 0, SLACK_S,
             "both survivors ready once the dead are removed")
    print(f"survivors ready {time.monotonic() - t0:.2f}s after the removals")
    assert nodes[0].kvctl("put", "k", "v").rc == 0


def test_cluster_forming_one_by_one_becomes_ready(cluster):
    cluster.overrides.update(GOSSIP)
    cluster.overrides.update({"cluster.expect_nodes": 3, "cluster.replicas": 3,
                              "cluster.read_quorum": 2, "cluster.write_quorum": 2})
    started = []
    for i in range(3):
        n = cluster.add_node()
        n.start()
        started.append(n)
        if i < 2:  # fewer than expect_nodes seen: ready without waiting for the rest
            r = ready(n)
            assert r.rc == 0 and b"cluster forming" in r.out, r
        else:
            wait_for(lambda: ready(n).rc == 0, SLACK_S, "the third node ready")
    wait_for(lambda: all_alive(started), SLACK_S, "three members alive everywhere")
    for n in started:
        wait_for(lambda: b"reachable for all 256 partitions" in ready(n).out, SLACK_S,
                 f"{n.name} ready with a write quorum everywhere")
    assert started[0].kvctl("put", "k", "v").rc == 0

"""kvctl plan: what a join, leave or remove would move, on a live cluster.

Keys are written with -w 3 so every replica stores each key when the write
is acknowledged (the per-partition counts the members report are then
exact). Each key's partition comes from `kvctl locate`; the plan's key
counts must equal the keys written in each moved partition, counted once
per new owner.
"""

from harness import last_json, wait_for

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s",
          "transfers.max_bytes_per_second": "1MiB"}
NKEYS = 240


def converged(nodes, count):
    for n in nodes:
        r = n.kvctl("--timeout", "2s", "--json", "members", timeout=10)
        if r.rc != 0:
            return False
        ms = last_json(r.out)["members"]
        if len(ms) != count or any(m["state"] != "alive" for m in ms):
            return False
    return True


def setup_cluster(cluster):
    cluster.overrides.update(GOSSIP)
    nodes = cluster.start(3)
    wait_for(lambda: converged(nodes, 3), 20, "3 members alive everywhere")
    parts = {}
    # -w 3 needs every node to know the others' holdings (one gossip
    # interval after the cluster formed): the first write waits for that.
    wait_for(lambda: all(n.kvctl("-w", "3", "put", "plan-probe", "x").rc == 0 for n in nodes), 20,
             "-w 3 writes through every node")
    assert nodes[0].kvctl("-w", "3", "del", "plan-probe").rc == 0
    for i in range(NKEYS):
        key = f"plan-key-{i}"
        r = nodes[i % 3].kvctl("-w", "3", "put", key, "v" * (10 + i % 50))
        assert r.rc == 0, r
        loc = last_json(nodes[0].kvctl("--json", "locate", key).out)
        parts[loc["partition"]] = parts.get(loc["partition"], 0) + 1
    return nodes, parts


def plan(node, *args):
    r = node.kvctl("--json", "plan", *args)
    assert r.rc == 0, r
    return last_json(r.out)


def replica_count(node, who):
    ring = last_json(node.kvctl("--json", "ring").out)
    return next(m["replica"] for m in ring["members"] if m["node"] == who)


def check_keys(p, parts):
    """Every move carries exactly the keys written to its partition, and the
    totals add up, per target and overall."""
    total = 0
    per_target = {}
    for mv in p["move_list"]:
        assert mv["keys"] == parts.get(mv["partition"], 0), mv
        total += mv["keys"]
        per_target[mv["to"]] = per_target.get(mv["to"], 0) + mv["keys"]
    assert p["keys"] == total
    assert {t["node"]: t["keys"] for t in p["targets"]} == per_target
    assert p["moves"] == len(p["move_list"])
    # The estimate is at the node's transfers.max_bytes_per_second.
    assert p["rate_source"] == "node" and p["rate_bytes_per_second"] == 1 << 20, p
    assert abs(p["eta_s"] - p["bytes"] / (1 << 20)) < 0.01, p


def test_plan_join_leave_remove(cluster):
    nodes, parts = setup_cluster(cluster)
    n1 = nodes[0]

    # join of a node not started yet: about 1/4 of the replicas move, all to it
    p = plan(n1, "join", "unused-addr", "--id", "node-4")
    assert p["change"] == "join" and p["node"] == "node-4"
    assert p["members_before"] == 3 and p["members_after"] == 4
    share = p["moves"] / p["replicas_total"]
    assert 0.25 * 0.7 < share < 0.25 * 1.3, share
    assert all(mv["to"] == "node-4" and len(mv["from"]) == 3 for mv in p["move_list"])
    check_keys(p, parts)
    # the keys streamed are the written keys of the moved partitions
    moved = {mv["partition"] for mv in p["move_list"]}
    assert p["keys"] == sum(c for part, c in parts.items() if part in moved)
    assert 0 < p["keys"] < NKEYS

    # the text form says the same in lines
    out = n1.kvctl("plan", "join", "x", "--id", "node-4").out.decode()
    assert "plan: join node-4 (3 -> 4 members" in out, out
    assert f"{p['keys']} keys" in out and "estimated time" in out, out

    # leave with 3 members and 3 replicas: every partition is held
    # everywhere, the 2 left hold theirs already, nothing moves
    p = plan(n1, "leave", "node-2")
    assert p["members_after"] == 2 and p["replicas_total"] == 2 * p["partitions"]
    assert p["moves"] == 0 and p["keys"] == 0 and p["move_list"] == []


def test_plan_with_four_nodes_and_a_dead_member(cluster):
    nodes, parts = setup_cluster(cluster)
    n4 = cluster.add_node()
    n4.start()
    nodes.append(n4)
    wait_for(lambda: converged(nodes, 4), 20, "4 members alive everywhere")
    n1 = nodes[0]
    # join of a running node by its address: its id is asked from it, and
    # it is a member already
    r = n1.kvctl("plan", "join", n4.client_addr)
    assert r.rc == 2 and "node-4 is already a member" in r.err, r

    p = plan(n1, "leave", "node-2")
    assert p["moves"] == replica_count(n1, "node-2") > 0
    assert all(mv["to"] != "node-2" and "node-2" in mv["from"] for mv in p["move_list"])
    # nodes 1-3 still hold every key (nothing is dropped without transfers),
    # so the largest report per partition is exactly what was written
    check_keys(p, parts)
    assert p["keys"] > 0

    # a member that does not answer: exit 3, one line naming it
    nodes[2].kill()
    r = n1.kvctl("plan", "leave", "node-2")
    assert r.rc == 3, r
    err = r.err.strip()
    assert "node-3" in err and len(err.splitlines()) == 1, err

    # remove of the dead member: it is not asked, and never a source
    p = plan(n1, "remove", "node-3")
    assert p["moves"] == replica_count(n1, "node-3") > 0
    assert all(mv["to"] != "node-3" and "node-3" not in mv["from"] for mv in p["move_list"])
    assert all(len(mv["from"]) == 2 for mv in p["move_list"])
    check_keys(p, parts)
    assert p["keys"] > 0


def test_plan_bad_input(cluster):
    cluster.overrides.update(GOSSIP)
    (n1,) = cluster.start(1)
    for args in (("plan",), ("plan", "join"), ("plan", "frob", "x"),
                 ("plan", "leave", "nosuch"), ("plan", "remove", "nosuch"),
                 ("plan", "join", "x", "--id", "node-1"),
                 ("plan", "leave", "node-1", "--id", "z"),
                 ("plan", "leave", "a", "b"), ("plan", "--bogus")):
        r = n1.kvctl(*args)
        assert r.rc == 2, (args, r)
        assert len(r.err.strip().splitlines()) == 1, (args, r)
    # join by an address nobody listens at: the joining node does not answer
    r = n1.kvctl("--timeout", "500ms", "plan", "join", "tcp://127.0.0.1:1")
    assert r.rc == 3 and "joining node" in r.err, r

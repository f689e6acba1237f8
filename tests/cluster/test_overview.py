"""OVERVIEW, the dashboard's one admin request per node (src/server/overview.h),
on three nodes of 256 partitions: the partition bitmaps (length, encoding,
every partition held, a repair mark at its bit), the latency histogram
growing with the requests and the p50/p99 it gives in STATS, the placement
matching `kvctl locate`, the anti-entropy figures matching the AE reply and
a round's event, the transfer rows matching the pending bitmap and
TRANSFERS during a join, a kill -9 seen as suspect then dead in another
node's events with hints for the dead node counted per target, a malformed
argument refused with one line, and the reply sizes (printed; under 8 KB
without the placement). Every wait polls with a deadline.
"""

import json
import re

from harness import (RK_TAG, Abort, RawKV, last_json, node_ae, node_stats, rk_field, wait_all_alive,
                     wait_for)

OP_OVERVIEW = 31  # src/proto/proto.h
GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
SLACK_S = 20
PARTS = 256  # the default: the size figure is for it
SIZE_MAX = 8 << 10  # bytes of a reply without placement (the dashboard's budget)
HEX = re.compile(r"[0-9a-f]*")


def overview_raw(node, arg=None):
    """(status name, TEXT bytes) of one OVERVIEW request."""
    with RawKV(node) as kv:
        st, f = kv.call(OP_OVERVIEW, rk_field("KEY", arg) if arg is not None else b"")
    return st, f.get(RK_TAG["TEXT"], b"")


def overview(node, placement=False):
    """(the reply as a dict, its size in bytes)."""
    st, text = overview_raw(node, b"placement" if placement else None)
    assert st == "OK", (st, text)
    return json.loads(text), len(text)


def bits(hexmap, parts=PARTS):
    """The partitions a bitmap sets, after checking its form."""
    assert len(hexmap) == (parts + 3) // 4, f"bitmap of {len(hexmap)} chars for {parts} partitions"
    assert HEX.fullmatch(hexmap), f"not lowercase hex: {hexmap!r}"
    return {p for p in range(parts) if int(hexmap[p // 4], 16) >> (p % 4) & 1}


def latency_total(ov):
    return sum(ov["latency"]["counts"])


def poll(get, ok, what, timeout=SLACK_S):
    """get() until ok(its value), which is returned."""
    def once():
        value = get()
        return value if ok(value) else None
    return wait_for(once, timeout, what)


def report(capsys, *args):
    """Print past pytest's capture: the figures show in ctest's output."""
    with capsys.disabled():
        print(*args)


def start3(cluster, **extra):
    cluster.overrides.update({**GOSSIP, **extra})
    nodes = cluster.start(3)
    wait_all_alive(nodes, SLACK_S)
    return nodes


def check_shape(ov, name):
    assert ov["node"] == name and ov["state"] == "serving", ov
    assert ov["partitions"] == PARTS and ov["replicas"] == 3, ov
    assert ov["read_quorum"] == 2 and ov["write_quorum"] == 2, ov
    assert ov["now_ms"] > 1.6e12 and ov["uptime_s"] >= 0, ov
    lat = ov["latency"]
    assert lat["bounds_us"] == [16 << i for i in range(21)], lat["bounds_us"]
    assert len(lat["counts"]) == len(lat["bounds_us"]) + 1, lat
    assert set(ov["requests"]) == {"get", "put", "del", "admin"}, ov["requests"]
    seqs = [e["seq"] for e in ov["events"]]
    assert seqs and len(seqs) <= 32, seqs  # a formed cluster has events
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"not consecutive: {seqs}"
    assert all(e["kind"] in ("member", "transfer", "ae", "node") for e in ov["events"]), ov["events"]
    assert "placement" not in ov


def test_bitmaps_latency_placement_and_sizes(cluster, capsys):
    nodes = start3(cluster)
    n1 = nodes[0]
    sizes = {}
    for node in nodes:
        ov, size = overview(node)
        check_shape(ov, node.name)
        assert bits(ov["held"]) == set(range(PARTS)), f"{node.name} holds {ov['held']}"
        assert bits(ov["pending"]) == set() and bits(ov["marked"]) == set(), ov
        assert ov["transfers"]["receiving"] == [], ov["transfers"]
        # Each node formed the cluster, or joined it as formed by another.
        assert any(e["kind"] == "node" and ("cluster formed" in e["text"] or
                                            "joined a cluster" in e["text"])
                   for e in ov["events"]), ov["events"]
        sizes[node.name] = (size, overview(node, placement=True)[1])
        assert size < SIZE_MAX, f"{node.name}: {size} bytes without placement"
    report(capsys, "OVERVIEW reply bytes at 256 partitions (without placement, with):", sizes)

    # Every request a client makes is timed by the node that received it.
    before = overview(n1)[0]
    n = 300
    with RawKV(n1) as kv:
        for i in range(n):
            assert kv.put(f"ov-{i}".encode(), b"x" * 32) == "OK"
    for i in range(0, n, 10):  # and reads too
        with RawKV(n1) as kv:
            st, _ = kv.call("GET", rk_field("KEY", f"ov-{i}".encode()))
            assert st == "OK", st
    want = latency_total(before) + n + n // 10
    after = poll(lambda: overview(n1)[0], lambda o: latency_total(o) >= want,
                 f"{want} requests in node-1's latency histogram")
    assert after["requests"]["put"] >= before["requests"]["put"] + n, after["requests"]
    stats = poll(lambda: node_stats(n1), lambda s: s["latency_us"]["count"] >= want,
                 "STATS latency_us counting the requests")
    lat = stats["latency_us"]
    assert 0 < lat["p50"] <= lat["p99"], lat
    assert lat["p99"] < 16 << 20, lat  # loopback requests: far below the last bound (16.8 s)
    report(capsys, "node-1 STATS latency_us:", lat)

    # The placement names 3 serving members per partition, as locate does.
    full = overview(n1, placement=True)[0]["placement"]
    members = full["members"]
    assert sorted(members) == ["node-1", "node-2", "node-3"], members
    assert len(full["serve"]) == PARTS and len(full["pending"]) == PARTS
    for p in range(PARTS):
        assert len(set(full["serve"][p])) == 3 and full["pending"][p] == [], (p, full["serve"][p])
    for key in ("alpha", "ov-7", "zz-top", "k-123"):
        r = n1.kvctl("--json", "locate", key, timeout=10)
        assert r.rc == 0, r
        loc = last_json(r.out)
        got = {members[i] for i in full["serve"][loc["partition"]]}
        assert got == {x["node"] for x in loc["preference"]}, (key, loc, got)

    # A repair mark shows at its bit: partition 7 is char 1, bit 1 << 3.
    r = n1.kvctl("repair", "7")
    assert r.rc == 0, r
    ov = poll(lambda: overview(n1)[0], lambda o: bits(o["marked"]),
              "partition 7 marked in node-1's overview")
    assert bits(ov["marked"]) == {7} and ov["marked"][1] == "8", ov["marked"]
    assert ov["ae"]["marked"] == 1, ov["ae"]


def test_malformed_argument(cluster):
    n1 = start3(cluster)[0]
    for arg in (b"bogus", b"placement2", b"", b"place\nment"):
        st, text = overview_raw(n1, arg)
        assert st == "MALFORMED", (arg, st, text)
        line = text.decode()
        assert "\n" not in line and "placement" in line and line.startswith("overview:"), line


def ae_matches(node):
    """The overview's anti-entropy figures and AE's, taken back to back,
    agree (None when a round moved in between: poll again)."""
    ov = overview(node)[0]["ae"]
    ae = node_ae(node)
    rnd = ae["round"]
    same = (ov["round"] == rnd["number"] and ov["in_progress"] == rnd["in_progress"] and
            ov["compared"] == rnd["partitions_compared"] and ov["total"] == rnd["partitions_total"]
            and ov["finished_ms"] == rnd["finished_ms"] and ov["marked"] == ae["marked_partitions"]
            and ov["keys_repaired"] == rnd["keys_pulled"] + rnd["keys_pushed"]
            and ov["bytes"] == rnd["bytes"] and ov["enabled"] == ae["enabled"]
            and ov["max_keys_per_second"] == ae["max_keys_per_second"])
    return (ov, ae) if same else None


def test_kill_shows_suspect_then_dead_hints_and_ae(cluster):
    nodes = start3(cluster, **{"antientropy.interval": "1s"})
    n1, n2, n3 = nodes
    # A round runs every second: its end is an event, and every peer has
    # an exchange on record.
    wait_for(lambda: any(e["kind"] == "ae" and re.fullmatch(r"round \d+ done: \d+ partitions, \d+ keys "
                                                            r"repaired", e["text"])
                         for e in overview(n1)[0]["events"]), SLACK_S, "a round's event on node-1")
    ov, ae = wait_for(lambda: ae_matches(n1), SLACK_S, "OVERVIEW's ae figures equal to AE's")
    assert ov["round"] >= 1 and ov["total"] == PARTS, ov
    peers = {p["node"]: p for p in ov["peers"]}
    assert set(peers) == {"node-2", "node-3"}, ov["peers"]
    for p in peers.values():
        assert p["result"] == "ok" and p["last_ms"] >= p["ok_ms"] > 0, p

    n3.kill()

    def seen(node, text):
        return [e["seq"] for e in overview(node)[0]["events"] if e["text"] == text]
    suspect = wait_for(lambda: seen(n1, "node-3: alive -> suspect"), SLACK_S, "node-3 suspect on node-1")
    dead = wait_for(lambda: seen(n1, "node-3: suspect -> dead"), SLACK_S, "node-3 dead on node-1")
    assert max(suspect) < max(dead), (suspect, dead)

    def for_node3():
        """Hints waiting for node-3 on the two nodes left."""
        return sum(overview(x)[0]["hints"]["by_target"].get("node-3", 0) for x in (n1, n2))
    before = for_node3()
    m = 100
    with RawKV(n1) as kv:
        for i in range(m):
            assert kv.put(f"h-{i}".encode(), b"v") == "OK"
    # Each key node-3 replicates (all of them: N = 3 on 3 nodes) waits as
    # a hint for it on node-1 or node-2.
    wait_for(lambda: for_node3() >= before + m, SLACK_S, f"{m} more hints for node-3")
    for x in (n1, n2):
        h = overview(x)[0]["hints"]
        assert h["pending"] >= sum(h["by_target"].values()), h
        assert set(h["by_target"]) <= {"node-3"}, h


def test_pending_matches_transfers_during_join(cluster):
    nodes = start3(cluster, **{"transfers.max_bytes_per_second": "256KiB",
                               "transfers.max_concurrent": 2})
    with RawKV(nodes[0]) as kv:
        for i in range(2000):
            assert kv.put(f"j-{i}".encode(), b"y" * 256) == "OK"
    n4 = cluster.add_node()
    n4.start()

    def receiving(node):
        """node's overview, after checking (a failure at once, not a retry:
        both come from one view in one reply) that its transfer rows name
        exactly its pending partitions, each streaming or waiting with a
        reason, none of them held."""
        ov = overview(node)[0]
        pend = bits(ov["pending"])
        rows = ov["transfers"]["receiving"]
        bad = [r for r in rows if r["state"] not in ("streaming", "waiting") or
               (r["state"] == "waiting" and not r["why"])]
        if {r["partition"] for r in rows} != pend or bad or pend & bits(ov["held"]):
            raise Abort(f"{node.name}: pending {sorted(pend)} held {ov['held']} rows {rows}")
        return ov

    def pending_shown():
        ov = receiving(n4)  # the workers' transfer counters follow within a tick
        return bits(ov["pending"]) and ov["transfers"]["pending"] >= 1

    wait_for(pending_shown, SLACK_S, "node-4 receiving partitions, in its counters too")

    def same_as_transfers():
        """The pending bitmap and the TRANSFERS reply taken right after
        name the same partitions (None when a transfer ended between)."""
        pend = bits(overview(n4)[0]["pending"])
        with RawKV(n4) as kv:
            st, f = kv.call("TRANSFERS", b"")
        assert st == "OK", st
        rows = json.loads(f[RK_TAG["TEXT"]])["receiving"]
        return pend == {r["partition"] for r in rows} or None

    wait_for(same_as_transfers, SLACK_S, "node-4's pending bitmap equal to its TRANSFERS rows")

    # Once every transfer is done nothing is pending, node-4 holds its
    # partitions, and its events say what it received.
    def settled():
        ov = receiving(n4)
        return ov if not bits(ov["pending"]) and ov["transfers"]["pending"] == 0 else None

    ov = wait_for(settled, 120, "node-4's transfers done")
    held = bits(ov["held"])
    assert len(held) >= PARTS // 2, f"node-4 holds {len(held)} partitions"
    got = [e for e in ov["events"] if e["kind"] == "transfer" and "received" in e["text"]]
    assert got, ov["events"]

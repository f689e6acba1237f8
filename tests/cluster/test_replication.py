"""Replication, black-box: N=3 W=2 R=2 across real processes.

Keys are written through every node (each one coordinates), read back
through every node, and the cluster is checked while nodes are down. Every
wait polls with a deadline.
"""

import os
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (RK_TAG, RawKV, last_json, rk_field, start_alive, wait_all_alive, wait_for,
                     wait_member_state)

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s",
          "cluster.request_timeout": "1s"}
SLACK_S = 15


def wait_state(observers, who, states, timeout=SLACK_S):
    wait_member_state(observers, who, states, timeout)


def start3(cluster, **extra):
    return start_alive(cluster, 3, {**GOSSIP, **extra}, SLACK_S)


def put_many(nodes, keys, prefix="v"):
    """Put every key through the nodes in turn, 4 at a time; returns the
    keys acknowledged."""
    def one(i_k):
        i, k = i_k
        r = nodes[i % len(nodes)].kvctl("put", k, f"{prefix}-{k}")
        return k if r.rc == 0 else None
    with ThreadPoolExecutor(4) as ex:
        return [k for k in ex.map(one, enumerate(keys)) if k]


def bad_reads(node, keys, prefix="v"):
    def one(k):
        r = node.kvctl("get", k)
        return None if r.rc == 0 and r.out == f"{prefix}-{k}".encode() else (k, r.rc, r.err.strip())
    with ThreadPoolExecutor(4) as ex:
        return [x for x in ex.map(one, keys) if x]


def test_one_node_down_reads_and_writes_go_on(cluster):
    nodes = start3(cluster)
    keys = [f"key-{i}" for i in range(300)]
    assert put_many(nodes, keys) == keys
    for n in nodes:
        assert bad_reads(n, keys[:60]) == [], n
    victim = nodes[2]
    victim.kill()
    wait_state(nodes[:2], victim, ("dead",))
    for n in nodes[:2]:
        assert bad_reads(n, keys) == [], f"reads through {n.name} with node-3 down"
    more = [f"more-{i}" for i in range(100)]
    assert put_many(nodes[:2], more) == more, "writes with one replica down"
    # The traced read names the coordinator and every replica asked.
    j = last_json(nodes[0].kvctl("--json", "get", "more-1").out)
    assert j["coordinator"] == "node-1" and len(j["replicas"]) == 3, j
    assert any(r["node"] == "node-3" and "error" in r for r in j["replicas"]), j
    victim.start()
    wait_state(nodes, victim, ("alive",))
    for n in nodes:
        assert bad_reads(n, more[:50]) == [], n


def test_two_nodes_down_writes_fail_and_nothing_acked_is_lost(cluster):
    nodes = start3(cluster)
    acked = put_many(nodes, [f"a-{i}" for i in range(50)])
    assert len(acked) == 50
    nodes[1].kill()
    nodes[2].kill()
    wait_state(nodes[:1], nodes[1], ("dead",))
    wait_state(nodes[:1], nodes[2], ("dead",))
    r = nodes[0].kvctl("put", "lonely", "x")
    assert r.rc == 3, r
    assert "write quorum not met" in r.err and "of 2 acks" in r.err, r
    assert "node-2" in r.err and "node-3" in r.err, r
    r = nodes[0].kvctl("get", "a-1")
    assert r.rc == 3 and "read quorum not met" in r.err, r
    nodes[1].start()
    nodes[2].start()
    wait_state(nodes, nodes[1], ("alive",))
    wait_state(nodes, nodes[2], ("alive",))
    for n in nodes:
        assert bad_reads(n, acked) == [], n


def test_read_repair_fixes_a_stale_replica(cluster):
    nodes = start3(cluster, **{"hints.max_bytes_per_target": "0B"})  # no hinted handoff
    keys = [f"r-{i}" for i in range(40)]
    assert put_many(nodes, keys, "old") == keys
    stale = nodes[2]
    stale.kill()
    wait_state(nodes[:2], stale, ("dead",))
    assert put_many(nodes[:2], keys, "new") == keys  # node-3 misses these
    stale.start()
    wait_state(nodes, stale, ("alive",))

    def versions(k):
        j = last_json(nodes[0].kvctl("--json", "-r", "3", "get", k).out)
        return {r["node"]: r.get("version") for r in j["replicas"]}

    v = versions("r-1")
    assert len(set(v.values())) == 2, f"node-3 should still hold the old version: {v}"
    # That read repaired it: every replica now has the newest version.
    wait_for(lambda: len(set(versions("r-1").values())) == 1, SLACK_S, "r-1 repaired on node-3")
    for k in keys[2:12]:
        versions(k)  # read (and repair) through node-1
    for k in keys[2:12]:
        wait_for(lambda: len(set(versions(k).values())) == 1, SLACK_S, f"{k} repaired")
    # (counters are published every 100 ms: poll)
    wait_for(lambda: last_json(nodes[0].kvctl("--json", "stats").out)["replication"]
             ["read_repairs"] >= 11, 5, "11 read repairs counted on node-1")
    # The repaired replica alone now answers with the new value.
    nodes[0].kill()
    nodes[1].kill()
    wait_state(nodes[2:], nodes[0], ("dead",))
    wait_state(nodes[2:], nodes[1], ("dead",))
    r = stale.kvctl("--json", "-r", "1", "get", "r-1")
    assert r.rc == 0 and last_json(r.out)["value"] == "new-r-1", r


def test_five_nodes_placement_agrees_with_locate_everywhere(cluster):
    nodes = start_alive(cluster, 5, {**GOSSIP, "node.workers": 1}, SLACK_S)
    digests = {last_json(n.kvctl("--json", "ring").out)["digest"] for n in nodes}
    assert len(digests) == 1, digests
    ring = last_json(nodes[0].kvctl("--json", "ring").out)
    assert sum(m["primary"] for m in ring["members"]) == ring["partitions"]
    assert all(m["replica"] > 0 for m in ring["members"]), ring
    for k in ("alpha", "beta", "gamma", "delta", "epsilon"):
        lists = {tuple(p["node"] for p in last_json(n.kvctl("--json", "locate", k).out)["preference"])
                 for n in nodes}
        assert len(lists) == 1, (k, lists)
        (pref,) = lists
        assert len(pref) == 3 and len(set(pref)) == 3, pref
        # A write lands on exactly those three replicas.
        assert nodes[0].kvctl("put", k, "x").rc == 0
        j = last_json(nodes[4].kvctl("--json", "-r", "3", "get", k).out)
        assert {r["node"] for r in j["replicas"]} == set(pref), (j, pref)
        assert all(r.get("version") for r in j["replicas"]), j


def test_concurrent_writers_through_every_node(cluster):
    nodes = start3(cluster)
    errors = []

    def writer(t):
        for i in range(40):
            k = f"w{t}-{i}"
            r = nodes[(t + i) % 3].kvctl("put", k, f"v-{k}")
            if r.rc != 0:
                errors.append((k, r.err))
    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    keys = [f"w{t}-{i}" for t in range(4) for i in range(40)]
    for n in nodes:
        assert bad_reads(n, keys) == [], n


def hints(node):
    return last_json(node.kvctl("--json", "stats").out)["hints"]


def raw_put_all(nodes, items):
    """Put every (key, value) through the nodes in turn; the keys not OK."""
    conns = [RawKV(n) for n in nodes]
    try:
        return [k for i, (k, v) in enumerate(items) if conns[i % len(conns)].put(k, v) != "OK"]
    finally:
        for c in conns:
            c.close()


def test_1000_keys_survive_a_kill_and_hints_bring_the_node_up_to_date(cluster):
    nodes = start3(cluster)
    keys = [f"h-{i}".encode() for i in range(1000)]
    assert raw_put_all(nodes, [(k, b"old-" + k) for k in keys]) == []
    victim, alive = nodes[1], [nodes[0], nodes[2]]
    victim.kill()
    wait_state(alive, victim, ("dead",))
    for n in alive:
        with RawKV(n) as kv:
            bad = [(k, st) for k in keys for st, v, _ in [kv.get(k)] if v != b"old-" + k]
        assert bad == [], f"reads through {n.name} with {victim.name} down: {bad[:5]}"
    assert raw_put_all(alive, [(k, b"new-" + k) for k in keys]) == []  # node-2 misses these
    # (stats are published every 100 ms: poll)
    wait_for(lambda: sum(hints(n)["stored"] for n in alive) >= len(keys), 5,
             "a hint for every write node-2 missed")
    victim.start()
    wait_state(nodes, victim, ("alive",))
    wait_for(lambda: all(hints(n)["pending"] == 0 for n in nodes), SLACK_S, "hints delivered")
    assert sum(hints(n)["delivered"] for n in nodes) >= len(keys)
    # Without any read repair, every replica already has the newest version.
    with RawKV(nodes[2]) as kv:
        for k in keys:
            st, v, t = kv.get(k, r=3, trace=True)
            vs = {r["node"]: r.get("version") for r in t["replicas"]}
            assert st == "OK" and v == b"new-" + k, (k, st, v, t)
            assert len(vs) == 3 and len(set(vs.values())) == 1 and None not in vs.values(), (k, t)
    for k in keys[:: len(keys) // 10]:  # and kvctl shows the same
        j = last_json(nodes[0].kvctl("--json", "-r", "3", "get", k.decode()).out)
        assert len({r["version"] for r in j["replicas"]}) == 1 and j["value"] == "new-" + k.decode(), j
    rr = sum(last_json(n.kvctl("--json", "stats").out)["replication"]["read_repairs"] for n in nodes)
    assert rr == 0, f"hints, not read repair, should have done it: {rr} repairs"


def test_hints_survive_a_restart_of_their_holder(cluster):
    nodes = start3(cluster)
    victim, holder = nodes[2], nodes[0]
    victim.kill()
    wait_state(nodes[:2], victim, ("dead",))
    keys = [f"s-{i}" for i in range(50)]
    assert put_many([holder], keys) == keys  # node-1 coordinates: it holds the hints
    wait_for(lambda: hints(holder)["pending"] >= len(keys), 5, "a hint per write on node-1")
    holder.kill()  # kill -9 the holder too, then bring both back
    holder.start()
    assert hints(holder)["pending"] >= len(keys), "hints lost in the holder's restart"
    victim.start()
    wait_for(lambda: hints(holder)["pending"] == 0, SLACK_S, "hints delivered after restarts")
    for k in keys:
        r = victim.kvctl("--json", "-r", "1", "get", k)
        assert r.rc == 0, (k, r)


def test_sloppy_quorum_fallback_holds_the_write_and_hands_it_off(cluster):
    nodes = start_alive(cluster, 4, {**GOSSIP, "node.workers": 1}, SLACK_S)  # N = 3 of 4: a fallback each
    key = "sloppy"
    pref = [p["node"] for p in last_json(nodes[0].kvctl("--json", "locate", key).out)["preference"]]
    down = next(n for n in nodes if n.name == pref[0])
    others = [n for n in nodes if n is not down]
    fallback = next(n for n in others if n.name not in pref)
    down.kill()
    wait_state(others, down, ("dead",))
    r = others[0].kvctl("put", key, "while-down")
    assert r.rc == 0, r
    wait_for(lambda: hints(fallback)["pending"] >= 1, 5, f"the hint on the fallback {fallback.name}")
    wait_for(lambda: last_json(others[0].kvctl("--json", "stats").out)["replication"]
             ["hinted_writes"] >= 1, 5, "the hinted write counted on the coordinator")
    down.start()
    wait_state(nodes, down, ("alive",))
    wait_for(lambda: hints(fallback)["pending"] == 0, SLACK_S, "hand-off to the owner")
    r = down.kvctl("--json", "get", key)
    assert r.rc == 0 and last_json(r.out)["value"] == "while-down", r
    j = last_json(down.kvctl("--json", "-r", "3", "get", key).out)
    assert all(rep.get("version") for rep in j["replicas"]), j


def test_replica_requests_travel_in_batches(cluster):
    """Under 32 concurrent clients a coordinator sends each peer one message
    per loop turn carrying many replica requests, and nothing is lost."""
    nodes = start3(cluster, **{"storage.fsync": "interval"})
    r, j = nodes[0].bench("--clients", "32", "--duration", "2s", "--workload", "w", "--keys", "500")
    assert r.rc == 0 and j["ops"] > 0, r
    assert j["errors"] == {}, j
    stats = lambda n: last_json(n.kvctl("--json", "stats").out)  # noqa: E731

    def settled():
        # Counters are published every 100 ms: poll until they add up.
        st = stats(nodes[0])
        pb, rep = st["peer_batches"], st["replication"]
        served = sum(stats(n)["peer_batches"]["served"] for n in nodes[1:])
        # Two peers per write, every request of theirs in a batch, and
        # every batch sent was served.
        return (pb["requests_sent"] >= 2 * rep["coordinated"] and served >= pb["sent"]), (pb, rep, served)
    wait_for(lambda: settled()[0], SLACK_S, "batch counters to settle")
    pb, rep, served = settled()[1]
    assert rep["replicas_down"] == 0 and rep["replica_timeouts"] == 0, rep
    assert pb["requests_sent"] > 2 * pb["sent"], f"batches carry about one request each: {pb}"
    keys = [f"after-{i}" for i in range(50)]
    assert put_many(nodes, keys) == keys
    for n in nodes:
        assert bad_reads(n, keys) == [], n


def test_values_of_the_default_limit_replicate(cluster):
    """1 MiB values (storage.max_value_size's default) travel to every
    replica: a frame larger than a batch's 256 KiB goes out alone."""
    nodes = start3(cluster, **{"storage.max_value_size": None})
    values = {f"big-{i}": os.urandom(1 << 20) for i in range(4)}

    def put(i_kv):
        i, (k, v) = i_kv
        return nodes[i % 3].kvctl("put", k, "-", input=v, timeout=30).rc
    with ThreadPoolExecutor(4) as ex:
        assert list(ex.map(put, enumerate(values.items()))) == [0] * 4
    for n in nodes:
        for k, v in values.items():
            r = n.kvctl("-r", "3", "get", k, timeout=30)
            assert r.rc == 0 and r.out == v, (n, k, r.rc, r.err)


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def test_a_coordinator_clock_far_ahead_is_refused_by_its_replicas(cluster):
    """node-3's wall clock runs 10 s ahead (libfaketime): its writes carry
    versions past cluster.max_clock_skew (500 ms) for node-1 and node-2, which
    refuse them, count them and log why; the write fails naming them. Writes
    coordinated by the others still work, node-3 included as a replica."""
    if not os.path.exists(FAKETIME_LIB):
        pytest.fail(f"{FAKETIME_LIB} missing: run packaging/deps.sh (libfaketime)")
    cluster.overrides.update(GOSSIP)
    nodes = [cluster.add_node() for _ in range(3)]
    # Monotonic time stays real: gossip's timers and timeouts run on it.
    nodes[2].env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+10s",
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                    # ASan wants to be the first library loaded; libfaketime is harmless before it.
                    "ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                          "verify_asan_link_order=0"])),
                    # libfaketime wraps pthread_cond_timedwait and calls libc past TSan's
                    # interceptors, so TSan misses the unlock inside a wait and reports a
                    # "double lock" in nng's next lock: a tooling artefact, for this node only.
                    "TSAN_OPTIONS": ":".join(filter(None, [os.environ.get("TSAN_OPTIONS"),
                                                          "report_mutex_bugs=0"]))}
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_ready()
    wait_all_alive(nodes, SLACK_S)
    for n in nodes:  # node-3's news is refused until its incarnation is in bound: then formed
        n.wait_serving(SLACK_S * 2)
    r = nodes[2].kvctl("put", "ahead", "x")
    assert r.rc == 3, r
    # node-3's own replica may or may not have acknowledged by then.
    assert "write quorum not met:" in r.err and "of 2 acks" in r.err, r
    for n in ("node-1", "node-2"):
        assert re.search(rf"{n} refused: version \d+ ms ahead of {n}'s clock "
                         r"\(cluster.max_clock_skew = 500 ms\)", r.err), r
    wait_for(lambda: all(last_json(n.kvctl("--json", "stats").out)["replication"]["clock_refused"] >= 1
                         for n in nodes[:2]), 5, "the refusals counted on node-1 and node-2")
    for n in nodes[:2]:
        n.wait_log("ms ahead of this node's clock (cluster.max_clock_skew = 500 ms", timeout=5)
    assert nodes[0].kvctl("put", "behind", "y").rc == 0
    for n in nodes:
        assert n.kvctl("-r", "3", "get", "behind").out == b"y", n


def rss_kib(node):
    with open(f"/proc/{node.pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def sanitized(node):
    """Runs under ASan or TSan, whose shadow memory and quarantine of freed
    blocks make RSS say nothing about ringkvd's own memory."""
    with open(f"/proc/{node.pid}/maps") as f:
        return any("libasan" in l or "libtsan" in l for l in f)


def test_a_stopped_peer_slows_no_write_and_catches_up(cluster):
    """node-3 is SIGSTOPped under 32 writing clients: its replica requests
    are given up (at the request timeout, or as soon as the coordinator's
    view shows node-3 suspect; the slots they hold freed, hints kept), W = 2 is met
    by the other two, no client sees an error, and node-1's memory stays
    bounded. Resumed, node-3 gets every write it missed from hints."""
    nodes = start3(cluster, **{"storage.fsync": "interval"})
    slow = nodes[2]
    bench = nodes[0].kvctl_popen("--json", "bench", "--clients", "32", "--duration", "4s",
                                 "--workload", "w", "--keys", "2000")
    try:
        wait_for(lambda: last_json(nodes[0].kvctl("--json", "stats").out)["replication"]
                 ["coordinated"] > 1000, 10, "the bench to get going")
        rss0 = rss_kib(nodes[0])
        slow.pause()
        def given_up():  # at request_timeout, or when the view shows it suspect, if sooner
            r = last_json(nodes[0].kvctl("--json", "stats").out)["replication"]
            return r["replica_timeouts"] + r["replicas_down"] > 0
        wait_for(given_up, 10, "replica requests to the stopped node given up")
        out, err = bench.communicate(timeout=30)
    finally:
        slow.resume()
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    j = last_json(out)
    assert bench.returncode == 0 and j["ops"] > 0, (bench.returncode, err)
    assert j["errors"] == {}, f"clients saw errors while node-3 was stopped: {j['errors']}"
    grown = rss_kib(nodes[0]) - rss0
    # ~30-35 MiB measured (ops holding their values, hints, caches)
    assert sanitized(nodes[0]) or grown < 100 * 1024, f"node-1 grew {grown} KiB while a peer was stopped"
    wait_state(nodes, slow, ("alive",))
    wait_for(lambda: all(hints(n)["pending"] == 0 for n in nodes), SLACK_S, "hints delivered")
    assert sum(hints(n)["delivered"] for n in nodes[:2]) > 0


def flip_middle_of_a_sealed_segment(node, nbytes=64):
    """Flip nbytes in the middle of the oldest sealed segment of node (one
    that has a newer segment after it, and so its index file), in place, so
    a running node finds the damage when it reads the block (a start would
    refuse: test_ae_repair.py). Returns the path."""
    segs = []
    for d in sorted(node.data_dir.glob("worker-*")):
        files = sorted(d.glob("seg-*.rks"))
        segs += [f for f in files[:-1] if f.with_suffix(".rkh").exists()]
    assert segs, f"no sealed segment with an index file under {node.data_dir}"
    path = segs[0]
    data = bytearray(path.read_bytes())
    end = len(data.rstrip(b"\0"))  # segments are preallocated: the tail is zeros
    assert end > 4096, f"{path} holds only {end} bytes"
    mid = end // 2
    data[mid:mid + nbytes] = bytes(b ^ 0xFF for b in data[mid:mid + nbytes])
    with open(path, "r+b") as f:  # never truncated under a running node
        f.write(data)
    return path


def test_read_repair_rewrites_a_record_its_replica_cannot_read(cluster):
    """64 bytes flipped in a sealed segment of node-2 left keys unreadable
    there for good: read repair skipped a replica that answered with a
    storage error, and a write at the same version could not replace the
    damaged record. Now the first read through the others repairs it, and
    node-2 then answers every key itself at the newest version."""
    # No compression: no background repacking moves the blocks while the
    # bytes are flipped under the running node.
    nodes = start3(cluster, **{"storage.segment_size": "1MiB", "storage.compression": "none"})
    rng = random.Random(20261207)  # incompressible values: 3,000 keys of 1 KB fill
    keys = [f"rot-{i}".encode() for i in range(3000)]  # several segments of 1 MiB
    values = {k: rng.randbytes(1000) for k in keys}
    assert raw_put_all(nodes, list(values.items())) == []
    victim = nodes[1]
    victim.restart()  # index files written, and nothing of the data in its block cache
    wait_state(nodes, victim, ("alive",))
    path = flip_middle_of_a_sealed_segment(victim)  # while it runs
    def unreadable_on_victim():
        """Keys whose copy on node-2 cannot be read, asked of node-2's own
        replica directly (RGET), which repairs nothing."""
        with RawKV(victim) as kv:
            bad = []
            for k in keys:
                st, fields = kv.call("RGET", rk_field("KEY", k))
                if st != "OK" or fields.get(RK_TAG["VALUE"]) != values[k]:
                    bad.append(k)
            return bad
    damaged = unreadable_on_victim()
    assert damaged, f"flipping bytes in {path} damaged no key: the test proves nothing"
    with RawKV(nodes[0]) as kv:
        for k in damaged:  # R = 2: answered by the others whatever node-2 says
            st, v, _ = kv.get(k, r=2)
            assert st == "OK" and v == values[k], (k, st)
    wait_for(lambda: unreadable_on_victim() == [], SLACK_S,
             f"the {len(damaged)} damaged keys readable again on node-2")
    print(f"{len(damaged)} keys damaged on {victim.name} by 64 flipped bytes, all repaired")

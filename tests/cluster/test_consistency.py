"""Consistency under crashes: concurrent clients write unique values to a
few keys and read them back through every node while nodes are killed
(-9) and restarted one at a time; the recorded history (JSON lines, kept
in the test's tmp dir as history.jsonl for replay with history.py) must
show no lost acknowledged write and no stale read (N=3, W=2, R=2)."""

import itertools
import json
import random
import shutil
import struct
import threading
import time

from harness import RK_TAG, Cluster, RawKV, last_json, rk_field, wait_for
from history import History, check

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s",
          "cluster.request_timeout": "1s"}
KEYS = [f"c{i}" for i in range(5)]
CYCLES = 3


def alive_everywhere(nodes):
    for n in nodes:
        r = n.kvctl("--timeout", "2s", "--json", "members", timeout=10)
        if r.rc != 0 or last_json(r.out)["counts"]["alive"] != len(nodes):
            return False
    return True


def client(nodes, hist, stop, tid, rng):
    seq = 0
    while not stop.is_set():
        node = rng.choice(nodes)
        key = rng.choice(KEYS)
        if rng.random() < 0.5:
            seq += 1
            value = f"t{tid}-{seq}"
            start = time.monotonic()
            r = node.kvctl("--timeout", "2s", "--json", "put", key, value, timeout=10)
            end = time.monotonic()
            ok = r.rc == 0
            hist.record(op="put", key=key, value=value, ok=ok, start=start, end=end,
                        node=node.name, version=last_json(r.out)["version"] if ok else None,
                        err=r.err.strip()[:200])
        else:
            start = time.monotonic()
            r = node.kvctl("--timeout", "2s", "--json", "get", key, timeout=10)
            end = time.monotonic()
            ok = r.rc in (0, 1)  # found, or a quorum that found nothing
            j = last_json(r.out) if r.rc == 0 else {}
            hist.record(op="get", key=key, value=j.get("value"), version=j.get("version"),
                        ok=ok, start=start, end=end, node=node.name, err=r.err.strip()[:200])


def test_no_lost_writes_no_stale_reads_under_kill9(cluster, tmp_path):
    cluster.overrides.update(GOSSIP)
    nodes = cluster.start(3)
    wait_for(lambda: alive_everywhere(nodes), 15, "3 alive everywhere")
    hist = History(str(tmp_path / "history.jsonl"))
    stop = threading.Event()
    rng = random.Random(1234)
    threads = [threading.Thread(target=client, args=(nodes, hist, stop, t, random.Random(t)))
               for t in range(4)]
    for t in threads:
        t.start()
    try:
        for cycle in range(CYCLES):
            victim = rng.choice(nodes)
            n_before = len(hist.ops)
            wait_for(lambda: len(hist.ops) >= n_before + 20, 30, "traffic before the kill")
            victim.kill()
            n_kill = len(hist.ops)
            wait_for(lambda: len(hist.ops) >= n_kill + 20, 60, "traffic with a node down")
            victim.start()
            wait_for(lambda: alive_everywhere(nodes), 30, f"{victim.name} back, cycle {cycle}")
    finally:
        stop.set()
        for t in threads:
            t.join()
    # Every node up, hints delivered: what each key ends with (R = 3).
    wait_for(lambda: all(last_json(n.kvctl("--json", "stats").out)["hints"]["pending"] == 0
                         for n in nodes), 30, "hints delivered")
    final = {}
    for key in KEYS:
        r = nodes[0].kvctl("--json", "-r", "3", "get", key)
        final[key] = last_json(r.out)["version"] if r.rc == 0 else None
        hist.record(op="final", key=key, version=final[key])
    hist.save()
    puts = [o for o in hist.ops if o["op"] == "put"]
    gets = [o for o in hist.ops if o["op"] == "get"]
    acked = sum(1 for o in puts if o["ok"])
    print(f"history: {len(puts)} puts ({acked} acknowledged), {len(gets)} gets, "
          f"saved to {hist.path}")
    assert acked >= 30, "too few acknowledged writes to check anything"
    problems = check(hist.ops, final)
    assert not problems, "\n".join(problems[:20]) + f"\n(history: {hist.path})"
    # Versions returned by reads are ones some put produced (no invented data).
    put_versions = {(o["key"], o["version"]) for o in puts if o["version"]}
    for o in gets:
        if o["ok"] and o["version"] is not None and (o["key"], o["version"]) not in put_versions:
            # a write whose reply was lost (node killed mid-request) may still have landed
            assert any(p["key"] == o["key"] and p["value"] == o["value"] for p in puts), \
                json.dumps(o)


def test_checker_flags_lost_writes_and_stale_reads():
    """The checker itself: a history with one lost write and one stale read."""
    ops = [
        {"op": "put", "key": "a", "value": "1", "version": 10, "ok": True, "start": 0, "end": 1},
        {"op": "put", "key": "a", "value": "2", "version": 20, "ok": True, "start": 2, "end": 3},
        {"op": "get", "key": "a", "value": "1", "version": 10, "ok": True, "start": 4, "end": 5,
         "node": "n1"},
        {"op": "get", "key": "a", "value": "2", "version": 20, "ok": True, "start": 4, "end": 5,
         "node": "n2"},
        {"op": "get", "key": "a", "value": None, "version": None, "ok": True, "start": 0.5,
         "end": 0.9, "node": "n3"},  # concurrent with the first put: not stale
    ]
    problems = check(ops, {"a": 10})
    assert len(problems) == 2, problems
    assert problems[0].startswith("lost write: a") and "stale read: get a through n1" in problems[1]
    assert check(ops[1:2] + ops[3:], {"a": 20}) == []


# ---- from the first moment: quorums while the cluster is still forming ----

FORMING_ROUNDS = 20  # the unsafe window was the first ~0.1 s: a fresh cluster each round
FORMING_OPS = 150    # per client, with 2 clients on each node from its first health answer


def raw_client(node, hist, tid, rng, stop):
    """Puts and gets on KEYS over one raw connection to node, as fast as it
    answers: the first requests land while the nodes still learn of each
    other, which is what is under test."""
    # FORMING_OPS operations, and on until 20 puts were acknowledged (a
    # cluster answers QUORUM until it formed: every member alive, agreeing,
    # holding its partitions), within 10 s.
    acked, deadline = 0, time.monotonic() + 10
    with RawKV(node) as kv:
        for seq in itertools.count():
            if stop.is_set() or (seq >= FORMING_OPS and acked >= 20) or time.monotonic() > deadline:
                return
            key = rng.choice(KEYS).encode()
            if rng.random() < 0.5:
                value = f"t{tid}-{seq}"
                start = time.monotonic()
                st, f = kv.call("PUT", rk_field("KEY", key) + rk_field("VALUE", value.encode()))
                end = time.monotonic()
                ok = st == "OK"
                acked += ok
                version = struct.unpack("<Q", f[RK_TAG["VERSION"]])[0] if ok else None
                hist.record(op="put", key=key.decode(), value=value, ok=ok, start=start, end=end,
                            node=node.name, version=version, err=st)
            else:
                start = time.monotonic()
                st, f = kv.call("GET", rk_field("KEY", key))
                end = time.monotonic()
                v = f.get(RK_TAG["VERSION"])
                hist.record(op="get", key=key.decode(), ok=st in ("OK", "NOT_FOUND"),
                            value=f[RK_TAG["VALUE"]].decode() if st == "OK" else None,
                            version=struct.unpack("<Q", v)[0] if st == "OK" else None,
                            start=start, end=end, node=node.name, err=st)


def forming_round(c, hist, seed):
    """Start 3 nodes at once; each gets 2 clients as soon as it answers
    health. Returns the final version of every key (R = 3)."""
    nodes = [c.add_node() for _ in range(3)]
    for n in nodes:
        n.start(wait=False)
    stop, threads = threading.Event(), []
    try:
        for i, n in enumerate(nodes):
            n.wait_ready(30)
            for k in range(2):
                tid = i * 2 + k
                t = threading.Thread(target=raw_client,
                                     args=(n, hist, tid, random.Random(seed * 100 + tid), stop))
                t.start()
                threads.append(t)
        for t in threads:
            t.join(120)
    finally:
        stop.set()
        for t in threads:
            t.join()
    wait_for(lambda: alive_everywhere(nodes), 30, "3 alive everywhere")
    for n in nodes:  # formed: every partition held by its replicas, so R = 3 can be met
        n.wait_serving(30)
    final = {}
    for key in KEYS:
        # R = 3 needs node-1 to have heard every holder (one interval after
        # the cluster formed): QUORUM until then.
        r = wait_for(lambda: (x := nodes[0].kvctl("--json", "-r", "3", "get", key)).rc in (0, 1)
                     and x, 10, f"an R = 3 read of {key}")
        final[key] = last_json(r.out)["version"] if r.rc == 0 else None
    return final


def test_no_stale_reads_while_the_cluster_forms(cluster, tmp_path):
    """A node that knew fewer members than cluster.replicas capped W and R
    at what it knew: reads returned "not found" 30-60 ms after a write to
    the key was acknowledged, in the first 0.1 s of a fresh cluster. Every
    round's history must be clean, and requests a forming node cannot
    serve fail with QUORUM saying why."""
    seed = 20261207
    print(f"seed {seed}")
    failures, quorum_errors, acked = [], 0, 0
    for rnd in range(FORMING_ROUNDS):
        c = Cluster(tmp_path / f"round-{rnd}", cluster.ringkvd, cluster.kvctl_bin,
                    overrides=dict(GOSSIP))
        try:
            hist = History(str(tmp_path / f"history-{rnd}.jsonl"))
            final = forming_round(c, hist, seed + rnd)
            hist.save()
            problems = check(hist.ops, final)
            failures += [f"round {rnd}: {p}" for p in problems]
            if not problems:  # the round's data dirs are not needed to look into it
                c.cleanup()
                for n in c.nodes:
                    shutil.rmtree(n.data_dir, ignore_errors=True)
            quorum_errors += sum(1 for o in hist.ops if o["err"] == "QUORUM")
            acked += sum(1 for o in hist.ops if o["op"] == "put" and o["ok"])
        finally:
            c.cleanup()
    print(f"{FORMING_ROUNDS} rounds: {acked} acknowledged puts, {quorum_errors} QUORUM answers")
    assert acked >= FORMING_ROUNDS * 100, "too few acknowledged writes to check anything"
    assert not failures, "\n".join(failures[:20])

"""Ownership transfers (docs/TRANSFERS.md): the data follows the ring when
members join, and nothing reads as missing meanwhile.

Clients write and read through every node while node-4 and node-5 join;
the recorded history (history.py) must show no lost acknowledged write and
no stale read, no key written before the join may ever read "not found",
and once the transfers are over every key sits on exactly its preference
list (each node's own copy, asked with RGET, which does not repair).
"""

import random
import struct
import threading
import time

from harness import RK_TAG, RawKV, last_json, rk_field, node_stats, wait_for, wait_all_alive
from history import History, check

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "3s",
          "cluster.request_timeout": "1s"}
PRELOAD = 600
CLIENTS = 32
SETTLE_S = 120


def preload(node, n, prefix="pre", value=lambda i: f"v-{i}"):
    """n keys PREFIX-00000.. written through node; {key: value}."""
    keys = {}
    with RawKV(node) as kv:
        for i in range(n):
            k, v = f"{prefix}-{i:05d}", value(i)
            assert kv.put(k.encode(), v.encode()) == "OK", k
            keys[k] = v
    return keys


def client(nodes, hist, stop, tid, rng, old_keys, missing):
    """Puts and gets of 20 hot keys (recorded for the history checker) and
    gets of keys written before the changes (any "not found" recorded in
    missing), over one raw connection per node, until stop."""
    conns = {}
    keys = [f"hot-{i}" for i in range(20)]
    seq = 0
    try:
        while not stop.is_set():
            node = rng.choice(nodes)
            if not node.is_running():
                continue
            roll = rng.random()
            try:
                if node.name not in conns:
                    conns[node.name] = RawKV(node)
                kv = conns[node.name]
                if roll < 0.4:
                    seq += 1
                    key, value = rng.choice(keys), f"t{tid}-{seq}"
                    start = time.monotonic()
                    st, f = kv.call("PUT", rk_field("KEY", key.encode()) +
                                    rk_field("VALUE", value.encode()))
                    end = time.monotonic()
                    ok = st == "OK"
                    hist.record(op="put", key=key, value=value, ok=ok, start=start, end=end,
                                node=node.name, err=st,
                                version=struct.unpack("<Q", f[RK_TAG["VERSION"]])[0] if ok else None)
                elif roll < 0.7:
                    key = rng.choice(keys)
                    start = time.monotonic()
                    st, f = kv.call("GET", rk_field("KEY", key.encode()))
                    end = time.monotonic()
                    ok = st == "OK"
                    hist.record(op="get", key=key, ok=st in ("OK", "NOT_FOUND"), start=start,
                                end=end, node=node.name, err=st,
                                value=f[RK_TAG["VALUE"]].decode() if ok else None,
                                version=struct.unpack("<Q", f[RK_TAG["VERSION"]])[0] if ok else None)
                else:
                    key = rng.choice(old_keys)
                    st, _ = kv.call("GET", rk_field("KEY", key.encode()))
                    if st == "NOT_FOUND":
                        missing.append((key, node.name, time.monotonic()))
            except (OSError, ConnectionError, TimeoutError, AssertionError):
                # The node went away (a leave, a kill, a restart): a new
                # connection next time.
                if node.name in conns:
                    conns.pop(node.name).close()
    finally:
        for kv in conns.values():
            kv.close()


def settled(nodes):
    """kvctl transfers lists nothing (every member up asked), and every node
    is ready."""
    r = nodes[0].kvctl("--timeout", "2s", "--json", "transfers", timeout=20)
    if r.rc != 0 or last_json(r.out)["count"] != 0:
        return False
    return all(n.kvctl("--timeout", "2s", "ready", timeout=5).rc == 0 for n in nodes)


def copies_off_preference(nodes, keys):
    """(key, node, what) for each key whose own copy on a node disagrees with
    its preference list: missing where it should be, present elsewhere."""
    bad = []
    pref = {}
    for k in keys:
        loc = last_json(nodes[0].kvctl("--json", "locate", k).out)
        pref[k] = {p["node"] for p in loc["preference"]}
    for n in nodes:
        with RawKV(n) as kv:
            for k in keys:
                st, _ = kv.call("RGET", rk_field("KEY", k.encode()))
                there = st == "OK"
                if there != (n.name in pref[k]):
                    bad.append((k, n.name, st))
    return bad


class Load:
    """CLIENTS threads of client() over live (a list the test may extend)
    while the block runs; then the history is checked: no lost write, no
    stale read, no old key read as missing."""

    def __init__(self, live, old, tmp_path):
        self.live, self.old = live, old
        self.hist = History(str(tmp_path / "history.jsonl"))
        self.stop, self.missing = threading.Event(), []
        seed = random.randrange(1 << 30)
        print(f"seed {seed}")
        self.threads = [threading.Thread(target=client, args=(
            live, self.hist, self.stop, t, random.Random(seed + t), list(old), self.missing))
            for t in range(CLIENTS)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        wait_for(lambda: len(self.hist.ops) >= 100, 30, "traffic before the change")
        return self

    def more(self, n=100):
        """Wait for n more operations."""
        n0 = len(self.hist.ops)
        wait_for(lambda: len(self.hist.ops) >= n0 + n, 30, f"{n} more operations")

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()

    def check(self, reader):
        assert not self.missing, \
            f"keys written before the change read as missing: {self.missing[:10]}"
        final = {}
        for key in {o["key"] for o in self.hist.ops}:
            r = reader.kvctl("--json", "-r", "3", "get", key)
            assert r.rc in (0, 1), r
            final[key] = last_json(r.out)["version"] if r.rc == 0 else None
            self.hist.record(op="final", key=key, version=final[key])
        self.hist.save()
        puts = [o for o in self.hist.ops if o["op"] == "put"]
        acked = sum(1 for o in puts if o["ok"])
        print(f"history: {len(puts)} puts ({acked} acknowledged), "
              f"{sum(1 for o in self.hist.ops if o['op'] == 'get')} gets, saved to "
              f"{self.hist.path}")
        assert acked >= 100, "too few acknowledged writes to check anything"
        problems = check(self.hist.ops, final)
        assert not problems, "\n".join(problems[:20]) + f"\n(history: {self.hist.path})"


def test_join_under_load(cluster, tmp_path):
    cluster.overrides.update({**GOSSIP, "cluster.expect_nodes": 3})
    nodes = cluster.start(3)
    wait_all_alive(nodes, 20)
    old = preload(nodes[0], PRELOAD)
    live = list(nodes)
    with Load(live, old, tmp_path) as load:
        joined = cluster.start(2, ready=False)  # two joins at once
        nodes = nodes + joined
        wait_all_alive(nodes, 30)
        live.extend(joined)
        t0 = time.monotonic()
        wait_for(lambda: settled(nodes), SETTLE_S, "transfers over on every node")
        print(f"transfers settled {time.monotonic() - t0:.1f} s after the joins were seen")
        load.more()
    load.check(nodes[0])
    assert not all_readable(nodes[4], old)
    # Dropped copies go on each node's next look: poll.
    keys = list(old)[:200] + [f"hot-{i}" for i in range(20)]
    wait_for(lambda: not copies_off_preference(nodes, keys), 30,
             "every key on exactly its preference list")
    for n in nodes:
        t = node_stats(n)["transfers"]
        print(f"{n.name}: transfers {t}")


def start4(cluster):
    cluster.overrides.update({**GOSSIP, "cluster.expect_nodes": 4})
    nodes = cluster.start(4)
    wait_all_alive(nodes, 20)
    return nodes, preload(nodes[0], PRELOAD)


def all_readable(node, keys):
    """Keys of keys ({key: value}) that node does not read back at R = 3."""
    return [k for k, v in keys.items()
            if (r := node.kvctl("-r", "3", "get", k)).rc != 0 or r.out.decode().strip() != v]


def test_leave_under_load_hands_every_partition_over(cluster, tmp_path):
    nodes, old = start4(cluster)
    leaver, rest = nodes[3], nodes[:3]
    with Load(list(rest), old, tmp_path) as load:  # clients on the nodes that stay
        r = leaver.kvctl("leave", timeout=SETTLE_S)
        assert r.rc == 0, r
        out = r.out.decode()
        assert "handed its partitions over" in out and "partitions handed over" in out, out
        assert leaver.wait_exit(30) == 0
        load.more()
    load.check(rest[0])
    wait_for(lambda: settled(rest), SETTLE_S, "transfers over after the leave")
    assert not all_readable(rest[0], old)
    keys = list(old)[:200]
    wait_for(lambda: not copies_off_preference(rest, keys), 30,
             "every key on exactly its preference list")


def test_remove_of_a_dead_node_restores_n_copies(cluster):
    nodes, old = start4(cluster)
    dead, rest = nodes[3], nodes[:3]
    dead.kill()
    wait_for(lambda: all(n.kvctl("--json", "members").rc == 0 and
                         {m["id"]: m["state"] for m in last_json(
                             n.kvctl("--json", "members").out)["members"]}.get(dead.name) == "dead"
                         for n in rest), 30, f"{dead.name} dead everywhere")
    r = rest[0].kvctl("remove", dead.name)
    assert r.rc == 0, r
    wait_for(lambda: settled(rest), SETTLE_S, "transfers over after the removal")
    keys = list(old)[:200]
    # N = 3 of 3 members now: every node's own copy holds every key.
    wait_for(lambda: not copies_off_preference(rest, keys), 30, "3 copies of every key")
    assert not all_readable(rest[1], old)


SLOW = {"transfers.max_bytes_per_second": "256KiB", "antientropy.enabled": False}
BIG = 1500


def join_slowly(cluster):
    """3 nodes holding BIG keys of 1 KiB with anti-entropy off (only
    transfers move data, so a partition marked held too early stays short),
    then node-4 joins with a slow transfer limit; returns once it is
    mid-transfer: some partitions received, more pending."""
    cluster.overrides.update({**GOSSIP, **SLOW, "cluster.expect_nodes": 3})
    nodes = cluster.start(3)
    wait_all_alive(nodes, 20)
    keys = preload(nodes[0], BIG, "big", lambda i: (f"{i:05d}-" * 200)[:1024])
    new = cluster.start(1, ready=False)[0]
    nodes.append(new)
    wait_all_alive(nodes, 30)

    def mid():
        t = node_stats(new)["transfers"]
        return t["done"] >= 3 and t["pending"] >= 10
    wait_for(mid, 60, "node-4 mid-transfer")
    return nodes, keys


def check_final(nodes, keys):
    wait_for(lambda: settled(nodes), SETTLE_S, "transfers over")
    sample = list(keys)[::5]
    off = []

    def on_pref():
        off[:] = copies_off_preference(nodes, sample)
        return not off
    try:
        wait_for(on_pref, 30, "every key on exactly its preference list")
    except AssertionError:
        raise AssertionError(f"{len(off)} copies off their preference list: {off[:20]}")
    assert not all_readable(nodes[0], {k: keys[k] for k in sample})


def test_kill9_of_the_receiver_mid_transfer(cluster):
    nodes, keys = join_slowly(cluster)
    new = nodes[3]
    before = node_stats(new)["transfers"]
    new.kill()
    print(f"killed {new.name} after {before['done']} partitions received, "
          f"{before['pending']} pending")
    new.start(wait=True)
    check_final(nodes, keys)


def test_kill9_of_a_sender_mid_transfer(cluster):
    nodes, keys = join_slowly(cluster)
    # A partition streams for tens of ms between agreement checks, so a
    # single look can fall between two; look until one is seen.
    streaming, last = [], {}

    def one_streaming():
        last.update(last_json(nodes[3].kvctl("--json", "transfers").out))
        streaming[:] = [t for t in last["transfers"] if t["state"] == "streaming"]
        return bool(streaming)
    try:
        wait_for(one_streaming, 30, "a transfer streaming to node-4")
    except AssertionError:
        raise AssertionError(f"no transfer seen streaming in 30 s: {last}")
    sender = next(n for n in nodes if n.name == streaming[0]["from"])
    sender.kill()
    print(f"killed {sender.name}, the source of partition {streaming[0]['partition']}")
    rest = [n for n in nodes if n is not sender]
    # Transfers from it wait for it, saying so.
    wait_for(lambda: any(t["why"] == f"source {sender.name} down" for t in last_json(
        rest[0].kvctl("--json", "transfers").out)["transfers"]), 30,
        f"a transfer waiting for {sender.name}")
    sender.start(wait=True)
    check_final(nodes, keys)

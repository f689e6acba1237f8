"""Anti-entropy, black-box. Progress and commands with the default 30 s
interval (no round has run yet in these tests): `kvctl ae` on a fresh
3-node cluster (round 0, nothing compared, nothing running, valid --json),
the progress file surviving a restart, `kvctl repair` marking a partition
(and --wait giving up with one line, exit 3), bad partition numbers (exit
2, one line), the antientropy block of `kvctl stats`, and the antientropy.*
settings reloading on SIGHUP. Then the exchange itself: AE_ROOT answered by
hand; a wiped node refilled by the rounds alone, with no client read, then
every key read at R = 3 showing three equal versions; replicas that
diverged both ways converging; a node killed mid-round resuming that round
after its restart; the keys moved per 2 s window staying within the budget
(from the counters); and a dropped hint's mark going first and clearing
only once every replica exchanged, also when the node that dropped it is
no replica of the partition. Every wait polls with a deadline.
"""

import json
import shutil
import signal
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import (RK_TAG, RawKV, last_json, member_states, node_stats, replica_misses, rk_field,
                     wait_all_alive, wait_for)

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
SLACK_S = 15
PARTS = 64




def start3(cluster):
    cluster.overrides.update({**GOSSIP, "cluster.partitions": PARTS})
    nodes = cluster.start(3)
    wait_all_alive(nodes, SLACK_S)
    return nodes


def ae_json(node, *args):
    r = node.kvctl("--json", "ae", *args)
    assert r.rc == 0, r
    lines = r.out.decode().strip().splitlines()
    assert len(lines) == 1, f"--json printed {len(lines)} lines: {r.out!r}"
    return json.loads(lines[0])


def test_fresh_cluster_shows_round_zero_and_survives_restart(cluster):
    n1, n2, n3 = start3(cluster)
    r = n1.kvctl("ae")
    assert r.rc == 0, r
    lines = r.out.decode().splitlines()
    assert lines[0].startswith("node-1: round 0 not started (never compared): 0/%d" % PARTS), lines[0]
    assert lines[1].split() == ["PARTITION", "REPLICAS", "LAST-EXCHANGE", "DIFFERENCES",
                                "KEYS-REPAIRED", "MARKS"], lines[1]
    assert len(lines) == 2 + PARTS, f"want a row per partition (N=3: all {PARTS}): {len(lines)}"
    row = lines[2].split()
    assert row[0] == "0" and sorted(row[1].split(",")) == ["node-1", "node-2", "node-3"], row
    assert row[2] == "never" and row[3] == "0" and row[4] == "0" and row[5] == "-", row

    j = ae_json(n1)
    assert j["node"] == "node-1" and j["enabled"] is True
    assert j["round"]["number"] == 0 and j["round"]["in_progress"] is False
    # The first round waits one interval (30 s): nothing runs yet, and it says so.
    assert j["exchanges_running"] is False and j["exchanges_in_flight"] == 0, j
    assert "between rounds" in lines[0], lines[0]
    assert j["round"]["partitions_total"] == PARTS and j["marked_partitions"] == 0
    assert len(j["partitions"]) == PARTS
    p = j["partitions"][0]
    assert p["last_result"] == "never" and p["watermark_ms"] == 0 and p["marks"] == []
    assert sorted(x["node"] for x in p["peers"]) == ["node-2", "node-3"]

    # A mark is kept in the data dir: a restart shows it again.
    r = n1.kvctl("repair", "7")
    assert r.rc == 0 and "1 partition marked" in r.out.decode(), r
    n1.restart()
    wait_all_alive([n1, n2, n3], SLACK_S)
    j = ae_json(n1, "--partition", "7")
    assert j["marked_partitions"] == 1, j
    assert j["partitions"][0]["partition"] == 7 and j["partitions"][0]["marks"] == ["request"], j
    assert j["round"]["number"] == 0


def test_repair_marks_and_wait_times_out(cluster):
    n1, _, _ = start3(cluster)
    r = n1.kvctl("repair", "7")
    assert r.rc == 0 and r.err == "", r
    r = n1.kvctl("ae", "--partition", "7")
    assert r.rc == 0, r
    lines = r.out.decode().splitlines()
    assert len(lines) == 3 and lines[2].split()[0] == "7" and lines[2].split()[-1] == "request", \
        lines
    assert "1 marked" in lines[0], lines[0]
    j = ae_json(n1, "--partition", "7")
    assert j["holds_partition"] is True and j["partitions"][0]["marked_ms"] > 0
    # Other partitions are not marked by it.
    assert ae_json(n1, "--partition", "8")["partitions"][0]["marks"] == []

    # With the other replicas paused no exchange can complete: --wait gives
    # up at its deadline, one line, exit 3.
    others = [n for n in cluster.nodes if n is not n1]
    for n in others:
        n.pause()
    try:
        r = n1.kvctl("repair", "7", "--wait", "--wait-timeout", "1s", timeout=20)
    finally:
        for n in others:
            n.resume()
    assert r.rc == 3, r
    assert len(r.err.strip().splitlines()) == 1 and "not done after 1s" in r.err, r.err

    # Without a partition: every partition this node holds.
    r = n1.kvctl("--json", "repair")
    assert r.rc == 0, r
    assert last_json(r.out)["partitions_marked"] == PARTS
    assert ae_json(n1)["marked_partitions"] == PARTS


def test_bad_partition_numbers(cluster):
    n1, _, _ = start3(cluster)
    for args in (("repair", str(PARTS)), ("ae", "--partition", str(PARTS)),
                 ("repair", "x"), ("ae", "--partition", "-1"), ("repair", "70000")):
        r = n1.kvctl(*args)
        assert r.rc == 2, (args, r)
        assert r.out == b"" and len(r.err.strip().splitlines()) == 1, (args, r)
    r = n1.kvctl("repair", str(PARTS))
    assert "out of range" in r.err and f"0..{PARTS - 1}" in r.err, r.err


def test_stats_has_antientropy_block(cluster):
    n1, _, _ = start3(cluster)
    n1.kvctl("repair", "3")
    r = n1.kvctl("--json", "stats")
    assert r.rc == 0, r
    ae = last_json(r.out)["antientropy"]
    for k in ("rounds", "partitions_compared", "leaves_differing", "keys_pulled", "keys_pushed",
              "keys_repaired", "bytes", "marked_partitions", "exchanges_in_flight", "busy_pauses",
              "hint_marks_taken", "hint_marks_forwarded", "as_of_ms"):
        assert isinstance(ae[k], int), (k, ae)
    assert ae["marked_partitions"] == 1 and ae["rounds"] == 0, ae
    assert ae["exchanges_running"] is False and ae["exchanges_in_flight"] == 0, ae
    assert ae["as_of_ms"] > 0, ae
    r = n1.kvctl("stats")
    assert "antientropy.keys_repaired" in r.out.decode(), r.out


def test_antientropy_settings_reload_on_sighup(cluster):
    (n,) = cluster.start(1)
    j = ae_json(n)
    assert j["enabled"] is True and j["max_bytes_per_second"] == 32 << 20
    assert j["interval_ms"] == 30000 and j["max_keys_per_second"] == 50000
    mark = n.log_mark()
    n.set_config({"antientropy.enabled": False, "antientropy.interval": "5s",
                  "antientropy.max_keys_per_second": 10,
                  "antientropy.max_bytes_per_second": "1MiB"})
    n.signal(signal.SIGHUP)
    line = n.wait_log(lambda l: "reloaded" in l and "antientropy" in l, since=mark,
                      what="an 'info server: reloaded: antientropy...' line")
    for k in ("antientropy.enabled", "antientropy.interval", "antientropy.max_keys_per_second",
              "antientropy.max_bytes_per_second"):
        assert k in line, (k, line)
    j = ae_json(n)
    assert j["enabled"] is False and j["interval_ms"] == 5000
    assert j["max_keys_per_second"] == 10 and j["max_bytes_per_second"] == 1 << 20
    # Disabled: repair still marks, --wait says it cannot progress, exit 3.
    r = n.kvctl("repair", "0", "--wait", "--wait-timeout", "5s", timeout=20)
    assert r.rc in (0, 3), r


# ---- the exchange's wire, served (aewire.h) ----

AE_ROOT_REQ = struct.Struct("<BBHIQ32Q")  # format, flags, partition, reserved, root, mids
AE_ROOT_REP = struct.Struct("<BBHIQ")     # format, flags, partition, mask, root; then leaves


def ae_root(kv, part, root=0, mids=(0,) * 32):
    """(status, mask, root, {mid: [32 leaf hashes]}) of one AE_ROOT by hand."""
    st, f = kv.call("AE_ROOT", rk_field("VALUE", AE_ROOT_REQ.pack(1, 0, part, 0, root, *mids)))
    if st != "OK":
        return st, None, None, None
    body = f[RK_TAG["VALUE"]]
    fmt, flags, p, mask, r = AE_ROOT_REP.unpack_from(body)
    bits = [m for m in range(32) if mask >> m & 1]
    assert fmt == 1 and flags == 0 and p == part, body[:16]
    assert len(body) == 16 + 256 * len(bits), (len(body), bits)
    leaves = {m: struct.unpack_from("<32Q", body, 16 + 256 * i) for i, m in enumerate(bits)}
    return st, mask, r, leaves


def test_ae_root_is_answered_with_the_mask_of_differing_mids(cluster):
    # One partition: every key lands in the tree asked about.
    (n,) = cluster.start(1, overrides={"cluster.partitions": 1})
    with RawKV(n) as kv:
        st, mask, root, _ = ae_root(kv, 0)
        assert (st, mask, root) == ("OK", 0, 0), "an empty tree equals an all-zero one"

        assert kv.put(b"only-key", b"v") == "OK"
        st, mask, root, leaves = ae_root(kv, 0)
        assert st == "OK" and bin(mask).count("1") == 1 and root != 0, (mask, root)
        assert sum(1 for ls in leaves.values() for x in ls if x) == 1, leaves

        for i in range(300):
            assert kv.put(b"k%d" % i, b"v") == "OK"
        st, mask, root, leaves = ae_root(kv, 0)
        assert st == "OK" and root != 0
        # Every mid named differs from zero: it holds a non-zero leaf.
        assert all(any(ls) for ls in leaves.values()), leaves
        assert bin(mask).count("1") >= 24, hex(mask)  # 301 keys over 32 mids
        nonzero = sum(1 for ls in leaves.values() for x in ls if x)
        assert 1 < nonzero <= 301, nonzero

        # Mids that match none of ours: every one differs.
        st, mask, _, _ = ae_root(kv, 0, root=1, mids=(1,) * 32)
        assert st == "OK" and mask == 0xFFFFFFFF, hex(mask)

        # No such partition; a body that is not an AE_ROOT.
        assert ae_root(kv, 5)[0] == "NOT_FOUND"
        st, _ = kv.call("AE_ROOT", rk_field("VALUE", b"\x01\x00\x00\x00"))
        assert st == "MALFORMED", st
        st, _ = kv.call("AE_ROOT", rk_field("KEY", b"k1"))
        assert st == "MALFORMED", st


# ---- the driver: replicas converge by themselves ----

AE_FAST = {**GOSSIP, "cluster.partitions": PARTS, "antientropy.interval": "1s"}
REFILL_S = 60






WIPE_KEYS = 5000


def replicas_agree(node, key, value):
    """None when `kvctl --json -r 3 get` through node answers value and
    names three replicas, each with the answer's version; else what is
    wrong. The answer lists what each replica returned before any read
    repair."""
    r = node.kvctl("--json", "-r", "3", "get", key.decode(), timeout=30)
    if r.rc != 0:
        return (key, r)
    j = last_json(r.out)
    seen = {x["node"]: x.get("version") for x in j.get("replicas", [])}
    if (j.get("value") != value.decode() or sorted(seen) != ["node-1", "node-2", "node-3"]
            or set(seen.values()) != {j["version"]}):
        return (key, j)
    return None


def test_wiped_node_is_refilled_by_a_transfer(cluster):
    """A node whose data dir was wiped holds nothing (its holdings went with
    it): it is pending for every partition it owns and receives them by
    transfers from the others (docs/TRANSFERS.md), before any client read."""
    # 5,000 gets at R = 3 under ASan beside another test file: a replica
    # may answer late; a late answer is not what this test looks for.
    cluster.overrides.update({**AE_FAST, "cluster.request_timeout": "5s"})
    n1, n2, n3 = cluster.start(3)
    wait_all_alive([n1, n2, n3], SLACK_S)
    want = {b"wipe-%05d" % i: b"value-%d" % i for i in range(WIPE_KEYS)}
    with RawKV(n1) as kv:
        for k, v in want.items():
            assert kv.put(k, v) == "OK", k

    n3.kill()
    shutil.rmtree(n3.data_dir)
    n3.start()
    wait_all_alive([n1, n2, n3], SLACK_S)

    # No client reads: only transfers can bring the keys back (RGET of a
    # partition node-3 does not hold yet is refused, a miss here).
    left = [None]

    def refilled():
        left[0] = replica_misses(n3, left[0] if left[0] is not None else list(want), want)
        return not left[0]
    wait_for(refilled, REFILL_S, "transfers to refill node-3")

    assert replica_misses(n3, list(want), want) == []
    st = [node_stats(n) for n in (n1, n2, n3)]
    # Every partition received by a transfer (the keys whose third copy was
    # still on its way when node-3 was killed may reach it as hints instead;
    # anti-entropy may still even out node-1 and node-2, which W = 2 writes
    # can leave apart in a slow build).
    parts = last_json(n3.kvctl("--json", "ring").out)["partitions"]
    assert st[2]["transfers"]["done"] == st[2]["transfers"]["held"] == parts, st[2]["transfers"]
    assert st[2]["transfers"]["keys"] > 0, st[2]["transfers"]
    # Before any client read (the reads below may repair): none so far.
    assert sum(s["replication"]["read_repairs"] for s in st) == 0, [s["replication"] for s in st]

    # Every key read at R = 3: all three replicas at the one version. Two
    # kvctl processes at a time: the nodes answer while the next one starts.
    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as ex:
        bad = [x for x in ex.map(lambda k: replicas_agree(n1, k, want[k]), want) if x]
    print(f"{len(want)} kvctl get --json -r 3: {time.monotonic() - t0:.1f} s")
    assert bad == [], f"{len(bad)} keys whose replicas disagree, e.g. {bad[:3]}"


def replica_versions(node, keys):
    """{key: (version, tombstone)} of node's own replica (RGET, tombstones
    included; no read repair), None for a key it does not hold."""
    out = {}
    with RawKV(node) as kv:
        for k in keys:
            st, f = kv.call("RGET", rk_field("KEY", k))
            v = f.get(RK_TAG["VERSION"])
            out[k] = (struct.unpack("<Q", v)[0], RK_TAG["TOMBSTONE"] in f) if st == "OK" else None
    return out


def test_replicas_that_diverged_both_ways_converge(cluster):
    """node-1 and node-3 miss different writes (hinted handoff off: every
    hint is dropped), overwrites and deletes included; after both are back,
    anti-entropy alone leaves every replica with the newest version of
    every key, deletes included."""
    cluster.overrides.update({**AE_FAST, "hints.max_bytes_per_target": "0B",
                              "antientropy.enabled": False})  # on once they diverged
    n1, n2, n3 = cluster.start(3)
    wait_all_alive([n1, n2, n3], SLACK_S)
    keys = [b"both-%04d" % i for i in range(600)]

    def write_with_down(down, up, items, deletes=()):
        down.kill()  # stopped, not paused: a paused node still takes what waits in its socket
        # Until the coordinator sees it down, a replica write to it waits in
        # the peer socket's queue and reaches it once it is back: the node
        # would then miss nothing.
        wait_for(lambda: member_states(up).get(down.name) != "alive", SLACK_S, f"{up.name} to see {down.name} down")
        with RawKV(up) as kv:
            for k, v in items:
                assert kv.put(k, v) == "OK", k
            for k in deletes:
                st, _ = kv.call("DEL", rk_field("KEY", k))
                assert st == "OK", (k, st)
        down.start()
        wait_all_alive([n1, n2, n3], SLACK_S)

    write_with_down(n3, n1, [(k, b"first") for k in keys[:400]])          # node-3 misses
    write_with_down(n1, n2, [(k, b"second") for k in keys[200:600]],     # node-1 misses:
                    deletes=keys[100:200])                               # new, overwrites, deletes
    before = [replica_versions(n, keys) for n in (n1, n3)]
    assert before[0] != before[1], "node-1 and node-3 never diverged: the test proves nothing"
    for n in (n1, n2, n3):
        n.set_config({"antientropy.enabled": True})
        n.signal(signal.SIGHUP)

    def converged():
        seen = [replica_versions(n, keys) for n in (n1, n2, n3)]
        return all(seen[0][k] is not None and seen[0][k] == seen[1][k] == seen[2][k] for k in keys)
    wait_for(converged, REFILL_S, "every replica at the newest version of every key")
    final = replica_versions(n2, keys)
    assert all(final[k][1] for k in keys[100:200]), "a delete did not win everywhere"
    with RawKV(n1) as kv:
        assert kv.get(keys[150])[0] == "NOT_FOUND"
        assert kv.get(keys[50])[1] == b"first" and kv.get(keys[300])[1] == b"second"


# ---- a restart mid-round, the budget, dropped hints ----

AE_OP = 27  # proto.h: anti-entropy progress, JSON in TEXT


def raw_json(kv, op, key=None):
    """The JSON answer of an admin request over a RawKV connection (no
    process per call: tests that sample often use it)."""
    st, f = kv.call(op, rk_field("KEY", key) if key is not None else b"")
    assert st == "OK", (op, st, f.get(RK_TAG["TEXT"]))
    return json.loads(f[RK_TAG["TEXT"]])


def put_all(node, want):
    with RawKV(node) as kv:
        for k, v in want.items():
            assert kv.put(k, v) == "OK", k


def wipe(node, nodes, **config):
    """kill -9 node, lose its data but not its holdings file (it still
    believes it holds its partitions: a disk that lost what it stored, the
    case anti-entropy repairs; with the whole data dir gone it would receive
    them by transfers instead), start it again (with config)."""
    node.kill()
    holdings = (node.data_dir / "holdings").read_bytes()
    shutil.rmtree(node.data_dir)
    node.data_dir.mkdir()
    (node.data_dir / "holdings").write_bytes(holdings)
    if config:
        node.set_config(config)
    node.start()
    wait_all_alive(nodes, SLACK_S)


def test_a_node_killed_mid_round_resumes_that_round(cluster):
    """node-3, wiped, refills at 300 keys/s (node-1 and node-2 only answer:
    their own rounds are off); killed with kill -9 while its round is under
    way, it shows the same round in progress after the restart, before any
    new round could start, and that round completes with every key back."""
    cluster.overrides.update({**GOSSIP, "cluster.partitions": PARTS, "antientropy.interval": "2s",
                              "antientropy.max_keys_per_second": 300,
                              "antientropy.enabled": False})
    n1, n2, n3 = nodes = cluster.start(3)
    wait_all_alive(nodes, SLACK_S)
    want = {b"mid-%05d" % i: b"v%d" % i for i in range(2400)}
    put_all(n1, want)
    wipe(n3, nodes, **{"antientropy.enabled": True})

    with RawKV(n3) as kv:
        def mid_round():
            j = raw_json(kv, AE_OP)
            r = j["round"]
            return j if r["in_progress"] and 6 <= r["partitions_compared"] < PARTS // 2 else None
        j = wait_for(mid_round, 60, "node-3's round under way, a few partitions compared",
                     interval=0.05)
    rnd = j["round"]["number"]
    assert rnd >= 1 and j["exchanges_running"] is True and j["exchanges_in_flight"] >= 1, j
    n3.kill()

    n3.start()  # its next round would start 2 s after this
    j = ae_json(n3)
    assert j["round"]["number"] == rnd and j["round"]["in_progress"] is True, \
        f"round {rnd} should still be in progress after the restart: {j['round']}"
    held = len(want) - len(replica_misses(n3, list(want), want))
    assert 0 < held < len(want), f"node-3 held {held} of {len(want)} keys: not mid-round"

    with RawKV(n3) as kv:
        def finished():
            r = raw_json(kv, AE_OP)["round"]
            assert r["number"] == rnd, f"round {r['number']}: round {rnd} was not resumed"
            return r if not r["in_progress"] else None
        r = wait_for(finished, 60, f"round {rnd} to complete on node-3", interval=0.05)
    assert r["partitions_compared"] == r["partitions_total"] == PARTS, r
    assert replica_misses(n3, list(want), want) == []


BUDGET = 500  # antientropy.max_keys_per_second
WINDOW_MS = 2000


def sample_moves(node, stop, out):
    """Until stop is set: (wall time, the node's as_of_ms, keys it moved)
    every 50 ms, from its own counters (keys pulled + pushed, the exchange
    in flight included)."""
    with RawKV(node) as kv:
        while not stop.is_set():
            ae = raw_json(kv, 17)["antientropy"]  # STATS
            out.append((time.monotonic(), ae["as_of_ms"], ae["keys_pulled"] + ae["keys_pushed"]))
            stop.wait(0.05)


def most_in_a_window(samples):
    """The most keys moved between two samples at most WINDOW_MS apart by
    the node's own clock (the time its counters were taken)."""
    best = 0
    for i, (_, t0, m0) in enumerate(samples):
        for _, t1, m1 in samples[i + 1:]:
            if t1 - t0 > WINDOW_MS:
                break
            best = max(best, m1 - m0)
    return best


def test_keys_moved_per_second_stay_within_the_budget(cluster):
    """A wiped node-3 is refilled by all three nodes' rounds (node-3 pulls,
    node-1 and node-2 push), each node within its own budget of 500 keys/s
    shared by its two workers: sampled every 50 ms, no node moves more than
    1.1 x 500 x 2 keys in any 2 s window, and the budget, not something
    else, is what limits the repair."""
    cluster.overrides.update({**AE_FAST, "antientropy.max_keys_per_second": BUDGET})
    nodes = cluster.start(3)
    wait_all_alive(nodes, SLACK_S)
    want = {b"budget-%05d" % i: b"v%d" % i for i in range(6000)}
    put_all(nodes[0], want)
    wipe(nodes[2], nodes)

    stop, samples = threading.Event(), {n.name: [] for n in nodes}
    threads = [threading.Thread(target=sample_moves, args=(n, stop, samples[n.name]))
               for n in nodes]
    for t in threads:
        t.start()
    try:
        left = [list(want)]

        def refilled():
            left[0] = replica_misses(nodes[2], left[0], want)
            return not left[0]
        wait_for(refilled, 120, "node-3 refilled", interval=0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()

    limit = 1.1 * BUDGET * WINDOW_MS / 1000
    most = {}
    for name, ss in samples.items():
        gaps = [b[0] - a[0] for a, b in zip(ss, ss[1:])]
        assert ss and max(gaps) <= 0.25, f"{name}: a gap of {max(gaps):.3f}s between samples"
        most[name] = most_in_a_window(ss)
        assert most[name] <= limit, \
            f"{name} moved {most[name]} keys in {WINDOW_MS} ms (budget {BUDGET}/s, limit {limit:.0f})"
    moved = sum(ss[-1][2] for ss in samples.values())
    print(f"most keys moved in any {WINDOW_MS} ms window per node: {most}; {moved} moved in all")
    assert moved >= len(want), (moved, len(want))  # node-3's keys came only this way
    # The repair ran at the budget: some node came close to it over 2 s.
    assert max(most.values()) >= 0.8 * BUDGET * WINDOW_MS / 1000, most


def partition_of(node, key):
    j = last_json(node.kvctl("--json", "locate", key).out)
    return j["partition"], [p["node"] for p in j["preference"]]


def marks_of(kv, part):
    return raw_json(kv, AE_OP, b"%d" % part)["partitions"][0]


def test_dropped_hint_goes_first_and_clears_once_every_replica_exchanged(cluster):
    """node-3 down and hints off (max 0 bytes): node-1 coordinates a write,
    drops the hint and marks the key's partition; the mark moves into
    node-1's progress ("hint") and out of ae-marks. Rounds while node-3 is
    down keep it (node-3 unreachable). Once node-3 is back, the round that
    clears it exchanged that partition before every other partition of its
    worker."""
    cluster.overrides.update({**GOSSIP, "cluster.partitions": PARTS, "antientropy.interval": "3s",
                              "hints.max_bytes_per_target": "0B"})
    n1, n2, n3 = nodes = cluster.start(3)
    wait_all_alive(nodes, SLACK_S)
    # A partition late in its worker's natural order (the test's nodes run
    # two workers: worker p % 2 owns p): going first is then visible.
    key = next(k for k in (f"hinted-{i}" for i in range(500)) if partition_of(n1, k)[0] >= 40)
    part = partition_of(n1, key)[0]
    n3.kill()
    with RawKV(n1) as kv:
        assert kv.put(key.encode(), b"while node-3 is down") == "OK"
        e = wait_for(lambda: (lambda p: p if p["marks"] == ["hint"] else None)(marks_of(kv, part)),
                     10, f"partition {part} marked 'hint' in node-1's progress")
        marked_ms = e["marked_ms"]
        # Taken out of ae-marks once the progress holding it was saved.
        wait_for(lambda: raw_json(kv, 17)["hints"]["partitions_marked"] == 0, 10,
                 "node-1's ae-marks emptied")
        assert raw_json(kv, 17)["antientropy"]["hint_marks_taken"] >= 1

        # Exchanged with both replicas after the mark, node-3 down: the mark
        # stays.
        def exchanged_after_mark():
            e = marks_of(kv, part)
            peers = {q["node"]: q for q in e["peers"]}
            return e if (peers["node-2"]["ok_ms"] > marked_ms and
                         peers["node-3"]["last_ms"] > marked_ms) else None
        e = wait_for(exchanged_after_mark, 20, f"partition {part} exchanged after the mark")
        peers = {q["node"]: q for q in e["peers"]}
        assert e["marks"] == ["hint"], e
        assert peers["node-2"]["result"] == "ok" and peers["node-2"]["ok_ms"] > marked_ms, e
        assert peers["node-3"]["result"] == "unreachable", e

    n3.start()
    with RawKV(n1) as kv:
        # Polled from node-3's start on: the first row without the mark is
        # one of the round that cleared it (the worker's next round begins
        # antientropy.interval after that one ends), with the worker's round
        # from the same copy.
        e = wait_for(lambda: (lambda p: p if p["marks"] == [] else None)(marks_of(kv, part)), 30,
                     f"partition {part}'s mark cleared", interval=0.05)
        peers = {q["node"]: q for q in e["peers"]}
        assert all(peers[n]["result"] == "ok" and peers[n]["ok_ms"] > marked_ms
                   for n in ("node-2", "node-3")), e
        # Each worker runs its own rounds (the node's round is the lowest of
        # them, often another number): the round that cleared the mark is
        # judged by its worker's figures alone.
        rnd, worker, wr = e["compared_in_round"], e["worker"], e["worker_round"]
        assert wr["number"] == rnd, f"worker {worker} in round {wr['number']}, row of round {rnd}: {e}"
        start = wr["started_ms"]
        # The worker's partitions as that round compared them: collected
        # until the round is over (a partition's row changes again only in
        # the next round, which begins 3 s after), so none needs to be caught
        # at one instant, however slow the build.
        rows = {}

        def round_over():
            j = raw_json(kv, AE_OP)
            for q in j["partitions"]:
                if q["worker"] == worker and q["compared_in_round"] == rnd:
                    rows[q["partition"]] = q
            w = next(q for q in j["partitions"] if q["partition"] == part)["worker_round"]
            return w["number"] != rnd or not w["in_progress"]
        wait_for(round_over, 60, f"round {rnd} of worker {worker} over on node-1", interval=0.05)
    # The round that cleared it: the partition went first in its worker.
    first_done = max(q["last_ms"] for q in e["peers"])
    later = [q for q in rows.values() if q["partition"] != part]
    assert len(later) >= 10, f"only {len(later)} partitions of worker {worker} compared in round {rnd}"
    for q in later:
        assert q["partition"] % 2 == part % 2, q  # the test's nodes run two workers: p % 2 owns p
        for x in q["peers"]:
            if x["ok_ms"] >= start:  # exchanged in this round
                assert x["ok_ms"] >= first_done, \
                    f"partition {q['partition']} exchanged before the marked {part}: {x}, {e}"


def test_a_non_replica_hands_its_dropped_hint_mark_to_a_replica(cluster):
    """Four nodes, N = 3: node-4 coordinates a write of a partition it holds
    no replica of while a replica is down, and drops the hint (max 0
    bytes). The mark is handed to a replica that is up, which marks it
    "hint" (saved before it answers); node-4 clears its own only then. The
    replica's mark clears once the down replica is back and exchanged."""
    cluster.overrides.update({**GOSSIP, "cluster.partitions": PARTS, "antientropy.interval": "1s",
                              "hints.max_bytes_per_target": "0B"})
    nodes = cluster.start(4)
    wait_all_alive(nodes, SLACK_S)
    n4 = nodes[3]
    key, (part, pref) = next((k, partition_of(n4, k)) for k in (f"fwd-{i}" for i in range(500))
                             if "node-4" not in partition_of(n4, k)[1])
    by_name = {n.name: n for n in nodes}
    down, up = by_name[pref[0]], [by_name[x] for x in pref[1:]]
    down.kill()
    with RawKV(n4) as kv:
        assert kv.put(key.encode(), b"while a replica is down") == "OK"

    def handed():
        for n in up:
            with RawKV(n) as kv:
                if marks_of(kv, part)["marks"] == ["hint"]:
                    return n
        return None
    holder = wait_for(handed, 15, f"a replica of partition {part} ({pref[1:]}) marked 'hint'")
    with RawKV(n4) as kv:
        wait_for(lambda: raw_json(kv, 17)["hints"]["partitions_marked"] == 0, 10,
                 "node-4's ae-marks emptied once a replica took the mark")
        # Counted where it left: forwarded (handed over), never taken. Polled:
        # one ASan run under load read forwarded 0 right after the marks
        # emptied, which the single publication of both should rule out; the
        # wait shows whether the count comes late or never.
        ae = wait_for(lambda: (lambda a: a if a["hint_marks_forwarded"] + a["hint_marks_taken"] >= 1
                               else None)(raw_json(kv, 17)["antientropy"]), 10,
                      "node-4 counting the mark it handed over")
        assert ae["hint_marks_forwarded"] >= 1 and ae["hint_marks_taken"] == 0, json.dumps(ae)
        # node-4 never marks its own progress for a partition it does not hold.
        assert raw_json(kv, AE_OP)["marked_partitions"] == 0

    with RawKV(holder) as kv:
        marked_ms = marks_of(kv, part)["marked_ms"]

        def round_after_mark():
            r = raw_json(kv, AE_OP)["round"]
            return r["started_ms"] > marked_ms and not r["in_progress"]
        wait_for(round_after_mark, 20, f"a round of {holder.name} begun and finished after the mark")
        e = marks_of(kv, part)
        assert e["marks"] == ["hint"], f"cleared while {down.name} was down: {e}"
        assert {q["node"]: q["result"] for q in e["peers"]}[down.name] == "unreachable", e
    down.start()
    with RawKV(holder) as kv:
        wait_for(lambda: marks_of(kv, part)["marks"] == [], 30,
                 f"partition {part}'s mark cleared on {holder.name} once {down.name} exchanged")

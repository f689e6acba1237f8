"""Anti-entropy, black-box. Progress and commands with the default 30 s
interval (no round has run yet in these tests): `kvctl ae` on a fresh
3-node cluster (round 0, nothing compared, valid --json), the progress file
surviving a restart, `kvctl repair` marking a partition (and --wait giving
up with one line, exit 3), bad partition numbers (exit 2, one line), the
antientropy block of `kvctl stats`, and the antientropy.* settings reloading
on SIGHUP. Then the exchange itself: AE_ROOT answered by hand, and a wiped
node refilled by the rounds alone, with no client read. Every wait polls
with a deadline.
"""

import json
import shutil
import signal
import struct

from harness import RK_TAG, RawKV, last_json, rk_field, wait_for

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
SLACK_S = 15
PARTS = 64


def alive_everywhere(nodes):
    def ok():
        for n in nodes:
            r = n.kvctl("--timeout", "2s", "--json", "members", timeout=10)
            if r.rc != 0 or [m["state"] for m in last_json(r.out)["members"]].count("alive") != 3:
                return False
        return True
    wait_for(ok, SLACK_S, "3 alive everywhere")


def start3(cluster):
    cluster.overrides.update({**GOSSIP, "cluster.partitions": PARTS})
    nodes = cluster.start(3)
    alive_everywhere(nodes)
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
    assert j["round"]["partitions_total"] == PARTS and j["marked_partitions"] == 0
    assert len(j["partitions"]) == PARTS
    p = j["partitions"][0]
    assert p["last_result"] == "never" and p["watermark_ms"] == 0 and p["marks"] == []
    assert sorted(x["node"] for x in p["peers"]) == ["node-2", "node-3"]

    # A mark is kept in the data dir: a restart shows it again.
    r = n1.kvctl("repair", "7")
    assert r.rc == 0 and "1 partition marked" in r.out.decode(), r
    n1.restart()
    alive_everywhere([n1, n2, n3])
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
              "keys_repaired", "bytes", "marked_partitions"):
        assert isinstance(ae[k], int), (k, ae)
    assert ae["marked_partitions"] == 1 and ae["rounds"] == 0, ae
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


def stats_of(node):
    r = node.kvctl("--json", "stats", timeout=10)
    assert r.rc == 0, r
    return last_json(r.out)


def missing_on(node, keys, want):
    """Keys whose replica on node (one RGET each, no read repair) does not
    hold the value wanted."""
    out = []
    with RawKV(node) as kv:
        for k in keys:
            st, f = kv.call("RGET", rk_field("KEY", k))
            if st != "OK" or f.get(RK_TAG["VALUE"]) != want[k]:
                out.append(k)
    return out


def test_wiped_node_is_refilled_by_anti_entropy_alone(cluster):
    cluster.overrides.update(AE_FAST)
    n1, n2, n3 = cluster.start(3)
    alive_everywhere([n1, n2, n3])
    want = {b"wipe-%05d" % i: b"value-%d" % i for i in range(2000)}
    with RawKV(n1) as kv:
        for k, v in want.items():
            assert kv.put(k, v) == "OK", k

    n3.kill()
    shutil.rmtree(n3.data_dir)
    n3.start()
    alive_everywhere([n1, n2, n3])

    # No client reads: only anti-entropy can bring the keys back.
    left = [None]

    def refilled():
        left[0] = missing_on(n3, left[0] if left[0] is not None else list(want), want)
        return not left[0]
    wait_for(refilled, REFILL_S, "anti-entropy to refill node-3")

    assert missing_on(n3, list(want), want) == []
    st = [stats_of(n) for n in (n1, n2, n3)]
    assert sum(s["antientropy"]["keys_repaired"] for s in st) >= len(want), \
        [s["antientropy"] for s in st]
    assert sum(s["replication"]["read_repairs"] for s in st) == 0, [s["replication"] for s in st]
    assert ae_json(n3)["exchanges_running"] is True


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
    alive_everywhere([n1, n2, n3])
    keys = [b"both-%04d" % i for i in range(600)]

    def write_with_down(down, up, items, deletes=()):
        down.kill()  # stopped, not paused: a paused node still takes what waits in its socket
        with RawKV(up) as kv:
            for k, v in items:
                assert kv.put(k, v) == "OK", k
            for k in deletes:
                st, _ = kv.call("DEL", rk_field("KEY", k))
                assert st == "OK", (k, st)
        down.start()
        alive_everywhere([n1, n2, n3])

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

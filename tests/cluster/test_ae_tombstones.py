"""No resurrection (issue 12): what was deleted or expired stays gone when a
replica that missed it comes back.

- A key deleted while node-3 is down (kill -9) stays deleted after node-3
  returns holding the old value, although node-3 is away longer than
  storage.tombstone_grace: node-1 and node-2 keep their tombstone past the
  grace period (merges look at it and hold it: `storage.tombstones_held`)
  until every other replica has completed an anti-entropy exchange since
  the delete; anti-entropy then carries the delete to node-3, and only
  after that does every replica purge it. (Without the watermark the old
  value came back on all three replicas.)
- A key written with a TTL while node-3 is down, expired before node-3
  returns, is never copied to it: a full round with node-3 back moves no
  key, and node-3 holds nothing for it.
- A cluster of one purges past the grace period: nobody to wait for.
- The grace rule: refused by check-config and at start, at its line; a
  reload that would run a longer interval than the running grace is
  refused.

Hinted handoff is off (hints.max_bytes_per_target = "0B"), so only
anti-entropy can bring node-3 what it missed. Every wait polls with a
deadline.
"""

import signal
import time

from harness import (Abort, RawKV, node_ae, node_stats, partition_of, put_filler, wait_for,
                     wait_states)

GRACE_MS = 3000
FAST = {
    "gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s",
    "cluster.partitions": 8,
    "storage.segment_size": "1MiB",             # filler seals segments, so merges run
    "storage.tombstone_grace": f"{GRACE_MS}ms",
    "hints.max_age": "1s",                      # both shorter than the grace:
    "antientropy.interval": "1s",               # the config refuses it otherwise
    "hints.max_bytes_per_target": "0B",         # no hints: only anti-entropy repairs
}
ALL_ALIVE = {"node-1": "alive", "node-2": "alive", "node-3": "alive"}
SLACK_S = 20
AE_S = 60
FILLER = 3 << 20  # > 2 x segment_size: every worker of every node seals a segment


def storage(node):
    return node_stats(node)["storage"]


def start3(cluster):
    cluster.overrides.update(FAST)
    nodes = cluster.start(3)
    wait_states(nodes, ALL_ALIVE, SLACK_S)
    return nodes


def replica(node, key):
    with RawKV(node) as kv:
        return kv.replica(key)


def never(cond, msg):
    """Stop waiting at once (a wait_for predicate's exceptions only mean
    "not yet")."""
    if cond:
        raise Abort(msg)


def kvctl_get_rc(node, key):
    r = node.kvctl("get", key.decode())
    assert r.rc in (0, 1), r
    return r.rc


def test_deleted_key_stays_deleted_after_a_replica_returns_past_the_grace_period(cluster):
    n1, n2, n3 = start3(cluster)
    key, old = b"doomed", b"the old value"
    with RawKV(n1) as kv:
        assert kv.put(key, old) == "OK"
    wait_for(lambda: all((replica(n, key) or ("",))[0] == "value" for n in (n1, n2, n3)), SLACK_S,
             "the key on every replica")

    n3.kill()
    wait_states([n1, n2], {"node-3": "dead"}, SLACK_S)
    with RawKV(n1) as kv:
        assert kv.delete(key) == "OK"
    deleted = [replica(n, key) for n in (n1, n2)]
    assert all(d and d[0] == "tombstone" for d in deleted), deleted
    t_del_ms = deleted[0][1] >> 16
    put_filler(n1, b"filler-a", FILLER)  # the tombstone's segment seals

    # Past the grace period, node-1 and node-2 look at the tombstone and
    # keep it: node-3 has not exchanged since the delete.
    def held(merged_past=None):
        st = [storage(n) for n in (n1, n2)]
        for s in st:
            never(s["tombstones_purged"] or s["tombstones"] != 1, f"the tombstone went: {s}")
        return all(s["tombstones_held"] == 1 for s in st) and \
            (merged_past is None or all(s["merges"] > m for s, m in zip(st, merged_past))) and st
    st = wait_for(held, SLACK_S + GRACE_MS / 1000,
                  "node-1 and node-2 to hold their tombstone past the grace period")
    assert time.time() * 1000 > t_del_ms + GRACE_MS
    # Overwriting the filler makes the tombstone's segment mostly dead:
    # merges rewrite it, past the grace period, and still keep it.
    put_filler(n1, b"filler-a", FILLER)
    wait_for(lambda: held([s["merges"] for s in st]), SLACK_S,
             "merges on node-1 and node-2 that keep the tombstone")
    assert [replica(n, key)[0] for n in (n1, n2)] == ["tombstone", "tombstone"]
    j = node_ae(n1, "--partition", str(partition_of(n1, key)))["partitions"][0]
    assert j["watermark_ms"] < t_del_ms, j  # node-3's last exchange predates the delete

    # node-3 returns with the old value (seen while the others are paused,
    # so nothing can reach it first) ...
    for n in (n1, n2):
        n.pause()
    try:
        n3.start()
        assert replica(n3, key)[0] == "value", "node-3 should come back with the old value"
    finally:
        for n in (n1, n2):
            n.resume()
    wait_states([n1, n2, n3], ALL_ALIVE, SLACK_S)

    # ... and anti-entropy carries the delete to it, never the old value
    # back. No client read meanwhile (read repair would do it instead): one
    # RGET per replica per look.
    def delete_reached_node3():
        seen = {n.name: replica(n, key) for n in (n1, n2, n3)}
        for name in ("node-1", "node-2"):
            never(seen[name] is not None and seen[name][0] != "tombstone",
                  f"the deleted value came back on {name}: {seen}")
        return seen["node-3"] is None or seen["node-3"][0] == "tombstone"
    wait_for(delete_reached_node3, AE_S, "anti-entropy to carry the delete to node-3")
    assert sum(node_stats(n)["replication"]["read_repairs"] for n in (n1, n2, n3)) == 0
    for n in (n1, n2, n3):
        assert kvctl_get_rc(n, key) == 1, n
        rec = replica(n, key)
        assert rec is None or rec[0] == "tombstone", (n, rec)

    # Once every replica has exchanged since the delete, each purges its
    # tombstone (more filler seals the segment of node-3 that took it).
    # A replica that purged may take the tombstone back from one that has
    # not yet (the tombstone is newer than nothing), so "purged at least
    # once everywhere" is what is certain, and never the old value.
    part = partition_of(n1, key)
    put_filler(n1, b"filler-b", FILLER)

    def purged_everywhere():
        seen = {n.name: replica(n, key) for n in (n1, n2, n3)}
        never(any(r is not None and r[0] != "tombstone" for r in seen.values()),
              f"the deleted value came back: {seen}")
        st = {n.name: storage(n) for n in (n1, n2, n3)}
        purged = {k: (s["tombstones_purged"], s["tombstones_held"]) for k, s in st.items()}
        assert all(s["tombstones_purged"] >= 1 for s in st.values()), (seen, purged)
        return purged
    print("purged, held:", wait_for(purged_everywhere, AE_S, "every replica to purge the tombstone"))
    for n in (n1, n2, n3):
        j = node_ae(n, "--partition", str(part))["partitions"][0]
        assert j["watermark_ms"] > t_del_ms, (n, j)  # every replica exchanged since the delete
    # Later rounds change nothing for it: deleted everywhere.
    r0 = [node_ae(n)["round"]["number"] for n in (n1, n2, n3)]
    wait_for(lambda: all(node_ae(n)["round"]["number"] >= r + 2 for n, r in zip((n1, n2, n3), r0)),
             AE_S, "two more anti-entropy rounds on every node")
    for n in (n1, n2, n3):
        rec = replica(n, key)
        assert rec is None or rec[0] == "tombstone", (n, rec)
        assert kvctl_get_rc(n, key) == 1, n


def test_a_cluster_of_one_purges_without_waiting(cluster):
    """No other replica, nothing to wait for: past the grace period the
    tombstone goes (a watermark that never moved must not hold it)."""
    cluster.overrides.update(FAST)
    (n,) = cluster.start(1)
    key = b"alone"
    with RawKV(n) as kv:
        assert kv.put(key, b"v") == "OK" and kv.delete(key) == "OK"
        t_del_ms = kv.replica(key)[1] >> 16
    put_filler(n, b"filler", FILLER)

    def purged():
        s = storage(n)
        never(s["tombstones_held"], f"held with no other replica: {s}")
        return s["tombstones_purged"] == 1 and s["tombstones"] == 0
    wait_for(purged, SLACK_S + GRACE_MS / 1000, "the tombstone to be purged")
    assert time.time() * 1000 >= t_del_ms + GRACE_MS
    assert replica(n, key) is None and kvctl_get_rc(n, key) == 1


def test_an_expired_key_is_never_copied_back(cluster):
    n1, n2, n3 = start3(cluster)
    n3.kill()
    wait_states([n1, n2], {"node-3": "dead"}, SLACK_S)
    key = "short-lived"
    r = n1.kvctl("put", key, "soon gone", "--ttl", "3s")
    assert r.rc == 0, r
    assert [replica(n, key.encode())[0] for n in (n1, n2)] == ["value", "value"]
    wait_for(lambda: kvctl_get_rc(n1, key.encode()) == 1, SLACK_S, "the key to expire")
    part = partition_of(n1, key)
    before = {n.name: node_ae(n)["totals"] for n in (n1, n2)}

    t_back_ms = int(time.time() * 1000)
    n3.start()
    wait_states([n1, n2, n3], ALL_ALIVE, SLACK_S)

    # Every replica of its partition completes an exchange with every
    # other after node-3 is back ...
    def exchanged():
        for n in (n1, n2, n3):
            p = node_ae(n, "--partition", str(part))["partitions"][0]
            if not all(q["ok_ms"] > t_back_ms for q in p["peers"]):
                return False
        return True
    wait_for(exchanged, AE_S, f"exchanges of partition {part} with node-3 back")
    # ... and then a whole round starts and ends on every node.
    t_ex_ms = int(time.time() * 1000)

    def round_done(n):
        rd = node_ae(n)["round"]
        return not rd["in_progress"] and rd["started_ms"] > t_ex_ms and rd
    rounds = {n.name: wait_for(lambda n=n: round_done(n), AE_S, f"a full round on {n.name}")
              for n in (n1, n2, n3)}

    for name, rd in rounds.items():
        assert rd["keys_pulled"] == 0 and rd["keys_pushed"] == 0, (name, rd)
    for n in (n1, n2):
        t = node_ae(n)["totals"]
        assert (t["keys_pulled"], t["keys_pushed"]) == \
            (before[n.name]["keys_pulled"], before[n.name]["keys_pushed"]), (n, before[n.name], t)
    for n in (n1, n2, n3):
        p = node_ae(n, "--partition", str(part))["partitions"][0]
        assert p["keys_repaired"] == 0, (n, p)
        assert all(q["result"] == "ok" and q["keys_repaired"] == 0 for q in p["peers"]), (n, p)
    assert replica(n3, key.encode()) is None
    assert storage(n3)["keys"] == 0, "node-3 took a record it should not have"
    assert kvctl_get_rc(n3, key.encode()) == 1


def test_grace_rule_at_check_config_start_and_reload(cluster):
    """A grace not longer than hints.max_age or antientropy.interval is
    refused by check-config and at start (exit 2, FILE:LINE:COL and why);
    the grace changes only at restart, so a reload whose live interval
    would reach the running grace is refused whole."""
    n = cluster.add_node({"storage.tombstone_grace": "2h"})
    path = n.write_config()
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1)
                if l.startswith("tombstone_grace"))
    for argv in (["check-config", str(path)], ["run", "-c", str(path)]):
        r = cluster.run_ringkvd(*argv)
        assert r.rc == 2, r
        last = r.err.strip().splitlines()[-1]
        assert f"{path}:{line}:" in last and "storage.tombstone_grace = 2h must be longer than " \
            "hints.max_age = 3h (a hint of an older write" in last, last

    n.set_config({"storage.tombstone_grace": "10s", "hints.max_age": "1s",
                  "antientropy.interval": "2s"})
    n.start()
    # Valid as a file (30s > 20s), but the node would run 10s with 20s.
    n.set_config({"storage.tombstone_grace": "30s", "antientropy.interval": "20s"})
    mark = n.log_mark()
    n.signal(signal.SIGHUP)
    line = n.wait_log("reload failed", since=mark)
    assert "storage.tombstone_grace = 10s must be longer than antientropy.interval = 20s" in line, \
        line
    assert node_ae(n)["interval_ms"] == 2000
    # A restart takes both.
    n.restart()
    assert node_ae(n)["interval_ms"] == 20000

"""The cluster secret (security.secret_file, src/util/auth.h): peers, gossip
and cluster-changing admin requests must prove it; a node without it, with
another one, or replaying what it captured gets nowhere, and is counted and
logged; the cluster keeps serving throughout."""
import struct
import time

import pytest

from harness import (RK_TAG, RawKV, auth_key, last_json, rk_field, rk_message, rk_sign,
                     wait_all_alive, wait_for, write_secret)

GOSSIP = {"gossip.interval": "100ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}


@pytest.fixture
def secret(tmp_path):
    return write_secret(tmp_path / "cluster.secret")


def security(node):
    return last_json(node.kvctl("--json", "status").out)["security"]


def refused(node, channel, reason):
    """Messages node refused on channel for reason (STATUS lists those seen)."""
    return security(node)["refused"].get(channel, {}).get(reason, 0)


def member_ids(node):
    r = node.kvctl("--json", "members")
    assert r.rc == 0, r
    return sorted(m["id"] for m in last_json(r.out)["members"])


def kvctl_env(cluster, node, env, *args):
    return cluster.run([cluster.kvctl_bin, "-a", node.client_addr, *args], env=env)


def rput(key, value, version):
    return rk_message("RPUT", rk_field("KEY", key) + rk_field("VALUE", value) +
                      rk_field("VERSION", struct.pack("<Q", version)))


def secured(cluster, secret, n=3):
    cluster.overrides.update({**GOSSIP, "security.secret_file": str(secret[0])})
    nodes = cluster.start(n)
    wait_all_alive(nodes, 20)
    return nodes


# ---- start-up checks ---------------------------------------------------------

@pytest.mark.parametrize("case", ["missing", "short", "open_mode", "client_auth_alone"])
def test_a_bad_secret_setting_is_refused_at_start_in_one_line(cluster, tmp_path, case):
    path = tmp_path / "s"
    if case == "short":
        write_secret(path, b"x" * 16)
    elif case == "open_mode":
        write_secret(path, mode=0o644)
    over = {"security.secret_file": str(path)}
    want = {"missing": f"security.secret_file {path}: No such file or directory",
            "short": "holds 16 bytes, fewer than 32",
            "open_mode": "readable or writable by others (mode 0644); chmod 600 it",
            "client_auth_alone": "security.client_auth = true needs security.secret_file"}[case]
    if case == "client_auth_alone":
        over = {"security.client_auth": True}
    n = cluster.add_node(over)
    cfg = n.write_config()
    r = cluster.run_ringkvd("check-config", str(cfg))
    assert r.rc == 2 and want in r.err and r.err.count("\n") == 1, r
    r = cluster.run_ringkvd("run", "-c", str(cfg))
    errs = [line for line in r.err.splitlines() if "error" in line]
    assert r.rc == 2 and len(errs) == 1 and want in errs[0], r


# ---- members only ------------------------------------------------------------

def test_nodes_without_the_secret_cannot_join_write_or_read(cluster, secret, tmp_path):
    nodes = secured(cluster, secret)
    assert security(nodes[0])["secret"] is True
    assert nodes[0].kvctl("put", "before", "v1").rc == 0
    other = write_secret(tmp_path / "other.secret")
    none = cluster.add_node({"security.secret_file": ""}, name="no-secret")
    wrong = cluster.add_node({"security.secret_file": str(other[0])}, name="wrong-secret")
    for n in (none, wrong):
        n.start(wait=False)

    # Each keeps knocking; the members count and log it, and merge nothing.
    def refusals():
        return (refused(nodes[0], "gossip", "missing") >= 5 and
                refused(nodes[0], "gossip", "bad_mac") >= 5)
    wait_for(refusals, 30, "the members to refuse both outsiders' gossip")
    for n in nodes:
        assert member_ids(n) == ["node-1", "node-2", "node-3"], n
    assert member_ids(none) == ["no-secret"] and member_ids(wrong) == ["wrong-secret"]
    logs = "".join(n.log() for n in nodes)
    assert "refused a gossip message from 127.0.0.1" in logs and "not signed" in logs, logs[-3000:]
    assert "bad signature (another cluster secret" in logs

    # Peer requests without a valid signature: refused, nothing stored.
    with RawKV(nodes[0], port="peer") as kv:
        st, f = kv.call("RPUT", rput(b"forged", b"evil", 1 << 60)[16:])
        assert st == "REFUSED" and b"not signed" in f[RK_TAG["TEXT"]], (st, f)
        st, f = kv.send(rk_sign(rput(b"forged", b"evil", 1 << 60), auth_key(other[1])))
        assert st == "REFUSED" and b"bad signature" in f[RK_TAG["TEXT"]], (st, f)
        st, f = kv.call("RGET", rk_field("KEY", b"before"))
        assert st == "REFUSED", (st, f)
        st, f = kv.call("RBATCH", rk_field("VALUE", struct.pack("<I", 1) + rput(b"forged", b"e", 1)))
        assert st == "REFUSED", (st, f)
    assert refused(nodes[0], "peer", "missing") >= 3
    r = nodes[1].kvctl("get", "forged", "-r", "3")
    assert r.rc == 1, r  # not found on any replica
    # The members serve all along, at full quorum.
    assert nodes[2].kvctl("put", "after", "v2", "-w", "3").rc == 0
    assert nodes[1].kvctl("get", "before", "-r", "3").out == b"v1"


def test_a_replayed_stale_or_changed_peer_message_is_refused(cluster, secret):
    nodes = secured(cluster, secret)
    key = auth_key(secret[1])
    msg = rk_sign(rput(b"k", b"signed", 1), key)
    with RawKV(nodes[0], port="peer") as kv:
        assert kv.send(msg)[0] == "OK"  # a member's message, once
        st, f = kv.send(msg)
        assert st == "REFUSED" and b"received before (replayed)" in f[RK_TAG["TEXT"]], (st, f)
        flipped = bytearray(rk_sign(rput(b"k", b"signed", 2), key))
        flipped[27] ^= 0x01  # the first byte of the value
        st, f = kv.send(bytes(flipped))
        assert st == "REFUSED" and b"bad signature" in f[RK_TAG["TEXT"]], (st, f)
        old = rk_sign(rput(b"k", b"old", 3), key, ts_ms=int(time.time() * 1000) - 600_000)
        st, f = kv.send(old)
        assert st == "REFUSED" and b"too far from this node's clock" in f[RK_TAG["TEXT"]], (st, f)
    s = security(nodes[0])["refused"]
    assert s == {"total": 3, "peer": {"bad_mac": 1, "stale": 1, "replay": 1}}, s
    # The refused versions 2 and 3 were never stored.
    with RawKV(nodes[0], port="peer") as kv:
        st, f = kv.call("RGET", rk_field("KEY", b"k"), key=key)
        assert st == "OK" and f[RK_TAG["VALUE"]] == b"signed", (st, f)


# ---- admin -------------------------------------------------------------------

def test_cluster_changes_need_the_secret(cluster, secret):
    nodes = secured(cluster, secret)
    # Without it: exit 2, one line saying why; the node stays.
    for args in (("remove", "node-3", "--force"), ("leave",), ("repair",)):
        r = nodes[0].kvctl(*args)
        assert r.rc == 2 and r.err.count("\n") == 1 and "authentication failed" in r.err, r
    assert nodes[0].is_running()
    assert refused(nodes[0], "admin", "missing") == 3
    # Read-only admin needs none.
    assert nodes[0].kvctl("members").rc == 0
    # With it, from the option or the environment.
    r = nodes[0].kvctl("--secret-file", str(secret[0]), "repair")
    assert r.rc == 0, r
    nodes[2].kill()
    wait_for(lambda: any(m["id"] == "node-3" and m["state"] == "dead" for m in last_json(
        nodes[0].kvctl("--json", "members").out)["members"]), 20, "node-3 dead")
    r = kvctl_env(cluster, nodes[0], {"KVCTL_SECRET_FILE": str(secret[0])}, "remove", "node-3")
    assert r.rc == 0, r
    states = {m["id"]: m["state"] for m in last_json(nodes[0].kvctl("--json", "members").out)["members"]}
    assert states.get("node-3", "left") == "left", states
    # A bad secret file for kvctl: one line, exit 2, nothing sent.
    r = kvctl_env(cluster, nodes[0], {"KVCTL_SECRET_FILE": "/nonexistent/s"}, "members")
    assert r.rc == 2 and r.err.count("\n") == 1 and "$KVCTL_SECRET_FILE /nonexistent/s" in r.err, r


def test_client_auth_requires_the_secret_for_every_request(cluster, secret):
    cluster.overrides.update({"security.client_auth": True})
    cluster.kvctl_env = {"KVCTL_SECRET_FILE": str(secret[0])}  # the harness's own probes
    nodes = secured(cluster, secret, n=1)
    n = nodes[0]
    for args in (("put", "a", "1"), ("get", "a"), ("status",)):
        r = kvctl_env(cluster, n, {"KVCTL_SECRET_FILE": ""}, *args)
        assert r.rc != 0 and r.err.count("\n") == 1 and "authentication failed" in r.err, r
    cluster.kvctl_env = {}
    with_secret = ("--secret-file", str(secret[0]))
    assert n.kvctl(*with_secret, "put", "a", "1").rc == 0
    assert n.kvctl(*with_secret, "get", "a").out == b"1"
    s = last_json(n.kvctl(*with_secret, "--json", "status").out)["security"]
    assert s["client_auth"] is True and s["refused"]["client"]["missing"] >= 3, s
    assert s["refused"]["total"] == s["refused"]["client"]["missing"], s
    # The dashboard signs with the same option.
    r = cluster.run_ringkvd("dashboard", "-a", n.client_addr, "--once", "--json", *with_secret)
    assert r.rc == 0 and [x["id"] for x in last_json(r.out)["nodes"]] == ["node-1"], r
    assert last_json(r.out)["nodes"][0]["answered"], r
    r = cluster.run_ringkvd("dashboard", "-a", n.client_addr, "--once", "--json")
    assert r.rc == 1, r


# ---- a secured cluster at work -------------------------------------------------

def test_a_secured_cluster_replicates_hands_off_and_survives_kill9(cluster, secret):
    """With the secret, the replication core cases: writes at W=3 read at
    R=3 everywhere, a delete, a node killed with kill -9 while writes go on
    (hinted to the others), back with every write; anti-entropy repairs on
    request; and not one message of the members' own is ever refused."""
    nodes = secured(cluster, secret)
    for i in range(20):
        assert nodes[i % 3].kvctl("put", f"k{i}", f"v{i}", "-w", "3").rc == 0
    for n in nodes:
        assert n.kvctl("get", "k7", "-r", "3").out == b"v7"
    assert nodes[1].kvctl("del", "k7", "-w", "3").rc == 0
    assert nodes[2].kvctl("get", "k7", "-r", "3").rc == 1
    down = nodes[2]
    down.kill()
    for i in range(20, 60):
        assert nodes[i % 2].kvctl("put", f"k{i}", f"v{i}", "-w", "2").rc == 0
    down.start(wait=True)
    key = auth_key(secret[1])

    def has_all():
        with RawKV(down, port="peer") as kv:
            return all(kv.call("RGET", rk_field("KEY", f"k{i}".encode()), key=key)[0] == "OK"
                       for i in range(20, 60))
    wait_for(has_all, 60, f"{down.name} to receive the writes it missed (hints)")
    r = down.kvctl("--secret-file", str(secret[0]), "repair", "--wait", "--wait-timeout", "60s",
                   timeout=90)
    assert r.rc == 0, r
    for i in (3, 25, 59):
        assert down.kvctl("get", f"k{i}", "-r", "3").out == f"v{i}".encode()
    for n in nodes:
        s = security(n)["refused"]
        if n is down:
            # Requests queued for it while it was down reach it on restart;
            # older than the window (a slow restart), they are stale.
            s.get("peer", {}).pop("stale", None)
        bad = {ch: v for ch, v in s.items() if ch not in ("total", "admin") and v}
        assert not bad, f"{n.name} refused its members' own messages: {bad}"

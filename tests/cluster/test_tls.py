"""TLS (security.tls_cert, tls_key, tls_ca), black-box: a 3-node cluster
with mutual TLS serves the replication tests' core cases; a node with a
certificate from another CA never joins and cannot write through a peer
port; kvctl needs the CA and says so in one line; files that cannot work
are refused at start and by check-config, one line each.

Certificates are made here with openssl (tlsfiles.py). ringkv verifies by
CA only (src/util/tls.h says why): node-3's certificate carries no IP SAN
and it serves like the others.
"""

import re
import socket
import ssl
import struct

import pytest

import tlsfiles
from harness import (SP_REQ0, SP_SURVEYOR0, last_json, member_states, rss_kib, wait_all_alive,
                     wait_for, wait_states)
from test_limits import RSS_BOUND_MIB, RSS_BOUND_MIB_ASAN, asan_build

BIG = 64 << 20
GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s",
          "cluster.request_timeout": "1s"}
SLACK_S = 20
HANDSHAKE = "TLS handshake failed"


def one_line(err):
    """stderr is one line (LeakSanitizer's list of the suppressions it used,
    printed by ASan builds at exit, is not the program's)."""
    return re.sub(r"-+\nSuppressions used:.*", "", err, flags=re.S).count("\n") == 1


@pytest.fixture
def pki(tmp_path):
    """The cluster's CA, another CA, and certificates of both."""
    class P:
        pass
    p = P()
    p.ca = tlsfiles.CA(tmp_path / "pki", "cluster-ca")
    p.other = tlsfiles.CA(tmp_path / "pki", "other-ca")
    return p


def start_tls(cluster, pki, n, extra=None):
    """n nodes with mutual TLS, each its own certificate from pki.ca (the
    last one's without an IP SAN); kvctl of the cluster passes the CA."""
    cluster.overrides.update({**GOSSIP, **(extra or {})})
    cluster.kvctl_args = tlsfiles.kvctl_args(pki.ca)
    nodes = []
    for i in range(1, n + 1):
        ips = () if i == n else ("127.0.0.1",)
        crt, key = pki.ca.sign(f"node-{i}", ips=ips)
        nodes.append(cluster.add_node(tlsfiles.node_overrides(pki.ca, crt, key)))
    cluster.launch(nodes, SLACK_S)
    wait_all_alive(nodes, SLACK_S)
    return nodes


def replicas_of(node, key):
    """{replica: version} of a traced read at R=3 through node."""
    r = node.kvctl("--json", "-r", "3", "get", key)
    assert r.rc == 0, r
    return {x["node"]: x.get("version") for x in last_json(r.out)["replicas"]}


def test_three_nodes_with_mutual_tls_replicate(cluster, pki):
    nodes = start_tls(cluster, pki, 3)
    for n in nodes:
        assert "TLS on every listener and dialer" in n.run_log(), n.run_log()[-2000:]
    # Every node coordinates a write at W=3, and every node reads it at R=3.
    for i, n in enumerate(nodes):
        r = n.kvctl("-w", "3", "put", f"k{i}", f"v{i}")
        assert r.rc == 0, r
    for n in nodes:
        for i in range(3):
            r = n.kvctl("-r", "3", "get", f"k{i}")
            assert r.rc == 0 and r.out == f"v{i}".encode(), (n, r)
    assert nodes[1].kvctl("-w", "3", "del", "k0").rc == 0
    for n in nodes:
        r = n.kvctl("-r", "3", "get", "k0")
        assert r.rc == 1, (n, r)
    # kill -9 one node: quorum reads and writes go on over TLS.
    victim = nodes[2]
    victim.kill()
    wait_states(nodes[:2], {victim.name: "dead"}, SLACK_S)
    for n in nodes[:2]:
        r = n.kvctl("get", "k1")
        assert r.rc == 0 and r.out == b"v1", (n, r)
    assert nodes[0].kvctl("put", "while-down", "w").rc == 0
    victim.start()
    wait_states(nodes, {victim.name: "alive"}, SLACK_S)
    # Its data comes back over TLS (hints, or the repair a read at R=3 does).
    wait_for(lambda: len(set(replicas_of(nodes[0], "while-down").values())) == 1
             and victim.name in replicas_of(nodes[0], "while-down"), SLACK_S,
             "node-3 holding the write it missed")
    r = victim.kvctl("-r", "3", "get", "while-down")
    assert r.rc == 0 and r.out == b"w", r


def test_a_node_of_another_ca_never_joins_nor_writes(cluster, pki):
    nodes = start_tls(cluster, pki, 3)
    crt, key = pki.other.sign("intruder")
    intruder = cluster.add_node(tlsfiles.node_overrides(pki.other, crt, key))
    # Its own kvctl trusts its own CA: it runs, alone.
    intruder.start(wait=False)
    wait_for(lambda: cluster.run([cluster.kvctl_bin, *tlsfiles.kvctl_args(pki.other), "-a",
                                  intruder.client_addr, "--timeout", "1s", "health"]).rc == 0,
             SLACK_S, "the intruder answering health")
    # It keeps dialling the seeds (every 200 ms at first, then every 2 s)
    # while the members are polled 10 times: they never change, on either
    # side (a refusal leaves nothing to wait for).
    for _ in range(10):
        for n in nodes:
            assert set(member_states(n)) == {"node-1", "node-2", "node-3"}, n
        assert intruder.is_running()
    r = cluster.run([cluster.kvctl_bin, *tlsfiles.kvctl_args(pki.other), "-a",
                     intruder.client_addr, "--json", "members"])
    assert r.rc == 0 and [m["id"] for m in last_json(r.out)["members"]] == [intruder.name], r
    # Writes with its certificate through a member's peer port, and its
    # client port, fail at the handshake.
    for port in ("peer", "client"):
        r = cluster.run([cluster.kvctl_bin, *tlsfiles.kvctl_args(pki.other, crt, key), "-a",
                         nodes[0].addr(port), "--timeout", "1s", "put", "stolen", "x"])
        assert r.rc == 3 and HANDSHAKE in r.err and one_line(r.err), (port, r)
    r = nodes[0].kvctl("get", "stolen")
    assert r.rc == 1, r
    # The peer port wants a client certificate: the cluster's CA alone is
    # not enough there (it is on the client port).
    r = cluster.run([cluster.kvctl_bin, *tlsfiles.kvctl_args(pki.ca), "-a", nodes[0].addr("peer"),
                     "--timeout", "1s", "get", "k"])
    assert r.rc == 3 and HANDSHAKE in r.err and "--tls-cert" in r.err, r
    assert nodes[0].kvctl("get", "k").rc == 1


def test_kvctl_needs_the_ca_and_says_so(cluster, pki, tmp_path):
    nodes = start_tls(cluster, pki, 1, {"cluster.replicas": 1, "cluster.read_quorum": 1,
                                        "cluster.write_quorum": 1, "cluster.expect_nodes": 1})
    n = nodes[0]
    plain = [cluster.kvctl_bin, "-a", n.client_addr, "--timeout", "1s"]
    r = cluster.run(plain + ["put", "a", "1"])
    assert r.rc == 3, r
    assert one_line(r.err) and r.err.startswith(
        f"kvctl: put a: {n.client_addr}: TLS handshake failed (is the node using TLS? pass "
        f"--tls-ca)\n"), r
    # With the CA: it works, from the option or from the environment, also
    # with the address written tls+tcp:// or HOST:PORT.
    host_port = n.client_addr.removeprefix("tcp://")
    assert cluster.run([cluster.kvctl_bin, "--tls-ca", str(pki.ca.crt), "-a", host_port,
                        "put", "a", "1"]).rc == 0
    r = cluster.run([cluster.kvctl_bin, "-a", "tls+" + n.client_addr, "get", "a"],
                    env={"KVCTL_TLS_CA": str(pki.ca.crt)})
    assert r.rc == 0 and r.out == b"1", r
    # tls+tcp:// without a CA, a CA that is missing, and a client
    # certificate without a CA are usage errors, one line each.
    r = cluster.run([cluster.kvctl_bin, "-a", "tls+" + n.client_addr, "get", "a"])
    assert r.rc == 2 and "TLS needs the node's CA" in r.err and one_line(r.err), r
    missing = tmp_path / "no-such-ca.pem"
    r = cluster.run([cluster.kvctl_bin, "--tls-ca", str(missing), "-a", n.client_addr, "get", "a"])
    assert r.rc == 2 and f"{missing}: cannot open" in r.err and one_line(r.err), r
    crt, key = pki.ca.sign("client")
    r = cluster.run([cluster.kvctl_bin, "--tls-cert", str(crt), "--tls-key", str(key), "-a",
                     n.client_addr, "get", "a"])
    assert r.rc == 2 and "need --tls-ca" in r.err and one_line(r.err), r
    # The dashboard takes the same options; without them it reads nothing.
    r = cluster.run_ringkvd("dashboard", "-a", n.client_addr, "--tls-ca", str(pki.ca.crt),
                            "--once", "--json")
    assert r.rc == 0 and last_json(r.out)["nodes"][0]["answered"], r
    r = cluster.run_ringkvd("dashboard", "-a", n.client_addr, "--once", timeout=30)
    assert r.rc == 1 and one_line(r.err) and HANDSHAKE in r.err, r
    r = cluster.run_ringkvd("dashboard", "-a", n.client_addr, "--tls-ca", str(missing), "--once")
    assert r.rc == 2 and f"{missing}: cannot open" in r.err and one_line(r.err), r
    # The CA of another cluster: the node's certificate does not verify.
    r = cluster.run([cluster.kvctl_bin, "--tls-ca", str(pki.other.crt), "-a", n.client_addr,
                     "--timeout", "1s", "get", "a"])
    assert r.rc == 3 and HANDSHAKE in r.err and "not from the --tls-ca CA" in r.err, r


def test_kvctl_with_a_ca_against_a_plain_node_says_so(cluster, pki):
    n = cluster.start(1)[0]
    r = cluster.run([cluster.kvctl_bin, "--tls-ca", str(pki.ca.crt), "-a", n.client_addr,
                     "--timeout", "1s", "get", "a"])
    assert r.rc == 3 and "the node answers without TLS" in r.err and one_line(r.err), r


def test_one_listener_for_clients_and_peers_requires_client_certificates(cluster, pki):
    ca = pki.ca
    crt, key = ca.sign("solo")
    cluster.overrides.update({"cluster.replicas": 1, "cluster.read_quorum": 1,
                              "cluster.write_quorum": 1, "cluster.expect_nodes": 1})
    n = cluster.add_node(tlsfiles.node_overrides(ca, crt, key))
    n.ports["peer"] = n.ports["client"]
    cluster.kvctl_args = tlsfiles.kvctl_args(ca, crt, key)
    n.start()
    assert "clients must present a certificate from the CA" in n.run_log()
    r = cluster.run([cluster.kvctl_bin, *tlsfiles.kvctl_args(ca), "-a", n.client_addr,
                     "--timeout", "1s", "put", "a", "1"])
    assert r.rc == 3 and HANDSHAKE in r.err and "--tls-cert" in r.err, r
    assert n.kvctl("put", "a", "1").rc == 0
    r = cluster.run_ringkvd("check-config", str(n.config_path))
    assert r.rc == 0 and "clients must present a certificate" in r.out.decode(), r


def refusal_cases(pki, tmp_path):
    """[(name, overrides, text of the one line)] of TLS settings a node refuses."""
    ca = pki.ca
    crt, key = ca.sign("good")
    _, other_key = ca.sign("other")
    old_crt, old_key = ca.sign("old", start="20200101000000Z", end="20210101000000Z")
    alien_crt, alien_key = pki.other.sign("alien")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    a_dir = tmp_path / "a-directory.pem"
    a_dir.mkdir()
    missing = tmp_path / "missing.pem"
    ok = tlsfiles.node_overrides(ca, crt, key)
    return [
        ("missing", {**ok, "security.tls_key": str(missing)},
         f"security.tls_key: {missing}: cannot open: No such file or directory"),
        ("unreadable", {**ok, "security.tls_cert": str(a_dir)},
         f"security.tls_cert: {a_dir}: cannot read: Is a directory"),
        ("not PEM", {**ok, "security.tls_ca": str(garbage)},
         f"security.tls_ca: {garbage}: not a PEM certificate"),
        ("mismatched key", {**ok, "security.tls_key": str(other_key)},
         f"security.tls_key: {other_key}: the key does not match the certificate in {crt}"),
        ("expired", {**ok, "security.tls_cert": str(old_crt), "security.tls_key": str(old_key)},
         f"security.tls_cert: {old_crt}: certificate expired on 2021-01-01 00:00:00 UTC"),
        ("other CA", {**ok, "security.tls_cert": str(alien_crt), "security.tls_key": str(alien_key)},
         f"security.tls_cert: {alien_crt}: certificate does not verify against {ca.crt}"),
        ("two of three", {"security.tls_cert": str(crt), "security.tls_key": str(key)},
         "security.tls_ca is not set: TLS needs security.tls_cert, tls_key and tls_ca together"),
        ("tls+tcp without TLS", {"listen.gossip": "tls+tcp://127.0.0.1:1"},
         'listen.gossip = "tls+tcp://127.0.0.1:1" needs TLS'),
    ]


def test_unusable_files_are_refused_at_start_and_by_check_config(cluster, pki, tmp_path):
    for name, overrides, text in refusal_cases(pki, tmp_path):
        n = cluster.add_node(overrides, name=name.replace(" ", "-").replace("+", "-"))
        path = n.write_config()
        r = cluster.run_ringkvd("check-config", str(path))
        assert r.rc == 2 and one_line(r.err) and text in r.err, (name, r)
        assert r.err.startswith(f"{path}:"), (name, r)
        rc = n.start_refused()
        errs = [line for line in n.run_log().splitlines() if "error ringkvd:" in line]
        assert rc == 2 and len(errs) == 1 and text in errs[0], (name, rc, n.run_log())


def test_tls_tcp_written_in_the_config_is_accepted_with_tls(cluster, pki):
    crt, key = pki.ca.sign("solo")
    cluster.overrides.update({"cluster.replicas": 1, "cluster.read_quorum": 1,
                              "cluster.write_quorum": 1, "cluster.expect_nodes": 1})
    n = cluster.add_node(tlsfiles.node_overrides(pki.ca, crt, key))
    cluster.kvctl_args = tlsfiles.kvctl_args(pki.ca)
    n.overrides["listen.client"] = "tls+" + n.client_addr
    n.overrides["cluster.seeds"] = ["tls+" + n.gossip_addr]
    n.start()
    assert n.kvctl("put", "a", "1").rc == 0
    # Members advertise tcp:// whatever the file wrote.
    r = n.kvctl("--json", "members")
    m = last_json(r.out)["members"][0]
    assert all(v.startswith("tcp://") for k, v in m.items() if k.endswith("addr")), m


def send_big_tls(port, ca, crt, key, proto):
    """Over TLS with a member's certificate: the SP handshake for proto,
    then one frame claiming 64 MiB and as much of it as the node takes.
    Returns the bytes sent before the node closed the connection."""
    ctx = ssl.create_default_context(cafile=str(ca.crt))
    ctx.check_hostname = False  # ringkv verifies by CA only
    ctx.load_cert_chain(str(crt), str(key))
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            try:
                s.sendall(b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00")
                assert s.recv(8)[:4] == b"\x00SP\x00"
                s.sendall(struct.pack(">Q", BIG))
                chunk = b"\xab" * (1 << 20)
                while sent < BIG:
                    s.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
                pass
    return sent


def test_64_mib_over_tls_is_refused_on_every_port(cluster, pki):
    """NNG_OPT_RECVMAXSZ holds on the TLS listeners as on the TCP ones."""
    n = start_tls(cluster, pki, 1, {"cluster.replicas": 1, "cluster.read_quorum": 1,
                                    "cluster.write_quorum": 1, "cluster.expect_nodes": 1})[0]
    crt, key = pki.ca.sign("member")
    bound_kib = (RSS_BOUND_MIB_ASAN if asan_build(cluster.ringkvd) else RSS_BOUND_MIB) * 1024
    rss0 = rss_kib(n.pid)
    for port, proto in (("client", SP_REQ0), ("peer", SP_REQ0), ("gossip", SP_SURVEYOR0)):
        sent = send_big_tls(n.ports[port], pki.ca, crt, key, proto)
        print(f"{port}: the node took {sent >> 20} MiB of 64 over TLS before closing")
        assert sent < BIG, f"{port}: the node read all 64 MiB"
        assert rss_kib(n.pid) - rss0 < bound_kib, port
        assert n.kvctl("put", port, "still").rc == 0


def test_client_auth_with_tls_requires_client_certificates_and_lifts_protected_mode(cluster, pki):
    """security.client_auth with TLS and no secret: the client listener wants
    a certificate from the CA too, and as every connection now proves who it
    is, the node is not in protected mode."""
    ca = pki.ca
    crt, key = ca.sign("solo")
    cluster.overrides.update({"cluster.replicas": 1, "cluster.read_quorum": 1,
                              "cluster.write_quorum": 1, "cluster.expect_nodes": 1,
                              "security.client_auth": True})
    n = cluster.add_node(tlsfiles.node_overrides(ca, crt, key))
    cluster.kvctl_args = tlsfiles.kvctl_args(ca, crt, key)
    n.start()
    r = cluster.run([cluster.kvctl_bin, *tlsfiles.kvctl_args(ca), "-a", n.client_addr,
                     "--timeout", "1s", "put", "a", "1"])
    assert r.rc == 3 and HANDSHAKE in r.err and "--tls-cert" in r.err, r
    assert n.kvctl("put", "a", "1").rc == 0
    s = last_json(n.kvctl("--json", "status").out)["security"]
    assert (s["tls"], s["client_auth"], s["secret"], s["protected"]) == (True, True, False, False), s

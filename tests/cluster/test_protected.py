"""Protected mode and unauthenticated exposure, on real processes.

A node without a cluster secret listens where it is told (here on every
address, tcp://0.0.0.0) but accepts connections from its own host only:
one from another address of the host (not loopback: the kernel gives it
that source address) is closed as it is accepted, counted per listener in
STATS and /metrics, and logged at most once a minute with what to change.
With security.allow_unauthenticated = true the same connection is served,
and the node says it is exposed: a warning at start, in `kvctl status` and
in /health's body.

The host's non-loopback address is its first global IPv4 address; on a
machine without one, the test adds 10.255.254.1/32 to lo for its duration
(root), and removes it."""

import json
import subprocess

import pytest

from harness import SPConn, RawKV, free_port, http_get, node_stats, rk_field, rk_message, wait_for

SLACK_S = 20
SPARE = "10.255.254.1"


@pytest.fixture(scope="module")
def host_ip():
    r = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    addrs = [line.split()[3].split("/")[0] for line in r.stdout.splitlines()]
    if addrs:
        yield addrs[0]
        return
    r = subprocess.run(["ip", "addr", "add", f"{SPARE}/32", "dev", "lo"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, f"no global address and none could be added: {r.stderr}"
    try:
        yield SPARE
    finally:
        subprocess.run(["ip", "addr", "del", f"{SPARE}/32", "dev", "lo"], timeout=10)


def open_node(cluster, overrides=None):
    """A node whose client address listens on every address of the host."""
    http = free_port()
    node = cluster.add_node({"listen.http": f"127.0.0.1:{http}", **(overrides or {})})
    node.overrides["listen.client"] = f"tcp://0.0.0.0:{node.ports['client']}"
    node.http_port = http
    node.start()
    return node


def served_from(ip, port):
    """Does a GET over a connection from ip to ip:port get an answer?"""
    try:
        with SPConn(port, 5, source=ip, host=ip) as c:
            c.handshake()
            c.request(rk_message("GET", rk_field("KEY", b"k")))
            c.recv_reply()
            return True
    except (OSError, ConnectionError, AssertionError):
        return False


def status(node):
    r = node.kvctl("--json", "status")
    assert r.rc == 0, r
    return json.loads(r.out)


def health(node):
    status, _, body = http_get(node.http_port, "/health")
    return status, body


def test_without_a_secret_other_hosts_are_refused(cluster, host_ip):
    node = open_node(cluster)
    node.wait_log("protected mode: no cluster secret", what="the protected-mode line at start")
    port = node.ports["client"]
    with RawKV(node) as kv:  # this host: served
        assert kv.put(b"k", b"v") == "OK"
    assert not served_from(host_ip, port)
    assert not served_from(host_ip, port)
    line = node.wait_log(f"refused a connection from {host_ip} on the client address",
                         what="the refusal logged")
    assert "security.allow_unauthenticated = true" in line, line
    conns = node_stats(node)["connections"]["client"]
    assert conns["refused_remote"] == 2, conns
    # Logged once a minute at most: two refusals, one line.
    assert sum("refused a connection from" in l for l in node.log_lines()) == 1
    s = status(node)["security"]
    assert (s["secret"], s["client_auth"], s["protected"], "warning" in s) == (False, False, True,
                                                                              False), s
    assert health(node) == (200, "ok\n")
    with RawKV(node) as kv:  # and this host still is
        assert kv.call("GET", rk_field("KEY", b"k"))[0] == "OK"


def test_allow_unauthenticated_serves_other_hosts_and_says_so(cluster, host_ip):
    node = open_node(cluster, {"security.allow_unauthenticated": True})
    port = node.ports["client"]
    line = node.wait_log("unauthenticated:", what="the exposure warning at start")
    assert f"listen.client listens on tcp://0.0.0.0:{port} without a cluster secret" in line, line
    assert " warn " in line or line.startswith("warn") or "warn server" in line, line
    assert wait_for(lambda: served_from(host_ip, port), SLACK_S, "a connection from another address")
    s = status(node)["security"]
    assert s["protected"] is False and s["warning"].startswith("unauthenticated: listen.client"), s
    code, body = health(node)
    assert code == 200 and body.startswith("ok; warning: unauthenticated: listen.client"), body
    assert body.count("\n") == 1, body

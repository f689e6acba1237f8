"""Regressions for attacks from the same network, each with the exact
trigger that once worked, over real sockets: a client's bytes taken for an
internal message, forged log lines, a forged incarnation that evicts a node
for good, and the errors a client sees when a node does not answer."""

import re
import socket
import struct
import time

import pytest

from harness import (SP_REQ0, SPConn, last_json, rk_decode_header, rk_field, rk_message, wait_for)

SP_SURVEYOR0 = 0x62  # NNI_PROTO(6, 2)
SP_RESPONDENT0 = 0x63


def sp_request_with_extra_words(conn, body, words):
    """A req0 request whose backtrace carries `words` extra hops before the
    request id: nng moves them into the raw message header, which becomes
    4 * (2 + words) bytes long on the server (pipe id, hops, request id)."""
    hops = b"".join(struct.pack(">I", 0x00000001 + i) for i in range(words))
    rid = 0x80000000 | 0x1234
    conn.send_frame(hops + struct.pack(">I", rid) + body)
    return hops, rid


def recv_raw(conn):
    (n,) = struct.unpack(">Q", conn.recv_exact(8))
    return conn.recv_exact(n)


# ---- 1: a client message is never taken for an internal one ----------------

CONNECTIONS = 160  # pipe ids are random per connection: every pattern is hit


@pytest.mark.parametrize("port", ["client", "peer"])
@pytest.mark.parametrize("op", ["ECHO", "RGET", "RPUT"])
def test_extra_backtrace_words_are_not_taken_for_a_batch_part(cluster, port, op):
    """Two extra backtrace words make a 16-byte raw header, the size of an
    internal batch part's; the node took the client's bytes for a pointer
    and crashed. Every connection is answered, with its hops echoed."""
    (node,) = cluster.start(1)
    fields = rk_field("KEY", b"k")
    if op == "RPUT":
        fields += rk_field("VALUE", b"v") + rk_field("VERSION", struct.pack("<Q", 1 << 20))
    body = rk_message(op, fields, msg_id=7)
    for i in range(CONNECTIONS):
        with SPConn(node.ports[port]) as c:
            assert c.handshake(SP_REQ0) == 0x31
            hops, rid = sp_request_with_extra_words(c, body, 2)
            payload = recv_raw(c)
            assert payload[:len(hops)] == hops, f"connection {i}: hops not echoed"
            assert struct.unpack(">I", payload[len(hops):len(hops) + 4])[0] == rid
            h = rk_decode_header(payload[len(hops) + 4:])
            assert h["id"] == 7 and h["opcode"] == body[3], h
        assert node.is_running(), f"ringkvd died after {i + 1} connections:\n{node.log()}"
    r = node.kvctl("put", "after", "still-here")
    assert r.rc == 0, r
    assert node.kvctl("get", "after").out == b"still-here"
    assert not cluster.sanitizer_reports()


def test_extra_backtrace_words_on_the_gossip_port_are_harmless(cluster):
    """The same hops in a survey sent to the gossip respondent: dropped or
    answered, never a crash."""
    (node,) = cluster.start(1)
    for i in range(CONNECTIONS // 4):
        with SPConn(node.ports["gossip"]) as c:
            assert c.handshake(SP_SURVEYOR0) == SP_RESPONDENT0
            sp_request_with_extra_words(c, b"\x00" * 40, 2)
    assert node.kvctl("health").rc == 0
    assert node.is_running()


# ---- gossip wire, as an attacker on the network speaks it ------------------

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
STATE = {"alive": 0, "suspect": 1, "dead": 2, "leaving": 3, "left": 4}
ENTRY_FIXED = struct.Struct("<QQQQB")  # incarnation, heartbeat, settings, config digest, state


def gossip_envelope(kind, partitions, replicas, name, digest=0):
    n = name.encode()
    return struct.pack("<HBBIIB", 0x4752, 1, kind, partitions, replicas, len(n)) + n + \
        struct.pack("<Q", digest)


def gossip_entry(e):
    out = b""
    for k in ("id", "client", "peer", "gossip"):
        s = e[k] if isinstance(e[k], bytes) else e[k].encode()
        out += bytes([len(s)]) + s
    return out + ENTRY_FIXED.pack(e["incarnation"], e["heartbeat"], e["settings"],
                                  e["config"], e["state"])


def gossip_table(entries):
    return struct.pack("<BBH", 1, 0, len(entries)) + b"".join(gossip_entry(e) for e in entries)


def parse_table(buf):
    """Entries of a members wire table (after the envelope)."""
    _, _, n = struct.unpack_from("<BBH", buf)
    off, out = 4, []
    for _ in range(n):
        e = {}
        for k in ("id", "client", "peer", "gossip"):
            ln = buf[off]
            e[k] = buf[off + 1:off + 1 + ln].decode()
            off += 1 + ln
        (e["incarnation"], e["heartbeat"], e["settings"], e["config"],
         e["state"]) = ENTRY_FIXED.unpack_from(buf, off)
        off += ENTRY_FIXED.size
        out.append(e)
    return out


class Surveyor:
    """A hand-rolled surveyor0 connection to a node's gossip respondent."""

    def __init__(self, node, partitions=256, replicas=3, name="default"):
        self.conn = SPConn(node.ports["gossip"])
        assert self.conn.handshake(SP_SURVEYOR0) == SP_RESPONDENT0
        self.env = (partitions, replicas, name)
        self.survey_id = 0x80000001

    def close(self):
        self.conn.close()

    def learn(self):
        """The responder's table by id. An empty survey is dropped; one
        entry with a settings digest of 0 is answered with the whole table,
        as it would be for anyone on the network."""
        probe = {"id": "probe", "client": "", "peer": "", "gossip": "", "incarnation": 1,
                 "heartbeat": 0, "settings": 0, "config": 0, "state": 0}
        return {e["id"]: e for e in self.survey([probe])}

    def survey(self, entries, answer=True):
        """Send a survey carrying entries; the responder's table if answer."""
        env = gossip_envelope(0, *self.env)
        self.conn.send_frame(struct.pack(">I", self.survey_id) + env + gossip_table(entries))
        self.survey_id += 1
        if not answer:
            return None
        payload = recv_raw(self.conn)
        body = payload[4:]
        name_len = body[12]
        return parse_table(body[13 + name_len + 8:])


def settings_of(cluster_nodes):
    return {"cluster.replicas": len(cluster_nodes)}


def test_a_forged_left_at_the_highest_incarnation_does_not_evict_a_node(cluster):
    """One survey said node-3 LEFT at incarnation 2^64-1: node-3 could not
    refute a number it cannot exceed and was out of the ring for good. Now
    such news is refused (counted, logged once per source), node-3 stays
    alive everywhere, and news within the bound is refuted."""
    cluster.overrides.update(GOSSIP)
    nodes = cluster.start(3)
    wait_for(lambda: all_alive(nodes), 15, "3 members alive on every node")
    s = Surveyor(nodes[0])
    try:
        table = s.learn()  # the digests, as anyone can learn them
        assert set(table) == {"node-1", "node-2", "node-3"}, table
        forged = dict(table["node-3"], incarnation=2**64 - 1, state=STATE["left"])
        s.survey([table["node-1"], forged])
        # Far but not the maximum: an hour ahead of every clock.
        ahead = dict(table["node-3"], incarnation=int(time.time() * 1000) + 3600_000,
                     state=STATE["left"])
        s.survey([table["node-1"], ahead])
    finally:
        s.close()
    # Many gossip rounds later node-3 is still alive on every node (an
    # adopted LEFT spreads within a round or two).
    deadline = time.monotonic() + 3  # > dead_after: an eviction would show
    while time.monotonic() < deadline:
        assert all_alive(nodes), {n.name: members(n) for n in nodes}
    assert "node-3" in nodes[0].kvctl("ring").out.decode()
    nodes[0].wait_log("refused news of member node-3 from 127.0.0.1:", timeout=10)
    j = members_json(nodes[0])
    assert j["gossip"]["incarnations_refused"] >= 2, j["gossip"]


def test_news_of_a_node_left_within_the_bound_is_refuted(cluster):
    """LEFT at node-3's incarnation + 1 (inside the clock bound) is adopted
    by node-1 and then refuted by node-3, which comes back alive."""
    cluster.overrides.update(GOSSIP)
    nodes = cluster.start(3)
    wait_for(lambda: all_alive(nodes), 15, "3 members alive on every node")
    s = Surveyor(nodes[0])
    try:
        table = s.learn()
        forged = dict(table["node-3"], incarnation=table["node-3"]["incarnation"] + 1,
                      state=STATE["left"])
        s.survey([table["node-1"], forged])
    finally:
        s.close()
    wait_for(lambda: all_alive(nodes) and members(nodes[0])["node-3"]["incarnation"] >
             table["node-3"]["incarnation"] + 1, 15, "node-3 refuted the forged departure")


def test_a_node_id_with_a_newline_cannot_forge_a_log_line(cluster):
    """A gossip entry whose id held a newline wrote a whole 'error ringkvd:
    FORGED' line into the peers' logs. Such an id is malformed on the wire,
    refused in the config, and every logged string is escaped."""
    cluster.overrides.update(GOSSIP)
    nodes = cluster.start(2)
    wait_for(lambda: all_alive(nodes), 15, "2 members alive")
    forged_id = b"evil\nerror ringkvd: FORGED by a peer\x1b[2J"
    s = Surveyor(nodes[0], replicas=2)
    try:
        table = s.learn()
        evil = dict(table["node-2"], id=forged_id, incarnation=table["node-2"]["incarnation"])
        s.survey([evil], answer=False)
        s.survey([table["node-1"], evil], answer=False)
    finally:
        s.close()
    wait_for(lambda: "dropped a gossip message" in nodes[0].log() or "FORGED" in nodes[0].log(),
             10, "node-1 to take the forged surveys")
    for n in nodes:
        text = n.log()
        assert "FORGED" not in "".join(l for l in text.splitlines() if l.startswith("error ringkvd:"))
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), "control character in the log"
    assert set(members(nodes[0])) == {"node-1", "node-2"}
    # The config refuses such an id with one line naming the byte.
    bad = cluster.add_node(name="node-x")
    bad.set_config({"node.id": "evil\nerror ringkvd: FORGED"})
    r = cluster.run_ringkvd("check-config", str(bad.config_path))
    assert r.rc == 2, r
    assert "node.id has byte 0x0a at offset 4" in r.err and len(r.err.strip().splitlines()) == 1, r


def members_json(node):
    r = node.kvctl("--json", "members")
    assert r.rc == 0, r
    return last_json(r.out)


def members(node):
    r = node.kvctl("--timeout", "2s", "--json", "members", timeout=10)
    if r.rc != 0:
        return None
    return {m["id"]: m for m in last_json(r.out)["members"]}


def all_alive(nodes):
    for n in nodes:
        t = members(n)
        if t is None or len(t) != len(nodes) or any(m["state"] != "alive" for m in t.values()):
            return False
    return True


@pytest.mark.parametrize("port", ["client", "peer"])
def test_a_hint_target_with_a_newline_is_refused_and_never_logged_raw(cluster, port):
    """The node id a hinted write names comes from the wire too: outside
    the id character set it is MALFORMED, and nothing raw reaches the log."""
    (node,) = cluster.start(1)
    fields = (rk_field("KEY", b"k") + rk_field("VALUE", b"v") +
              rk_field("VERSION", struct.pack("<Q", 1 << 20)) +
              struct.pack("<BI", 12, 27) + b"evil\nerror ringkvd: FORGED")  # HINT
    with SPConn(node.ports[port]) as c:
        assert c.handshake(SP_REQ0) == 0x31
        c.request(rk_message("RPUT", fields, msg_id=5))
        _, body = c.recv_reply()
    h = rk_decode_header(body)
    assert h["status_name"] == "MALFORMED", h
    assert node.kvctl("health").rc == 0
    assert "FORGED" not in "".join(l for l in node.log().splitlines()
                                   if l.startswith("error ringkvd:"))
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", node.log())


# ---- 6: what a client is told when a node does not answer -------------------

@pytest.mark.parametrize("port", ["client", "peer", "gossip"])
def test_a_paused_node_is_silent_not_unconnected(cluster, port):
    """A client of a node paused with SIGSTOP was told 'not connected (is
    ringkvd running there?)' although TCP connected: now it hears that the
    node accepted the connection and did not answer. 'not connected' stays
    for a refused connection; the gossip port is named as the wrong port."""
    (node,) = cluster.start(1)
    addr = node.addr(port)
    if port == "gossip":
        r = node.kvctl("--timeout", "500ms", "get", "k", addr=addr)
        assert r.rc == 3 and "is not a ringkv client port" in r.err, r
    node.pause()
    try:
        r = node.kvctl("--timeout", "500ms", "get", "k", addr=addr)
    finally:
        node.resume()
    assert r.rc == 3, r
    assert "accepted the connection but did not answer" in r.err, r
    assert "not connected" not in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r
    node.stop()
    r = node.kvctl("--timeout", "500ms", "get", "k", addr=addr)
    assert r.rc == 3 and "not connected (is ringkvd running there?)" in r.err, r

"""Regressions for attacks from the same network, each with the exact
trigger that once worked, over real sockets: a client's bytes taken for an
internal message, forged log lines, a forged incarnation that evicts a node
for good, and the errors a client sees when a node does not answer."""

import re
import socket
import struct
import time

import pytest

from harness import (RK_HDR, RK_OP, log_body, SP_REQ0, SP_RESPONDENT0, SP_SURVEYOR0, SPConn,
                     g_decode, g_entry, g_message, last_json, rk_decode_header, rk_field,
                     rk_message, wait_for)

def backtrace(shape, body):
    """A req0 payload whose backtrace nng reads into a 16-byte raw header on
    the server, the size of an internal batch part's header. two_hops: two
    extra hop words before the request id. no_top_bit: a request id without
    the top bit, so nng reads on into the body, and the ringkv header's
    second word (flags 0x0080 here) ends the backtrace. Returns (payload,
    the bytes echoed before the reply body)."""
    if shape == "two_hops":
        hops = struct.pack(">III", 0x00000001, 0x00000002, 0x80001234)
        return hops + body, hops
    magic, version, op, _, status, msg_id, blen = RK_HDR.unpack_from(body)
    head = RK_HDR.pack(magic, version, op, 0x0080, status, msg_id, blen)
    return struct.pack(">I", 0x00000001) + head + body[RK_HDR.size:], None


def recv_raw(conn):
    (n,) = struct.unpack(">Q", conn.recv_exact(8))
    return conn.recv_exact(n)


# ---- 1: a client message is never taken for an internal one ----------------

CONNECTIONS = 160  # pipe ids are random per connection: every pattern is hit


@pytest.mark.parametrize("shape", ["two_hops", "no_top_bit"])
@pytest.mark.parametrize("port", ["client", "peer"])
@pytest.mark.parametrize("op", ["ECHO", "RGET", "RPUT"])
def test_a_long_backtrace_is_not_taken_for_a_batch_part(cluster, port, op, shape):
    """A 16-byte raw header was taken for an internal batch part: the node
    read a pointer from the client's bytes and crashed (SIGSEGV in
    rk_batch_part_done). Every connection now gets its answer (two_hops:
    with its hops echoed) and the node serves on; whether a connection hit
    the crash depended on its pipe id, hence many connections."""
    (node,) = cluster.start(1)
    fields = rk_field("KEY", b"k")
    if op == "RPUT":
        fields += rk_field("VALUE", b"v") + rk_field("VERSION", struct.pack("<Q", 1 << 20))
    body = rk_message(op, fields, msg_id=7)
    payload, echoed = backtrace(shape, body)
    for i in range(CONNECTIONS):
        with SPConn(node.ports[port]) as c:
            assert c.handshake(SP_REQ0) == 0x31
            c.send_frame(payload)
            if echoed:
                reply = recv_raw(c)
                assert reply.startswith(echoed), f"connection {i}: backtrace not echoed"
                h = rk_decode_header(reply[len(echoed):])
                assert h["id"] == 7 and h["opcode"] == RK_OP[op], h
            else:  # the node sees a header it cannot read: MALFORMED, or nothing
                rid = c.request(rk_message("ECHO", msg_id=8))
                while True:
                    got, _ = c.recv_reply()
                    if got == rid:
                        break
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
            c.send_frame(backtrace("two_hops", b"\x00" * 40)[0])
    assert node.kvctl("health").rc == 0
    assert node.is_running()


# ---- gossip, as an attacker on the network speaks it ------------------------

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
STATE = {"alive": 0, "suspect": 1, "dead": 2, "leaving": 3, "left": 4}


class Surveyor:
    """A hand-rolled surveyor0 connection to a node's gossip respondent;
    entries are g_decode's dicts (harness), sent back through g_entry."""

    def __init__(self, node, partitions=256, replicas=3, name=b"default"):
        self.conn = SPConn(node.ports["gossip"])
        assert self.conn.handshake(SP_SURVEYOR0) == SP_RESPONDENT0
        self.env = {"partitions": partitions, "replicas": replicas, "name": name}
        self.survey_id = 0x80000001

    def close(self):
        self.conn.close()

    def learn(self):
        """The responder's table by id (str). An empty survey is dropped;
        one entry with a settings digest of 0 is answered with the whole
        table, as it would be for anyone on the network."""
        return {e["id"].decode(): e for e in self.survey([g_entry(b"probe", 1, 0, 0)])}

    def survey(self, entries, answer=True):
        """Send a survey carrying entries (bytes); the responder's entries."""
        msg = g_message(self.env, entries)
        self.conn.send_frame(struct.pack(">I", self.survey_id) + msg)
        self.survey_id += 1
        if not answer:
            return None
        decoded = g_decode(recv_raw(self.conn)[4:])
        assert decoded, "the answer is not a gossip message"
        return decoded[1]


def forge(e, **change):
    """g_entry bytes of decoded entry e with some fields changed."""
    f = dict(e, **change)
    return g_entry(f["id"], f["inc"], f["hb"], f["settings"], f["state"], f["client"], f["peer"],
                   f["gossip"], f["config"])


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
        me = forge(table["node-1"])
        s.survey([me, forge(table["node-3"], inc=2**64 - 1, state=STATE["left"])])
        # Far but not the maximum: an hour ahead of every clock.
        s.survey([me, forge(table["node-3"], inc=int(time.time() * 1000) + 3600_000,
                            state=STATE["left"])])
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
        s.survey([forge(table["node-1"]),
                  forge(table["node-3"], inc=table["node-3"]["inc"] + 1, state=STATE["left"])])
    finally:
        s.close()
    wait_for(lambda: all_alive(nodes) and members(nodes[0])["node-3"]["incarnation"] >
             table["node-3"]["inc"] + 1, 15, "node-3 refuted the forged departure")


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
        evil = forge(table["node-2"], id=forged_id)
        s.survey([evil], answer=False)
        s.survey([forge(table["node-1"]), evil], answer=False)
    finally:
        s.close()
    wait_for(lambda: "dropped a gossip message" in nodes[0].log() or "FORGED" in nodes[0].log(),
             10, "node-1 to take the forged surveys")
    for n in nodes:
        text = n.log()
        assert "FORGED" not in "".join(l for l in text.splitlines() if log_body(l).startswith("error ringkvd:"))
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
                                   if log_body(l).startswith("error ringkvd:"))
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
    assert r.rc == 3 and "refused the connection (is ringkvd running there?)" in r.err, r  # at once

"""Regressions for attacks from the same network, each with the exact
trigger that once worked, over real sockets: a client's bytes taken for an
internal message, forged log lines, a forged incarnation that evicts a node
for good, and the errors a client sees when a node does not answer."""

import re
import socket
import struct
import time

import pytest

from harness import (SP_REQ0, SPConn, rk_decode_header, rk_field, rk_message, wait_for)

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

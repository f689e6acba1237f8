"""Hostile input against all three ports of a 3-node cluster, with a fixed,
printed seed: mutated valid messages of every opcode, RBATCH in both
directions (requests sent to a node as a peer would; replies that a lying
peer in the member table sends back to a node's coordinator), random bytes,
SP handshake variants, truncated frames and SP length fields up to 2^64-1.
Afterwards every node must still answer correctly, its descriptor count and
RSS must be back within the bounds stated below, its log must hold no
unescaped control character, and no sanitizer may have reported anything.

    RINGKV_SEED=N        another seed (default DEFAULT_SEED; printed either way)
    RINGKV_HOSTILE_SCALE=F   multiply the number of inputs (default 1, 0.3 for
                         an ASan build)
    RINGKV_HOSTILE_SKIP=hops leave out one family of inputs (hops: req0
                         backtraces with hop words, which once crashed a node), to look
                         for bugs behind a known crash; never in CI

The seed fixes every input the generators make; which of them a node has
read when another arrives depends on timing, so a failure names the inputs
that reached the node last (written to <tmp>/hostile-<target>.txt).

How the lying peer gets into the member table: it surveys each node's gossip
port (surveyor0) with an entry of its own (the cluster's settings digest,
copied from a node's answer, an empty gossip address so that nobody dials
it, a peer address where this test listens as rep0), raising its heartbeat
every round; a survey from a member counts as hearing from it, so it stays
alive, enters the ring, and the coordinators send it RBATCH requests. At the
end it announces LEFT at a higher incarnation, as `kvctl leave` would.
"""

import collections
import json
import os
import random
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from harness import (g_decode, g_entry, g_message, RK_HDR, RK_MAGIC, RK_OP, RK_TAG, RawKV, SPConn, last_json, rk_field,
                     rk_fields, rk_frames, rk_message, wait_for, free_port, fd_count, rss_kib)

DEFAULT_SEED = 20250610
SEED = int(os.environ.get("RINGKV_SEED", str(DEFAULT_SEED)), 0)
SKIP = set(filter(None, os.environ.get("RINGKV_HOSTILE_SKIP", "").split(",")))

SP_REQ0, SP_REP0, SP_SURVEYOR0, SP_RESPONDENT0 = 0x30, 0x31, 0x62, 0x63
SP_HDR = b"\x00SP\x00"

# Bounds checked after the storm, against what each node had before it
# (after a warm-up that opened its peer connections):
FD_SLACK = 24          # descriptors: peer dialers, hint and storage files may add a few
RSS_SLACK_MIB = 64     # release build: allocator arenas, caches, hint stores
RSS_SLACK_MIB_ASAN = 512  # ASan keeps freed memory in quarantine
SETTLE_S = 30          # how long the node may take to come back within them

# Inputs per port (scaled by RINGKV_HOSTILE_SCALE / ASan): mutated valid
# messages on a connection that is read, and connection-level inputs
# (handshakes, lengths, truncation, random bytes), each on its own connection.
N_STREAM = 1600
N_RAW = 400
N_LIAR_OPS = 1000       # client requests that make coordinators ask the liar
CHUNK = 16              # mutated messages before a sentinel ECHO must come back
# Gossip: nng's respondent queues few answers per pipe and drops the rest
# (NNG-NOTES: 8 queued surveys per pipe), so fewer surveys before the
# sentinel, or its answer is the one dropped.
GOSSIP_CHUNK = 4

STATE = {"alive": 0, "suspect": 1, "dead": 2, "leaving": 3, "left": 4}
FAKE_ID = b"hostile-peer"

INTERESTING32 = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                 0xFFFFFFFE, 0xFFFFFFFF, 16, 4096, 4097]
INTERESTING64 = [0, 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1]


def is_asan(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def scale(binary):
    env = os.environ.get("RINGKV_HOSTILE_SCALE")
    if env:
        return float(env)
    return 0.5 if is_asan(binary) else 1.0


# ---- process measurements --------------------------------------------------

def fd_kinds(pid):
    """{"socket": n, "file": n, ...} of a process's descriptors, with TCP
    sockets split by state (ESTABLISHED, CLOSE_WAIT, ...)."""
    states = {}
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                for line in fh.readlines()[1:]:
                    parts = line.split()
                    states[parts[9]] = {"01": "ESTABLISHED", "08": "CLOSE_WAIT", "0A": "LISTEN",
                                        "06": "TIME_WAIT", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
                                        "02": "SYN_SENT", "07": "CLOSE", "09": "LAST_ACK"}.get(parts[3], parts[3])
        except OSError:
            pass
    kinds = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith("socket:["):
            kinds["tcp " + states.get(t[8:-1], "other socket")] += 1
        else:
            kinds[t.split(":")[0] if ":" in t else "file"] += 1
    return dict(kinds)


def control_chars(path):
    """Lines of the log holding a control character other than \\n and \\t."""
    bad = []
    with open(path, "rb") as f:
        for no, line in enumerate(f.read().split(b"\n"), 1):
            if any((c < 0x20 and c != 0x09) or c == 0x7F for c in line):
                bad.append(f"{path.name}:{no}: {line[:200]!r}")
    return bad


# ---- mutation --------------------------------------------------------------

def mutate(rng, data):
    """One to four byte-level mutations of data (bytes)."""
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
        op = rng.randrange(9)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip a bit
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # an interesting byte
            b[rng.randrange(len(b))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x0A, 0x1B))
        elif op == 2 and len(b) >= 4:  # an interesting u32, LE or BE
            i = rng.randrange(len(b) - 3)
            b[i:i + 4] = struct.pack(rng.choice(("<I", ">I")), rng.choice(INTERESTING32))
        elif op == 3 and len(b) >= 8:  # an interesting u64
            i = rng.randrange(len(b) - 7)
            b[i:i + 8] = struct.pack("<Q", rng.choice(INTERESTING64))
        elif op == 4:  # insert random bytes
            b[pos:pos] = rng.randbytes(rng.choice((1, 1, 4, 16, 300)))
        elif op == 5 and b:  # delete a range
            n = rng.randint(1, max(1, len(b) // 4))
            del b[pos:pos + n]
        elif op == 6:  # truncate
            del b[pos:]
        elif op == 7 and b:  # duplicate a range (a repeated field)
            i = rng.randrange(len(b))
            b[pos:pos] = b[i:i + rng.randint(1, 32)]
        else:  # random bytes at the end
            b += rng.randbytes(rng.randint(1, 64))
    return bytes(b)


def decode_rk(data):
    """(opcode, {tag: bytes}) if data is a well-formed ringkv message (the
    daemon would act on it), else None. Mirrors rk_proto_decode."""
    if len(data) < RK_HDR.size:
        return None
    magic, version, op, _flags, _st, _id, body_len = RK_HDR.unpack_from(data)
    if magic != RK_MAGIC or version != 1 or body_len != len(data) - RK_HDR.size:
        return None
    fields, off, rest = {}, 0, data[RK_HDR.size:]
    while off < len(rest):
        if off + 5 > len(rest):
            return None
        tag, n = struct.unpack_from("<BI", rest, off)
        if off + 5 + n > len(rest) or tag in fields:
            return None
        fields[tag] = rest[off + 5:off + 5 + n]
        off += 5 + n
    return op, fields


# ---- valid messages of every opcode ----------------------------------------

def u64(v):
    return struct.pack("<Q", v)


def valid_messages(rng, now_ms):
    """One valid request of every opcode (the admin ones harmless: REMOVE
    names nobody, JOIN a dead address, no LEAVE), plus an RBATCH carrying
    RPUT and RGET frames. Keys live under fz/ so the checked keys are
    never touched."""
    key = b"fz/" + str(rng.randrange(1000)).encode()
    ver = u64((now_ms << 16) | rng.randrange(65536))
    rput = rk_message("RPUT", rk_field("KEY", key) + rk_field("VALUE", rng.randbytes(rng.randint(0, 64))) +
                      rk_field("VERSION", ver), msg_id=rng.randrange(2**32))
    rput_tomb = rk_message("RPUT", rk_field("KEY", key) + rk_field("VERSION", ver) +
                           struct.pack("<BIB", RK_TAG["TOMBSTONE"], 1, 1))
    rput_hint = rk_message("RPUT", rk_field("KEY", key) + rk_field("VALUE", b"h") + rk_field("VERSION", ver) +
                           struct.pack("<BI", 12, 6) + b"node-2")
    rget = rk_message("RGET", rk_field("KEY", key), msg_id=rng.randrange(2**32))
    frames = b"".join(struct.pack("<I", rng.randrange(2**32)) + m for m in (rput, rget, rput_tomb, rget))
    msgs = {
        "PUT": rk_message("PUT", rk_field("KEY", key) + rk_field("VALUE", b"v" * rng.randint(0, 40)) +
                          rk_field("TTL_MS", u64(60000)) + rk_field("W", b"\x01")),
        "GET": rk_message("GET", rk_field("KEY", key) + rk_field("R", b"\x01") +
                          struct.pack("<BIB", RK_TAG["TRACE"], 1, 1)),
        "DEL": rk_message("DEL", rk_field("KEY", key)),
        "STATUS": rk_message("STATUS"), "STATS": rk_message("STATS"), "HEALTH": rk_message("HEALTH"),
        "READY": rk_message("READY"),
        "ECHO": rk_message("ECHO", rk_field("KEY", key) + rk_field("TEXT", b"echo")),
        "MEMBERS": rk_message(21), "LOCATE": rk_message(25, rk_field("KEY", key)), "RING": rk_message(26),
        "JOIN": rk_message(22, rk_field("KEY", b"tcp://127.0.0.1:1")),
        "REMOVE": rk_message(24, rk_field("KEY", b"nobody") + struct.pack("<BIB", 9, 1, 1)),
        "RPUT": rput, "RPUT_TOMBSTONE": rput_tomb, "RPUT_HINT": rput_hint, "RGET": rget,
        "RBATCH": rk_message("RBATCH", rk_field("VALUE", frames)),
    }
    return msgs


REAL_IDS = {b"node-1", b"node-2", b"node-3"}


def harmless(data):
    """False for a mutant the node would carry out as an operator command
    that changes the cluster (LEAVE, REMOVE of a real node, JOIN of
    anything but the dead base address): the test is about malformed input,
    and those are valid requests."""
    d = decode_rk(data)
    if d is None:
        return True
    op, f = d
    if op == 23:
        return False
    if op == 24 and f.get(RK_TAG["KEY"], b"") in REAL_IDS:
        return False
    if op == 22 and f.get(RK_TAG["KEY"]) != b"tcp://127.0.0.1:1":
        return False
    if op == RK_OP["RBATCH"]:  # frames are RPUT/RGET only, refused otherwise
        return True
    return True


def printable_id(b):
    return all(0x21 <= c < 0x7F for c in b)


# ---- connections -----------------------------------------------------------

class Target:
    """One port of one node, with what was sent to it last (for the report)."""

    def __init__(self, node, port_name, tmp):
        self.node = node
        self.port_name = port_name
        self.port = node.ports[port_name]
        self.label = f"{node.name}/{port_name}"
        self.recent = collections.deque(maxlen=64)
        self.execs = 0
        self.no_answer = 0
        self.report = Path(tmp) / f"hostile-{node.name}-{port_name}.txt"

    def sent(self, kind, data):
        self.execs += 1
        self.recent.append((kind, data))

    def check_alive(self):
        if not self.node.is_running():
            with open(self.report, "w") as f:
                f.write(f"seed {SEED}; {self.node.name} exited with {self.node.proc.returncode}; "
                        f"last inputs to {self.label}, oldest first:\n")
                for kind, data in self.recent:
                    f.write(f"{kind} {data.hex()}\n")
            raise AssertionError(f"{self.node.name} died (rc {self.node.proc.returncode}) during hostile input "
                                 f"to {self.label} (seed {SEED}); last inputs in {self.report}; "
                                 f"last: {self.recent[-1][0] if self.recent else None}")


def connect(port, timeout=5.0):
    """A connection to port; retried for a while, since a node over
    limits.max_connections may close or refuse new ones at once."""
    s = wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=timeout), 15,
                 f"a connection to port {port}")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def sp_handshake(proto):
    return SP_HDR + struct.pack(">H", proto) + b"\x00\x00"


def sp_frame(payload):
    return struct.pack(">Q", len(payload)) + payload


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_until(s, want_id, deadline):
    """Read SP replies until one whose 4-byte backtrace is want_id."""
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        (n,) = struct.unpack(">Q", recv_exact(s, 8))
        if n > 64 << 20:
            raise AssertionError(f"reply of {n} bytes")
        body = recv_exact(s, n)
        if len(body) >= 4 and struct.unpack(">I", body[:4])[0] == want_id:
            return body[4:]


def backtrace(rng, rid):
    """The req0/surveyor0 backtrace: usually one word with the top bit;
    sometimes hop words before it, none with the top bit, or too short."""
    r = rng.random()
    if r < 0.90:
        return struct.pack(">I", rid)
    if r < 0.95 and "hops" not in SKIP:  # hops (2 extra words once crashed the node)
        return b"".join(struct.pack(">I", rng.randrange(2**31)) for _ in range(rng.randint(1, 8))) + \
            struct.pack(">I", rid)
    if r < 0.98:
        return struct.pack(">I", rid & 0x7FFFFFFF)
    return rng.randbytes(rng.randrange(4))


def stream_chunk(tgt, rng, proto, msgs, sentinel):
    """Send msgs (bodies) as requests on one connection, then the sentinel
    request, and wait for the sentinel's reply. A connection the node closes
    is fine (it may drop a pipe that breaks the rules); silence is counted."""
    try:
        s = connect(tgt.port)
    except OSError:
        tgt.check_alive()
        raise
    try:
        s.sendall(sp_handshake(proto))
        out = b""
        for i, m in enumerate(msgs):
            payload = backtrace(rng, 0x80000000 | (i + 1)) + m
            out += sp_frame(payload)
            tgt.sent("sp-payload", payload)
        sid = 0x80000000 | 0x7FFF0000 | rng.randrange(0xFFFF)
        out += sp_frame(struct.pack(">I", sid) + sentinel)
        s.sendall(out)
        recv_exact(s, 8)  # the node's handshake
        read_until(s, sid, time.monotonic() + 5)
    except (ConnectionError, OSError):
        tgt.no_answer += 1
    finally:
        s.close()
    tgt.check_alive()


def raw_input(rng, proto, valid_payload):
    """(kind, bytes) for one connection-level input."""
    good = sp_handshake(proto)
    frame = sp_frame(struct.pack(">I", 0x80000001) + valid_payload)
    k = rng.randrange(6)
    if k == 0:  # handshake variants
        v = rng.randrange(7)
        if v == 0:
            hs = SP_HDR + struct.pack(">H", rng.choice((0, 0x10, 0x11, SP_REQ0, SP_REP0, SP_SURVEYOR0,
                                                        SP_RESPONDENT0, 0x70, 0x71, 0xFFFF,
                                                        rng.randrange(65536)))) + b"\x00\x00"
        elif v == 1:
            hs = good[:6] + rng.randbytes(2)  # reserved bytes set
        elif v == 2:
            hs = good[:rng.randrange(8)]  # cut short
        elif v == 3:
            hs = mutate(rng, good)
        elif v == 4:
            hs = rng.randbytes(8)
        elif v == 5:
            hs = good + good  # sent twice
        else:
            hs = b"HTTP/1.1 GET /\r\n\r\n"
        return "handshake", hs + (frame if rng.random() < 0.5 else b"")
    if k == 1:  # length fields up to 2^64-1
        n = rng.choice(INTERESTING64 + [3, 4, 5, 15, 16, 2_165_760, 2_165_761, 492_636, 80 << 20,
                                        rng.randrange(2**64)])
        return "length", good + struct.pack(">Q", n) + rng.randbytes(rng.choice((0, 1, 4, 20, 100)))
    if k == 2:  # truncated frames
        cut = rng.randrange(len(frame))
        return "truncated", good + (frame if rng.random() < 0.3 else b"") + frame[:cut]
    if k == 3:  # random bytes after a good handshake
        return "random", good + rng.randbytes(rng.choice((1, 8, 64, 1000, 4096)))
    if k == 4:  # random bytes, no handshake
        return "random-nohs", rng.randbytes(rng.choice((1, 8, 64, 1000)))
    # a frame whose length says more (or less) than what follows
    body = struct.pack(">I", 0x80000001) + valid_payload
    n = max(0, len(body) + rng.choice((-5, -1, 1, 5, 1000)))
    return "badlen", good + struct.pack(">Q", n) + body


def raw_send(tgt, kind, data):
    tgt.sent(kind, data)
    try:
        s = connect(tgt.port, timeout=2)
    except OSError:
        tgt.check_alive()
        raise
    try:
        s.sendall(data)
        # Sometimes wait for the node's verdict (close) so that inputs
        # overlap less; sometimes leave at once.
        if data and data[0] == 0 and len(data) >= 8 and os.urandom(1)[0] < 64:
            s.settimeout(0.2)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
    except OSError:
        pass
    finally:
        s.close()


# ---- the lying peer --------------------------------------------------------

class LyingPeer:
    """A member of the cluster that answers RBATCH requests with lies.
    Gossip: surveys every node once per interval with its own entry.
    Peer: a rep0 listener (hand-rolled SP) on self.port."""

    def __init__(self, cluster, nodes, seed):
        self.nodes = nodes
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.port = free_port()
        self.addr = f"tcp://127.0.0.1:{self.port}".encode()
        self.inc = int(time.time() * 1000)
        self.hb = 0
        self.state = STATE["alive"]
        self.env = None
        self.settings = None
        self.replies = 0
        self.requests = 0
        self.honest = False
        self.stop_ev = threading.Event()
        self.threads = []
        self.conns = []
        self.errors = []
        self.recent = collections.deque(maxlen=64)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)

    # gossip
    def learn_settings(self):
        """The cluster's envelope and settings digest, from one answer."""
        n = self.nodes[0]
        s = connect(n.ports["gossip"])
        try:
            s.sendall(sp_handshake(SP_SURVEYOR0))
            recv_exact(s, 8)
            env = {"name": b"?", "partitions": 1, "replicas": 1}
            probe = g_message(env, [g_entry(b"probe", 1, 0, 0)])
            s.sendall(sp_frame(struct.pack(">I", 0x80000007) + probe))
            body = read_until(s, 0x80000007, time.monotonic() + 10)
        finally:
            s.close()
        d = g_decode(body)
        assert d, f"cannot decode a gossip answer: {body!r}"
        env, entries = d
        self.env = env
        self.settings = entries[0]["settings"]

    def entry(self):
        return g_entry(FAKE_ID, self.inc, self.hb, self.settings, self.state, peer=self.addr)

    def survey_all(self):
        self.hb += 1
        msg = g_message(self.env, [self.entry()])
        for n in self.nodes:
            try:
                s = connect(n.ports["gossip"], timeout=2)
                try:
                    s.sendall(sp_handshake(SP_SURVEYOR0) + sp_frame(struct.pack(">I", 0x80000001) + msg))
                    recv_exact(s, 8)
                    read_until(s, 0x80000001, time.monotonic() + 2)
                finally:
                    s.close()
            except (OSError, ConnectionError):
                pass

    def _gossip_loop(self):
        while not self.stop_ev.wait(0.3):
            self.survey_all()

    # peer
    def _accept_loop(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c):
        try:
            c.settimeout(None)
            c.sendall(sp_handshake(SP_REP0))
            recv_exact(c, 8)
            while not self.stop_ev.is_set():
                (n,) = struct.unpack(">Q", recv_exact(c, 8))
                payload = recv_exact(c, n)
                self.requests += 1
                if not self._answer(c, payload):
                    return
        except (OSError, ConnectionError):
            pass
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))
        finally:
            c.close()

    def _honest_frames(self, frames):
        out = []
        for rid, m in frames:
            d = decode_rk(m)
            if d is None:
                continue
            op, f = d
            mid = RK_HDR.unpack_from(m)[5]
            if op == RK_OP["RPUT"]:
                out.append((rid, rk_reply(op, mid, 0, rk_field("VERSION", f.get(RK_TAG["VERSION"], u64(1))))))
            else:
                out.append((rid, rk_reply(op, mid, 1, b"")))
        return out

    def _answer(self, c, payload):
        """Reply to one request; False to drop the connection."""
        hdr, body = payload[:4], payload[4:]
        d = decode_rk(body)
        if d is None:
            return True
        op, f = d
        bid = RK_HDR.unpack_from(body)[5]
        frames = rk_frames(f.get(RK_TAG["VALUE"], b"")) if op == RK_OP["RBATCH"] else []
        honest = self._honest_frames(frames)
        with self.lock:
            rng = random.Random(self.rng.getrandbits(64))
        if self.honest:
            c.sendall(sp_frame(hdr + rk_reply(op, bid, 0, rk_field("VALUE", b"".join(
                struct.pack("<I", rid) + m for rid, m in honest)))))
            return True
        kind, data, keep = self._lie(rng, hdr, op, bid, honest)
        self.replies += 1
        self.recent.append((kind, data))
        if data:
            c.sendall(data)
        return keep

    def _lie(self, rng, hdr, op, bid, honest):
        """(kind, bytes to send, keep the connection)."""
        def batch(frs, status=0, flags=1, h=hdr, bid_=bid, op_=op):
            val = b"".join(struct.pack("<I", rid) + m for rid, m in frs)
            return sp_frame(h + rk_reply(op_, bid_, status, rk_field("VALUE", val), flags))

        k = rng.randrange(16)
        now = int(time.time() * 1000) << 16
        if k == 0:
            return "honest", batch(honest), True
        if k == 1:  # RGET answers with chosen versions and values
            frs = []
            for rid, m in honest:
                op_, mid = m[3], RK_HDR.unpack_from(m)[5]
                v = rng.choice([0, 1, now, now + 1, 2**63, 2**64 - 1, rng.randrange(2**64)])
                fl = rk_field("VALUE", rng.randbytes(rng.randint(0, 100))) + rk_field("VERSION", u64(v))
                if rng.random() < 0.3:
                    fl += rk_field("EXPIRY_MS", u64(rng.choice([0, 1, 2**64 - 1])))
                if rng.random() < 0.3:
                    fl += struct.pack("<BIB", RK_TAG["TOMBSTONE"], 1, rng.choice((0, 1, 255)))
                frs.append((rid, rk_reply(op_, mid, rng.choice((0, 0, 1, 8, 13, 200)), fl)))
            return "versions", batch(frs), True
        if k == 2:  # one frame mutated
            frs = list(honest)
            if frs:
                i = rng.randrange(len(frs))
                frs[i] = (frs[i][0], mutate(rng, frs[i][1]))
            return "frame-mutated", batch(frs), True
        if k == 3:  # the whole reply value mutated
            val = b"".join(struct.pack("<I", rid) + m for rid, m in honest)
            return "value-mutated", sp_frame(hdr + rk_reply(op, bid, 0, rk_field("VALUE", mutate(rng, val)))), True
        if k == 4:  # the whole reply message mutated
            return "reply-mutated", sp_frame(hdr + mutate(rng, batch(honest)[12:])), True
        if k == 5:  # rids of others, duplicates, unknown
            frs = [(rng.choice((rid, rid ^ 1, rid + 16, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(2**32))), m)
                   for rid, m in honest]
            return "rids", batch(frs + honest + honest), True
        if k == 6:  # never answer
            return "silent", b"", True
        if k == 7:  # answer twice
            b = batch(honest)
            return "twice", b + b, True
        if k == 8:  # the batch header word (slot) wrong
            h = struct.pack(">I", rng.choice((0x80000000 | 15, 0x80000000 | 16, 0xFFFFFFFF, 0,
                                              rng.randrange(2**32))))
            return "slot", batch(honest, h=h), True
        if k == 9:  # hop words before the slot, or none
            h = rng.choice((b"", rng.randbytes(rng.randint(1, 3)), b"\x00\x00\x00\x01" + hdr, hdr + hdr))
            return "backtrace", batch(honest, h=h), True
        if k == 10:  # an SP length field up to 2^64-1, then close
            n = rng.choice(INTERESTING64 + [81 << 20])
            return "length", struct.pack(">Q", n) + rng.randbytes(rng.choice((0, 4, 64))), False
        if k == 11:  # a truncated reply, then close
            b = batch(honest)
            return "truncated", b[:rng.randrange(len(b))], False
        if k == 12:  # random bytes, then close
            return "random", rng.randbytes(rng.choice((1, 16, 1000))), False
        if k == 13:  # wrong status, wrong batch id, not a reply, other opcode
            v = rng.randrange(4)
            if v == 0:
                return "status", batch(honest, status=rng.choice((1, 2, 4, 11, 13, 999))), True
            if v == 1:
                return "batch-id", batch(honest, bid_=bid ^ rng.choice((1, 0xFFFFFFFF))), True
            if v == 2:
                return "flags", batch(honest, flags=0), True
            return "opcode", batch(honest, op_=rng.choice((RK_OP["RGET"], RK_OP["ECHO"], 99))), True
        if k == 14:  # many tiny frames (the receiver's limit is 4096)
            frs = [(rng.randrange(2**32), rk_reply(RK_OP["RGET"], 0, 1, b""))] * rng.choice((100, 4096, 5000))
            return "many-frames", batch(honest + frs), True
        # frames whose own length fields lie
        frs = []
        for rid, m in honest:
            m = bytearray(m)
            struct.pack_into("<I", m, 12, rng.choice(INTERESTING32))
            frs.append((rid, bytes(m)))
        return "frame-len", batch(frs), True

    def dump(self, path):
        with open(path, "w") as f:
            f.write(f"seed {SEED}; last replies of the lying peer, oldest first:\n")
            for kind, data in list(self.recent):
                f.write(f"{kind} {data.hex()}\n")

    def start(self):
        for fn in (self._accept_loop, self._gossip_loop):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self.threads.append(t)

    def leave(self):
        """Announce LEFT at a higher incarnation (what `kvctl leave` ends with)."""
        self.inc += 1
        self.state = STATE["left"]
        self.survey_all()

    def stop(self):
        self.stop_ev.set()
        self.lsock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
        for t in self.threads:
            t.join(5)


def rk_reply(op, msg_id, status, fields, flags=1):
    return RK_HDR.pack(RK_MAGIC, 1, op, flags, status, msg_id, len(fields)) + fields


# ---- the cluster's view -----------------------------------------------------

def members(node):
    r = node.kvctl("--timeout", "2s", "--json", "members", timeout=10)
    if r.rc != 0:
        return None
    return {m["id"]: m for m in last_json(r.out)["members"]}


def everyone_sees(nodes, pred, what, timeout=30):
    def ok():
        for n in nodes:
            t = members(n)
            if t is None or not pred(t):
                return False
        return True
    wait_for(ok, timeout, what)


# ---- fuzzing one port ------------------------------------------------------

class PortFuzzer:
    def __init__(self, tgt, rng, liar, strangers):
        self.tgt = tgt
        self.rng = rng
        self.liar = liar
        self.strangers = strangers  # gossip ids (bytes) that went out well-formed: max incarnation

    def data_inputs(self, n_stream, n_raw):
        rng, tgt = self.rng, self.tgt
        sentinel = rk_message("ECHO", rk_field("TEXT", b"sentinel"))
        sent = 0
        while sent < n_stream:
            base = valid_messages(rng, int(time.time() * 1000))
            names = sorted(base)
            chunk = []
            while len(chunk) < CHUNK:
                name = rng.choice(names)
                m = base[name] if rng.random() < 0.05 else mutate(rng, base[name])
                if name == "RBATCH" and rng.random() < 0.5:  # mutate inside the frames
                    frames = decode_rk(base[name])[1][RK_TAG["VALUE"]]
                    m = rk_message("RBATCH", rk_field("VALUE", mutate(rng, frames)))
                if harmless(m):
                    chunk.append(m)
            stream_chunk(tgt, rng, SP_REQ0, chunk, sentinel)
            sent += len(chunk)
        for _ in range(n_raw):
            base = valid_messages(rng, int(time.time() * 1000))
            kind, data = raw_input(rng, SP_REQ0, base[rng.choice(sorted(base))])
            raw_send(tgt, kind, data)
        probe(tgt)

    def gossip_base(self):
        rng, env, st = self.rng, self.liar.env, self.liar.settings
        now = int(time.time() * 1000)
        ids = [b"fz-%d" % rng.randrange(40) for _ in range(rng.randint(1, 3))]
        entries = [g_entry(i, now + rng.randrange(1000), rng.randrange(100), st,
                           state=rng.choice((0, 1, 2, 3, 4, 4, 4))) for i in ids]
        v = rng.randrange(5)
        if v == 0:  # other settings (refused, named in both logs)
            env = dict(env, partitions=env["partitions"] * 2)
        elif v == 1:
            env = dict(env, name=b"other")
        return g_message(env, entries, kind=rng.choice((0, 0, 1)), digest=rng.randrange(2**64))

    def gossip_safe(self, m):
        """A mutant the node would merge: allowed only when it cannot take
        a real node out, make the node dial anything, or add a member this
        test cannot remove again (ids printable, or LEFT)."""
        d = g_decode(m)
        if d is None:
            return True
        env, entries = d
        for e in entries:
            if e["id"] in REAL_IDS or e["id"] == FAKE_ID or e["gossip"] or e["peer"]:
                return False
            if not printable_id(e["id"]) and e["state"] != STATE["left"]:
                return False
        if env["name"] == self.liar.env["name"] and env["partitions"] == self.liar.env["partitions"] \
                and env["replicas"] == self.liar.env["replicas"]:
            for e in entries:
                if e["settings"] == self.liar.settings:
                    self.strangers[e["id"]] = max(self.strangers.get(e["id"], 0), e["inc"])
        return True

    def gossip_inputs(self, n_stream, n_raw):
        rng, tgt = self.rng, self.tgt
        sentinel = g_message(self.liar.env, [self.liar.entry()])
        sent = 0
        while sent < n_stream:
            chunk = []
            while len(chunk) < GOSSIP_CHUNK:
                m = mutate(rng, self.gossip_base())
                if self.gossip_safe(m):
                    chunk.append(m)
            stream_chunk(tgt, rng, SP_SURVEYOR0, chunk, sentinel)
            sent += len(chunk)
        for _ in range(n_raw):
            base = self.gossip_base()
            kind, data = raw_input(rng, SP_SURVEYOR0, base)
            raw_send(tgt, kind, data)
        probe(tgt)


def probe(tgt):
    """The port still answers a valid request on a fresh connection."""
    def answers():
        tgt.check_alive()
        if tgt.port_name == "gossip":
            s = connect(tgt.port, 2)
            try:
                s.sendall(sp_handshake(SP_SURVEYOR0) + sp_frame(struct.pack(">I", 0x80000003) +
                                                                 b"not gossip"))
                recv_exact(s, 8)
                return True  # a respondent: it took the handshake
            finally:
                s.close()
        with SPConn(tgt.port, 2) as c:
            c.handshake()
            rid = c.request(rk_message("ECHO", rk_field("TEXT", b"probe")))
            got, _ = c.recv_reply()
            return got == rid
    wait_for(answers, 20, f"{tgt.label} to answer after hostile input")


# ---- checks ----------------------------------------------------------------

def snapshot(nodes):
    return {n.name: (fd_count(n.pid), rss_kib(n.pid)) for n in nodes}


def put_get_everywhere(nodes, keys, tag):
    for i, k in enumerate(keys):
        with RawKV(nodes[i % len(nodes)]) as kv:
            assert kv.put(k, tag + k) == "OK", (k, nodes[i % len(nodes)].name)
    for n in nodes:
        with RawKV(n) as kv:
            for k in keys:
                st, v, _ = kv.get(k)
                assert (st, v) == ("OK", tag + k), (n.name, k, st, v)


def drive_liar(nodes, rng, n_ops, stop_ev):
    """Client requests whose coordinators ask the liar (a put, then a get
    with R=3, so every replica of the key is asked)."""
    done = 0
    conns = [RawKV(n, timeout=5) for n in nodes]
    try:
        while done < n_ops and not stop_ev.is_set():
            kv = conns[done % len(conns)]
            key = b"lz/%d" % rng.randrange(500)
            try:
                if rng.random() < 0.5:
                    kv.put(key, rng.randbytes(rng.randint(0, 200)))
                else:
                    kv.get(key, r=rng.choice((1, 2, 3)))
            except (OSError, ConnectionError, AssertionError):
                i = done % len(conns)
                conns[i].close()
                conns[i] = wait_for(lambda: RawKV(nodes[i], timeout=5), 15,
                                    f"a new client connection to {nodes[i].name}")
            done += 1
    finally:
        for c in conns:
            c.close()
    return done


def test_hostile_input_all_ports(cluster, tmp_path, binaries, capsys):
    def say(text):
        """Shown even when pytest captures output (ctest runs it with -q):
        the seed and the executions per port belong in every test log."""
        with capsys.disabled():
            print(text, flush=True)

    asan = is_asan(binaries["ringkvd"])
    f = scale(binaries["ringkvd"])
    n_stream, n_raw, n_liar = (max(CHUNK, int(x * f)) for x in (N_STREAM, N_RAW, N_LIAR_OPS))
    say(f"hostile: seed {SEED} (RINGKV_SEED={SEED} to repeat), scale {f:g}"
          f"{' (ASan build)' if asan else ''}: {n_stream} mutated messages + {n_raw} connection-level "
          f"inputs per port, {n_liar} requests through the lying peer")
    # Short gossip intervals: strangers and the liar come and go quickly.
    nodes = cluster.start(3, overrides={"gossip.interval": "200ms", "gossip.suspect_after": "2s",
                                        "gossip.dead_after": "4s", "log.level": "info",
                                        "cluster.request_timeout": "500ms"})
    everyone_sees(nodes, lambda t: len(t) == 3 and all(m["state"] == "alive" for m in t.values()),
                  "3 alive members on every node")
    check_keys = [b"check/%d" % i for i in range(60)]
    put_get_everywhere(nodes, check_keys, b"before:")
    before = snapshot(nodes)

    liar = LyingPeer(cluster, nodes, SEED ^ 0x5EED)
    strangers = {}
    t0 = time.monotonic()
    try:
        liar.learn_settings()
        liar.start()
        everyone_sees(nodes, lambda t: t.get(FAKE_ID.decode(), {}).get("state") == "alive",
                      "the lying peer alive on every node")
        # Phase 1: the batch path's reply direction, while the ports are fuzzed.
        stop_ev = threading.Event()
        driven = []
        errors = []

        def run(fn, *a):
            try:
                fn(*a)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)
                stop_ev.set()

        def first_death():
            """An AssertionError naming the node that died and the inputs
            that reached it last, or None."""
            for t in targets.values():
                try:
                    t.check_alive()
                except AssertionError as e:
                    liar.dump(tmp_path / "hostile-lying-peer.txt")
                    return e
            return None

        targets = {(n.name, p): Target(n, p, tmp_path) for n in nodes for p in ("client", "peer", "gossip")}
        drv = threading.Thread(target=run, args=(lambda: driven.append(
            drive_liar(nodes, random.Random(SEED + 1), n_liar, stop_ev)),))

        def phase(port, salt, method):
            threads = []
            for i, n in enumerate(nodes):
                fz = PortFuzzer(targets[(n.name, port)], random.Random(SEED * salt + i), liar, strangers)
                threads.append(threading.Thread(target=run, args=(getattr(fz, method), n_stream, n_raw)))
            return threads

        def join_all(threads, what):
            t1 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            death = first_death()
            if death:
                raise death
            if errors:
                raise errors[0]
            say(f"hostile: {what}: {time.monotonic() - t1:.0f} s; descriptors now "
                  + ", ".join(f"{n.name} {fd_count(n.pid)}" for n in nodes))

        # The batch path's reply direction runs while client and peer ports
        # are fuzzed; the gossip ports come after it (strangers in the ring
        # would make the liar's quorums fail for other reasons).
        join_all([drv] + phase("client", 31, "data_inputs"), "client ports and the lying peer")
        join_all(phase("peer", 37, "data_inputs"), "peer ports")
        join_all(phase("gossip", 41, "gossip_inputs"), "gossip ports")
        fuzz_s = time.monotonic() - t0
        liar.leave()
    finally:
        liar.stop()
    for n in nodes:
        assert n.is_running(), f"{n.name} exited with {n.proc.returncode}"

    say(f"hostile: executions per port (seed {SEED}, {fuzz_s:.0f} s):")
    for t in targets.values():
        say(f"  {t.label:16} {t.execs:6d} inputs ({t.no_answer} chunks without the sentinel's answer)")
    say(f"  {'lying peer':16} {liar.replies:6d} RBATCH replies to {liar.requests} requests "
          f"({driven[0] if driven else 0} client requests driven)")
    say(f"  strangers merged by gossip: {len(strangers)}")
    assert not liar.errors, liar.errors

    # The liar and every stranger leave: LEFT at the incarnation the node has.
    def cleaned():
        dirty = False
        for n in nodes:
            t = members(n) or {}
            for mid, m in t.items():
                if mid.encode() in REAL_IDS or m["state"] == "left":
                    continue
                dirty = True
                bid = mid.encode("utf-8", "surrogateescape")
                inc = m["incarnation"]
                msg = g_message(liar.env, [g_entry(FAKE_ID, liar.inc, liar.hb, liar.settings, STATE["left"]),
                                           g_entry(bid, inc, 0, liar.settings, STATE["left"])])
                s = connect(n.ports["gossip"])
                try:
                    s.sendall(sp_handshake(SP_SURVEYOR0) + sp_frame(struct.pack(">I", 0x80000009) + msg))
                    recv_exact(s, 8)
                    read_until(s, 0x80000009, time.monotonic() + 2)
                finally:
                    s.close()
        return not dirty
    wait_for(cleaned, 30, "every member but the three nodes to be left on every node", interval=0.5)
    everyone_sees(nodes, lambda t: all(t[x]["state"] == "alive" for x in ("node-1", "node-2", "node-3")),
                  "the three nodes alive on every node")

    # Every node answers correctly (main restarts a node in place when
    # nng's reaper is stuck: wait for it to be back first).
    for n in nodes:
        n.wait_ready(30)
    put_get_everywhere(nodes, check_keys[:0] + [b"after/%d" % i for i in range(30)], b"after:")
    for n in nodes:
        with RawKV(n) as kv:
            for k in check_keys:
                st, v, _ = kv.get(k)
                assert (st, v) == ("OK", b"before:" + k), (n.name, k, st, v)
        assert n.kvctl("put", "kvctl-after", "x").rc == 0
        r = n.kvctl("get", "kvctl-after")
        assert r.rc == 0 and r.out == b"x", r

    # Descriptors and RSS back within bounds.
    rss_slack = (RSS_SLACK_MIB_ASAN if asan else RSS_SLACK_MIB) * 1024

    def settled():
        now = snapshot(nodes)
        return all(now[k][0] <= before[k][0] + FD_SLACK and now[k][1] <= before[k][1] + rss_slack
                   for k in now) and now
    try:
        after = wait_for(settled, SETTLE_S, f"descriptors within +{FD_SLACK} and RSS within "
                         f"+{rss_slack // 1024} MiB of before on every node")
    finally:
        now = snapshot(nodes)
        for n in nodes:
            say(f"  {n.name}: descriptors by kind: {fd_kinds(n.pid)}")
        for k in now:
            say(f"  {k}: fds {before[k][0]} -> {now[k][0]}, RSS {before[k][1] // 1024} -> "
                  f"{now[k][1] // 1024} MiB")
    assert after

    # Logs: no unescaped control characters, no sanitizer report.
    bad = [line for n in nodes for line in control_chars(n.log_path)]
    assert not bad, f"{len(bad)} log lines with unescaped control characters:\n" + "\n".join(bad[:20])
    assert not cluster.sanitizer_reports(), cluster.sanitizer_reports()[:20]

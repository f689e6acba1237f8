"""Message-size and connection limits under abuse, on one real node with all
four ports open (client, peer, gossip, HTTP):

- a 64 MiB message sent to each port: the SP ports close the connection
  once its length (over NNG_OPT_RECVMAXSZ: 2.06 MiB on client and peer,
  0.47 MiB on gossip) arrives, HTTP answers 400 to a GET announcing a
  64 MiB body and closes, and the node's RSS does not grow by the message;
- 500 connections at once sending random bytes, and 500 half-open SP
  handshakes left hanging (limits.max_connections = 256 per address closes
  the rest as they are accepted);
after each, the node answers put/get correctly, its RSS is within
RSS_BOUND_MIB (RSS_BOUND_MIB_ASAN for a sanitizer build) of where it
started, and its descriptors are back once the connections are gone.

Seeded randomness prints its seed (RINGKV_SEED=N reruns one)."""

import os
import random
import socket
import struct
import time

import pytest

from harness import RawKV, fd_count, free_port, rss_kib, wait_for

RSS_BOUND_MIB = 48        # release: allocator arenas and nng's per-connection buffers
RSS_BOUND_MIB_ASAN = 512  # ASan keeps freed memory in quarantine
SP_REQ0, SP_SURVEYOR0 = 0x30, 0x62
BIG = 64 << 20
CHUNK = 1 << 20
SLACK_S = 30


def asan_build(ringkvd):
    with open(ringkvd, "rb") as f:
        return b"__asan_init" in f.read()


@pytest.fixture
def node(cluster):
    http = free_port()
    n = cluster.add_node({"listen.http": f"127.0.0.1:{http}"})
    n.http_port = http
    n.start()
    n.bound_kib = (RSS_BOUND_MIB_ASAN if asan_build(cluster.ringkvd) else RSS_BOUND_MIB) * 1024
    return n


def still_serves(node, tag):
    with RawKV(node) as kv:
        assert kv.put(b"after-" + tag, b"v-" + tag) == "OK"
        st, value, _ = kv.get(b"after-" + tag)
        assert (st, value) == ("OK", b"v-" + tag)


def send_big(port, head):
    """Connect, send head, then up to 64 MiB more; returns the bytes the
    node took before it closed the connection (or all of them), and the
    start of what it answered (b"" for none)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent, answer = 0, b""
    try:
        s.sendall(head)
        chunk = b"\xab" * CHUNK
        while sent < BIG:
            s.sendall(chunk)
            sent += CHUNK
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    try:
        answer = s.recv(64)
    except OSError:
        pass
    finally:
        s.close()
    return sent, answer


def sp_big(proto):
    """SP handshake for proto, then one frame claiming 64 MiB."""
    return b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00" + struct.pack(">Q", BIG)


def http_big():
    return b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BIG


def test_64_mib_to_each_port_is_refused_without_growing_memory(node):
    still_serves(node, b"0")
    rss0 = rss_kib(node.pid)
    for name, port, head in (("client", node.ports["client"], sp_big(SP_REQ0)),
                             ("peer", node.ports["peer"], sp_big(SP_REQ0)),
                             ("gossip", node.ports["gossip"], sp_big(SP_SURVEYOR0)),
                             ("http", node.http_port, http_big())):
        t0 = time.monotonic()
        sent, answer = send_big(port, head)
        rss = rss_kib(node.pid)
        print(f"{name}: the node took {sent >> 20} MiB of 64 before closing, "
              f"{time.monotonic() - t0:.2f}s; RSS {rss0 >> 10} -> {rss >> 10} MiB")
        assert rss - rss0 < node.bound_kib, (name, rss0, rss)
        assert sent < BIG, f"{name}: the node read all 64 MiB"
        if name == "http":  # a request with a body is refused at its header
            assert answer.startswith(b"HTTP/1.1 400 "), answer
        still_serves(node, name.encode())
    # Nothing of the 64 MiB messages was kept.
    assert rss_kib(node.pid) - rss0 < node.bound_kib


def test_500_garbage_senders_and_500_half_open_handshakes(node):
    seed = int(os.environ.get("RINGKV_SEED", random.randrange(1 << 32)))
    print(f"seed {seed} (RINGKV_SEED={seed} reruns it)")
    rng = random.Random(seed)
    still_serves(node, b"0")
    rss0, fds0 = rss_kib(node.pid), fd_count(node.pid)
    ports = [node.ports["client"], node.ports["peer"], node.ports["gossip"]]

    socks = []
    try:
        for i in range(500):  # random bytes, each its own connection, all held open
            s = socket.create_connection(("127.0.0.1", ports[i % 3]), timeout=10)
            socks.append(s)
            try:
                s.sendall(rng.randbytes(rng.randrange(1, 4096)))
            except (BrokenPipeError, ConnectionResetError):
                pass
        still_serves(node, b"garbage")
        assert rss_kib(node.pid) - rss0 < node.bound_kib
        for i in range(500):  # half an SP handshake, then silence
            s = socket.create_connection(("127.0.0.1", ports[i % 3]), timeout=10)
            socks.append(s)
            try:
                s.sendall(b"\x00SP\x00"[: rng.randrange(1, 5)])
            except (BrokenPipeError, ConnectionResetError):
                pass
        still_serves(node, b"half-open")
        rss = rss_kib(node.pid)
        print(f"RSS {rss0 >> 10} -> {rss >> 10} MiB with 1000 abusive connections; "
              f"descriptors {fds0} -> {fd_count(node.pid)}")
        assert rss - rss0 < node.bound_kib
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: fd_count(node.pid) <= fds0 + 8, SLACK_S, "the node's descriptors back")
    still_serves(node, b"1")


def fake_node_answering(size):
    """A rep0 listener on loopback that answers the first request it gets
    (after any bare probe connections) with a frame claiming `size` bytes,
    then streams bytes until the client hangs up; returns (port, thread,
    [bytes of the body it managed to send])."""
    import threading
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    lsock.settimeout(10)
    sent, replied = [0], []

    def exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def answer(conn):
        exact(conn, 8)  # the client's SP header
        conn.sendall(b"\x00SP\x00" + struct.pack(">H", 0x31) + b"\x00\x00")
        req = exact(conn, struct.unpack(">Q", exact(conn, 8))[0])
        conn.sendall(struct.pack(">Q", size) + req[:4])  # the reply: its request id first
        replied.append(True)
        chunk = b"\xab" * CHUNK
        while sent[0] < size - 4:
            conn.sendall(chunk[:min(CHUNK, size - 4 - sent[0])])
            sent[0] += min(CHUNK, size - 4 - sent[0])

    def serve():
        try:
            for _ in range(5):  # kvctl may probe with a bare TCP connect first
                conn, _ = lsock.accept()
                conn.settimeout(10)
                try:
                    answer(conn)
                    return
                except (ConnectionError, OSError):
                    if replied:
                        return
                finally:
                    conn.close()
        except OSError:
            pass
        finally:
            lsock.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return lsock.getsockname()[1], t, sent


def test_a_reply_over_the_client_limit_is_refused_without_growing_memory(cluster):
    """kvctl (the client library, RK_CLIENT_MAX_MSG = 80 MiB: a 64 MiB value,
    the largest storage.max_value_size, with its key and headers) refuses a
    96 MiB reply as nng reads its length: one error line, exit 3, and its
    peak RSS nowhere near the reply's size."""
    import subprocess
    port, t, sent = fake_node_answering(96 << 20)
    p = subprocess.Popen([cluster.kvctl_bin, "-a", f"127.0.0.1:{port}", "--timeout", "3s", "status"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.stdout.read(), p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    t.join(10)
    print(f"kvctl: exit {p.returncode}, peak RSS {usage.ru_maxrss >> 10} MiB, the fake node sent "
          f"{sent[0] >> 20} MiB of 96 before the client hung up; {err.strip()}")
    assert p.returncode == 3 and err.count("\n") == 1, (p.returncode, err)
    assert "the reply over this client's 80 MiB" in err, err
    bound = RSS_BOUND_MIB_ASAN if asan_build(cluster.ringkvd) else RSS_BOUND_MIB
    assert usage.ru_maxrss < bound * 1024, usage.ru_maxrss
    assert sent[0] < 64 << 20, sent[0]

"""Figures for connection handling, printed, never judged:
descriptors of ringkvd after 3,000 connect/close cycles that follow a few
unread request bursts, and RSS under 100 connections each stalled half-way
through a 2 MB message.

    python3 tests/bench/conn_bench.py [BUILD_DIR] [--port client|peer|gossip] [--runs N]
"""

import argparse
import os
import socket
import statistics
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from harness import Cluster, rk_field, rk_message, wait_for  # noqa: E402

PROTO = {"client": 0x30, "peer": 0x30, "gossip": 0x62}


def fds(n):
    return len(os.listdir(f"/proc/{n.pid}/fd"))


def rss_mib(n):
    with open(f"/proc/{n.pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024


def connect(n, which):
    def attempt():
        s = socket.create_connection(("127.0.0.1", n.ports[which]), timeout=5)
        s.sendall(b"\x00SP\x00" + struct.pack(">H", PROTO[which]) + b"\x00\x00")
        return s
    return wait_for(attempt, 60, "a connection")


def descriptors(c, which, rounds=5, cycles=3000):
    (n,) = c.start(1)
    base = fds(n)
    for _ in range(rounds):
        s = connect(n, which)
        for i in range(100):
            body = struct.pack(">I", 0x80000000 | (i + 1)) + rk_message("ECHO", rk_field("VALUE", b"x" * 100))
            s.sendall(struct.pack(">Q", len(body)) + body)
        s.close()
    for _ in range(cycles):
        connect(n, which).close()
    right_after = fds(n)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and fds(n) > base + 50:
        time.sleep(0.2)
    return base, right_after, fds(n)


def stalled(c, which, conns=100, length=2_000_000, limit=None):
    (n,) = c.start(1, overrides={"limits.max_connections": limit} if limit else None)
    before = rss_mib(n)
    socks = []
    for _ in range(conns):
        try:
            s = connect(n, which)
            s.sendall(struct.pack(">Q", length) + b"\x80\x00\x00\x01" + b"\x00" * (length // 2))
            socks.append(s)
        except OSError:
            pass
    time.sleep(2)  # a figure, not a test: let the node take what it will
    after = rss_mib(n)
    for s in socks:
        s.close()
    return before, after


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build/release")
    ap.add_argument("--port", default="client")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args()
    for what, fn in (("descriptors (base, right after 3000 cycles, after up to 30 s)", descriptors),
                     ("RSS MiB (before, with 100 stalled 2 MB senders)", stalled)):
        got = []
        for _ in range(a.runs):
            c = Cluster(tempfile.mkdtemp(prefix="conn_bench."), f"{a.build}/src/ringkvd", f"{a.build}/src/kvctl")
            try:
                got.append(fn(c, a.port) if fn is descriptors else fn(c, a.port, limit=a.limit))
            finally:
                c.cleanup()
        med = [statistics.median(x[i] for x in got) for i in range(len(got[0]))]
        print(f"{a.port}: {what}: runs {got} median {med}")


if __name__ == "__main__":
    main()

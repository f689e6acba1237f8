"""The systemd notify protocol, without systemd: NOTIFY_SOCKET points at a
datagram socket this test reads."""

import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import pytest


class NotifySocket:
    """A bound AF_UNIX datagram socket collecting sd_notify messages."""

    def __init__(self):
        # A short path: sun_path holds 108 bytes and build dirs can be deep.
        self.dir = Path(tempfile.mkdtemp(prefix="rk-notify-"))
        self.path = str(self.dir / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, {key: value}, raw text)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def read_until(self, pred, timeout, what):
        """Read datagrams until pred(fields) holds for one; return its fields."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [m[2] for m in self.messages]
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; got {seen}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            text = data.decode(errors="replace")
            fields = dict(l.split("=", 1) for l in text.splitlines() if "=" in l)
            self.messages.append((time.monotonic(), fields, text))
            if pred(fields):
                return fields


@pytest.fixture
def notify():
    s = NotifySocket()
    yield s
    s.close()


def test_notify_ready_watchdog_status_stopping(cluster, notify):
    n = cluster.add_node(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
    n.start(wait=False)

    notify.read_until(lambda f: f.get("READY") == "1", 30, "READY=1")
    # READY=1 comes after recovery and binding: the node answers at once.
    r = n.kvctl("--timeout", "2s", "health")
    assert r.rc == 0, f"READY=1 was sent but `kvctl health` says {r}"
    assert any("STATUS" in m[1] for m in notify.messages), \
        f"no STATUS= line before READY=1: {[m[2] for m in notify.messages]}"
    # The serving status line leads with the membership: a node alone.
    notify.read_until(lambda f: f.get("STATUS", "").startswith("1 members, 1 alive;"), 10,
                      "a STATUS= line with the member counts")

    # WATCHDOG_USEC = 1 s: pings about every 0.5 s, so 3 arrive within ~2 s.
    t0 = time.monotonic()
    for i in range(3):
        notify.read_until(lambda f: f.get("WATCHDOG") == "1", 3, f"WATCHDOG=1 #{i + 1}")
    assert time.monotonic() - t0 < 2.9, "watchdog pings come slower than every WATCHDOG_USEC/2"
    pings = [m[0] for m in notify.messages if m[1].get("WATCHDOG") == "1"]
    assert all(b - a < 1.0 for a, b in zip(pings, pings[1:])), f"watchdog gaps over 1 s: {pings}"

    # Serving traffic does not stop the pings.
    assert n.kvctl("put", "k", "v").rc == 0
    notify.read_until(lambda f: f.get("WATCHDOG") == "1", 3, "WATCHDOG=1 after traffic")

    n.signal(signal.SIGTERM)
    notify.read_until(lambda f: f.get("STOPPING") == "1", 10, "STOPPING=1 after SIGTERM")
    assert n.wait_exit(10) == 0


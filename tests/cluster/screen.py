"""Drive a terminal program in tmux for the dashboard tests: start it in a
private tmux server (its own socket, nothing shared with a user's tmux),
send keys, read the screen, resize it; and read the dashboard's frames.

    with Tmux(tmp_path, [ringkvd, "dashboard", "-a", addr], 200, 60) as t:
        t.wait_screen(lambda s: "node-3" in s, 10, "node-3 on screen")
        t.keys("q")
"""

import os
import re
import subprocess
import time
import uuid
from pathlib import Path

from harness import POLL_INTERVAL, scrubbed_env

TMUX = "tmux"


class Tmux:
    def __init__(self, base, argv, width, height, env=None):
        self.sock = f"rk-{uuid.uuid4().hex[:12]}"
        self.base = Path(base)
        self.conf = self.base / f"{self.sock}.conf"
        # remain-on-exit: a program that ended leaves its last screen to read.
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\nset -g history-limit 0\n")
        # A sanitizer build reports into files beside the test, not onto the
        # screen: close() fails the test on any report.
        self.san = self.base / f"{self.sock}.san"
        san = {k: f"{os.environ.get(k, '')}:log_path={self.san}".lstrip(":")
               for k in ("ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS")}
        e = {"LANG": "C.UTF-8", "TERM": "xterm-256color", **san, **(env or {})}
        cmd = "exec env " + " ".join(f"{k}={_q(v)}" for k, v in e.items()) + " " + " ".join(_q(a) for a in argv)
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), cmd)
        self.pid = int(self._tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip())

    def _tmux(self, *args):
        r = subprocess.run([TMUX, "-L", self.sock, "-f", str(self.conf), *args], capture_output=True,
                           text=True, timeout=10, env=scrubbed_env({"TMUX": ""}))
        if r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def screen(self, escapes=False):
        """The visible screen as text (escapes: with its SGR sequences)."""
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "t")

    def keys(self, *keys):
        """tmux send-keys names: "q", "Down", "Tab", "Enter", "C-c"."""
        self._tmux("send-keys", "-t", "t", *keys)

    def resize(self, width, height):
        self._tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def dead(self):
        """True once the program in the pane has exited."""
        return self._tmux("display-message", "-p", "-t", "t", "#{pane_dead}").strip() == "1"

    def wait_screen(self, predicate, timeout, what):
        """Poll the screen until predicate(screen) is truthy; return that value."""
        end = time.monotonic() + timeout
        last = ""
        while True:
            last = self.screen()
            v = predicate(last)
            if v:
                return v
            if time.monotonic() >= end:
                raise AssertionError(f"waited {timeout:g}s for {what}; the screen:\n{last}")
            time.sleep(POLL_INTERVAL * 5)

    def close(self):
        """Kill the tmux server: the program gets SIGHUP (the terminal went
        away) and must end by itself; if it has not within 15 s it is killed
        by its PID (it is ours) and that is an error."""
        try:
            subprocess.run([TMUX, "-L", self.sock, "kill-server"], capture_output=True, timeout=10)
            end = time.monotonic() + 15
            while running(self.pid) and time.monotonic() < end:
                time.sleep(POLL_INTERVAL)
            if running(self.pid):
                os.kill(self.pid, 9)
                raise AssertionError(f"pid {self.pid} ignored its terminal's hangup for 15 s")
            reports = [p.read_text(errors="replace") for p in self.base.glob(f"{self.sock}.san*")]
            if reports:
                raise AssertionError("sanitizer reports from the program in tmux:\n" + "\n".join(reports)[:6000])
        finally:
            try:
                self.conf.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def running(pid):
    """True while pid runs (an exited zombie not yet reaped has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _q(s):
    s = str(s)
    return "'" + s.replace("'", "'\\''") + "'"


# ---- reading the dashboard's frame ----

PEER_ROW = re.compile(r"[│|]([1-9a-z+]) (node-\d+)\s+(\S+)\s+(.*?)[│|]")
FRAME = re.compile(r"#(\d+) (\d\d:\d\d:\d\d) every")
PANES = ("1 Ring", "2 Peers", "3 Anti-entropy", "4 Transfers", "5 Traffic", "6 Events")


def peers(screen):
    """{id: [state, the row's other columns...]} from the Peers pane."""
    out = {}
    for m in PEER_ROW.finditer(screen):
        out[m.group(2)] = [m.group(3)] + m.group(4).split()
    return out


def frame_no(screen):
    m = FRAME.search(screen)
    return int(m.group(1)) if m else None


def ring_counts(screen):
    """The ring legend's counts: {"X": .., "x": .., "u": .., ">": .., "~": .., "ok": ..}."""
    out = {}
    for mark in ("X", "x", "u", ">", "~"):
        m = re.search(re.escape(mark) + r"(\d+) (no R|no W|under|moving|AE)", screen)
        if m:
            out[mark] = int(m.group(1))
    m = re.search(r"(\d+) ok", screen)
    if m:
        out["ok"] = int(m.group(1))
    return out


def age_s(text):
    """A dashboard age ("0.4s", "12s", "3m", "never") in seconds."""
    if text == "never":
        return float("inf")
    m = re.fullmatch(r"([\d.]+)(s|m|h)", text)
    assert m, f"not an age: {text!r}"
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def pids_with(text):
    """PIDs of running processes whose command line contains text."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            found.append(int(d))
    return found

#!/usr/bin/env python3
"""Dashboard benchmark: what watching a cluster costs, and how fast a
failure shows.

For 3 and 9 nodes (tests/cluster/harness.py, workers = 1, gossip at its
defaults: interval 1s, suspect_after 3s, dead_after 10s, unless --fast):
  cpu        `ringkvd dashboard` in tmux (200x60, 1 s refresh) for
             --seconds s, its CPU time (utime + stime) per second of wall
             time, with a light load (kvctl bench, 2 clients) running
  admin      `ringkvd dashboard --once --json`: request + reply bytes per
             member per refresh (the anchor, which also sends the member
             table and placement, apart from the others)
  kill -9    (3 nodes) time from kill -9 of node-3 to the screen showing it
             suspect, then dead
Each figure is printed per round, then the medians of --rounds rounds.
Not a pass/fail test.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))
sys.dont_write_bytecode = True

from harness import Cluster, last_json  # noqa: E402
from screen import Tmux, peers  # noqa: E402

FAST = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answering(n):
    def check(s):
        p = peers(s)
        return len(p) == n and all(v[0] == "alive" for v in p.values()) and f"{n} answering" in s
    return check


def admin_bytes(c, node):
    r = c.run_ringkvd("dashboard", "-a", node.client_addr, "--once", "--json", timeout=30)
    d = last_json(r.out)
    anchor = [m for m in d["members"] if m["client"] == d["anchor"]]
    others = [m for m in d["members"] if m["client"] != d["anchor"]]
    per = lambda m: (m["poll"]["rx_bytes"] + m["poll"]["tx_bytes"]) / max(1, m["poll"]["answers"])
    return per(anchor[0]), statistics.median(per(m) for m in others)


def round_(args, n, base):
    c = Cluster(base, args.ringkvd, args.kvctl, {"node.workers": 1, **(FAST if args.fast else {})})
    out = {}
    try:
        nodes = c.start(n, timeout=60)
        load = c.kvctl_popen(nodes[0].client_addr, "bench", "--clients", "2", "--duration",
                             f"{args.seconds + 60}s", "--workload", "b", stdout=subprocess.DEVNULL)
        with Tmux(base, [args.ringkvd, "dashboard", "-a", nodes[0].client_addr], 200, 60) as t:
            t.wait_screen(answering(n), 60, f"{n} members answering")
            c0, w0 = cpu_s(t.pid), time.monotonic()
            time.sleep(args.seconds)  # the measurement window itself, not a synchronisation
            out["cpu_pct"] = 100 * (cpu_s(t.pid) - c0) / (time.monotonic() - w0)
            out["anchor_bytes"], out["member_bytes"] = admin_bytes(c, nodes[0])
            if n == 3:
                killed = time.monotonic()
                nodes[2].kill()
                t.wait_screen(lambda s: peers(s)["node-3"][0] == "suspect", 60, "suspect")
                out["suspect_s"] = time.monotonic() - killed
                t.wait_screen(lambda s: peers(s)["node-3"][0] == "dead", 60, "dead")
                out["dead_s"] = time.monotonic() - killed
        load.kill()
        load.wait()
    finally:
        c.cleanup()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    build = Path(__file__).resolve().parent.parent.parent / "build" / "release" / "src"
    ap.add_argument("--ringkvd", default=str(build / "ringkvd"))
    ap.add_argument("--kvctl", default=str(build / "kvctl"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--fast", action="store_true", help="gossip 200ms / suspect 1s / dead 2s")
    args = ap.parse_args()
    for n in (3, 9):
        rows = []
        for r in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="rk-dash-bench-") as base:
                row = round_(args, n, base)
            print(f"nodes={n} round={r + 1} " + " ".join(f"{k}={v:.2f}" for k, v in row.items()), flush=True)
            rows.append(row)
        med = {k: statistics.median(x[k] for x in rows) for k in rows[0]}
        print(f"nodes={n} MEDIAN " + " ".join(f"{k}={v:.2f}" for k, v in med.items()), flush=True)


if __name__ == "__main__":
    main()

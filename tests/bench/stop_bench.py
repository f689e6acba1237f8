#!/usr/bin/env python3
"""Graceful stop: the time from SIGTERM of a node until both its peers show
it `stopped` (its stop announcement, not `gossip.dead_after`), over --runs
stops of node-3 of a 3-node cluster with the default gossip settings; each
peer's `kvctl --json members` is polled every 5 ms. Prints every run, then
the median. Not a pass/fail test.
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))
sys.dont_write_bytecode = True

from harness import Cluster, last_json, wait_for  # noqa: E402

CONFIG = {"node.workers": 1, "node.pin_workers": False, "cluster.expect_nodes": 3}


def state(observer, who):
    r = observer.kvctl("--timeout", "1s", "--json", "members", timeout=5)
    if r.rc != 0:
        return None
    return {m["id"]: m["state"] for m in last_json(r.out)["members"]}.get(who)


def one_stop(victim, peers):
    """ms from SIGTERM until every peer shows victim stopped."""
    t0 = time.monotonic()
    victim.signal(signal.SIGTERM)
    left = set(p.name for p in peers)
    seen = {}
    deadline = t0 + 30
    while left and time.monotonic() < deadline:
        for p in peers:
            if p.name in left and state(p, victim.name) == "stopped":
                seen[p.name] = (time.monotonic() - t0) * 1000
                left.discard(p.name)
        time.sleep(0.005)  # the polling period of the measurement
    if left:
        raise RuntimeError(f"{sorted(left)} never showed {victim.name} stopped")
    return max(seen.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    ringkvd = os.path.join(args.build, "src", "ringkvd")
    kvctl = os.path.join(args.build, "src", "kvctl")
    c = Cluster(Path(tempfile.mkdtemp(prefix="ringkv-stop-bench-")), ringkvd, kvctl,
                overrides=dict(CONFIG))
    try:
        nodes = c.start(3, timeout=60)
        victim, peers = nodes[2], nodes[:2]
        ms = []
        for i in range(args.runs):
            for p in peers:
                wait_for(lambda p=p: state(p, victim.name) == "alive", 60,
                         f"{victim.name} alive on {p.name}")
            ms.append(one_stop(victim, peers))
            victim.wait_exit(30)
            print(f"run {i + 1}: SIGTERM -> both peers show {victim.name} stopped: "
                  f"{ms[-1]:.0f} ms", flush=True)
            victim.start(timeout=60)
        print(f"median over {len(ms)} runs: {statistics.median(ms):.0f} ms "
              f"(min {min(ms):.0f}, max {max(ms):.0f})")
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Transfer benchmark: what a join costs a loaded cluster, in one run.

One 3-node cluster (tests/cluster/harness.py): workers = 1 each, unpinned,
replicas = 3, write_quorum = read_quorum = 2, storage.fsync = "interval".

  preload      `kvctl bench` writes --keys keys of 100 B through node-1
  baseline     workload a, 32 clients split over the 3 nodes, --duration s
               (a first run discarded: background work after bulk writes)
  join         a new node joins at a transfer limit (the default 64MiB,
               then unlimited: transfers.max_bytes_per_second = "0B"):
               the time from its start until `kvctl transfers` lists
               nothing and every node is ready; keys and bytes it pulled,
               and the keys it holds as a share of the ideal N/(M+1)
  during join  workload a again while the next new node joins (default
               limit): ops/s, p50, p99 against the baseline of that round
  leave        each new node leaves again (`kvctl leave`): the time until
               it has exited

Every figure is printed per round; then the medians of --rounds rounds.
Not a pass/fail test: it prints the targets beside the figures.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True

from harness import Cluster, last_json, wait_for  # noqa: E402
from node_bench import kvctl_bench  # noqa: E402
from ae_bench import CONFIG as AE_CONFIG, VALUE_SIZE, stats, wait_agreed  # noqa: E402

CONFIG = {**AE_CONFIG, "cluster.expect_nodes": 3, "gossip.dead_after": "3s",
          "antientropy.interval": "30s"}  # the default: rounds do not add to the join
UP_S = 60.0
JOIN_S = 3600.0


def settled(nodes):
    r = nodes[0].kvctl("--timeout", "5s", "--json", "transfers", timeout=60)
    if r.rc != 0 or last_json(r.out)["count"] != 0:
        return False
    return all(n.kvctl("--timeout", "2s", "ready", timeout=10).rc == 0 for n in nodes)


def join(c, nodes, limit):
    """A new node joins at limit; returns (node, figures)."""
    c.overrides["transfers.max_bytes_per_second"] = limit
    t0 = time.monotonic()
    new = c.start(1, timeout=UP_S, ready=False)[0]
    wait_agreed(nodes + [new])
    wait_for(lambda: settled(nodes + [new]), JOIN_S, f"{new.name} joined", interval=0.5)
    secs = time.monotonic() - t0
    t = stats(new)["transfers"]
    held = stats(new)["storage"]["keys"]
    return new, {"s": secs, "keys": t["keys"], "bytes": t["bytes"], "held": held}


def leave(new):
    t0 = time.monotonic()
    r = new.kvctl("leave", timeout=JOIN_S)
    if r.rc != 0:
        raise RuntimeError(f"{new.name}: kvctl leave exited {r.rc}: {r.err.strip()}")
    new.wait_exit(120)
    return time.monotonic() - t0


def workload(args, nodes, keys):
    r = kvctl_bench(args, [n.client_addr for n in nodes], [n.pid for n in nodes],
                    ["--workload", "a", "--keys", str(keys)])
    return {"ops_s": r["ops_s"], "p50": r["p50_us"], "p99": r["p99_us"], "errors": r["errors"]}


def during_join(args, c, nodes):
    """Workload a on the 3 nodes while a new node joins at the default limit."""
    c.overrides["transfers.max_bytes_per_second"] = "64MiB"
    box = {}

    def start_join():
        box["node"] = c.start(1, timeout=UP_S, ready=False)[0]
    r = kvctl_bench(args, [n.client_addr for n in nodes], [n.pid for n in nodes],
                    ["--workload", "a", "--keys", str(args.keys)], during=start_join)
    new = box["node"]
    wait_for(lambda: settled(nodes + [new]), JOIN_S, f"{new.name} joined", interval=0.5)
    return new, {"ops_s": r["ops_s"], "p50": r["p50_us"], "p99": r["p99_us"],
                 "errors": r["errors"]}


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="workload runs, s")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.ringkvd = os.path.join(args.build, "src", "ringkvd")
    args.kvctl = os.path.join(args.build, "src", "kvctl")
    tmp = tempfile.mkdtemp(prefix="ringkv-join-bench-")
    c = Cluster(Path(tmp), args.ringkvd, args.kvctl, overrides=dict(CONFIG))
    res = {"def": [], "off": [], "base": [], "join": [], "leave": []}
    try:
        nodes = c.start(3, timeout=UP_S)
        wait_agreed(nodes)
        t0 = time.monotonic()
        kvctl_bench(args, [nodes[0].client_addr], [n.pid for n in nodes],
                    ["--workload", "c", "--duration", "1s", "--clients", "32", "--keys",
                     str(args.keys)])
        print(f"preload: {args.keys} keys of {VALUE_SIZE} B in {time.monotonic() - t0:.1f} s",
              flush=True)
        wait_for(lambda: all(stats(n)["storage"]["keys"] >= args.keys for n in nodes), 600,
                 "every node holding every key", interval=1.0)
        ideal = args.keys * 3 / 4  # N = 3 of M + 1 = 4 members
        for i in range(args.rounds):
            print(f"-- round {i + 1}/{args.rounds}", flush=True)
            for label, limit in (("def", "64MiB"), ("off", "0B")):
                new, r = join(c, nodes, limit)
                res[label].append(r)
                print(f"join at {limit}: {r['s']:.1f} s, {r['keys']} keys pulled "
                      f"({r['keys'] / ideal:.3f} of the ideal {ideal:.0f}), {r['bytes'] / 1e6:.1f} MB "
                      f"on the wire, holds {r['held']} keys", flush=True)
                s = leave(new)
                res["leave"].append(s)
                print(f"leave of {new.name}: {s:.1f} s", flush=True)
            workload(args, nodes, args.keys)  # warm-up, discarded
            b = workload(args, nodes, args.keys)
            new, j = during_join(args, c, nodes)
            res["base"].append(b)
            res["join"].append(j)
            print(f"workload a in steady state: {b['ops_s']:.0f} ops/s, p50 {b['p50']:.0f} us, "
                  f"p99 {b['p99']:.0f} us, errors {b['errors']}", flush=True)
            print(f"workload a during the join: {j['ops_s']:.0f} ops/s, p50 {j['p50']:.0f} us, "
                  f"p99 {j['p99']:.0f} us, errors {j['errors']}", flush=True)
            leave(new)
        print("\n== medians")
        for label, name in (("def", "64MiB (default)"), ("off", "unlimited")):
            rs = res[label]
            print(f"join of node M+1 = 4 into {args.keys} keys at {name}: "
                  f"{med([r['s'] for r in rs]):.1f} s, keys pulled / ideal "
                  f"{med([r['keys'] / ideal for r in rs]):.3f}")
        print(f"leave: {med(res['leave']):.1f} s")
        ratio = {k: med([j[k] / b[k] for b, j in zip(res["base"], res["join"])])
                 for k in ("ops_s", "p50", "p99")}
        print(f"workload a during a join / steady state: ops/s {ratio['ops_s']:.2f}x, "
              f"p50 {ratio['p50']:.2f}x, p99 {ratio['p99']:.2f}x (target p99 <= 1.5x)")
    finally:
        if not args.keep:
            c.cleanup()


if __name__ == "__main__":
    main()

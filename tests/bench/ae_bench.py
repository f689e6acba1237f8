#!/usr/bin/env python3
"""Anti-entropy benchmark: what refilling a wiped replica costs, against a
plain copy of the same data, in one run.

One 3-node cluster (tests/cluster/harness.py): workers = 1 each, unpinned,
replicas = 3, write_quorum = read_quorum = 2, storage.fsync = "interval",
antientropy.interval = 1s (rounds follow each other, so a refill starts as
soon as the wiped node is back; the default 30 s would only add a wait).

  plain copy   `kvctl bench` preloads --keys keys of 100 B through node-1
               (32 clients): every key written to 3 replicas
  tree build   node-2 restarted (SIGTERM): antientropy.tree_build_ms
  in-sync      rounds on the cluster in sync, for --insync-s s: CPU ms
               (less the node's CPU over --insync-s s with anti-entropy
               off) and anti-entropy bytes of each node per round
  refill       node-3 killed -9, its data dir deleted, restarted; the time
               until its storage holds every key again, with the default
               budget and with the budget off (max_keys_per_second = 100000000 (its maximum),
               max_bytes_per_second = "0B", by SIGHUP): keys/s, MB/s of
               values, CPU cores of each node
  latency      a 32-client workload a (one kvctl bench per node, clients
               split) for --duration s: a run discarded (background work
               after bulk writes), one on the cluster in sync, one while
               node-3 is refilled at each budget of --budgets (keys/s per
               node; default 50000): ops/s, p50 and p99 during the repair
               against in sync; and once with node-3 wiped and anti-entropy
               off (read repair alone): the wiped node's own cost

Every figure is printed per run; then the medians of --rounds runs. Not a
pass/fail test: it prints the targets beside the figures.
"""

import argparse
import os
import signal
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True

from harness import Cluster, last_json, wait_for  # noqa: E402
from node_bench import cpu_seconds, kvctl_bench  # noqa: E402

VALUE_SIZE = 100
CONFIG = {
    "node.workers": 1,
    "node.pin_workers": False,
    "storage.segment_size": None,  # the daemon's default
    "storage.fsync": "interval",
    "limits.max_inflight": 100000,
    "cluster.replicas": 3,
    "cluster.write_quorum": 2,
    "cluster.read_quorum": 2,
    "gossip.interval": "200ms",
    "gossip.suspect_after": "1s",
    "gossip.dead_after": "2s",
    "antientropy.interval": "1s",
}
UP_S = 60.0


def stats(node):
    r = node.kvctl("--json", "stats", timeout=30)
    if r.rc != 0:
        raise RuntimeError(f"{node.name}: kvctl stats exited {r.rc}: {r.err.strip()}")
    return last_json(r.out)


def wait_agreed(nodes):
    def agreed():
        for n in nodes:
            r = n.kvctl("--timeout", "2s", "--json", "members", timeout=10)
            if r.rc != 0 or last_json(r.out)["counts"]["alive"] != len(nodes):
                return False
        return True
    wait_for(agreed, UP_S, f"{len(nodes)} nodes alive on every node", interval=0.25)


class Cpu:
    """CPU seconds of each node over a window (utime + stime)."""

    def __init__(self, nodes):
        self.nodes, self.t0 = nodes, time.monotonic()
        self.c0 = [cpu_seconds(n.pid) for n in nodes]

    def cores(self):
        wall = time.monotonic() - self.t0
        return [(cpu_seconds(n.pid) - c) / wall for n, c in zip(self.nodes, self.c0)]

    def seconds(self):
        return [cpu_seconds(n.pid) - c for n, c in zip(self.nodes, self.c0)]


def set_budget(nodes, keys, bytes_):
    for n in nodes:
        n.set_config({"antientropy.max_keys_per_second": keys,
                      "antientropy.max_bytes_per_second": bytes_})
        n.signal(signal.SIGHUP)
    for n in nodes:
        wait_for(lambda n=n: ae_budget(n) == keys, 10, f"{n.name}: the budget reloaded")


def ae_budget(node):
    return ae_json(node)["max_keys_per_second"]


def rounds_done(nodes):
    return [stats(n)["antientropy"]["rounds"] for n in nodes]


def wait_in_sync(nodes, keys):
    """Every node holds every key and has finished a round since."""
    wait_for(lambda: all(stats(n)["storage"]["keys"] >= keys for n in nodes), 600,
             f"every node holding {keys} keys", interval=1.0)
    r0 = rounds_done(nodes)
    wait_for(lambda: all(r > s for r, s in zip(rounds_done(nodes), r0)), 300,
             "a full round on every node", interval=0.5)


def wipe_and_restart(node, nodes):
    node.kill()
    shutil.rmtree(node.data_dir)
    node.start(timeout=UP_S)
    wait_agreed(nodes)


def refill(nodes, keys, label):
    """node-3 wiped and refilled by anti-entropy alone: the figures."""
    victim = nodes[2]
    before = [stats(n)["antientropy"] for n in nodes[:2]]
    wipe_and_restart(victim, nodes)
    t0, cpu = time.monotonic(), Cpu(nodes)
    wait_for(lambda: stats(victim)["storage"]["keys"] >= keys, 1800,
             f"{label}: node-3 refilled to {keys} keys", interval=0.5)
    secs = time.monotonic() - t0
    cores = cpu.cores()
    after = [stats(n)["antientropy"] for n in nodes]
    moved_bytes = sum(a["bytes"] - b["bytes"] for a, b in zip(after[:2], before)) + after[2]["bytes"]
    return {"s": secs, "keys_s": keys / secs, "mb_s": keys * VALUE_SIZE / secs / 1e6,
            "wire_mb_s": moved_bytes / secs / 1e6, "cores": cores}


def set_enabled(nodes, on):
    for n in nodes:
        n.set_config({"antientropy.enabled": on})
        n.signal(signal.SIGHUP)
    for n in nodes:
        wait_for(lambda n=n: ae_json(n)["enabled"] is on, 10, f"{n.name}: enabled = {on}")


def ae_json(node):
    r = node.kvctl("--json", "ae", "--partition", "0", timeout=10)
    if r.rc != 0:
        raise RuntimeError(f"{node.name}: kvctl ae exited {r.rc}: {r.err.strip()}")
    return last_json(r.out)


def insync_round(nodes, secs):
    """CPU ms and bytes per round of each node on the cluster in sync: the
    node's CPU with anti-entropy on less its CPU over as long a time with
    it off (gossip, timers), per round."""
    set_enabled(nodes, False)
    wait_for(lambda: not any(ae_json(n)["exchanges_running"] for n in nodes), 60,
             "the rounds under way to end")
    cpu = Cpu(nodes)
    time.sleep(secs)  # a measurement window, not a synchronisation
    idle = cpu.seconds()
    set_enabled(nodes, True)
    s0 = [stats(n)["antientropy"] for n in nodes]
    cpu = Cpu(nodes)
    time.sleep(secs)
    used = [c - i for c, i in zip(cpu.seconds(), idle)]
    s1 = [stats(n)["antientropy"] for n in nodes]
    out = []
    for a, b, c in zip(s1, s0, used):
        r = a["rounds"] - b["rounds"]
        out.append({"rounds": r, "cpu_ms": 1000 * c / r if r else float("nan"),
                    "bytes": (a["bytes"] - b["bytes"]) / r if r else float("nan"),
                    "moved": a["keys_pulled"] + a["keys_pushed"] - b["keys_pulled"]
                    - b["keys_pushed"]})
    return out


def latency(args, nodes, keys, during_repair):
    extra = ["--workload", "a", "--keys", str(keys)]
    if during_repair:
        wipe_and_restart(nodes[2], nodes)
    r = kvctl_bench(args, [n.client_addr for n in nodes], [n.pid for n in nodes], extra)
    left = keys - stats(nodes[2])["storage"]["keys"]
    return {"ops_s": r["ops_s"], "p50": r["p50_us"], "p99": r["p99_us"], "errors": r["errors"],
            "left_after": left}


def med(xs):
    return statistics.median(xs)


def refill_figures(args, nodes, res):
    nodes[1].restart(timeout=UP_S)
    wait_agreed(nodes)
    b = stats(nodes[1])["antientropy"]["tree_build_ms"]
    res["build"].append(b)
    print(f"tree build at start ({args.keys} keys): {b} ms", flush=True)
    wait_in_sync(nodes, args.keys)
    ins = insync_round(nodes, args.insync_s)
    res["insync"].append(ins)
    print("in-sync round: " + "; ".join(
        f"node-{k + 1} {x['rounds']} rounds, {x['cpu_ms']:.1f} CPU ms, {x['bytes']:.0f} B,"
        f" {x['moved']} keys moved" for k, x in enumerate(ins)), flush=True)
    for label, budget in (("def", (50000, "32MiB")), ("off", (100000000, "0B"))):
        set_budget(nodes, *budget)
        r = refill(nodes, args.keys, label)
        res[label].append(r)
        print(f"refill, budget {'default' if label == 'def' else 'off'}: {r['s']:.1f} s,"
              f" {r['keys_s']:.0f} keys/s, {r['mb_s']:.1f} MB/s of values,"
              f" {r['wire_mb_s']:.1f} MB/s on the wire (AE bytes), cores "
              + " ".join(f"{x:.2f}" for x in r["cores"]), flush=True)
        wait_in_sync(nodes, args.keys)


def latency_figures(args, nodes, res, budget):
    """Workload a in sync, then during the refill of node-3 at budget.
    A first run is discarded: after a bulk write (the preload, a refill)
    the nodes' background work (index files, merges) raises the p99 of the
    next run several times over, with anti-entropy on or off alike."""
    set_budget(nodes, budget, "32MiB")
    for label, rep in (("warm-up", False), ("lat0", False), ("lat1", True)):
        r = latency(args, nodes, args.keys, rep)
        if label != "warm-up":
            res[label].setdefault(budget, []).append(r)
        print(f"workload a {label:7s} {'repair at %d/s' % budget if rep else 'in sync':18s}: "
              f"{r['ops_s']:.0f} ops/s, p50 {r['p50']:.0f} us, p99 {r['p99']:.0f} us, errors "
              f"{r['errors']}, node-3 still missing {r['left_after']} keys after", flush=True)
    set_budget(nodes, 100000000, "0B")
    wait_in_sync(nodes, args.keys)


def wiped_without_ae(args, nodes, res):
    """Workload a with node-3 wiped and anti-entropy off (read repair alone
    refills what is read): what the wiped node costs by itself."""
    set_enabled(nodes, False)
    r = latency(args, nodes, args.keys, True)
    res["lat2"].append(r)
    print(f"workload a lat2    wiped, no anti-entropy: {r['ops_s']:.0f} ops/s, p50 {r['p50']:.0f}"
          f" us, p99 {r['p99']:.0f} us, errors {r['errors']}, node-3 still missing "
          f"{r['left_after']} keys after", flush=True)
    set_enabled(nodes, True)
    set_budget(nodes, 100000000, "0B")
    wait_in_sync(nodes, args.keys)


def print_refill_medians(args, res):
    print(f"plain copy {med(res['copy']):.0f} keys/s")
    print(f"tree build at start, {args.keys} keys: {med(res['build']):.0f} ms")
    for k in range(3):
        print(f"in-sync round node-{k + 1}: "
              f"{med([x[k]['cpu_ms'] for x in res['insync']]):.1f} CPU ms, "
              f"{med([x[k]['bytes'] for x in res['insync']]):.0f} B")
    for label in ("def", "off"):
        rs = res[label]
        print(f"refill budget {label}: {med([r['s'] for r in rs]):.1f} s, "
              f"{med([r['keys_s'] for r in rs]):.0f} keys/s "
              f"({med([r['keys_s'] for r in rs]) / med(res['copy']):.2f}x plain copy), "
              f"{med([r['mb_s'] for r in rs]):.1f} MB/s, cores "
              + " ".join(f"{med([r['cores'][k] for r in rs]):.2f}" for k in range(3)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="latency runs, s")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--insync-s", type=float, default=10.0)
    ap.add_argument("--budgets", default="50000",
                    help="max_keys_per_second values (per node) of the latency runs, e.g. 50000,10000")
    ap.add_argument("--only", choices=("latency",), help="skip the refill and round figures")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.ringkvd = os.path.join(args.build, "src", "ringkvd")
    args.kvctl = os.path.join(args.build, "src", "kvctl")
    tmp = tempfile.mkdtemp(prefix="ringkv-ae-bench-")
    c = Cluster(Path(tmp), args.ringkvd, args.kvctl, overrides=dict(CONFIG))
    res = {"copy": [], "build": [], "insync": [], "def": [], "off": [], "lat0": {}, "lat1": {},
           "lat2": []}
    try:
        nodes = c.start(3, timeout=UP_S)
        wait_agreed(nodes)
        t0 = time.monotonic()
        kvctl_bench(args, [nodes[0].client_addr], [n.pid for n in nodes],
                    ["--workload", "c", "--duration", "1s", "--clients", "32", "--keys",
                     str(args.keys)])
        copy_s = time.monotonic() - t0 - 1.0
        res["copy"].append(args.keys / copy_s)
        print(f"plain copy: {args.keys} keys through node-1 in {copy_s:.1f} s = "
              f"{args.keys / copy_s:.0f} keys/s ({args.keys * VALUE_SIZE / copy_s / 1e6:.1f} MB/s"
              " of values, each to 3 replicas)", flush=True)
        wait_in_sync(nodes, args.keys)
        budgets = [int(b) for b in args.budgets.split(",")]
        for i in range(args.rounds):
            print(f"-- run {i + 1}/{args.rounds}", flush=True)
            if args.only != "latency":
                refill_figures(args, nodes, res)
            for b in budgets:
                latency_figures(args, nodes, res, b)
            wiped_without_ae(args, nodes, res)
        print("\n== medians")
        if args.only != "latency":
            print_refill_medians(args, res)
        for b in budgets:
            base, rep = res["lat0"][b], res["lat1"][b]
            ratio = {k: med([y[k] / x[k] for x, y in zip(base, rep)]) for k in ("ops_s", "p50", "p99")}
            print(f"workload a during a repair at {b} keys/s per node / in sync: ops/s "
                  f"{ratio['ops_s']:.2f}x, p50 {ratio['p50']:.2f}x, p99 {ratio['p99']:.2f}x "
                  f"(in sync p99 {med([x['p99'] for x in base]):.0f} us; target p99 <= 1.5x at "
                  "the default budget, 50000)")
        base = res["lat0"][budgets[0]]
        ratio = {k: med([y[k] / x[k] for x, y in zip(base, res["lat2"])]) for k in ("ops_s", "p50", "p99")}
        print(f"workload a with node-3 wiped and anti-entropy off / in sync: ops/s "
              f"{ratio['ops_s']:.2f}x, p50 {ratio['p50']:.2f}x, p99 {ratio['p99']:.2f}x")
    finally:
        c.cleanup()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

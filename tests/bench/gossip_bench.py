#!/usr/bin/env python3
"""Gossip benchmark: membership convergence, gossip traffic, failure
detection and false suspicions of real ringkvd nodes on loopback, started
with tests/cluster/harness.py. It prints figures beside their targets and
exits 0 unless a phase broke (a node failed to start, a wait timed out).

Every node runs with gossip.interval = 200ms, suspect_after = 1s,
dead_after = 2s, node.workers = 1, storage.fsync = "never". Phases:

  convergence  N-1 nodes up and agreed; spawn the N-th; one thread per node
               polls `kvctl members` in a tight loop; convergence = the
               latest first time a node showed N alive (a fresh cluster per
               round, median of --rounds)
  bytes        gossip.bytes_out/bytes_in of every node, 10 s apart, in a
               converged cluster of each size
  detection    3 nodes, kill -9 node-3, poll the other two until both show
               it dead (5 rounds, node-3 restarted in between)
  fp           9 nodes for --fp-duration s; node-5 SIGSTOPped 500 ms, then
               running 1 s, in a loop; count "-> suspect" / "-> dead" lines

See tests/bench/README.md ("Gossip benchmark") for what each figure means.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
sys.dont_write_bytecode = True  # no __pycache__ left in tests/cluster

from harness import Abort, Cluster, wait_for  # noqa: E402

INTERVAL_MS = 200
SUSPECT_AFTER_MS = 1000
DEAD_AFTER_MS = 2000
OVERRIDES = {
    "gossip.interval": f"{INTERVAL_MS}ms",
    "gossip.suspect_after": f"{SUSPECT_AFTER_MS}ms",
    "gossip.dead_after": f"{DEAD_AFTER_MS}ms",
    "node.workers": 1,
    "storage.fsync": "never",
}
TARGETS = {
    "convergence_intervals_15": 3.0,          # at 15 nodes, <=
    "detection_dead_ms": DEAD_AFTER_MS + INTERVAL_MS,  # <=
    "fp_dead": 0,                             # <=
}
DETECT_ROUNDS = 5
FP_NODES = 9
FP_VICTIM = "node-5"
FP_PAUSE_S = SUSPECT_AFTER_MS / 2000.0  # half of suspect_after
FP_RUN_S = 1.0
OUTLIER_INTERVALS = 5  # a convergence round slower than this keeps its logs and views
CONVERGE_TIMEOUT = 30.0  # s; 150 intervals: a wait that long is a failure, not a figure
AGREE_TIMEOUT = 60.0     # s; N-1 nodes agreeing after a cold start of up to 14 daemons


def mono():
    return time.monotonic()


# ---- talking to nodes -------------------------------------------------------

def members(node):
    """The node's `kvctl --json members` object; raises on any failure."""
    r = node.kvctl("--timeout", "1s", "--json", "members", timeout=5)
    if r.rc != 0:
        raise RuntimeError(f"{node.name}: kvctl members exited {r.rc}: {r.err.strip()}")
    return json.loads(r.out)


def state_of(doc, member_id):
    for m in doc["members"]:
        if m["id"] == member_id:
            return m["state"]
    return None


def all_alive(doc, n):
    return doc["counts"]["alive"] == n and len(doc["members"]) == n


def listening(port):
    """True when something listens on TCP port (from /proc/net/tcp*, so no
    connection is made). kvctl against a port nobody listens on waits its
    whole --timeout; checking first keeps a poll of a starting node short."""
    suffix = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(suffix) and parts[3] == "0A":
                        return True
        except FileNotFoundError:
            continue
    return False


class Poller(threading.Thread):
    """Polls one node's member table in a tight loop until observe(doc,
    t_sent, t_answered) returns true or stop is set. Errors (the node not up
    yet, a timeout) count as polls that saw nothing."""

    def __init__(self, node, observe, stop):
        super().__init__(daemon=True, name=f"poll-{node.name}")
        self.node, self.observe, self.stop = node, observe, stop
        self.polls = self.errors = 0
        self.poll_s = []
        self.up = False
        self.done = False
        self.last_error = None
        self.history = []  # (t_answered, ((id, state), ...)) each time the table's states changed

    def run(self):
        while not self.stop.is_set() and not self.done:
            if not self.up:
                if not (self.node.is_running() and listening(self.node.ports["client"])):
                    time.sleep(0.002)
                    continue
                self.up = True
            t0 = mono()
            try:
                doc = members(self.node)
            except Exception as e:  # noqa: BLE001 - counted, the wait's deadline bounds it
                self.errors += 1
                self.last_error = (round(1000 * (mono() - t0)), str(e)[:300])
                continue
            t1 = mono()
            self.polls += 1
            self.poll_s.append(t1 - t0)
            view = tuple((m["id"], m["state"]) for m in doc["members"])
            if not self.history or self.history[-1][1] != view:
                self.history.append((t1, view))
            if self.observe(doc, t0, t1):
                self.done = True


def run_pollers(pollers, stop, until, timeout, what):
    """Start pollers, wait until until() is true (deadline: timeout), stop
    them. Returns the value of until()."""
    for p in pollers:
        p.start()
    try:
        return wait_for(until, timeout, what, interval=0.005)
    finally:
        stop.set()
        for p in pollers:
            p.join(10)


def start_nodes(nodes, timeout):
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(timeout)


def wait_agreed(nodes, n_alive, timeout, what=None):
    """Every node in nodes shows n_alive members alive (and no others)."""
    def agreed():
        for node in nodes:
            if not node.is_running():
                raise Abort(f"{node.name} exited with {node.proc.returncode}")
            if not all_alive(members(node), n_alive):
                return False
        return True
    wait_for(agreed, timeout, what or f"{len(nodes)} nodes to show {n_alive} alive")


def new_cluster(work, label, n):
    """A Cluster under work/label with n nodes added (not started). All are
    added before any starts, so every node's generated config names the same
    replica count and seeds (a differing replica count would be refused)."""
    c = Cluster(work / label, Path(ARGS.ringkvd), Path(ARGS.kvctl), overrides=OVERRIDES)
    for _ in range(n):
        c.add_node()
    return c


def slowest_node(nodes, name):
    return next(x for x in nodes if x.name == name)


def count_lines(nodes, pattern, since=None):
    """{node name: [matching lines]} over the nodes' logs (from the offsets
    in since, if given)."""
    rx = re.compile(pattern)
    out = {}
    for node in nodes:
        lines = node.log_lines(since.get(node.name, 0) if since else 0)
        out[node.name] = [l for l in lines if rx.search(l)]
    return out


# ---- phases -----------------------------------------------------------------

def converge_round(work, n, rnd):
    c = new_cluster(work, f"converge-{n}-r{rnd}", n)
    try:
        nodes = c.nodes
        start_nodes(nodes[:-1], ARGS.start_timeout)
        wait_agreed(nodes[:-1], n - 1, AGREE_TIMEOUT)
        last = nodes[-1]
        seen = {}  # node name -> (t_sent, t_answered) of its first poll showing n alive
        t_spawn = [None]

        def observer(node):
            def observe(doc, t0, t1):
                if t_spawn[0] is not None and all_alive(doc, n):
                    seen[node.name] = (t0, t1)
                    return True
                return False
            return observe

        stop = threading.Event()
        pollers = [Poller(node, observer(node), stop) for node in nodes]
        for p in pollers:
            p.start()
        # The old nodes' pollers are in their loop before the spawn.
        wait_for(lambda: all(p.polls > 0 for p in pollers[:-1]), 10, "pollers to start")
        last.start(wait=False)
        t_spawn[0] = mono()  # Popen returns once exec succeeded

        def converged():
            if not last.is_running():
                raise Abort(f"{last.name} exited with {last.proc.returncode}")
            return len(seen) == n
        try:
            wait_for(converged, CONVERGE_TIMEOUT, f"all {n} nodes to show {n} alive", interval=0.005)
        finally:
            stop.set()
            for p in pollers:
                p.join(10)
        per_node = {name: round(1000 * (t1 - t_spawn[0]), 1) for name, (t0, t1) in seen.items()}
        lower = {name: round(1000 * max(0.0, t0 - t_spawn[0]), 1) for name, (t0, t1) in seen.items()}
        poll_ms = [1000 * s for p in pollers for s in p.poll_s]
        errors = {p.node.name: {"errors": p.errors, "last": p.last_error} for p in pollers if p.errors}
        slowest = max(per_node, key=per_node.get)
        late = count_lines(nodes, r"ms late")
        slow = next(p for p in pollers if p.node.name == slowest)
        outlier = None
        if max(per_node.values()) > OUTLIER_INTERVALS * INTERVAL_MS:
            # Keep the evidence: what the slowest node showed, and when, and
            # its gossip log lines (the cluster dir stays too).
            outlier = {
                "dir": str(c.base),
                "slowest_views": [(round(1000 * (t - t_spawn[0]), 1), " ".join(f"{i}={s}" for i, s in v))
                                  for t, v in slow.history],
                "slowest_gossip_log": [l for l in slowest_node(nodes, slowest).log_lines() if "gossip" in l],
            }
            KEEP.append(f"convergence outlier n={n} round {rnd}: {c.base}")
        return {
            "outlier": outlier,
            "ms": max(per_node.values()),
            "ms_lower_bound": max(lower.values()),
            "slowest": slowest,
            "new_node_ms": per_node[last.name],
            "per_node_ms": per_node,
            "poll_ms_median": round(statistics.median(poll_ms), 2) if poll_ms else None,
            "poll_ms_max": round(max(poll_ms), 1) if poll_ms else None,
            "poll_errors": errors,
            "polls": sum(p.polls for p in pollers),
            "lag_warnings": sum(len(v) for v in late.values()),
        }, c
    except BaseException:
        c.cleanup()
        raise


def measure_bytes(c, n):
    """Traffic of a converged cluster of n nodes over ARGS.bytes_window s."""
    nodes = c.nodes
    wait_agreed(nodes, n, AGREE_TIMEOUT)
    # Steady state: every table agrees (answers then carry only the
    # answerer's own entry, not the whole table).
    wait_for(lambda: len({members(x)["digest"] for x in nodes}) == 1, AGREE_TIMEOUT,
             "all member digests to agree")
    first = {}
    for x in nodes:
        d = members(x)
        first[x.name] = (mono(), d["gossip"])
    time.sleep(ARGS.bytes_window)  # the measurement window itself, not a synchronisation
    per = {}
    for x in nodes:
        d = members(x)
        t, g = mono(), d["gossip"]
        t0, g0 = first[x.name]
        dt = t - t0
        out = (g["bytes_out"] - g0["bytes_out"]) / dt
        inn = (g["bytes_in"] - g0["bytes_in"]) / dt
        per[x.name] = {"out_per_s": out, "in_per_s": inn, "total_per_s": out + inn,
                       "surveys_per_s": (g["surveys"] - g0["surveys"]) / dt,
                       "answers_per_s": (g["answers"] - g0["answers"]) / dt,
                       "all_alive": all_alive(d, n)}
    tot = [v["total_per_s"] for v in per.values()]
    outs = [v["out_per_s"] for v in per.values()]
    ins = [v["in_per_s"] for v in per.values()]
    return {
        "window_s": ARGS.bytes_window,
        "total_per_s_mean": statistics.mean(tot), "total_per_s_max": max(tot),
        "out_per_s_mean": statistics.mean(outs), "out_per_s_max": max(outs),
        # Every byte sent is received by some node: sum(in)/sum(out) near 1
        # means the counters agree with each other.
        "in_over_out": sum(ins) / sum(outs) if sum(outs) else None,
        "surveys_per_s_mean": statistics.mean(v["surveys_per_s"] for v in per.values()),
        "answers_per_s_mean": statistics.mean(v["answers_per_s"] for v in per.values()),
        "still_all_alive": all(v["all_alive"] for v in per.values()),
        "per_node": {k: {kk: round(vv, 1) if isinstance(vv, float) else vv for kk, vv in v.items()}
                     for k, v in per.items()},
    }


def phase_convergence_and_bytes(work, results, do_conv, do_bytes):
    for n in ARGS.sizes:
        rounds = []
        if do_conv:
            for rnd in range(1, ARGS.rounds + 1):
                try:
                    r, c = converge_round(work, n, rnd)
                except Exception as e:  # noqa: BLE001 - reported, the other rounds still run
                    fail(f"convergence n={n} round {rnd}: {e}")
                    continue
                rounds.append(r)
                print(f"convergence n={n:<2} round {rnd}: {r['ms']:7.1f} ms "
                      f"({r['ms'] / INTERVAL_MS:.2f} intervals; lower bound {r['ms_lower_bound']:.1f} ms)"
                      f"  slowest {r['slowest']}, new node itself {r['new_node_ms']:.1f} ms,"
                      f" poll {r['poll_ms_median']} ms (max {r['poll_ms_max']}),"
                      f" lag warnings {r['lag_warnings']}", flush=True)
                if r["poll_errors"]:
                    print(f"  failed polls: {r['poll_errors']}", flush=True)
                if r["outlier"]:
                    print(f"  OUTLIER: what {r['slowest']} showed (ms after the spawn: states):")
                    for t, v in r["outlier"]["slowest_views"]:
                        print(f"    {t:9.1f}  {v}")
                    print("  its gossip log lines:")
                    for line in r["outlier"]["slowest_gossip_log"][-30:]:
                        print(f"    {line}")
                last_round = rnd == ARGS.rounds
                bytes_then_cleanup(c, n, results, measure=last_round and do_bytes)
            if rounds:
                ms = [r["ms"] for r in rounds]
                med = statistics.median(ms)
                results["convergence"][str(n)] = {
                    "rounds_ms": ms, "median_ms": med, "median_intervals": med / INTERVAL_MS,
                    "rounds": rounds}
        if do_bytes and not do_conv:
            c = new_cluster(work, f"bytes-{n}", n)
            try:
                start_nodes(c.nodes, ARGS.start_timeout)
            except Exception as e:  # noqa: BLE001
                fail(f"bytes n={n}: {e}")
                c.cleanup()
                continue
            bytes_then_cleanup(c, n, results, measure=True)


def bytes_then_cleanup(c, n, results, measure):
    """Measure the steady-state gossip bytes of a running cluster (if
    measure), then stop every process of it."""
    try:
        if measure:
            results["bytes"][str(n)] = measure_bytes(c, n)
            print_bytes_line(n, results["bytes"][str(n)])
    except Exception as e:  # noqa: BLE001
        fail(f"bytes n={n}: {e}")
    finally:
        c.cleanup()


def print_bytes_line(n, b):
    print(f"bytes n={n:<2}: (out+in)/s per node mean {b['total_per_s_mean']:.0f} max {b['total_per_s_max']:.0f},"
          f" out/s mean {b['out_per_s_mean']:.0f} max {b['out_per_s_max']:.0f},"
          f" sum(in)/sum(out) {b['in_over_out']:.3f}", flush=True)


def detection_round(c, rnd):
    a, b, victim = c.nodes
    first = {}  # (observer, state) -> t_answered
    pre = members(a)
    silent_ms = next(m["last_heard_ms"] for m in pre["members"] if m["id"] == victim.name)

    def observer(node):
        def observe(doc, t0, t1):
            st = state_of(doc, victim.name)
            if t_kill[0] is None:
                return False
            if st in ("suspect", "dead"):
                first.setdefault((node.name, "suspect"), t1)
            if st == "dead":
                first.setdefault((node.name, "dead"), t1)
                return True
            return False
        return observe

    t_kill = [None]
    stop = threading.Event()
    pollers = [Poller(x, observer(x), stop) for x in (a, b)]
    for p in pollers:
        p.start()
    wait_for(lambda: all(p.polls > 0 for p in pollers), 10, "pollers to start")
    t_kill[0] = mono()
    victim.kill()
    try:
        wait_for(lambda: all(p.done for p in pollers), 15, f"{a.name} and {b.name} to show {victim.name} dead",
                 interval=0.005)
    finally:
        stop.set()
        for p in pollers:
            p.join(10)
    ms = lambda t: round(1000 * (t - t_kill[0]), 1)  # noqa: E731
    dead = {x.name: ms(first[(x.name, "dead")]) for x in (a, b)}
    susp = {x.name: ms(first[(x.name, "suspect")]) for x in (a, b)}
    # A poll that first shows "dead" also stands for the suspicion (it was
    # missed between two polls): flag it.
    missed = [x.name for x in (a, b) if first[(x.name, "suspect")] == first[(x.name, "dead")]]
    r = {"both_dead_ms": max(dead.values()), "first_suspect_ms": min(susp.values()),
         "dead_ms": dead, "suspect_ms": susp, "silent_before_kill_ms": silent_ms,
         "suspect_poll_missed": missed}
    print(f"detection round {rnd}: first suspect {r['first_suspect_ms']:7.1f} ms, both dead "
          f"{r['both_dead_ms']:7.1f} ms  (per node dead {dead}; {victim.name} silent "
          f"{silent_ms} ms at the kill)", flush=True)
    return r


def phase_detection(work, results):
    c = new_cluster(work, "detection", 3)
    rounds = []
    try:
        start_nodes(c.nodes, ARGS.start_timeout)
        wait_agreed(c.nodes, 3, AGREE_TIMEOUT)
        victim = c.nodes[2]
        for rnd in range(1, DETECT_ROUNDS + 1):
            rounds.append(detection_round(c, rnd))
            victim.start(wait=True, timeout=ARGS.start_timeout)
            wait_agreed(c.nodes, 3, AGREE_TIMEOUT, "node-3 back and all 3 alive")
    except Exception as e:  # noqa: BLE001
        fail(f"detection: {e}")
    finally:
        c.cleanup()
    if rounds:
        dead = [r["both_dead_ms"] for r in rounds]
        susp = [r["first_suspect_ms"] for r in rounds]
        results["detection"] = {"both_dead_ms": dead, "first_suspect_ms": susp,
                                "both_dead_ms_median": statistics.median(dead),
                                "first_suspect_ms_median": statistics.median(susp),
                                "rounds": rounds}


def phase_fp(work, results):
    c = new_cluster(work, "fp", FP_NODES)
    victim = next(x for x in c.nodes if x.name == FP_VICTIM)
    pauses = 0
    try:
        start_nodes(c.nodes, ARGS.start_timeout)
        wait_agreed(c.nodes, FP_NODES, AGREE_TIMEOUT)
        marks = {x.name: x.log_mark() for x in c.nodes}
        end = mono() + ARGS.fp_duration
        print(f"fp: {FP_NODES} nodes, {FP_VICTIM} paused {1000 * FP_PAUSE_S:.0f} ms then running "
              f"{1000 * FP_RUN_S:.0f} ms, for {ARGS.fp_duration:g} s", flush=True)
        try:
            while mono() < end:
                # Deliberate timed actions: the pause and the run between.
                victim.pause()
                pauses += 1
                time.sleep(FP_PAUSE_S)
                victim.resume()
                time.sleep(FP_RUN_S)
        finally:
            victim.resume()
        wait_agreed(c.nodes, FP_NODES, AGREE_TIMEOUT, f"all {FP_NODES} alive after the pauses")
        dead = count_lines(c.nodes, r"-> dead")
        susp = count_lines(c.nodes, r"-> suspect")
        dead_loop = count_lines(c.nodes, r"-> dead", marks)
        susp_loop = count_lines(c.nodes, r"-> suspect", marks)
        refuted = count_lines(c.nodes, r"refuted a suspicion", marks)
        late = count_lines(c.nodes, r"ms late", marks)
        flat = lambda d: [f"{k}: {l}" for k, v in d.items() for l in v]  # noqa: E731
        results["fp"] = {
            "duration_s": ARGS.fp_duration, "pauses": pauses,
            "dead_lines": sum(map(len, dead.values())),
            "suspect_lines": sum(map(len, susp.values())),
            "dead_lines_during_pauses": sum(map(len, dead_loop.values())),
            "suspect_lines_during_pauses": sum(map(len, susp_loop.values())),
            "refuted_lines": sum(map(len, refuted.values())),
            "lag_warnings": {k: len(v) for k, v in late.items() if v},
            "examples": (flat(dead) + flat(susp))[:20],
            "lag_examples": flat(late)[:5],
        }
    except Exception as e:  # noqa: BLE001
        fail(f"fp: {e}")
    finally:
        victim.resume()
        c.cleanup()


# ---- reporting --------------------------------------------------------------

FAILURES = []
KEEP = []  # reasons to keep the temp dir although nothing failed


def fail(msg):
    FAILURES.append(msg)
    print(f"ERROR {msg}", flush=True)


def ok(value, limit):
    return "ok" if value <= limit else "MISSED"


def report(results):
    print("\n== gossip benchmark: interval 200ms, suspect_after 1s, dead_after 2s, workers 1")
    conv = results["convergence"]
    if conv:
        print("\nconvergence: spawn of the N-th node -> every node shows N alive (median of rounds)")
        print(f"  {'nodes':>5}  {'median ms':>9}  {'intervals':>9}  {'rounds ms':<30} target")
        for n, v in conv.items():
            tgt = ""
            if n == "15":
                tgt = f"<= {TARGETS['convergence_intervals_15']:g} intervals: " + \
                      ok(v["median_intervals"], TARGETS["convergence_intervals_15"])
            rs = " ".join(f"{x:.0f}" for x in v["rounds_ms"])
            print(f"  {n:>5}  {v['median_ms']:9.1f}  {v['median_intervals']:9.2f}  {rs:<30} {tgt}")
    byt = results["bytes"]
    if byt:
        print(f"\ngossip bytes per node per second, steady state, {ARGS.bytes_window:g} s window")
        print(f"  {'nodes':>5}  {'(out+in)/s mean':>15}  {'max':>8}  {'out/s mean':>10}  {'max':>8}  "
              f"{'in/out':>6}  surveys/s")
        for n, v in byt.items():
            print(f"  {n:>5}  {v['total_per_s_mean']:15.0f}  {v['total_per_s_max']:8.0f}  "
                  f"{v['out_per_s_mean']:10.0f}  {v['out_per_s_max']:8.0f}  {v['in_over_out']:6.3f}  "
                  f"{v['surveys_per_s_mean']:.2f}")
    det = results["detection"]
    if det:
        lim = TARGETS["detection_dead_ms"]
        print("\ndetection of kill -9 of node-3 (3 nodes)")
        print(f"  first suspect ms: {' '.join(f'{x:.0f}' for x in det['first_suspect_ms'])}"
              f"   median {det['first_suspect_ms_median']:.0f}")
        print(f"  both dead ms:     {' '.join(f'{x:.0f}' for x in det['both_dead_ms'])}"
              f"   median {det['both_dead_ms_median']:.0f}   target <= {lim} ms: "
              f"{ok(det['both_dead_ms_median'], lim)} (worst round {max(det['both_dead_ms']):.0f}: "
              f"{ok(max(det['both_dead_ms']), lim)})")
    fp = results["fp"]
    if fp:
        print(f"\nfalse positives: {FP_NODES} nodes, {FP_VICTIM} paused {1000 * FP_PAUSE_S:.0f} ms "
              f"every {1000 * (FP_PAUSE_S + FP_RUN_S):.0f} ms for {fp['duration_s']:g} s")
        print(f"  pauses {fp['pauses']}   '-> suspect' lines {fp['suspect_lines']} "
              f"(during the pauses {fp['suspect_lines_during_pauses']})   '-> dead' lines "
              f"{fp['dead_lines']} (during the pauses {fp['dead_lines_during_pauses']})   target 0 dead: "
              f"{ok(fp['dead_lines'], TARGETS['fp_dead'])}")
        print(f"  refutations {fp['refuted_lines']}   lag warnings {fp['lag_warnings'] or 0}")
        for line in fp["examples"]:
            print(f"    {line}")
    if FAILURES:
        print("\nERRORS:")
        for f in FAILURES:
            print(f"  {f}")


def default_build():
    build = os.environ.get("RINGKV_BUILD")
    return Path(build) if build else ROOT / "build" / "release"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="3,9,15", help="cluster sizes for convergence and bytes")
    ap.add_argument("--rounds", type=int, default=3, help="convergence rounds per size")
    ap.add_argument("--fp-duration", type=float, default=300.0, help="seconds of pauses (fp)")
    ap.add_argument("--only", default="convergence,bytes,detection,fp",
                    help="comma list of phases: convergence,bytes,detection,fp")
    ap.add_argument("--json", action="store_true", help="also print one JSON line with all figures")
    ap.add_argument("--build", type=Path, default=default_build(),
                    help="build tree with src/ringkvd and src/kvctl ($RINGKV_BUILD, build/release)")
    ap.add_argument("--bytes-window", type=float, default=10.0, help="seconds between byte samples")
    ap.add_argument("--start-timeout", type=float, default=90.0,
                    help="seconds for each node to answer `kvctl health` after a start")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) even on success")
    a = ap.parse_args()
    a.sizes = [int(x) for x in a.sizes.split(",") if x]
    a.only = {x.strip() for x in a.only.split(",") if x.strip()}
    bad = a.only - {"convergence", "bytes", "detection", "fp"}
    if bad or any(n < 2 for n in a.sizes) or a.rounds < 1:
        ap.error(f"bad --only {sorted(bad)} or --sizes (each >= 2) or --rounds (>= 1)")
    a.ringkvd = a.build / "src" / "ringkvd"
    a.kvctl = a.build / "src" / "kvctl"
    for b in (a.ringkvd, a.kvctl):
        if not os.access(b, os.X_OK):
            ap.error(f"{b} not found: build first (tests/bench/run_gossip_bench.sh does) or pass --build")
    return a


def main():
    global ARGS
    ARGS = parse_args()
    work = Path(tempfile.mkdtemp(prefix="rk_gossip_bench.", dir=os.environ.get("TMPDIR", "/tmp")))
    results = {"config": {**OVERRIDES, "sizes": ARGS.sizes, "rounds": ARGS.rounds,
                          "fp_duration_s": ARGS.fp_duration, "ringkvd": str(ARGS.ringkvd)},
               "targets": TARGETS, "convergence": {}, "bytes": {}, "detection": None, "fp": None}
    t0 = mono()
    try:
        if ARGS.only & {"convergence", "bytes"}:
            phase_convergence_and_bytes(work, results, "convergence" in ARGS.only, "bytes" in ARGS.only)
        if "detection" in ARGS.only:
            phase_detection(work, results)
        if "fp" in ARGS.only:
            phase_fp(work, results)
    except KeyboardInterrupt:
        fail("interrupted")
    results["errors"] = FAILURES
    results["elapsed_s"] = round(mono() - t0, 1)
    report(results)
    print(f"\ntotal time: {results['elapsed_s']:.0f} s")
    for k in KEEP:
        print(f"kept for evidence: {k}")
    if FAILURES or KEEP or ARGS.keep:
        print(f"logs and data kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if ARGS.json:
        print(json.dumps(results))
    return 1 if FAILURES else 0


ARGS = None

if __name__ == "__main__":
    sys.exit(main())

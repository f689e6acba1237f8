#!/usr/bin/env python3
"""Single-node benchmark: ringkvd against the transport ceiling (an NNG rep
echo server) and Redis, in one run, interleaved, medians of several rounds.

Systems, each on a free loopback port:
  echo      tests/bench/echo_server (cooked rep0, 128 contexts)
  rk-int    ringkvd, workers = 2, storage.fsync = "interval"
  rk-sync   ringkvd, workers = 2, storage.fsync = "always"
  redis-es  redis-server, appendonly yes, appendfsync everysec
  redis-al  redis-server, appendonly yes, appendfsync always
Clients: `kvctl bench` (ringkvd; --raw against the echo server) and
`redis-benchmark -r 100000`, both with 32 connections and 100-byte values.
Server CPU per request is read from /proc/PID/stat (utime + stime) before
and after each run. Prints every run, then medians and the ratios the
targets are stated in.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def wait_port(port, proc, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: {what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"bench: {what} did not listen on port {port} within {timeout}s")


class Server:
    def __init__(self, name, argv, port, cwd, env=None):
        self.name, self.port = name, port
        self.log = open(os.path.join(cwd, f"{name}.log"), "w")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env)
        wait_port(port, self.proc, name)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def ringkvd(args, tmp, name, fsync):
    port = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    conf = os.path.join(d, "ringkv.toml")
    with open(conf, "w") as f:
        f.write(f'[node]\nid = "{name}"\ndata_dir = "{d}/data"\nworkers = 2\n'
                f'# the bench client shares the two cores: pinning would fight it\n'
                f'pin_workers = false\n'
                f'[listen]\nclient = "tcp://127.0.0.1:{port}"\n'
                f'[storage]\nfsync = "{fsync}"\n[limits]\nmax_inflight = 100000\n')
    return Server(name, [args.ringkvd, "run", "-c", conf], port, d)


def redis(tmp, name, appendfsync):
    port = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
            "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "",
            "--daemonize", "no", "--protected-mode", "yes"]
    return Server(name, argv, port, d)


def kvctl_bench(args, srv, extra):
    argv = [args.kvctl, "-a", f"tcp://127.0.0.1:{srv.port}", "--json", "bench", "--clients",
            str(args.clients), "--duration", f"{args.duration}s", "--value-size", "100",
            "--keys", "100000"] + extra  # a later --duration in extra wins
    c0 = cpu_seconds(srv.proc.pid)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(srv.proc.pid) - c0
    r = json.loads(out.strip().splitlines()[-1])
    ops = r["ops"]
    return {"ops_s": r["ops_per_s"], "p50_us": r["latency_us"]["p50"],
            "p99_us": r["latency_us"]["p99"], "cpu_us": 1e6 * cpu / max(ops, 1),
            "errors": sum(r.get("errors", {}).values())}


def redis_bench(args, srv, test):
    n = args.redis_requests
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(srv.port), "-c", str(args.clients),
            "-d", "100", "-r", "100000", "-n", str(n), "-t", test, "--csv"]
    c0 = cpu_seconds(srv.proc.pid)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(srv.proc.pid) - c0
    rows = [l.replace('"', "").split(",") for l in out.strip().splitlines()]
    head, row = rows[0], rows[1]
    v = dict(zip(head, row))
    return {"ops_s": float(v["rps"]), "p50_us": 1000 * float(v["p50_latency_ms"]),
            "p99_us": 1000 * float(v["p99_latency_ms"]), "cpu_us": 1e6 * cpu / n, "errors": 0}


def puts_per_fsync(args, srv):
    out = subprocess.run([args.kvctl, "-a", f"tcp://127.0.0.1:{srv.port}", "--json", "stats"],
                         capture_output=True, text=True, check=True).stdout
    s = json.loads(out)["storage"]
    return s["synced_puts"] / max(s["fsyncs"], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("RINGKV_BUILD", "build/bench"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--redis-requests", type=int, default=200000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.ringkvd = os.path.join(args.build, "src", "ringkvd")
    args.kvctl = os.path.join(args.build, "src", "kvctl")
    echo_bin = os.path.join(args.build, "tests", "bench", "echo_server")
    tmp = tempfile.mkdtemp(prefix="rk-node-bench-")
    servers = []
    try:
        eport = free_port()
        echo = Server("echo", [echo_bin, f"tcp://127.0.0.1:{eport}"], eport, tmp)
        servers.append(echo)
        rk_int = ringkvd(args, tmp, "rk-int", "interval")
        rk_sync = ringkvd(args, tmp, "rk-sync", "always")
        redis_es = redis(tmp, "redis-es", "everysec")
        redis_al = redis(tmp, "redis-al", "always")
        servers += [rk_int, rk_sync, redis_es, redis_al]
        # Preload the key space once, outside any measurement (kvctl bench
        # preloads missing keys itself, and that would count as GET cost).
        for srv in (rk_int, rk_sync):
            kvctl_bench(args, srv, ["--workload", "c", "--duration", "1s"])
        plan = [
            ("echo", lambda: kvctl_bench(args, echo, ["--raw"])),
            ("ringkv GET", lambda: kvctl_bench(args, rk_int, ["--workload", "c"])),
            ("redis GET", lambda: redis_bench(args, redis_es, "get")),
            ("ringkv PUT interval", lambda: kvctl_bench(args, rk_int, ["--workload", "w"])),
            ("redis SET everysec", lambda: redis_bench(args, redis_es, "set")),
            ("ringkv PUT always", lambda: kvctl_bench(args, rk_sync, ["--workload", "w"])),
            ("redis SET always", lambda: redis_bench(args, redis_al, "set")),
        ]
        results = {name: [] for name, _ in plan}
        for rnd in range(args.rounds):
            for name, run in plan:
                r = run()
                results[name].append(r)
                print(f"round {rnd + 1} {name:22s} {r['ops_s']:>10.0f} ops/s  p50 {r['p50_us']:>7.0f} us"
                      f"  p99 {r['p99_us']:>7.0f} us  cpu/req {r['cpu_us']:6.1f} us"
                      f"  errors {r['errors']}", flush=True)
        ppf = puts_per_fsync(args, rk_sync)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in results.items()}
    print(f"\nmedians of {args.rounds} rounds, {args.clients} clients, 100 B values:")
    for n, m in med.items():
        print(f"  {n:22s} {m['ops_s']:>10.0f} ops/s  p50 {m['p50_us']:>7.0f} us  p99 {m['p99_us']:>7.0f} us"
              f"  cpu/req {m['cpu_us']:6.1f} us")
    ratio = lambda a, b: med[a]["ops_s"] / med[b]["ops_s"]
    checks = [
        ("GET / echo", ratio("ringkv GET", "echo"), 0.85),
        ("GET / redis GET", ratio("ringkv GET", "redis GET"), 0.5),
        ("PUT interval / echo", ratio("ringkv PUT interval", "echo"), 0.85),
        ("PUT interval / redis SET everysec", ratio("ringkv PUT interval", "redis SET everysec"), 0.5),
        ("PUT always / redis SET always", ratio("ringkv PUT always", "redis SET always"), 0.8),
        ("puts per fdatasync (always)", ppf, 6.0),
        ("CPU per GET / echo CPU per req (lower is better)",
         med["ringkv GET"]["cpu_us"] / med["echo"]["cpu_us"], 1.3),
    ]
    print("\nratios:")
    for name, v, target in checks:
        ok = v <= target if "lower" in name else v >= target
        print(f"  {name:50s} {v:6.2f}   target {'<=' if 'lower' in name else '>='} {target}: "
              f"{'ok' if ok else 'MISSED'}")
    if args.json:
        print(json.dumps({"medians": med, "ratios": {n: v for n, v, _ in checks}}))


if __name__ == "__main__":
    main()

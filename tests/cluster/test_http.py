"""HTTP (listen.http), black-box: /metrics, /health and /ready of real
ringkvd processes on loopback, checked with urllib, promtool, and a real
Prometheus server scraping a 3-node cluster.

/metrics is the Prometheus text format 0.0.4 (promtool must accept it) and
its figures are the ones `kvctl stats` reads: they move with traffic.
/health and /ready answer 200 or 503 with a one-line reason, by the same
rules as `kvctl health` and `kvctl ready`. A listen.http that is not
HOST:PORT or http://HOST:PORT is refused by check-config and at start;
"" means nothing listens.

Needs /usr/bin/promtool and /usr/bin/prometheus (Debian package
`prometheus`, in packaging/deps.sh): missing, the tests fail.

Gossip every 200 ms, suspect after 1 s, dead after 2 s: every wait is a
poll bounded by those plus slack for slow (sanitizer) builds.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import free_port, http_get, metric_samples, scrape, wait_for

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
SLACK_S = 20
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"


def http_node(cluster, overrides=None):
    port = free_port()
    node = cluster.add_node({"listen.http": f"127.0.0.1:{port}", **(overrides or {})})
    node.http_port = port
    return node


def start_http_cluster(cluster, n):
    cluster.overrides.update(GOSSIP)
    return cluster.launch([http_node(cluster) for _ in range(n)], SLACK_S)


PUT_COUNT = 'ringkv_request_duration_seconds_count{op="put"}'
GET_COUNT = 'ringkv_request_duration_seconds_count{op="get"}'
PUT_OK = 'ringkv_responses_total{op="put",status="ok"}'
GET_MISSING = 'ringkv_responses_total{op="get",status="not_found"}'
FSYNC_COUNT = "ringkv_fsync_duration_seconds_count"
REPLICA_WRITES = 'ringkv_replica_request_duration_seconds_count{op="write"}'
REPLICA_WRITES_OK = 'ringkv_replica_responses_total{op="write",status="ok"}'


def check_histogram(s, name, labels):
    """Cumulative buckets in order ending in +Inf = _count; _sum in seconds."""
    buckets = [v for k, v in s.items() if k.startswith(f"{name}_bucket{{{labels}le=")]
    assert len(buckets) == 22 and buckets == sorted(buckets), (name, labels, buckets)
    sel = f"{{{labels.rstrip(',')}}}" if labels else ""
    assert buckets[-1] == s[f"{name}_count{sel}"] > 0, (name, labels)
    assert 0 < s[f"{name}_sum{sel}"] < 60, (name, labels)


def test_metrics_pass_promtool_and_move_with_traffic(cluster):
    assert os.access(PROMTOOL, os.X_OK), f"{PROMTOOL} missing: install Debian's prometheus"
    (node,) = start_http_cluster(cluster, 1)
    assert node.http_port in listening_ports(node.pid)  # the check the "" test relies on
    body = scrape(node.http_port)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(), capture_output=True,
                       timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    before = metric_samples(body)
    for name in ("ringkv_requests_total{op=\"put\"}", PUT_COUNT, GET_COUNT, PUT_OK, FSYNC_COUNT,
                 "ringkv_members{state=\"alive\"}", "ringkv_partitions_held", "ringkv_ready",
                 "ringkv_storage_live_bytes", "ringkv_worker_loop_lag_seconds{worker=\"0\"}"):
        assert name in before, name
    assert before["ringkv_members{state=\"alive\"}"] == 1
    assert before["ringkv_ready"] == 1 and before["ringkv_healthy"] == 1

    n = 20
    for i in range(n):
        assert node.kvctl("put", f"k{i}", "v" * 100).rc == 0
    assert node.kvctl("get", "k0").rc == 0
    assert node.kvctl("get", "nosuch").rc == 1

    def moved():
        s = metric_samples(scrape(node.http_port))
        return (s["ringkv_requests_total{op=\"put\"}"] >= before["ringkv_requests_total{op=\"put\"}"] + n
                and s["ringkv_requests_total{op=\"get\"}"] >= 2
                and s[PUT_COUNT] >= n and s[GET_COUNT] >= 2 and s[PUT_OK] >= n
                and s.get(GET_MISSING, 0) >= 1
                and s[FSYNC_COUNT] >= 1 and s["ringkv_storage_keys"] >= n and s)

    after = wait_for(moved, SLACK_S, "put/get counts, results and latency histograms to move")
    for name, labels in (("ringkv_request_duration_seconds", 'op="put",'),
                         ("ringkv_request_duration_seconds", 'op="get",'),
                         ("ringkv_fsync_duration_seconds", "")):
        check_histogram(after, name, labels)
    # Every write was acknowledged after its fdatasync (storage.fsync =
    # "always"): the fsync histogram counts what the fsync counter does.
    assert after[FSYNC_COUNT] == after["ringkv_storage_fsyncs_total"]
    # The same counters as `kvctl stats`: one source of truth.
    st = json.loads(node.kvctl("--json", "stats").out)
    assert st["requests"]["put"] >= after["ringkv_requests_total{op=\"put\"}"]
    assert st["storage"]["keys"] == after["ringkv_storage_keys"]
    assert st["ops"]["put"]["results"]["OK"] >= after[PUT_OK]
    assert st["ops"]["get"]["results"]["NOT_FOUND"] >= 1
    assert st["storage"]["fsync_us"]["count"] >= after[FSYNC_COUNT]


def test_health_and_ready_follow_the_quorum(cluster):
    nodes = start_http_cluster(cluster, 3)  # replicas 3, W 2
    for node in nodes:
        assert http_get(node.http_port, "/health") == (200, "text/plain; charset=utf-8", "ok\n")
        wait_for(lambda: http_get(node.http_port, "/ready")[0] == 200, SLACK_S, "ready")
    # Writes through node-1 reach the other replicas as replica requests
    # (RPUT, alone or batched): each replica times and counts them.
    for i in range(10):
        assert nodes[0].kvctl("put", f"r{i}", "v").rc == 0
    for node in nodes[1:]:
        s = wait_for(lambda: (lambda s: s.get(REPLICA_WRITES_OK, 0) >= 1 and s)(metric_samples(scrape(node.http_port))),
                     SLACK_S, f"{node.name} counting the replica writes it served")
        check_histogram(s, "ringkv_replica_request_duration_seconds", 'op="write",')
    for node in nodes[1:]:
        node.kill()

    def not_ready():
        status, _, body = http_get(nodes[0].http_port, "/ready")
        return status == 503 and body

    body = wait_for(not_ready, SLACK_S, "node-1 /ready 503")
    assert body.endswith("\n") and body.count("\n") == 1, body
    assert "write quorum of 2 (cluster.write_quorum) is unreachable" in body, body
    # The node itself is up: /health stays 200, /metrics says the same.
    assert http_get(nodes[0].http_port, "/health")[0] == 200
    s = metric_samples(scrape(nodes[0].http_port))
    assert s["ringkv_ready"] == 0 and s["ringkv_partitions_without_quorum"] > 0, s
    r = nodes[0].kvctl("ready")
    assert r.rc == 1 and body.strip() in (r.out.decode() + r.err), (r, body)

    for node in nodes[1:]:
        node.start()
    wait_for(lambda: http_get(nodes[0].http_port, "/ready") ==
             (200, "text/plain; charset=utf-8", "ok\n"), SLACK_S, "node-1 /ready 200 again")


def test_bad_listen_http_refused_at_check_config_and_start(cluster):
    for bad in ("127.0.0.1", "tcp://127.0.0.1:7480", "127.0.0.1:0", "http://127.0.0.1:80/metrics"):
        node = cluster.add_node({"listen.http": bad}, name=f"bad-{len(cluster.nodes)}")
        path = node.write_config()
        for argv in (["check-config", str(path)], ["run", "-c", str(path)]):
            r = cluster.run_ringkvd(*argv)
            assert r.rc == 2, r
            last = r.err.strip().splitlines()[-1]
            assert f'listen.http = "{bad}" is not HOST:PORT or http://HOST:PORT' in last, last


def test_bind_failure_refuses_to_start(cluster):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        node = cluster.add_node({"listen.http": f"http://127.0.0.1:{port}"})
        rc = node.start_refused(timeout=SLACK_S)
        assert rc != 0
        lines = [l for l in node.run_log().splitlines() if "listen.http" in l]
        assert lines and "address in use" in lines[-1], node.run_log()


def listening_ports(pid):
    """TCP ports in LISTEN state on sockets process pid holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_empty_listen_http_is_off(cluster):
    (node,) = cluster.start(1)  # the harness sets listen.http = ""
    assert node.config()["listen"]["http"] == ""
    assert listening_ports(node.pid) == {node.ports["client"], node.ports["peer"],
                                         node.ports["gossip"]}


def prom_query(port, q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        j = json.load(r)
    assert j["status"] == "success", j
    return j["data"]["result"]


def test_prometheus_scrapes_a_cluster(cluster, tmp_path):
    assert os.access(PROMETHEUS, os.X_OK), f"{PROMETHEUS} missing: install Debian's prometheus"
    nodes = start_http_cluster(cluster, 3)
    for i in range(10):
        assert nodes[i % 3].kvctl("put", f"p{i}", "v").rc == 0

    # Figures: scrape time (median of 20) and size at 3 nodes.
    times, size = [], 0
    for i in range(20):
        t0 = time.perf_counter()
        size = len(scrape(nodes[i % 3].http_port).encode())
        times.append(time.perf_counter() - t0)
    print(f"\n/metrics at 3 nodes: median scrape {statistics.median(times) * 1000:.2f} ms, "
          f"{size} bytes")

    port = free_port()
    targets = ", ".join(f'"127.0.0.1:{n.http_port}"' for n in nodes)
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                   "scrape_configs:\n  - job_name: ringkv\n"
                   f"    static_configs:\n      - targets: [{targets}]\n")
    data = tmp_path / "prom-data"
    log = open(tmp_path / "prometheus.log", "wb")
    prom = cluster.spawn([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                          f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        def all_up():
            r = prom_query(port, 'up{job="ringkv"} == 1')
            return len(r) == 3 and r

        wait_for(all_up, 60, "Prometheus: up == 1 for the 3 nodes")

        def puts_seen():
            r = prom_query(port, 'sum(ringkv_requests_total{op="put"})')
            return r and float(r[0]["value"][1]) >= 10 and r

        wait_for(puts_seen, 60, "Prometheus: ringkv_requests_total{op=\"put\"} summed >= 10")
        r = prom_query(port, 'ringkv_members{state="alive"}')
        assert len(r) == 3 and all(float(x["value"][1]) == 3 for x in r), r
    finally:
        prom.kill()
        prom.wait(10)
        log.close()
        shutil.rmtree(data, ignore_errors=True)

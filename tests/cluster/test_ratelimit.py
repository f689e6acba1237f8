"""Per-client rate limits (limits.client_rate, limits.client_burst) on a
real node over loopback: two clients from two addresses (127.0.0.1 and
127.0.0.2), one at ten times the rate, one far below it.

The fast client gets RATE_LIMITED, with the ms until its next token, for
what exceeds the burst plus the rate over the time it sent, and no more;
the slow client sees no error. Refusals are counted per address: the top
talkers in `kvctl --json stats` and the same counts in /metrics. SIGHUP
changes the rate live; kvctl reports a refusal in one line, exit 3.

Every wait is a poll with a deadline; the pacing of the clients is theirs,
the node's verdicts are checked against bounds computed from the times the
clients actually sent (a loaded machine sends later, never more)."""

import signal
import struct
import threading
import time

from harness import RK_TAG, RawKV, free_port, metric_samples, node_stats, scrape, wait_for

RATE, BURST = 50, 50
FAST, SLOW = 10 * RATE, RATE // 10  # requests per second each client aims at
SECONDS = 3.0
SLACK_S = 20


def paced(kv, per_s, seconds, prefix):
    """Send PUTs at per_s for seconds; returns (statuses, [retry ms of each
    refusal], [refusal texts], first send, last send)."""
    statuses, retries, texts = [], [], []
    t0 = time.monotonic()
    i = 0
    while True:
        due = t0 + i / per_s
        now = time.monotonic()
        if due - t0 >= seconds:
            break
        if due > now:
            time.sleep(due - now)  # pacing the client, not waiting for the node
        st, f = kv.call("PUT", b"".join((
            struct.pack("<BI", RK_TAG["KEY"], len(k := f"{prefix}{i}".encode())) + k,
            struct.pack("<BI", RK_TAG["VALUE"], 1) + b"v")))
        statuses.append(st)
        if st == "RATE_LIMITED":
            retries.append(struct.unpack("<Q", f[RK_TAG["RETRY_MS"]])[0])
            texts.append(f[RK_TAG["TEXT"]].decode())
        last = time.monotonic()
        i += 1
    return statuses, retries, texts, t0, last


def test_a_fast_client_is_limited_and_a_slow_one_is_not(cluster):
    http = free_port()
    node = cluster.add_node({"limits.client_rate": RATE, "limits.client_burst": BURST,
                             "listen.http": f"127.0.0.1:{http}"})
    node.start()
    slow = {}

    def slow_client():
        with RawKV(node, source="127.0.0.2") as kv:
            slow["r"] = paced(kv, SLOW, SECONDS, "slow-")

    th = threading.Thread(target=slow_client)
    th.start()
    try:
        with RawKV(node, source="127.0.0.1") as kv:
            statuses, retries, texts, t0, t1 = paced(kv, FAST, SECONDS, "fast-")
    finally:
        th.join()

    ok, limited = statuses.count("OK"), statuses.count("RATE_LIMITED")
    assert ok + limited == len(statuses), set(statuses)
    # Tokens: the burst, then RATE per second of the time the client sent.
    most = BURST + RATE * (t1 - t0)
    print(f"fast client: {len(statuses)} sent in {t1 - t0:.2f}s, {ok} ok, {limited} rate limited "
          f"(at most {most:.0f} allowed)")
    assert ok <= most + 1, (ok, most)
    assert ok >= 0.9 * most - 3, (ok, most)  # it got the rate, not less
    assert limited >= len(statuses) - most - 1
    assert all(1 <= r <= 1000 // RATE + 1 for r in retries), sorted(set(retries))
    assert all("127.0.0.1 is over limits.client_rate (50/s, burst 50)" in t for t in texts), texts[0]
    s_statuses = slow["r"][0]
    assert len(s_statuses) >= SLOW * SECONDS - 1 and set(s_statuses) == {"OK"}, s_statuses

    # Counted per address: the same figures in STATS and /metrics.
    j = node_stats(node)["rate_limit"]
    assert (j["client_rate"], j["client_burst"]) == (RATE, BURST), j
    top = {row["address"]: row for row in j["top"]}
    assert j["top"][0]["address"] == "127.0.0.1", j
    assert top["127.0.0.1"]["limited"] == limited, (top, limited)
    # Its requests: the fast ones and kvctl's own STATS just now.
    assert top["127.0.0.1"]["requests"] >= len(statuses), top
    assert top["127.0.0.2"] == {"address": "127.0.0.2", "requests": len(s_statuses), "limited": 0}
    assert j["limited"] == limited
    # Replies by status are published with the workers' other counters
    # (every loop tick): polled until they are in.
    key = 'ringkv_responses_total{op="put",status="rate_limited"}'
    m = wait_for(lambda: (lambda m: m if m.get(key) == limited else None)(metric_samples(scrape(http))),
                 SLACK_S, "the workers' published replies to count the refusals")
    assert m['ringkv_request_failures_total{result="rate_limited"}'] == limited
    assert m['ringkv_rate_limit_top_limited{address="127.0.0.1"}'] == limited
    assert m['ringkv_rate_limit_top_limited{address="127.0.0.2"}'] == 0


def test_sighup_changes_the_rate_and_kvctl_reports_a_refusal(cluster):
    node = cluster.add_node({"limits.client_rate": 1, "limits.client_burst": 1})
    node.start()

    # One token a second, and a client on the same address (127.0.0.1)
    # spending each as it comes: kvctl finds the bucket empty, says so in
    # one line and exits 3 (polled: kvctl may win a token now and then).
    stop = threading.Event()

    def hog():
        with RawKV(node, source="127.0.0.1") as kv:
            while not stop.is_set():
                kv.put(b"hog", b"v")

    th = threading.Thread(target=hog)
    th.start()
    try:
        r = wait_for(lambda: (lambda r: r if r.rc != 0 else None)(node.kvctl("put", "k", "v")),
                     SLACK_S, "kvctl refused over the rate")
    finally:
        stop.set()
        th.join()
    assert r.rc == 3, r
    err = r.err.strip()
    assert "\n" not in err and "rate limited" in err and "retry after" in err, err

    mark = node.log_mark()
    node.set_config({"limits.client_rate": 0})
    node.signal(signal.SIGHUP)
    node.wait_log(lambda l: "reloaded" in l and "limits.client_rate" in l, since=mark,
                  what="a reload naming limits.client_rate")
    with RawKV(node, source="127.0.0.1") as kv:
        got = [kv.put(b"after-%d" % i, b"v") for i in range(200)]
    assert set(got) == {"OK"}, got
    assert node_stats(node)["rate_limit"]["client_rate"] == 0

"""Signals: SIGTERM/SIGINT stop gracefully under load, SIGHUP reloads what
can change live, SIGSTOP/SIGCONT (a frozen node) is survived."""

import re
import signal
import threading
import time

from harness import last_json, log_body, wait_for


def test_sigterm_under_load_exits_0_and_answers_in_flight(cluster):
    (n,) = cluster.start(1, overrides={"storage.fsync": "always"})
    bench = n.kvctl_popen("--json", "--timeout", "1s", "bench", "--clients", "16", "--duration", "15s",
                          "--workload", "a", "--keys", "200")
    # 15 s: long enough that the bench is still running when the SIGTERM goes
    # out even in a slow sanitizer build; it then ends on its own.
    progress = []  # the bench's stderr lines; "bench:   1/15 s ..." once it measures
    reader = threading.Thread(target=lambda: progress.extend(l.decode(errors="replace") for l in bench.stderr))
    reader.start()

    # A put loop beside the bench: every put acknowledged before the stop
    # must be there after a restart (the daemon syncs before it exits).
    acked, other = {}, []
    done = threading.Event()

    def writer():
        i = 0
        while not done.is_set():
            r = n.kvctl("--timeout", "3s", "put", f"t{i}", f"v{i}", timeout=10)
            if r.rc == 0:
                acked[f"t{i}"] = f"v{i}".encode()
            else:
                other.append(r)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        wait_for(lambda: any(re.match(r"bench: +\d+/\d+ s", l) for l in progress), 30,
                 "the bench to report its first measured second")
        wait_for(lambda: len(acked) >= 10, 20, "10 puts acknowledged while the bench runs")
        assert bench.poll() is None, "the bench ended before the SIGTERM"
        t0 = time.monotonic()
        n.signal(signal.SIGTERM)
        rc = n.wait_exit(12)
        took = time.monotonic() - t0
    finally:
        done.set()
        t.join()
    assert rc == 0, f"exit {rc} after SIGTERM under load"
    assert took <= 10.0, f"took {took:.1f}s to exit after SIGTERM"

    try:
        out = bench.stdout.read()
        bench.wait(30)
    finally:
        reader.join(30)
    j = last_json(out)
    assert j["ops"] > 0, f"the bench got no replies: {j} {progress[-3:]}"
    # Requests that were not answered OK must have been refused cleanly
    # (UNAVAILABLE while stopping) or found the node gone; none may hang.
    for r in other:
        assert r.rc == 3, f"a put during shutdown ended with {r}"

    # The data dir reopens and holds every acknowledged put.
    n.start()
    lost = [k for k, v in acked.items() if n.kvctl("get", k).out != v]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged puts missing after SIGTERM: {lost[:10]}"


def test_sigint_exits_0(cluster):
    (n,) = cluster.start(1)
    assert n.kvctl("put", "k", "v").rc == 0
    n.signal(signal.SIGINT)
    assert n.wait_exit(10) == 0
    n.start()
    assert n.kvctl("get", "k").out == b"v"


def busy_count(node):
    """BUSY replies seen by 64 clients for 1 s of reads."""
    _, j = node.bench("--clients", "64", "--duration", "1s", "--workload", "c", "--keys", "200")
    errors = j.get("errors", {})
    # Served: answered other than BUSY (a read of a key whose preload was
    # refused BUSY answers NOT_FOUND, which the bench counts as an error).
    served = j["ops"] + sum(v for k, v in errors.items() if k != "BUSY")
    assert served > 0, j
    return errors.get("BUSY", 0)


def test_sighup_reloads_live_settings_and_names_the_rest(cluster):
    (n,) = cluster.start(1, overrides={"log.level": "info", "limits.max_inflight": 10000,
                                        "storage.fsync": "always"})
    pid = n.pid
    assert busy_count(n) == 0, "BUSY at max_inflight = 10000"

    mark = n.log_mark()
    n.set_config({"log.level": "debug", "limits.max_inflight": 1})
    n.signal(signal.SIGHUP)
    line = n.wait_log(lambda l: "reloaded" in l and "log.level" in l, since=mark,
                      what="an 'info server: reloaded: ...' line naming log.level")
    assert "limits.max_inflight" in line, f"reload line does not name limits.max_inflight: {line!r}"
    assert log_body(line).startswith("info "), line
    # The new limit is live: now the same load gets BUSY.
    assert busy_count(n) > 0, "no BUSY after reloading max_inflight = 1"

    # Back to the start-up values, plus a key that cannot change live. The
    # change is measured against the running settings, not the start-up ones.
    mark = n.log_mark()
    n.set_config({"log.level": "info", "limits.max_inflight": 10000, "storage.fsync": "interval"})
    n.signal(signal.SIGHUP)
    line = n.wait_log(lambda l: "need a restart" in l, since=mark,
                      what="a 'warn server: reload: ... need a restart' line")
    assert "storage.fsync" in line and log_body(line).startswith("warn "), line
    line = n.wait_log(lambda l: "reloaded" in l, since=mark, what="an 'info server: reloaded' line")
    assert "limits.max_inflight" in line and "log.level" in line, \
        f"reloading max_inflight 1 -> 10000 and log.level debug -> info logged {line!r}"
    assert busy_count(n) == 0, "still BUSY after reloading max_inflight back to 10000"

    # Still the same process, still serving.
    assert n.pid == pid and n.is_running()
    assert n.kvctl("put", "k", "after-reload").rc == 0
    assert n.kvctl("get", "k").out == b"after-reload"


def test_sighup_with_a_broken_config_keeps_running(cluster):
    (n,) = cluster.start(1)
    mark = n.log_mark()
    n.config_path.write_text(n.config_path.read_text() + "\n[limits\n")
    n.signal(signal.SIGHUP)
    n.wait_log(str(n.config_path), since=mark, what="a log line naming the broken config file")
    assert n.is_running()
    assert n.kvctl("put", "k", "v").rc == 0 and n.kvctl("get", "k").out == b"v"
    # A later good reload still works.
    mark = n.log_mark()
    n.set_config({"log.level": "debug"})
    n.signal(signal.SIGHUP)
    n.wait_log(lambda l: "reloaded" in l and "log.level" in l, since=mark)


def test_frozen_node_times_out_then_recovers(cluster):
    (n,) = cluster.start(1)
    assert n.kvctl("put", "k", "v").rc == 0
    n.pause()
    try:
        t0 = time.monotonic()
        r = n.kvctl("--timeout", "1s", "get", "k")
        assert r.rc == 3, f"a frozen node must give exit 3: {r}"
        assert time.monotonic() - t0 < 2.5
        assert n.client_addr in r.err, r
    finally:
        n.resume()
    wait_for(lambda: n.kvctl("--timeout", "1s", "get", "k").out == b"v", 10, "the node to answer after SIGCONT")
    assert n.kvctl("health").rc == 0


def test_sighup_back_to_the_startup_value_applies(cluster):
    """Regression: reload compared the file with the start-up config, so
    putting a live setting back to its start-up value logged "nothing
    changed" and left the reloaded value in force."""
    (n,) = cluster.start(1, overrides={"limits.max_inflight": 10000})
    for value, want_busy in ((1, True), (10000, False)):
        mark = n.log_mark()
        n.set_config({"limits.max_inflight": value})
        n.signal(signal.SIGHUP)
        line = n.wait_log(lambda l: "reloaded" in l, since=mark, what="a 'reloaded' line")
        assert "limits.max_inflight" in line, f"max_inflight -> {value} logged {line!r}"
        busy = busy_count(n)
        assert (busy > 0) == want_busy, f"max_inflight = {value} after SIGHUP: {busy} BUSY replies"

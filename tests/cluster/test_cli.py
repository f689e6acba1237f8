"""ringkvd and kvctl as a shell user meets them: log line formats (text,
JSON, journald), address forms and a refused connection, help and
versions, get's output, error lines, join where nothing answers, bench's
key prefix, and the config keys that are refused until implemented."""

import json
import os
import re
import signal
import time

from harness import free_port, wait_for

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TEXT_LINE = re.compile(TS + r" (debug|info|warn|error) [a-z_-]+: ")


def node_lines(node):
    """The current run's lines written by ringkvd (not the harness's)."""
    return [l for l in node.run_log().splitlines() if l and not l.startswith("==== harness:")]


# ---- logs ------------------------------------------------------------------

def test_text_log_lines_start_with_a_utc_timestamp(cluster):
    (n,) = cluster.start(1)
    lines = node_lines(n)
    assert lines, "no log lines"
    bad = [l for l in lines if not TEXT_LINE.match(l)]
    assert not bad, f"lines without 'TIMESTAMP level component:': {bad[:5]}"
    # The timestamp is now, in UTC.
    stamp = TEXT_LINE.match(lines[-1]).group(0)[:19]
    then = time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) - time.mktime(time.gmtime(0))
    assert abs(then - time.time()) < 120, (stamp, time.time())


def test_json_log_format_and_reload(cluster):
    n = cluster.add_node({"log.format": "json"})
    n.start()
    objs = [json.loads(l) for l in node_lines(n)]  # every line is one JSON object
    assert objs and all(set(o) == {"ts", "level", "component", "msg"} for o in objs), objs[:3]
    assert all(re.fullmatch(TS, o["ts"]) for o in objs), objs[:3]
    assert any(o["component"] == "server" and o["msg"].startswith("ready ") for o in objs), objs
    # log.format is live: SIGHUP back to text, and the next lines are text.
    n.set_config({"log.format": "text"})
    mark = n.log_mark()
    n.signal(signal.SIGHUP)
    line = n.wait_log("reloaded:", since=mark)
    assert TEXT_LINE.match(line) and "log.format" in line, line


def test_journal_lines_carry_the_priority_and_no_timestamp(cluster):
    n = cluster.add_node()
    n.log_path.touch()
    st = os.stat(n.log_path)  # the harness sends stderr to this file: "the journal"
    n.start(env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    lines = node_lines(n)
    bad = [l for l in lines if not re.match(r"<[3467]>(debug|info|warn|error) [a-z_-]+: ", l)]
    assert lines and not bad, bad[:5]
    assert any(l.startswith("<6>info server: ready ") for l in lines), lines
    assert not any(re.search(TS, l) for l in lines)
    # A JOURNAL_STREAM that names another file is not the journal.
    m = cluster.add_node()
    m.start(env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert all(TEXT_LINE.match(l) for l in node_lines(m)), node_lines(m)[:3]


# ---- configuration ---------------------------------------------------------

def test_unimplemented_keys_are_refused_naming_them(cluster, tmp_path):
    n2 = cluster.add_node({"security.tls_ca": "/ca.pem"})
    r = cluster.run_ringkvd("check-config", str(n2.write_config()))
    assert r.rc == 2 and "security.tls_cert is not set: TLS needs" in r.err, r


def test_missing_config_file_argument_is_one_line(cluster):
    r = cluster.run_ringkvd("check-config")
    assert r.rc == 2 and r.err.count("\n") == 1, r
    assert "no config file given" in r.err, r
    r = cluster.run_ringkvd("run", "-c")
    assert r.rc == 2 and r.err.count("\n") == 1, r
    assert "-c needs a config FILE" in r.err, r


def test_check_config_reports_every_error(cluster, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[storage]\nfsnyc = "always"\n[limits]\nmax_inflight = 0\n'
                    '[log]\nformat = "xml"\n')
    r = cluster.run_ringkvd("check-config", str(path))
    lines = r.err.splitlines()
    assert r.rc == 2 and len(lines) == 3, r
    for line, (where, what) in zip(lines, [("2:1", "storage.fsnyc"), ("4:16", "limits.max_inflight"),
                                           ("6:10", "log.format")]):
        assert line.startswith(f"{path}:{where}: ") and what in line, (line, where, what)
    # run stops at the first, as before: one line.
    r = cluster.run_ringkvd("run", "-c", str(path))
    assert r.rc == 2 and len([l for l in r.err.splitlines() if "error ringkvd:" in l]) == 1, r


def test_versions(cluster):
    r = cluster.run_ringkvd("--version")
    assert r.rc == 0 and re.fullmatch(rb"ringkvd \d+\.\d+\.\d+\n", r.out), r
    r = cluster.kvctl("127.0.0.1:1", "--version")
    version = r.out.split()[1]
    assert r.rc == 0 and r.out.startswith(b"kvctl ") and version == cluster.run_ringkvd(
        "--version").out.split()[1], r


# ---- kvctl -----------------------------------------------------------------

def test_help_overview_and_per_command(cluster):
    r = cluster.kvctl("127.0.0.1:1", "help")
    assert r.rc == 0 and b"commands:" in r.out and b"kvctl help [COMMAND]" in r.out, r
    r = cluster.kvctl("127.0.0.1:1", "help", "get")
    assert r.rc == 0 and r.out.startswith(b"usage: kvctl") and b"get KEY" in r.out, r
    assert r.out == cluster.kvctl("127.0.0.1:1", "get", "--help").out
    r = cluster.kvctl("127.0.0.1:1", "help", "bench")
    assert r.rc == 0 and b"--prefix" in r.out, r
    r = cluster.kvctl("127.0.0.1:1", "help", "plan")
    assert r.rc == 0 and b"plan join ADDR" in r.out, r
    assert cluster.kvctl("127.0.0.1:1", "help", "help").out == cluster.kvctl("127.0.0.1:1", "help").out
    r = cluster.kvctl("127.0.0.1:1", "help", "frob")
    assert r.rc == 2 and "unknown command 'frob'" in r.err, r


def refused_port():
    """A loopback port nothing listens on (bound once, then released)."""
    return free_port()


def test_refused_connection_fails_at_once(cluster):
    addr = f"127.0.0.1:{refused_port()}"
    times = []
    for _ in range(10):
        t0 = time.monotonic()
        r = cluster.kvctl(addr, "--timeout", "5s", "get", "k")
        times.append(time.monotonic() - t0)
        assert r.rc == 3 and r.err.count("\n") == 1 and "refused the connection" in r.err, r
    times.sort()
    median = (times[4] + times[5]) / 2
    print(f"kvctl time to fail on a refused port: median {median * 1000:.1f} ms of 10")
    assert median < 1.0, times  # was the 5 s timeout; a process start dominates now


def test_address_forms_and_failover(cluster):
    (n,) = cluster.start(1)
    host_port = n.client_addr.removeprefix("tcp://")
    assert n.kvctl("put", "k", "v", addr=host_port).rc == 0
    down = f"127.0.0.1:{refused_port()}"
    r = n.kvctl("get", "k", addr=f"{down},{host_port}")
    assert r.rc == 0 and r.out == b"v", r
    r = n.kvctl("get", "k", addr=f"{down},tcp://{down}")
    assert r.rc == 3 and "every address refused" in r.err, r
    r = n.kvctl("get", "k", addr=f"{host_port},")
    assert r.rc == 2 and "empty" in r.err, r


def test_get_adds_a_newline_only_on_a_terminal(cluster):
    (n,) = cluster.start(1)
    assert n.kvctl("put", "k", "v1").rc == 0
    assert n.kvctl("get", "k").out == b"v1"  # a pipe: the exact bytes
    master, slave = os.openpty()
    try:
        p = cluster.spawn([cluster.kvctl_bin, "-a", n.client_addr, "get", "k"], stdout=slave)
        assert p.wait(15) == 0
        os.close(slave)
        slave = -1
        out = b""
        while not out.endswith(b"\n"):
            chunk = os.read(master, 100)
            assert chunk, out
            out += chunk
        assert out == b"v1\r\n", out  # the terminal turns \n into \r\n
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_json_get_of_a_missing_key(cluster):
    (n,) = cluster.start(1)
    r = n.kvctl("--json", "get", "nosuch")
    assert r.rc == 1, r
    doc = json.loads(r.out)
    assert doc["key"] == "nosuch" and doc["found"] is False, doc


def test_error_lines_carry_no_json(cluster):
    (n,) = cluster.start(1)
    r = n.kvctl("remove", "nosuch")
    assert r.rc == 2 and r.err == "kvctl: remove: no member nosuch (see kvctl members)\n", r


def test_join_where_nothing_answers(cluster):
    (n,) = cluster.start(1)
    t0 = time.monotonic()
    r = n.kvctl("join", f"tcp://127.0.0.1:{refused_port()}", timeout=30)
    assert r.rc == 3 and "nothing answered at" in r.err and r.err.count("\n") == 1, r
    assert time.monotonic() - t0 < 15, "waited far past the join wait"


def test_bench_writes_under_its_prefix_and_cleans_up(cluster):
    (n,) = cluster.start(1)
    assert n.kvctl("put", "key0000000001", "mine").rc == 0  # what bench wrote before
    r = n.kvctl("bench", "--keys", "20", "--duration", "1s", "--clients", "2", "--workload", "w",
                timeout=60)
    assert r.rc == 0 and 'keys "bench:0000000000" to "bench:0000000019"' in r.err, r
    assert n.kvctl("get", "bench:0000000019").rc == 0
    assert n.kvctl("get", "key0000000001").out == b"mine"
    r = n.kvctl("bench", "--prefix", "t:", "--keys", "20", "--duration", "1s", "--clients", "2",
                "--cleanup", timeout=60)
    assert r.rc == 0 and 'deleted 20 of 20 keys under "t:"' in r.err, r
    for i in (0, 7, 19):
        assert n.kvctl("get", f"t:{i:010d}").rc == 1
    assert n.kvctl("get", "bench:0000000019").rc == 0  # another prefix: untouched

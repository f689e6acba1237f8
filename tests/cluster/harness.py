"""Black-box harness for ringkv cluster tests: real ringkvd processes on
loopback ports, driven with kvctl.

A Cluster owns a directory (pytest's tmp_path) and every process it starts.
Each Node gets free loopback ports, its own data dir, config file and log
file under that directory:

    cluster = Cluster(tmp_path, ringkvd="build/src/ringkvd", kvctl="build/src/kvctl")
    a, b, c = cluster.start(3)                 # write configs, start, wait until healthy
    rc, out, err = a.kvctl("put", "k", "v")
    b.pause(); ...; b.resume()                 # SIGSTOP / SIGCONT
    a.kill(); a.start()                        # kill -9, start again on the same data
    cluster.cleanup()                          # SIGKILL whatever is still running

Rules the tests rely on:
- Only processes started here are ever signalled, by PID; cleanup() kills
  those still running and nothing else.
- Nothing sleeps a fixed time: wait_for() polls a predicate until a deadline
  and fails naming what it waited for.
- The config is generated from a dict; any key can be overridden with a
  dotted name ({"storage.fsync": "always"}); None removes a key so the
  daemon's default applies.
- Logs (stdout+stderr of every start, appended) stay in <tmp>/<node>/ringkvd.log;
  conftest.py prints them when a test fails.
"""

import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

POLL_INTERVAL = 0.02  # seconds between polls: short, the deadline bounds the wait

# Variables of the test runner's own environment that must not leak into a
# daemon or client we start (a CI job under systemd has NOTIFY_SOCKET set).
_SCRUB_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
              "LISTEN_PID", "LISTEN_FDNAMES", "KVCTL_ADDR", "KVCTL_SECRET_FILE", "JOURNAL_STREAM")


class Abort(Exception):
    """Raised inside a wait_for predicate to stop waiting at once."""


class NodeExited(Abort):
    pass


def wait_for(predicate, timeout, what, interval=POLL_INTERVAL):
    """Call predicate() until it returns a true value, and return that value.
    Exceptions from predicate count as "not yet" (the last one is reported),
    except Abort, which propagates. Fails with AssertionError naming `what`
    after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Abort:
            raise
        except Exception as e:  # noqa: BLE001 - reported below
            last_exc = e
        left = deadline - time.monotonic()
        if left <= 0:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{extra}")
        time.sleep(min(interval, left))


_ports_lock = threading.Lock()
_ports_given = set()


def _ephemeral_low():
    """First port of the kernel's ephemeral range (outgoing connections)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_LOW = 10000
_port_rng = random.Random(os.getpid() ^ time.monotonic_ns())


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, below the
    kernel's ephemeral range: a node restarted on its ports must find them
    free, and any outgoing connection on the machine (another test's
    kvctl, a node dialling its peers) takes its local port from the
    ephemeral range, so a port from there could be taken in between. Never
    hands out the same port twice in one test process; random, so parallel
    test processes rarely try the same one."""
    high = _ephemeral_low() - 1
    with _ports_lock:
        for _ in range(1000):
            port = _port_rng.randint(_PORT_LOW, high)
            if port in _ports_given:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _ports_given.add(port)
            return port
    raise RuntimeError(f"no free loopback port found in {_PORT_LOW}..{high}")


def scrubbed_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB_ENV}
    env.update(extra or {})
    return env


# ---- TOML generation -------------------------------------------------------

def _toml_str(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (str, Path)):
        return _toml_str(str(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def render_toml(tables):
    """{"node": {"id": "a"}, ...} -> TOML text, tables and keys in order."""
    lines = []
    for table, keys in tables.items():
        if not keys:
            continue
        lines.append(f"[{table}]")
        for k, v in keys.items():
            lines.append(f"{k} = {toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def apply_overrides(tables, overrides):
    """Merge {"table.key": value} into tables; value None deletes the key."""
    for dotted, v in (overrides or {}).items():
        table, _, key = dotted.partition(".")
        if not key:
            raise ValueError(f"override {dotted!r} is not table.key")
        t = tables.setdefault(table, {})
        if v is None:
            t.pop(key, None)
        else:
            t[key] = v
    return tables


# ---- results ---------------------------------------------------------------

class Result(tuple):
    """(rc, stdout bytes, stderr text) with names; unpacks like a tuple."""

    def __new__(cls, rc, out, err, argv):
        r = super().__new__(cls, (rc, out, err))
        r.argv = argv
        return r

    rc = property(lambda self: self[0])
    out = property(lambda self: self[1])
    err = property(lambda self: self[2])

    def __repr__(self):
        out = self.out if len(self.out) <= 300 else self.out[:300] + b"..."
        return f"Result(rc={self.rc}, out={out!r}, err={self.err!r}, argv={self.argv})"


# What ringkvd puts before "level component: message": an ISO-8601 UTC
# timestamp in milliseconds, or a syslog priority when stderr is the journal.
LOG_PREFIX = re.compile(r"(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z |<[0-7]>)")


def log_body(line):
    """A ringkvd log line without its timestamp or priority prefix."""
    return LOG_PREFIX.sub("", line, count=1) if LOG_PREFIX.match(line) else line


def last_json(out):
    """The last line of out (bytes or str) that is a JSON object."""
    if isinstance(out, bytes):
        out = out.decode("utf-8", "replace")
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise AssertionError(f"no JSON object in output: {out[-2000:]!r}")


# ---- nodes -----------------------------------------------------------------

class Node:
    def __init__(self, cluster, name, overrides=None, env=None):
        self.cluster = cluster
        self.name = name
        self.dir = cluster.base / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.dir / "data"
        self.config_path = self.dir / "ringkv.toml"
        self.log_path = self.dir / "ringkvd.log"
        self.ports = {"client": free_port(), "peer": free_port(), "gossip": free_port()}
        self.overrides = dict(overrides or {})
        self.env = dict(env or {})
        self.proc = None
        self.starts = 0
        self._log_start = 0  # log offset where the current run's output begins

    def __repr__(self):
        return f"Node({self.name}, pid={self.pid}, client={self.client_addr})"

    # addresses
    def addr(self, which="client"):
        return f"tcp://127.0.0.1:{self.ports[which]}"

    @property
    def client_addr(self):
        return self.addr("client")

    @property
    def gossip_addr(self):
        return self.addr("gossip")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # config
    def config(self):
        """The config tables this node runs with: the harness defaults, then
        the cluster's overrides, then this node's."""
        c = self.cluster
        n = max(1, len(c.nodes))
        replicas = min(3, n)
        tables = {
            "node": {"id": self.name, "data_dir": str(self.data_dir), "workers": 2},
            "listen": {
                "client": self.addr("client"),
                "peer": self.addr("peer"),
                "gossip": self.addr("gossip"),
                "http": "",
                "advertise": "127.0.0.1",
            },
            "cluster": {
                # The first three nodes seed everyone (a node may list itself).
                "seeds": [x.gossip_addr for x in c.nodes[:3]] or [self.gossip_addr],
                "replicas": replicas,
                "read_quorum": replicas // 2 + 1,
                "write_quorum": replicas // 2 + 1,
                "expect_nodes": n,
            },
            "storage": {
                "fsync": "always",
                # Segments are preallocated: keep them small in tests.
                "segment_size": "8MiB",
            },
            "limits": {"max_inflight": 10000},
            "log": {"level": "info"},
        }
        apply_overrides(tables, c.overrides)
        apply_overrides(tables, self.overrides)
        return tables

    def write_config(self):
        self.config_path.write_text(render_toml(self.config()))
        return self.config_path

    def set_config(self, overrides):
        """Change keys of this node's config and rewrite the file (the
        running daemon sees it only on SIGHUP or restart)."""
        self.overrides.update(overrides)
        return self.write_config()

    # lifecycle
    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True, timeout=30, write_config=True, args=None, env=None, wrapper=()):
        """Start `ringkvd run -c CONFIG` (args replaces the arguments after
        the binary; wrapper is a command that execs the rest, e.g. unshare).
        With wait, return once `kvctl health` exits 0; fail at once if the
        process exits meanwhile."""
        assert not self.is_running(), f"{self.name} is already running"
        if write_config:
            self.write_config()
        self.starts += 1
        argv = list(wrapper) + [self.cluster.ringkvd] + (args if args is not None else ["run", "-c", str(self.config_path)])
        with open(self.log_path, "ab") as log:
            log.write(f"==== harness: start #{self.starts} of {self.name}: {' '.join(argv)}\n".encode())
            log.flush()
            self._log_start = log.tell()
            self.proc = self.cluster.spawn(argv, stdout=log, stderr=log,
                                           env={**self.env, **(env or {})})
        if wait:
            self.wait_ready(timeout)
        return self

    def run_args(self, *extra):
        """The arguments of `ringkvd run -c CONFIG`, then extra: for
        start(args=...), e.g. node.start(args=node.run_args("--repair"))."""
        return ["run", "-c", str(self.config_path), *extra]

    def start_refused(self, args=None, timeout=30):
        """Start a daemon that must refuse to start: wait for it to exit by
        itself and return its exit code (the reason is in run_log()). Fails
        if it is still running at the deadline."""
        self.start(wait=False, args=args)
        return self.wait_exit(timeout)

    def wait_ready(self, timeout=30):
        def ready():
            if not self.is_running():
                raise NodeExited(f"{self.name} exited with {self.proc.returncode} while starting; "
                                 f"log:\n{self.run_log()[-3000:]}")
            return self.kvctl("--timeout", "1s", "health", timeout=5).rc == 0
        wait_for(ready, timeout, f"{self.name} to answer `kvctl health` with 0")

    def wait_serving(self, timeout=30):
        """Wait until `kvctl ready` exits 0 on this node, the cluster formed,
        and this node knows every partition's replicas.count holders (it has
        heard every member's holdings)."""
        def serving():
            r = self.kvctl("--timeout", "1s", "--json", "ready", timeout=5)
            return r.rc == 0 and last_json(r.out).get("partitions_under_replicated") == 0
        wait_for(serving, timeout, f"{self.name} to answer `kvctl ready` with 0, formed")

    def wait_exit(self, timeout):
        """Wait for the process to exit; return its exit code (negative: the
        signal that killed it). Fails if it is still running at the deadline."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} (pid {self.pid}) still running after {timeout:g}s") from None

    def signal(self, sig):
        assert self.proc is not None, f"{self.name} was never started"
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code. A daemon still running at
        the deadline is killed and the test fails."""
        if not self.is_running():
            return self.proc.returncode if self.proc else None
        self.resume()  # a stopped process cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout:g}s of SIGTERM") from None

    def kill(self):
        """kill -9 and reap; returns the exit code (-9)."""
        if self.is_running():
            self.proc.kill()
        return self.proc.wait(10) if self.proc else None

    def pause(self):
        self.signal(signal.SIGSTOP)

    def resume(self):
        if self.is_running():
            self.signal(signal.SIGCONT)

    def restart(self, **start_kw):
        """Graceful stop, then start; returns the exit code of the stop."""
        rc = self.stop()
        self.start(**start_kw)
        return rc

    # logs
    def log(self):
        """All output of every run of this node."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def run_log(self):
        """Output of the current (last) run only."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """An offset for wait_log(since=...): only later lines count."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_lines(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace").splitlines()

    def wait_log(self, match, timeout=10, since=0, what=None):
        """Wait for a log line for which match(line) is true (a str means
        "contains"); returns the line."""
        pred = (lambda line: match in line) if isinstance(match, str) else match

        def found():
            for line in self.log_lines(since):
                if pred(line):
                    return line
            return None
        return wait_for(found, timeout, what or f"a log line of {self.name} matching {match!r}")

    # clients
    def kvctl(self, *args, input=None, timeout=15, addr=None):
        """Run `kvctl -a ADDR ARGS...`; returns Result (rc, stdout bytes, stderr text)."""
        return self.cluster.kvctl(addr or self.client_addr, *args, input=input, timeout=timeout)

    def kvctl_popen(self, *args, **kw):
        return self.cluster.kvctl_popen(self.client_addr, *args, **kw)

    def bench(self, *args, timeout=60):
        """`kvctl --json bench ARGS...`; returns (Result, the bench's JSON object)."""
        r = self.kvctl("--json", "bench", *args, timeout=timeout)
        return r, last_json(r.out)


class Cluster:
    def __init__(self, base, ringkvd, kvctl, overrides=None):
        self.base = Path(base)
        self.ringkvd = str(ringkvd)
        self.kvctl_bin = str(kvctl)
        self.kvctl_args = []  # before -a in every kvctl run here (e.g. --tls-ca FILE)
        self.overrides = dict(overrides or {})
        self.nodes = []
        self.kvctl_env = {}  # added to every kvctl run's environment (e.g. KVCTL_SECRET_FILE)
        self._procs = {}  # pid -> Popen, every process started and not yet reaped
        self._lock = threading.Lock()

    # processes
    def spawn(self, argv, env=None, **popen_kw):
        """Start a tracked process (killed by cleanup() if still running)."""
        p = subprocess.Popen([str(a) for a in argv], env=scrubbed_env(env),
                             stdin=popen_kw.pop("stdin", subprocess.DEVNULL), **popen_kw)
        with self._lock:
            self._procs = {pid: q for pid, q in self._procs.items() if q.returncode is None}
            self._procs[p.pid] = p
        return p

    def run(self, argv, input=None, timeout=15, env=None):
        """Run a tracked process to completion; Result(rc, stdout bytes,
        stderr text). A process still running at the timeout is killed and
        the test fails."""
        p = self.spawn(argv, env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise AssertionError(f"{' '.join(map(str, argv))} did not finish within {timeout:g}s; "
                                 f"stdout={out[-500:]!r} stderr={err[-500:]!r}") from None
        return Result(p.returncode, out, err.decode(errors="replace"), [str(a) for a in argv])

    def run_ringkvd(self, *args, timeout=15, env=None):
        return self.run([self.ringkvd, *args], timeout=timeout, env=env)

    def kvctl(self, addr, *args, input=None, timeout=15):
        if isinstance(input, str):
            input = input.encode()
        return self.run([self.kvctl_bin, *self.kvctl_args, "-a", addr, *args], input=input,
                        timeout=timeout, env=self.kvctl_env or None)

    def kvctl_popen(self, addr, *args, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("env", self.kvctl_env or None)
        return self.spawn([self.kvctl_bin, *self.kvctl_args, "-a", addr, *args], **kw)

    def cleanup(self):
        """SIGKILL every process this cluster started that still runs (a
        stopped one too), and reap it."""
        with self._lock:
            procs = list(self._procs.values())
            self._procs = {}
        for p in procs:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass

    # nodes
    def add_node(self, overrides=None, name=None, env=None):
        name = name or f"node-{len(self.nodes) + 1}"
        node = Node(self, name, overrides, env)
        self.nodes.append(node)
        return node

    def start(self, n=1, overrides=None, timeout=30, ready=True):
        """Add n nodes, start them all, wait until each is healthy and, with
        ready, until each answers `kvctl ready` with 0 (the cluster formed:
        every partition has a write quorum of holders)."""
        return self.launch([self.add_node(overrides) for _ in range(n)], timeout, ready)

    def launch(self, nodes, timeout=30, ready=True):
        """Start nodes already added (together), then wait as start() does;
        returns nodes."""
        for node in nodes:
            node.start(wait=False)
        for node in nodes:
            node.wait_ready(timeout)
        running = sum(1 for x in self.nodes if x.is_running())
        for node in nodes if ready else []:
            if running >= node.config()["cluster"].get("expect_nodes", 1):
                node.wait_serving(timeout)
        return nodes

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                       "runtime error:")

    def sanitizer_reports(self):
        """Lines of the nodes' logs where a sanitizer (a RINGKV_SANITIZER
        build) reported a bug; [] for a clean run."""
        return [f"{node.name}: {line}" for node in self.nodes for line in node.log().splitlines()
                if any(m in line for m in self.SANITIZER_MARKS)]

    def logs_report(self, max_lines=400):
        parts = []
        for node in self.nodes:
            lines = node.log().splitlines()
            cut = ""
            if len(lines) > max_lines:
                cut = f"... {len(lines) - max_lines} earlier lines in {node.log_path}\n"
                lines = lines[-max_lines:]
            state = "running" if node.is_running() else (
                f"exited {node.proc.returncode}" if node.proc else "never started")
            parts.append(f"---- {node.name} (pid {node.pid}, {state}, {node.client_addr}, "
                         f"data {node.data_dir}) ----\n{cut}" + "\n".join(lines))
        return "\n".join(parts)


# ---- raw SP/TCP client (nng's wire format, for malformed-input tests) -------

SP_REQ0 = 0x30  # NNI_PROTO(3, 0)
SP_REP0 = 0x31


class SPConn:
    """A hand-rolled req0 peer over TCP: the 8-byte SP handshake
    (0x00 'S' 'P' 0x00, protocol u16 BE, 2 reserved zero bytes), then
    messages framed as u64 BE length + payload; a req0 payload starts with a
    4-byte BE request id whose high bit is set."""

    def __init__(self, port, timeout=5.0, source=None, host="127.0.0.1"):
        """source: the local address to connect from (127.0.0.x: another
        client address on loopback); host: the address to connect to."""
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self._next_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def handshake(self, proto=SP_REQ0):
        self.sock.sendall(b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00")
        peer = self.recv_exact(8)
        assert peer[:4] == b"\x00SP\x00" and peer[6:] == b"\x00\x00", f"bad SP handshake {peer!r}"
        return struct.unpack(">H", peer[4:6])[0]

    def send_frame(self, payload):
        self.sock.sendall(struct.pack(">Q", len(payload)) + payload)

    def request(self, body):
        """Send body as one req0 request; returns the request id used."""
        rid = 0x80000000 | self._next_id
        self._next_id += 1
        self.send_frame(struct.pack(">I", rid) + body)
        return rid

    def recv_reply(self):
        """(request id, body) of the next reply."""
        (n,) = struct.unpack(">Q", self.recv_exact(8))
        payload = self.recv_exact(n)
        assert n >= 4, f"reply too short for a req0 header: {payload!r}"
        return struct.unpack(">I", payload[:4])[0], payload[4:]


# ringkv message header (src/proto.h): 16 bytes, little-endian.
RK_HDR = struct.Struct("<HBBHHII")  # magic, version, opcode, flags, status, id, body_len
RK_MAGIC = 0x4B52
RK_STATUS = {0: "OK", 1: "NOT_FOUND", 2: "MALFORMED", 3: "UNSUPPORTED", 4: "BUSY",
             5: "TOO_LARGE", 6: "NO_SPACE", 7: "READONLY", 8: "STALE", 9: "QUORUM",
             10: "TIMEOUT", 11: "INTERNAL", 12: "UNAVAILABLE", 13: "REFUSED",
             14: "RATE_LIMITED"}
RK_OP = {"PUT": 1, "GET": 2, "DEL": 3, "STATUS": 16, "STATS": 17, "HEALTH": 18,
         "READY": 19, "ECHO": 20, "RPUT": 32, "RGET": 33, "RBATCH": 34,
         "PARTS": 29, "TRANSFERS": 30, "AE_ROOT": 35, "AE_KEYS": 36}
RK_TAG = {"KEY": 1, "VALUE": 2, "VERSION": 3, "TTL_MS": 4, "EXPIRY_MS": 5, "TEXT": 6,
          "R": 7, "W": 8, "TOMBSTONE": 10, "TRACE": 11, "HINT": 12, "RETRY_MS": 13,
          "AUTH": 14}


def rk_field(tag, data):
    return struct.pack("<BI", RK_TAG[tag], len(data)) + data


def rk_message(op, fields=b"", msg_id=1, version=1, magic=RK_MAGIC, body_len=None):
    if isinstance(op, str):
        op = RK_OP[op]
    return RK_HDR.pack(magic, version, op, 0, 0, msg_id,
                       len(fields) if body_len is None else body_len) + fields


def write_secret(path, data=None, mode=0o600):
    """A cluster secret file (security.secret_file): 64 random bytes unless
    data is given; returns (path, the bytes)."""
    data = os.urandom(64) if data is None else data
    path = Path(path)
    path.write_bytes(data)
    path.chmod(mode)
    return path, data


def auth_key(secret, purpose="rpc"):
    """The key a secret gives for purpose (src/util/auth.h: HMAC-SHA256 of
    "ringkv/<purpose>/1" under the secret)."""
    return hmac.new(secret, f"ringkv/{purpose}/1".encode(), hashlib.sha256).digest()


def rk_sign(msg, key, ts_ms=None, nonce=None):
    """msg (one encoded message) with the secret's AUTH field appended and
    body_len grown by it: ts_ms, nonce, then the HMAC of every byte before
    the HMAC (src/util/auth.h)."""
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    nonce = random.getrandbits(64) if nonce is None else nonce
    body_len = struct.unpack_from("<I", msg, 12)[0] + 5 + 48
    head = (msg[:12] + struct.pack("<I", body_len) + msg[16:] +
            struct.pack("<BI", RK_TAG["AUTH"], 48) + struct.pack("<QQ", ts, nonce))
    return head + hmac.new(key, head, hashlib.sha256).digest()


def rk_frames(data):
    """[(rid, message bytes)] of an RBATCH value: [rid u32 LE][message]..."""
    out, off = [], 0
    while off < len(data):
        rid = struct.unpack_from("<I", data, off)[0]
        n = RK_HDR.size + RK_HDR.unpack_from(data, off + 4)[6]
        out.append((rid, data[off + 4:off + 4 + n]))
        off += 4 + n
    return out


def rk_fields(rest):
    """{tag number: bytes} of a message body."""
    out, off = {}, 0
    while off + 5 <= len(rest):
        tag, n = struct.unpack_from("<BI", rest, off)
        out[tag] = rest[off + 5:off + 5 + n]
        off += 5 + n
    return out


def rk_decode_header(body):
    """dict of the 16-byte header of a ringkv reply, status by name too."""
    assert len(body) >= RK_HDR.size, f"reply shorter than a ringkv header: {body!r}"
    magic, version, opcode, flags, status, msg_id, body_len = RK_HDR.unpack_from(body)
    return {"magic": magic, "version": version, "opcode": opcode, "flags": flags,
            "status": status, "status_name": RK_STATUS.get(status, str(status)),
            "id": msg_id, "body_len": body_len, "rest": body[RK_HDR.size:]}


def rk_text(rest):
    """The TEXT field of a reply body, if any (the error line)."""
    off = 0
    while off + 5 <= len(rest):
        tag, n = struct.unpack_from("<BI", rest, off)
        off += 5
        if tag == RK_TAG["TEXT"]:
            return rest[off:off + n].decode(errors="replace")
        off += n
    return None


class RawKV:
    """put/get over one hand-rolled req0 connection to a node's client port:
    a thousand keys take well under a second, where as many kvctl processes
    take many. For bulk checks only; kvctl itself is tested with kvctl."""

    def __init__(self, node, timeout=10.0, source=None, port="client"):
        self.conn = SPConn(node.ports[port], timeout, source)
        assert self.conn.handshake() == 0x31, "the client port is not a rep0 socket"

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, op, fields, key=None):
        """(status name, {tag: bytes}) of the reply to one request; key: sign
        it with that (auth_key) first."""
        msg = rk_message(op, fields)
        return self.send(rk_sign(msg, key) if key else msg)

    def send(self, msg):
        """(status name, {tag: bytes}) of the reply to msg, sent as it is."""
        rid = self.conn.request(msg)
        while True:
            got, body = self.conn.recv_reply()
            if got == rid:
                break
        h = rk_decode_header(body)
        return h["status_name"], rk_fields(h["rest"])

    def put(self, key, value):
        return self.call("PUT", rk_field("KEY", key) + rk_field("VALUE", value))[0]

    def delete(self, key):
        return self.call("DEL", rk_field("KEY", key))[0]

    def replica(self, key):
        """This node's own record of key (one RGET: no quorum, no read
        repair, tombstones included): None when it holds nothing, else
        ("tombstone", version) or ("value", version, value bytes)."""
        st, f = self.call("RGET", rk_field("KEY", key))
        if st == "NOT_FOUND":
            return None
        assert st == "OK", f"RGET {key!r}: {st} {f.get(RK_TAG['TEXT'])!r}"
        version = struct.unpack("<Q", f[RK_TAG["VERSION"]])[0]
        if RK_TAG["TOMBSTONE"] in f:
            return ("tombstone", version)
        return ("value", version, f.get(RK_TAG["VALUE"], b""))

    def get(self, key, r=None, trace=False):
        """(status name, value or None, the trace as a dict or None)."""
        f = rk_field("KEY", key)
        if r:
            f += rk_field("R", bytes([r]))
        if trace:
            f += rk_field("TRACE", b"\x01")
        st, fields = self.call("GET", f)
        text = fields.get(RK_TAG["TEXT"])
        return (st, fields.get(RK_TAG["VALUE"]),
                json.loads(text) if trace and st in ("OK", "NOT_FOUND") and text else None)


# ---- gossip wire (src/gossip_wire.h, src/members.h), for hostile tests ----

GOSSIP_MAGIC = 0x4752
SP_SURVEYOR0 = 0x62  # NNI_PROTO(6, 2)
SP_RESPONDENT0 = 0x63


def g_entry(id_, inc, hb, settings, state=0, client=b"", peer=b"", gossip=b"", config=0):
    out = bytes([len(id_)]) + id_
    for a in (client, peer, gossip):
        out += bytes([len(a)]) + a
    return out + struct.pack("<QQQQB", inc, hb, settings, config, state)


def g_message(env, entries, kind=0, digest=0):
    name = env["name"]
    head = struct.pack("<HBBII", GOSSIP_MAGIC, 1, kind, env["partitions"], env["replicas"])
    head += bytes([len(name)]) + name + struct.pack("<Q", digest)
    return head + struct.pack("<BBH", 1, 0, len(entries)) + b"".join(entries)


def g_decode(data):
    """(env dict, [entry dict]) of a well-formed gossip message, else None.
    Mirrors rk_gossip_env_decode (versions 1 and 2: place digest and
    holdings after the table digest) + rk_members_decode."""
    try:
        magic, ver, kind, parts, reps, nl = struct.unpack_from("<HBBIIB", data)
        if magic != GOSSIP_MAGIC or ver not in (1, 2) or kind > 1 or not 1 <= nl <= 63:
            return None
        name = data[13:13 + nl]
        if len(name) != nl or any(c < 0x20 or c == 0x7F for c in name):
            return None
        off = 13 + nl + 8
        if ver == 2:
            _place, hold_len = struct.unpack_from("<QI", data, off)
            off += 12 + hold_len
            if hold_len > 28 + 65536 // 8 or off > len(data):
                return None
        v, _r, count = struct.unpack_from("<BBH", data, off)
        off += 4
        if v != 1 or count > 1024:
            return None
        entries = []
        for _ in range(count):
            e, strs = {}, []
            for maxlen in (63, 127, 127, 127):
                n = data[off]
                s = data[off + 1:off + 1 + n]
                if len(s) != n or n > maxlen or b"\x00" in s:
                    return None
                strs.append(s)
                off += 1 + n
            if not strs[0]:
                return None
            e["id"], e["client"], e["peer"], e["gossip"] = strs
            e["inc"], e["hb"], e["settings"], e["config"], e["state"] = struct.unpack_from("<QQQQB", data, off)
            off += 33
            if e["state"] > 4:
                return None
            entries.append(e)
        if off != len(data) or not entries:
            return None
        return {"name": name, "partitions": parts, "replicas": reps, "kind": kind}, entries
    except (struct.error, IndexError):
        return None


# ---- anti-entropy and storage, seen from outside -----------------------------

def node_stats(node):
    """The node's `kvctl --json stats` object."""
    r = node.kvctl("--json", "stats", timeout=10)
    assert r.rc == 0, r
    return last_json(r.out)


def http_get(port, path, timeout=5):
    """(status, content type, body text) of GET http://127.0.0.1:port/path."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def metric_samples(text):
    """{'name{labels}': value} of a Prometheus exposition's samples."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def scrape(port):
    """The samples of GET /metrics on port (asserting 200 and the format)."""
    status, ctype, body = http_get(port, "/metrics")
    assert status == 200, (status, body)
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return body


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def node_ae(node, *args):
    """The node's `kvctl --json ae ARGS` object (one line of JSON)."""
    r = node.kvctl("--json", "ae", *args, timeout=10)
    assert r.rc == 0, r
    return last_json(r.out)


def partition_of(node, key):
    """key's partition, from `kvctl --json locate`."""
    r = node.kvctl("--json", "locate", key, timeout=10)
    assert r.rc == 0, r
    return last_json(r.out)["partition"]


def replica_misses(node, keys, want):
    """Keys whose replica on node (one RGET each: no read repair) does not
    hold the value wanted ({key: value})."""
    out = []
    with RawKV(node) as kv:
        for k in keys:
            st, f = kv.call("RGET", rk_field("KEY", k))
            if st != "OK" or f.get(RK_TAG["VALUE"]) != want[k]:
                out.append(k)
    return out


def wait_member_state(observers, who, states, timeout):
    """Wait until every node of observers shows member who in one of states."""
    wait_for(lambda: all(member_states(n).get(who.name) in states for n in observers), timeout,
             f"{who.name} {'/'.join(states)} on {[n.name for n in observers]}")


def start_alive(cluster, n, overrides, timeout):
    """Add overrides to the cluster's, start n nodes, wait until every one
    sees all of them alive; returns them."""
    cluster.overrides.update(overrides)
    nodes = cluster.start(n)
    wait_all_alive(nodes, timeout)
    return nodes


def wait_all_alive(nodes, timeout):
    """Wait until every node of nodes sees every one of them alive."""
    wait_states(nodes, {n.name: "alive" for n in nodes}, timeout,
                f"{len(nodes)} alive everywhere")


def member_states(node):
    """{member id: state} as node's `kvctl --json members` shows it."""
    r = node.kvctl("--timeout", "2s", "--json", "members", timeout=10)
    assert r.rc == 0, r
    return {m["id"]: m["state"] for m in last_json(r.out)["members"]}


def wait_states(nodes, want, timeout, what=None):
    """Wait until every node of nodes sees each member of want ({id: state})
    in that state."""
    def ok():
        return all(all(member_states(n).get(i) == st for i, st in want.items()) for n in nodes)
    wait_for(ok, timeout, what or f"{want} as seen by {[n.name for n in nodes]}")


def put_filler(node, prefix, total_bytes, value_size=16 << 10, seed=None):
    """Write incompressible values under prefix-00000, -00001 ... through node
    (quorum writes) until total_bytes are written, so that segments fill
    and seal. The values' seed is printed. Returns the keys."""
    seed = random.randrange(1 << 32) if seed is None else seed
    print(f"put_filler({node.name}, {prefix!r}, {total_bytes}): seed {seed}")
    rng = random.Random(seed)
    keys = []
    with RawKV(node) as kv:
        for i in range((total_bytes + value_size - 1) // value_size):
            k = b"%s-%05d" % (prefix, i)
            assert kv.put(k, rng.randbytes(value_size)) == "OK", k
            keys.append(k)
    return keys

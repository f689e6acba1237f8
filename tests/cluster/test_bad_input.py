"""Bad input, each answered with one clear line and the right exit code:
config files, startup conflicts, oversized keys and values, malformed
frames on the client port, a client pointed at a node that is down."""

import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from harness import (RK_MAGIC, RK_TAG, SPConn, rk_decode_header, rk_field, rk_fields, rk_frames, rk_message,
                     log_body, rk_text, wait_for)

START_TIMEOUT = 20  # a daemon that must refuse to start has this long to exit


def error_lines(text):
    return [log_body(l) for l in text.splitlines() if log_body(l).startswith("error ringkvd:")]


def one_error_line(text):
    lines = error_lines(text)
    assert len(lines) == 1, f"want exactly one 'error ringkvd:' line, got {lines!r} in:\n{text}"
    return lines[0]


def start_must_fail(node, **kw):
    """Start node, expect it to exit by itself; returns (rc, its output)."""
    node.start(wait=False, **kw)
    rc = node.wait_exit(START_TIMEOUT)
    return rc, node.run_log()


# ---- config file -----------------------------------------------------------

def test_config_path_missing(cluster, tmp_path):
    missing = tmp_path / "nowhere" / "ringkv.toml"
    r = cluster.run_ringkvd("run", "-c", str(missing))
    assert r.rc == 2, r
    assert str(missing) in one_error_line(r.err), r
    r = cluster.run_ringkvd("check-config", str(missing))
    assert r.rc == 2 and str(missing) in r.err, r


def test_generated_config_passes_check_config(cluster):
    n = cluster.add_node()
    r = cluster.run_ringkvd("check-config", str(n.write_config()))
    assert r.rc == 0, r


MALFORMED = [
    # (file text, line of the error)
    ('[node]\nid = "unterminated\n', 2),
    ('[node]\nid = "a"\nworkers 2\n', 3),
    ('[node\nid = "a"\n', 1),
    ('[storage]\nfsync = "always"\n\n[limits]\nmax_inflight = 1__0\n', 5),
    ('[cluster]\nseeds = ["tcp://127.0.0.1:1", \n', 2),  # where the unclosed array opens
    ('[node]\nid = "a"\nid = "b"\n', 3),
]


@pytest.mark.parametrize("text,line", MALFORMED, ids=[f"line{l}-{i}" for i, (_, l) in enumerate(MALFORMED)])
def test_malformed_toml_names_file_line_col(cluster, tmp_path, text, line):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    for argv in (["run", "-c", str(path)], ["check-config", str(path)]):
        r = cluster.run_ringkvd(*argv)
        assert r.rc == 2, r
        msg = one_error_line(r.err) if argv[0] == "run" else r.err.strip().splitlines()[-1]
        m = re.search(re.escape(str(path)) + r":(\d+):(\d+): \S", msg)
        assert m, f"no {path}:LINE:COL: in {msg!r}"
        assert int(m.group(1)) == line, f"error on line {m.group(1)}, want {line}: {msg!r}"


def test_unknown_key_suggests_nearest(cluster, tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[storage]\nfsnyc = "always"\n')
    r = cluster.run_ringkvd("run", "-c", str(path))
    assert r.rc == 2, r
    msg = one_error_line(r.err)
    assert "storage.fsnyc" in msg and "did you mean" in msg and "storage.fsync" in msg, msg
    assert f"{path}:2:" in msg, msg

    path.write_text('[stroage]\nfsync = "always"\n')
    msg = one_error_line(cluster.run_ringkvd("run", "-c", str(path)).err)
    assert "stroage" in msg and "did you mean" in msg, msg


OUT_OF_RANGE = [
    ("limits.max_inflight", 0),
    ("cluster.partitions", 100),  # not a power of two
    ("storage.fsync", "sometimes"),
    ("storage.segment_size", "1KiB"),
    ("storage.max_key_size", "1MiB"),
    ("gossip.interval", "fast"),
    ("log.level", "loud"),
    ("node.workers", -1),
    ("node.pin_workers", "yes"),  # a string where a boolean belongs
]


@pytest.mark.parametrize("key,value", OUT_OF_RANGE, ids=[k for k, _ in OUT_OF_RANGE])
def test_out_of_range_value_names_the_key(cluster, key, value):
    n = cluster.add_node({key: value})
    r = cluster.run_ringkvd("run", "-c", str(n.write_config()))
    assert r.rc == 2, r
    assert key in one_error_line(r.err), r


def test_cross_key_check_names_both_keys(cluster):
    n = cluster.add_node({"cluster.replicas": 3, "cluster.write_quorum": 4})
    r = cluster.run_ringkvd("run", "-c", str(n.write_config()))
    assert r.rc == 2, r
    msg = one_error_line(r.err)
    assert "cluster.write_quorum" in msg and "cluster.replicas" in msg, msg


# ---- startup conflicts -----------------------------------------------------

def test_port_in_use_names_the_address(cluster):
    n = cluster.add_node()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", n.ports["client"]))
        squatter.listen(1)
        rc, out = start_must_fail(n)
    assert rc == 1, f"exit {rc}, want 1 for a port in use:\n{out}"
    assert n.client_addr in one_error_line(out), out


def test_data_dir_under_a_file(cluster, tmp_path):
    """Root ignores permission bits, so the unwritable data dir here is one
    whose parent is a regular file: mkdir fails with ENOTDIR even for root."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    n = cluster.add_node({"node.data_dir": str(blocker / "data")})
    rc, out = start_must_fail(n)
    assert rc == 1, f"exit {rc}, want 1:\n{out}"
    assert str(blocker) in one_error_line(out), out


def test_data_dir_on_read_only_fs(cluster, tmp_path):
    """A data dir on a read-only mount (a private mount namespace with a
    read-only tmpfs): writing fails with EROFS, for root too."""
    ro = tmp_path / "ro"
    ro.mkdir()
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro tmpfs {ro}"],
                           capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr if probe else 'no unshare'}")
    n = cluster.add_node({"node.data_dir": str(ro)})
    script = f'mount -t tmpfs -o ro tmpfs "{ro}" && exec "$@"'
    rc, out = start_must_fail(n, wrapper=["unshare", "-m", "sh", "-c", script, "sh"])
    assert rc == 1, f"exit {rc}, want 1:\n{out}"
    assert str(ro) in one_error_line(out), out


def test_data_dir_locked_by_another_ringkvd(cluster):
    (first,) = cluster.start(1)
    second = cluster.add_node({"node.id": first.name, "node.data_dir": str(first.data_dir)})
    rc, out = start_must_fail(second)
    assert rc == 1, f"exit {rc}, want 1:\n{out}"
    assert f"locked by pid {first.pid}" in one_error_line(out), out
    # The first node is unharmed.
    assert first.kvctl("put", "k", "v").rc == 0 and first.kvctl("get", "k").out == b"v"


def test_node_id_mismatch_names_both_ids(cluster):
    (n,) = cluster.start(1)
    assert n.stop() == 0
    n.set_config({"node.id": "someone-else"})
    rc, out = start_must_fail(n)
    assert rc == 1, f"exit {rc}, want 1:\n{out}"
    line = one_error_line(out)
    assert n.name in line and "someone-else" in line, line


def test_layout_change_refused_and_data_kept(cluster):
    (n,) = cluster.start(1, overrides={"node.workers": 2})
    assert n.kvctl("put", "k", "v").rc == 0
    assert n.stop() == 0
    n.set_config({"node.workers": 1})
    rc, out = start_must_fail(n)
    assert rc == 1, f"exit {rc}, want 1:\n{out}"
    line = one_error_line(out)
    assert "workers=2" in line and "workers=1" in line, line
    n.set_config({"node.workers": 2})
    n.start()
    assert n.kvctl("get", "k").out == b"v"


# ---- oversized keys and values ---------------------------------------------

def test_key_and_value_over_the_limit(cluster):
    (n,) = cluster.start(1, overrides={"storage.max_value_size": "100B", "storage.max_key_size": "16B"})
    r = n.kvctl("put", "k", "-", input=b"v" * 100)
    assert r.rc == 0, f"a value of exactly the limit must be accepted: {r}"

    r = n.kvctl("put", "big", "-", input=b"v" * 101)
    assert r.rc == 2, r
    assert len(r.err.strip().splitlines()) == 1 and "max_value_size" in r.err, r
    assert n.kvctl("get", "big").rc == 1, "an oversized value was written"

    r = n.kvctl("put", "k" * 17, "v")
    assert r.rc == 2, r
    assert len(r.err.strip().splitlines()) == 1 and "max_key_size" in r.err, r
    assert n.kvctl("get", "k" * 17).rc == 1, "an oversized key was written"
    assert n.kvctl("put", "k" * 16, "v").rc == 0

    # An existing key keeps its value when an oversized overwrite is refused.
    assert n.kvctl("put", "k", "-", input=b"w" * 101).rc == 2
    assert n.kvctl("get", "k").out == b"v" * 100


def test_value_of_the_default_limit_fits_on_the_wire(cluster):
    """max_value_size defaults to 1MiB: a 1 MiB value goes through (the
    socket's receive limit leaves room for key and headers); one byte more
    is TOO_LARGE, not a dropped connection."""
    (n,) = cluster.start(1, overrides={"storage.max_value_size": None})
    value = os.urandom(1 << 20)
    r = n.kvctl("put", "mib", "-", input=value)
    assert r.rc == 0, r
    assert n.kvctl("get", "mib").out == value
    r = n.kvctl("--timeout", "5s", "put", "mib+1", "-", input=value + b"x")
    assert r.rc == 2 and "max_value_size" in r.err, r


# ---- malformed frames on the client port -----------------------------------

class Background:
    """A kvctl put/get loop that must keep succeeding while a test misbehaves."""

    def __init__(self, node):
        self.node, self.ok, self.failures = node, 0, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run)
        self._t.start()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            r = self.node.kvctl("--timeout", "3s", "put", f"bg{i}", f"v{i}")
            g = self.node.kvctl("--timeout", "3s", "get", f"bg{i}") if r.rc == 0 else None
            if r.rc == 0 and g.rc == 0 and g.out == f"v{i}".encode():
                self.ok += 1
            else:
                self.failures.append((r, g))
            i += 1

    def stop(self):
        self._stop.set()
        self._t.join()
        return self


def test_garbage_and_truncated_frames_get_malformed(cluster):
    (n,) = cluster.start(1)
    bg = Background(n)
    try:
        wait_for(lambda: bg.ok >= 2, 15, "the background client to succeed")
        port = n.ports["client"]
        cases = {
            "garbage body": b"hello, this is not ringkv at all",
            "truncated header": rk_message("GET", rk_field("KEY", b"k"))[:10],
            "empty body": b"",
            "body_len too long": rk_message("GET", rk_field("KEY", b"k"), body_len=999),
            "body_len too short": rk_message("GET", rk_field("KEY", b"key"), body_len=2),
            "field past the end": rk_message("PUT", rk_field("KEY", b"k")[:-1] + b"\xff\xff"),
            "bad magic": rk_message("GET", rk_field("KEY", b"k"), magic=0x1234),
        }
        with SPConn(port) as c:
            assert c.handshake() == 0x31, "the client port is not a rep0 socket"
            for what, body in cases.items():
                rid = c.request(body)
                got, reply = c.recv_reply()
                assert got == rid, f"{what}: reply to request {got:#x}, sent {rid:#x}"
                h = rk_decode_header(reply)
                assert h["magic"] == RK_MAGIC, f"{what}: reply is not a ringkv message: {reply!r}"
                assert h["status_name"] == "MALFORMED", f"{what}: status {h['status_name']}, want MALFORMED"
                text = rk_text(h["rest"])
                assert text is None or "\n" not in text.strip(), f"{what}: multi-line error {text!r}"

            # Unknown opcode and unknown protocol version: UNSUPPORTED, id echoed.
            for what, body in {"unknown opcode": rk_message(200, msg_id=77),
                               "protocol version 9": rk_message("GET", rk_field("KEY", b"k"), version=9, msg_id=78)}.items():
                c.request(body)
                h = rk_decode_header(c.recv_reply()[1])
                assert h["status_name"] == "UNSUPPORTED", f"{what}: status {h['status_name']}"
                assert h["id"] in (77, 78), f"{what}: reply id {h['id']} does not echo the request's"

            # The same connection still works for a well-formed request.
            c.request(rk_message("PUT", rk_field("KEY", b"raw") + rk_field("VALUE", b"ok"), msg_id=5))
            h = rk_decode_header(c.recv_reply()[1])
            assert h["status_name"] == "OK" and h["id"] == 5, h
        assert n.kvctl("get", "raw").out == b"ok"
    finally:
        bg.stop()
    assert not bg.failures, f"the concurrent client failed {len(bg.failures)} times: {bg.failures[:2]}"
    assert n.is_running()


def test_peer_batches_answer_every_frame_and_refuse_bad_ones(cluster):
    """An RBATCH is answered frame by frame (each rid echoed, a frame that is
    not a replica request refused on its own); a batch whose frames do not
    fill it, or with more than 4096 frames, is refused whole; the node goes
    on serving."""
    (n,) = cluster.start(1)
    version = struct.pack("<Q", (int(time.time() * 1000) << 16))

    def frame(rid, msg):
        return struct.pack("<I", rid) + msg
    frames = (frame(0x80000011, rk_message("RPUT", rk_field("KEY", b"b1") + rk_field("VALUE", b"one")
                                           + rk_field("VERSION", version), msg_id=1))
              + frame(0x80000022, rk_message("RGET", rk_field("KEY", b"missing"), msg_id=2))
              + frame(0x80000033, rk_message("PUT", rk_field("KEY", b"b2") + rk_field("VALUE", b"x"),
                                             msg_id=3)))
    with SPConn(n.ports["client"]) as c:
        assert c.handshake() == 0x31
        c.request(rk_message("RBATCH", rk_field("VALUE", frames), msg_id=9))
        h = rk_decode_header(c.recv_reply()[1])
        assert h["status_name"] == "OK" and h["id"] == 9, h
        got = {rid: rk_decode_header(m) for rid, m in rk_frames(rk_fields(h["rest"])[RK_TAG["VALUE"]])}
        assert sorted(got) == [0x80000011, 0x80000022, 0x80000033], got
        assert got[0x80000011]["status_name"] == "OK" and got[0x80000011]["id"] == 1
        assert got[0x80000022]["status_name"] == "NOT_FOUND" and got[0x80000022]["id"] == 2
        assert got[0x80000033]["status_name"] == "MALFORMED", got[0x80000033]
        assert "replica requests only" in rk_text(got[0x80000033]["rest"])

        tiny = frame(1, rk_message("RGET", rk_field("KEY", b"k")))
        for what, value in {"cut frame": frames[:-3], "4097 frames": tiny * 4097}.items():
            c.request(rk_message("RBATCH", rk_field("VALUE", value), msg_id=10))
            h = rk_decode_header(c.recv_reply()[1])
            assert h["status_name"] == "MALFORMED" and h["id"] == 10, (what, h)
            assert "malformed batch" in rk_text(h["rest"]), (what, h)
    assert n.kvctl("get", "b1").out == b"one"
    assert n.kvctl("put", "after", "batches").rc == 0


def test_non_sp_garbage_and_cut_frames_do_not_hurt(cluster):
    (n,) = cluster.start(1)
    bg = Background(n)
    try:
        wait_for(lambda: bg.ok >= 2, 15, "the background client to succeed")
        port = n.ports["client"]
        # Not SP at all: the node drops the connection.
        for junk in (b"GET / HTTP/1.0\r\n\r\n", os.urandom(4096), b"\x00SP\x00\xff\xff\x00\x00"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                try:
                    s.sendall(junk)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    continue  # already dropped by the node: what we want
                wait_for(lambda: _closed_or_reset(s), 10, f"the node to drop a connection that sent {junk[:16]!r}")
        # A frame cut short, then the connection closes.
        with SPConn(port) as c:
            c.handshake()
            c.sock.sendall((1000).to_bytes(8, "big") + b"\x80\x00\x00\x01" + b"x" * 10)
        # A frame announcing a huge length: refused, not allocated.
        with SPConn(port) as c:
            c.handshake()
            try:
                c.sock.sendall((1 << 40).to_bytes(8, "big") + b"\x80\x00\x00\x01")
            except OSError:
                pass  # dropped already
            wait_for(lambda: _closed_or_reset(c.sock), 10, "the node to drop a 1 TiB frame")
        wait_for(lambda: bg.ok >= 4, 15, "the background client to keep succeeding")
    finally:
        bg.stop()
    assert not bg.failures, f"the concurrent client failed {len(bg.failures)} times: {bg.failures[:2]}"
    assert n.kvctl("health").rc == 0


def _closed_or_reset(s):
    s.settimeout(0.2)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except socket.timeout:
        return False
    except OSError:  # reset, or not connected any more
        return True


# ---- kvctl against a node that is down -------------------------------------

def test_kvctl_against_a_down_node(cluster):
    n = cluster.add_node()  # never started: nothing listens on its port
    for args in (["get", "k"], ["put", "k", "v"], ["health"]):
        t0 = time.monotonic()
        r = n.kvctl("--timeout", "1s", *args)
        took = time.monotonic() - t0
        want = 1 if args == ["health"] else 3
        assert r.rc in (want, 3), f"{args}: exit {r.rc}: {r}"
        if args != ["health"]:
            assert r.rc == 3, r
        # The timeout plus kvctl's own start-up (slow in sanitizer builds).
        assert took < 3.0, f"{args}: took {took:.2f}s with --timeout 1s"
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and n.client_addr in lines[0], f"{args}: stderr must name the address: {r.err!r}"


def test_kvctl_usage_errors_exit_2(cluster):
    n = cluster.add_node()
    for args in (["frobnicate"], ["put", "only-key"], ["get"], ["put", "k", "v", "--ttl", "soon"],
                 ["--timeout", "never", "get", "k"]):
        r = n.kvctl(*args)
        assert r.rc == 2, f"{args}: {r}"
        assert r.err.strip() and len(r.err.strip().splitlines()) <= 3, f"{args}: {r.err!r}"

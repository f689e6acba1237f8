"""One node, driven with kvctl: put/get/del, binary values, TTL, restarts,
many concurrent clients, back-pressure."""

import os
import threading

from harness import last_json, wait_for


def test_put_get_del_round_trip(cluster):
    (n,) = cluster.start(1)
    assert n.kvctl("put", "greeting", "hello").rc == 0
    r = n.kvctl("get", "greeting")
    assert r.rc == 0 and r.out == b"hello", r

    assert n.kvctl("put", "greeting", "hello again").rc == 0
    r = n.kvctl("get", "greeting")
    assert r.rc == 0 and r.out == b"hello again", r

    r = n.kvctl("del", "greeting")
    assert r.rc == 0, r
    r = n.kvctl("get", "greeting")
    assert r.rc == 1 and r.out == b"", r

    # A deleted key can be written again.
    assert n.kvctl("put", "greeting", "back").rc == 0
    assert n.kvctl("get", "greeting").out == b"back"


def test_get_missing_key_exits_1(cluster):
    (n,) = cluster.start(1)
    r = n.kvctl("get", "no-such-key")
    assert r.rc == 1, r
    assert r.out == b"", r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, f"want one error line: {r}"
    assert "no-such-key" in lines[0] or "not found" in lines[0].lower(), r


def test_binary_value_through_stdin(cluster):
    (n,) = cluster.start(1)
    value = bytes(range(256)) * 40 + b"\x00\xff\x00\n\r\n\xff"
    r = n.kvctl("put", "bin", "-", input=value)
    assert r.rc == 0, r
    r = n.kvctl("get", "bin")
    assert r.rc == 0, r
    assert r.out == value, f"got {len(r.out)} bytes back for {len(value)}: {r.out[:64]!r}..."

    # A value that is nothing but NULs, and one that ends without a newline.
    for key, v in (("nuls", b"\x00" * 1000), ("ff", b"\xff")):
        assert n.kvctl("put", key, "-", input=v).rc == 0
        assert n.kvctl("get", key).out == v


def test_empty_value_is_a_value(cluster):
    (n,) = cluster.start(1)
    assert n.kvctl("put", "empty", "").rc == 0
    r = n.kvctl("get", "empty")
    assert r.rc == 0 and r.out == b"", r
    assert n.kvctl("put", "empty-stdin", "-", input=b"").rc == 0
    r = n.kvctl("get", "empty-stdin")
    assert r.rc == 0 and r.out == b"", r


def test_get_json_has_value_and_version(cluster):
    (n,) = cluster.start(1)
    assert n.kvctl("put", "j", "v1").rc == 0
    r = n.kvctl("--json", "get", "j")
    assert r.rc == 0, r
    first = last_json(r.out)
    assert first["value"] == "v1", first
    assert isinstance(first["version"], int) and first["version"] > 0, first

    assert n.kvctl("put", "j", "v2").rc == 0
    second = last_json(n.kvctl("--json", "get", "j").out)
    assert second["value"] == "v2"
    assert second["version"] > first["version"], (first, second)


def test_ttl_expires(cluster):
    (n,) = cluster.start(1)
    # 3 s: the reads right after the put must fall inside the TTL even in a
    # slow sanitizer build, where each kvctl run takes a good part of a second.
    assert n.kvctl("put", "short", "lived", "--ttl", "3s").rc == 0
    r = n.kvctl("--json", "get", "short")
    assert r.rc == 0, r
    j = last_json(r.out)
    assert j.get("value") == "lived", j
    assert j.get("expiry") or j.get("expiry_ms"), f"get --json shows no expiry for a TTL key: {j}"
    assert n.kvctl("put", "forever", "x").rc == 0

    wait_for(lambda: n.kvctl("get", "short").rc == 1, 10, "the 3s TTL key to read as absent")
    assert n.kvctl("get", "forever").out == b"x"


def test_restart_after_sigterm_keeps_data(cluster):
    (n,) = cluster.start(1)
    for i in range(30):
        assert n.kvctl("put", f"k{i}", f"v{i}").rc == 0
    assert n.kvctl("del", "k7").rc == 0
    assert n.kvctl("put", "bin", "-", input=b"\x00\xffdata").rc == 0

    assert n.stop() == 0, "graceful stop must exit 0"
    n.start()
    for i in range(30):
        r = n.kvctl("get", f"k{i}")
        if i == 7:
            assert r.rc == 1, f"deleted key came back after restart: {r}"
        else:
            assert r.rc == 0 and r.out == f"v{i}".encode(), r
    assert n.kvctl("get", "bin").out == b"\x00\xffdata"
    # And it still takes writes on the reopened data.
    assert n.kvctl("put", "after", "restart").rc == 0
    assert n.kvctl("get", "after").out == b"restart"


def kill9_under_writers(n, acked, prefix, enough):
    """Four kvctl writers put keys prefix-<writer>-<i> into n and record each
    acknowledged one in acked; once enough() holds, kill -9 n."""
    stop = threading.Event()

    def writer(tid):
        i = 0
        while not stop.is_set():
            key, val = f"{prefix}-{tid}-{i}", f"value-{prefix}-{tid}-{i}-" + "x" * (i % 64)
            if n.kvctl("--timeout", "2s", "put", key, val, timeout=10).rc == 0:
                acked[key] = val.encode()
            i += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(enough, 30, f"{prefix}: acknowledged puts before kill -9")
        assert n.kill() == -9
    finally:
        stop.set()
        for t in threads:
            t.join()


def lost_puts(n, acked):
    """Acknowledged puts that n no longer returns exactly."""
    lost = []
    for key, val in acked.items():
        r = n.kvctl("get", key)
        if r.rc != 0 or r.out != val:
            lost.append((key, r.rc, r.out[:40]))
    return lost


def test_kill9_with_fsync_always_keeps_every_acked_put(cluster):
    (n,) = cluster.start(1, overrides={"storage.fsync": "always"})
    acked = {}
    kill9_under_writers(n, acked, "w", lambda: len(acked) >= 60)
    n.start()
    lost = lost_puts(n, acked)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged puts lost after kill -9: {lost[:10]}"


def test_repeated_kill9_cycles_lose_nothing_acked(cluster):
    """Six kill -9s at random moments under 4 writers (fsync = always, the
    pipelined fdatasync path); after every restart, every put acknowledged
    in any earlier cycle is still there with its value."""
    import random
    rng = random.Random(int(os.environ.get("RINGKV_SEED", "20261122")))
    (n,) = cluster.start(1, overrides={"storage.fsync": "always"})
    acked = {}
    for cycle in range(6):
        want = len(acked) + rng.randint(5, 40)
        kill9_under_writers(n, acked, f"c{cycle}", lambda: len(acked) >= want)
        n.start()
        lost = lost_puts(n, acked)
        assert not lost, f"cycle {cycle}: {len(lost)} of {len(acked)} acknowledged puts lost: {lost[:10]}"


def test_32_concurrent_kvctl_clients(cluster):
    (n,) = cluster.start(1)
    errors = []

    def client(cid):
        try:
            for i in range(4):
                key, val = f"c{cid}-k{i}", f"c{cid}-v{i}"
                r = n.kvctl("put", key, val)
                if r.rc != 0:
                    errors.append(("put", key, r))
                    continue
                r = n.kvctl("get", key)
                if r.rc != 0 or r.out != val.encode():
                    errors.append(("get", key, r))
            r = n.kvctl("del", f"c{cid}-k0")
            if r.rc != 0:
                errors.append(("del", cid, r))
        except Exception as e:  # noqa: BLE001 - reported by the assert below
            errors.append(("exception", cid, e))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"{len(errors)} failed operations, first: {errors[:3]}"
    # Each client's keys are its own: spot-check that nothing got mixed up.
    for cid in (0, 13, 31):
        assert n.kvctl("get", f"c{cid}-k3").out == f"c{cid}-v3".encode()
        assert n.kvctl("get", f"c{cid}-k0").rc == 1


def test_bench_32_clients_no_errors(cluster):
    (n,) = cluster.start(1, overrides={"storage.fsync": "interval"})
    r, j = n.bench("--clients", "32", "--duration", "2s", "--workload", "a", "--keys", "1000")
    assert r.rc == 0, r
    assert j["ops"] > 0, j
    assert j["errors"] == {}, f"bench saw errors at 32 clients: {j['errors']}"
    assert n.kvctl("health").rc == 0


def test_busy_under_overload(cluster):
    (n,) = cluster.start(1, overrides={"limits.max_inflight": 1})
    r, j = n.bench("--clients", "64", "--duration", "2s", "--workload", "a", "--keys", "1000")
    assert j["ops"] > 0, f"no request succeeded at max_inflight = 1: {j}"
    # errors: {status name: count}
    assert j["errors"].get("BUSY", 0) > 0, f"64 clients against max_inflight = 1 never got BUSY: {j}"
    # Overload is refused, not fatal: the node answers normally afterwards.
    assert n.kvctl("health").rc == 0
    assert n.kvctl("put", "after", "overload").rc == 0
    assert n.kvctl("get", "after").out == b"overload"


"""Graceful stop is not a leave, black-box: SIGTERM makes a node tell its
peers at once that it is stopping. They show it "stopped" long before
gossip.suspect_after could, do not wait on it (writes for it become hints,
-w 3 fails at once naming it), and it comes back alive on its next start
and receives its hints. kill -9 (no announcement) is still detected by
silence, as "dead". Every wait polls with a deadline.
"""

import signal
import threading
import time

from harness import last_json, member_states, start_alive, wait_for, wait_member_state

# Silence alone would take 10 s to suspect and 30 s to convict: anything
# faster is the announcement. request_timeout is what a write waiting on a
# stopped replica would cost.
GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "10s", "gossip.dead_after": "30s",
          "cluster.request_timeout": "5s"}
REQUEST_TIMEOUT_S = 5.0
FAST_S = 1.0     # "at once": a write refused for a stopped replica takes less than this
SEEN_DOWN_S = 3  # bound on SIGTERM -> every peer shows it stopped (suspect_after is 10 s)
SLACK_S = 20


def wait_state(observers, who, states, timeout=SLACK_S):
    wait_member_state(observers, who, states, timeout)


def start3(cluster, **extra):
    return start_alive(cluster, 3, {**GOSSIP, **extra}, SLACK_S)


def timed_put(node, w, key):
    t0 = time.monotonic()
    r = node.kvctl("-w", str(w), "put", key, f"v-{key}", timeout=REQUEST_TIMEOUT_S * 3)
    return r, time.monotonic() - t0


def hints(node):
    return last_json(node.kvctl("--json", "stats").out)["hints"]


def test_sigterm_peers_mark_it_stopped_w3_fails_at_once_w2_never_fails(cluster):
    nodes = start3(cluster)
    coord, victim = nodes[0], nodes[2]
    # A stream of -w 3 writes through node-1 while node-3 gets SIGTERM.
    results, stop = [], threading.Event()

    def stream():
        i = 0
        while not stop.is_set():
            started = time.monotonic()
            results.append((f"s-{i}",) + timed_put(coord, 3, f"s-{i}") + (started,))
            i += 1

    t = threading.Thread(target=stream)
    t.start()
    try:
        wait_for(lambda: len(results) >= 5, SLACK_S, "the write stream running")
        t0 = time.monotonic()
        victim.signal(signal.SIGTERM)
        wait_state(nodes[:2], victim, ("stopped",), timeout=SEEN_DOWN_S)
        seen_at = time.monotonic()
        seen_s = seen_at - t0
        assert victim.wait_exit(10) == 0
        n_before = len(results)
        wait_for(lambda: len(results) >= n_before + 10, SLACK_S, "10 writes after the stop")
    finally:
        stop.set()
        t.join()
    print(f"\nSIGTERM -> both peers show node-3 stopped: {seen_s * 1000:.0f} ms (poll included)")
    # No write waits for the request timeout: one begun once the peers show
    # node-3 stopped is refused at once, and one whose replica request was
    # already on its way to node-3 is given up as soon as the coordinator's
    # view shows it stopped (within its 200 ms tick), not at request_timeout.
    slow = [(k, round(dt, 2), r.rc, r.err.strip()) for k, r, dt, at in results
            if dt >= FAST_S and at >= seen_at]
    assert slow == [], f"a -w 3 write waited on the stopping node: {slow}"
    straddling = [(k, round(dt, 2)) for k, r, dt, at in results if at < seen_at]
    assert all(dt < seen_s + FAST_S for _, dt in straddling), \
        f"a -w 3 write in flight at the stop waited: {straddling[-5:]}"
    print(f"\n-w 3 writes in flight at the stop, slowest: {max(dt for _, dt in straddling):.2f} s")
    after = results[n_before:]
    for k, r, dt, _ in after:
        lines = r.err.strip().splitlines()
        assert r.rc != 0 and len(lines) == 1, (k, r)
        # Refused as soon as W = 3 is out of reach, before the other acks.
        assert "write quorum not met" in lines[0] and "node-3 stopped" in lines[0], lines
    print(f"-w 3 after the stop: {len(after)} writes, each refused in "
          f"<= {max(dt for _, _, dt, _ in after) * 1000:.0f} ms: {after[0][1].err.strip()}")

    # -w 2: no client error at all, through either survivor; hints kept for node-3.
    keys = [f"w2-{i}" for i in range(60)]
    for i, k in enumerate(keys):
        r, dt = timed_put(nodes[i % 2], 2, k)
        assert r.rc == 0 and dt < FAST_S, (k, r, dt)
    wait_for(lambda: sum(hints(n)["pending"] for n in nodes[:2]) >= len(keys), 5,
             "a hint for every write node-3 missed")

    # Restarted, it is alive again everywhere and its hints reach it.
    victim.start()
    wait_state(nodes, victim, ("alive",))
    wait_for(lambda: all(hints(n)["pending"] == 0 for n in nodes[:2]), SLACK_S, "hints delivered")
    for k in keys[::6]:
        j = last_json(nodes[0].kvctl("--json", "-r", "3", "get", k).out)
        got = {r["node"]: r.get("version") for r in j["replicas"]}
        assert j["value"] == f"v-{k}" and len(got) == 3 and len(set(got.values())) == 1, j
    rr = sum(last_json(n.kvctl("--json", "stats").out)["replication"]["read_repairs"] for n in nodes)
    assert rr == 0, f"hints, not read repair, should have brought node-3 up to date: {rr}"


def test_sigterm_with_no_peer_answering_still_stops_promptly(cluster):
    nodes = start3(cluster)
    victim = nodes[2]
    # Both peers frozen: their connections stay up, nobody answers the
    # announcement. The wait for answers is bounded (300 ms).
    for n in nodes[:2]:
        n.pause()
    try:
        mark = victim.log_mark()
        t0 = time.monotonic()
        victim.signal(signal.SIGTERM)
        assert victim.wait_exit(10) == 0
        took = time.monotonic() - t0
    finally:
        for n in nodes[:2]:
            n.resume()
    assert took < 2.0, f"stop took {took:.2f} s with no peer answering"
    assert any("did not confirm in time" in line for line in victim.log_lines(mark)), \
        victim.log_lines(mark)
    # Resumed, the peers still learn of the stop (the announcement is queued
    # to them), well before suspect_after.
    wait_state(nodes[:2], victim, ("stopped",), timeout=SEEN_DOWN_S)


def test_kill9_is_still_detected_by_silence_as_dead(cluster):
    nodes = start3(cluster, **{"gossip.suspect_after": "1s", "gossip.dead_after": "2s"})
    victim = nodes[2]
    victim.kill()
    # No announcement: suspect, then dead by silence, never "stopped".
    states = set()

    def dead_everywhere():
        seen = [member_states(n).get(victim.name) for n in nodes[:2]]
        states.update(seen)
        return all(s == "dead" for s in seen)

    wait_for(dead_everywhere, SLACK_S, "node-3 dead on both peers")
    assert "stopped" not in states, states
    for i in range(20):
        r, dt = timed_put(nodes[i % 2], 2, f"k9-{i}")
        assert r.rc == 0, r
    victim.start()
    wait_state(nodes, victim, ("alive",))
    wait_for(lambda: all(hints(n)["pending"] == 0 for n in nodes[:2]), SLACK_S, "hints delivered")

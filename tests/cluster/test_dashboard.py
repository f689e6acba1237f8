"""The dashboard (`ringkvd dashboard`, `ringkvd demo`) seen the way a user
sees it: in a terminal (tmux), keys sent, the screen read back. And its
--once --json data against kvctl's."""

import json
import os
import re
import signal
import time

import pytest

from harness import last_json, wait_for
from screen import PANES, Tmux, age_s, frame_no, peers, pids_with, ring_counts, running

pytestmark = pytest.mark.skipif(__import__("shutil").which("tmux") is None,
                                reason="tmux is not installed (packaging/deps.sh installs it)")

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
DEAD_AFTER_S = 2.0
INTERVAL_S = 1.0
WIDE = (200, 60)  # every Peers column shows (ANS: the dashboard's own answer age)
COL = {"heard": 1, "rtt": 2, "held": 3, "ops": 4, "p99": 5, "hints": 7, "ans": 9}


def dashboard(cluster, node, size=WIDE, env=None, *args):
    return Tmux(cluster.base, [cluster.ringkvd, "dashboard", "-a", node.client_addr, *args],
                size[0], size[1], env=env)


def all_alive(ids):
    """Every id alive by gossip, and every member answering the dashboard."""
    def check(s):
        p = peers(s)
        answering = re.search(r"(\d+) answering", s)
        return (all(p.get(i, [""])[0] == "alive" for i in ids) and answering
                and int(answering.group(1)) == len(p) and p)
    return check


def test_members_alive_then_kill_shows_suspect_dead_and_under_replicated(cluster):
    cluster.overrides.update(GOSSIP)
    a, b, c = cluster.start(3)
    with dashboard(cluster, a) as t:
        t.wait_screen(all_alive(["node-1", "node-2", "node-3"]), 15, "three members alive")
        s = t.screen()
        for pane in PANES:
            assert pane in s, f"pane {pane!r} missing:\n{s}"
        assert ring_counts(s).get("u") == 0, s
        t.wait_screen(lambda s: int(peers(s)["node-3"][COL["held"]]) > 0, 10, "node-3 holding partitions")

        killed = time.monotonic()
        c.kill()
        t.wait_screen(lambda s: peers(s)["node-3"][0] == "suspect", 10, "node-3 suspect")
        suspect_s = time.monotonic() - killed
        s = t.wait_screen(lambda s: peers(s)["node-3"][0] == "dead" and s, 10, "node-3 dead")
        dead_s = time.monotonic() - killed
        print(f"kill -9 -> suspect on screen {suspect_s:.2f}s, dead {dead_s:.2f}s")
        assert dead_s <= DEAD_AFTER_S + 2 * INTERVAL_S + 0.5, \
            f"dead shown {dead_s:.2f}s after kill -9 (dead_after {DEAD_AFTER_S}s + 2 refreshes)"
        counts = t.wait_screen(lambda s: ring_counts(s).get("u", 0) > 0 and ring_counts(s), 5,
                               "partitions under-replicated")
        assert counts.get("X", 0) == 0 and counts.get("x", 0) == 0, counts  # 2 of 3 live: R and W hold
        assert "no answer" in s or "did not answer" in s or "timed out" in s or "refused" in s \
            or "node-3" in s

        c.start()
        t.wait_screen(all_alive(["node-1", "node-2", "node-3"]), 15, "node-3 alive again")
        t.wait_screen(lambda s: ring_counts(s).get("u") == 0, 10, "no partition under-replicated")


def test_a_paused_node_does_not_delay_the_others(cluster):
    cluster.overrides.update(GOSSIP)
    a, b, c = cluster.start(3)
    with dashboard(cluster, a) as t:
        t.wait_screen(all_alive(["node-1", "node-2", "node-3"]), 15, "three members alive")
        b.pause()
        try:
            start = time.monotonic()
            frames = []
            worst = {"node-1": 0.0, "node-3": 0.0}
            while time.monotonic() - start < 5:
                s = t.screen()
                p = peers(s)
                n = frame_no(s)
                if n is not None and (not frames or frames[-1][1] != n):
                    frames.append((time.monotonic(), n))
                    for i in worst:
                        worst[i] = max(worst[i], age_s(p[i][COL["ans"]]))
                time.sleep(0.1)
            paused_age = age_s(peers(t.screen())["node-2"][COL["ans"]])
        finally:
            b.resume()
        gaps = [y[0] - x[0] for x, y in zip(frames, frames[1:])]
        print(f"frames {len(frames)} in 5s, largest gap {max(gaps):.2f}s; answer age of the others "
              f"at most {worst}; node-2's {paused_age}s")
        assert len(frames) >= 4, frames
        assert max(gaps) < 2 * INTERVAL_S, gaps
        assert all(v < 2 * INTERVAL_S for v in worst.values()), worst
        assert paused_age >= 3, paused_age


def test_repair_and_join_show_progress_to_done(cluster):
    cluster.overrides.update({**GOSSIP, "antientropy.interval": "1s", "cluster.partitions": 64,
                              "hints.max_bytes_per_target": "0B"})
    a, b, c = cluster.start(3)
    with dashboard(cluster, a) as t:
        t.wait_screen(all_alive(["node-1", "node-2", "node-3"]), 15, "three members alive")
        c.kill()
        t.wait_screen(lambda s: peers(s)["node-3"][0] in ("suspect", "dead"), 10, "node-3 down")
        for i in range(300):
            assert a.kvctl("put", f"k{i}", "v").rc == 0
        c.start()

        def repaired(s):
            reps = [int(x) for x in re.findall(r"rep (\d+)", s)]
            return sum(reps) > 0 and ring_counts(s).get("~") == 0 and reps
        reps = t.wait_screen(repaired, 60, "anti-entropy repairing keys, then no partition marked")
        print(f"keys repaired per node on screen: {reps}")

        d = cluster.add_node()
        d.start()

        def joined(s):
            p = peers(s)
            m = re.search(r"(\d+) done, (\d+) failed", s)
            return ("node-4" in p and p["node-4"][0] == "alive" and int(p["node-4"][COL["held"]]) > 0
                    and m and int(m.group(1)) > 0 and ring_counts(s).get(">") == 0 and m.group(0))
        done = t.wait_screen(joined, 90, "node-4 alive, holding partitions, transfers done")
        print(f"transfers on screen after the join: {done}")


@pytest.mark.parametrize("env", [{}, {"NO_COLOR": "1"}, {"TERM": "vt100"}, {"LANG": "C"}],
                         ids=["colour", "no-color", "vt100", "ascii"])
def test_resizes_and_terminals(cluster, env):
    a, = cluster.start(1)
    with dashboard(cluster, a, (80, 24), env) as t:
        t.wait_screen(all_alive(["node-1"]), 15, "node-1 alive at 80x24")
        s = t.screen()
        assert all(p in s for p in PANES), s
        assert len(s.splitlines()) <= 24 and max(len(x) for x in s.splitlines()) <= 80
        raw = t.screen(escapes=True)
        colours = re.search(r"\x1b\[[0-9;]*3[0-7][;m]", raw) is not None
        if env.get("NO_COLOR") or env.get("TERM") == "vt100":
            assert not colours, "colour sequences on a monochrome / NO_COLOR screen"
        else:
            assert colours, "no colour on a colour terminal"
        if env.get("LANG") == "C":
            assert all(ord(ch) < 128 for ch in s), "non-ASCII characters without a UTF-8 locale"
        else:
            assert "─" in s
        t.resize(200, 60)
        t.wait_screen(lambda s: "ANS" in s and "HINTS" in s, 5, "the wide Peers columns at 200x60")
        t.resize(60, 20)
        t.wait_screen(lambda s: "needs at least 80x24" in s, 5, "the too-small message at 60x20")
        t.resize(80, 24)
        t.wait_screen(lambda s: all(p in s for p in PANES), 5, "the panes back at 80x24")
        t.keys("?")
        t.wait_screen(lambda s: "no read quorum" in s, 5, "the help")
        t.keys("q")
        t.wait_screen(lambda s: t.dead() or None, 5, "the dashboard to exit on q")


def test_once_json_matches_kvctl(cluster):
    cluster.overrides.update(GOSSIP)
    nodes = cluster.start(3)
    a = nodes[0]
    r = cluster.run_ringkvd("dashboard", "-a", a.client_addr, "--once", "--json")
    assert r.rc == 0, r
    d = json.loads(r.out)
    members = last_json(a.kvctl("--json", "members").out)["members"]
    assert {m["id"]: m["state"] for m in d["members"]} == {m["id"]: m["state"] for m in members}
    assert d["ring"]["placement"] and len(d["ring"]["cells"]) == d["partitions"]
    assert d["ring"]["healthy"] == d["partitions"]
    xf = last_json(a.kvctl("--json", "transfers").out)
    assert len(d["transfers"]) == xf["count"]
    for n in nodes:
        mine = [x for x in d["nodes"] if x["id"] == n.name]
        assert len(mine) == 1 and mine[0]["answered"], d["nodes"]
        ae = last_json(n.kvctl("--json", "ae").out)
        ov = mine[0]["overview"]["ae"]
        assert ov["round"] == ae["round"]["number"] and ov["enabled"] == ae["enabled"], (ov, ae["round"])
    # One text frame, 80x24 when stdout is not a terminal.
    r = cluster.run_ringkvd("dashboard", "-a", a.client_addr, "--once")
    lines = r.out.decode().splitlines()
    assert r.rc == 0 and len(lines) == 24 and all(p in r.out.decode() for p in PANES), r.out.decode()
    # A node that does not answer: exit 1, one line.
    r = cluster.run_ringkvd("dashboard", "-a", "tcp://127.0.0.1:1", "--once", timeout=30)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, r
    r = cluster.run_ringkvd("dashboard", "--json")
    assert r.rc == 2 and "--once" in r.err, r


def test_demo_keys_act_and_quit_leaves_no_process(cluster, tmp_path):
    demo_dir = tmp_path / "demo"

    def nodes(name="node-"):
        """PIDs of the demo's ringkvd processes (`run -c DIR/node-K/ringkv.toml`)."""
        return set(pids_with(f"{demo_dir}/{name}"))
    with Tmux(tmp_path, [cluster.ringkvd, "demo", "--nodes", "3", "--dir", demo_dir], 200, 60) as t:
        try:
            t.wait_screen(all_alive(["node-1", "node-2", "node-3"]), 60, "the demo's three nodes alive")
            started = nodes()
            assert len(started) == 3, started
            t.wait_screen(lambda s: peers(s)["node-1"][COL["ops"]] not in ("-", "0"), 15, "the load")

            # Select node-2 (the rows are sorted by id; the cursor starts on the first).
            t.keys("2", "Down")
            t.wait_screen(lambda s: "node-2 alive for" in s, 5, "node-2 selected")
            before = nodes("node-2/")
            t.keys("k")
            t.wait_screen(lambda s: "kill -9 node-2" in s, 5, "the kill confirmation")
            t.keys("y")
            wait_for(lambda: not nodes("node-2/") & before, 10,
                     "node-2's process gone")
            t.wait_screen(lambda s: peers(s)["node-2"][0] in ("suspect", "dead"), 15, "node-2 down")
            t.keys("r")
            t.wait_screen(lambda s: peers(s)["node-2"][0] == "alive", 30, "node-2 alive after r")
            assert nodes("node-2/"), "no node-2 process after r"

            t.keys("z")
            t.wait_screen(lambda s: "STOPPED" in s, 10, "node-2 shown stopped")
            t.keys("z")
            t.wait_screen(lambda s: "STOPPED" not in s, 10, "node-2 resumed")

            t.keys("a")
            t.wait_screen(lambda s: peers(s).get("node-4", [""])[0] == "alive", 60, "node-4 added")
            assert nodes("node-4/"), "no node-4 process after a"
            t.keys("Down", "Down")
            t.wait_screen(lambda s: "node-4 alive for" in s, 5, "node-4 selected")
            t.keys("l")
            t.wait_screen(lambda s: "leave the cluster: node-4" in s, 5, "the leave confirmation")
            t.keys("y")
            t.wait_screen(lambda s: "node-4" not in peers(s) or peers(s)["node-4"][0] == "left"
                          or "exit 0" in s, 90, "node-4 left and exited")
            wait_for(lambda: not nodes("node-4/"), 60, "node-4's process gone after leaving")
            t.keys("t")
            t.wait_screen(lambda s: "load off" in s, 5, "the load toggled off")
            everyone = nodes()
            t.keys("q")
            wait_for(lambda: not nodes() & everyone, 30,
                     "every process the demo started gone after q")
            t.wait_screen(lambda s: str(demo_dir) in s, 10, "where the data and logs are")
            wait_for(t.dead, 30, "the demo to exit after q")
        finally:
            for pid in nodes():  # only the demo's own nodes, by PID
                try:
                    __import__("os").kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_run_with_dashboard_keeps_logs_off_the_screen_and_q_stops_the_node(cluster):
    node = cluster.add_node()
    node.write_config()
    argv = [cluster.ringkvd, "run", "-c", node.config_path, "--dashboard"]
    log = node.data_dir / "ringkvd.log"
    note = f"q stops the node; its log: {log}"
    # The status line is one row: wide enough for the whole path wherever
    # the test tree lives.
    width = max(120, len(note) + 2)
    with Tmux(cluster.base, argv, width, 40) as t:
        t.wait_screen(all_alive(["node-1"]), 20, "the node's own dashboard")
        s = t.screen()
        assert note in s, s
        assert "server: ready" in log.read_text()
        assert not re.search(r"(^|\dZ )(info|warn|error) [a-z_-]+: ", s, re.M), "log lines on the screen"
        assert node.kvctl("health").rc == 0
        t.keys("q")
        pid = t.pid

        # tmux marks the pane dead at the terminal's EOF and learns the exit
        # status when it reaps the process, a moment later. (Under
        # ThreadSanitizer tmux was seen to leave the exited process a zombie
        # and never learn its status: then the log's last line says how it
        # stopped.)
        def ended():
            st = t._tmux("display-message", "-p", "-t", "t",
                         "#{pane_dead}:#{pane_dead_status}/#{pane_dead_signal}").strip()
            if st not in ("0:/", "1:/"):
                return st
            return "exited" if st == "1:/" and not running(pid) else None
        status = wait_for(ended, 60, "the node to stop after q")
        assert status in ("1:0/", "exited"), f"dead:status/signal {status}"
    assert log.read_text().rstrip().endswith("server: stopped"), log.read_text()[-500:]
    # The terminal going away (a closed window, a lost ssh session) stops
    # the node gracefully: it is not left running unseen.
    t = Tmux(cluster.base, argv, width, 40)
    try:
        t.wait_screen(all_alive(["node-1"]), 20, "the node's own dashboard again")
        pid = t.pid
    finally:
        t.close()  # fails if the node outlives its terminal by 15 s
    assert not running(pid)
    assert log.read_text().rstrip().endswith("stopped"), log.read_text()[-500:]
    r = cluster.run_ringkvd("run", "-c", node.config_path, "--dashboard")
    assert r.rc == 2 and "needs a terminal" in r.err, r

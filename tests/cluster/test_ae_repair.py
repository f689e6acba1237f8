"""Damaged data refilled by anti-entropy, black-box.

Bit rot: bytes flipped in the middle of a sealed segment of a stopped node
(its index file kept, so only a start that verifies checksums can notice):
the node refuses to start with one line saying to use --repair; with
--repair it moves the segment aside, logs the records lost, marks the
partitions the segment held, and anti-entropy alone refills them.

Damage found while serving: bytes flipped in a sealed segment of a running
node; the first read that meets the block marks its partitions at once,
and anti-entropy alone makes every key of the block readable there again
(the hash trees cannot see such damage: they hash what the index says).

Anti-entropy is off until the damage and the marks have been checked (then
switched on by SIGHUP), so no exchange can race the checks. Compression is
off so the test reads which keys a block holds from the segment file.
"""

import random
import signal
import struct

from harness import (RawKV, log_body, node_ae, node_stats, replica_misses, rk_decode_header,
                     rk_field, rk_message, wait_all_alive, wait_for)

GOSSIP = {"gossip.interval": "200ms", "gossip.suspect_after": "1s", "gossip.dead_after": "2s"}
PARTS = 64
SLACK_S = 15
REFILL_S = 60
SEED = 20261208
AE_LATER = {**GOSSIP, "cluster.partitions": PARTS, "antientropy.interval": "1s",
            "antientropy.enabled": False, "storage.segment_size": "1MiB",
            "storage.compression": "none"}
KEYS = 3000  # of 1000 random bytes: several 1 MiB segments per worker

# The segment file format (src/storage/record.h).
BLK = struct.Struct("<IHHIIIIQ")  # magic, flags, reserved, raw_len, stored_len, count, reserved, xxh3
REC = struct.Struct("<QQIHHBB")   # version, expiry_ms, vlen, klen, partition, flags, reserved
BLK_MAGIC, BLK_LZ4, REC_TOMBSTONE = 0x4C424B52, 1, 1






def blocks_of(path):
    """[(offset, stored_len, [(key, partition), ...])] of a segment written
    without compression: its blocks and the live records in each."""
    data = path.read_bytes()
    out, off = [], 32
    while off + BLK.size <= len(data):
        magic, flags, _, _, stored, count, _, _ = BLK.unpack_from(data, off)
        if magic != BLK_MAGIC:
            break
        assert not flags & BLK_LZ4, f"{path}: a compressed block at {off}"
        payload, recs, p = data[off + BLK.size:off + BLK.size + stored], [], 0
        for _ in range(count):
            _, _, vlen, klen, part, rflags, _ = REC.unpack_from(payload, p)
            if not rflags & REC_TOMBSTONE:
                recs.append((payload[p + REC.size:p + REC.size + klen], part))
            p += REC.size + klen + vlen
        out.append((off, stored, recs))
        off += BLK.size + stored
    return out


def a_sealed_segment(node):
    """The oldest sealed segment of node that has its index file (one with
    a newer segment after it in its worker's dir)."""
    for d in sorted(node.data_dir.glob("worker-*")):
        for f in sorted(d.glob("seg-*.rks"))[:-1]:
            if f.with_suffix(".rkh").exists():
                return f
    raise AssertionError(f"no sealed segment with an index file under {node.data_dir}")


def flip_block(path, off, stored, nbytes=64):
    """Flip nbytes in the middle of the payload of the block at off: its
    checksum fails, its header stays sane."""
    data = bytearray(path.read_bytes())
    mid = off + BLK.size + stored // 2 - nbytes // 2
    data[mid:mid + nbytes] = bytes(b ^ 0xFF for b in data[mid:mid + nbytes])
    with open(path, "r+b") as f:  # in place: a running node keeps its descriptor
        f.write(data)


def put_pipelined(node, items, depth=32):
    """PUT items through node with depth requests in flight, so replicas
    take several writes per loop turn (blocks of many records, as under
    load). Returns the keys not acknowledged."""
    bad = []
    with RawKV(node) as kv:
        for i in range(0, len(items), depth):
            rids = {kv.conn.request(rk_message("PUT", rk_field("KEY", k) + rk_field("VALUE", v))): k
                    for k, v in items[i:i + depth]}
            while rids:
                rid, body = kv.conn.recv_reply()
                k = rids.pop(rid, None)
                if k is not None and rk_decode_header(body)["status_name"] != "OK":
                    bad.append(k)
    return bad


def write_keys(node):
    """KEYS keys of 1000 random bytes (incompressible), each written once."""
    rng = random.Random(SEED)
    print(f"seed {SEED}")
    want = {b"rot-%05d" % i: rng.randbytes(1000) for i in range(KEYS)}
    assert put_pipelined(node, list(want.items())) == []
    return want


def marked(node, mark):
    """Partitions of node that carry mark."""
    return {p["partition"] for p in node_ae(node)["partitions"] if mark in p["marks"]}


def error_lines(node):
    return [line for line in node.run_log().splitlines() if log_body(line).startswith("error ")]


def switch_ae_on(nodes):
    for n in nodes:
        n.set_config({"antientropy.enabled": True})
        n.signal(signal.SIGHUP)


def wait_refilled(node, keys, want, what):
    left = [list(keys)]

    def done():
        left[0] = replica_misses(node, left[0], want)
        return not left[0]
    wait_for(done, REFILL_S, what)


def wait_marks_cleared(node):
    wait_for(lambda: node_ae(node)["marked_partitions"] == 0, REFILL_S,
             f"every mark of {node.name} cleared (each replica exchanged after it)")


def test_bit_rot_refuses_the_start_and_repair_refills_it(cluster):
    cluster.overrides.update(AE_LATER)
    nodes = cluster.start(3)
    n1, n2, n3 = nodes
    wait_all_alive(nodes, SLACK_S)
    want = write_keys(nodes[0])
    # Acknowledged at W = 2, a key's third replica write may still be on its
    # way: node-2 holds every key before it stops.
    wait_for(lambda: not replica_misses(n2, want, want), SLACK_S, "node-2 holding every key")
    n2.stop()  # graceful: every sealed segment has its index file

    seg = a_sealed_segment(n2)
    blocks = blocks_of(seg)
    assert len(blocks) >= 8, f"{seg} holds {len(blocks)} blocks"
    lost = {k for _, _, recs in blocks for k, _ in recs}
    parts = {p for _, _, recs in blocks for _, p in recs}
    off, stored, _ = blocks[len(blocks) // 2]
    flip_block(seg, off, stored)

    # Refused, in one line that says how to start anyway.
    assert n2.start_refused() == 1
    errs = error_lines(n2)
    assert len(errs) == 1, errs
    assert seg.name in errs[0] and f"corrupt block at offset {off}" in errs[0], errs[0]
    assert "restart with --repair" in errs[0], errs[0]
    assert seg.exists() and seg.with_suffix(".rkh").exists(), "a refused start moved nothing"

    # `ringkvd -c FILE --repair` (no "run": the same command) moves it aside.
    n2.start(args=["-c", str(n2.config_path), "--repair"])
    wait_all_alive(nodes, SLACK_S)
    assert not seg.exists() and seg.with_name(seg.name + ".corrupt").exists()
    log = n2.run_log()
    assert f"is corrupt at offset {off}" in log and f"{len(lost)} records lost" in log, log
    assert f"records_lost={len(lost)}" in log, log
    assert f"{len(parts)} partitions marked for anti-entropy" in log, log
    assert marked(n2, "segment") == parts
    assert set(replica_misses(n2, want, want)) == lost, "node-2 should miss exactly the segment's keys"

    # No client reads from here on: anti-entropy alone refills node-2.
    switch_ae_on(nodes)
    wait_refilled(n2, lost, want, f"anti-entropy to refill the {len(lost)} keys of {seg.name}")
    wait_marks_cleared(n2)
    assert replica_misses(n2, want, want) == []
    st = [node_stats(n) for n in nodes]
    assert sum(s["antientropy"]["keys_repaired"] for s in st) >= len(lost), \
        [s["antientropy"] for s in st]
    assert sum(s["replication"]["read_repairs"] for s in st) == 0
    print(f"{len(lost)} keys of {len(parts)} partitions lost on {n2.name}, refilled")


def test_a_corrupt_block_found_while_serving_is_refilled(cluster):
    cluster.overrides.update(AE_LATER)
    nodes = cluster.start(3)
    n1, victim, n3 = nodes
    wait_all_alive(nodes, SLACK_S)
    want = write_keys(nodes[0])
    victim.restart()  # nothing of its data in its block cache
    wait_all_alive(nodes, SLACK_S)

    seg = a_sealed_segment(victim)
    blocks = blocks_of(seg)
    # The fullest block of the middle half: several keys to refill.
    off, stored, recs = max(blocks[len(blocks) // 4:3 * len(blocks) // 4], key=lambda b: len(b[2]))
    assert len(recs) >= 4, f"the block at {off} of {seg} holds {len(recs)} live records"
    keys = [k for k, _ in recs]
    parts = {p for _, p in recs}
    flip_block(seg, off, stored)  # while it runs

    # One read through the victim meets the block: its replica answers
    # with an error (read repair rewrites that key), and every partition
    # with a record in the block is marked at once.
    with RawKV(victim) as kv:
        st, v, trace = kv.get(keys[0], r=2, trace=True)
    assert st == "OK" and v == want[keys[0]], st
    mine = [r for r in trace["replicas"] if r["node"] == victim.name]
    assert mine and "error" in mine[0], trace
    wait_for(lambda: marked(victim, "corrupt") == parts, 5,
             f"partitions {sorted(parts)} marked corrupt on {victim.name}")
    wait_refilled(victim, keys[:1], want, "read repair of the key read")
    assert replica_misses(victim, keys[1:], want) == keys[1:], \
        "the other keys of the block should be unreadable until anti-entropy runs"

    # No client reads from here on: the exchange of a marked partition
    # pulls the keys storage cannot read, though the trees are equal.
    before = node_stats(victim)["antientropy"]["keys_pulled"]
    switch_ae_on(nodes)
    wait_refilled(victim, keys[1:], want, f"anti-entropy to rewrite the {len(keys) - 1} "
                  f"unreadable keys of the block at {off} of {seg.name}")
    wait_marks_cleared(victim)
    assert replica_misses(victim, want, want) == []
    pulled = node_stats(victim)["antientropy"]["keys_pulled"] - before
    assert pulled >= len(keys) - 1, f"{victim.name} pulled {pulled} keys"
    rr = sum(node_stats(n)["replication"]["read_repairs"] for n in nodes)
    assert rr == 1, f"only the key read should have been read-repaired: {rr}"
    print(f"{len(keys)} keys in a corrupt block of {victim.name}: 1 read-repaired, "
          f"{pulled} pulled by anti-entropy")


def test_repair_is_a_documented_argument(cluster):
    r = cluster.run_ringkvd("--help")
    assert r.rc == 0 and "--repair" in r.out.decode(), r
    r = cluster.run_ringkvd("run", "--repairs")
    assert r.rc == 2 and "unknown argument" in r.err, r

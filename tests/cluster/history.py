"""A recorded history of client operations and the checker for it.

Each operation is one JSON line: {"op": "put"|"get", "key", "value",
"version", "ok", "start", "end", "node", "err"}; start and end are
time.monotonic() around the kvctl call (the real-time interval in which the
operation took effect, if it did). Versions come from the node (put --json,
get --json).

The checks, for a last-writer-wins register per key with R + W > N:
- no acknowledged write is lost: the version a key ends with is at least
  the version of every acknowledged write to it;
- no stale read: a read that began after a write was acknowledged returns
  that write's version or a newer one (a read that found nothing is stale
  if any write to the key was acknowledged before it began).

`python3 history.py FILE` re-checks a saved history.
"""

import json
import sys
import threading


class History:
    def __init__(self, path):
        self.path = path
        self.ops = []
        self._lock = threading.Lock()

    def record(self, **op):
        with self._lock:
            self.ops.append(op)

    def save(self):
        with open(self.path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op, sort_keys=True) + "\n")

    @staticmethod
    def load(path):
        h = History(path)
        with open(path) as f:
            h.ops = [json.loads(line) for line in f if line.strip()]
        return h


def check(ops, final):
    """Violations (strings) of the two rules; final maps key -> the version
    the key ended with (None if absent)."""
    bad = []
    acked = {}
    for op in ops:
        if op["op"] == "put" and op["ok"]:
            acked.setdefault(op["key"], []).append(op)
    for key, writes in acked.items():
        top = max(writes, key=lambda w: w["version"])
        end_version = final.get(key)
        if end_version is None or end_version < top["version"]:
            bad.append(f"lost write: {key} ends at version {end_version}, but the put of "
                       f"{top['value']!r} (version {top['version']}) was acknowledged")
    for op in ops:
        if op["op"] != "get" or not op["ok"]:
            continue
        before = [w for w in acked.get(op["key"], []) if w["end"] < op["start"]]
        if not before:
            continue
        need = max(before, key=lambda w: w["version"])
        got = op.get("version")
        if got is None or got < need["version"]:
            bad.append(f"stale read: get {op['key']} through {op['node']} at {op['start']:.3f} "
                       f"returned version {got} ({op.get('value')!r}), but {need['value']!r} "
                       f"(version {need['version']}) was acknowledged at {need['end']:.3f}")
    return bad


if __name__ == "__main__":
    h = History.load(sys.argv[1])
    finals = {}
    for op in h.ops:
        if op["op"] == "final":
            finals[op["key"]] = op["version"]
    problems = check(h.ops, finals)
    print("\n".join(problems) or "history is consistent")
    sys.exit(1 if problems else 0)

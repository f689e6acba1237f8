#!/usr/bin/env bash
# Storage benchmark driver: builds bench_storage in Release if needed, runs it
# RUNS times with 100-byte values and once with 1 KiB values, prints every run
# and the median of each figure beside its target. Data dirs are removed on
# exit. See tests/bench/README.md for what the figures mean.
#
# Environment:
#   RUNS=3            runs with 100 B values
#   KEYS=1000000      keys per run (100 B)
#   KEYS_1K=$KEYS     keys for the 1 KiB run (fewer if disk or time is short)
#   RUN_1K=1          0 skips the 1 KiB run
#   BUILD_DIR=$TMPDIR/ringkv-bench-build   (a Release build tree)
#   BENCH_DIR=$TMPDIR (or /tmp)            where the data dirs are created
#   BENCH_BIN=path    use this bench_storage binary instead of building one
# Extra arguments are passed to every bench_storage run (e.g. --secs 3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=${TMPDIR:-/tmp}
build=${BUILD_DIR:-$tmp/ringkv-bench-build}
runs=${RUNS:-3}
keys=${KEYS:-1000000}
keys_1k=${KEYS_1K:-$keys}
run_1k=${RUN_1K:-1}
bench_dir=${BENCH_DIR:-$tmp}

# Configure only when the tree is missing or not Release; building is
# incremental, so running it every time costs little.
bin=${BENCH_BIN:-}
if [[ -z $bin ]]; then
    if ! grep -qs '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt"; then
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$build" -j2 --target bench_storage >/dev/null
    bin=$build/tests/bench/bench_storage
fi

work=$(mktemp -d "$bench_dir/rk_storage_bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run NAME ARGS...: one bench run, human lines to the terminal, JSON kept.
run() {
    local name=$1 rc=0
    shift
    echo "== $name"
    "$bin" --json --dir "$work" "$@" >"$work/$name.json" || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "   (bench_storage exited $rc: see the ERROR notes above)"
    fi
}

start=$SECONDS
for ((i = 1; i <= runs; i++)); do
    run "100B-run$i" --keys "$keys" --value-size 100 "$@"
done
if [[ $run_1k != 0 ]]; then
    run "1KiB-run1" --keys "$keys_1k" --value-size 1024 "$@"
fi

python3 - "$work" <<'EOF'
import glob, json, os, statistics, sys

work = sys.argv[1]
groups = {}
for path in sorted(glob.glob(os.path.join(work, "*.json"))):
    name = os.path.basename(path)[:-5]
    try:
        with open(path) as f:
            groups.setdefault(name.split("-")[0], []).append(json.load(f))
    except (OSError, ValueError) as e:
        print(f"{name}: no JSON result ({e})")

def fmt(v):
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"

def verdict(value, target):
    op, limit = target.split()
    ok = value >= float(limit) if op == ">=" else value <= float(limit)
    return f"target {target}: " + ("ok" if ok else "MISSED")

for group, results in groups.items():
    first = results[0]
    print(f"\n== medians: {group}, {first['keys']} keys x {first['value_size']} B, "
          f"batch {first['batch']}, {len(results)} run(s)")
    missed = []
    for fig in first["figures"]:
        vals = [r["figures"].get(fig) for r in results]
        vals = [v for v in vals if v is not None]
        if not vals:
            print(f"  {fig:<28} {'n/a':>12}")
            continue
        med = statistics.median(vals)
        runs = " ".join(fmt(v) for v in vals)
        line = f"  {fig:<28} {fmt(med):>12}   runs: {runs}"
        target = first["targets"].get(fig)
        if target:
            line += "   " + verdict(med, target)
            if "MISSED" in line:
                missed.append(fig)
        print(line)
    errors = sum(r["errors"] for r in results)
    print("  targets missed: " + (", ".join(missed) if missed else "none"))
    if errors:
        print(f"  ERRORS reported by the engine: {errors} (see the notes above)")
EOF
echo "total time: $((SECONDS - start)) s"

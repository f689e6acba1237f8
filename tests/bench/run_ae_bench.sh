#!/usr/bin/env bash
# Anti-entropy benchmark: refill of a wiped replica (default budget, budget
# off) against a plain copy, the cost of an in-sync round, tree build at
# start, workload a latency during a repair; see ae_bench.py and
# tests/bench/README.md. Arguments go to ae_bench.py (e.g. --keys 200000
# --rounds 1).
#
# Environment:
#   RINGKV_BUILD=build/release   the build tree (configured as Release if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bash "$root/packaging/deps.sh"
. "$root/tests/bench/build.sh"
bench_build run_ae_bench ringkvd kvctl
exec /usr/bin/python3 "$root/tests/bench/ae_bench.py" --build "$build" "$@"

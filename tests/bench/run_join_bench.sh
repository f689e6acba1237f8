#!/usr/bin/env bash
# Transfer benchmark: a join into a loaded cluster at the default limit and
# unlimited, workload a during a join, leave; see join_bench.py and
# tests/bench/README.md. Arguments go to join_bench.py (e.g. --keys 200000
# --rounds 1).
#
# Environment:
#   RINGKV_BUILD=build/release   the build tree (configured as Release if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bash "$root/packaging/deps.sh"
. "$root/tests/bench/build.sh"
bench_build run_join_bench ringkvd kvctl
exec /usr/bin/python3 "$root/tests/bench/join_bench.py" --build "$build" "$@"

#!/usr/bin/env bash
# Node benchmark: one ringkvd vs an NNG echo server vs Redis, and a 3-node
# ringkvd cluster vs the single node, interleaved; see node_bench.py and
# tests/bench/README.md. Installs Redis from Debian when it can (the run
# goes on without Redis otherwise), builds what it needs, then runs the
# benchmark with the arguments given (e.g. --rounds 5 --duration 10).
#
# Environment:
#   RINGKV_BUILD=build/release   the build tree (configured as Release if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! bash "$root/packaging/deps.sh" --bench; then
    echo "run_node_bench: dependencies missing (see above); Redis rows may be skipped" >&2
fi
. "$root/tests/bench/build.sh"
bench_build run_node_bench ringkvd kvctl echo_server
exec python3 "$root/tests/bench/node_bench.py" --build "$build" "$@"

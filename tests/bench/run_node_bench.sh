#!/usr/bin/env bash
# Single-node benchmark (ringkvd vs an NNG echo server vs Redis); see
# node_bench.py. Installs Redis from Debian, builds Release, runs 3 rounds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${RINGKV_BUILD_DIR:-$root/build}/bench
bash "$root/packaging/deps.sh" --bench
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target ringkvd kvctl echo_server >/dev/null
exec python3 "$root/tests/bench/node_bench.py" --build "$build" "$@"

#!/usr/bin/env bash
# Gossip benchmark (convergence, gossip bytes, kill -9 detection, false
# suspicions under SIGSTOP); see gossip_bench.py and tests/bench/README.md.
# Builds ringkvd and kvctl in a Release tree if needed, then runs the
# benchmark with the arguments given (e.g. --only fp --fp-duration 60).
#
# Environment:
#   RINGKV_BUILD=build/release   the build tree (configured as Release if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${RINGKV_BUILD:-$root/build/release}
# Configure only when the tree is missing: build/release is shared with the
# cluster tests, so an existing tree keeps its build type (RelWithDebInfo
# is as good here: the figures are timer-bound, not CPU-bound). Building is
# incremental, so running it every time costs little.
if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")
case $type in
Release | RelWithDebInfo) ;;
*) echo "run_gossip_bench: warning: $build is a '${type:-no type}' build, not optimised" >&2 ;;
esac
cmake --build "$build" -j2 --target ringkvd kvctl >/dev/null
exec python3 "$root/tests/bench/gossip_bench.py" --build "$build" "$@"

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
. "$root/tests/bench/build.sh"
bench_build run_gossip_bench ringkvd kvctl
exec python3 "$root/tests/bench/gossip_bench.py" --build "$build" "$@"

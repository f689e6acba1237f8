#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds ringkv (RelWithDebInfo) and runs one
# node in the foreground: built-in defaults, data in ./ringkv-data, clients
# on tcp://0.0.0.0:7400 (from this machine only: protected mode, README). Arguments go to ringkvd (e.g. run -c etc/ringkv.toml,
# or demo: packaging/run-demo.sh).
# Build tree: $RINGKV_BUILD_DIR (default build/ in the checkout).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RINGKV_BUILD_DIR:-$root/build}/release
bash "$root/packaging/deps.sh"
# The same settings as tests/run.sh's release build, so either script can
# run first and the other reuses the tree; only the two binaries are built.
cmake -S "$root" -B "$build" -DRINGKV_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=ON -DRINGKV_SANITIZER= >/dev/null
cmake --build "$build" -j"$(nproc)" --target ringkvd kvctl >/dev/null
if [[ $# -eq 0 || $1 == run || $1 == -c ]]; then
  echo "ringkvd: starting; in another shell: $build/src/kvctl put hello world && $build/src/kvctl get hello" >&2
fi
exec "$build/src/ringkvd" "$@"

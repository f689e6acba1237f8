#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds ringkv (Release) and runs one
# node in the foreground: built-in defaults, data in ./ringkv-data, clients
# on tcp://0.0.0.0:7400. Arguments go to ringkvd (e.g. run -c etc/ringkv.toml).
# Build tree: $RINGKV_BUILD_DIR (default build/ in the checkout).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RINGKV_BUILD_DIR:-$root/build}/release
bash "$root/packaging/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "ringkvd: starting; in another shell: $build/src/kvctl put hello world && $build/src/kvctl get hello" >&2
exec "$build/src/ringkvd" "$@"

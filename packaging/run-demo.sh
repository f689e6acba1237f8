#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds ringkv (RelWithDebInfo) and runs
# `ringkvd demo`: a local 3-node cluster on loopback with a light load and the
# live dashboard in this terminal (q stops every node it started and says
# where their data and logs are). Arguments go to `ringkvd demo` (e.g.
# --nodes 5 --dir /tmp/demo). Build tree: $RINGKV_BUILD_DIR (default build/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RINGKV_BUILD_DIR:-$root/build}/release
bash "$root/packaging/deps.sh"
# The same settings as tests/run.sh's release build, so either script can
# run first and the other reuses the tree; only the two binaries are built.
cmake -S "$root" -B "$build" -DRINGKV_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=ON -DRINGKV_SANITIZER= >/dev/null
cmake --build "$build" -j"$(nproc)" --target ringkvd kvctl >/dev/null
exec "$build/src/ringkvd" demo "$@"

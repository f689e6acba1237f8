#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs every test:
#   1. packaging/deps.sh installs what is missing (root);
#   2. every C file must be as clang-format leaves it (seconds);
#   3. a -Werror build runs the whole ctest suite (unit, fuzz replay, ...);
#   4. an ASan+UBSan build runs the unit and cluster tests again.
# Build trees go to $RINGKV_BUILD_DIR (default: build/ in the checkout).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RINGKV_BUILD_DIR:-$root/build}
jobs=$(nproc)

bash "$root/packaging/deps.sh"

echo "== formatting (clang-format with .clang-format)"
bash "$root/tests/check_format.sh"

echo "== release build (-Werror), all tests"
# Every setting that matters is given, so a tree configured by another
# script (packaging/run-node.sh) is brought back to what this one needs.
cmake -S "$root" -B "$build/release" -DRINGKV_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=ON -DRINGKV_SANITIZER= >/dev/null
cmake --build "$build/release" -j"$jobs"
ctest --test-dir "$build/release" --output-on-failure --no-tests=error -j"$jobs"

echo "== ASan+UBSan build, unit and cluster tests"
cmake -S "$root" -B "$build/asan" -DRINGKV_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
  -DBUILD_TESTING=ON -DRINGKV_SANITIZER=address,undefined >/dev/null
cmake --build "$build/asan" -j"$jobs"
ctest --test-dir "$build/asan" --output-on-failure --no-tests=error -j"$jobs" -L 'unit|cluster'

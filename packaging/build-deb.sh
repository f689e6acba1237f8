#!/usr/bin/env bash
# Builds the Debian package ringkv_VERSION_ARCH.deb from this checkout:
#   bash packaging/build-deb.sh [OUTDIR]      (default OUTDIR: build/deb)
# The sources (tracked and new files, not what .gitignore hides) are copied
# to a temporary directory with packaging/debian as debian/, and
# `dpkg-buildpackage -b -us -uc` runs there, so the checkout gets nothing
# but OUTDIR. Needs the build dependencies of packaging/debian/control
# (packaging/deps.sh installs them). Prints the path of the .deb.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/deb}

# One version: CMake's project() and debian/changelog must agree.
version=$(sed -n 's/^project(ringkv VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
deb_version=$(dpkg-parsechangelog -l "$root/packaging/debian/changelog" -S Version)
if [[ -z $version || $version != "$deb_version" ]]; then
  echo "build-deb: CMakeLists.txt says version '$version', packaging/debian/changelog '$deb_version'" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/ringkv-$version
mkdir -p "$src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Files deleted in the work tree but still in the index are skipped.
  (cd "$root" && git ls-files -z -co --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$src"
else
  tar -C "$root" --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -r "$root/packaging/debian" "$src/debian"

log=$work/build.log
if ! (cd "$src" && dpkg-buildpackage -b -us -uc) >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "build-deb: dpkg-buildpackage failed (last lines above)" >&2
  exit 1
fi

mkdir -p "$out"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
echo "$out/ringkv_${version}_${arch}.deb"

#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of ringkv from Debian
# 12's archive. Idempotent and non-interactive; when everything is already
# installed it only asks dpkg and returns (well under a second).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libev-dev libnng-dev liblz4-dev libxxhash-dev libncurses-dev libsystemd-dev
  libmbedtls-dev              # HMAC (cluster secret) and X.509 checks (TLS files)
  libcmocka-dev python3 python3-pytest
  openssl                    # tests: certificate authorities and certificates for TLS
  clang libclang-rt-14-dev   # libFuzzer targets (RINGKV_FUZZ) and clang sanitizers
  clang-format               # tests/check_format.sh (the formatting step of tests/run.sh)
  systemd                    # systemd-analyze verify on systemd/ringkvd.service
  tmux                       # cluster tests drive the dashboard in a terminal
  lz4                        # the storage benchmark compares with `lz4 -b1 -B16384`
  libfaketime                # cluster tests: a node whose wall clock runs ahead
  debhelper dpkg-dev fakeroot lintian groff   # packaging/build-deb.sh and tests/cluster/test_package.py
  prometheus                 # tests/cluster/test_http.py: promtool check metrics, a real scraper
  iproute2                   # tests/cluster/test_protected.py: an address of this host that is not loopback
)

# --bench: also what tests/bench/run_node_bench.sh compares against.
if [[ ${1:-} == --bench ]]; then
  packages+=(redis-server redis-tools)
fi

missing=()
for p in "${packages[@]}"; do
  [[ $p == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing ${missing[*]}; run as root (sudo bash packaging/deps.sh)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds ringkv and runs `ringkvd demo`: a
# local 3-node cluster on loopback with a light load and the live dashboard
# in this terminal (q stops every node it started and says where their data
# and logs are). Arguments go to `ringkvd demo` (e.g. --nodes 5 --dir
# /tmp/demo). The setup and build are run-node.sh's.
set -euo pipefail
exec bash "$(dirname "$0")/run-node.sh" demo "$@"

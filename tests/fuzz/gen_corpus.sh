#!/usr/bin/env bash
# Rewrites the committed seed corpora, tests/fuzz/corpus/<target>/, from
# each target's curated inputs (rk_fuzz_corpus, or its seed): run after
# changing a format or a target's inputs, then commit the result. Files
# that are not curated inputs (regression inputs, named crash-*) are kept.
#   tests/fuzz/gen_corpus.sh BUILD_DIR [TARGET...]
set -euo pipefail
build=${1:?usage: gen_corpus.sh BUILD_DIR [TARGET...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
if (($# == 0)); then
  mapfile -t targets < <(cd "$build/tests/fuzz" && ls replay_* | sed 's/^replay_//')
else
  targets=("$@")
fi
for t in "${targets[@]}"; do
  dir=$here/corpus/$t
  mkdir -p "$dir"
  find "$dir" -type f ! -name 'crash-*' -delete
  "$build/tests/fuzz/replay_$t" --gen "$dir"
  echo "$t: $(ls "$dir" | wc -l) files, $(du -sk "$dir" | cut -f1) KiB"
done

#!/usr/bin/env bash
# `flashline make-tiny` against the reference generator (tests/reference/make_tiny.py) for the same
# preset and seed: the same tensor names, dtypes, shapes and bytes, the same shards and the same
# config (compare_release_layout.py). Values differ by design (other random number generators).
#   make_tiny_reference_test.sh FLASHLINE PYTHON WORKDIR PRESET
# PRESET: tiny-a (a preset of both generators), a preset file (*.json, read by both), or another
# flashline preset, given to the reference as the config flashline wrote for it.
set -euo pipefail
flashline=$1 python=$2 work=$3 preset=$4
here=$(cd "$(dirname "$0")" && pwd)
reference="$here/../reference/make_tiny.py"
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
if [[ $preset == *.json ]]; then
  "$flashline" make-tiny --out "$work/ours" --config "$preset" --quiet || fail "make-tiny --config $preset failed"
  "$python" "$reference" "$preset" "$work/reference" || fail "the reference generator failed on $preset"
elif [[ $preset == tiny-a ]]; then
  # The reference's tiny-a: seed 20240601.
  "$flashline" make-tiny --out "$work/ours" --preset tiny-a --seed 20240601 --quiet || fail "make-tiny failed"
  "$python" "$reference" tiny-a "$work/reference" || fail "the reference generator failed on tiny-a"
else
  "$flashline" make-tiny --out "$work/ours" --preset "$preset" --seed 5 --quiet || fail "make-tiny failed"
  "$python" - "$work/ours/config.json" "$work/$preset.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
g = c.pop("generator")
c.update(name=g["name"], seed=g["seed"], init_gains=g["init_gains"])
json.dump(c, open(sys.argv[2], "w"))
PY
  "$python" "$reference" "$work/$preset.json" "$work/reference" || fail "the reference generator failed on $preset"
fi
"$python" "$here/compare_release_layout.py" "$work/ours" "$work/reference"

#!/usr/bin/env bash
# The main job on a built-in tiny model: build, make a random tiny checkpoint in the release
# format, plan two pipeline stages on this machine and launch them with mpirun (one process per
# stage), generating greedily from a short prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh build
bin=build/launch/flashline
model=out/tiny-demo
prompt=(--prompt-ids 5,17,300,42 --max-new-tokens 16)
mkdir -p out
[ -f "$model/config.json" ] || $bin make-tiny --out "$model" --preset tiny-a --seed 7
$bin inspect --model "$model" | tail -n 3
$bin plan --cluster localhost:2 --stages 2 --lanes 1 --model "$model" --context 4096 -o out/demo.plan.yaml
ids=$($bin launch --plan out/demo.plan.yaml --model "$model" -- "${prompt[@]}")
echo "generated ids: $ids"
# The same request in one process gives the same ids.
single=$($bin generate --model "$model" "${prompt[@]}" 2>/dev/null)
[ "$ids" = "$single" ] || { echo "one process gave $single" >&2; exit 1; }
echo "(equal to flashline generate in one process)"

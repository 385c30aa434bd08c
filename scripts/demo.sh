#!/usr/bin/env bash
# The main job on a built-in tiny model: build, make a random tiny checkpoint in the release
# format, inspect it, and generate greedily from a short prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh build
bin=build/launch/flashline
model=out/tiny-demo
mkdir -p out
[ -f "$model/config.json" ] || $bin make-tiny --out "$model" --preset tiny-a --seed 7
$bin inspect --model "$model" | tail -n 3
$bin generate --model "$model" --prompt-ids 5,17,300,42 --max-new-tokens 16

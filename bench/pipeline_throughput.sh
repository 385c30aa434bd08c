#!/usr/bin/env bash
# Prefill and decode tokens/s of the pipeline runtime for 1x1, 2x1 and 1x2 (stages x lanes) on
# tiny-a and on the larger random `small` config, under mpirun on this machine. Plans come from
# `flashline plan --cluster localhost:N`. Workload: REQUESTS concurrent prompts of PROMPT tokens,
# NEW new tokens each (greedy), fast numerics.
#   bench/pipeline_throughput.sh [BUILD_DIR]      (default build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flashline=$build/launch/flashline
requests=${REQUESTS:-8} prompt=${PROMPT:-64} new=${NEW:-32}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$flashline" make-tiny --preset small --out "$work/small" --quiet >/dev/null

printf '%-7s %-6s %14s %14s\n' model plan "prefill tok/s" "decode tok/s"
for model in "$root/tests/data/models/tiny-a" "$work/small"; do
  vocab=$(grep -o '"vocab_size": *[0-9]*' "$model/config.json" | grep -o '[0-9]*$')
  # Deterministic prompts: request r, position i -> (r * 7919 + i * 104729) % vocab.
  {
    printf '['
    for ((r = 0; r < requests; r++)); do
      ((r > 0)) && printf ','
      printf '['
      for ((i = 0; i < prompt; i++)); do
        ((i > 0)) && printf ','
        printf '%d' $(((r * 7919 + i * 104729) % vocab))
      done
      printf ']'
    done
    printf ']\n'
  } >"$work/prompts.json"
  for shape in "1 1" "2 1" "1 2"; do
    read -r stages lanes <<<"$shape"
    np=$((stages * lanes))
    "$flashline" plan --cluster "localhost:$np" --model "$model" --stages "$stages" --lanes "$lanes" \
      -o "$work/plan.yaml" >/dev/null 2>&1
    line=$(mpirun --allow-run-as-root --oversubscribe -np "$np" "$flashline" generate --model "$model" \
      --prompts "@$work/prompts.json" --max-new-tokens "$new" --plan "$work/plan.yaml" 2>&1 >/dev/null |
      grep '^prefill')
    pre=$(sed -E 's/.*\(([0-9.]+) tok\/s\); decode.*/\1/' <<<"$line")
    dec=$(sed -E 's/.*decode.*\(([0-9.]+) tok\/s\)$/\1/' <<<"$line")
    printf '%-7s %-6s %14s %14s\n' "$(basename "$model")" "${stages}x${lanes}" "$pre" "$dec"
  done
done

#!/usr/bin/env bash
# The committed benchmark figures (docs/bench/): for each model (tiny: tiny-a's shape, small: the
# `small` preset's, both with the V4 vocabulary so the HTTP server can tokenize) and each plan
# shape (stages x lanes) on this machine:
#   1. `flashline plan --cluster localhost:N --batch C` (C: the largest concurrency of the sweep),
#   2. `flashline launch --run serve` on that plan, `flashline bench sweep --plan` against it
#      (random prompts, one JSON per concurrency, sweep.svg, sweep.txt), SIGUSR1 to stop it,
#   3. `flashline launch --run "bench offline"` on the same plan: the engine without HTTP, with
#      the planner's predicted step times beside the measured ones per stage (offline.json/.txt).
#   bench/local_sweep.sh [BUILD_DIR] [OUT_DIR]      (defaults: build, docs/bench)
# Environment: MODELS ("tiny small"), SHAPES ("1x1 2x2"), CONCURRENCIES (1,4,16), PROMPTS (16),
# INPUT_LEN (64), OUTPUT_LEN (32), THREADS (compute threads per rank, 1: steady figures on a shared
# machine; 0: the plan's share of the cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/docs/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
flashline=$build/launch/flashline
tokenizer=$root/tests/data/tokenizer/tokenizer.json
models=${MODELS:-tiny small} shapes=${SHAPES:-1x1 2x2}
concurrencies=${CONCURRENCIES:-1,4,16} prompts=${PROMPTS:-16} input_len=${INPUT_LEN:-64} output_len=${OUTPUT_LEN:-32}
threads=${THREADS:-1}
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -USR1 "$server_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

declare -A config=([tiny]=$root/tests/http/tiny-v4-vocab.json [small]=$root/configs/models/small-v4-vocab.json)
largest=${concurrencies##*,}
for model in $models; do
  "$flashline" make-tiny --config "${config[$model]}" --out "$work/$model" --quiet
  for shape in $shapes; do
    stages=${shape%x*} lanes=${shape#*x}
    dir=$out/$model-$shape
    mkdir -p "$dir"
    plan=$work/$model-$shape.plan.yaml
    "$flashline" plan --cluster "localhost:$((stages * lanes))" --model "$work/$model" --stages "$stages" \
      --lanes "$lanes" --batch "$largest" -o "$plan" >/dev/null 2>&1
    cp "$plan" "$dir/plan.yaml"

    "$flashline" launch --plan "$plan" --model "$work/$model" --run serve -- --tokenizer "$tokenizer" \
      --served-model-name "$model" --threads "$threads" --port 0 2>"$work/server.log" &
    server_pid=$!
    url=
    for _ in $(seq 600); do
      url=$(grep -o 'serving [^ ]* on http://[^ ]*' "$work/server.log" | grep -o 'http://.*' || true)
      [ -n "$url" ] && break
      kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
      sleep 0.5
    done
    [ -n "$url" ] || { echo "server not ready"; cat "$work/server.log"; exit 1; }
    sweep=("$flashline" bench sweep --base-url "$url" --tokenizer "$tokenizer" --dataset random
           --input-len "$input_len" --output-len "$output_len" --num-prompts "$prompts" --ignore-eos
           --concurrencies "$concurrencies" --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,99
           --plan "$dir/plan.yaml" --out-dir "$dir")
    {
      echo "# $model $shape: the server, then the sweep against it, then the engine alone (WORK: a scratch folder)"
      printf '%q ' "$flashline" make-tiny --config "${config[$model]}" --out "$work/$model"; echo
      printf '%q ' "$flashline" plan --cluster "localhost:$((stages * lanes))" --model "$work/$model" --stages "$stages" \
        --lanes "$lanes" --batch "$largest" -o "$dir/plan.yaml"; echo
      printf '%q ' "$flashline" launch --plan "$dir/plan.yaml" --model "$work/$model" --run serve -- --tokenizer \
        "$tokenizer" --served-model-name "$model" --threads "$threads" --port 8000; echo
      printf '%q ' "${sweep[@]}"; echo
    } | sed "s|$root/||g; s|$build/|build/|g; s|$url|http://127.0.0.1:8000|g; s|$work/|WORK/|g" >"$dir/commands.txt"
    "${sweep[@]}" >"$dir/sweep-output.txt"
    kill -USR1 "$server_pid"
    wait "$server_pid"
    server_pid=

    offline=("$flashline" launch --plan "$plan" --model "$work/$model" --run "bench offline" -- --num-prompts "$largest"
             --input-len "$input_len" --output-len "$output_len" --threads "$threads" --save-result "$dir/offline.json")
    printf '%q ' "${offline[@]}" | sed "s|$plan|$dir/plan.yaml|g; s|$root/||g; s|$build/|build/|g; s|$work/|WORK/|g; s|\$| >offline.txt\\n|" >>"$dir/commands.txt"
    "${offline[@]}" >"$dir/offline.txt" 2>"$work/offline.log" || { cat "$work/offline.log"; exit 1; }
    # The results name this checkout's and the scratch folder's paths (tokenizer, model): relative.
    sed -i "s|$root/||g; s|$work/|WORK/|g" "$dir"/*.json "$dir"/*.yaml "$dir"/*.txt
    echo "$model $shape done"
  done
done

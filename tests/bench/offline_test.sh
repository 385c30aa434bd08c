#!/usr/bin/env bash
# `flashline bench offline` in one process and as a 2x2 world under `flashline launch --run
# "bench offline"` on tiny-a: every request completes, the totals are the requested lengths, and
# with the plan the per-stage predicted vs measured figures are printed and saved.
#   tests/bench/offline_test.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
flashline=$1/launch/flashline
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$flashline" plan --cluster localhost:4 --model "$root/tests/data/models/tiny-a" --stages 2 --lanes 2 \
  -o "$work/plan.yaml" >/dev/null
export OMP_NUM_THREADS=1

"$flashline" bench offline --model "$root/tests/data/models/tiny-a" --num-prompts 6 --input-len 20 --output-len 5 \
  --save-result "$work/one.json" >"$work/one.txt"
"$flashline" launch --plan "$work/plan.yaml" --model "$root/tests/data/models/tiny-a" --run "bench offline" -- \
  --num-prompts 8 --input-len 24 --output-len 6 --save-result "$work/world.json" >"$work/world.txt" 2>"$work/world.err" ||
  { cat "$work/world.txt" "$work/world.err"; exit 1; }

python3 - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
one = json.load(open(f"{work}/one.json"))
assert one["completed"] == 6 and one["total_input_tokens"] == 120 and one["total_output_tokens"] == 30, one
assert one["backend"] == "flashline-engine" and "plan_comparison" not in one
world = json.load(open(f"{work}/world.json"))
assert world["completed"] == 8 and world["total_output_tokens"] == 48 and world["output_lens"] == [6] * 8, world
assert all(len(g) == 5 for g in world["itls"])
for key in ("mean_ttft_ms", "p99_tpot_ms", "median_itl_ms", "p90_e2el_ms", "tokens_per_second", "elapsed_time"):
    assert isinstance(world[key], (int, float)), key
pc = world["plan_comparison"]
assert pc["stages"] == 2 and pc["lanes"] == 2 and len(pc["per_stage"]) == 2, pc
for stage in pc["per_stage"]:
    assert stage["measured_step_ms"] > 0 and 0 <= stage["measured_idle_share"] <= 1, stage
    assert stage["predicted_decode_step_ms"] > 0, stage
assert pc["measured_decode_tokens_per_s"] > 0 and pc["measured_prefill_tokens_per_s"] > 0, pc
text = open(f"{work}/world.txt").read()
assert re.search(r"Successful requests: +8 ", text), text
assert "Planner prediction vs measured" in text and "Throughput: " in text, text
print("bench offline: 1x1 and 2x2 ok")
PY

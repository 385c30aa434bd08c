#!/usr/bin/env bash
# The serving engine under mpirun: requests arriving at their offsets (engine_prompts.json: 8
# prompts of 1 to 260 tokens, half of them sampled at temperature 0.8 / top_p 0.9 with a seed),
# under small token budgets and prefill chunks, give on every placement the ids of the same
# requests run one at a time in one process (greedy and seeded sampling alike), and every rank
# ends with an empty KV pool. With PROMPTS = engine_abort_prompts.json, one request is aborted in
# the middle of its chunked prefill and one in the middle of its decode: the others still get
# their solo ids and every rank's pool still ends empty. With SPEC = k (1..3) the pipelined run
# drafts k tokens per step on the last stage (exact numerics, both runs; half the requests with
# drafts forced from their solo ids, partly wrong): the ids are still the solo runs' without drafts.
#   engine_test.sh NP PLAN BUDGET CHUNK [PROMPTS]
# Environment: FLASHLINE, MPIEXEC, MODEL, WORK (scratch directory), HERE (this folder), SPEC.
set -euo pipefail
np=$1 plan=$2 budget=$3 chunk=$4 prompts=$HERE/${5:-engine_prompts.json}
spec=${SPEC:-0}
work="$WORK/engine-$(basename "$plan" .yaml)-$budget-$chunk-$(basename "$prompts" .json)-spec$spec"
solo_flags=() run_flags=()
if [ "$spec" != 0 ]; then
  solo_flags=(--numerics exact)
  run_flags=(--numerics exact --speculative-tokens "$spec")
fi
rm -rf "$work" && mkdir -p "$work"
export OMP_NUM_THREADS=1  # ranks share the machine's cores
fail() {
  echo "FAIL: $*" >&2
  [ -n "${last_log:-}" ] && { echo "--- $last_cmd" >&2; tail -n 40 "$last_log" >&2; }
  exit 1
}

# Each request alone, in one process, default budget.
n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$prompts")
: >"$work/solo.txt"
for ((i = 0; i < n; i++)); do
  python3 -c "import json,sys; p=json.load(open(sys.argv[1]))[int(sys.argv[2])]; p['arrival_s']=0; p.pop('abort_when', None); json.dump([p], open(sys.argv[3],'w'))" \
    "$prompts" "$i" "$work/one.json"
  last_cmd="$FLASHLINE generate --model $MODEL --prompts @$work/one.json" last_log="$work/solo.err"
  "$FLASHLINE" generate --model "$MODEL" --prompts "@$work/one.json" "${solo_flags[@]}" >>"$work/solo.txt" 2>"$work/solo.err" ||
    fail "the solo run of request $i failed"
done

# Speculation: the even requests' drafts are forced from their solo ids, every third one made
# wrong (partial acceptance on every stage); the odd ones draft with the model's own MTP head.
run_prompts=$prompts
if [ "$spec" != 0 ]; then
  run_prompts=$work/spec_prompts.json
  python3 - "$prompts" "$work/solo.txt" "$run_prompts" <<'PY'
import json, sys
prompts = json.load(open(sys.argv[1]))
solo = [[int(t) for t in line.split(",")] for line in open(sys.argv[2]).read().split()]
for i, p in enumerate(prompts):
    if i % 2 == 0:
        p["draft_ids"] = [(t + 1) % 2048 if j % 3 == 2 else t for j, t in enumerate(solo[i])]
json.dump(prompts, open(sys.argv[3], "w"))
PY
fi
cmd=("$MPIEXEC" --allow-run-as-root --oversubscribe -np "$np" -x OMP_NUM_THREADS "$FLASHLINE" generate --model "$MODEL"
  --plan "$plan" --prompts "@$run_prompts" --max-batch-tokens "$budget" --prefill-chunk "$chunk" --stats "${run_flags[@]}")
last_cmd="${cmd[*]}" last_log="$work/run.err"
timeout 300 "${cmd[@]}" >"$work/run.txt" 2>"$work/run.err" || fail "the pipelined run failed"
# Aborted requests (marked by generate) are compared only by their mark; every other line whole.
aborts=$(python3 -c "import json,sys; print(' '.join(str(i) for i, p in enumerate(json.load(open(sys.argv[1]))) if 'abort_when' in p))" "$prompts")
for i in $aborts; do
  sed -n "$((i + 1))p" "$work/run.txt" | grep -q "(aborted)$" || fail "request $i was not aborted"
  sed -i "$((i + 1))s/.*/aborted/" "$work/run.txt" "$work/solo.txt"
done
diff "$work/solo.txt" "$work/run.txt" >&2 || fail "ids differ from the solo runs (left: solo, right: $np ranks)"
grep -c "kv pages used 0 of" "$work/run.err" | grep -qx "$np" || fail "not every rank ended with an empty KV pool"
grep -q "live states 0," "$work/run.err" || fail "a rank kept request state"
! grep -E "live states [1-9]" "$work/run.err" || fail "a rank kept request state"
if [ "$spec" != 0 ]; then
  grep -qE "speculative: .* [1-9][0-9]* accepted" "$work/run.err" || fail "no draft was accepted"
fi
echo "ok: $n requests, $np ranks, budget $budget, chunk $chunk, speculative tokens $spec"

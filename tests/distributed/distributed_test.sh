#!/usr/bin/env bash
# mpirun integration tests of the pipeline runtime. Each mode runs `flashline` under mpirun with a
# plan and compares what rank 0 writes with the single-process run (bit for bit) and, in exact
# numerics, with the reference goldens.
#   distributed_test.sh logits NP PLAN NUMERICS       prefill, decode and MTP logits, greedy ids
#   distributed_test.sh decode-golden NP PLAN         exact: 141 greedy ids and teacher-forced decode logits
#   distributed_test.sh concurrent NP PLAN            several requests at once == each alone
#   distributed_test.sh kill NP PLAN                  a rank killed mid-run stops every rank in < 10 s
#   distributed_test.sh load-failure NP PLAN          a rank that cannot load stops every rank, named
#   distributed_test.sh bad-plan NP PLAN              plan errors are rejected before loading, naming the entry
#   distributed_test.sh launch NP SxL                 `flashline plan --cluster localhost:NP --stages S --lanes L`,
#                                                     then `flashline launch` of it == single-process generate
# Environment: FLASHLINE, MPIEXEC, NPY_EQUAL, MODEL, GOLDEN, WORK (scratch directory), HERE (this folder).
set -euo pipefail
mode=$1 np=$2 plan=$3 numerics=${4:-fast}
name=$(basename "$plan" .yaml)
work="$WORK/$mode-$name-$numerics"
rm -rf "$work" && mkdir -p "$work"
export OMP_NUM_THREADS=1  # ranks share the machine's cores
mpirun=("$MPIEXEC" --allow-run-as-root --oversubscribe -np "$np")
ids="$HERE/ids"

fail() { echo "FAIL: $*" >&2; exit 1; }
same() {  # same A B [--rows ...]
  "$NPY_EQUAL" "$@" || fail "$1 differs from $2"
}
alone() {  # alone OUT: single-process generate of each prompt of prompts.json, one line of ids each
  : >"$1"
  while read -r prompt; do
    "$FLASHLINE" generate --model "$MODEL" --prompt-ids "$prompt" --max-new-tokens 10 2>/dev/null >>"$1"
  done < <(tr -d ' \n' <"$HERE/prompts.json" | sed 's/^\[\[//; s/\]\]$//; s/\],\[/\n/g'; echo)
}

case "$mode" in
logits)
  args=(logits --model "$MODEL" --ids "@$ids/len130.json" --decode 6 --mtp --numerics "$numerics")
  "$FLASHLINE" "${args[@]}" --out "$work/single" 2>"$work/single.log"
  "${mpirun[@]}" "$FLASHLINE" "${args[@]}" --out "$work/pipeline" --plan "$plan" 2>"$work/pipeline.log" ||
    { cat "$work/pipeline.log" >&2; fail "mpirun exited non-zero"; }
  for f in prefill_logits mtp_logits decode_logits decode_ids; do
    same "$work/pipeline/$f.npy" "$work/single/$f.npy"
  done
  if [[ $numerics == exact ]]; then
    same "$work/pipeline/prefill_logits.npy" "$GOLDEN/prefill_len130_logits.npy"
    same "$work/pipeline/mtp_logits.npy" "$GOLDEN/mtp_len130_logits.npy"
  fi
  ;;
decode-golden)
  args=(logits --model "$MODEL" --ids "@$ids/len250.json" --decode 141 --numerics exact --plan "$plan")
  "${mpirun[@]}" "$FLASHLINE" "${args[@]}" --out "$work/free" 2>"$work/free.log" || fail "mpirun exited non-zero"
  same "$work/free/decode_ids.npy" "$GOLDEN/generated_ids.npy"
  same "$work/free/prefill_logits.npy" "$GOLDEN/prefill_len250_logits.npy"
  "${mpirun[@]}" "$FLASHLINE" "${args[@]}" --teacher-force "@$ids/decode_input_ids.json" --out "$work/forced" \
    2>"$work/forced.log" || fail "mpirun exited non-zero"
  # Row k+1 is the step that consumed the k-th forced id, the golden's row k.
  same "$work/forced/decode_logits.npy" "$GOLDEN/decode_logits.npy" --rows 1:140:0
  ;;
concurrent)
  alone "$work/alone.txt"
  "${mpirun[@]}" "$FLASHLINE" generate --model "$MODEL" --prompts "@$HERE/prompts.json" --max-new-tokens 10 \
    --plan "$plan" >"$work/together.txt" 2>"$work/together.log" || fail "mpirun exited non-zero"
  diff "$work/alone.txt" "$work/together.txt" || fail "concurrent results differ from each request alone"
  # More micro-batch slots than requests per lane: empty slots on every lane.
  "${mpirun[@]}" "$FLASHLINE" generate --model "$MODEL" --prompts "@$HERE/prompts.json" --max-new-tokens 10 \
    --plan "$plan" --micro-batches 4 >"$work/slots.txt" 2>"$work/slots.log" || fail "mpirun exited non-zero"
  diff "$work/alone.txt" "$work/slots.txt" || fail "results with 4 micro-batches differ"
  ;;
kill)
  "${mpirun[@]}" "$FLASHLINE" generate --model "$MODEL" --prompt-ids 3,1,4,1,5,9,2,6 --max-new-tokens 100000 \
    --plan "$plan" >"$work/out.txt" 2>&1 &
  launcher=$!
  victim=""
  for _ in $(seq 100); do  # find rank 1 among mpirun's children once it runs
    sleep 0.1
    for c in $(pgrep -P "$launcher" || true); do
      if tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then victim=$c; fi
    done
    [[ -n $victim ]] && break
  done
  [[ -n $victim ]] || { kill "$launcher"; fail "rank 1 never started"; }
  ranks=$(pgrep -P "$launcher" | tr '\n' ' ')
  sleep 2  # mid-run: loaded and generating
  start=$(date +%s%N)
  kill -9 "$victim"
  rc=0
  wait "$launcher" || rc=$?
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  cat "$work/out.txt" >&2
  [[ $rc -ne 0 ]] || fail "mpirun exited 0 after a rank was killed"
  ((elapsed_ms < 10000)) || fail "ranks took ${elapsed_ms} ms to stop"
  for p in $ranks; do  # gone, or a zombie nobody has reaped yet (mpirun, its parent, has exited)
    state=$(ps -o stat= -p "$p" 2>/dev/null || true)
    [[ -z $state || $state == Z* ]] || fail "rank process $p still running ($state)"
  done
  grep -q "rank 1" "$work/out.txt" || fail "the output does not name rank 1"
  echo "all ranks stopped ${elapsed_ms} ms after rank 1 was killed (mpirun exit $rc)"
  ;;
load-failure)
  # A copy of the model whose second shard is cut short: the ranks that need it fail to load.
  cp -r "$MODEL" "$work/model" && chmod -R u+w "$work/model"
  shard=$(ls "$work/model"/model-0000*-of-*.safetensors | tail -1)
  truncate -s 4096 "$shard"
  start=$(date +%s%N)
  rc=0
  timeout 60 "${mpirun[@]}" "$FLASHLINE" generate --model "$work/model" --prompt-ids 1,2,3 --plan "$plan" \
    >"$work/out.txt" 2>&1 || rc=$?
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  cat "$work/out.txt" >&2
  [[ $rc -ne 0 && $rc -ne 124 ]] || fail "exit status $rc (0: load failure unnoticed, 124: hung)"
  ((elapsed_ms < 10000)) || fail "ranks took ${elapsed_ms} ms to stop"
  grep -Eq "rank [0-9]+ \(host [^)]+\): stage [0-9]+ lane [0-9]+: failed to load" "$work/out.txt" ||
    fail "no message naming the rank, host and cause"
  ;;
bad-plan)
  expect() {  # expect PLANFILE NP PATTERN
    local rc=0
    timeout 60 "$MPIEXEC" --allow-run-as-root --oversubscribe -np "$2" "$FLASHLINE" generate --model "$MODEL" \
      --prompt-ids 1,2,3 --plan "$1" >"$work/out.txt" 2>&1 || rc=$?
    cat "$work/out.txt" >&2
    [[ $rc -ne 0 && $rc -ne 124 ]] || fail "$1: exit status $rc"
    grep -Eq "$3" "$work/out.txt" || fail "$1: expected a message matching /$3/"
    [[ $(grep -c "flashline: error" "$work/out.txt") -eq 1 ]] || fail "$1: expected the error once, not per rank"
  }
  sed 's/last_layer: 1/last_layer: 0/' "$plan" >"$work/gap.yaml"
  expect "$work/gap.yaml" "$np" "stages\[1\].*layer gap: layers 1-1 belong to no stage"
  sed 's/last_layer: 1/last_layer: 2/' "$plan" >"$work/overlap.yaml"
  expect "$work/overlap.yaml" "$np" "stages\[1\].*overlap"
  sed '0,/"0-7"/s//"0-6"/' "$plan" >"$work/orphan.yaml"
  expect "$work/orphan.yaml" "$np" "stages\[0\].*experts 7 are owned by no lane"
  sed 's/mtp_layers: 1/mtp_layers: 0/' "$plan" >"$work/mtp.yaml"
  expect "$work/mtp.yaml" "$np" "model.mtp_layers = 0, but the model has 1 MTP blocks"
  sed 's/lanes: 2/lanes: 3/' "$plan" >"$work/lanes.yaml"
  expect "$work/lanes.yaml" "$np" "lists 2 ranks, but the plan has 3 lanes"
  expect "$plan" $((np - 1)) "the plan has $np ranks .* but $((np - 1)) processes were started"
  ;;
launch)
  # The localhost path end to end: a generated plan, the launcher's mpirun line, ids on stdout.
  "$FLASHLINE" plan --cluster "localhost:$np" --stages "${name%x*}" --lanes "${name#*x}" --model "$MODEL" \
    -o "$work/plan.yaml" >"$work/plan.log" 2>&1 || { cat "$work/plan.log" >&2; fail "plan exited non-zero"; }
  launch=("$FLASHLINE" launch --plan "$work/plan.yaml" --model "$MODEL" --mpirun "$MPIEXEC")
  gen=(--prompts "@$HERE/prompts.json" --max-new-tokens 10)
  "${launch[@]}" --dry-run -- "${gen[@]}" >"$work/dry-run.txt" || fail "launch --dry-run exited non-zero"
  grep -q "^localhost slots=$np$" "$work/dry-run.txt" || fail "dry run: no hostfile line 'localhost slots=$np'"
  grep -Eq -- "-np $np .*--oversubscribe .* generate --plan [^ ]*/plan.yaml --model /[^ ]* --prompts @[^ ]*prompts.json --max-new-tokens 10$" \
    "$work/dry-run.txt" || fail "dry run: unexpected mpirun line: $(tail -1 "$work/dry-run.txt")"
  alone "$work/alone.txt"
  # Relative plan and model paths: every rank must still find both.
  (cd "$work" && "$FLASHLINE" launch --plan plan.yaml --model "$(realpath --relative-to=. "$MODEL")" \
    --mpirun "$MPIEXEC" -- "${gen[@]}") >"$work/launched.txt" 2>"$work/launch.log" ||
    { cat "$work/launch.log" >&2; fail "launch exited non-zero"; }
  diff "$work/alone.txt" "$work/launched.txt" || fail "launched results differ from single-process generate"
  # One prompt given inline.
  "$FLASHLINE" generate --model "$MODEL" --prompt-ids 5,17,300,42 --max-new-tokens 8 >"$work/one.txt" 2>/dev/null
  "${launch[@]}" -- --prompt-ids 5,17,300,42 --max-new-tokens 8 >"$work/one-launched.txt" 2>>"$work/launch.log" ||
    { cat "$work/launch.log" >&2; fail "launch exited non-zero"; }
  diff "$work/one.txt" "$work/one-launched.txt" || fail "launched --prompt-ids result differs"
  cat "$work/one-launched.txt"
  ;;
*)
  fail "unknown mode $mode"
  ;;
esac
echo "PASS: $mode $name $numerics"

#!/usr/bin/env bash
# mpirun integration tests of the pipeline runtime. Each mode runs `flashline` under mpirun with a
# plan and compares what rank 0 writes with the single-process run (bit for bit) and, in exact
# numerics, with the reference goldens.
#   distributed_test.sh logits NP PLAN NUMERICS       prefill, decode and MTP logits, greedy ids
#   distributed_test.sh decode-golden NP PLAN         exact: 141 greedy ids and teacher-forced decode logits
#   distributed_test.sh speculative NP PLAN K         exact: decode ids and logits with K MTP drafts per step
#                                                     == the single-process run without drafts
#   distributed_test.sh concurrent NP PLAN            several requests at once == each alone
#   distributed_test.sh fault NP PLAN                 a rank that fails inside the runtime (FLASHLINE_TEST_FAULT)
#                                                     prints flashline's error line, once, naming its rank, host,
#                                                     stage and lane, and every rank stops within 10 s
#   distributed_test.sh kill-stops-job NP PLAN        a loaded flashline rank killed mid-run stops every rank in
#                                                     < 10 s. This is Open MPI's job control (flashline prints
#                                                     nothing of its own: the rank is gone); `fault` checks
#                                                     flashline's own failure path
#   distributed_test.sh load-failure NP PLAN          a rank that cannot load stops every rank with flashline's
#                                                     message naming the rank, host, stage, lane and the file
#   distributed_test.sh bad-plan NP PLAN              plan errors are rejected before loading, naming the entry
#   distributed_test.sh launch NP SxL                 `flashline plan --cluster localhost:NP --stages S --lanes L`,
#                                                     then `flashline launch` of it == single-process generate
# Every failure prints FAIL, the command that failed (or produced what was compared) and the tail of
# its log. Jobs started in the background are stopped on exit, whatever the outcome.
# Environment: FLASHLINE, MPIEXEC, NPY_EQUAL, MODEL, GOLDEN, WORK (scratch directory), HERE (this folder).
set -euo pipefail
mode=$1 np=$2 plan=$3 numerics=${4:-fast}
name=$(basename "$plan" .yaml)
work="$WORK/$mode-$name-$numerics"
rm -rf "$work" && mkdir -p "$work"
export OMP_NUM_THREADS=1  # ranks share the machine's cores
mpirun=("$MPIEXEC" --allow-run-as-root --oversubscribe -np "$np")
ids="$HERE/ids"

last_cmd="" last_log=""
fail() {
  echo "FAIL: $*" >&2
  if [[ -n $last_cmd ]]; then
    echo "command: $last_cmd" >&2
    if [[ -s $last_log ]]; then
      echo "--- last 40 lines of $last_log:" >&2
      tail -n 40 "$last_log" >&2
    else
      echo "--- $last_log is empty" >&2
    fi
  fi
  exit 1
}
# run OUT LOG CMD...: CMD with stdout to OUT and stderr to LOG (OUT = LOG: both to one file); a
# non-zero exit fails the test with the command and the log. Later failures (a comparison of what
# the command wrote) print the same command and log.
run() {
  local out=$1 log=$2
  shift 2
  last_cmd="$*" last_log=$log
  local rc=0
  if [[ $out == "$log" ]]; then "$@" >"$out" 2>&1 || rc=$?; else "$@" >"$out" 2>"$log" || rc=$?; fi
  ((rc == 0)) || fail "exit status $rc"
}
same() {  # same A B [--rows ...]
  "$NPY_EQUAL" "$@" >&2 || fail "$1 differs from $2"
}
alone() {  # alone OUT: single-process generate of each prompt of prompts.json, one line of ids each
  : >"$1"
  local n=0
  while read -r prompt; do
    run "$1.part" "$1.log.$n" "$FLASHLINE" generate --model "$MODEL" --prompt-ids "$prompt" --max-new-tokens 10
    cat "$1.part" >>"$1"
    n=$((n + 1))
  done < <(tr -d ' \n' <"$HERE/prompts.json" | sed 's/^\[\[//; s/\]\]$//; s/\],\[/\n/g'; echo)
}
# A job started in the background: stopped (with the ranks it started) when the script exits.
job=""
descendants() {  # descendants PID: every process below PID, deepest first
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do
    descendants "$c"
    echo "$c"
  done
}
stop_job() {
  [[ -n $job ]] || return 0
  local tree
  tree=$(descendants "$job")
  kill -KILL "$job" $tree 2>/dev/null || true
  wait "$job" 2>/dev/null || true
  job=""
}
trap stop_job EXIT
# The rank processes of the background job (mpirun's children on this machine).
ranks_of_job() { pgrep -P "$job" 2>/dev/null | tr '\n' ' ' || true; }
# Fails unless every listed process is gone or a zombie nobody has reaped yet (its parent exited).
expect_gone() {
  local p state
  for p in "$@"; do
    state=$(ps -o stat= -p "$p" 2>/dev/null || true)
    [[ -z $state || $state == Z* ]] || fail "rank process $p still running ($state)"
  done
}
# stage_lane RANK: "STAGE LANE" of RANK in the plan's ranks table.
stage_lane() {
  sed -nE "s/.*\{rank: $1, stage: ([0-9]+), lane: ([0-9]+),.*/\1 \2/p" "$plan"
}
host=$(hostname)

case "$mode" in
speculative)
  args=(logits --model "$MODEL" --ids "@$ids/len130.json" --decode 12 --numerics exact)
  run "$work/single.out" "$work/single.log" "$FLASHLINE" "${args[@]}" --out "$work/single"
  run "$work/pipeline.out" "$work/pipeline.log" "${mpirun[@]}" "$FLASHLINE" "${args[@]}" --out "$work/pipeline" \
    --plan "$plan" --speculative-tokens "$numerics"
  for f in prefill_logits decode_logits decode_ids; do
    same "$work/pipeline/$f.npy" "$work/single/$f.npy"
  done
  ;;
logits)
  args=(logits --model "$MODEL" --ids "@$ids/len130.json" --decode 6 --mtp --numerics "$numerics")
  run "$work/single.out" "$work/single.log" "$FLASHLINE" "${args[@]}" --out "$work/single"
  run "$work/pipeline.out" "$work/pipeline.log" "${mpirun[@]}" "$FLASHLINE" "${args[@]}" --out "$work/pipeline" \
    --plan "$plan"
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
  run "$work/free.out" "$work/free.log" "${mpirun[@]}" "$FLASHLINE" "${args[@]}" --out "$work/free"
  same "$work/free/decode_ids.npy" "$GOLDEN/generated_ids.npy"
  same "$work/free/prefill_logits.npy" "$GOLDEN/prefill_len250_logits.npy"
  run "$work/forced.out" "$work/forced.log" "${mpirun[@]}" "$FLASHLINE" "${args[@]}" \
    --teacher-force "@$ids/decode_input_ids.json" --out "$work/forced"
  # Row k+1 is the step that consumed the k-th forced id, the golden's row k.
  same "$work/forced/decode_logits.npy" "$GOLDEN/decode_logits.npy" --rows 1:140:0
  ;;
concurrent)
  alone "$work/alone.txt"
  run "$work/together.txt" "$work/together.log" "${mpirun[@]}" "$FLASHLINE" generate --model "$MODEL" \
    --prompts "@$HERE/prompts.json" --max-new-tokens 10 --plan "$plan"
  diff "$work/alone.txt" "$work/together.txt" >&2 || fail "concurrent results differ from each request alone"
  # More micro-batch slots than requests per lane: empty slots on every lane.
  run "$work/slots.txt" "$work/slots.log" "${mpirun[@]}" "$FLASHLINE" generate --model "$MODEL" \
    --prompts "@$HERE/prompts.json" --max-new-tokens 10 --plan "$plan" --micro-batches 4
  diff "$work/alone.txt" "$work/slots.txt" >&2 || fail "results with 4 micro-batches differ"
  ;;
fault)
  # The last rank of the plan throws inside its loop at its 3rd step (a test-only switch of the
  # runtime). Expected: flashline's own error line, printed once by that rank (--tag-output says
  # which rank printed it), and the whole job stops, non-zero, within 10 s of it.
  victim=$((np - 1))
  read -r stage lane < <(stage_lane "$victim") || fail "rank $victim is not in $plan"
  expected="flashline: error: rank $victim (host $host) stage $stage lane $lane: injected fault (FLASHLINE_TEST_FAULT)"
  export FLASHLINE_TEST_FAULT="rank:$victim:step:3"
  cmd=("${mpirun[@]}" --tag-output -x FLASHLINE_TEST_FAULT "$FLASHLINE" generate --model "$MODEL"
    --prompts "@$HERE/prompts.json" --max-new-tokens 64 --plan "$plan")
  last_cmd="FLASHLINE_TEST_FAULT=$FLASHLINE_TEST_FAULT ${cmd[*]}" last_log="$work/out.txt"
  "${cmd[@]}" >"$work/out.txt" 2>&1 &
  job=$!
  ranks=""
  for _ in $(seq 1200); do  # the error line, 120 s at most (loading included)
    ranks+=" $(ranks_of_job)"
    grep -q "flashline: error" "$work/out.txt" && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "flashline: error" "$work/out.txt" ||
    { kill -0 "$job" 2>/dev/null && fail "no error line within 120 s, the job still runs"; }
  seen=$(date +%s%N)
  while kill -0 "$job" 2>/dev/null && (($(date +%s%N) - seen < 10000000000)); do sleep 0.1; done
  elapsed_ms=$((($(date +%s%N) - seen) / 1000000))
  kill -0 "$job" 2>/dev/null && fail "the job still runs ${elapsed_ms} ms after the error line"
  rc=0
  wait "$job" || rc=$?
  job=""
  cat "$work/out.txt" >&2
  ((rc != 0)) || fail "mpirun exited 0: no rank failed (is FLASHLINE_TEST_FAULT handled by the runtime?)"
  expect_gone $ranks
  errors=$(grep -c "flashline: error" "$work/out.txt" || true)
  ((errors == 1)) || fail "expected one flashline error line, found $errors"
  line=$(grep "flashline: error" "$work/out.txt")
  printed_by=$(sed -nE 's/^\[[0-9]+,([0-9]+)\]<std(err|out)>: ?.*/\1/p' <<<"$line")
  text=$(sed -E 's/^\[[0-9]+,[0-9]+\]<std(err|out)>: ?//' <<<"$line")
  [[ $text == "$expected" ]] || fail "expected the line '$expected', found '$text'"
  [[ $printed_by == "$victim" ]] || fail "the error line was printed by rank '$printed_by', not by rank $victim"
  echo "rank $victim failed at its step 3; every rank stopped within ${elapsed_ms} ms (mpirun exit $rc)"
  ;;
kill-stops-job)
  cmd=("${mpirun[@]}" "$FLASHLINE" generate --model "$MODEL" --prompt-ids 3,1,4,1,5,9,2,6 --max-new-tokens 100000
    --plan "$plan")
  last_cmd="${cmd[*]}" last_log="$work/out.txt"
  "${cmd[@]}" >"$work/out.txt" 2>&1 &
  job=$!
  victim=""
  for _ in $(seq 100); do  # find rank 1 among mpirun's children once it runs
    sleep 0.1
    for c in $(ranks_of_job); do
      if tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then victim=$c; fi
    done
    [[ -n $victim ]] && break
  done
  [[ -n $victim ]] || fail "rank 1 never started"
  ranks=$(ranks_of_job)
  # The victim is a flashline rank that has loaded its part of the model (the shards are mapped):
  # a job of anything else, or one that failed before loading, does not pass.
  [[ $(readlink -f "/proc/$victim/exe") == "$(readlink -f "$FLASHLINE")" ]] || fail "rank 1 is not $FLASHLINE"
  for _ in $(seq 100); do
    grep -q "$(basename "$MODEL")/model-0000.-of-0000.\.safetensors" "/proc/$victim/maps" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "$(basename "$MODEL")/model-0000.-of-0000.\.safetensors" "/proc/$victim/maps" ||
    fail "rank 1 has not mapped the model after 10 s"
  sleep 1  # mid-run: loaded and generating
  kill -0 "$job" 2>/dev/null || fail "the job ended before rank 1 was killed"
  start=$(date +%s%N)
  kill -9 "$victim"
  while kill -0 "$job" 2>/dev/null && (($(date +%s%N) - start < 10000000000)); do sleep 0.1; done
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  kill -0 "$job" 2>/dev/null && fail "the job still runs ${elapsed_ms} ms after rank 1 was killed"
  rc=0
  wait "$job" || rc=$?
  job=""
  cat "$work/out.txt" >&2
  ((rc != 0)) || fail "mpirun exited 0 after a rank was killed"
  expect_gone $ranks
  echo "all ranks stopped ${elapsed_ms} ms after rank 1 was killed (mpirun exit $rc)"
  ;;
load-failure)
  # A copy of the model whose second shard is cut short: the ranks of the last stage need it.
  cp -r "$MODEL" "$work/model" && chmod -R u+w "$work/model"
  shard=$(ls "$work/model"/model-0000*-of-*.safetensors | tail -1)
  truncate -s 4096 "$shard"
  victim=$((np - 1))
  read -r stage lane < <(stage_lane "$victim") || fail "rank $victim is not in $plan"
  last_cmd="${mpirun[*]} $FLASHLINE generate --model $work/model --prompt-ids 1,2,3 --plan $plan"
  last_log="$work/out.txt"
  start=$(date +%s%N)
  rc=0
  timeout 60 "${mpirun[@]}" "$FLASHLINE" generate --model "$work/model" --prompt-ids 1,2,3 --plan "$plan" \
    >"$work/out.txt" 2>&1 || rc=$?
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  cat "$work/out.txt" >&2
  [[ $rc -ne 0 && $rc -ne 124 ]] || fail "exit status $rc (0: load failure unnoticed, 124: hung)"
  ((elapsed_ms < 10000)) || fail "ranks took ${elapsed_ms} ms to stop"
  # flashline's line: the rank, its host, stage and lane, the model and the shard that is cut short.
  # (A rank prefix of "rank R (host H): " or "error: rank R (host H) " are both flashline's.)
  pattern="^flashline: (error: )?rank $victim \(host $host\):? stage $stage lane $lane: failed to load $work/model: .*$(basename "$shard")"
  grep -Eq "$pattern" "$work/out.txt" || fail "no line matching /$pattern/"
  ;;
bad-plan)
  expect() {  # expect PLANFILE NP PATTERN
    local rc=0
    last_cmd="$MPIEXEC --allow-run-as-root --oversubscribe -np $2 $FLASHLINE generate --model $MODEL --prompt-ids 1,2,3 --plan $1"
    last_log="$work/out.txt"
    timeout 60 "$MPIEXEC" --allow-run-as-root --oversubscribe -np "$2" "$FLASHLINE" generate --model "$MODEL" \
      --prompt-ids 1,2,3 --plan "$1" >"$work/out.txt" 2>&1 || rc=$?
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
  run "$work/plan.log" "$work/plan.log" "$FLASHLINE" plan --cluster "localhost:$np" --stages "${name%x*}" \
    --lanes "${name#*x}" --model "$MODEL" -o "$work/plan.yaml"
  launch=("$FLASHLINE" launch --plan "$work/plan.yaml" --model "$MODEL" --mpirun "$MPIEXEC")
  gen=(--prompts "@$HERE/prompts.json" --max-new-tokens 10)
  run "$work/dry-run.txt" "$work/dry-run.log" "${launch[@]}" --dry-run -- "${gen[@]}"
  last_log="$work/dry-run.txt"
  grep -q "^localhost slots=$np$" "$work/dry-run.txt" || fail "dry run: no hostfile line 'localhost slots=$np'"
  grep -Eq -- "-np $np .*--oversubscribe .* generate --plan [^ ]*/plan.yaml --model /[^ ]* --prompts @[^ ]*prompts.json --max-new-tokens 10$" \
    "$work/dry-run.txt" || fail "dry run: unexpected mpirun line: $(tail -1 "$work/dry-run.txt")"
  alone "$work/alone.txt"
  # Relative plan and model paths: every rank must still find both.
  (cd "$work" && run "$work/launched.txt" "$work/launch.log" "$FLASHLINE" launch --plan plan.yaml \
    --model "$(realpath --relative-to=. "$MODEL")" --mpirun "$MPIEXEC" -- "${gen[@]}")
  last_cmd="(in $work) $FLASHLINE launch --plan plan.yaml ..." last_log="$work/launch.log"
  diff "$work/alone.txt" "$work/launched.txt" >&2 || fail "launched results differ from single-process generate"
  # One prompt given inline.
  run "$work/one.txt" "$work/one.log" "$FLASHLINE" generate --model "$MODEL" --prompt-ids 5,17,300,42 \
    --max-new-tokens 8
  run "$work/one-launched.txt" "$work/one-launch.log" "${launch[@]}" -- --prompt-ids 5,17,300,42 --max-new-tokens 8
  diff "$work/one.txt" "$work/one-launched.txt" >&2 || fail "launched --prompt-ids result differs"
  cat "$work/one-launched.txt"
  ;;
*)
  fail "unknown mode $mode"
  ;;
esac
echo "PASS: $mode $name $numerics"

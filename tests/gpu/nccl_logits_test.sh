#!/usr/bin/env bash
# The pipeline runtime with NCCL transports on tiny-a, under mpirun.
#   nccl_logits_test.sh logits NP PLAN NUMERICS   prefill, decode and MTP logits and greedy ids equal the
#                                                 single-process run bit for bit (needs the CUDA devices the
#                                                 plan names: one per rank, or one shared by every rank)
#   nccl_logits_test.sh no-device NP PLAN         where no CUDA device is visible: the plan is refused at
#                                                 startup, once, naming the rank and the missing device
#   nccl_logits_test.sh cpu-device NP PLAN        a plan with nccl transports on cpu:N devices is refused at
#                                                 startup, once, naming the rank
# Exit 77 (ctest: skipped) where the mode cannot run on this machine.
# Environment: FLASHLINE, MPIEXEC, NPY_EQUAL, DEVICE_COUNT (prints the CUDA device count), MODEL, IDS (prompt
# files), WORK (scratch directory).
set -euo pipefail
mode=$1 np=$2 plan=$3 numerics=${4:-exact}
work="$WORK/$mode-$(basename "$plan" .yaml)-$numerics"
rm -rf "$work" && mkdir -p "$work"
export OMP_NUM_THREADS=1
mpirun=("$MPIEXEC" --allow-run-as-root --oversubscribe -np "$np")
devices=$("$DEVICE_COUNT")
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

case "$mode" in
logits)
  # The plan's highest cuda:N says how many devices it needs (ranks may share one).
  needed=$(($(sed -nE 's/.*device: "cuda:([0-9]+)".*/\1/p' "$plan" | sort -n | tail -1) + 1))
  ((devices > 0)) || skip "no CUDA device"
  ((devices >= needed)) || skip "the plan places ranks on $needed CUDA devices, found $devices"
  args=(logits --model "$MODEL" --ids "@$IDS/len130.json" --decode 6 --mtp --numerics "$numerics")
  "$FLASHLINE" "${args[@]}" --out "$work/single" 2>"$work/single.log" ||
    { echo "command: $FLASHLINE ${args[*]}" >&2; tail -n 40 "$work/single.log" >&2; fail "single-process run exited non-zero"; }
  "${mpirun[@]}" "$FLASHLINE" "${args[@]}" --out "$work/nccl" --plan "$plan" 2>"$work/nccl.log" ||
    { echo "command: ${mpirun[*]} $FLASHLINE ${args[*]} --plan $plan" >&2; tail -n 40 "$work/nccl.log" >&2
      fail "mpirun exited non-zero"; }
  for f in prefill_logits mtp_logits decode_logits decode_ids; do
    "$NPY_EQUAL" "$work/nccl/$f.npy" "$work/single/$f.npy" || fail "$f differs from the single-process run"
  done
  ;;
no-device)
  ((devices == 0)) || skip "$devices CUDA devices visible (this mode checks the error without one)"
  rc=0
  timeout 60 "${mpirun[@]}" "$FLASHLINE" logits --model "$MODEL" --ids 1,2,3 --out "$work/out" --plan "$plan" \
    >"$work/out.txt" 2>&1 || rc=$?
  cat "$work/out.txt" >&2
  [[ $rc -ne 0 && $rc -ne 124 ]] || fail "exit status $rc (0: no device unnoticed, 124: hung)"
  grep -Eq "rank 0 \(stage 0 lane 0\) is on cuda:0, but 0 CUDA devices are visible" "$work/out.txt" ||
    fail "no message naming the rank and the missing device"
  [[ $(grep -c "flashline: error" "$work/out.txt") -eq 1 ]] || fail "expected the error once, not per rank"
  ;;
cpu-device)
  sed 's/device: "cuda:\([0-9]*\)"/device: "cpu:\1"/' "$plan" >"$work/cpu.yaml"
  rc=0
  timeout 60 "${mpirun[@]}" "$FLASHLINE" logits --model "$MODEL" --ids 1,2,3 --out "$work/out" \
    --plan "$work/cpu.yaml" >"$work/out.txt" 2>&1 || rc=$?
  cat "$work/out.txt" >&2
  [[ $rc -ne 0 && $rc -ne 124 ]] || fail "exit status $rc"
  pattern='nccl"? (needs a CUDA device on every rank, but rank 0 is on "cpu:0"|is not available: this flashline was built without)'
  grep -Eq "$pattern" "$work/out.txt" || fail "expected a message matching /$pattern/"
  [[ $(grep -c "flashline: error" "$work/out.txt") -eq 1 ]] || fail "expected the error once, not per rank"
  ;;
*)
  fail "unknown mode $mode"
  ;;
esac
echo "PASS: $mode $(basename "$plan" .yaml)${4:+ $4}"

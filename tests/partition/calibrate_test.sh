#!/usr/bin/env bash
# `flashline plan --calibrate` on a tiny model: it measures a run here, fits the CPU efficiencies
# and writes the calibration file. Checked: the fitted constants reproduce the measured step times
# (the "predicted after" column reads +-0.0%), a plan made later with --calibration equals the one
# made during calibration, and it differs from a plan with the default constants. No timing
# thresholds: only the fitted relation is asserted.
#   calibrate_test.sh FLASHLINE MODEL WORKDIR
set -euo pipefail
flashline=$1 model=$2 work=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
plan=(plan --cluster localhost:2 --stages 2 --lanes 1 --model "$model" --context 4096)
"$flashline" "${plan[@]}" --calibrate --calibration cal.yaml --calibrate-prompt 64 --calibrate-steps 8 \
  -o calibrated.yaml >out.txt || fail "plan --calibrate exited non-zero"
cat out.txt
grep -Eq '^  prefill .*\([+-]0\.0%\)$' out.txt || fail "calibrated prefill prediction differs from the measurement"
grep -Eq '^  decode step .*\([+-]0\.0%\)$' out.txt || fail "calibrated decode prediction differs from the measurement"
grep -Eq '^cpu_compute_efficiency: [0-9.e+-]+$' cal.yaml || fail "cal.yaml has no cpu_compute_efficiency"
"$flashline" "${plan[@]}" --calibration cal.yaml -o reread.yaml >/dev/null
cmp calibrated.yaml reread.yaml || fail "the plan read back with --calibration differs from the calibrated plan"
"$flashline" "${plan[@]}" -o default.yaml >/dev/null
! cmp -s default.yaml reread.yaml || fail "--calibration did not change the plan's predictions"
echo "PASS: calibrate"

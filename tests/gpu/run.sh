#!/usr/bin/env bash
# The one script to run on a machine with GPUs: builds (or reuses BUILD_DIR), shows the devices,
# runs the GPU tests (ctest label `gpu`) and the all-to-all microbenchmark with the NCCL backend,
# then prints a summary. Fails at once when no GPU is visible: this script is for GPU machines,
# plain ctest covers the rest (where the GPU tests skip).
#   tests/gpu/run.sh [BUILD_DIR]      default BUILD_DIR: build-gpu at the repository root
# Most two-rank tests and the benchmark need one CUDA device per rank (NCCL refuses two ranks of a
# communicator on one device); on a one-GPU machine they report SKIP and the summary says so, and
# gpu.logits.2x1-shared-gpu.* (two ranks on cuda:0, one-rank NCCL communicators) still runs.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-gpu}
die() { echo "run.sh: FAIL: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver on this machine"
nvidia-smi || die "nvidia-smi failed: no GPU visible"
gpus=$(nvidia-smi -L | grep -c '^GPU ')
((gpus > 0)) || die "nvidia-smi lists no GPU"

if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release || die "cmake configure failed"
fi
cmake --build "$build" -j "$(nproc)" --target flashline npy_equal nccl_comms_test cuda_device_count alltoall_bench ||
  die "build failed (the GPU targets exist only where CUDA and NCCL were found at configure time)"
visible=$("$build/tests/gpu/cuda_device_count")
((visible > 0)) || die "nvidia-smi lists $gpus GPUs but the CUDA runtime sees none (driver / toolkit mismatch?)"

log=$(mktemp)
ctest --test-dir "$build" -L gpu --output-on-failure 2>&1 | tee "$log"
tests_rc=${PIPESTATUS[0]}

np=$((visible < 8 ? visible : 8))
echo "== all-to-all microbenchmark, $np ranks (one per GPU)"
mpiexec --allow-run-as-root --oversubscribe -np "$np" "$build/bench/alltoall_bench" --max-bytes $((16 << 20)) ||
  die "alltoall_bench failed"

passed=$(grep -cE 'Test +#[0-9]+: .* Passed' "$log")
skipped=$(grep -cE 'Test +#[0-9]+: .*\*\*\*Skipped' "$log")
failed=$(grep -cE 'Test +#[0-9]+: .*(\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception)' "$log")
echo "== summary: $gpus GPUs ($(nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c | xargs)),"\
  "GPU tests: $passed passed, $skipped skipped, $failed failed; benchmark on $np ranks above"
((skipped == 0)) || echo "   skipped tests need more GPUs than this machine has (see their SKIP lines above)"
[[ $tests_rc -eq 0 && $failed -eq 0 ]] || die "GPU tests failed"

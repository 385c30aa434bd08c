#!/usr/bin/env bash
# The checker must fail on a tree that breaks the layering: a stage including the runtime, and a
# runtime file including an MPI backend.
set -euo pipefail
check=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{base,model,kernels,comms,stages,runtime,cluster,partition,serving}
printf '#include "model/model_config.h"\n' > "$tmp/stages/ok.cpp"
printf '#include "runtime/engine.h"\n' > "$tmp/stages/bad.cpp"
printf '#include "comms/mpi/mpi_world.h"\n' > "$tmp/runtime/bad.cpp"
if out=$(python3 "$check" "$tmp"); then
  echo "FAIL: the checker passed a tree with violations:"; echo "$out"; exit 1
fi
grep -q 'stages/bad.cpp:1: stages/ may not include runtime/' <<<"$out" || { echo "FAIL: $out"; exit 1; }
grep -q 'runtime/bad.cpp:1: runtime/ may not include a transport backend' <<<"$out" || { echo "FAIL: $out"; exit 1; }
grep -q 'stages/ok.cpp' <<<"$out" && { echo "FAIL: flagged an allowed include: $out"; exit 1; }
echo "selftest: ok"

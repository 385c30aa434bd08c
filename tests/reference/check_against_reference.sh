#!/usr/bin/env bash
# Makes a random model (a make-tiny preset or preset file), runs the numpy reference and
# `flashline logits --numerics exact` on the same prompt, and compares every output.
# usage: check_against_reference.sh FLASHLINE PYTHON WORKDIR PRESET|PRESET.json PROMPT_LEN DECODE
set -euo pipefail
flashline=$1 python=$2 work=$3 preset=$4 n=$5 decode=$6
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
if [[ $preset == *.json ]]; then
  "$flashline" make-tiny --out "$work/model" --config "$preset" --quiet
else
  "$flashline" make-tiny --out "$work/model" --preset "$preset" --seed 99 --quiet
fi
vocab=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$work/model/config.json")
ids=$("$python" -c "import sys; n,v=int(sys.argv[1]),int(sys.argv[2]); print(','.join(str((1103515245*(i+1+1000*n+5)+12345)%2**31%v) for i in range(n)))" "$n" "$vocab")
"$python" "$here/reference_logits.py" "$work/model" "$work/reference" --ids "$ids" --decode "$decode"
"$flashline" logits --model "$work/model" --numerics exact --out "$work/ours" --ids "$ids" --decode "$decode" --mtp
"$python" "$here/compare_npy.py" "$work/ours" "$work/reference"

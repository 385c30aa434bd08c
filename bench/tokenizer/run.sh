#!/usr/bin/env bash
# Tokenizer throughput, flashline vs @huggingface/tokenizers (npm), on one generated corpus.
# Usage: bench/tokenizer/run.sh [build-dir] [corpus-MB]
# Needs the tokenizer_bench target built in build-dir (default build/), Node.js and npm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
mb="${2:-4}"
data="$root/tests/data/tokenizer"
bench="$build/bench/tokenizer_bench"
[ -x "$bench" ] || { echo "run.sh: $bench not built (cmake --build $build --target tokenizer_bench)" >&2; exit 2; }
if [ ! -d "$here/node_modules/@huggingface/tokenizers" ]; then
  (cd "$here" && npm install --no-audit --no-fund --silent)
fi
corpus="$build/bench/tokenizer_corpus.json"
"$bench" --write-corpus "$corpus" --mb "$mb"
ours="$("$bench" --tokenizer "$data/tokenizer.json" --corpus "$corpus")"
theirs="$(node "$here/bench.mjs" "$data/tokenizer.json" "$data/tokenizer_config.json" "$corpus")"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"corpus: {a['documents']} documents, {a['bytes'] / 1e6:.2f} MB, {a['tokens']} tokens")
print(f"{'implementation':<26}{'load s':>8}{'MB/s':>10}{'tokens/s':>14}")
for r in (a, b):
    print(f"{r['implementation']:<26}{r['load_s']:>8.3f}{r['mb_per_s']:>10.2f}{r['tokens_per_s']:>14.0f}")
print(f"ratio flashline / @huggingface/tokenizers: {a['mb_per_s'] / b['mb_per_s']:.2f}x")
same = a["ids_fnv1a"] == b["ids_fnv1a"] and a["tokens"] == b["tokens"]
print("ids identical:", "yes" if same else f"NO ({a['ids_fnv1a']} vs {b['ids_fnv1a']})")
sys.exit(0 if same else 1)
PY

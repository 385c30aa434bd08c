#!/usr/bin/env bash
# End-to-end HTTP tests with the official OpenAI Node client (node:test) and curl.
#   tests/http/run.sh [build-dir] [test files...]
# scripted.test.mjs runs the gateway over the scripted engine; model.test.mjs runs `flashline
# serve` on a tiny model with the real V4 vocabulary (made here once, into the build folder).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
shift || true
cd "$here"
[ -d node_modules/openai ] || npm ci --no-audit --no-fund
export SCRIPTED_SERVER="$build/tests/http/scripted_server"
export TOKENIZER="$root/tests/data/tokenizer/tokenizer.json"
export FLASHLINE="$build/launch/flashline"
export TINY_MODEL="$build/tests/http/tiny-v4-vocab"
if [ -x "$FLASHLINE" ] && [ ! -f "$TINY_MODEL/config.json" ]; then
  "$FLASHLINE" make-tiny --config "$here/tiny-v4-vocab.json" --out "$TINY_MODEL" --quiet
fi
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(scripted.test.mjs model.test.mjs)
exec node --test --test-concurrency=1 "${files[@]}"

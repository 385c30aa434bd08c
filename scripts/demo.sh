#!/usr/bin/env bash
# The main job on a built-in tiny model: build, make a random tiny checkpoint in the release
# format with the real V4 vocabulary (so the V4 tokenizer and chat format work with it), plan two
# pipeline stages on this machine, launch `flashline serve` over them with mpirun, send one chat
# request with curl (streamed), print the reply, and shut the server down cleanly.
# The model's weights are random: it writes random text. docs/serving.md runs the release.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh build
bin=build/launch/flashline
model=out/tiny-v4-demo
tokenizer=tests/data/tokenizer/tokenizer.json
mkdir -p out
[ -f "$model/config.json" ] || $bin make-tiny --config tests/http/tiny-v4-vocab.json --out "$model" --quiet
$bin plan --cluster localhost:2 --stages 2 --lanes 1 --model "$model" --context 4096 --out out/demo.plan.yaml
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$bin launch --plan out/demo.plan.yaml --model "$model" --run serve -- --tokenizer "$tokenizer" --port "$port" \
  --served-model-name tiny-demo >out/demo-server.log 2>&1 &
server=$!
stop() {  # SIGUSR1: mpirun forwards it to every rank, and serve stops gracefully on it
  kill -USR1 "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat out/demo-server.log >&2; exit 1; }
  sleep 0.2
done
echo "server ready on http://127.0.0.1:$port (2 pipeline stages); streaming one chat reply:"
curl -sN "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "model": "tiny-demo", "stream": true, "max_tokens": 24, "temperature": 0,
  "messages": [{"role": "user", "content": "Say hello to flashline."}]}' |
  python3 -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("data: ") or line == "data: [DONE]":
        continue
    for choice in json.loads(line[6:]).get("choices", []):
        print(choice.get("delta", {}).get("content") or "", end="", flush=True)
print()'
echo "(a random tiny model writes random text; the server now shuts down)"
stop
trap - EXIT
tail -n 4 out/demo-server.log

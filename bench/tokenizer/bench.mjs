// Encodes the corpus written by tokenizer_bench with @huggingface/tokenizers and prints the
// same JSON fields, so run.sh can compare the two (ids must hash the same).
// Usage: node bench.mjs tokenizer.json tokenizer_config.json corpus.json [repeats]
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const [tokFile, configFile, corpusFile, repeatsArg] = process.argv.slice(2);
const repeats = Number(repeatsArg ?? 5);
const t0 = performance.now();
const tokenizer = new Tokenizer(JSON.parse(readFileSync(tokFile, "utf8")), JSON.parse(readFileSync(configFile, "utf8")));
const loadS = (performance.now() - t0) / 1000;
const docs = JSON.parse(readFileSync(corpusFile, "utf8"));
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0);

let best = Infinity, tokens = 0, hash = 0n;
const mask = (1n << 64n) - 1n;
for (let r = 0; r < repeats; r++) {
  const start = performance.now();
  const all = docs.map((d) => tokenizer.encode(d, { add_special_tokens: false }).ids);
  best = Math.min(best, (performance.now() - start) / 1000);
  // Hashing is outside the timed region (BigInt arithmetic would dominate it).
  let h = 1469598103934665603n, count = 0;
  for (const ids of all) {
    count += ids.length;
    for (const id of ids) h = ((h ^ BigInt(id)) * 1099511628211n) & mask;
  }
  tokens = count;
  hash = h;
}
console.log(JSON.stringify({
  implementation: "@huggingface/tokenizers",
  documents: docs.length, bytes, tokens,
  ids_fnv1a: hash.toString(16).padStart(16, "0"),
  load_s: loadS, encode_s: best, mb_per_s: bytes / 1e6 / best, tokens_per_s: tokens / best,
}));

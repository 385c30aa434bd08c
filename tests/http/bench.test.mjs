// `flashline bench serve` against our own 2x2 world (`flashline launch --run serve`, one MTP
// draft per step) on the tiny model with the V4 vocabulary: every request completes, the token
// totals equal what the server counted (its /metrics counters, moved by this run alone), the
// JSON has every key vLLM's --save-result has with the right types (and its speculative decoding
// keys); then a ShareGPT run, a chat run and the sweep's files.
// Needs FLASHLINE, TINY_MODEL and TOKENIZER (see run.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, metric } from './server.mjs';

const bin = process.env.FLASHLINE;
const model = process.env.TINY_MODEL;
const tokenizer = process.env.TOKENIZER;
const data = join(dirname(fileURLToPath(import.meta.url)), '..', 'data', 'bench');
const available = bin && spawnSync(bin, ['bench', 'serve', '--help']).status === 0;
const opts = { skip: available ? false : 'flashline bench serve is not available in this build' };

let world, dir, plan;

before(async () => {
  if (!available) return;
  dir = mkdtempSync(join(tmpdir(), 'flashline-bench-'));
  plan = join(dir, 'plan.yaml');
  const p = spawnSync(bin, ['plan', '--cluster', 'localhost:4', '--model', model, '--stages', '2', '--lanes', '2',
                            '-o', plan], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  world = await startServer(bin, ['launch', '--plan', plan, '--model', model, '--run', 'serve', '--',
                                  '--tokenizer', tokenizer, '--served-model-name', 'tiny',
                                  '--speculative-tokens', '1']);
});

after(async () => {
  if (world) {
    const { code } = await world.stop('SIGUSR1');
    assert.equal(code, 0, `every rank exits 0\n${world.log()}`);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function bench(args) {
  const r = spawnSync(bin, ['bench', ...args], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return r;
}

const counters = async () => ({
  prompt: await metric(world.url, 'flashline:prompt_tokens_total'),
  generation: await metric(world.url, 'flashline:generation_tokens_total'),
});

test('bench serve: every request completes, totals equal the server\'s counts, vLLM\'s keys', opts, async () => {
  const out = join(dir, 'random.json');
  const before = await counters();
  const r = bench(['serve', '--base-url', world.url, '--tokenizer', tokenizer, '--dataset', 'random',
                   '--num-prompts', '12', '--input-len', '24', '--output-len', '6', '--range-ratio', '0.5',
                   '--ignore-eos', '--max-concurrency', '6', '--no-warmup', '--goodput', 'ttft:60000',
                   '--percentile-metrics', 'ttft,tpot,itl,e2el', '--metric-percentiles', '50,90,99',
                   '--plan', plan, '--save-result', out]);
  const after = await counters();
  assert.match(r.stdout, /=+ Serving Benchmark Result =+\nSuccessful requests: +12 /);
  assert.match(r.stdout, /Planner prediction vs measured/);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(j.completed, 12);
  assert.equal(j.num_prompts, 12);
  assert.equal(j.model_id, 'tiny');
  assert.equal(j.total_input_tokens, after.prompt - before.prompt);
  assert.equal(j.total_output_tokens, after.generation - before.generation);
  assert.equal(j.total_output_tokens, j.output_lens.reduce((a, b) => a + b, 0));
  assert.equal(j.total_input_tokens, j.input_lens.reduce((a, b) => a + b, 0));
  for (const n of j.output_lens) assert.ok(n >= 3 && n <= 9, `output length ${n} within the range ratio`);
  const numbers = ['duration', 'request_throughput', 'request_goodput', 'output_throughput', 'total_token_throughput',
                   'burstiness'];
  for (const metricName of ['ttft', 'tpot', 'itl', 'e2el'])
    for (const k of ['mean', 'median', 'std', 'p50', 'p90', 'p99']) numbers.push(`${k}_${metricName}_ms`);
  for (const k of numbers) assert.equal(typeof j[k], 'number', k);
  for (const k of ['completed', 'total_input_tokens', 'total_output_tokens', 'max_concurrency'])
    assert.ok(Number.isInteger(j[k]), k);
  assert.equal(j.request_rate, 'inf');
  assert.equal(j.max_concurrency, 6);
  assert.equal(j.request_goodput, j.request_throughput);  // a one-minute TTFT objective: every request is good
  for (const k of ['input_lens', 'output_lens', 'ttfts', 'itls', 'generated_texts', 'errors']) {
    assert.ok(Array.isArray(j[k]), k);
    assert.equal(j[k].length, 12, k);
  }
  assert.ok(j.itls.every((gaps, i) => gaps.length === j.output_lens[i] - 1 || gaps.length < j.output_lens[i]));
  assert.ok(j.errors.every((e) => e === ''));
  for (const k of ['date', 'backend', 'model_id', 'tokenizer_id']) assert.equal(typeof j[k], 'string', k);
  // The world drafts one token per step: vLLM's spec_decode_* keys from the server's counters.
  for (const k of ['spec_decode_num_drafts', 'spec_decode_draft_tokens', 'spec_decode_accepted_tokens',
                   'spec_decode_acceptance_rate', 'spec_decode_acceptance_length'])
    assert.equal(typeof j[k], 'number', k);
  assert.ok(j.spec_decode_num_drafts > 0 && j.spec_decode_acceptance_length >= 1);
  assert.ok(Array.isArray(j.spec_decode_per_position_acceptance_rates));
  assert.equal(j.plan_comparison.per_stage.length, 2);
  for (const stage of j.plan_comparison.per_stage) {
    assert.equal(typeof stage.measured_step_ms, 'number');
    assert.ok(stage.measured_idle_share >= 0 && stage.measured_idle_share <= 1, JSON.stringify(stage));
  }
});

test('bench serve: ShareGPT prompts through the chat endpoint, at a Poisson rate', opts, async () => {
  const out = join(dir, 'chat.json');
  const r = bench(['serve', '--base-url', world.url, '--endpoint', '/v1/chat/completions', '--tokenizer', tokenizer,
                   '--dataset', 'sharegpt', '--dataset-path', join(data, 'sharegpt-tiny.json'), '--num-prompts', '4',
                   '--output-len', '4', '--ignore-eos', '--request-rate', '20', '--seed', '1', '--save-result', out,
                   '--plot', join(dir, 'cdf.svg')]);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(j.completed, 4, r.stdout);
  assert.equal(j.backend, 'openai-chat');
  assert.equal(j.request_rate, 20);
  assert.deepEqual(j.output_lens, [4, 4, 4, 4]);
  assert.match(readFileSync(join(dir, 'cdf.svg'), 'utf8'), /^<svg [^]*Time to first token CDF[^]*<\/svg>\n$/);
});

test('bench sweep: one JSON per point, the table and the charts', opts, async () => {
  const out = join(dir, 'sweep');
  const r = bench(['sweep', '--base-url', world.url, '--tokenizer', tokenizer, '--num-prompts', '4',
                   '--input-len', '16', '--output-len', '4', '--ignore-eos', '--concurrencies', '1,4',
                   '--out-dir', out]);
  assert.deepEqual(readdirSync(out).sort(), ['concurrency-1.json', 'concurrency-4.json', 'sweep.svg', 'sweep.txt']);
  assert.match(r.stdout, /concurrency 4 /);
  for (const f of ['concurrency-1.json', 'concurrency-4.json'])
    assert.equal(JSON.parse(readFileSync(join(out, f), 'utf8')).completed, 4);
  const svg = readFileSync(join(out, 'sweep.svg'), 'utf8');
  for (const title of ['Throughput', 'Latency percentiles', 'End-to-end latency CDF']) assert.ok(svg.includes(title));
});

test('bench serve: a bad flag or an unreachable server is one error line', opts, () => {
  const bad = spawnSync(bin, ['bench', 'serve', '--base-url', world.url, '--dataset', 'random'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^flashline: error: --dataset random: needs --tokenizer/m);
  const down = spawnSync(bin, ['bench', 'serve', '--base-url', 'http://127.0.0.1:1', '--dataset', 'jsonl',
                               '--dataset-path', join(data, 'prompts.jsonl')], { encoding: 'utf8' });
  assert.equal(down.status, 2);
  assert.match(down.stderr, /^flashline: error: --base-url: cannot connect to 127\.0\.0\.1:1/m);
});

// `flashline serve` on a tiny model with the real V4 vocabulary (random weights: the text is
// noise, but every id is the engine's). Checks that HTTP carries exactly what the engine
// generates: greedy ids equal `flashline generate`, streams equal whole replies, seeds reproduce,
// and 256 concurrent streams (a quarter cut off at random points) each equal their solo run,
// with the server healthy and every KV page free afterwards. Needs FLASHLINE, TINY_MODEL and
// TOKENIZER (see run.sh); skipped while the binary has no serve command.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startServer, metric } from './server.mjs';

const bin = process.env.FLASHLINE;
const model = process.env.TINY_MODEL;
const tokenizer = process.env.TOKENIZER;
const available = bin && spawnSync(bin, ['serve', '--help']).status === 0;
const opts = { skip: available ? false : 'flashline serve is not available in this build' };

let server, client;

before(async () => {
  if (!available) return;
  // Speculative decoding on (2 MTP drafts per step): every reply below must still equal the
  // non-speculative `generate`'s, the 256 streams and their cut-offs included.
  server = await startServer(bin, ['serve', '--model', model, '--tokenizer', tokenizer, '--served-model-name', 'tiny',
                                   '--numerics', 'fast', '--speculative-tokens', '2']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });
});

// The rank reports serve prints after the engine's shutdown: every KV page back in every pool.
function assertPagesFree(log, ranks) {
  const reports = [...log.matchAll(/rank (\d+) \(stage \d+, lane \d+\): kv pages used (\d+) of (\d+), live states (\d+)/g)];
  assert.equal(reports.length, ranks, log);
  for (const [, rank, used, total, live] of reports) {
    assert.ok(Number(total) > 0);
    assert.equal(Number(used), 0, `rank ${rank} still uses KV pages\n${log}`);
    assert.equal(Number(live), 0, `rank ${rank} still holds request states`);
  }
}

after(async () => {
  if (server) {
    const { code } = await server.stop();
    assert.equal(code, 0, `serve exits 0 on SIGTERM\n${server.log()}`);
    // After everything above, the 256 streams and their cut-offs included.
    assertPagesFree(server.log(), 1);
  }
});

// Prompts of a few real-vocabulary ids (deterministic, varied lengths).
const prompt = (k) => Array.from({ length: 3 + (k % 7) }, (_, i) => (k * 7919 + i * 104729) % 128000);

async function complete(body) {
  return client.completions.create({ model: 'tiny', temperature: 0, return_token_ids: true, ...body });
}

test('greedy ids through HTTP equal flashline generate', opts, async () => {
  for (const k of [1, 2]) {
    const ids = prompt(k);
    const r = await complete({ prompt: ids, max_tokens: 12, ignore_eos: true });
    const gen = spawnSync(bin, ['generate', '--model', model, '--prompt-ids', ids.join(','), '--max-new-tokens', '12',
                                '--numerics', 'fast'], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    assert.deepEqual(r.choices[0].token_ids, gen.stdout.trim().split(',').map(Number));
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 12);
  }
});

test('streamed chat at temperature 0 equals the whole reply', opts, async () => {
  const body = { model: 'tiny', messages: [{ role: 'user', content: 'Tell me about the sea.' }], temperature: 0, max_tokens: 24 };
  const whole = await client.chat.completions.create(body);
  let content = '', reasoning = '';
  for await (const chunk of await client.chat.completions.create({ ...body, stream: true }))
    for (const c of chunk.choices) content += c.delta.content ?? '';
  assert.equal(content, whole.choices[0].message.content ?? '');
  assert.equal(reasoning, '');
});

test('seeds reproduce sampled replies; n choices use seed + i', opts, async () => {
  const body = { prompt: prompt(3), max_tokens: 16, temperature: 1.0, top_p: 0.95, ignore_eos: true };
  const a = await complete({ ...body, seed: 42 });
  const b = await complete({ ...body, seed: 42 });
  assert.deepEqual(a.choices[0].token_ids, b.choices[0].token_ids);
  const n = await complete({ ...body, seed: 42, n: 2 });
  assert.deepEqual(n.choices[0].token_ids, a.choices[0].token_ids);
  const next = await complete({ ...body, seed: 43 });
  assert.deepEqual(n.choices[1].token_ids, next.choices[0].token_ids);
});

test('logprobs: the greedy token is the most likely one', opts, async () => {
  const r = await complete({ prompt: prompt(4), max_tokens: 6, logprobs: 3, ignore_eos: true });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.token_logprobs.length, 6);
  for (let i = 0; i < 6; i++) {
    const best = Math.max(...Object.values(lp.top_logprobs[i]));
    assert.ok(lp.token_logprobs[i] <= 0);
    assert.equal(lp.token_logprobs[i], best);
  }
});

test('stop strings cut the greedy text before the match', opts, async () => {
  const full = await complete({ prompt: prompt(5), max_tokens: 24, ignore_eos: true });
  const text = full.choices[0].text;
  const stop = [...text].slice(6, 9).join('');
  if (stop.trim() === '') return;  // a blank stop string would be dropped
  const cut = await complete({ prompt: prompt(5), max_tokens: 24, ignore_eos: true, stop: [stop] });
  assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, 'stop');
});

test('256 concurrent streams, a quarter cut off: the rest equal their solo runs, nothing left running', opts, async () => {
  const kinds = 16;
  const solo = [];
  for (let k = 0; k < kinds; k++) {
    const r = await complete({ prompt: prompt(100 + k), max_tokens: 8, ignore_eos: true });
    solo.push(r.choices[0].token_ids);
  }
  let rng = 12345;
  const random = () => ((rng = (rng * 1103515245 + 12345) % 2147483648) / 2147483648);
  const clients = Array.from({ length: 256 }, (_, i) => ({ k: i % kinds, cutAfter: i % 4 === 3 ? 1 + Math.floor(random() * 6) : -1 }));
  const results = await Promise.all(clients.map(async ({ k, cutAfter }) => {
    const controller = new AbortController();
    const stream = await client.completions.create(
      { model: 'tiny', prompt: prompt(100 + k), max_tokens: 8, ignore_eos: true, temperature: 0, stream: true,
        return_token_ids: true }, { signal: controller.signal });
    const ids = [];
    let chunks = 0, finish = null;
    try {
      for await (const chunk of stream) {
        for (const c of chunk.choices) {
          ids.push(...(c.token_ids ?? []));
          finish = c.finish_reason ?? finish;
        }
        if (++chunks === cutAfter) {
          controller.abort();
          break;
        }
      }
    } catch (e) {
      if (cutAfter < 0) throw e;
    }
    return { k, cut: cutAfter >= 0 && finish === null, ids, finish };
  }));
  let completed = 0;
  for (const r of results) {
    if (r.cut) continue;
    completed++;
    assert.deepEqual(r.ids, solo[r.k], `stream of prompt ${r.k}`);
    assert.equal(r.finish, 'length');
  }
  assert.ok(completed >= 192, `${completed} streams completed`);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  // Cut-off streams are aborted as their clients go; the engine reports them finished. (Every KV
  // page back in the pool is checked from the rank reports at shutdown: EngineStats' page count
  // is a snapshot taken at steps, stale once the engine is idle.)
  for (let i = 0; i < 2000 && (await metric(server.url, 'flashline:num_requests_running')) !== 0; i++)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal(await metric(server.url, 'flashline:num_requests_running'), 0);
  assert.equal(await metric(server.url, 'flashline:num_requests_waiting'), 0);
  // The drafts were verified (the tiny model's own MTP head drafts poorly: any acceptance).
  const drafted = await metric(server.url, 'flashline:spec_decode_num_draft_tokens_total');
  assert.ok(drafted > 0, 'drafts verified');
  assert.ok(await metric(server.url, 'flashline:spec_decode_num_accepted_tokens_total') <= drafted);
});

test('over the context limit: 400 naming both numbers', opts, async () => {
  await assert.rejects(complete({ prompt: prompt(6), max_tokens: 2_000_000 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, /1048576/);
    assert.match(e.message, /2000000 in the completion/);
    return true;
  });
});

test('a 2x2 world under flashline launch --run serve answers with the ids of one process', opts, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flashline-serve-2x2-'));
  try {
    const plan = join(dir, 'plan.yaml');
    const p = spawnSync(bin, ['plan', '--cluster', 'localhost:4', '--model', model, '--stages', '2', '--lanes', '2',
                              '-o', plan], { encoding: 'utf8' });
    assert.equal(p.status, 0, p.stderr);
    const world = await startServer(bin, ['launch', '--plan', plan, '--model', model, '--run', 'serve', '--',
                                          '--tokenizer', tokenizer, '--served-model-name', 'tiny']);
    try {
      const remote = new OpenAI({ baseURL: `${world.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });
      for (const k of [7, 8]) {
        const body = { model: 'tiny', prompt: prompt(k), max_tokens: 8, ignore_eos: true, temperature: 0, return_token_ids: true };
        const [one, two] = await Promise.all([client.completions.create(body), remote.completions.create(body)]);
        assert.deepEqual(two.choices[0].token_ids, one.choices[0].token_ids);
      }
      assert.equal((await fetch(`${world.url}/health`)).status, 200);
    } finally {
      const { code } = await world.stop('SIGUSR1');
      assert.equal(code, 0, `every rank exits 0\n${world.log()}`);
      assertPagesFree(world.log(), 4);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

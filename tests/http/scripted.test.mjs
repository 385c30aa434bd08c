// The gateway end to end with the official OpenAI Node client (and curl for raw SSE), over the
// scripted engine: replies are known text, so tool calls, reasoning, stop strings and every error
// case can be checked exactly. Needs SCRIPTED_SERVER and TOKENIZER (see run.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { startServer, sseEvents, metric } from './server.mjs';

const bin = process.env.SCRIPTED_SERVER;
const tokenizer = process.env.TOKENIZER;
const REPLY = 'Hello! This is a scripted reply. Stop here, please.';
const TOOLS = [{
  type: 'function',
  function: { name: 'get_weather', description: 'Weather of a city',
              parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
}];

let plain, keyed, down, client;

before(async () => {
  [plain, keyed, down] = await Promise.all([
    startServer(bin, ['--tokenizer', tokenizer, '--served-model-name', 'scripted']),
    startServer(bin, ['--tokenizer', tokenizer, '--served-model-name', 'scripted', '--api-key', 'sekret',
                      '--max-queue', '1', '--max-body-bytes', '4096']),
    startServer(bin, ['--tokenizer', tokenizer, '--served-model-name', 'scripted', '--unhealthy']),
  ]);
  client = new OpenAI({ baseURL: `${plain.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  for (const s of [plain, keyed, down]) if (s) assert.equal((await s.stop()).code, 0, s.log());
});

const user = (content) => [{ role: 'user', content }];

test('chat completion: message, finish reason, usage, fingerprint', async () => {
  const r = await client.chat.completions.create({ model: 'scripted', messages: user('Hi') });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, REPLY);
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(r.system_fingerprint.startsWith('fp_flashline'));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('streamed chat: deltas add up to the message; usage in the last chunk', async () => {
  const whole = await client.chat.completions.create({ model: 'scripted', messages: user('Hi'), temperature: 0 });
  const stream = await client.chat.completions.create({
    model: 'scripted', messages: user('Hi'), temperature: 0, stream: true, stream_options: { include_usage: true } });
  let content = '', finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      content += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  assert.ok(chunks > 3, 'more than one content chunk');
  assert.equal(content, whole.choices[0].message.content);
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, whole.usage);
});

test('n choices are numbered and each complete', async () => {
  const r = await client.chat.completions.create({ model: 'scripted', messages: user('Hi'), n: 3, seed: 5 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  for (const c of r.choices) assert.equal(c.message.content, REPLY);
});

test('tools: the call comes back as tool_calls, the result goes back in, streamed calls accumulate', async () => {
  const messages = user('SCRIPT:tool What is the weather in Paris?');
  const r = await client.chat.completions.create({ model: 'scripted', messages, tools: TOOLS });
  const choice = r.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.match(call.id, /^call_/);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });

  const followUp = await client.chat.completions.create({
    model: 'scripted', tools: TOOLS,
    messages: [...user('What is the weather in Paris?'), choice.message,
               { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' }] });
  assert.equal(followUp.choices[0].message.content, REPLY);

  const runner = client.chat.completions.stream({ model: 'scripted', messages, tools: TOOLS });
  let leaked = '';
  runner.on('content', (delta) => { leaked += delta; });
  const final = await runner.finalChatCompletion();
  assert.equal(leaked, '', 'no DSML reaches content');
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(final.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.equal(final.choices[0].message.tool_calls[0].function.arguments, call.function.arguments);
});

test('thinking: reasoning_content apart from content, whole and streamed', async () => {
  const body = { model: 'scripted', messages: user('SCRIPT:think 2+2?'), chat_template_kwargs: { thinking: true } };
  const r = await client.chat.completions.create(body);
  assert.equal(r.choices[0].message.reasoning_content, 'Let me add 2 and 2.');
  assert.equal(r.choices[0].message.content, 'The answer is 4.');
  let reasoning = '', content = '';
  for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
    for (const c of chunk.choices) {
      reasoning += c.delta.reasoning_content ?? '';
      content += c.delta.content ?? '';
    }
  }
  assert.equal(reasoning, 'Let me add 2 and 2.');
  assert.equal(content, 'The answer is 4.');
  const effort = await client.chat.completions.create({ model: 'scripted', messages: user('SCRIPT:think'),
                                                         reasoning_effort: 'high' });
  assert.equal(effort.choices[0].message.reasoning_content, 'Let me add 2 and 2.');
});

test('stop strings: cut before the match, never shown, also when streamed', async () => {
  const r = await client.chat.completions.create({ model: 'scripted', messages: user('Hi'), stop: ['Stop here', 'zzz'] });
  assert.equal(r.choices[0].message.content, 'Hello! This is a scripted reply. ');
  assert.equal(r.choices[0].finish_reason, 'stop');
  let content = '';
  for await (const chunk of await client.chat.completions.create({ model: 'scripted', messages: user('Hi'),
                                                                   stop: 'reply.', stream: true }))
    for (const c of chunk.choices) content += c.delta.content ?? '';
  assert.equal(content, 'Hello! This is a scripted ');
});

test('completions: token-id prompt, logprobs, length, echo', async () => {
  const r = await client.completions.create({ model: 'scripted', prompt: [9906, 0, 1], max_tokens: 4, logprobs: 2 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 4);
  assert.equal(r.usage.prompt_tokens, 3);
  assert.equal(r.choices[0].logprobs.tokens.length, 4);
  assert.equal(r.choices[0].logprobs.tokens.join(''), r.choices[0].text);
  assert.equal(Object.keys(r.choices[0].logprobs.top_logprobs[0]).length, 2);
  const echo = await client.completions.create({ model: 'scripted', prompt: 'Say:', max_tokens: 2, echo: true });
  assert.ok(echo.choices[0].text.startsWith('Say:'));
  const chat = await client.chat.completions.create({ model: 'scripted', messages: user('Hi'), max_tokens: 3,
                                                      logprobs: true, top_logprobs: 2 });
  assert.equal(chat.choices[0].logprobs.content.length, 3);
  assert.equal(chat.choices[0].logprobs.content[0].top_logprobs.length, 2);
  assert.equal(chat.choices[0].finish_reason, 'length');
});

test('raw SSE through curl: data lines, [DONE], event-stream content type', () => {
  const body = JSON.stringify({ model: 'scripted', messages: user('Hi'), stream: true });
  const r = spawnSync('curl', ['-sS', '-N', '-i', '-H', 'Content-Type: application/json', '-d', body,
                               `${plain.url}/v1/chat/completions`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [head, payload] = r.stdout.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, /content-type: text\/event-stream/i);
  assert.ok(payload.endsWith('data: [DONE]\n\n'));
  for (const block of payload.split('\n\n').filter((b) => b)) assert.match(block, /^data: /);
  const { events, done } = sseEvents(payload);
  assert.ok(done);
  assert.equal(events.map((e) => e.choices[0]?.delta?.content ?? '').join(''), REPLY);
});

test('a client that goes away mid-stream frees its request at once', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'scripted', messages: user('SCRIPT:long'), max_tokens: 3000, stream: true },
    { signal: controller.signal });
  let seen = 0;
  for await (const chunk of stream) {
    if (++seen === 5) {
      assert.equal(await metric(plain.url, 'flashline:num_requests_running'), 1);
      controller.abort();
      break;
    }
  }
  assert.equal(seen, 5);
  for (let i = 0; i < 400 && (await metric(plain.url, 'flashline:kv_cache_pages_used')) !== 0; i++)
    await new Promise((r) => setTimeout(r, 25));
  assert.equal(await metric(plain.url, 'flashline:kv_cache_pages_used'), 0);
  assert.equal(await metric(plain.url, 'flashline:num_requests_running'), 0);
  assert.equal((await fetch(`${plain.url}/health`)).status, 200);
});

test('models, health, version, tokenize/detokenize, metrics', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['scripted']);
  assert.equal((await fetch(`${plain.url}/health`)).status, 200);
  assert.ok((await (await fetch(`${plain.url}/version`)).json()).version);
  const post = (path, body) => fetch(`${plain.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const tok = await (await post('/tokenize', { prompt: 'Hello world' })).json();
  assert.equal(tok.count, tok.tokens.length);
  assert.equal((await (await post('/detokenize', { tokens: tok.tokens })).json()).prompt, 'Hello world');
  const chatTok = await (await post('/tokenize', { messages: user('Hi') })).json();
  assert.equal(chatTok.tokens[0], 0, 'the chat prompt starts with BOS');
  const text = await (await fetch(`${plain.url}/metrics`)).text();
  for (const name of ['flashline:num_requests_waiting', 'flashline:prompt_tokens_total', 'flashline:inter_token_latency_seconds_bucket',
                      'flashline:request_queue_time_seconds_sum', 'flashline:num_preemptions_total',
                      'flashline:spec_decode_num_drafts_total', 'flashline:spec_decode_num_accepted_tokens_total'])
    assert.ok(text.includes(name), name);
});

// Every error: status, OpenAI error type, and the client's error class.
async function expectError(promise, status, type, check = () => {}) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, status, e.message);
    assert.equal(e.error?.type ?? e.type, type);
    check(e);
    return true;
  });
}

test('errors: wrong types and unknown values name the JSON path', async () => {
  await expectError(client.chat.completions.create({ model: 'scripted', messages: user('x'), temperature: 'hot' }),
                    400, 'invalid_request_error', (e) => { assert.ok(e instanceof OpenAI.BadRequestError); assert.equal(e.param, 'temperature'); });
  await expectError(client.chat.completions.create({ model: 'scripted', messages: [{ role: 'robot', content: 'x' }] }),
                    400, 'invalid_request_error', (e) => { assert.equal(e.param, 'messages[0].role'); assert.match(e.message, /robot/); });
  await expectError(client.chat.completions.create({ model: 'scripted', messages: user('x'), tool_choice: 'sometimes', tools: TOOLS }),
                    400, 'invalid_request_error', (e) => assert.equal(e.param, 'tool_choice'));
  await expectError(client.completions.create({ model: 'scripted', prompt: [1, 2, 99999999] }),
                    400, 'invalid_request_error', (e) => assert.equal(e.param, 'prompt[2]'));
});

test('errors: malformed JSON names the byte offset', async () => {
  const r = await fetch(`${plain.url}/v1/chat/completions`, { method: 'POST', body: '{"messages": [}' });
  assert.equal(r.status, 400);
  const e = (await r.json()).error;
  assert.equal(e.type, 'invalid_request_error');
  assert.match(e.message, /near byte 15/);  // the parser counts the offending character
});

test('errors: over the context limit names both numbers', async () => {
  await expectError(client.chat.completions.create({ model: 'scripted', messages: user('x'), max_tokens: 5000 }),
                    400, 'invalid_request_error', (e) => { assert.equal(e.code, 'context_length_exceeded'); assert.match(e.message, /4096/); assert.match(e.message, /5000 in the completion/); });
});

test('errors: unknown model is 404, engine down is 503, unknown path 404', async () => {
  await expectError(client.chat.completions.create({ model: 'gpt-4o', messages: user('x') }), 404, 'invalid_request_error',
                    (e) => { assert.ok(e instanceof OpenAI.NotFoundError); assert.equal(e.code, 'model_not_found'); });
  const downClient = new OpenAI({ baseURL: `${down.url}/v1`, apiKey: 'x', maxRetries: 0 });
  await expectError(downClient.chat.completions.create({ model: 'scripted', messages: user('x') }), 503, 'server_error');
  assert.equal((await fetch(`${down.url}/health`)).status, 503);
  assert.equal((await fetch(`${plain.url}/v1/nothing`)).status, 404);
});

test('errors: missing or wrong key 401, body too large 413, queue full 429 with Retry-After', async () => {
  const noKey = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await expectError(noKey.chat.completions.create({ model: 'scripted', messages: user('x') }), 401, 'invalid_request_error',
                    (e) => assert.ok(e instanceof OpenAI.AuthenticationError));
  const r401 = await fetch(`${keyed.url}/v1/models`);
  assert.equal(r401.status, 401);
  const ok = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'sekret', maxRetries: 0 });
  await expectError(ok.chat.completions.create({ model: 'scripted', messages: user('x'.repeat(10000)) }), 413, 'invalid_request_error');
  // One long stream holds the only place in the queue.
  const controller = new AbortController();
  const holder = await ok.chat.completions.create({ model: 'scripted', messages: user('SCRIPT:long'), max_tokens: 3000, stream: true },
                                                  { signal: controller.signal });
  const it = holder[Symbol.asyncIterator]();
  await it.next();
  const r = await fetch(`${keyed.url}/v1/chat/completions`, { method: 'POST', headers: { Authorization: 'Bearer sekret' },
                                                              body: JSON.stringify({ messages: user('x') }) });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '1');
  assert.equal((await r.json()).error.type, 'rate_limit_error');
  controller.abort();
  await it.next().catch(() => {});
  for (let i = 0; i < 400 && (await metric(keyed.url, 'flashline:num_requests_running')) !== 0; i++)
    await new Promise((res) => setTimeout(res, 25));
  const after = await ok.chat.completions.create({ model: 'scripted', messages: user('x') });
  assert.equal(after.choices[0].message.content, REPLY, 'a bad request disturbs nothing');
});

async function streamDuringShutdown(extraArgs) {
  const s = await startServer(bin, ['--tokenizer', tokenizer, '--served-model-name', 'scripted', '--interval-us', '2000',
                                    ...extraArgs]);
  const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const stream = await c.chat.completions.create({ model: 'scripted', messages: user('SCRIPT:long'), max_tokens: 150,
                                                   stream: true });
  let finish = null, content = '', stopping = null;
  for await (const chunk of stream) {
    if (!stopping) stopping = s.stop();  // SIGTERM once the stream is under way
    for (const ch of chunk.choices) {
      content += ch.delta.content ?? '';
      finish = ch.finish_reason ?? finish;
    }
  }
  const exit = await stopping;
  return { finish, words: content.split('word').length - 1, exit };
}

test('SIGTERM: a stream in flight finishes within --shutdown-timeout, then exit 0', async () => {
  const r = await streamDuringShutdown(['--shutdown-timeout', '30']);
  assert.equal(r.finish, 'length');
  assert.equal(r.words, 150);
  assert.equal(r.exit.code, 0);
});

test('SIGTERM: past --shutdown-timeout a stream in flight is aborted, then exit 0', async () => {
  const r = await streamDuringShutdown(['--shutdown-timeout', '0']);
  assert.equal(r.finish, 'abort');
  assert.ok(r.words < 150);
  assert.equal(r.exit.code, 0);
});

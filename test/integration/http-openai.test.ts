/**
 * Text generation over the router's HTTP port with OpenAI's own client (the `openai` package
 * pointed at /v1) and with fetch for the generate extension, against a fake text-generation
 * executor (test/router/generation/fake-executor.ts) serving a checkpoint stored with
 * `nexus store`, authentication on: models, chat and completions whole and streamed (usage,
 * stop, max_tokens, logprobs, seed, echo), OpenAI's error object for 400 / 401 / 403 / 404 / 422
 * / 429, and generate / generate_stream.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../services/router/generation/text-tokenizer.ts';
import { startFakeExecutor, type FakeExecutor } from '../router/generation/fake-executor.ts';
import { checkpointFiles } from '../router/generation/generation-cluster.ts';
import { byteLevelTokenizer } from '../router/generation/tokenizer-fixtures.ts';
import { startHttpCluster, type HttpCluster } from '../router/http/http-cluster.ts';

/** What the fake model "generates" for every prompt, then EOS. */
const SCRIPT = ' hello world café 😀 STOP and more';
const tokenizer = TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json });
const scriptIds = tokenizer.encode(SCRIPT);
let cluster: HttpCluster;
let executor: FakeExecutor;
let client: OpenAI;
let key: string;

const clientWith = (apiKey: string) => new OpenAI({ baseURL: `${cluster.baseUrl}/v1`, apiKey, maxRetries: 0 });

beforeAll(async () => {
  executor = await startFakeExecutor({ tokensFor: () => [...scriptIds, byteLevelTokenizer().eosId], maxSequenceTokens: 512 });
  cluster = await startHttpCluster({ auth: true, executor: false, executorAddresses: [executor.address] });
  await cluster.storeDirectory('tiny-gpt', checkpointFiles());
  const { 'tokenizer.json': _left, ...withoutTokenizer } = checkpointFiles();
  await cluster.storeDirectory('no-tokenizer', withoutTokenizer);
  key = await cluster.key('infer');
  client = clientWith(key);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  await executor?.stop();
});

describe('the OpenAI API, through OpenAI\'s client', () => {
  it('lists the text-generation models', async () => {
    const models = await client.models.list();
    expect(models.data.map((model) => model.id).sort()).toEqual(['no-tokenizer', 'tiny-gpt']);
    expect(models.data[0]).toMatchObject({ object: 'model' });
  });

  it('answers a chat completion rendered with the checkpoint\'s template, with usage', async () => {
    const completion = await client.chat.completions.create({ model: 'tiny-gpt', messages: [{ role: 'user', content: 'Say hello' }], temperature: 0, seed: 7 });
    expect(completion).toMatchObject({ object: 'chat.completion', model: 'tiny-gpt', choices: [{ index: 0, message: { role: 'assistant', content: SCRIPT }, finish_reason: 'stop' }] });
    const rendered = '<|im_start|>user\nSay hello<|im_end|>\n<|im_start|>assistant\n';
    const start = executor.starts().at(-1)!;
    expect(start.promptTokenIds).toEqual(tokenizer.encode(rendered, false));
    expect(start.sampling).toMatchObject({ temperature: 0, seed: 7 });
    expect(completion.usage).toEqual({ prompt_tokens: start.promptTokenIds.length, completion_tokens: scriptIds.length + 1, total_tokens: start.promptTokenIds.length + scriptIds.length + 1 });
  });

  it('streams a chat completion as chunks, the first with the role, the last with the finish and a usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny-gpt', messages: [{ role: 'user', content: 'Say hello' }], stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks[0]).toMatchObject({ object: 'chat.completion.chunk', choices: [{ delta: { role: 'assistant' } }] });
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe(SCRIPT);
    const withChoices = chunks.filter((chunk) => chunk.choices.length > 0);
    expect(withChoices.at(-1)!.choices[0].finish_reason).toBe('stop');
    expect(withChoices.slice(0, -1).every((chunk) => chunk.choices[0].finish_reason === null)).toBe(true);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: scriptIds.length + 1 } });
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
  });

  it('ends the event stream with data: [DONE]', async () => {
    const response = await fetch(`${cluster.baseUrl}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-gpt', messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 4 }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    expect(text.startsWith('data: {')).toBe(true);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('stops at a stop string and at max_tokens, saying which', async () => {
    const stopped = await client.chat.completions.create({ model: 'tiny-gpt', messages: [{ role: 'user', content: 'go' }], stop: ['STOP'] });
    expect(stopped.choices[0]).toMatchObject({ message: { content: ' hello world café 😀 ' }, finish_reason: 'stop' });
    const cut = await client.chat.completions.create({ model: 'tiny-gpt', messages: [{ role: 'user', content: 'go' }], max_tokens: 3 });
    expect(cut.choices[0].finish_reason).toBe('length');
    expect(cut.usage!.completion_tokens).toBe(3);
  });

  it('returns log-probabilities with the alternatives asked for', async () => {
    const completion = await client.chat.completions.create({ model: 'tiny-gpt', messages: [{ role: 'user', content: 'go' }], max_tokens: 4, logprobs: true, top_logprobs: 1 });
    const content = completion.choices[0].logprobs!.content!;
    expect(content).toHaveLength(4);
    expect(content[0]).toMatchObject({ logprob: expect.any(Number), top_logprobs: [{ logprob: expect.any(Number) }] });
    expect(content.map((entry) => entry.token).join('')).toBe(completion.choices[0].message.content);
  });

  it('answers a legacy completion, with echo and logprobs', async () => {
    const plain = await client.completions.create({ model: 'tiny-gpt', prompt: 'Once', max_tokens: 4, logprobs: 1 });
    expect(plain.object).toBe('text_completion');
    expect(plain.choices[0].finish_reason).toBe('length');
    expect(plain.choices[0].logprobs!.tokens).toHaveLength(4);
    expect(plain.choices[0].logprobs!.tokens!.join('')).toBe(plain.choices[0].text);
    expect(SCRIPT.startsWith(plain.choices[0].text)).toBe(true);
    const echoed = await client.completions.create({ model: 'tiny-gpt', prompt: 'Once', max_tokens: 4, echo: true });
    expect(echoed.choices[0].text).toBe(`Once${plain.choices[0].text}`);
    const streamed = await client.completions.create({ model: 'tiny-gpt', prompt: 'Once', max_tokens: 4, stream: true });
    let text = '';
    for await (const chunk of streamed) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(plain.choices[0].text);
  });

  it('answers errors as OpenAI\'s error object with its status: 400 naming the field, 401, 403, 404, 422, 429', async () => {
    const refusal = async (work: Promise<unknown>) => {
      try {
        await work;
      } catch (error) {
        if (error instanceof OpenAI.APIError) return { status: error.status, type: error.type, param: error.param, code: error.code, message: error.message };
        throw error;
      }
      throw new Error('the call succeeded');
    };
    const chat = (with_: OpenAI, model: string, extra: object = {}) => with_.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], ...extra });
    expect(await refusal(chat(client, 'tiny-gpt', { temperature: 5 }))).toMatchObject({ status: 400, type: 'invalid_request_error', param: 'temperature', code: 'invalid_argument' });
    expect(await refusal(chat(client, 'tiny-gpt', { n: 2 }))).toMatchObject({ status: 400, param: 'n' });
    expect(await refusal(chat(client, 'tiny-gpt', { tools: [{ type: 'function', function: { name: 'f' } }] }))).toMatchObject({ status: 400, param: 'tools' });
    expect(await refusal(chat(clientWith('nxk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 'tiny-gpt'))).toMatchObject({ status: 401, type: 'authentication_error' });
    expect(await refusal(chat(clientWith(await cluster.key('infer', { models: ['other-*'] })), 'tiny-gpt'))).toMatchObject({
      status: 403, type: 'permission_error', message: expect.stringContaining("may not use model 'tiny-gpt'"),
    });
    expect(await refusal(chat(client, 'missing-model'))).toMatchObject({ status: 404, type: 'not_found_error', code: 'not_found' });
    expect(await refusal(chat(client, 'no-tokenizer'))).toMatchObject({ status: 422, code: 'failed_precondition', message: expect.stringContaining('tokenizer.json') });
    const limited = clientWith(await cluster.key('infer', { limits: { requestsPerSecond: 0.2, burst: 1 } }));
    await chat(limited, 'tiny-gpt', { max_tokens: 2 });
    await chat(limited, 'tiny-gpt', { max_tokens: 2 });
    expect(await refusal(chat(limited, 'tiny-gpt', { max_tokens: 2 }))).toMatchObject({ status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' });
  });
});

describe('the generate extension', () => {
  const post = (path: string, body: unknown) => fetch(`${cluster.baseUrl}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  }) as Promise<Omit<Response, 'json'> & { json(): Promise<any> }>;

  it('answers generate with the text, the prompt first unless excluded, and how it finished', async () => {
    const answer = await (await post('/v2/models/tiny-gpt/generate', { text_input: 'Say', parameters: { max_tokens: 64, temperature: 0 } })).json();
    expect(answer).toMatchObject({ model_name: 'tiny-gpt', model_version: '1', text_output: `Say${SCRIPT}`, parameters: { nexus_finish_reason: 'eos' } });
    const excluded = await (await post('/v2/models/tiny-gpt/versions/1/generate', { text_input: 'Say', parameters: { exclude_input_in_output: true } })).json();
    expect(excluded.text_output).toBe(SCRIPT.slice(0, excluded.text_output.length));
  });

  it('streams generate_stream as server-sent events, one per chunk of text', async () => {
    const response = await post('/v2/models/tiny-gpt/generate_stream', { text_input: 'Say', parameters: { max_tokens: 64, exclude_input_in_output: true } });
    expect(response.status).toBe(200);
    const events = (await response.text()).split('\n\n').filter((event) => event.startsWith('data: ')).map((event) => JSON.parse(event.slice(6)));
    expect(events.length).toBeGreaterThan(5);
    expect(events.map((event) => event.text_output).join('')).toBe(SCRIPT);
    expect(events.at(-1).parameters).toMatchObject({ nexus_finish_reason: 'eos', nexus_generated_tokens: scriptIds.length + 1 });
    const refused = await post('/v2/models/tiny-gpt/generate_stream', { text_input: 'x', parameters: { temperature: -1 } });
    expect(refused.status).toBe(400);
    expect((await refused.json()).error).toContain('sampling_parameters.temperature');
  });

  it('answers Triton\'s vLLM convention on /infer with JSON BYTES tensors', async () => {
    const answer = await (await post('/v2/models/tiny-gpt/infer', {
      inputs: [
        { name: 'text_input', shape: [1], datatype: 'BYTES', data: ['Say'] },
        { name: 'sampling_parameters', shape: [1], datatype: 'BYTES', data: [JSON.stringify({ max_tokens: 64 })] },
        { name: 'exclude_input_in_output', shape: [1], datatype: 'BOOL', data: [true] },
      ],
    })).json();
    expect(answer.outputs).toEqual([{ name: 'text_output', datatype: 'BYTES', shape: [1], data: [SCRIPT] }]);
  });
});

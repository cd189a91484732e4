/**
 * Text generation through the router's nexus.llm.v1.Generation, over real gRPC, against a fake
 * executor: a checkpoint directory stored with `nexus store` becomes one text-generation version,
 * Generate streams its tokens as text with whole characters, stop strings end it (and cancel the
 * sequence on the executor), a client's cancel reaches the executor as CancelSequence, Tokenize
 * and chat prompts use the checkpoint's tokenizer and template.
 */
import { Metadata, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinishReason, GenerateRequest, type GenerateResponse, type TokenizeResponse } from '../../services/protocol/generated/nexus/llm/v1/llm.ts';
import type { ModelMetadataResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { CHATML_TEMPLATE, startGenerationCluster, type GenerationCluster } from '../router/generation/generation-cluster.ts';
import { TextTokenizer } from '../../services/router/generation/text-tokenizer.ts';
import { byteLevelTokenizer } from '../router/generation/tokenizer-fixtures.ts';

/** What the fake model "generates" for every prompt, then EOS. */
const SCRIPT = ' hello world café 😀 STOP and more';
let cluster: GenerationCluster;
let scriptIds: number[];

beforeAll(async () => {
  const tokenizer = TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json });
  scriptIds = tokenizer.encode(SCRIPT);
  cluster = await startGenerationCluster({
    executor: { tokensFor: () => [...scriptIds, byteLevelTokenizer().eosId], maxSequenceTokens: 512 },
  });
  await cluster.storeCheckpoint('tiny-gpt');
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

const textOf = (responses: GenerateResponse[]) => responses.map((response) => response.text).join('');

describe('a stored checkpoint directory', () => {
  it('is one version whose metadata has the text-generation signature (Triton\'s vLLM inputs and outputs)', async () => {
    const versions = await cluster.cli(['versions', 'tiny-gpt', '--json']);
    expect(versions.code, versions.stderr).toBe(0);
    expect(JSON.parse(versions.stdout).versions).toHaveLength(1);
    const metadata = await new Promise<ModelMetadataResponse>((resolve, reject) =>
      cluster.inference.modelMetadata({ name: 'tiny-gpt', version: '' }, (error, response) => (error ? reject(error) : resolve(response))));
    expect(metadata.inputs.map((input) => `${input.name}:${input.datatype}`)).toEqual(['text_input:BYTES', 'stream:BOOL', 'sampling_parameters:BYTES', 'exclude_input_in_output:BOOL']);
    expect(metadata.outputs).toEqual([{ name: 'text_output', datatype: 'BYTES', shape: [-1] }]);
  });
});

describe('Generate', () => {
  it('streams the tokens as text, whole characters each time, and ends "eos" with the counts', async () => {
    const { responses, error } = await cluster.generate({ modelName: 'tiny-gpt', text: 'Say hello', maxNewTokens: 64, sampling: { temperature: 0 }, seed: 5 });
    expect(error).toBeUndefined();
    expect(textOf(responses)).toBe(SCRIPT);
    expect(responses.length).toBeGreaterThan(10);
    // The emoji's four byte tokens release nothing until the last one, which releases it whole.
    expect(responses.filter((response) => response.text.includes('😀')).map((response) => response.text)).toEqual(['😀']);
    expect(responses.every((response) => !response.text.includes('\uFFFD'))).toBe(true);
    const last = responses.at(-1)!;
    expect(last).toMatchObject({ finishReason: FinishReason.FINISH_REASON_EOS, generatedTokens: scriptIds.length + 1, modelVersion: '1' });
    expect(last.promptTokens).toBe(cluster.tokenizer.encode('Say hello').length);
    expect(last.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(responses.slice(0, -1).every((response) => response.finishReason === FinishReason.FINISH_REASON_UNSPECIFIED)).toBe(true);
    const start = cluster.executor.starts().at(-1)!;
    expect(start).toMatchObject({
      modelName: 'tiny-gpt', version: 1, promptTokenIds: cluster.tokenizer.encode('Say hello'), maxNewTokens: 64, stopTokenIds: [cluster.eosId],
      sampling: { temperature: 0, topP: 1, topK: 0, seed: 5 },
    });
  });

  it('stops at a stop string split over tokens: the text before it, not it, and the sequence is cancelled on the executor', async () => {
    const { responses, error } = await cluster.generate({ modelName: 'tiny-gpt', text: 'go', stop: ['STOP'], maxNewTokens: 64 });
    expect(error).toBeUndefined();
    expect(textOf(responses)).toBe(' hello world café 😀 ');
    const last = responses.at(-1)!;
    expect(last).toMatchObject({ finishReason: FinishReason.FINISH_REASON_STOP, stop: 'STOP' });
    const sequenceId = cluster.executor.starts().at(-1)!.sequenceId;
    await expect.poll(() => cluster.executor.cancels()).toContain(sequenceId);
  });

  it('ends "length" at max_new_tokens and returns log-probabilities when asked', async () => {
    const { responses } = await cluster.generate({ modelName: 'tiny-gpt', tokenIds: { ids: [1, 2, 3] }, maxNewTokens: 3, logprobs: true, topLogprobs: 1 });
    const tokens = responses.flatMap((response) => response.tokens);
    expect(tokens.map((token) => token.id)).toEqual(scriptIds.slice(0, 3));
    expect(tokens[0].logprob).toBeCloseTo(-0.1);
    expect(tokens[0].topLogprobs).toEqual([{ tokenId: scriptIds[0], text: expect.any(String), logprob: expect.closeTo(-0.1, 5) }]);
    expect(responses.at(-1)).toMatchObject({ finishReason: FinishReason.FINISH_REASON_LENGTH, generatedTokens: 3, promptTokens: 3 });
    expect(cluster.executor.starts().at(-1)!.promptTokenIds).toEqual([1, 2, 3]);
  });

  it('renders chat messages with the checkpoint\'s template and sends them without added special tokens', async () => {
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }];
    const { error } = await cluster.generate({ modelName: 'tiny-gpt', chat: { messages }, maxNewTokens: 2 });
    expect(error).toBeUndefined();
    const rendered = TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json, tokenizerConfigJson: JSON.stringify({ chat_template: CHATML_TEMPLATE }) })
      .renderChat(messages);
    expect(cluster.executor.starts().at(-1)!.promptTokenIds).toEqual(cluster.tokenizer.encode(rendered, false));
  });

  it('sends CancelSequence when the client cancels, so the executor frees the sequence at once', async () => {
    const before = cluster.executor.starts().length;
    const call = cluster.generation.generate(GenerateRequest.fromPartial({ modelName: 'tiny-gpt', text: 'go on', maxNewTokens: 64, ignoreEos: true }));
    call.on('error', () => {});
    await new Promise<void>((resolve) => call.once('data', () => resolve()));
    call.cancel();
    const sequenceId = await expect.poll(() => cluster.executor.starts()[before]?.sequenceId).toBeDefined().then(() => cluster.executor.starts()[before].sequenceId);
    await expect.poll(() => cluster.executor.cancels()).toContain(sequenceId);
    expect(cluster.executor.starts()[before].stopTokenIds).toEqual([]);
    await expect.poll(() => cluster.executor.running()).toBe(0);
  });

  it.each([
    [{ modelName: 'tiny-gpt' }, status.INVALID_ARGUMENT, /prompt is missing/],
    [{ modelName: 'tiny-gpt', text: 'x', maxNewTokens: 600 }, status.INVALID_ARGUMENT, /max_new_tokens is 600.*at most/],
    [{ modelName: 'tiny-gpt', text: 'x', sampling: { topP: 2 } }, status.INVALID_ARGUMENT, /sampling\.top_p/],
    [{ modelName: 'tiny-gpt', tokenIds: { ids: [999_999] } }, status.INVALID_ARGUMENT, /token_ids\.ids\[0\].*outside the vocabulary/],
    [{ modelName: 'tiny-gpt', text: 'x', priority: 'urgent' }, status.INVALID_ARGUMENT, /priority 'urgent'/],
    [{ modelName: 'no-such-model', text: 'x' }, status.NOT_FOUND, /no-such-model/],
  ])('refuses %j precisely', async (request, code, pattern) => {
    const { error } = await cluster.generate(request);
    expect(error?.code).toBe(code);
    expect(error?.details).toMatch(pattern);
  });
});

describe('Tokenize', () => {
  it('answers the prompt\'s ids and tokens, and what the chat template rendered', async () => {
    const tokenize = (request: object) => new Promise<TokenizeResponse>((resolve, reject) =>
      cluster.generation.tokenize(request as never, new Metadata(), (error, response) => (error ? reject(error) : resolve(response))));
    const plain = await tokenize({ modelName: 'tiny-gpt', modelVersion: '', text: ' the café' });
    expect(plain.tokenIds).toEqual(cluster.tokenizer.encode(' the café'));
    expect(plain.tokens[0]).toBe('Ġthe');
    expect(plain.modelVersion).toBe('1');
    const chat = await tokenize({ modelName: 'tiny-gpt', modelVersion: '', chat: { messages: [{ role: 'user', content: 'Hi' }] } });
    expect(chat.promptText).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });
});

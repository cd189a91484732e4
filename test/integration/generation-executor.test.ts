/**
 * Text generation end to end with a real executor: a tiny GPT-2 checkpoint with random weights
 * (one layer, 32 wide, a byte-level BPE trained on a few sentences) stored with `nexus store`,
 * loaded by the executor as a text-generation model, and generated from through the router's
 * Generate and Triton's ModelStreamInfer convention. Random weights make no sense, so the checks
 * are about the path: the tokens arrive and decode to the text sent, greedy decoding and a seed
 * repeat, max_new_tokens and stop strings end it, and ModelStreamInfer streams the same text.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countWords, huggingFaceTokenizerJson, trainBpe } from '../../services/examples/wordnet-gpt/bpe.ts';
import { readCheckpoint, writeCheckpoint } from '../../services/examples/wordnet-gpt/checkpoint.ts';
import { generateIds } from '../../services/examples/wordnet-gpt/generate.ts';
import { Gpt2Model } from '../../services/examples/wordnet-gpt/gpt2.ts';
import { BpeEncoder } from '../../services/examples/wordnet-gpt/bpe.ts';
import { WORDNET_GPT_EXAMPLE } from '../../services/examples/index.ts';
import { parameterCount } from '../../services/examples/wordnet-gpt/weights.ts';
import { FinishReason, GenerateRequest, GenerationClient, type GenerateResponse } from '../../services/protocol/generated/nexus/llm/v1/llm.ts';
import { ModelInferRequest, type InferTensorContents, type ModelStreamInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { TextTokenizer } from '../../services/router/generation/text-tokenizer.ts';
import { startCluster, type Cluster } from './harness.ts';

const EMPTY_CONTENTS: InferTensorContents = {
  boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [], fp32Contents: [], fp64Contents: [], bytesContents: [],
};
const SENTENCES = ['the cat sat on the mat', 'a dog ran in the park', 'the sun is warm and bright', 'words are made of letters'];
let cluster: Cluster;
let client: GenerationClient;
let tokenizer: TextTokenizer;

beforeAll(async () => {
  cluster = await startCluster();
  const vocabulary = trainBpe(countWords(SENTENCES), 300);
  const config = { vocab_size: vocabulary.tokens.length, n_positions: 64, n_embd: 32, n_layer: 1, n_head: 2, layer_norm_epsilon: 1e-5 };
  // Small random weights from a fixed generator, so every run stores the same checkpoint.
  let state = 12345;
  const parameters = Float32Array.from({ length: parameterCount(config) }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return (state / 2 ** 31 - 0.5) * 0.2;
  });
  const dir = join(cluster.dataDir, 'tiny-gpt2');
  await mkdir(dir, { recursive: true });
  writeCheckpoint(dir, { config, parameters, vocabulary }, {});
  tokenizer = TextTokenizer.fromFiles({ tokenizerJson: JSON.stringify(huggingFaceTokenizerJson(vocabulary)) });
  const stored = await cluster.cli(['store', dir, 'tiny-gpt2', '--allow-dirty']);
  if (stored.code !== 0) throw new Error(`nexus store failed: ${stored.stderr}`);
  client = new GenerationClient(cluster.router.address, credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function generate(request: Partial<GenerateRequest>): Promise<{ responses: GenerateResponse[]; error?: ServiceError }> {
  return new Promise((done) => {
    const responses: GenerateResponse[] = [];
    const call = client.generate(GenerateRequest.fromPartial({ modelName: 'tiny-gpt2', ...request }), new Metadata(), { deadline: Date.now() + 60_000 });
    call.on('data', (response: GenerateResponse) => responses.push(response));
    call.on('error', (error: ServiceError) => done({ responses, error }));
    call.on('end', () => done({ responses }));
  });
}

const idsOf = (responses: GenerateResponse[]) => responses.flatMap((response) => response.tokens.map((token) => token.id));
const textOf = (responses: GenerateResponse[]) => responses.map((response) => response.text).join('');

describe('text generation on a real executor', () => {
  it('streams max_new_tokens tokens whose text is the tokens decoded, the same again when greedy', async () => {
    const first = await generate({ text: 'the cat', maxNewTokens: 12, sampling: { temperature: 0 }, ignoreEos: true });
    expect(first.error).toBeUndefined();
    const ids = idsOf(first.responses);
    expect(ids).toHaveLength(12);
    expect(first.responses.at(-1)).toMatchObject({ finishReason: FinishReason.FINISH_REASON_LENGTH, generatedTokens: 12, promptTokens: tokenizer.encode('the cat').length });
    expect(textOf(first.responses)).toBe(tokenizer.decode([...tokenizer.encode('the cat'), ...ids]).slice('the cat'.length));
    const again = await generate({ text: 'the cat', maxNewTokens: 12, sampling: { temperature: 0 }, ignoreEos: true });
    expect(idsOf(again.responses)).toEqual(ids);
  }, 120_000);

  it('repeats a sampled generation with the same seed', async () => {
    const sampled = () => generate({ text: 'a dog', maxNewTokens: 10, sampling: { temperature: 1 }, seed: 42, ignoreEos: true });
    const [one, two] = [await sampled(), await sampled()];
    expect(one.error).toBeUndefined();
    expect(idsOf(two.responses)).toEqual(idsOf(one.responses));
  }, 120_000);

  it('stops at a stop string taken from what greedy decoding writes', async () => {
    const greedy = await generate({ text: 'the sun', maxNewTokens: 16, sampling: { temperature: 0 }, ignoreEos: true });
    const text = textOf(greedy.responses);
    // A piece from the middle of the text as the stop string: the answer is what comes before it.
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
    const stopped = await generate({ text: 'the sun', maxNewTokens: 16, sampling: { temperature: 0 }, ignoreEos: true, stop: [stop] });
    expect(stopped.error).toBeUndefined();
    expect(textOf(stopped.responses)).toBe(text.slice(0, text.indexOf(stop)));
    expect(stopped.responses.at(-1)).toMatchObject({ finishReason: FinishReason.FINISH_REASON_STOP, stop });
  }, 120_000);

  it('streams the same greedy text over ModelStreamInfer with Triton\'s vLLM convention', async () => {
    const greedy = await generate({ text: 'words are', maxNewTokens: 6, sampling: { temperature: 0 }, ignoreEos: true });
    const bytes = (text: string) => ({ ...EMPTY_CONTENTS, bytesContents: [Buffer.from(text)] });
    const request = ModelInferRequest.fromPartial({
      modelName: 'tiny-gpt2', id: 'triton',
      inputs: [
        { name: 'text_input', datatype: 'BYTES', shape: [1], contents: bytes('words are') },
        { name: 'stream', datatype: 'BOOL', shape: [1], contents: { ...EMPTY_CONTENTS, boolContents: [true] } },
        { name: 'sampling_parameters', datatype: 'BYTES', shape: [1], contents: bytes('{"temperature": 0, "max_tokens": 6, "ignore_eos": true}') },
        { name: 'exclude_input_in_output', datatype: 'BOOL', shape: [1], contents: { ...EMPTY_CONTENTS, boolContents: [true] } },
      ],
    });
    const chunks = await new Promise<string[]>((done, fail) => {
      const call = cluster.inference.modelStreamInfer();
      const texts: string[] = [];
      call.on('data', (message: ModelStreamInferResponse) => {
        if (message.errorMessage) fail(new Error(message.errorMessage));
        const raw = Buffer.from(message.inferResponse!.rawOutputContents[0]);
        texts.push(raw.subarray(4).toString('utf8'));
        if (message.inferResponse!.parameters.triton_final_response?.boolParam) call.end();
      });
      call.on('error', fail);
      call.on('end', () => done(texts));
      call.write(request);
    });
    expect(chunks.join('')).toBe(textOf(greedy.responses));
  }, 120_000);

  it('generates from the committed example checkpoint exactly the tokens its TypeScript reference does', async () => {
    // A copy outside the repository, so storing it pins nothing in the working tree.
    const copy = join(cluster.dataDir, 'wordnet-gpt');
    await cp(WORDNET_GPT_EXAMPLE.checkpointDir, copy, { recursive: true });
    const stored = await cluster.cli(['store', copy, 'wordnet-gpt', '--allow-dirty']);
    if (stored.code !== 0) throw new Error(`nexus store failed: ${stored.stderr}`);
    const checkpoint = readCheckpoint(WORDNET_GPT_EXAMPLE.checkpointDir);
    const prompt = new BpeEncoder(checkpoint.vocabulary).encode('dog:');
    const expected = generateIds(new Gpt2Model(checkpoint.config, checkpoint.parameters), prompt, { maxNewTokens: 10 });
    const served = await generate({ modelName: 'wordnet-gpt', text: 'dog:', maxNewTokens: 10, sampling: { temperature: 0 }, ignoreEos: true });
    expect(served.error).toBeUndefined();
    expect(idsOf(served.responses)).toEqual(expected);
    // Top-k and top-p draws, seeded: they finish and repeat.
    const sampled = () => generate({ modelName: 'wordnet-gpt', text: 'dog:', maxNewTokens: 10, sampling: { temperature: 0.8, topK: 5, topP: 0.9 }, seed: 7, ignoreEos: true });
    const [one, two] = [await sampled(), await sampled()];
    expect(one.error).toBeUndefined();
    expect(idsOf(one.responses)).toHaveLength(10);
    expect(idsOf(two.responses)).toEqual(idsOf(one.responses));
  }, 120_000);
});

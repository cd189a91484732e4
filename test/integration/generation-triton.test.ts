/**
 * Text generation over the Open Inference Protocol with Triton's vLLM-backend conventions, over
 * real gRPC against a fake executor: ModelStreamInfer streams one response per chunk with the
 * last one flagged triton_final_response, ModelInfer answers the whole text once, inputs come as
 * typed or raw contents, a bad message gets its own error_message and the stream goes on, and a
 * Python grpcio client streams the tokens as tritonclient would.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  InferTensorContents, ModelInferRequest, ModelInferResponse, ModelStreamInferResponse,
} from '../../services/protocol/generated/inference/grpc_service.ts';
import { rawBytesOf } from '../../services/router/generation/triton-vllm.ts';
import { TextTokenizer } from '../../services/router/generation/text-tokenizer.ts';
import { startGenerationCluster, type GenerationCluster } from '../router/generation/generation-cluster.ts';
import { byteLevelTokenizer } from '../router/generation/tokenizer-fixtures.ts';

const SCRIPT = ' hello world café 😀 STOP and more';
const REPO_ROOT = resolve(import.meta.dirname, '../..');
let cluster: GenerationCluster;

beforeAll(async () => {
  const tokenizer = TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json });
  const scriptIds = tokenizer.encode(SCRIPT);
  cluster = await startGenerationCluster({ executor: { tokensFor: () => [...scriptIds, byteLevelTokenizer().eosId] } });
  await cluster.storeCheckpoint('tiny-gpt');
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

const contents = (partial: Partial<InferTensorContents>): InferTensorContents => ({
  boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [], fp32Contents: [], fp64Contents: [], bytesContents: [], ...partial,
});

/** A request in typed contents, as a KServe client writes it. */
function typedRequest(prompt: string, options: { stream?: boolean; sampling?: object; exclude?: boolean; id?: string } = {}): ModelInferRequest {
  const inputs = [{ name: 'text_input', datatype: 'BYTES', shape: [1], parameters: {}, contents: contents({ bytesContents: [Buffer.from(prompt)] }) }];
  if (options.stream !== undefined) inputs.push({ name: 'stream', datatype: 'BOOL', shape: [1], parameters: {}, contents: contents({ boolContents: [options.stream] }) });
  if (options.sampling) {
    inputs.push({ name: 'sampling_parameters', datatype: 'BYTES', shape: [1], parameters: {}, contents: contents({ bytesContents: [Buffer.from(JSON.stringify(options.sampling))] }) });
  }
  if (options.exclude !== undefined) {
    inputs.push({ name: 'exclude_input_in_output', datatype: 'BOOL', shape: [1], parameters: {}, contents: contents({ boolContents: [options.exclude] }) });
  }
  return { modelName: 'tiny-gpt', modelVersion: '', id: options.id ?? 'r1', parameters: {}, inputs, outputs: [], rawInputContents: [] };
}

/** text_output of a response, from its raw contents. */
const textOf = (response: ModelInferResponse) => {
  const raw = Buffer.from(response.rawOutputContents[0]);
  return raw.subarray(4, 4 + raw.readUInt32LE(0)).toString('utf8');
};

/** Sends `requests` on one ModelStreamInfer stream; resolves with every message once `finals` final responses (or errors) arrived. */
function stream(requests: ModelInferRequest[], finals = requests.length): Promise<ModelStreamInferResponse[]> {
  return new Promise((done, fail) => {
    const call = cluster.inference.modelStreamInfer();
    const received: ModelStreamInferResponse[] = [];
    let ended = 0;
    call.on('data', (message: ModelStreamInferResponse) => {
      received.push(message);
      if (message.errorMessage !== '' || message.inferResponse?.parameters.triton_final_response?.boolParam) ended += 1;
      if (ended === finals) call.end();
    });
    call.on('error', fail);
    call.on('end', () => done(received));
    for (const request of requests) call.write(request);
  });
}

describe('ModelStreamInfer', () => {
  it('streams a response per chunk, the prompt first, the last one flagged triton_final_response with the counts', async () => {
    const messages = await stream([typedRequest('Say', { stream: true, sampling: { max_tokens: 64, temperature: 0 } })]);
    const responses = messages.map((message) => message.inferResponse!);
    expect(messages.every((message) => message.errorMessage === '')).toBe(true);
    expect(responses.length).toBeGreaterThan(5);
    expect(responses.map(textOf).join('')).toBe(`Say${SCRIPT}`);
    expect(responses.slice(0, -1).every((response) => response.parameters.triton_final_response.boolParam === false)).toBe(true);
    const last = responses.at(-1)!;
    expect(last.parameters).toMatchObject({ triton_final_response: { boolParam: true }, nexus_finish_reason: { stringParam: 'eos' } });
    expect(last).toMatchObject({ modelName: 'tiny-gpt', modelVersion: '1', id: 'r1' });
    expect(last.outputs).toEqual([{ name: 'text_output', datatype: 'BYTES', shape: [1], parameters: {}, contents: undefined }]);
  });

  it('takes raw contents as tritonclient sends them, leaves the prompt out when asked, and stops at a stop string', async () => {
    const request = typedRequest('', { id: 'raw' });
    request.inputs = [
      { name: 'text_input', datatype: 'BYTES', shape: [1], parameters: {}, contents: undefined },
      { name: 'stream', datatype: 'BOOL', shape: [1], parameters: {}, contents: undefined },
      { name: 'sampling_parameters', datatype: 'BYTES', shape: [1], parameters: {}, contents: undefined },
      { name: 'exclude_input_in_output', datatype: 'BOOL', shape: [1], parameters: {}, contents: undefined },
    ];
    request.rawInputContents = [rawBytesOf('Go'), Uint8Array.of(1), rawBytesOf('{"stop": ["STOP"], "max_tokens": "64"}'), Uint8Array.of(1)];
    const responses = (await stream([request])).map((message) => message.inferResponse!);
    expect(responses.map(textOf).join('')).toBe(' hello world café 😀 ');
    expect(responses.at(-1)!.parameters.nexus_finish_reason).toEqual({ stringParam: 'stop' });
  });

  it('answers once with the whole text when the request does not stream', async () => {
    const responses = await stream([typedRequest('Say', { sampling: { max_tokens: 4 } })]);
    expect(responses).toHaveLength(1);
    const only = responses[0].inferResponse!;
    expect(only.parameters.triton_final_response).toEqual({ boolParam: true });
    expect(only.parameters.nexus_generated_tokens).toEqual({ int64Param: 4 });
    expect(textOf(only).startsWith('Say')).toBe(true);
  });

  it('answers a bad message with its own error_message and goes on with the others on the stream', async () => {
    const bad = typedRequest('Say', { stream: true, sampling: { temperature: 'hot' }, id: 'bad' });
    const good = typedRequest('Say', { stream: true, sampling: { max_tokens: 2 }, id: 'good', exclude: true });
    const messages = await stream([bad, good]);
    const failed = messages.find((message) => message.errorMessage !== '')!;
    expect(failed.errorMessage).toMatch(/^INVALID_ARGUMENT: sampling_parameters\.temperature must be a number/);
    expect(failed.inferResponse?.id).toBe('bad');
    const answered = messages.filter((message) => message.inferResponse?.id === 'good' && message.errorMessage === '');
    expect(answered.at(-1)!.inferResponse!.parameters.triton_final_response).toEqual({ boolParam: true });
    expect(answered.map((message) => textOf(message.inferResponse!)).join('')).toBe(' he');
  });
});

describe('ModelInfer on a text-generation model', () => {
  const infer = (request: ModelInferRequest) => new Promise<ModelInferResponse>((done, fail) =>
    cluster.inference.modelInfer(request, new Metadata(), (error: ServiceError | null, response: ModelInferResponse) => (error ? fail(error) : done(response))));

  it('answers the whole text in one response', async () => {
    const response = await infer(typedRequest('Say', { sampling: { max_tokens: 64 }, exclude: true }));
    expect(textOf(response)).toBe(SCRIPT);
    expect(response.parameters.nexus_finish_reason).toEqual({ stringParam: 'eos' });
  });

  it.each([
    [typedRequest('Say', { stream: true }), /input 'stream' is true, but ModelInfer answers once/],
    [{ ...typedRequest('Say'), outputs: [{ name: 'logits', parameters: {} }] }, /requested output 'logits' does not exist/],
    [{ ...typedRequest('Say'), inputs: [{ ...typedRequest('Say').inputs[0], shape: [2] }] }, /shape \[2\]; it takes one element/],
    [{ ...typedRequest('Say'), inputs: [] }, /missing input 'text_input'/],
  ])('refuses a malformed request precisely (%#)', async (request, pattern) => {
    await expect(infer(request)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(pattern) });
  });
});

describe('a Python grpcio client', () => {
  it('streams the tokens over ModelStreamInfer as tritonclient would, until triton_final_response', async () => {
    const { stdout } = await promisify(execFile)('/usr/bin/python3', [
      join(REPO_ROOT, 'test/python/generation_stream_client.py'), '--address', cluster.router.address, '--model', 'tiny-gpt',
      '--prompt', 'Say', '--sampling', JSON.stringify({ temperature: 0, max_tokens: 64 }), '--exclude-input',
    ]);
    const result = JSON.parse(stdout);
    expect(result.errors).toEqual([]);
    expect(result.chunks.join('')).toBe(SCRIPT);
    expect(result.chunks.length).toBeGreaterThan(5);
    expect(result.final_parameters).toMatchObject({ triton_final_response: true, nexus_finish_reason: 'eos' });
    expect(result.model_version).toBe('1');
  });
});

/**
 * A battery of hostile requests through a real gRPC client: oversized and compressed-bomb
 * messages, huge declared shapes, mismatched byte lengths, prototype keys, non-finite outcomes.
 * Each one gets its exact status code, and after each the router is still up and a correct Iris
 * request still gets the right answer.
 */
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import {
  GRPCInferenceServiceClient, ModelInferRequest, ModelStreamInferResponse,
} from '../../services/protocol/generated/inference/grpc_service.ts';
import { ExperimentsClient } from '../../services/protocol/generated/nexus/router/v1/experiments.ts';
import { TasksClient } from '../../services/protocol/generated/nexus/router/v1/tasks.ts';
import { DEFAULT_SERVING_CONFIG } from '../../services/router/index.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

const MIB = 1024 * 1024;
let cluster: Cluster;
let iris: TrainedIrisModel;
let gzipInference: GRPCInferenceServiceClient;
let experiments: InstanceType<typeof ExperimentsClient>;
let tasks: InstanceType<typeof TasksClient>;

beforeAll(async () => {
  cluster = await startCluster({
    config: {
      defaults: { ...DEFAULT_SERVING_CONFIG, maxBatchSize: 16, maxQueueDelayMs: 1 },
      models: { iris: { split: { arms: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }] } } },
    },
  });
  iris = trainIrisModel();
  await cluster.store('iris', iris.onnx);
  await cluster.store('iris', iris.onnx);
  await cluster.waitUntilReady('iris');
  const address = cluster.router.address;
  const big = { 'grpc.max_send_message_length': 128 * MIB, 'grpc.max_receive_message_length': 128 * MIB };
  gzipInference = new GRPCInferenceServiceClient(address, credentials.createInsecure(), { ...big, 'grpc.default_compression_algorithm': 2 });
  experiments = new ExperimentsClient(address, credentials.createInsecure());
  tasks = new TasksClient(address, credentials.createInsecure());
}, 180_000);

afterAll(async () => {
  gzipInference?.close();
  experiments?.close();
  tasks?.close();
  await cluster?.stop();
});

const features = (shape: number[], values: number[] = [5.1, 3.5, 1.4, 0.2]) =>
  ({ name: 'features', datatype: 'FP32', shape, parameters: {}, contents: fp32Contents(values) });
const raw = (shape: number[], bytes: number) => ({
  inputs: [{ name: 'features', datatype: 'FP32', shape, parameters: {}, contents: undefined }], rawInputContents: [new Uint8Array(bytes)],
});
const full = (request: Partial<ModelInferRequest>): ModelInferRequest => ({
  modelName: 'iris', modelVersion: '1', id: '', parameters: {}, inputs: [features([1, 4])], outputs: [], rawInputContents: [], ...request,
});

/** Resolves with the call's status code (0 for OK). */
function codeOf(call: (done: (error: ServiceError | null) => void) => void): Promise<number> {
  return new Promise((resolve) => call((error) => resolve(error ? error.code : status.OK)));
}
const infer = (request: Partial<ModelInferRequest>, client = cluster.inference) =>
  codeOf((done) => client.modelInfer(full(request), new Metadata(), { deadline: Date.now() + 30_000 }, done));
const outcome = (value: number, modelName = 'iris', modelVersion = 1) =>
  codeOf((done) => experiments.reportOutcome({ modelName, alias: '', modelVersion, value }, done));

type Case = [name: string, send: () => Promise<number>, expected: number];
const { INVALID_ARGUMENT, RESOURCE_EXHAUSTED, NOT_FOUND, OK } = status;

const cases: Case[] = [
  // Prototype keys and bad schedule parameters.
  ['priority "__proto__"', () => infer({ parameters: { priority: { stringParam: '__proto__' } } }), INVALID_ARGUMENT],
  ['priority "constructor"', () => infer({ parameters: { priority: { stringParam: 'constructor' } } }), INVALID_ARGUMENT],
  ['priority "toString"', () => infer({ parameters: { priority: { stringParam: 'toString' } } }), INVALID_ARGUMENT],
  ['priority "hasOwnProperty"', () => infer({ parameters: { priority: { stringParam: 'hasOwnProperty' } } }), INVALID_ARGUMENT],
  ['priority 99', () => infer({ parameters: { priority: { int64Param: 99 } } }), INVALID_ARGUMENT],
  ['priority -1', () => infer({ parameters: { priority: { int64Param: -1 } } }), INVALID_ARGUMENT],
  ['priority as a double', () => infer({ parameters: { priority: { doubleParam: 1.5 } } }), INVALID_ARGUMENT],
  ['timeout 0', () => infer({ parameters: { timeout: { int64Param: 0 } } }), INVALID_ARGUMENT],
  ['timeout -5', () => infer({ parameters: { timeout: { int64Param: -5 } } }), INVALID_ARGUMENT],
  ['model "__proto__" (not a valid model name)', () => infer({ modelName: '__proto__', modelVersion: '' }), INVALID_ARGUMENT],
  ['model "constructor"', () => infer({ modelName: 'constructor', modelVersion: '' }), NOT_FOUND],
  ['version 999', () => infer({ modelVersion: '999' }), NOT_FOUND],
  // Tensors that do not match the signature.
  ['an unknown input', () => infer({ inputs: [{ ...features([1, 4]), name: 'constructor' }] }), INVALID_ARGUMENT],
  ['no inputs', () => infer({ inputs: [] }), INVALID_ARGUMENT],
  ['the input twice', () => infer({ inputs: [features([1, 4]), features([1, 4])] }), INVALID_ARGUMENT],
  ['INT32 for FP32', () => infer({ inputs: [{ ...features([1, 4]), datatype: 'INT32' }] }), INVALID_ARGUMENT],
  ['datatype "__proto__"', () => infer({ inputs: [{ ...features([1, 4]), datatype: '__proto__' }] }), INVALID_ARGUMENT],
  ['shape [1, 5]', () => infer({ inputs: [features([1, 5], [1, 2, 3, 4, 5])] }), INVALID_ARGUMENT],
  ['shape [4]', () => infer({ inputs: [features([4])] }), INVALID_ARGUMENT],
  ['shape [1, 0] where the signature fixes 4', () => infer({ inputs: [features([1, 0], [])] }), INVALID_ARGUMENT],
  ['shape [-1, 4]', () => infer({ inputs: [features([-1, 4])] }), INVALID_ARGUMENT],
  ['17 rows over max batch size 16', () => infer({ inputs: [features([17, 4], new Array(68).fill(1))] }), INVALID_ARGUMENT],
  ['3 values for 4', () => infer({ inputs: [features([1, 4], [1, 2, 3])] }), INVALID_ARGUMENT],
  ['values in int_contents', () => infer({ inputs: [{ ...features([1, 4], []), contents: { ...fp32Contents([]), intContents: [1, 2, 3, 4] } }] }), INVALID_ARGUMENT],
  ['no contents and no raw', () => infer({ inputs: [{ ...features([1, 4]), contents: undefined }] }), INVALID_ARGUMENT],
  ['an unknown output', () => infer({ outputs: [{ name: '__proto__', parameters: {} }] }), INVALID_ARGUMENT],
  // Byte lengths that do not match the shapes.
  ['raw 15 bytes for 16', () => infer(raw([1, 4], 15)), INVALID_ARGUMENT],
  ['raw 17 bytes for 16', () => infer(raw([1, 4], 17)), INVALID_ARGUMENT],
  ['two raw entries for one input', () => infer({ ...raw([1, 4], 16), rawInputContents: [new Uint8Array(16), new Uint8Array(16)] }), INVALID_ARGUMENT],
  ['raw and typed contents both', () => infer({ inputs: [features([1, 4])], rawInputContents: [new Uint8Array(16)] }), INVALID_ARGUMENT],
  ['raw 16 bytes for 1e6 rows', () => infer(raw([1e6, 4], 16)), INVALID_ARGUMENT],
  // Huge declared shapes: refused by the byte budget before a value is read.
  ['raw 16 bytes for 1e9 rows', () => infer(raw([1e9, 4], 16)), RESOURCE_EXHAUSTED],
  ['typed 4 values for 1e12 rows', () => infer({ inputs: [features([1e12, 4])] }), RESOURCE_EXHAUSTED],
  ['shape [2^53, 4]', () => infer({ inputs: [features([2 ** 53, 4])] }), INVALID_ARGUMENT],
  // Oversized and compressed messages.
  ['20 MiB of raw input (request budget 16 MiB)', () => infer(raw([(20 * MIB) / 16, 4], 20 * MIB), gzipInference), RESOURCE_EXHAUSTED],
  ['a 40 MiB message (message limit 32 MiB)', () => infer(raw([(40 * MIB) / 16, 4], 40 * MIB)), RESOURCE_EXHAUSTED],
  ['a gzip bomb inflating to 40 MiB', () => infer(raw([(40 * MIB) / 16, 4], 40 * MIB), gzipInference), RESOURCE_EXHAUSTED],
  ['a gzip bomb inflating to 20 MiB', () => infer(raw([(20 * MIB) / 16, 4], 20 * MIB), gzipInference), RESOURCE_EXHAUSTED],
  ['a gzip-compressed correct request', () => infer({}, gzipInference), OK],
  // A/B outcomes that would poison the statistics.
  ['outcome 1e308', () => outcome(1e308), INVALID_ARGUMENT],
  ['outcome -1e308', () => outcome(-1e308), INVALID_ARGUMENT],
  ['outcome Infinity', () => outcome(Infinity), INVALID_ARGUMENT],
  ['outcome NaN', () => outcome(NaN), INVALID_ARGUMENT],
  ['outcome 1e13', () => outcome(1e13), INVALID_ARGUMENT],
  ['outcome 1e12', () => outcome(1e12), OK],
  ['outcome for version 7', () => outcome(1, 'iris', 7), NOT_FOUND],
  ['outcome for model "__proto__"', () => outcome(1, '__proto__'), NOT_FOUND],
  ['outcome without a model', () => outcome(1, ''), INVALID_ARGUMENT],
  // The task API.
  ['a task without a request', () => codeOf((done) => tasks.submitTask({ request: undefined }, done)), INVALID_ARGUMENT],
  ['a task with priority "__proto__"', () => codeOf((done) => tasks.submitTask({ request: full({ parameters: { priority: { stringParam: '__proto__' } } }) }, done)), INVALID_ARGUMENT],
  ['a task of 1e9 declared rows', () => codeOf((done) => tasks.submitTask({ request: full(raw([1e9, 4], 16)) }, done)), RESOURCE_EXHAUSTED],
  ['task "__proto__"', () => codeOf((done) => tasks.getTask({ taskId: '__proto__' }, done)), NOT_FOUND],
  ['task ""', () => codeOf((done) => tasks.getTask({ taskId: '' }, done)), INVALID_ARGUMENT],
];

async function irisStillAnswers(): Promise<void> {
  const rows = [[6.7, 3.0, 5.2, 2.3]];
  const response = await cluster.infer({ modelName: 'iris', modelVersion: '1', inputs: [features([1, 4], rows.flat())] });
  const expected = iris.predict(rows).flat();
  const got = response.outputs[0].contents!.fp32Contents;
  expect(got.map((value, index) => Math.abs(value - expected[index]) < 1e-4)).toEqual(expected.map(() => true));
}

describe('hostile requests', () => {
  it(`has at least 40 cases (${cases.length})`, () => expect(cases.length).toBeGreaterThanOrEqual(40));

  it.each(cases)('%s', async (_name, send, expected) => {
    expect(await send()).toBe(expected);
    await irisStillAnswers();
  });

  it('answers an undecodable message on ModelStreamInfer with its own error_message, and the stream goes on', async () => {
    const client = new Client(cluster.router.address, credentials.createInsecure());
    const stream = client.makeBidiStreamRequest('/inference.GRPCInferenceService/ModelStreamInfer',
      (bytes: Buffer) => bytes, (reply: Buffer) => ModelStreamInferResponse.decode(reply));
    const answers: ModelStreamInferResponse[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('data', (answer: ModelStreamInferResponse) => answers.push(answer));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const good = (id: string) => Buffer.from(ModelInferRequest.encode(full({ id })).finish());
    stream.write(good('before'));
    stream.write(Buffer.from([0x0a, 0x7f, 0x61]));
    stream.write(good('after'));
    stream.end();
    await ended;
    client.close();
    expect(answers).toHaveLength(3);
    expect(answers.filter((answer) => answer.errorMessage === '').map((answer) => answer.inferResponse?.id).sort()).toEqual(['after', 'before']);
    expect(answers.find((answer) => answer.errorMessage !== '')?.errorMessage).toMatch(/^INVALID_ARGUMENT: the ModelStreamInfer request could not be decoded: /);
  });

  it('leaves the A/B statistics finite', async () => {
    const report = await new Promise<{ arms: Array<{ outcomeMean: number; outcomeStddev: number }> }>((resolve, reject) =>
      experiments.getExperiment({ modelName: 'iris', alias: '' }, (error, response) => (error ? reject(error) : resolve(response))));
    for (const arm of report.arms) expect(Number.isFinite(arm.outcomeMean) && Number.isFinite(arm.outcomeStddev)).toBe(true);
  });
});

/**
 * An executor told hostile things over its Connect stream by something posing as a router:
 * every refusal has its precise code, nothing outside the cache directory is touched, and after
 * each hostile message a correct request still gets the right answer.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../services/domain/index.ts';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { startExecutor, type RunningExecutor } from '../../services/executor/service/index.ts';
import { GraphBuilder } from '../../services/onnx/builder.ts';
import type { ModelVersion } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ExecutorStream, fp32Rows, fp32Values, registryRecord } from '../executor/service/executor-stream.ts';
import { startCluster, type Cluster } from './harness.ts';

/** The largest message this test's executor sends: an 8-row result of the wide model is over it. */
const MESSAGE_LIMIT = 32 * 1024;
/** The most output bytes of one result this test's executor sends: a 16-row result of the wide model is over it. */
const RESULT_LIMIT = 48 * 1024;
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];

/** x[-1, 4] · w[4, 1024]: 4 KiB of output per row. */
function wideModel(): Uint8Array {
  return new GraphBuilder('wide')
    .input('x', 'FP32', [-1, 4])
    .initializer('w', 'FP32', [4, 1024], new Float32Array(4 * 1024).fill(0.5))
    .node('MatMul', ['x', 'w'], ['y'], {}, 'widen')
    .output('y', 'FP32', [-1, 1024])
    .toBytes({ opset: 17 });
}

/** 16 MiB of input per row: 512 MiB at the default max_batch_size of 32. */
function hugeInputModel(): Uint8Array {
  return new GraphBuilder('huge').input('x', 'FP32', [-1, 2 ** 22]).node('Relu', ['x'], ['y']).output('y', 'FP32', [-1, 2 ** 22]).toBytes({ opset: 17 });
}

let cluster: Cluster;
let executor: RunningExecutor;
let stream: ExecutorStream;
let iris: TrainedIrisModel;
let irisRecord: ModelVersion;
const records = new Map<string, ModelVersion>();

async function expectIrisAnswers(version = 1): Promise<void> {
  const result = await stream.execute({ modelName: 'iris', version, inputs: [fp32Rows('features', 2, IRIS_ROW)] });
  expect(result.errorMessage).toBe('');
  const expected = iris.predict([IRIS_ROW, IRIS_ROW]).flat();
  fp32Values(result.outputs[0].data).forEach((value, index) => expect(value).toBeCloseTo(expected[index], 4));
}

beforeAll(async () => {
  cluster = await startCluster();
  iris = trainIrisModel();
  await cluster.store('iris', iris.onnx);
  await cluster.store('iris', iris.onnx); // version 2: identical bytes
  await cluster.store('wide', wideModel());
  await cluster.store('huge', hugeInputModel());
  executor = await startExecutor({
    registryAddress: cluster.registry.address, cacheDir: join(cluster.dataDir, 'trust-cache'), maxMessageBytes: MESSAGE_LIMIT, maxResultBytes: RESULT_LIMIT,
  });
  stream = new ExecutorStream(executor.address);
  await stream.hello;
  for (const [name, version] of [['iris', 1], ['iris', 2], ['wide', 1], ['huge', 1]] as const) {
    records.set(`${name}:${version}`, await registryRecord(cluster.registry.address, name, version));
  }
  irisRecord = records.get('iris:1')!;
  expect((await stream.load(irisRecord)).errorMessage).toBe('');
}, 120_000);

afterAll(async () => {
  stream?.close();
  await executor?.shutdown(1000);
  await cluster?.stop();
});

describe('hostile LoadModel messages', () => {
  it.each([
    ['../../etc/passwd'], ['a'.repeat(63)], ['a'.repeat(65)], ['A'.repeat(64)], [`${'a'.repeat(63)}\0`],
  ])('refuses sha256 %j as INVALID_ARGUMENT', async (sha256) => {
    const result = await stream.load({ ...irisRecord, version: 2, sha256 });
    expect(result.errorCode).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(result.errorMessage).toMatch(/sha256 .* 64 lower-case hex/);
    await expectIrisAnswers();
  });

  it('never deletes a file outside the cache directory', async () => {
    const victim = join(cluster.dataDir, 'victim.txt');
    await writeFile(victim, 'keep me');
    await mkdir(join(cluster.dataDir, 'trust-cache'), { recursive: true });
    for (const sha256 of ['../victim.txt', `../${'a'.repeat(61)}`, join(cluster.dataDir, 'victim.txt')]) {
      expect((await stream.load({ ...irisRecord, version: 2, sha256 })).errorCode).toBe(ErrorCode.INVALID_ARGUMENT);
    }
    expect(await readFile(victim, 'utf8')).toBe('keep me');
    await expectIrisAnswers();
  });

  it.each([
    ['sha256', { sha256: 'b'.repeat(64) }],
    ['format', { format: 'safetensors' }],
    ['tags', { tags: { 'nexus.precision': 'fp16' } }],
    ['signature', { signature: { inputs: [], outputs: [] } }],
  ])('refuses a claim whose %s disagrees with the registry, FAILED_PRECONDITION naming it', async (field, change) => {
    const result = await stream.load({ ...records.get('iris:2')!, ...change } as ModelVersion);
    expect(result.errorCode).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(result.errorMessage).toContain(`load_model.version.${field}`);
    await expectIrisAnswers();
  });

  it('refuses an unknown version (NOT_FOUND) and version 0 (INVALID_ARGUMENT)', async () => {
    expect((await stream.load({ ...irisRecord, version: 99 })).errorCode).toBe(ErrorCode.NOT_FOUND);
    expect((await stream.load({ ...irisRecord, modelName: 'no-such-model' })).errorCode).toBe(ErrorCode.NOT_FOUND);
    expect((await stream.load({ ...irisRecord, version: 0 })).errorCode).toBe(ErrorCode.INVALID_ARGUMENT);
    await expectIrisAnswers();
  });

  it('refuses a warm-up over its budget with RESOURCE_EXHAUSTED naming it', async () => {
    const result = await stream.load(records.get('huge:1')!);
    expect(result.errorCode).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(result.errorMessage).toMatch(/warm-up budget of 268435456 bytes/);
    await expectIrisAnswers();
  });
});

describe('hostile ExecuteBatch messages', () => {
  it('answers a batch for a model that is not loaded NOT_FOUND, that batch only', async () => {
    const [missing] = await Promise.all([
      stream.execute({ modelName: 'wide', version: 7, inputs: [fp32Rows('x', 1, IRIS_ROW)] }),
      expectIrisAnswers(),
    ]);
    expect(missing.errorCode).toBe(ErrorCode.NOT_FOUND);
  });

  it('refuses batches beyond the advertised slots with RESOURCE_EXHAUSTED', async () => {
    const { maxInflightBatches } = await stream.hello;
    const results = await Promise.all(Array.from({ length: maxInflightBatches + 6 }, () =>
      stream.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 32, IRIS_ROW)] })));
    const refused = results.filter((result) => result.errorCode === ErrorCode.RESOURCE_EXHAUSTED);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0].errorMessage).toContain('max_inflight_batches');
    expect(results.filter((result) => result.errorCode === 0).length).toBeGreaterThanOrEqual(maxInflightBatches);
    expect(results.every((result) => result.errorCode === 0 || result.errorCode === ErrorCode.RESOURCE_EXHAUSTED)).toBe(true);
    await expectIrisAnswers();
  });

  it('refuses a duplicate batch id in flight and a bad input shape, INVALID_ARGUMENT', async () => {
    const [first, duplicate] = await Promise.all([
      stream.execute({ batchId: 1_000_001, modelName: 'iris', version: 1, inputs: [fp32Rows('features', 32, IRIS_ROW)] }),
      stream.execute({ batchId: 1_000_001, modelName: 'iris', version: 1, inputs: [fp32Rows('features', 1, IRIS_ROW)] }),
    ]);
    expect([first.errorCode, duplicate.errorCode].sort()).toEqual([0, ErrorCode.INVALID_ARGUMENT]);
    const badShape = await stream.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 1, [1, 2, 3])] });
    expect(badShape.errorCode).toBe(ErrorCode.INVALID_ARGUMENT);
    await expectIrisAnswers();
  });

  it('answers a result over the per-result budget RESOURCE_EXHAUSTED, and one over the message limit in chunks, while a concurrent batch on the stream succeeds', async () => {
    expect((await stream.load(records.get('wide:1')!)).errorMessage).toBe('');
    const [tooLarge, chunked, small] = await Promise.all([
      stream.execute({ modelName: 'wide', version: 1, inputs: [fp32Rows('x', 16, [1, 1, 1, 1])] }),
      stream.execute({ batchId: 2_000_001, modelName: 'wide', version: 1, inputs: [fp32Rows('x', 8, [1, 1, 1, 1])] }),
      stream.execute({ modelName: 'wide', version: 1, inputs: [fp32Rows('x', 1, [1, 1, 1, 1])] }),
    ]);
    expect(tooLarge.errorCode).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(tooLarge.errorMessage).toMatch(new RegExp(`65536 bytes of outputs, over the per-result budget of ${RESULT_LIMIT} bytes`));
    expect(chunked.errorMessage).toBe('');
    expect(stream.chunksOf.get(2_000_001)).toBeGreaterThan(1);
    expect(fp32Values(chunked.outputs[0].data)).toEqual(new Array(8 * 1024).fill(2));
    expect(small.errorMessage).toBe('');
    expect(fp32Values(small.outputs[0].data)).toEqual(new Array(1024).fill(2));
    await expectIrisAnswers();
  });
});

describe('identical bytes', () => {
  it('compile once for two versions and stay loaded while one of them does', async () => {
    const before = await statsOf();
    expect((await stream.load(records.get('iris:2')!)).errorMessage).toBe('');
    const after = await statsOf();
    expect(after.residentModels).toBe(before.residentModels);
    expect(after.gpuBytesUsed).toBe(before.gpuBytesUsed);
    expect(after.pipelinesBuilt).toBe(before.pipelinesBuilt);
    await expectIrisAnswers(2);
    stream.unload('iris', 1);
    await expectIrisAnswers(2);
    expect((await stream.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 1, IRIS_ROW)] })).errorCode).toBe(ErrorCode.NOT_FOUND);
    expect((await stream.load(irisRecord)).errorMessage).toBe('');
    await expectIrisAnswers(1);
  });
});

const statsOf = () => Promise.resolve(executor.state.stats());

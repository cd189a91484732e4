/**
 * Several routers share one executor, each over its own Connect stream, as they do when a
 * deployment runs several router replicas over the executors DNS names: each stream has its
 * own batch slots, and one router unloading a version does not take it from another router
 * still serving it. Through real gRPC streams to a real executor.
 */
import { credentials } from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../services/domain/index.ts';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { startExecutor, type RunningExecutor } from '../../services/executor/service/index.ts';
import { ExecutorClient } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ExecutorStream, fp32Rows, fp32Values, registryRecord } from '../executor/service/executor-stream.ts';
import { startCluster, type Cluster } from './harness.ts';

const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];

let cluster: Cluster;
let executor: RunningExecutor;
let iris: TrainedIrisModel;
let irisRecord: ModelVersion;
const streams: ExecutorStream[] = [];

/** A stream as a router opens it, greeted. */
async function routerStream(): Promise<ExecutorStream> {
  const stream = new ExecutorStream(executor.address);
  streams.push(stream);
  await stream.hello;
  return stream;
}

/** Closes every stream opened so far, and gives the executor a moment to hear of it. */
async function closeStreams(): Promise<void> {
  for (const stream of streams.splice(0)) stream.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
}

/** Whether the executor holds iris:1, from its GetStats. */
function holdsIris(): Promise<boolean> {
  const client = new ExecutorClient(executor.address, credentials.createInsecure());
  return new Promise((resolve, reject) => client.getStats({}, (error, stats) => {
    client.close();
    if (error) reject(error);
    else resolve(stats.models.some((entry) => entry.model?.modelName === 'iris' && entry.model.version === 1));
  }));
}

async function expectIris(stream: ExecutorStream): Promise<void> {
  const result = await stream.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 2, IRIS_ROW)] });
  expect(result.errorMessage).toBe('');
  const expected = iris.predict([IRIS_ROW, IRIS_ROW]).flat();
  fp32Values(result.outputs[0].data).forEach((value, index) => expect(value).toBeCloseTo(expected[index], 4));
}

beforeAll(async () => {
  cluster = await startCluster();
  iris = trainIrisModel();
  await cluster.store('iris', iris.onnx);
  executor = await startExecutor({ registryAddress: cluster.registry.address, cacheDir: join(cluster.dataDir, 'shared-cache') });
  irisRecord = await registryRecord(cluster.registry.address, 'iris', 1);
}, 120_000);

afterAll(async () => {
  await closeStreams();
  await executor?.shutdown(1000);
  await cluster?.stop();
});

describe('an executor shared by several routers', () => {
  it('counts batch slots per stream: one stream over its slots is refused, another beside it is not', async () => {
    const [first, second] = [await routerStream(), await routerStream()];
    expect((await first.load(irisRecord)).errorMessage).toBe('');
    expect((await second.load(irisRecord)).errorMessage).toBe('');
    const { maxInflightBatches } = await first.hello;
    const big = () => ({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 32, IRIS_ROW)] });
    const [flooded, within] = await Promise.all([
      Promise.all(Array.from({ length: maxInflightBatches + 6 }, () => first.execute(big()))),
      Promise.all(Array.from({ length: maxInflightBatches }, () => second.execute(big()))),
    ]);
    expect(flooded.filter((result) => result.errorCode === ErrorCode.RESOURCE_EXHAUSTED).length).toBeGreaterThanOrEqual(1);
    expect(within.map((result) => result.errorCode)).toEqual(Array.from({ length: maxInflightBatches }, () => 0));
    await closeStreams();
  });

  it('keeps a version loaded while another router uses it, and frees it when the last one lets go', async () => {
    const [leaving, staying] = [await routerStream(), await routerStream()];
    expect((await leaving.load(irisRecord)).errorMessage).toBe('');
    expect((await staying.load(irisRecord)).errorMessage).toBe('');
    leaving.unload('iris', 1);
    await expectIris(staying);
    expect(await holdsIris()).toBe(true);
    // A router that only ran batches on it (it found it in its hello) counts as using it too.
    const reader = await routerStream();
    await expectIris(reader);
    staying.unload('iris', 1);
    await expectIris(reader);
    reader.unload('iris', 1);
    await waitFor(async () => !(await holdsIris()));
    const after = await reader.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 1, IRIS_ROW)] });
    expect(after.errorCode).toBe(ErrorCode.NOT_FOUND);
    await closeStreams();
  });

  it('drops a closed stream\'s use, so the remaining router\'s unload frees the version', async () => {
    const [closing, remaining] = [await routerStream(), await routerStream()];
    expect((await closing.load(irisRecord)).errorMessage).toBe('');
    expect((await remaining.load(irisRecord)).errorMessage).toBe('');
    closing.close();
    streams.splice(streams.indexOf(closing), 1);
    // The executor hears of the close a moment later; until then the unload would be kept for it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    remaining.unload('iris', 1);
    await waitFor(async () => !(await holdsIris()));
    await closeStreams();
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const started = Date.now(); !(await condition());) {
    if (Date.now() - started > timeoutMs) throw new Error(`not so within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

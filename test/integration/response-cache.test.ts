/** The optional response cache: a repeated request is answered without running the model again. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { DEFAULT_SERVING_CONFIG } from '../../services/router/index.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({
    config: { defaults: DEFAULT_SERVING_CONFIG, models: { iris: { responseCache: { maxBytes: 1 << 20, ttlMs: 60_000 } } } },
  });
  await cluster.store('iris', trainIrisModel().onnx);
  await cluster.waitUntilReady('iris');
});

afterAll(async () => {
  await cluster?.stop();
});

const batchesRun = async () => Object.values((await cluster.executorStats()).batchesBySize).reduce((sum, count) => sum + count, 0);
const ask = (flower: number[]) => cluster.infer({
  modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flower) }],
});

it('answers a repeated request from the cache, and a new one from the model', async () => {
  const flower = [5.1 + Math.random(), 3.5, 1.4, 0.2];
  const first = await ask(flower);
  const afterFirst = await batchesRun();
  const second = await ask(flower);
  expect(await batchesRun()).toBe(afterFirst);
  expect(second.outputs[0].contents!.fp32Contents).toEqual(first.outputs[0].contents!.fp32Contents);

  await ask([6.7, 3.0, 5.2, 2.3 + Math.random()]);
  expect(await batchesRun()).toBe(afterFirst + 1);
  const cache = (await cluster.router.catalog.resolve('iris', '')).cache!;
  expect([cache.hits, cache.misses]).toEqual([1, 2]);
});

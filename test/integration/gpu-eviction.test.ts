/**
 * An executor whose GPU budget holds one of two models: a request to the other loads it and
 * evicts the least recently used one, and the router loads an evicted model again when a request
 * needs it. Every request is answered, correctly, whichever model was resident when it came.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GraphBuilder } from '../../services/onnx/index.ts';
import type { StateEvent } from '../../services/executor/service/executor-state.ts';
import { DEFAULT_SERVING_CONFIG } from '../../services/router/index.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

const WIDTH = 512;
/**
 * Room for one model, not two: a model holds its WIDTH × WIDTH FP32 weights (1 MiB) twice on the
 * GPU (as given, and packed for the matrix multiply), plus 16 KiB for its warm-up batch of 4 rows.
 * The test checks that one model's bytes fit and two do not.
 */
const GPU_BUDGET_BYTES = 3 * 1024 * 1024;

let cluster: Cluster;
const events: StateEvent[] = [];

/** y = factor · x, through a WIDTH × WIDTH MatMul. */
function scaling(factor: number): Uint8Array {
  const weights = new Float32Array(WIDTH * WIDTH);
  for (let index = 0; index < WIDTH; index++) weights[index * WIDTH + index] = factor;
  return new GraphBuilder(`scale-${factor}`)
    .input('x', 'FP32', [-1, WIDTH])
    .initializer('w', 'FP32', [WIDTH, WIDTH], weights)
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'FP32', [-1, WIDTH])
    .toBytes();
}

beforeAll(async () => {
  cluster = await startCluster({
    executorOptions: { gpuBudgetBytes: GPU_BUDGET_BYTES },
    policy: { ...DEFAULT_SERVING_CONFIG, maxBatchSize: 4 },
  });
  cluster.executors[0].state.subscribe((event) => events.push(event));
  await cluster.store('double', scaling(2));
  await cluster.store('triple', scaling(3));
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

const x = Array.from({ length: WIDTH }, (_, index) => index + 1);

async function expectScaled(model: string, factor: number): Promise<void> {
  const response = await cluster.infer({
    modelName: model, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], parameters: {}, contents: fp32Contents(x) }],
  });
  expect(response.outputs[0].contents!.fp32Contents).toEqual(x.map((value) => value * factor));
}

const evicted = () => events.filter((event) => event.kind === 'unloaded').map((event) => event.kind === 'unloaded' && event.modelName);

it('answers every request while two models take turns in a GPU budget that holds one', async () => {
  await expectScaled('double', 2);
  expect(evicted()).toEqual([]);
  const oneModelBytes = (await cluster.executorStats()).gpuBytesUsed;
  expect(oneModelBytes).toBeLessThanOrEqual(GPU_BUDGET_BYTES);
  expect(2 * oneModelBytes).toBeGreaterThan(GPU_BUDGET_BYTES);

  // triple does not fit beside double: loading it evicts double, the least recently used.
  await expectScaled('triple', 3);
  expect(evicted()).toEqual(['double']);

  // The router loads double again on demand (after its eviction backoff), which evicts triple.
  await expectScaled('double', 2);
  expect(evicted()).toEqual(['double', 'triple']);
  await expectScaled('triple', 3);
  expect(evicted()).toEqual(['double', 'triple', 'double']);

  const stats = await cluster.executorStats();
  expect(stats.residentModels).toBe(1);
  expect(stats.gpuBytesUsed).toBe(oneModelBytes);
  expect(stats.requestsFailed).toBe(0);
}, 120_000);

/**
 * How the executor's state holds its compiled models, without a GPU: the compiler is replaced
 * by fakes whose builds the test finishes when it wants, so loads, unloads, batches and
 * evictions can be interleaved exactly.
 */
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import type { ModelVersion } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import type { CompiledModel } from '../../../services/executor/runtime/index.ts';
import type { GpuContext } from '../../../services/executor/gpu/index.ts';
import type { ArtifactCache } from '../../../services/executor/service/artifact-cache.ts';
import type { Logger } from '../../../services/telemetry/logger.ts';

interface FakeModel extends CompiledModel {
  disposed: boolean;
  runs: number[];
}

const compiles: Array<{ resolve: (model: FakeModel) => void; model: FakeModel }> = [];

function fakeModel(): FakeModel {
  const model: FakeModel = {
    signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }] },
    precision: 'fp32', weightBytes: 100, fused: [], stepCount: 1, stepLabels: ['Relu'], disposed: false, runs: [],
    async run(inputs) {
      if (model.disposed) throw new NexusError(ErrorCode.FAILED_PRECONDITION, 'model is disposed');
      const x = inputs.get('x')!;
      model.runs.push(x.shape[0]);
      return { outputs: new Map([['y', x]]), gpuNs: undefined, peakBytes: 10 * x.shape[0] };
    },
    activationBytesFor: (shapes) => 10 * shapes.get('x')![0],
    dispose() {
      model.disposed = true;
    },
  };
  return model;
}

vi.mock('../../../services/executor/runtime/index.ts', () => ({
  PLAN_CACHE_CAPACITY: 8,
  compileOnnxModel: () => new Promise<FakeModel>((resolve) => compiles.push({ resolve, model: fakeModel() })),
}));

const { ExecutorState } = await import('../../../services/executor/service/executor-state.ts');

const SHA = 'b'.repeat(64);
const record = (version: number, sha256 = SHA, maxBatchSize = 2): ModelVersion => ({
  modelName: 'm', version, sha256, sizeBytes: 10, format: 'onnx',
  signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }] },
  lineage: undefined, tags: {}, creator: 'ada', createdAtUnixMs: 1, batching: { maxBatchSize, maxQueueDelayUs: 0 }, files: [],
});

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

function stateWith(records: ModelVersion[], gpuBudgetBytes = 1_000_000) {
  const artifacts = { fetch: async () => new Uint8Array(10) } as unknown as ArtifactCache;
  const gpu = { hasF16: false, device: {} } as unknown as GpuContext;
  return new ExecutorState(gpu, artifacts, quiet, {
    versions: async (_name, version) => records.find((candidate) => candidate.version === version)!,
    gpuBudgetBytes, warmUpBudgetBytes: 1_000_000,
  });
}

/** Lets queued promise callbacks run until the state has asked for `count` compiles. */
async function compilesStarted(count: number): Promise<void> {
  for (let turn = 0; turn < 100 && compiles.length < count; turn += 1) await new Promise((resolve) => setImmediate(resolve));
  expect(compiles.length).toBe(count);
}

const batch = (version: number, rows = 1) => ({
  batchId: 1, modelName: 'm', version, deadlineUnixMs: 0, traceContext: {},
  inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 1], data: new Uint8Array(4 * rows) }],
});

describe('holds on a compiled model', () => {
  it('a version loaded, unloaded and loaded again during one build keeps its model', async () => {
    compiles.length = 0;
    const state = stateWith([record(1)]);
    const first = state.load({ requestId: 1, version: record(1), traceContext: {}, maxBatchSize: 0 });
    first.catch(() => {});
    await compilesStarted(1);
    state.unload('m', 1);
    const second = state.load({ requestId: 2, version: record(1), traceContext: {}, maxBatchSize: 0 });
    compiles[0].resolve(compiles[0].model);
    await Promise.all([first, second]);
    expect(compiles[0].model.disposed).toBe(false);
    const result = await state.execute(batch(1));
    expect(result.outputs[0].shape).toEqual([1, 1]);
    state.unload('m', 1);
    expect(compiles[0].model.disposed).toBe(true);
  });

  it('a load that fails after taking its hold gives the hold back', async () => {
    compiles.length = 0;
    const state = stateWith([record(1)]);
    const loading = state.load({ requestId: 1, version: record(1), traceContext: {}, maxBatchSize: 0 });
    await compilesStarted(1);
    state.deviceLost('test');
    compiles[0].resolve(compiles[0].model);
    await expect(loading).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(compiles[0].model.disposed).toBe(true);
    expect(state.stats().gpuBytesUsed).toBe(0);
  });
});

/** The state's resident models, to make room exactly where a concurrent load would. */
const residentsOf = (state: InstanceType<typeof ExecutorState>) =>
  (state as unknown as { residents: { makeRoom(label: string, bytes: number): void } }).residents;

describe('batches and evictions', () => {
  it('a batch holds its model from the moment it is accepted, so a load making room cannot evict it', async () => {
    compiles.length = 0;
    const state = stateWith([record(1)], 1000);
    const loading = state.load({ requestId: 1, version: record(1), traceContext: {}, maxBatchSize: 0 });
    await compilesStarted(1);
    compiles[0].resolve(compiles[0].model);
    await loading;
    const running = state.execute(batch(1));
    expect(() => residentsOf(state).makeRoom('model m:2', 950)).toThrow(NexusError);
    await expect(running).resolves.toMatchObject({ batchSize: 1 });
    expect(compiles[0].model.disposed).toBe(false);
  });

  it('a batch waiting for a load whose model is evicted meanwhile is NOT_FOUND', async () => {
    compiles.length = 0;
    const state = stateWith([record(1)], 1000);
    const loading = state.load({ requestId: 1, version: record(1), traceContext: {}, maxBatchSize: 0 });
    // Runs once the load is ready, before the waiting batch goes on.
    const evicted = loading.then(() => residentsOf(state).makeRoom('model m:2', 950));
    const running = state.execute(batch(1));
    await compilesStarted(1);
    compiles[0].resolve(compiles[0].model);
    await evicted;
    await expect(running).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    expect(compiles[0].model.runs).toEqual([2, 1]); // the warm-up only
  });
});

describe('the GPU budget while loading', () => {
  it('a load in progress reserves its bytes, so two concurrent loads that fit only one at a time cannot both pass', async () => {
    compiles.length = 0;
    // Each needs 100 bytes of weights + 20 of activations (batch 2); the budget holds one.
    const state = stateWith([record(1), record(2, 'c'.repeat(64))], 200);
    const loads = [1, 2].map((version) => state.load({ requestId: version, version: record(version, version === 1 ? SHA : 'c'.repeat(64)), traceContext: {}, maxBatchSize: 0 }));
    await compilesStarted(2);
    expect(state.stats().gpuBytesUsed).toBe(20); // the artifacts' sizes stand in
    for (const { resolve, model } of compiles) resolve(model);
    const settled = await Promise.allSettled(loads);
    expect(settled.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected']);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.RESOURCE_EXHAUSTED });
    expect(compiles[1].model.runs).toEqual([]); // refused before its warm-up allocated anything
    expect(compiles[0].model.disposed).toBe(false);
    expect(state.stats().gpuBytesUsed).toBe(120);
  });

  it('a version sharing a model that warms it to a larger batch counts the larger activations', async () => {
    compiles.length = 0;
    const state = stateWith([record(1, SHA, 2), record(2, SHA, 4)], 1000);
    const first = state.load({ requestId: 1, version: record(1, SHA, 2), traceContext: {}, maxBatchSize: 0 });
    await compilesStarted(1);
    compiles[0].resolve(compiles[0].model);
    await first;
    expect(state.stats().gpuBytesUsed).toBe(120);
    await state.load({ requestId: 2, version: record(2, SHA, 4), traceContext: {}, maxBatchSize: 0 });
    expect(compiles[0].model.runs).toEqual([2, 1, 4, 3]);
    expect(state.stats().gpuBytesUsed).toBe(140);
  });
});

describe('the batch sizes a load warms up', () => {
  it('warms up to the max_batch_size the router asks for, when the record stores no batching', async () => {
    compiles.length = 0;
    const unbatched = { ...record(1), batching: undefined };
    const state = stateWith([unbatched]);
    const loading = state.load({ requestId: 1, version: unbatched, traceContext: {}, maxBatchSize: 40 });
    await compilesStarted(1);
    compiles[0].resolve(compiles[0].model);
    await loading;
    expect(compiles[0].model.runs).toEqual(Array.from({ length: 40 }, (_, index) => 40 - index));
  });

  it('warms up to the record\'s max_batch_size when the router asks for none', async () => {
    compiles.length = 0;
    const state = stateWith([record(1, SHA, 3)]);
    const loading = state.load({ requestId: 1, version: record(1, SHA, 3), traceContext: {}, maxBatchSize: 0 });
    await compilesStarted(1);
    compiles[0].resolve(compiles[0].model);
    await loading;
    expect(compiles[0].model.runs).toEqual([3, 2, 1]);
  });

  it('refuses a max_batch_size over the executor\'s limit as FAILED_PRECONDITION naming both', async () => {
    compiles.length = 0;
    const state = stateWith([record(1)]);
    await expect(state.load({ requestId: 1, version: record(1), traceContext: {}, maxBatchSize: 1025 }))
      .rejects.toThrow(/max_batch_size is 1025; the executor warms up to at most 1024/);
    expect(compiles).toHaveLength(0);
  });
});

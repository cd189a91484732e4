import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BatchResult, Tensor } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { MAX_REQUEUES, ModelBatcher } from '../../../services/router/batching/model-batcher.ts';
import type { ValidatedRequest } from '../../../services/router/admission/request-validation.ts';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

function validated(rows: number[][]): ValidatedRequest {
  return {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 2], data: f32(rows.flat()) }],
    rows: rows.length, shapeKey: 'x:2', outputNames: ['y'], rawOutput: false, inputBytes: 0, outputBytes: 0,
  };
}

/** An executor that doubles its input and records each batch it ran. */
function doublingRunner(batches: Tensor[][]) {
  return async (inputs: Tensor[]): Promise<BatchResult> => {
    batches.push(inputs);
    const values = new Float32Array(new Uint8Array(inputs[0].data).buffer).map((value) => value * 2);
    return {
      batchId: 1, errorCode: 0, errorMessage: '', batchSize: inputs[0].shape[0], gpuNs: 0, executeNs: 0,
      outputs: [{ name: 'y', datatype: 'FP32', shape: inputs[0].shape, data: new Uint8Array(values.buffer) }],
    };
  };
}

const valuesOf = (tensor: Tensor | undefined) => Array.from(new Float32Array(new Uint8Array(tensor!.data).buffer));

describe('ModelBatcher', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('holds requests for the max queue delay, runs them as one batch and splits the results', async () => {
    const batches: Tensor[][] = [];
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 5, maxQueueSize: 10, waitWhenIdle: true },
      run: doublingRunner(batches), hasCapacity: () => true,
    });
    const first = batcher.submit(validated([[1, 2]]));
    const second = batcher.submit(validated([[3, 4], [5, 6]]));
    await vi.advanceTimersByTimeAsync(4);
    expect(batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toHaveLength(1);
    expect(batches[0][0].shape).toEqual([3, 2]);
    expect(valuesOf((await first).outputs.get('y'))).toEqual([2, 4]);
    const secondOutputs = (await second).outputs;
    expect(secondOutputs.get('y')!.shape).toEqual([2, 2]);
    expect(valuesOf(secondOutputs.get('y'))).toEqual([6, 8, 10, 12]);
  });

  it('sends a full batch without waiting', async () => {
    const batches: Tensor[][] = [];
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 2, maxQueueDelayMs: 1000, maxQueueSize: 10, waitWhenIdle: true },
      run: doublingRunner(batches), hasCapacity: () => true,
    });
    const results = [batcher.submit(validated([[1, 1]])), batcher.submit(validated([[2, 2]]))];
    await vi.advanceTimersByTimeAsync(0);
    expect(batches).toHaveLength(1);
    await Promise.all(results);
  });

  it('sends a request that finds nothing of its model running at once, whatever the delay', async () => {
    const batches: Tensor[][] = [];
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 1000, maxQueueSize: 10 },
      run: doublingRunner(batches), hasCapacity: () => true,
    });
    const answer = batcher.submit(validated([[1, 2]]));
    expect(batches).toHaveLength(1);
    expect(valuesOf((await answer).outputs.get('y'))).toEqual([2, 4]);
  });

  it('batches the requests that arrive while a batch of the model runs, and sends them when it returns', async () => {
    const batches: Tensor[][] = [];
    const doubling = doublingRunner(batches);
    let finishFirst: (() => void) | undefined;
    let pump: (() => void) | undefined;
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 1000, maxQueueSize: 10 },
      run: async (inputs) => {
        if (!finishFirst) await new Promise<void>((resolve) => { finishFirst = resolve; });
        return doubling(inputs);
      },
      hasCapacity: () => true,
    });
    pump = () => batcher.pump();
    const first = batcher.submit(validated([[1, 1]]));
    const later = [batcher.submit(validated([[2, 2]])), batcher.submit(validated([[3, 3]]))];
    await vi.advanceTimersByTimeAsync(10);
    // The first went alone at once; the other two wait for it rather than for the delay.
    expect(batches).toHaveLength(0);
    finishFirst!();
    await first;
    pump(); // what the executor pool does when a slot frees
    await Promise.all(later);
    expect(batches.map((batch) => batch[0].shape[0])).toEqual([1, 2]);
  });

  it('answers RESOURCE_EXHAUSTED at once when the queue is full', async () => {
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 1000, maxQueueSize: 1 },
      run: doublingRunner([]), hasCapacity: () => false,
    });
    void batcher.submit(validated([[1, 1]])).catch(() => {});
    await expect(batcher.submit(validated([[2, 2]]))).rejects.toMatchObject({ code: ErrorCode.RESOURCE_EXHAUSTED });
    batcher.close(new NexusError(ErrorCode.UNAVAILABLE, 'test over'));
  });

  it('answers DEADLINE_EXCEEDED for a request whose deadline passes in the queue, and never runs it', async () => {
    const batches: Tensor[][] = [];
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 1000, maxQueueSize: 10 },
      run: doublingRunner(batches), hasCapacity: () => false, // no executor slot: it stays queued
    });
    const expiring = batcher.submit(validated([[1, 1]]), { deadlineMs: Date.now() + 20 });
    const assertion = expect(expiring).rejects.toMatchObject({ code: ErrorCode.DEADLINE_EXCEEDED });
    await vi.advanceTimersByTimeAsync(20);
    await assertion;
    expect(batches).toHaveLength(0);
  });

  it('drops a cancelled request from the queue with CANCELLED', async () => {
    const batches: Tensor[][] = [];
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 10, maxQueueSize: 10, waitWhenIdle: true },
      run: doublingRunner(batches), hasCapacity: () => true,
    });
    const controller = new AbortController();
    const cancelled = batcher.submit(validated([[1, 1]]), { signal: controller.signal });
    const kept = batcher.submit(validated([[2, 2]]));
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ code: ErrorCode.CANCELLED });
    await vi.advanceTimersByTimeAsync(10);
    expect(batches).toHaveLength(1);
    expect(batches[0][0].shape).toEqual([1, 2]);
    expect(valuesOf((await kept).outputs.get('y'))).toEqual([4, 4]);
  });

  it('fails every request of a batch whose execution fails, with the executor\'s code', async () => {
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 10 },
      run: async () => { throw new NexusError(ErrorCode.UNAVAILABLE, 'executor lost'); },
      hasCapacity: () => true,
    });
    await expect(batcher.submit(validated([[1, 1]]))).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
  });

  it('queues a batch again when its executor is lost, and answers once it runs elsewhere', async () => {
    let calls = 0;
    const batches: Tensor[][] = [];
    const succeed = doublingRunner(batches);
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 10 },
      run: async (inputs) => {
        calls += 1;
        if (calls === 1) throw new NexusError(ErrorCode.UNAVAILABLE, 'executor 1 disconnected');
        return succeed(inputs);
      },
      hasCapacity: () => true,
    });
    const { outputs } = await batcher.submit(validated([[1, 2]]));
    expect(calls).toBe(2);
    expect(valuesOf(outputs.get('y'))).toEqual([2, 4]);
  });

  it('does not queue again a request cancelled while its lost batch was running', async () => {
    const batches: Tensor[][] = [];
    const succeed = doublingRunner(batches);
    const controller = new AbortController();
    let calls = 0;
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 10 },
      run: async (inputs) => {
        calls += 1;
        if (calls > 1) return succeed(inputs);
        // The client gives up while the batch is on the executor, which is then lost.
        controller.abort();
        throw new NexusError(ErrorCode.UNAVAILABLE, 'executor 1 disconnected');
      },
      hasCapacity: () => true,
    });
    const cancelled = batcher.submit(validated([[1, 1]]), { signal: controller.signal });
    const kept = batcher.submit(validated([[2, 2]]));
    await expect(cancelled).rejects.toMatchObject({ code: ErrorCode.CANCELLED });
    expect(valuesOf((await kept).outputs.get('y'))).toEqual([4, 4]);
    expect(batches.map((inputs) => inputs[0].shape)).toEqual([[1, 2]]);
  });

  it('gives up with UNAVAILABLE after MAX_REQUEUES lost executors', async () => {
    let calls = 0;
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 10 },
      run: async () => {
        calls += 1;
        throw new NexusError(ErrorCode.UNAVAILABLE, 'every executor is gone');
      },
      hasCapacity: () => true,
    });
    await expect(batcher.submit(validated([[1, 2]]))).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(calls).toBe(MAX_REQUEUES + 1);
  });
});

describe('ModelBatcher in a long-running router', () => {
  /** Sizes of every array, map and set the batcher holds. */
  const heldCollections = (batcher: ModelBatcher) => Object.entries(batcher)
    .filter(([, value]) => Array.isArray(value) || value instanceof Map || value instanceof Set)
    .map(([name, value]) => [name, Array.isArray(value) ? value.length : (value as Map<unknown, unknown>).size]);

  it('keeps nothing per batch once the batch is answered', async () => {
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 10 },
      run: doublingRunner([]), hasCapacity: () => true,
    });
    await batcher.submit(validated([[1, 1]]));
    const afterOne = heldCollections(batcher);
    for (let index = 0; index < 500; index++) await batcher.submit(validated([[index, index]]));
    expect(heldCollections(batcher)).toEqual(afterOne);
    expect(batcher.queue.depth).toBe(0);
    expect(batcher.inflightBatches).toBe(0);
  });
});

/**
 * One executor link over a scripted stream: a hung executor frees its slot after the batch
 * timeout, and a chunked result is put together (or refused) before its batch is answered.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import type { ExecuteBatch, ExecutorMessage, RouterMessage } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, modelKey } from '../../../services/domain/index.ts';
import { MAX_REQUEUES, ModelBatcher } from '../../../services/router/batching/index.ts';
import { ExecutorLink, type ExecutorDialer, type ExecutorStream } from '../../../services/router/fleet/index.ts';
import { doubled } from '../fakes.ts';

/** An executor that says hello and then answers only what the test sends. */
class ScriptedStream extends EventEmitter implements ExecutorStream {
  readonly written: RouterMessage[] = [];
  write(message: RouterMessage): boolean {
    this.written.push(message);
    return true;
  }
  end(): void {}
  cancel(): void {}
  say(message: Partial<ExecutorMessage>): void {
    this.emit('data', message as ExecutorMessage);
  }
}

function linkWith(batchTimeoutMs: number) {
  const stream = new ScriptedStream();
  const dialer: ExecutorDialer = { connect: () => stream, close: () => {} };
  const link = new ExecutorLink({ address: 'executor:1', dialer, logger: pino({ level: 'silent' }), batchTimeoutMs });
  link.start();
  stream.say({ hello: { executorId: 'e1', device: 'fake', maxInflightBatches: 1, loadedModels: [{ modelName: 'iris', version: 1 }] as never } });
  return { link, stream };
}

const batch = (): Omit<ExecuteBatch, 'batchId'> => ({
  modelName: 'iris', version: 1, deadlineUnixMs: 0, traceContext: {},
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Uint8Array(new Float32Array([1, 2]).buffer) }],
});

describe('ExecutorLink', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('fails a batch a hung executor never answers with UNAVAILABLE after the timeout, and frees its slot', async () => {
    const { link } = linkWith(1_000);
    let freed = 0;
    link.onCapacity = () => { freed += 1; };
    const pending = link.execute(batch());
    const outcome = pending.then(() => 'answered', (error: { code: number }) => error.code);
    expect(link.freeSlots).toBe(0);
    await vi.advanceTimersByTimeAsync(999);
    expect(link.inflight).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toBe(ErrorCode.UNAVAILABLE);
    expect(link.inflight).toBe(0);
    expect(link.freeSlots).toBe(1);
    expect(freed).toBe(1);
  });

  it('forgets a model the executor unloads on its own and tells the pool, which loads it again when needed', () => {
    const { link, stream } = linkWith(1_000);
    const told: string[] = [];
    link.onModelUnloaded = (key) => { told.push(key); };
    expect(link.loaded.has(modelKey('iris', 1))).toBe(true);
    stream.say({ modelUnloaded: { modelName: 'iris', version: 1, reason: 'evicted to fit another model in the GPU memory budget' } });
    expect(link.loaded.has(modelKey('iris', 1))).toBe(false);
    expect(told).toEqual(['iris:1']);
  });

  it('waits past the timeout for a batch whose deadline is later', async () => {
    const { link } = linkWith(1_000);
    const outcome = link.execute({ ...batch(), deadlineUnixMs: Date.now() + 5_000 }).then(() => 'answered', (error: { code: number }) => error.code);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(link.inflight).toBe(1);
    await vi.advanceTimersByTimeAsync(4_000);
    expect(await outcome).toBe(ErrorCode.UNAVAILABLE);
    expect(link.inflight).toBe(0);
  });

  it('ignores an answer that comes after the timeout', async () => {
    const { link, stream } = linkWith(100);
    const pending = link.execute(batch()).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(100);
    await pending;
    const batchId = stream.written.at(-1)!.executeBatch!.batchId;
    stream.say({ batchResult: { ...doubled(batch()), batchId } });
    expect(link.inflight).toBe(0);
  });

  it('answers a batch answered in time, and its timer no longer fires', async () => {
    const { link, stream } = linkWith(100);
    const pending = link.execute(batch());
    const batchId = stream.written.at(-1)!.executeBatch!.batchId;
    stream.say({ batchResult: { ...doubled(batch()), batchId } });
    expect((await pending).outputs[0].shape).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(200);
    expect(link.inflight).toBe(0);
    expect(link.freeSlots).toBe(1);
  });

  it('puts a chunked result together before answering, while a small batch on the stream is answered meanwhile', async () => {
    const { link, stream } = linkWith(1_000);
    const large = link.execute(batch());
    const largeId = stream.written.at(-1)!.executeBatch!.batchId;
    const small = link.execute(batch());
    const smallId = stream.written.at(-1)!.executeBatch!.batchId;
    const values = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
    const part = (index: number, from: number, to: number) => ({ batchResult: {
      ...doubled(batch()), batchId: largeId, outputs: [],
      chunk: { index, count: 2, tensors: [{ outputIndex: 0, name: 'y', datatype: 'FP32', shape: [2, 2], totalBytes: 16, byteOffset: from, data: values.slice(from, to) }] },
    } });
    stream.say(part(1, 8, 16));
    await vi.advanceTimersByTimeAsync(600);
    stream.say({ batchResult: { ...doubled(batch()), batchId: smallId } });
    expect((await small).outputs[0].shape).toEqual([1, 2]);
    expect(link.inflight).toBe(1);
    stream.say(part(0, 0, 8));
    const whole = await large;
    expect([...new Float32Array(whole.outputs[0].data.slice().buffer)]).toEqual([1, 2, 3, 4]);
    expect(link.inflight).toBe(0);
  });

  it('fails a batch whose chunks do not fit together DATA_LOSS, ignores its later chunks, and keeps serving', async () => {
    const { link, stream } = linkWith(1_000);
    const pending = link.execute(batch()).catch((error: { code: number; message: string }) => error);
    const batchId = stream.written.at(-1)!.executeBatch!.batchId;
    const part = (index: number, shape: number[]) => ({ batchResult: {
      ...doubled(batch()), batchId, outputs: [],
      chunk: { index, count: 3, tensors: [{ outputIndex: 0, name: 'y', datatype: 'FP32', shape, totalBytes: 16, byteOffset: 8 * index, data: new Uint8Array(8) }] },
    } });
    stream.say(part(0, [2, 2]));
    stream.say(part(1, [4]));
    expect(await pending).toMatchObject({ code: ErrorCode.DATA_LOSS, message: expect.stringMatching(/declares FP32 \[4\]/) });
    stream.say(part(2, [2, 2]));
    expect(link.inflight).toBe(0);
    const next = link.execute(batch());
    stream.say({ batchResult: { ...doubled(batch()), batchId: stream.written.at(-1)!.executeBatch!.batchId } });
    expect((await next).outputs[0].shape).toEqual([1, 2]);
  });

  it('keeps the batch timeout running while chunks arrive, and fails a batch whose stream is lost mid-chunks UNAVAILABLE', async () => {
    const { link, stream } = linkWith(1_000);
    const chunked = (batchId: number) => ({ batchResult: {
      ...doubled(batch()), batchId, outputs: [],
      chunk: { index: 0, count: 2, tensors: [{ outputIndex: 0, name: 'y', datatype: 'FP32', shape: [2], totalBytes: 8, byteOffset: 0, data: new Uint8Array(4) }] },
    } });
    const slow = link.execute(batch()).catch((error: { code: number; message: string }) => error);
    stream.say(chunked(stream.written.at(-1)!.executeBatch!.batchId));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await slow).toMatchObject({ code: ErrorCode.UNAVAILABLE, message: expect.stringMatching(/did not answer batch \d+ within 1000 ms/) });
    const lost = link.execute(batch()).catch((error: { code: number; message: string }) => error);
    stream.say(chunked(stream.written.at(-1)!.executeBatch!.batchId));
    stream.emit('close');
    expect(await lost).toMatchObject({ code: ErrorCode.UNAVAILABLE, message: expect.stringMatching(/disconnected/) });
  });

  it('releases a request whose batch hangs: it is retried, then fails, instead of waiting forever', async () => {
    const { link, stream } = linkWith(1_000);
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 10 },
      hasCapacity: () => link.freeSlots > 0,
      run: (inputs) => link.execute({ ...batch(), inputs }),
    });
    link.onCapacity = () => batcher.pump();
    const outcome = batcher.submit({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: batch().inputs[0].data }], rows: 1, shapeKey: 'x:2', outputNames: ['y'], rawOutput: false, inputBytes: 0, outputBytes: 0 })
      .then(() => 'answered', (error: { code: number }) => error.code);
    await vi.advanceTimersByTimeAsync(1_000 * (MAX_REQUEUES + 1));
    expect(await outcome).toBe(ErrorCode.UNAVAILABLE);
    expect(stream.written.filter((message) => message.executeBatch)).toHaveLength(MAX_REQUEUES + 1);
    expect(batcher.idle).toBe(true);
  });
});

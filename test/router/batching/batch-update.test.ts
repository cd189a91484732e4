/** The update step of the batcher loop, read directly: answered, failed or queued again. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import { MAX_REQUEUES, updateAfterBatch } from '../../../services/router/batching/batch-update.ts';

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);
const member = (rows: number, requeues = 0) => ({ rows, requeues });

describe('updateAfterBatch', () => {
  it('gives each request its rows of every output', () => {
    const requests = [member(1), member(2)];
    const update = updateAfterBatch(requests, {
      kind: 'answered',
      result: {
        batchId: 1, errorCode: 0, errorMessage: '', batchSize: 3, gpuNs: 0, executeNs: 0,
        outputs: [{ name: 'y', datatype: 'FP32', shape: [3, 1], data: f32([1, 2, 3]) }],
      },
    }, true);
    expect(update.failed).toEqual([]);
    expect(update.answered.map(({ request, outputs }) => [request, outputs.get('y')!.shape])).toEqual([[requests[0], [1, 1]], [requests[1], [2, 1]]]);
  });

  it('fails every request as INTERNAL when the outputs cannot be split', () => {
    const update = updateAfterBatch([member(1), member(1)], {
      kind: 'answered',
      result: {
        batchId: 1, errorCode: 0, errorMessage: '', batchSize: 2, gpuNs: 0, executeNs: 0,
        outputs: [{ name: 'y', datatype: 'FP32', shape: [3, 1], data: f32([1, 2, 3]) }],
      },
    }, true);
    expect(update.answered).toEqual([]);
    expect(update.failed.map(({ error }) => error.code)).toEqual([ErrorCode.INTERNAL, ErrorCode.INTERNAL]);
  });

  it('fails every request as DATA_LOSS when an output holds fewer bytes than its shape, even a single request', () => {
    for (const requests of [[member(1), member(2)], [member(3)]]) {
      const update = updateAfterBatch(requests, {
        kind: 'answered',
        result: {
          batchId: 1, errorCode: 0, errorMessage: '', batchSize: 3, gpuNs: 0, executeNs: 0,
          outputs: [{ name: 'y', datatype: 'FP32', shape: [3, 10], data: f32([1, 2, 3]) }],
        },
      }, true);
      expect(update.answered).toEqual([]);
      expect(update.failed.map(({ error }) => error.code)).toEqual(requests.map(() => ErrorCode.DATA_LOSS));
      expect(update.failed[0].error.message).toContain("output 'y' as FP32 [3,10] with 12 bytes; that shape holds 120 bytes");
    }
  });

  it('queues a lost batch again, except requests out of retries, and none while closing', () => {
    const lost = { kind: 'failed' as const, error: new NexusError(ErrorCode.UNAVAILABLE, 'executor lost') };
    const fresh = member(1);
    const spent = member(1, MAX_REQUEUES);
    const update = updateAfterBatch([fresh, spent], lost, true);
    expect(update.requeued).toEqual([fresh]);
    expect(update.failed.map(({ request }) => request)).toEqual([spent]);
    expect(updateAfterBatch([fresh], lost, false).requeued).toEqual([]);
  });

  it('fails the batch without retry on any other code', () => {
    const update = updateAfterBatch([member(1)], { kind: 'failed', error: new NexusError(ErrorCode.INVALID_ARGUMENT, 'bad input') }, true);
    expect(update.requeued).toEqual([]);
    expect(update.failed[0].error.code).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

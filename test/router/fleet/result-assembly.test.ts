/** Putting a chunked batch result back together: any order, and every inconsistency refused. */
import { describe, expect, it } from 'vitest';
import type { BatchResult, TensorChunk } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import { ResultAssembly } from '../../../services/router/fleet/result-assembly.ts';

const BYTES = Uint8Array.from({ length: 10 }, (_, index) => index + 1);

/** A slice of output 0 ('y', UINT8 [10]) holding BYTES[from, to). */
const slice = (from: number, to: number, change: Partial<TensorChunk> = {}): TensorChunk => ({
  outputIndex: 0, name: 'y', datatype: 'UINT8', shape: [10], totalBytes: 10, byteOffset: from, data: BYTES.slice(from, to), ...change,
});

const chunk = (index: number, count: number, tensors: TensorChunk[], change: Partial<BatchResult> = {}): BatchResult => ({
  batchId: 7, outputs: [], errorCode: 0, errorMessage: '', batchSize: 2, gpuNs: 5, executeNs: 9, chunk: { index, count, tensors }, ...change,
});

/** The three chunks of BATCH: output 0 in two slices, and an empty output 1. */
const threeChunks = () => [
  chunk(0, 3, [slice(0, 4)]),
  chunk(1, 3, [slice(4, 10)]),
  chunk(2, 3, [{ outputIndex: 1, name: 'empty', datatype: 'FP32', shape: [2, 0], totalBytes: 0, byteOffset: 0, data: new Uint8Array() }]),
];

/** The error `run` throws, as code and message. */
function refusal(run: () => unknown): { code: number; message: string } {
  try {
    run();
  } catch (error) {
    return { code: (error as NexusError).code, message: (error as NexusError).message };
  }
  throw new Error('expected a refusal');
}

describe('ResultAssembly', () => {
  it.each([[[0, 1, 2]], [[2, 0, 1]], [[1, 2, 0]]])('puts the chunks together in the order %j', (order) => {
    const assembly = new ResultAssembly(7);
    const chunks = threeChunks();
    const answers = order.map((index) => assembly.add(chunks[index]));
    expect(answers.slice(0, -1)).toEqual([undefined, undefined]);
    const whole = answers.at(-1)!;
    expect(whole.chunk).toBeUndefined();
    expect({ batchId: whole.batchId, batchSize: whole.batchSize, gpuNs: whole.gpuNs, executeNs: whole.executeNs }).toEqual({ batchId: 7, batchSize: 2, gpuNs: 5, executeNs: 9 });
    expect(whole.outputs.map((tensor) => [tensor.name, tensor.datatype, tensor.shape, [...tensor.data]])).toEqual([
      ['y', 'UINT8', [10], [...BYTES]], ['empty', 'FP32', [2, 0], []],
    ]);
  });

  it('refuses a chunk that comes twice, DATA_LOSS', () => {
    const assembly = new ResultAssembly(7);
    assembly.add(threeChunks()[0]);
    expect(refusal(() => assembly.add(threeChunks()[0]))).toEqual({ code: ErrorCode.DATA_LOSS, message: expect.stringMatching(/batch 7, chunk 0 of 3: came twice/) });
  });

  it('answers nothing while a chunk is missing, and refuses chunks whose bytes leave a gap', () => {
    const assembly = new ResultAssembly(7);
    const [first, , last] = threeChunks();
    expect(assembly.add(first)).toBeUndefined();
    expect(assembly.add(last)).toBeUndefined();
    const gap = refusal(() => assembly.add(chunk(1, 3, [slice(5, 10)])));
    expect(gap).toEqual({ code: ErrorCode.DATA_LOSS, message: expect.stringMatching(/output 'y': its chunks carry bytes 0 to 4 of 10/) });
  });

  it('refuses bytes sent twice, outside the output, or an output missing among them', () => {
    const twice = new ResultAssembly(7);
    twice.add(chunk(0, 2, [slice(0, 6)]));
    expect(refusal(() => twice.add(chunk(1, 2, [slice(4, 10)]))).message).toMatch(/output 'y': bytes from 4 came twice/);
    expect(refusal(() => new ResultAssembly(7).add(chunk(0, 2, [slice(8, 10, { byteOffset: 9 })]))).message)
      .toMatch(/bytes 9 to 11 are outside its 10 bytes/);
    const holes = new ResultAssembly(7);
    expect(refusal(() => holes.add(chunk(0, 1, [slice(0, 10, { outputIndex: 1 })]))).message).toMatch(/outputs up to 1 but none numbered 0/);
  });

  it.each([
    ['shape', { shape: [5, 2] }, /declares UINT8 \[5,2\] of 10 bytes, earlier chunks y UINT8 \[10\] of 10 bytes/],
    ['datatype', { datatype: 'INT8' }, /declares INT8 \[10\]/],
    ['size', { totalBytes: 12 }, /of 12 bytes, earlier chunks y UINT8 \[10\] of 10 bytes/],
  ])('refuses a chunk of an output whose %s differs from the earlier chunks, DATA_LOSS', (_what, change, message) => {
    const assembly = new ResultAssembly(7);
    assembly.add(chunk(0, 2, [slice(0, 4)]));
    expect(refusal(() => assembly.add(chunk(1, 2, [slice(4, 10, change)])))).toEqual({ code: ErrorCode.DATA_LOSS, message: expect.stringMatching(message) });
  });

  it('refuses a count that changes, an index out of range, and a chunk carrying an error or outputs', () => {
    const assembly = new ResultAssembly(7);
    assembly.add(chunk(0, 3, [slice(0, 4)]));
    expect(refusal(() => assembly.add(chunk(1, 2, [slice(4, 10)]))).message).toMatch(/chunk 1 of 2: earlier chunks said there are 3/);
    expect(refusal(() => new ResultAssembly(7).add(chunk(3, 3, []))).message).toMatch(/chunk 3 of 3: the chunk index must be under a count/);
    expect(refusal(() => new ResultAssembly(7).add(chunk(0, 0, []))).code).toBe(ErrorCode.DATA_LOSS);
    expect(refusal(() => new ResultAssembly(7).add(chunk(0, 2, [], { errorCode: ErrorCode.INTERNAL }))).message).toMatch(/error_code 0 and no outputs/);
  });

  it('refuses outputs declaring more than the budget before allocating them, RESOURCE_EXHAUSTED', () => {
    const assembly = new ResultAssembly(7, 15);
    assembly.add(chunk(0, 3, [slice(0, 4)]));
    const over = refusal(() => assembly.add(chunk(1, 3, [slice(0, 0, { outputIndex: 1, totalBytes: 2 ** 40 })])));
    expect(over).toEqual({ code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(/declare 1099511627786 bytes, over the router's result budget of 15 bytes/) });
  });
});

/** Cutting a large batch result into chunks that each fit a message, and back. */
import { describe, expect, it, vi } from 'vitest';
import { ExecutorMessage, type BatchResult } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { chunkBytesFor, chunkResult } from '../../../services/executor/service/result-chunks.ts';
import { encodedResultBytes } from '../../../services/executor/service/executor-service.ts';
import { ResultAssembly } from '../../../services/router/fleet/result-assembly.ts';

const bytes = (length: number, seed: number) => Uint8Array.from({ length }, (_, index) => (index * 7 + seed) % 251);

const result = (): BatchResult => ({
  batchId: 3, errorCode: 0, errorMessage: '', batchSize: 4, gpuNs: 1, executeNs: 2,
  outputs: [
    { name: 'big', datatype: 'UINT8', shape: [4, 2500], data: bytes(10_000, 1) },
    { name: 'none', datatype: 'FP32', shape: [4, 0], data: new Uint8Array() },
    { name: 'small', datatype: 'UINT8', shape: [4, 10], data: bytes(40, 2) },
  ],
});

describe('chunkResult', () => {
  it('keeps every chunk under the message limit, and the chunks put together give the result', () => {
    const limit = 2048;
    const chunks = chunkResult(result(), chunkBytesFor(limit));
    expect(chunks.length).toBeGreaterThan(5);
    for (const chunk of chunks) expect(ExecutorMessage.encode({ batchResult: chunk }).finish().byteLength).toBeLessThanOrEqual(limit);
    const assembly = new ResultAssembly(3);
    const answers = [...chunks].reverse().map((chunk) => assembly.add(chunk));
    const whole = answers.at(-1)!;
    expect(whole.outputs.map((tensor) => [tensor.name, tensor.shape, tensor.data])).toEqual(result().outputs.map((tensor) => [tensor.name, tensor.shape, tensor.data]));
  });

  it('cuts at most 16 MiB per chunk, half the message limit below 32 MiB', () => {
    expect(chunkBytesFor(64 * 1024 * 1024)).toBe(16 * 1024 * 1024);
    expect(chunkBytesFor(32 * 1024)).toBe(16 * 1024);
  });
});

describe('encodedResultBytes', () => {
  it('never encodes a result whose outputs alone are over the limit, and encodes exactly only near it', () => {
    const encode = vi.spyOn(ExecutorMessage, 'encode');
    try {
      expect(encodedResultBytes(result(), 5_000)).toBeGreaterThan(5_000);
      expect(encode).not.toHaveBeenCalled();
      expect(encodedResultBytes(result(), 1_000_000)).toBeLessThanOrEqual(1_000_000);
      expect(encode).not.toHaveBeenCalled();
      // Between the outputs' bytes (10 040) and the cheap bound: only the exact size can tell.
      const exact = ExecutorMessage.encode({ batchResult: result() }).finish().byteLength;
      encode.mockClear();
      expect(encodedResultBytes(result(), 10_100)).toBe(exact);
      expect(encode).toHaveBeenCalledTimes(1);
    } finally {
      encode.mockRestore();
    }
  });
});

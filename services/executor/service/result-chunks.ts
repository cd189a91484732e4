/**
 * Cuts a batch result too large for one stream message into chunks (ResultChunk in
 * executor.proto): messages with the same batch id, each carrying slices of the outputs' bytes.
 * The slices are views of the outputs, not copies. Pure.
 */
import type { BatchResult, TensorChunk } from '../../protocol/generated/nexus/executor/v1/executor.ts';

/** Most output bytes one chunk carries: 16 MiB, a quarter of the default 64 MiB message limit. */
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/** Bytes counted for a slice's name, datatype, shape and framing, beside its data. */
const SLICE_OVERHEAD_BYTES = 64;

/**
 * Output bytes per chunk for a stream whose messages may be `maxMessageBytes`: half of it, at
 * most 16 MiB, so names, shapes and framing always fit beside the data.
 */
export function chunkBytesFor(maxMessageBytes: number): number {
  return Math.max(1, Math.min(MAX_CHUNK_BYTES, Math.floor(maxMessageBytes / 2)));
}

/**
 * `result` as chunk messages of at most `chunkBytes` output bytes each (names and shapes counted),
 * in order. Every output has at least one slice, so an empty one is still declared.
 */
export function chunkResult(result: BatchResult, chunkBytes: number): BatchResult[] {
  const chunks: TensorChunk[][] = [[]];
  let filled = 0;
  result.outputs.forEach((tensor, outputIndex) => {
    const overhead = SLICE_OVERHEAD_BYTES + Buffer.byteLength(tensor.name) + Buffer.byteLength(tensor.datatype) + 11 * tensor.shape.length;
    let offset = 0;
    do {
      if (filled > 0 && filled + overhead >= chunkBytes) {
        chunks.push([]);
        filled = 0;
      }
      const length = Math.min(tensor.data.byteLength - offset, Math.max(1, chunkBytes - filled - overhead));
      chunks[chunks.length - 1].push({
        outputIndex, name: tensor.name, datatype: tensor.datatype, shape: tensor.shape,
        totalBytes: tensor.data.byteLength, byteOffset: offset, data: tensor.data.subarray(offset, offset + length),
      });
      filled += overhead + length;
      offset += length;
    } while (offset < tensor.data.byteLength);
  });
  return chunks.map((tensors, index) => ({ ...result, outputs: [], chunk: { index, count: chunks.length, tensors } }));
}

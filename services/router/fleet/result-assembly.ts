/**
 * Puts a chunked batch result (ResultChunk in executor.proto) back together. Nothing in the
 * chunks is trusted: they must agree on their count and on each output's name, datatype, shape
 * and size, come once each, and cover each output's bytes exactly once; the outputs' declared
 * bytes stay within a budget, checked before anything is allocated. Pure.
 */
import type { BatchResult, Tensor, TensorChunk } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';

/** Most output bytes of one reassembled result by default: 1 GiB. */
export const DEFAULT_MAX_RESULT_BYTES = 1024 * 1024 * 1024;

interface OutputParts {
  name: string;
  datatype: string;
  shape: number[];
  data: Uint8Array;
  /** [start, end) of each slice received. */
  ranges: Array<[number, number]>;
}

export class ResultAssembly {
  private count = 0;
  private readonly seen = new Set<number>();
  private readonly outputs = new Map<number, OutputParts>();
  private declaredBytes = 0;
  private first: BatchResult | undefined;
  private readonly batchId: number;
  private readonly maxResultBytes: number;

  /** `maxResultBytes`: most output bytes the result may declare. Default 1 GiB. */
  constructor(batchId: number, maxResultBytes = DEFAULT_MAX_RESULT_BYTES) {
    this.batchId = batchId;
    this.maxResultBytes = maxResultBytes;
  }

  /**
   * Adds one chunk message of the batch. Returns the whole result once every chunk is in,
   * undefined while some are missing. Throws DATA_LOSS for inconsistent chunks and
   * RESOURCE_EXHAUSTED for outputs over the budget; the assembly is useless after a throw.
   */
  add(message: BatchResult): BatchResult | undefined {
    const chunk = message.chunk;
    const where = `batch ${this.batchId}, chunk ${chunk?.index} of ${chunk?.count}`;
    if (!chunk || chunk.count < 1 || chunk.index >= chunk.count) throw this.loss(`${where}: the chunk index must be under a count of at least 1`);
    if (this.count !== 0 && chunk.count !== this.count) throw this.loss(`${where}: earlier chunks said there are ${this.count}`);
    if (this.seen.has(chunk.index)) throw this.loss(`${where}: came twice`);
    if (message.errorCode !== 0 || message.outputs.length > 0) throw this.loss(`${where}: a chunk must have error_code 0 and no outputs`);
    this.count = chunk.count;
    this.seen.add(chunk.index);
    this.first ??= message;
    for (const slice of chunk.tensors) this.place(slice, where);
    return this.seen.size === this.count ? this.whole() : undefined;
  }

  private place(slice: TensorChunk, where: string): void {
    const what = `${where}, output ${slice.outputIndex} '${slice.name}'`;
    let parts = this.outputs.get(slice.outputIndex);
    if (!parts) {
      if (!Number.isSafeInteger(slice.totalBytes)) throw this.loss(`${what}: total_bytes ${slice.totalBytes} is not a byte count`);
      this.declaredBytes += slice.totalBytes;
      if (this.declaredBytes > this.maxResultBytes) {
        throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
          `batch ${this.batchId}: its outputs declare ${this.declaredBytes} bytes, over the router's result budget of ${this.maxResultBytes} bytes; send fewer rows per batch`);
      }
      parts = { name: slice.name, datatype: slice.datatype, shape: slice.shape, data: new Uint8Array(slice.totalBytes), ranges: [] };
      this.outputs.set(slice.outputIndex, parts);
    } else if (slice.name !== parts.name || slice.datatype !== parts.datatype || slice.totalBytes !== parts.data.byteLength
      || slice.shape.length !== parts.shape.length || slice.shape.some((dim, axis) => dim !== parts!.shape[axis])) {
      throw this.loss(`${what}: declares ${slice.datatype} [${slice.shape}] of ${slice.totalBytes} bytes, earlier chunks ${parts.name} ${parts.datatype} [${parts.shape}] of ${parts.data.byteLength} bytes`);
    }
    const end = slice.byteOffset + slice.data.byteLength;
    if (!Number.isSafeInteger(slice.byteOffset) || end > parts.data.byteLength) {
      throw this.loss(`${what}: bytes ${slice.byteOffset} to ${end} are outside its ${parts.data.byteLength} bytes`);
    }
    parts.data.set(slice.data, slice.byteOffset);
    parts.ranges.push([slice.byteOffset, end]);
  }

  private whole(): BatchResult {
    const outputs: Tensor[] = [];
    for (let index = 0; index < this.outputs.size; index++) {
      const parts = this.outputs.get(index);
      if (!parts) throw this.loss(`batch ${this.batchId}: its chunks have outputs up to ${Math.max(...this.outputs.keys())} but none numbered ${index}`);
      let covered = 0;
      for (const [start, end] of parts.ranges.sort((a, b) => a[0] - b[0])) {
        if (start < covered) throw this.loss(`batch ${this.batchId}, output '${parts.name}': bytes from ${start} came twice`);
        if (start > covered) break;
        covered = end;
      }
      if (covered !== parts.data.byteLength) {
        throw this.loss(`batch ${this.batchId}, output '${parts.name}': its chunks carry bytes 0 to ${covered} of ${parts.data.byteLength}`);
      }
      outputs.push({ name: parts.name, datatype: parts.datatype, shape: parts.shape, data: parts.data });
    }
    const { chunk: _chunk, ...rest } = this.first!;
    return { ...rest, outputs };
  }

  private loss(message: string): NexusError {
    return new NexusError(ErrorCode.DATA_LOSS, `the chunked result of ${message}`);
  }
}

/**
 * A router's side of an executor's Connect stream, for tests that say to an executor what a
 * router never would: messages are written as given and answers matched by id (a chunked result
 * put together first, as the router does).
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import {
  ExecutorClient, type BatchResult, type ExecuteBatch, type ExecutorHello, type ExecutorMessage, type ModelLoadResult, type ModelUnloaded,
  type RouterMessage,
} from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { GetVersionRequest, RegistryClient, type ModelVersion } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ResultAssembly } from '../../../services/router/fleet/result-assembly.ts';

export class ExecutorStream {
  readonly hello: Promise<ExecutorHello>;
  readonly unloaded: ModelUnloaded[] = [];
  private readonly client: ExecutorClient;
  private readonly call: ReturnType<ExecutorClient['connect']>;
  private readonly loads = new Map<number, (result: ModelLoadResult) => void>();
  /** Waiters by batch id, oldest first (a test may reuse an id). */
  private readonly batches = new Map<number, Array<(result: BatchResult) => void>>();
  /** Chunked results being put together, by batch id. */
  private readonly assemblies = new Map<number, ResultAssembly>();
  /** Messages each chunked result came in, by batch id, once whole. */
  readonly chunksOf = new Map<number, number>();
  private nextId = 1;

  constructor(address: string) {
    this.client = new ExecutorClient(address, credentials.createInsecure());
    this.call = this.client.connect(new Metadata());
    this.call.on('error', () => {});
    let greet: (hello: ExecutorHello) => void;
    this.hello = new Promise((resolve) => (greet = resolve));
    this.call.on('data', (message: ExecutorMessage) => {
      if (message.hello) greet(message.hello);
      if (message.modelLoadResult) this.loads.get(message.modelLoadResult.requestId)?.(message.modelLoadResult);
      if (message.batchResult) {
        const result = message.batchResult.chunk ? this.assemble(message.batchResult) : message.batchResult;
        if (result) this.batches.get(result.batchId)?.shift()?.(result);
      }
      if (message.modelUnloaded) this.unloaded.push(message.modelUnloaded);
    });
  }

  /** Sends a LoadModel with `version` exactly as given (warmed up to `maxBatchSize`; 0: the record's). */
  load(version: ModelVersion, maxBatchSize = 0): Promise<ModelLoadResult> {
    const requestId = this.nextId++;
    return new Promise((resolve) => {
      this.loads.set(requestId, resolve);
      this.write({ loadModel: { requestId, version, traceContext: {}, maxBatchSize } });
    });
  }

  /** Sends an ExecuteBatch (a fresh batch id unless given). */
  execute(batch: Partial<ExecuteBatch>): Promise<BatchResult> {
    const batchId = batch.batchId ?? this.nextId++;
    return new Promise((resolve) => {
      this.batches.set(batchId, [...(this.batches.get(batchId) ?? []), resolve]);
      this.write({ executeBatch: { modelName: '', version: 0, inputs: [], deadlineUnixMs: 0, traceContext: {}, ...batch, batchId } });
    });
  }

  private assemble(chunk: BatchResult): BatchResult | undefined {
    const assembly = this.assemblies.get(chunk.batchId) ?? new ResultAssembly(chunk.batchId);
    this.assemblies.set(chunk.batchId, assembly);
    const whole = assembly.add(chunk);
    if (whole) {
      this.assemblies.delete(chunk.batchId);
      this.chunksOf.set(chunk.batchId, chunk.chunk!.count);
    }
    return whole;
  }

  unload(modelName: string, version: number): void {
    this.write({ unloadModel: { modelName, version } });
  }

  private write(message: RouterMessage): void {
    this.call.write(message);
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

/** The registry's record of a version. */
export function registryRecord(address: string, modelName: string, version: number): Promise<ModelVersion> {
  const client = new RegistryClient(address, credentials.createInsecure());
  return new Promise<ModelVersion>((resolve, reject) => {
    client.getVersion(GetVersionRequest.fromPartial({ modelName, version }), (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response.version!);
    });
  });
}

/** An FP32 input tensor of `rows` rows of `row`. */
export function fp32Rows(name: string, rows: number, row: number[]) {
  const values = new Float32Array(rows * row.length);
  for (let index = 0; index < rows; index++) values.set(row, index * row.length);
  return { name, datatype: 'FP32', shape: [rows, row.length], data: new Uint8Array(values.buffer) };
}

/** The FP32 values of a result tensor. */
export function fp32Values(data: Uint8Array): number[] {
  return [...new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))];
}

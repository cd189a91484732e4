/** Stand-ins for the registry and the executors, so the router's models and request path run without sockets. */
import type { InferTensorContents, ModelInferRequest } from '../../services/protocol/generated/inference/grpc_service.ts';
import type { BatchResult, ExecuteBatch } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { Alias, ModelVersion } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, modelKeyOf, NexusError, type ModelKey } from '../../services/domain/index.ts';
import type { RegistryView, VersionHost } from '../../services/router/models/index.ts';

/** A version of model `name` taking x [-1, 2] FP32 and answering y of the same shape. */
export const record = (modelName: string, version: number): ModelVersion => ModelVersion.fromPartial({
  modelName, version, sha256: `sha-${version}`, format: 'onnx',
  signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] },
});

/** A registry holding versions 1..`latest` of each model, and the aliases given. */
export class FakeRegistry implements RegistryView {
  reads = 0;
  latest: Record<string, number>;
  aliases: Alias[];
  constructor(latest: Record<string, number>, aliases: Alias[] = []) {
    this.latest = latest;
    this.aliases = aliases;
  }

  async getVersion(modelName: string, version: number): Promise<ModelVersion> {
    this.reads += 1;
    const latest = this.latest[modelName];
    if (!latest) throw new NexusError(ErrorCode.NOT_FOUND, `no model '${modelName}'`);
    if (version > latest) throw new NexusError(ErrorCode.NOT_FOUND, `no version ${version}`);
    return record(modelName, version === 0 ? latest : version);
  }

  async listAliases(modelName: string): Promise<Alias[]> {
    return this.aliases.filter((alias) => alias.modelName === modelName);
  }

  async listVersions(modelName: string): Promise<number[]> {
    return Array.from({ length: this.latest[modelName] ?? 0 }, (_, index) => index + 1);
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => { resolve = yes; reject = no; });
  return { promise, resolve, reject };
}

/** Doubles x into y, as an executor running the batch would. */
export function doubled(batch: Omit<ExecuteBatch, 'batchId'>): BatchResult {
  const input = batch.inputs[0];
  const values = new Float32Array(new Uint8Array(input.data).buffer).map((value) => value * 2);
  return {
    batchId: 0, errorCode: 0, errorMessage: '', batchSize: input.shape[0], gpuNs: 0, executeNs: 0,
    outputs: [{ name: 'y', datatype: 'FP32', shape: input.shape, data: new Uint8Array(values.buffer) }],
  };
}

/**
 * Executors as the catalog sees them. Loads finish when the test says (`finishLoad`), or at once
 * with `autoLoad`; batches run through `runBatch` (default: doubled at once).
 */
export class FakeHost implements VersionHost {
  readonly loading = new Map<ModelKey, Deferred<void>[]>();
  readonly loaded = new Set<ModelKey>();
  readonly loadCalls: ModelKey[] = [];
  readonly unloaded: ModelKey[] = [];
  readonly batches: Array<{ key: ModelKey; batch: Omit<ExecuteBatch, 'batchId'> }> = [];
  runBatch: (batch: Omit<ExecuteBatch, 'batchId'>) => Promise<BatchResult> = async (batch) => doubled(batch);

  private readonly autoLoad: boolean;
  constructor(autoLoad = false) {
    this.autoLoad = autoLoad;
  }

  ensureLoaded(version: ModelVersion): Promise<void> {
    const key = modelKeyOf(version);
    this.loadCalls.push(key);
    if (this.autoLoad) {
      this.loaded.add(key);
      return Promise.resolve();
    }
    const load = deferred<void>();
    this.loading.set(key, [...(this.loading.get(key) ?? []), load]);
    return load.promise;
  }

  /** Ends the oldest pending load of `key`: loaded, or failed with `error`. */
  finishLoad(key: string, error?: NexusError): void {
    const pending = this.loading.get(key as ModelKey)?.shift();
    if (!pending) throw new Error(`no load of ${key} is pending`);
    if (error) {
      pending.reject(error);
    } else {
      this.loaded.add(key as ModelKey);
      pending.resolve();
    }
  }

  unload(version: { modelName: string; version: number }): void {
    const key = modelKeyOf(version);
    this.unloaded.push(key);
    this.loaded.delete(key);
  }

  isLoaded(key: ModelKey): boolean {
    return this.loaded.has(key);
  }

  hasCapacity(key: ModelKey): boolean {
    return this.loaded.has(key);
  }

  execute(key: ModelKey, batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult> {
    this.batches.push({ key, batch });
    return this.runBatch(batch);
  }

  onCapacity(): void {}
}

const contents = (fp32: number[]): InferTensorContents => ({
  boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [],
  fp32Contents: fp32, fp64Contents: [], bytesContents: [],
});

/** A request for `modelName` with one row of x. */
export const inferRequest = (modelName: string, modelVersion = '', row = [1, 2]): ModelInferRequest => ({
  modelName, modelVersion, id: 'r1', parameters: {}, outputs: [], rawInputContents: [],
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, row.length], parameters: {}, contents: contents(row) }],
});

/** Lets pending promise callbacks run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));

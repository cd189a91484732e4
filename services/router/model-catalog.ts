/**
 * Which model versions the router serves. A request names a model and optionally a version; the
 * catalog resolves it through the registry (the latest version is re-checked at most every
 * `latestTtlMs`), loads it on the executors the first time, and keeps one batcher per version.
 */
import { Metadata } from '@grpc/grpc-js';
import { GetVersionRequest, type ModelVersion, type RegistryClient } from '../protocol/generated/nexus/registry/v1/registry.ts';
import type { ModelSignature, TensorSpec } from '../onnx/index.ts';
import { isDatatype } from '../onnx/index.ts';
import { ErrorCode, NexusError, invalidArgument } from '../rpc/errors.ts';
import { injectIntoMetadata } from '../telemetry/tracing.ts';
import type { BatchingPolicy } from './batch-queue.ts';
import { ExecutorPool, versionKey } from './executor-pool.ts';
import { ModelBatcher } from './model-batcher.ts';
import { isBatchable } from './request-validation.ts';
import { Experiment } from './experiment.ts';
import { ResponseCache } from './response-cache.ts';
import { DEFAULT_SERVING_CONFIG, servingConfigFor, type RouterConfig } from './router-config.ts';

export interface ServedModel {
  version: ModelVersion;
  signature: ModelSignature;
  policy: BatchingPolicy;
  /** Priority of requests that name none (1 high … 3 low). */
  defaultPriority: number;
  batcher: ModelBatcher;
  /** Present when the model's config enables response caching. */
  cache: ResponseCache | undefined;
  /** Settles when the version is loaded on at least one executor. */
  loaded: Promise<void>;
}

export interface CatalogOptions {
  /** Serving settings per model (see router-config.ts). Default: built-in defaults only. */
  config?: RouterConfig;
  /** How long a resolved "latest version" is trusted, in milliseconds. Default 1000. */
  latestTtlMs?: number;
  /** Told when a model becomes servable (loaded and warmed) or stops being so. */
  onModelHealth?: (modelName: string, serving: boolean) => void;
}

/** Parses the protocol's version string: '' → 0 (latest), else a positive integer. */
export function parseVersion(version: string, field: string): number {
  if (version === '') return 0;
  if (!/^[1-9]\d{0,8}$/.test(version)) throw invalidArgument(`${field} '${version.slice(0, 50)}' is not a version number`);
  return Number(version);
}

function signatureOf(version: ModelVersion): ModelSignature {
  const toSpec = (spec: { name: string; datatype: string; shape: number[] }): TensorSpec => {
    if (!isDatatype(spec.datatype)) throw new NexusError(ErrorCode.INTERNAL, `version record has unknown datatype ${spec.datatype}`);
    return { name: spec.name, datatype: spec.datatype, shape: spec.shape };
  };
  return { inputs: (version.signature?.inputs ?? []).map(toSpec), outputs: (version.signature?.outputs ?? []).map(toSpec) };
}

export class ModelCatalog {
  private readonly registry: RegistryClient;
  private readonly pool: ExecutorPool;
  private readonly config: RouterConfig;
  private readonly latestTtlMs: number;
  private readonly latest = new Map<string, { version: number; checkedAtMs: number }>();
  private readonly served = new Map<string, ServedModel>();
  private readonly onModelHealth: (modelName: string, serving: boolean) => void;
  private accepting = true;
  private readonly experiments = new Map<string, Experiment>();
  /** Requests between arriving and being answered, wherever they are (resolving, queued, running). */
  private activeRequests = 0;

  constructor(registry: RegistryClient, pool: ExecutorPool, options: CatalogOptions = {}) {
    this.registry = registry;
    this.pool = pool;
    this.config = options.config ?? { defaults: DEFAULT_SERVING_CONFIG, models: {} };
    this.latestTtlMs = options.latestTtlMs ?? 1000;
    this.onModelHealth = options.onModelHealth ?? (() => {});
    pool.onCapacity(() => {
      for (const model of this.served.values()) model.batcher.pump();
    });
  }

  private getVersion(modelName: string, version: number, metadata?: Metadata): Promise<ModelVersion> {
    return new Promise((resolve, reject) => {
      const callback = (error: Error | null, response?: { version?: ModelVersion }) => {
        if (error) {
          const coded = NexusError.from(error);
          if (coded.code === ErrorCode.INVALID_ARGUMENT || coded.code === ErrorCode.NOT_FOUND) reject(coded);
          else reject(new NexusError(ErrorCode.UNAVAILABLE, `the registry could not be reached: ${coded.message}`));
        } else if (!response?.version) reject(new NexusError(ErrorCode.INTERNAL, 'the registry returned no version'));
        else resolve(response.version);
      };
      const deadline = { deadline: Date.now() + 10_000 };
      this.registry.getVersion(GetVersionRequest.fromPartial({ modelName, version }), injectIntoMetadata(metadata ?? new Metadata()), deadline, callback);
    });
  }

  /** Every version number of a model, for ModelMetadata. */
  listVersions(modelName: string): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.registry.listVersions({ modelName }, (error, response) => {
        if (error) reject(NexusError.from(error));
        else resolve(response.versions.map((version) => version.version));
      });
    });
  }

  /** The served model for a request's name and version string; loads it the first time. */
  async resolve(modelName: string, versionString: string): Promise<ServedModel> {
    if (!this.accepting) throw new NexusError(ErrorCode.UNAVAILABLE, 'the router is shutting down; send the request to another replica');
    if (modelName === '') throw invalidArgument('model_name is required');
    const number = parseVersion(versionString, 'model_version');
    if (number === 0) return this.resolveLatest(modelName);
    const existing = this.served.get(`${modelName}:${number}`);
    if (existing) return existing;
    return this.serve(await this.getVersion(modelName, number));
  }

  /**
   * The version that traffic for "latest" goes to. When the registry has a newer one, it is loaded
   * and warmed in the background while traffic stays on the current one; traffic moves only once
   * the new version is ready, and the old one is unloaded after its queue drains.
   */
  private async resolveLatest(modelName: string): Promise<ServedModel> {
    const current = this.latest.get(modelName);
    const currentModel = current && this.served.get(`${modelName}:${current.version}`);
    if (current && currentModel && Date.now() - current.checkedAtMs < this.latestTtlMs) return currentModel;

    let newest: ModelVersion;
    try {
      newest = await this.getVersion(modelName, 0);
    } catch (error) {
      // A registry outage must not stop a model that is already being served.
      if (currentModel && NexusError.from(error).code === ErrorCode.UNAVAILABLE) return currentModel;
      throw error;
    }
    const now = Date.now();
    if (!currentModel || newest.version === current!.version) {
      this.latest.set(modelName, { version: newest.version, checkedAtMs: now });
      return this.serve(newest);
    }
    current!.checkedAtMs = now;
    if (newest.version > current!.version) {
      const next = this.serve(newest);
      next.loaded.then(() => {
        const still = this.latest.get(modelName);
        if (!still || still.version >= newest.version) return;
        this.latest.set(modelName, { version: newest.version, checkedAtMs: Date.now() });
        void this.retire(currentModel);
      }, () => {});
    }
    return currentModel;
  }

  /** Unloads a version once nothing is queued or running for it (or after a minute regardless). */
  private async retire(model: ServedModel): Promise<void> {
    for (const started = Date.now(); !model.batcher.idle && Date.now() - started < 60_000;) {
      await new Promise((wake) => setTimeout(wake, 50));
    }
    this.served.delete(versionKey(model.version));
    this.pool.unload(model.version);
  }

  private serve(version: ModelVersion): ServedModel {
    const key = versionKey(version);
    const existing = this.served.get(key);
    if (existing) return existing;
    const signature = signatureOf(version);
    const { defaultPriority, responseCache, ...policy } = servingConfigFor(this.config, version.modelName, version.batching);
    // A model without a batch dimension takes one request per execution.
    if (!isBatchable(signature.inputs)) policy.maxBatchSize = 1;
    const batcher = new ModelBatcher({
      name: version.modelName,
      policy,
      hasCapacity: () => this.pool.hasCapacity(key),
      run: (inputs, deadlineUnixMs, traceContext) =>
        this.pool.execute(key, { modelName: version.modelName, version: version.version, inputs, deadlineUnixMs, traceContext }),
    });
    const loaded = this.pool.ensureLoaded(version);
    loaded.then(() => this.onModelHealth(version.modelName, true), () => this.onModelHealth(version.modelName, false));
    const cache = responseCache ? new ResponseCache(responseCache) : undefined;
    const model: ServedModel = { version, signature, policy, defaultPriority, batcher, loaded, cache };
    this.served.set(key, model);
    // A failed load is forgotten so the next request tries again.
    loaded.catch(() => {
      if (this.served.get(key) === model) this.served.delete(key);
    });
    return model;
  }

  isLoaded(version: ModelVersion): boolean {
    return this.pool.isLoaded(versionKey(version));
  }

  /** The A/B split configured for a model, with its running results; undefined when none. */
  experimentFor(modelName: string): Experiment | undefined {
    const split = this.config.models[modelName]?.split;
    if (!split) return undefined;
    let experiment = this.experiments.get(modelName);
    if (!experiment) {
      experiment = new Experiment(split);
      this.experiments.set(modelName, experiment);
    }
    return experiment;
  }

  /** Counts a request from arrival to answer, so a drain waits for it wherever it is. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.activeRequests += 1;
    try {
      return await work();
    } finally {
      this.activeRequests -= 1;
    }
  }

  /** Refuses new requests and sends queued ones at once; resolves when all are answered or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.accepting = false;
    for (const started = Date.now(); Date.now() - started < timeoutMs;) {
      // Flushed on every pass: a request still validating when the drain began queues later.
      for (const model of this.served.values()) model.batcher.flush();
      if (this.activeRequests === 0 && [...this.served.values()].every((model) => model.batcher.idle)) return;
      await new Promise((wake) => setTimeout(wake, 20));
    }
  }

  close(reason: NexusError): void {
    for (const model of this.served.values()) model.batcher.close(reason);
  }
}

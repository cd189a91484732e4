/**
 * The versions the router serves, one ServedVersion each, and their version records (immutable,
 * so never stale). Serving a version builds its batcher and cache and asks the host to load it;
 * retiring one drains it and then unloads it, unless it is needed again meanwhile.
 */
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, modelKey, modelKeyOf, NexusError, type ModelKey } from '../../domain/index.ts';
import { isDatatype, type ModelSignature, type TensorSpec } from '../../onnx/index.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { isBatchable } from '../admission/index.ts';
import { ModelBatcher, type BatcherReporter } from '../batching/index.ts';
import { budgetsOf, servingConfigFor, type RouterConfig } from '../config/index.ts';
import { ResponseCache } from '../features/index.ts';
import type { RegistryView, VersionHost } from './registry-view.ts';
import { ServedVersion, VersionState } from './served-version.ts';

export interface ServedVersionsOptions {
  registry: RegistryView;
  host: VersionHost;
  config: RouterConfig;
  /** Told when a model becomes servable (loaded) or a load of it fails. */
  onModelHealth: (modelName: string, serving: boolean) => void;
  logger: Logger | undefined;
  /** The reporter of one model's batcher. Default: none. */
  batcherReporter?: (modelName: string) => BatcherReporter;
  /** How often a draining version checks whether it is idle, in milliseconds. Default 50. */
  drainPollMs?: number;
}

function signatureOf(version: ModelVersion): ModelSignature {
  const toSpec = (spec: { name: string; datatype: string; shape: number[] }): TensorSpec => {
    if (!isDatatype(spec.datatype)) throw new NexusError(ErrorCode.INTERNAL, `version record has unknown datatype ${spec.datatype}`);
    return { name: spec.name, datatype: spec.datatype, shape: spec.shape };
  };
  return { inputs: (version.signature?.inputs ?? []).map(toSpec), outputs: (version.signature?.outputs ?? []).map(toSpec) };
}

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

export class ServedVersions {
  private readonly served = new Map<ModelKey, ServedVersion>();
  private readonly records = new Map<ModelKey, ModelVersion>();
  private readonly options: ServedVersionsOptions;
  private readonly drainPollMs: number;

  constructor(options: ServedVersionsOptions) {
    this.options = options;
    this.drainPollMs = options.drainPollMs ?? 50;
  }

  /** Keeps a record read elsewhere (a sync, a Watch event), so serving it needs no registry call. */
  remember(record: ModelVersion): void {
    this.records.set(modelKeyOf(record), record);
  }

  private async record(modelName: string, version: number): Promise<ModelVersion> {
    const cached = this.records.get(modelKey(modelName, version));
    if (cached) return cached;
    const record = await this.options.registry.getVersion(modelName, version);
    this.remember(record);
    return record;
  }

  /** The served version, if it is served now (in any state but UNLOADED). */
  now(modelName: string, version: number): ServedVersion | undefined {
    return this.served.get(modelKey(modelName, version));
  }

  /** The served version, served (and loading) from now on if it was not. */
  async get(modelName: string, version: number): Promise<ServedVersion> {
    return this.now(modelName, version) ?? this.serve(await this.record(modelName, version));
  }

  private serve(record: ModelVersion): ServedVersion {
    const key = modelKeyOf(record);
    const existing = this.served.get(key);
    if (existing) return existing;
    const { host, config, onModelHealth } = this.options;
    const budgets = budgetsOf(config);
    const signature = signatureOf(record);
    const { defaultPriority, responseCache, ...policy } = servingConfigFor(config, record.modelName, record.batching);
    // A model without a batch dimension takes one request per execution.
    if (!isBatchable(signature.inputs)) policy.maxBatchSize = 1;
    const batcher = new ModelBatcher({
      name: record.modelName,
      policy,
      reporter: this.options.batcherReporter?.(record.modelName),
      // Outputs past the executor message limit come back in chunks, up to the link's result budget.
      limits: { maxQueueBytes: budgets.maxQueueBytes, maxBatchBytes: budgets.maxBatchBytes, maxResultBytes: budgets.maxResultBytes },
      hasCapacity: () => host.hasCapacity(key),
      run: (inputs, deadlineUnixMs, traceContext) =>
        host.execute(key, { modelName: record.modelName, version: record.version, inputs, deadlineUnixMs, traceContext }),
    });
    const cache = responseCache ? new ResponseCache(responseCache) : undefined;
    const model = new ServedVersion({ record, signature, policy, defaultPriority, batcher, cache });
    this.served.set(key, model);
    host.ensureLoaded(record, policy.maxBatchSize).then(() => {
      model.moveTo(VersionState.READY, 'loaded on an executor');
      onModelHealth(record.modelName, true);
    }, (error: unknown) => {
      model.loadFailed(NexusError.from(error));
      // Forgotten, so the next request tries again.
      if (this.served.get(key) === model) this.served.delete(key);
      onModelHealth(record.modelName, false);
    });
    return model;
  }

  /**
   * The version to queue on: `model` once loaded, or, if it was unloaded meanwhile (a request
   * asking for an old version by number), the same version served again. Rejects when loading fails.
   */
  async live(model: ServedVersion): Promise<ServedVersion> {
    for (let current = model; ;) {
      await current.loaded();
      if (current.servable) return current;
      current = await this.get(current.version.modelName, current.version.version);
    }
  }

  /**
   * Drains a version and unloads it once nothing is queued, running or about to queue on it;
   * it goes back to READY if `unneeded` turns false meanwhile (a route came back to it).
   */
  async retire(model: ServedVersion, unneeded: () => boolean): Promise<void> {
    await model.whenLoadSettled();
    if (model.state !== VersionState.READY || !unneeded() || this.served.get(model.key) !== model) return;
    model.moveTo(VersionState.DRAINING, 'no route sends traffic to it');
    // Requests routed just before the switch take their hold a few microtasks later: let them.
    do {
      await sleep(this.drainPollMs);
      if (!unneeded()) {
        model.moveTo(VersionState.READY, 'a route sends traffic to it again');
        return;
      }
    } while (!(model.batcher.idle && model.holders === 0));
    model.moveTo(VersionState.UNLOADED, 'unloaded after its queue drained');
    this.served.delete(model.key);
    this.options.host.unload(model.version);
    this.options.logger?.info({ model: model.version.modelName, version: model.version.version }, 'version unloaded after its queue drained');
  }

  /** Every version served now. */
  all(): IterableIterator<ServedVersion> {
    return this.served.values();
  }
}

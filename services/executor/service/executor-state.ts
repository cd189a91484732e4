/**
 * The executor's state without its transport: the models it has loaded (shared by every router
 * stream, one load per version however many ask, one compiled copy per sha256 and precision),
 * running batches on them, and the counters GetStats reports. A batch failure fails only that
 * batch; a lost GPU device fails everything from then on with UNAVAILABLE.
 */
import { SpanKind, type Span } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import type {
  BatchResult, ExecuteBatch, GetStatsResponse, LoadedModel, LoadModel, SequenceEvent, StartSequence, Tensor,
} from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { bytesOf, isDatatype, viewAs, type HostTensor } from '../../onnx/index.ts';
import { ErrorCode, NexusError, failedPrecondition, invalidArgument, modelKey, modelKeyOf, PRECISION_TAG, type ModelKey } from '../../domain/index.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { BusyWindow, metrics } from '../../telemetry/metrics.ts';
import { contextFromCarrier, inSpan, tracerFor } from '../../telemetry/tracing.ts';
import { pipelineCacheFor, type GpuContext } from '../gpu/index.ts';
import type { CompiledModel, Precision } from '../runtime/index.ts';
import { loadTextGenerationModel, storedCheckpoint, TextGenerationModel, type SequenceHandle } from '../llm/index.ts';
import type { ArtifactCache } from './artifact-cache.ts';
import { artifactKindOf, compileOnnxSource, fetchOnnxSource, type ArtifactKind } from './onnx-source.ts';
import { ResidentModels, type ResidentModel } from './resident-models.ts';
import { checkClaims, checkLoadTarget, type VersionSource } from './version-trust.ts';
import { planWarmUp, warmUpBatchSizeOf, runWarmUp, type WarmUpPlan } from './warm-up.ts';
import type { CompileBudgets } from '../compiler/index.ts';

const tracer = tracerFor('executor');

function toHostTensor(tensor: Tensor): HostTensor {
  if (!isDatatype(tensor.datatype)) throw invalidArgument(`input '${tensor.name}' has unknown datatype '${tensor.datatype}'`);
  return { datatype: tensor.datatype, shape: tensor.shape, data: viewAs(tensor.datatype, tensor.data) };
}

function toWireTensor(name: string, tensor: HostTensor): Tensor {
  return { name, datatype: tensor.datatype, shape: tensor.shape, data: bytesOf(tensor.data) };
}

/** The precision a version's tags ask for (undefined: the executor's default). */
export function precisionOf(version: ModelVersion): Precision | undefined {
  const wanted = version.tags[PRECISION_TAG];
  if (wanted === undefined || wanted === '') return undefined;
  if (wanted === 'fp16' || wanted === 'fp32') return wanted;
  throw failedPrecondition(`model ${modelKeyOf(version)} has tag ${PRECISION_TAG}='${wanted}'; use fp16 or fp32`);
}

/** The precision a version will run in here: its tag, else NEXUS_PRECISION, else fp32; fp16 only with shader-f16. */
function effectivePrecision(gpu: GpuContext, version: ModelVersion): Precision {
  const wanted = precisionOf(version) ?? (process.env.NEXUS_PRECISION === 'fp16' ? 'fp16' : 'fp32');
  return wanted === 'fp16' && !gpu.hasF16 ? 'fp32' : wanted;
}

/**
 * Weights plus the activations of the plan's largest batch, from the plan layout (before the
 * warm-up allocates them); undefined when the layout refuses that batch (the warm-up measures it).
 */
function estimatedBytes(model: CompiledModel, plan: WarmUpPlan | undefined): number | undefined {
  if (!plan || plan.batchSizes.length === 0) return model.weightBytes;
  try {
    return model.weightBytes + model.activationBytesFor(plan.shapesFor(plan.batchSizes[0]));
  } catch {
    return undefined;
  }
}

interface LoadedEntry {
  /** Filled in (precision, steps, weights) once the model has compiled and warmed up. */
  readonly loaded: LoadedModel;
  /** Settles when the version is ready (registry checked, compiled, warmed up) or failed. */
  readonly ready: Promise<ResidentModel>;
  resident?: ResidentModel;
  peakActivationBytes: number;
  peakBatchSize: number;
}

/** What the state tells its streams. */
export type StateEvent =
  | { kind: 'unloaded'; modelName: string; version: number; reason: string }
  | { kind: 'device-lost'; reason: string };

export interface ExecutorStateOptions {
  /** The registry's own record of a version; loads use it, never the router's claims. */
  versions: VersionSource;
  /** GPU memory all loaded models may hold together, in bytes. */
  gpuBudgetBytes: number;
  /** Most bytes of zero inputs a warm-up batch may allocate. */
  warmUpBudgetBytes: number;
  /** Compile budgets (folding, nodes, weights, the compile worker's heap); unset ones keep their defaults. */
  compileBudgets?: Partial<CompileBudgets>;
  /** Most bytes the paged KV cache of one text-generation model may take. Default: a quarter of gpuBudgetBytes. */
  kvBudgetBytes?: number;
}

/** The ONNX model of a resident; FAILED_PRECONDITION for a text-generation model, which takes sequences. */
function onnxModelOf(resident: ResidentModel, key: ModelKey): CompiledModel {
  if (resident.model instanceof TextGenerationModel) {
    throw failedPrecondition(`model ${key} is a text-generation model; send StartSequence, not ExecuteBatch`);
  }
  return resident.model;
}

export class ExecutorState {
  readonly id = randomUUID();
  readonly models = new Map<string, LoadedEntry>();
  readonly batchesBySize = new Map<number, number>();
  requestsFailed = 0;
  /** When the GPU ran batches lately, for nexus_executor_gpu_busy_ratio (server.ts reports it). */
  readonly gpuBusy = new BusyWindow();
  /** Set once the GPU device is lost: every later load and batch fails UNAVAILABLE with it. */
  deviceLostReason: string | undefined;
  private readonly gpu: GpuContext;
  private readonly artifacts: ArtifactCache;
  private readonly logger: Logger;
  private readonly options: ExecutorStateOptions;
  private readonly residents: ResidentModels;
  private readonly listeners = new Set<(event: StateEvent) => void>();

  constructor(gpu: GpuContext, artifacts: ArtifactCache, logger: Logger, options: ExecutorStateOptions) {
    this.gpu = gpu;
    this.artifacts = artifacts;
    this.logger = logger;
    this.options = options;
    this.residents = new ResidentModels(options.gpuBudgetBytes, (resident, reason) => this.evicted(resident, reason));
  }

  /** Calls `listener` with every later event; returns the unsubscribe. */
  subscribe(listener: (event: StateEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: StateEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  /** Marks the device lost: later loads and batches fail UNAVAILABLE; streams fail what is in flight. */
  deviceLost(reason: string): void {
    if (this.deviceLostReason !== undefined) return;
    this.deviceLostReason = reason;
    this.emit({ kind: 'device-lost', reason });
  }

  private checkDevice(): void {
    if (this.deviceLostReason !== undefined) throw new NexusError(ErrorCode.UNAVAILABLE, `GPU device lost: ${this.deviceLostReason}`);
  }

  /**
   * Loads a version once (concurrent asks share the work); a failed load can be retried. The
   * record comes from the registry and must agree with the claim; the version is ready only once
   * warmed up at every batch size up to the max_batch_size the request names (else its record's);
   * a later load of a version already loading or loaded shares the first one's warm-up.
   */
  load(request: LoadModel): Promise<ResidentModel> {
    this.checkDevice();
    const claimed = checkLoadTarget(request.version);
    const key = modelKeyOf(claimed);
    const existing = this.models.get(key);
    if (existing) return existing.ready;
    const loaded: LoadedModel = { modelName: claimed.modelName, version: claimed.version, sha256: claimed.sha256, precision: '', stepCount: 0, weightBytes: 0,
      task: '', kvCapacityTokens: 0, maxSequenceTokens: 0, kvBytesPerToken: 0 };
    const entry: LoadedEntry = {
      loaded, peakActivationBytes: 0, peakBatchSize: 0,
      ready: inSpan(tracer, 'load_model', {
        parent: contextFromCarrier(request.traceContext),
        attributes: { 'nexus.model': key, 'nexus.sha256': claimed.sha256 },
      }, () => this.loadVerified(key, claimed, request.maxBatchSize)),
    };
    this.models.set(key, entry);
    entry.ready.then((resident) => {
      entry.resident = resident;
      Object.assign(loaded, { precision: resident.model.precision, stepCount: resident.model.stepCount, weightBytes: resident.model.weightBytes },
        resident.model instanceof TextGenerationModel ? resident.model.capacity : {});
      // Unloaded while it was loading: give its hold back.
      if (this.models.get(key) !== entry) this.residents.release(resident, key);
    }, () => {
      if (this.models.get(key) === entry) this.models.delete(key);
    });
    return entry.ready;
  }

  private async loadVerified(key: ModelKey, claimed: ModelVersion, requestedBatchSize: number): Promise<ResidentModel> {
    const started = performance.now();
    const record = checkClaims(claimed, await this.options.versions(claimed.modelName, claimed.version));
    const artifact = artifactKindOf(key, record);
    const checkpoint = artifact.kind === 'checkpoint';
    const precision = effectivePrecision(this.gpu, record);
    // A text-generation model is warmed up by its load; it takes no batches.
    const maxBatchSize = checkpoint ? 0 : warmUpBatchSizeOf(record, requestedBatchSize);
    const residentKey = `${record.sha256}:${precision}`;
    const resident = await this.residents.acquire(residentKey, key, () => (checkpoint
      ? this.loadTextGeneration(key, record, residentKey, precision)
      : this.compile(key, artifact, record, residentKey, precision, maxBatchSize)));
    try {
      if (resident.warmedUpTo < maxBatchSize) await this.warmUpShared(key, resident, maxBatchSize);
      this.checkDevice();
    } catch (error) {
      this.residents.release(resident, key);
      throw error;
    }
    metrics.modelWeightBytes.set({ model: claimed.modelName, version: String(claimed.version) }, resident.model.weightBytes);
    const seconds = (performance.now() - started) / 1000;
    metrics.modelLoadTime.observe({ model: claimed.modelName }, seconds);
    this.logger.info({
      model: key, sha256: record.sha256, ms: Math.round(seconds * 1000), sharedWith: [...resident.versions.keys()].filter((other) => other !== key),
      warmedUpTo: resident.warmedUpTo, gpuBytes: resident.bytes,
    }, 'model loaded');
    return resident;
  }

  /** Warms a model shared with a version whose batches are smaller at the larger sizes too, within the GPU budget. */
  private async warmUpShared(key: ModelKey, resident: ResidentModel, maxBatchSize: number): Promise<void> {
    const label = `model ${key}`;
    const model = onnxModelOf(resident, key);
    resident.busy += 1;
    try {
      const plan = planWarmUp(label, model.signature, maxBatchSize, this.options.warmUpBudgetBytes);
      const sizes = plan && { ...plan, batchSizes: plan.batchSizes.filter((size) => size > resident.warmedUpTo) };
      this.residents.grow(resident, label, estimatedBytes(model, sizes) ?? 0);
      const warmed = await inSpan(tracer, 'warm_up', {}, () => runWarmUp(model, sizes));
      this.residents.grow(resident, label, model.weightBytes + warmed.peakActivationBytes);
      resident.warmedUpTo = Math.max(resident.warmedUpTo, maxBatchSize);
    } finally {
      resident.busy -= 1;
    }
  }

  /**
   * Downloads, compiles and warms up one resident model, within the GPU and warm-up budgets. Its
   * GPU bytes are reserved before anything is allocated: the artifact's size (with its external
   * data files) until it has compiled, then weights plus the largest warm-up batch's
   * activations from the plan layout, then what the warm-up measured.
   */
  private async compile(
    key: ModelKey, artifact: ArtifactKind, record: ModelVersion, residentKey: string, precision: Precision, maxBatchSize: number,
  ): Promise<ResidentModel> {
    const label = `model ${key}`;
    const source = await inSpan(tracer, 'download_artifact', { kind: SpanKind.CLIENT }, () => fetchOnnxSource(this.artifacts, key, artifact, record));
    let model: CompiledModel;
    try {
      // The artifact's size bounds its weights before anything is compiled.
      this.residents.reserve(residentKey, label, source.sizeBytes);
      model = await inSpan(tracer, 'compile', {}, () => compileOnnxSource(this.gpu, source, precision, this.options.compileBudgets));
    } finally {
      await source.release();
    }
    try {
      const plan = planWarmUp(label, model.signature, maxBatchSize, this.options.warmUpBudgetBytes);
      const estimate = estimatedBytes(model, plan);
      if (estimate !== undefined) this.residents.reserve(residentKey, label, estimate);
      const warmed = await inSpan(tracer, 'warm_up', {}, () => runWarmUp(model, plan));
      if (warmed.skipped) this.logger.warn({ model: key, reason: warmed.skipped }, 'model loads unwarmed; its first request plans it');
      const gpuBytes = model.weightBytes + warmed.peakActivationBytes;
      this.residents.reserve(residentKey, label, gpuBytes);
      return { key: residentKey, model, versions: new Map(), bytes: gpuBytes, busy: 0, lastUsedMs: performance.now(), warmedUpTo: maxBatchSize };
    } catch (error) {
      model.dispose();
      throw error;
    }
  }

  /**
   * Loads a checkpoint directory as a text-generation model: each file fetched and verified by
   * its own digest, the model's GPU bytes (weights, KV cache, scratch) reserved before anything
   * is allocated, every kernel built and warmed up by the load.
   */
  private async loadTextGeneration(key: ModelKey, record: ModelVersion, residentKey: string, precision: Precision): Promise<ResidentModel> {
    const label = `model ${key}`;
    const files = storedCheckpoint(record.files, (sha256) => inSpan(tracer, 'download_artifact', { kind: SpanKind.CLIENT }, () => this.artifacts.fetch(sha256)));
    const model = await inSpan(tracer, 'compile', {}, () => loadTextGenerationModel(this.gpu, files, {
      precision, kvBudgetBytes: this.options.kvBudgetBytes ?? Math.floor(this.options.gpuBudgetBytes / 4),
      weightBudgetBytes: this.options.compileBudgets?.weightBytes, reserve: (bytes) => this.residents.reserve(residentKey, label, bytes),
    }));
    return { key: residentKey, model, versions: new Map(), bytes: model.gpuBytes, busy: 0, lastUsedMs: performance.now(), warmedUpTo: 0 };
  }

  /**
   * Starts a sequence on a loaded text-generation model; its events go to `emit`, the last with
   * a finish_reason. Throws NOT_FOUND for a version not loaded (or still loading),
   * FAILED_PRECONDITION for a tensor model, and the model's refusals (INVALID_ARGUMENT, ...).
   * The model counts as busy (never evicted) until the sequence ends.
   */
  startSequence(request: StartSequence, emit: (event: SequenceEvent) => void): SequenceHandle {
    this.checkDevice();
    const key = modelKey(request.modelName, request.version);
    const resident = this.models.get(key)?.resident;
    if (!resident || !this.residents.holds(resident)) {
      throw new NexusError(ErrorCode.NOT_FOUND, `model ${key} is not loaded on this executor; load it first`);
    }
    if (!(resident.model instanceof TextGenerationModel)) {
      throw failedPrecondition(`model ${key} is not a text-generation model; send ExecuteBatch, not StartSequence`);
    }
    resident.lastUsedMs = performance.now();
    resident.busy += 1;
    let ended = false;
    try {
      return resident.model.start(request, (event) => {
        if (event.finishReason !== '' && !ended) {
          ended = true;
          resident.busy -= 1;
          resident.lastUsedMs = performance.now();
        }
        emit(event);
      });
    } catch (error) {
      resident.busy -= 1;
      throw error;
    }
  }

  private evicted(resident: ResidentModel, reason: string): void {
    for (const key of resident.versions.keys()) {
      const entry = this.models.get(key);
      if (!entry) continue;
      this.models.delete(key);
      this.forgetMetrics(entry.loaded);
      this.logger.info({ model: key, reason }, 'model evicted');
      this.emit({ kind: 'unloaded', modelName: entry.loaded.modelName, version: entry.loaded.version, reason });
    }
  }

  execute(batch: ExecuteBatch): Promise<BatchResult> {
    return inSpan(tracer, 'execute_batch', {
      parent: contextFromCarrier(batch.traceContext),
      attributes: { 'nexus.model': modelKeyOf(batch), 'nexus.batch.rows': batch.inputs[0]?.shape[0] ?? 0 },
    }, (span) => this.executeInSpan(batch, span));
  }

  private async executeInSpan(batch: ExecuteBatch, span: Span): Promise<BatchResult> {
    const started = process.hrtime.bigint();
    this.checkDevice();
    const key = modelKeyOf(batch);
    const entry = this.models.get(key);
    if (!entry) throw new NexusError(ErrorCode.NOT_FOUND, `model ${key} is not loaded on this executor; load it first`);
    if (batch.deadlineUnixMs > 0 && Date.now() > batch.deadlineUnixMs) {
      throw new NexusError(ErrorCode.DEADLINE_EXCEEDED, 'the batch deadline passed before execution started');
    }
    const inputs = new Map(batch.inputs.map((tensor) => [tensor.name, toHostTensor(tensor)]));
    const batchSize = batch.inputs[0]?.shape[0] ?? 0;
    if (!entry.resident) await entry.ready;
    // Marked busy with no await since the check, so no eviction can come between them; a model
    // evicted (or unloaded) while this batch waited for its load is NOT_FOUND, which a router
    // answers by loading it again.
    const resident = this.models.get(key) === entry ? entry.resident : undefined;
    if (!resident || !this.residents.holds(resident)) {
      throw new NexusError(ErrorCode.NOT_FOUND, `model ${key} was unloaded from this executor before the batch ran; load it again`);
    }
    const model = onnxModelOf(resident, key);
    resident.busy += 1;
    resident.lastUsedMs = performance.now();
    let result;
    try {
      result = await model.run(inputs);
    } finally {
      resident.busy -= 1;
    }
    this.checkDevice();
    this.batchesBySize.set(batchSize, (this.batchesBySize.get(batchSize) ?? 0) + 1);
    if (result.peakBytes > entry.peakActivationBytes) {
      entry.peakActivationBytes = result.peakBytes;
      entry.peakBatchSize = batchSize;
      metrics.modelPeakActivationBytes.set({ model: batch.modelName, version: String(batch.version) }, result.peakBytes);
    }
    if (result.gpuNs !== undefined) {
      span.setAttribute('nexus.gpu_ns', result.gpuNs);
      metrics.gpuTime.observe({ model: batch.modelName }, result.gpuNs / 1e9);
      this.gpuBusy.record(performance.now(), result.gpuNs / 1e6);
    }
    return {
      batchId: batch.batchId,
      outputs: [...result.outputs].map(([name, tensor]) => toWireTensor(name, tensor)),
      errorCode: 0,
      errorMessage: '',
      batchSize,
      gpuNs: result.gpuNs ?? 0,
      executeNs: Number(process.hrtime.bigint() - started),
    };
  }

  /** Drops a version: later batches for it fail NOT_FOUND; its GPU memory is freed unless another version shares it. */
  unload(modelName: string, version: number): void {
    const key = modelKey(modelName, version);
    const entry = this.models.get(key);
    if (!entry) return;
    this.models.delete(key);
    this.forgetMetrics(entry.loaded);
    if (entry.resident) this.residents.release(entry.resident, key);
    this.logger.info({ model: key }, 'model unloaded');
  }

  private forgetMetrics(loaded: LoadedModel): void {
    metrics.modelWeightBytes.remove({ model: loaded.modelName, version: String(loaded.version) });
    metrics.modelPeakActivationBytes.remove({ model: loaded.modelName, version: String(loaded.version) });
  }

  stats(): GetStatsResponse {
    return {
      batchesBySize: Object.fromEntries(this.batchesBySize),
      requestsFailed: this.requestsFailed,
      models: [...this.models.values()].filter((entry) => entry.resident).map((entry) => ({
        model: entry.loaded, peakActivationBytes: entry.peakActivationBytes, peakBatchSize: entry.peakBatchSize,
      })),
      pipelinesBuilt: pipelineCacheFor(this.gpu.device).builds,
      residentModels: new Set([...this.models.values()].map((entry) => entry.resident?.key).filter(Boolean)).size,
      gpuBytesUsed: this.residents.usedBytes,
    };
  }
}

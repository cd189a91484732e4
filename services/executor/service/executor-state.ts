/**
 * The executor's state without its transport: the models it has loaded (shared by every router
 * stream, one load per version however many ask), running batches on them, and the counters
 * GetStats reports. A batch failure fails only that batch.
 */
import { SpanKind, type Span } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import type { BatchResult, ExecuteBatch, GetStatsResponse, LoadedModel, LoadModel, Tensor } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { BYTES_PER_ELEMENT, bytesOf, elementCount, isDatatype, viewAs, type HostTensor } from '../../onnx/index.ts';
import { ErrorCode, NexusError, failedPrecondition, invalidArgument, modelKey, modelKeyOf, PRECISION_TAG } from '../../domain/index.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { metrics } from '../../telemetry/metrics.ts';
import { contextFromCarrier, inSpan, tracerFor } from '../../telemetry/tracing.ts';
import type { GpuContext } from '../gpu/index.ts';
import { compileOnnxModel, type CompiledModel, type Precision } from '../runtime/index.ts';
import type { ArtifactCache } from './artifact-cache.ts';

const tracer = tracerFor('executor');

function toHostTensor(tensor: Tensor): HostTensor {
  if (!isDatatype(tensor.datatype)) throw invalidArgument(`input '${tensor.name}' has unknown datatype '${tensor.datatype}'`);
  return { datatype: tensor.datatype, shape: tensor.shape, data: viewAs(tensor.datatype, tensor.data) };
}

function toWireTensor(name: string, tensor: HostTensor): Tensor {
  return { name, datatype: tensor.datatype, shape: tensor.shape, data: bytesOf(tensor.data) };
}

/**
 * Runs a model once on zeros (batch 1 where the batch dimension is variable), so its pipelines
 * are compiled and its buffers allocated before it is reported ready. Models with inputs whose
 * size is not known beyond the batch dimension are left cold.
 */
async function warmUp(model: CompiledModel): Promise<void> {
  const inputs = new Map<string, HostTensor>();
  for (const input of model.signature.inputs) {
    const shape = input.shape.map((dim, axis) => (dim === -1 && axis === 0 ? 1 : dim));
    if (shape.some((dim) => dim < 0) || input.datatype === 'BYTES') return;
    const bytes = new Uint8Array(elementCount(shape) * BYTES_PER_ELEMENT[input.datatype]);
    inputs.set(input.name, { datatype: input.datatype, shape, data: viewAs(input.datatype, bytes) });
  }
  await model.run(inputs);
}

/** The precision a version's tags ask for (undefined: the executor's default). */
export function precisionOf(version: ModelVersion): Precision | undefined {
  const wanted = version.tags[PRECISION_TAG];
  if (wanted === undefined || wanted === '') return undefined;
  if (wanted === 'fp16' || wanted === 'fp32') return wanted;
  throw failedPrecondition(`model ${modelKeyOf(version)} has tag ${PRECISION_TAG}='${wanted}'; use fp16 or fp32`);
}

interface LoadedEntry {
  /** Filled in (precision, steps, weights) once the model has compiled. */
  readonly loaded: LoadedModel;
  readonly model: Promise<CompiledModel>;
  peakActivationBytes: number;
  peakBatchSize: number;
}

export class ExecutorState {
  readonly id = randomUUID();
  readonly models = new Map<string, LoadedEntry>();
  readonly batchesBySize = new Map<number, number>();
  requestsFailed = 0;
  private readonly gpu: GpuContext;
  private readonly artifacts: ArtifactCache;
  private readonly logger: Logger;

  constructor(gpu: GpuContext, artifacts: ArtifactCache, logger: Logger) {
    this.gpu = gpu;
    this.artifacts = artifacts;
    this.logger = logger;
  }

  /** Loads a version once (concurrent asks share the work); a failed load can be retried. */
  load(request: LoadModel): Promise<CompiledModel> {
    const version = request.version;
    if (!version) throw invalidArgument('load_model.version is required');
    const key = modelKeyOf(version);
    const existing = this.models.get(key);
    if (existing) return existing.model;
    const started = performance.now();
    const loaded: LoadedModel = { modelName: version.modelName, version: version.version, sha256: version.sha256, precision: '', stepCount: 0, weightBytes: 0 };
    const model = inSpan(tracer, 'load_model', {
      parent: contextFromCarrier(request.traceContext),
      attributes: { 'nexus.model': key, 'nexus.sha256': version.sha256 },
    }, async () => {
      const bytes = await inSpan(tracer, 'download_artifact', { kind: SpanKind.CLIENT }, () => this.artifacts.fetch(version.sha256));
      const compiled = await inSpan(tracer, 'compile', {}, () => compileOnnxModel(this.gpu, bytes, { precision: precisionOf(version) }));
      Object.assign(loaded, { precision: compiled.precision, stepCount: compiled.stepCount, weightBytes: compiled.weightBytes });
      metrics.modelWeightBytes.set({ model: version.modelName, version: String(version.version) }, compiled.weightBytes);
      await inSpan(tracer, 'warm_up', {}, () => warmUp(compiled));
      const seconds = (performance.now() - started) / 1000;
      metrics.modelLoadTime.observe({ model: version.modelName }, seconds);
      this.logger.info({ model: key, sha256: version.sha256, ms: Math.round(seconds * 1000) }, 'model loaded');
      return compiled;
    });
    this.models.set(key, { loaded, model, peakActivationBytes: 0, peakBatchSize: 0 });
    model.catch(() => this.models.delete(key));
    return model;
  }

  execute(batch: ExecuteBatch): Promise<BatchResult> {
    return inSpan(tracer, 'execute_batch', {
      parent: contextFromCarrier(batch.traceContext),
      attributes: { 'nexus.model': modelKeyOf(batch), 'nexus.batch.rows': batch.inputs[0]?.shape[0] ?? 0 },
    }, (span) => this.executeInSpan(batch, span));
  }

  private async executeInSpan(batch: ExecuteBatch, span: Span): Promise<BatchResult> {
    const started = process.hrtime.bigint();
    const key = modelKeyOf(batch);
    const entry = this.models.get(key);
    if (!entry) throw new NexusError(ErrorCode.FAILED_PRECONDITION, `model ${key} is not loaded on this executor`);
    if (batch.deadlineUnixMs > 0 && Date.now() > batch.deadlineUnixMs) {
      throw new NexusError(ErrorCode.DEADLINE_EXCEEDED, 'the batch deadline passed before execution started');
    }
    const model = await entry.model;
    const inputs = new Map(batch.inputs.map((tensor) => [tensor.name, toHostTensor(tensor)]));
    const batchSize = batch.inputs[0]?.shape[0] ?? 0;
    const result = await model.run(inputs);
    this.batchesBySize.set(batchSize, (this.batchesBySize.get(batchSize) ?? 0) + 1);
    if (result.peakBytes > entry.peakActivationBytes) {
      entry.peakActivationBytes = result.peakBytes;
      entry.peakBatchSize = batchSize;
      metrics.modelPeakActivationBytes.set({ model: batch.modelName, version: String(batch.version) }, result.peakBytes);
    }
    if (result.gpuNs !== undefined) {
      span.setAttribute('nexus.gpu_ns', result.gpuNs);
      metrics.gpuTime.observe({ model: batch.modelName }, result.gpuNs / 1e9);
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

  /** Drops a version: later batches for it fail FAILED_PRECONDITION; its GPU memory is freed. */
  unload(modelName: string, version: number): void {
    const key = modelKey(modelName, version);
    const entry = this.models.get(key);
    if (!entry) return;
    this.models.delete(key);
    metrics.modelWeightBytes.remove({ model: modelName, version: String(version) });
    metrics.modelPeakActivationBytes.remove({ model: modelName, version: String(version) });
    entry.model.then((model) => model.dispose(), () => {});
    this.logger.info({ model: key }, 'model unloaded');
  }

  stats(): GetStatsResponse {
    return {
      batchesBySize: Object.fromEntries(this.batchesBySize),
      requestsFailed: this.requestsFailed,
      models: [...this.models.values()].map((entry) => ({
        model: entry.loaded, peakActivationBytes: entry.peakActivationBytes, peakBatchSize: entry.peakBatchSize,
      })),
    };
  }
}


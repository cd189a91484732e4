/**
 * Runs ONNX models on the GPU with the executor's own WGSL kernels.
 *
 * Compile once: decode, check every operator, fold constants and fuse, build the pipelines.
 * Then per batch: find (or build) the plan for these input shapes, write the inputs, encode
 * every dispatch and every output copy in one command encoder, submit once, map the read-back
 * buffer once. Weights are uploaded when a plan first needs them (the executor's warm-up run).
 */
import { elementCount } from '../../onnx/datatypes.ts';
import { decodeModel, type HostTensor, type ModelSignature } from '../../onnx/model.ts';
import { failedPrecondition, invalidArgument } from '../../domain/errors.ts';
import { bufferBytes, compileGraph, planLayout, resolveBudgets, type CompileBudgets, type CompiledGraph, type DeviceStep } from '../compiler/index.ts';
import { pipelineCacheFor, type CachedPipeline, type GpuContext } from '../gpu/index.ts';
import type { GemmAlgorithm } from '../kernels/index.ts';
import { STORAGE_BYTES, storageOf, toStorageBytes, typedArrayNameOf, type Precision } from '../tensor/index.ts';
import { checkCompileInWorker } from './compile-isolation.ts';
import { checkDeclaredSizes } from '../compiler/compile-budgets.ts';
import { directoryExternalData, resolveExternalData } from '../compiler/external-data.ts';
import { ModelProto } from '../../protocol/generated/onnx/onnx.ts';
import {
  checkInputBindingSize, createExecutionPlan, planInputs, runExecutionPlan, TIMESTAMP_BYTES, type ExecutionPlan, type PlanResources,
} from './execution-plan.ts';
import { LruCache } from './plan-cache.ts';

/** Distinct input-shape sets whose plans (buffers + bind groups) are kept per model. */
export const PLAN_CACHE_CAPACITY = 8;

export interface CompileOptions {
  /**
   * "fp32" (safe mode): floats stored and computed in f32. "fp16" (fast mode): floats stored in
   * f16 (arithmetic still accumulates in f32), when the device has shader-f16; without it the
   * model runs in fp32. Default: the NEXUS_PRECISION environment variable, else "fp32".
   */
  precision?: Precision;
  /**
   * The GEMM / convolution algorithm: "simd" for CPU implementations of WebGPU (lavapipe),
   * "tiled" for GPUs. Default: NEXUS_GEMM, else "simd" on a software adapter with subgroups.
   */
  gemmAlgorithm?: GemmAlgorithm;
  /**
   * What compiling the model may cost: folding bytes, nodes, weight bytes, tensor elements, the
   * isolated compile's heap and time (compiler/compile-budgets.ts, docs/executor.md "Budgets").
   * Each one given replaces its default; the service fills them from its environment.
   * Default: DEFAULT_COMPILE_BUDGETS.
   */
  budgets?: Partial<CompileBudgets>;
  /**
   * Compile the model first in a worker thread with a heap of budgets.compileHeapMb, and only
   * then on this thread, so an untrusted model that makes the compiler run away kills only the
   * worker (the load fails FAILED_PRECONDITION). Costs one worker start and a second CPU
   * compile per load, never per batch. Default true; tests of trusted models turn it off.
   */
  isolate?: boolean;
  /**
   * The directory of a model whose tensors use ONNX external data (compiler/external-data.ts):
   * each one is read from its file there, confined to the directory, after the declared sizes
   * have passed the weight budget. Without it a model with external data is INVALID_ARGUMENT.
   */
  modelDirectory?: string;
}

export interface CompiledModel {
  readonly signature: ModelSignature;
  /** The precision the model actually runs in (fp16 falls back to fp32 without shader-f16). */
  readonly precision: Precision;
  /** Bytes of constants (weights) the model may upload to the GPU. */
  readonly weightBytes: number;
  /**
   * What fusion merged away: "BatchNormalization 'bn_1' into Conv 'conv_1'" (folded into the
   * weights), "Relu 'relu_3' into Conv 'conv_2'", ...
   */
  readonly fused: readonly string[];
  /** GPU dispatches one batch runs (after fusion). */
  readonly stepCount: number;
  /**
   * What each of those GPU steps computes, in run order: "Conv 'conv_2' + Add 'add_3' + Relu
   * 'relu_4'" for a fused step, "Softmax 'softmax'" for one node.
   */
  readonly stepLabels: readonly string[];
  /**
   * Runs one batch. Inputs by name (FP32 in a Float32Array, INT64 in a BigInt64Array, ... as the
   * signature says), each matching the signature's rank and fixed dims. Concurrent calls are
   * queued and run one at a time. Rejects with INVALID_ARGUMENT for bad inputs,
   * FAILED_PRECONDITION after dispose() or when the batch does not fit the device.
   */
  run(inputs: Map<string, HostTensor>): Promise<RunResult>;
  /**
   * The activation bytes (RunResult.peakBytes) a batch of these input shapes would take, from its
   * plan layout, without touching the device; throws as run would for shapes it refuses.
   */
  activationBytesFor(inputShapes: ReadonlyMap<string, readonly number[]>): number;
  /** Frees the model's GPU memory once queued runs have finished; later runs reject. */
  dispose(): void;
}

export interface RunResult {
  /** Outputs by name, in signature order, in their graph datatypes. */
  outputs: Map<string, HostTensor>;
  /** GPU time of the batch's compute pass in nanoseconds; undefined without timestamp-query. */
  gpuNs: number | undefined;
  /**
   * Bytes of GPU memory the batch's activations take: inputs and intermediates (buffers shared
   * by tensors whose lifetimes do not overlap), weights excluded.
   */
  peakBytes: number;
  /**
   * Read-backs the batch made before its outputs: one per point where later shapes depend on
   * values computed on the GPU (Tile's repeats, NonZero's count, ...), each one more submit and
   * wait; 0 for most models.
   */
  readbacks?: number;
}

/** The precision a model asks for: the option, else NEXUS_PRECISION, else fp32. */
export function requestedPrecision(option: Precision | undefined): Precision {
  const value = option ?? process.env.NEXUS_PRECISION ?? 'fp32';
  if (value !== 'fp32' && value !== 'fp16') throw invalidArgument(`precision '${value}' is not one of 'fp32', 'fp16'`);
  return value;
}

/** The GEMM algorithm for a device: the option, else NEXUS_GEMM, else by the adapter's kind. */
export function gemmAlgorithmFor(gpu: GpuContext, option: GemmAlgorithm | undefined): GemmAlgorithm {
  const value = option ?? process.env.NEXUS_GEMM;
  if (value !== undefined && value !== 'simd' && value !== 'tiled') throw invalidArgument(`gemm algorithm '${value}' is not one of 'simd', 'tiled'`);
  const simdPossible = gpu.hasSubgroups && gpu.subgroupMinSize >= 8;
  if (value === 'simd') return simdPossible ? 'simd' : 'tiled';
  if (value === 'tiled') return 'tiled';
  return gpu.isSoftware && simdPossible ? 'simd' : 'tiled';
}

/**
 * Compiles an ONNX model for `gpu`. Rejects with INVALID_ARGUMENT when the bytes are not an
 * ONNX model (or declare a shape that is not one), with FAILED_PRECONDITION ("operator 'X'
 * (node 'n') is not supported", ...) when the model uses anything the executor cannot run or
 * its isolated compile failed, and with RESOURCE_EXHAUSTED when it is over a budget.
 */
export async function compileOnnxModel(gpu: GpuContext, onnxBytes: Uint8Array, options: CompileOptions = {}): Promise<CompiledModel> {
  const wanted = requestedPrecision(options.precision);
  const precision: Precision = wanted === 'fp16' && !gpu.hasF16 ? 'fp32' : wanted;
  const budgets = resolveBudgets(options.budgets);
  const gemmAlgorithm = gemmAlgorithmFor(gpu, options.gemmAlgorithm);
  // The worker reads a directory model's weight files itself (so weights past protobuf's 2 GiB
  // are checked too), and the weights are read here only once it has found the model sound.
  if (options.isolate ?? true) await checkCompileInWorker({ bytes: onnxBytes, modelDirectory: options.modelDirectory, precision, gemmAlgorithm, budgets });
  const decoded = options.modelDirectory === undefined ? undefined : withExternalData(onnxBytes, options.modelDirectory, budgets);
  const graph = compileGraph(decoded ?? decodeModel(onnxBytes), { precision, traits: { gemmAlgorithm }, budgets });
  const { device } = gpu;
  const label = `model '${graph.name || 'unnamed'}'`;

  const pipelineCache = pipelineCacheFor(device);
  const pipelines = new Map<DeviceStep, CachedPipeline[]>();
  await Promise.all(graph.steps.map(async (step) => {
    if (step.kind !== 'device' || step.operator.kind !== 'kernel') return;
    pipelines.set(step, await Promise.all(step.operator.variants.map((variant) => pipelineCache.get(variant))));
  }));

  const constantBuffers = new Map<string, GPUBuffer>();
  const placeholder = device.createBuffer({ label: `${label} placeholder`, size: 16, usage: GPUBufferUsage.STORAGE });
  const timer = gpu.hasTimestamps ? createTimer(device, label) : undefined;
  const resources: PlanResources = {
    device, label, graph, pipelines, placeholder, timestamps: Boolean(timer),
    constantBuffer: (name) => {
      let buffer = constantBuffers.get(name);
      if (!buffer) {
        buffer = uploadConstant(device, label, graph, name);
        constantBuffers.set(name, buffer);
      }
      return buffer;
    },
  };
  return new GpuModel(resources, timer, () => {
    for (const buffer of constantBuffers.values()) buffer.destroy();
    placeholder.destroy();
    timer?.querySet.destroy();
    timer?.resolveBuffer.destroy();
  });
}

/** The model with its external tensors read from `directory`, refused before any read if over the weight budget. */
function withExternalData(onnxBytes: Uint8Array, directory: string, budgets: CompileBudgets): ModelProto {
  const model = decodeModel(onnxBytes);
  checkDeclaredSizes(model, budgets);
  return resolveExternalData(model, directoryExternalData(directory));
}

/** One constant on the GPU, in its storage type. */
function uploadConstant(device: GPUDevice, label: string, graph: CompiledGraph, name: string): GPUBuffer {
  const tensor = graph.constants.get(name)!;
  const bytes = toStorageBytes(tensor, storageOf(tensor.datatype, graph.precision), name);
  if (bytes.byteLength > device.limits.maxStorageBufferBindingSize) {
    throw failedPrecondition(
      `constant '${name}' [${tensor.shape.join(', ')}] has ${bytes.byteLength} bytes, more than this device binds ` +
      `(maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize})`,
    );
  }
  const buffer = device.createBuffer({
    label: `${label} constant '${name}'`, size: bufferBytes(bytes.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true,
  });
  new Uint8Array(buffer.getMappedRange()).set(bytes);
  buffer.unmap();
  return buffer;
}

/** Two timestamps around the compute pass, resolved into a buffer the read-back copies from. */
interface Timer {
  querySet: GPUQuerySet;
  resolveBuffer: GPUBuffer;
}

function createTimer(device: GPUDevice, label: string): Timer {
  return {
    querySet: device.createQuerySet({ label: `${label} timestamps`, type: 'timestamp', count: 2 }),
    resolveBuffer: device.createBuffer({
      label: `${label} timestamps`, size: TIMESTAMP_BYTES, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    }),
  };
}

class GpuModel implements CompiledModel {
  readonly signature: ModelSignature;
  readonly precision: Precision;
  readonly weightBytes: number;
  readonly fused: readonly string[];
  readonly stepCount: number;
  readonly stepLabels: readonly string[];
  private readonly resources: PlanResources;
  private readonly timer: Timer | undefined;
  private readonly releaseModel: () => void;
  private readonly plans = new LruCache<ExecutionPlan>(PLAN_CACHE_CAPACITY, (plan) => plan.destroy());
  /** Settles when the last queued run has finished; runs chain onto it one at a time. */
  private queueTail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(resources: PlanResources, timer: Timer | undefined, releaseModel: () => void) {
    const { graph } = resources;
    this.signature = graph.signature;
    this.precision = graph.precision;
    this.fused = graph.fused;
    this.stepLabels = graph.steps
      .filter((step): step is DeviceStep => step.kind === 'device' && step.operator.kind === 'kernel')
      .map((step) => step.label);
    this.stepCount = this.stepLabels.length;
    // In their GPU storage type: fp16 mode halves float weights, INT64 constants are narrowed to i32.
    this.weightBytes = [...graph.constants.values()]
      .reduce((total, tensor) => total + elementCount(tensor.shape) * STORAGE_BYTES[storageOf(tensor.datatype, graph.precision)], 0);
    this.resources = resources;
    this.timer = timer;
    this.releaseModel = releaseModel;
  }

  run(inputs: Map<string, HostTensor>): Promise<RunResult> {
    if (this.disposed) return Promise.reject(failedPrecondition(`${this.resources.label} is disposed`));
    // One run at a time: plans own their buffers, so two runs of one shape must not overlap.
    const result = this.queueTail.then(() => this.runNow(inputs));
    this.queueTail = result.catch(() => undefined);
    return result;
  }

  activationBytesFor(inputShapes: ReadonlyMap<string, readonly number[]>): number {
    return planLayout(this.resources.graph, inputShapes, this.resources.device.limits).peakBytes;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    void this.queueTail.then(() => {
      this.plans.clear();
      this.releaseModel();
    });
  }

  private async runNow(inputs: Map<string, HostTensor>): Promise<RunResult> {
    const shapes = this.checkInputs(inputs);
    const { key, values } = planInputs(this.resources.graph, inputs, shapes);
    let plan = this.plans.get(key);
    if (!plan) {
      plan = await createExecutionPlan(this.resources, shapes, values);
      this.plans.set(key, plan);
    }
    return runExecutionPlan(this.resources, plan, inputs, this.timer);
  }

  /** Input shapes in signature order; throws INVALID_ARGUMENT naming the first bad input. */
  private checkInputs(inputs: Map<string, HostTensor>): Map<string, number[]> {
    const { inputs: specs } = this.signature;
    for (const name of inputs.keys()) {
      if (!specs.some((spec) => spec.name === name)) {
        throw invalidArgument(`unknown input '${name}'; the model takes ${specs.map((spec) => `'${spec.name}'`).join(', ')}`);
      }
    }
    const shapes = new Map<string, number[]>();
    for (const spec of specs) {
      const tensor = inputs.get(spec.name);
      if (!tensor) throw invalidArgument(`missing input '${spec.name}'`);
      const { shape } = tensor;
      const arrayName = typedArrayNameOf(spec.datatype);
      if (tensor.datatype !== spec.datatype || tensor.data.constructor.name !== arrayName) {
        throw invalidArgument(`input '${spec.name}' is ${tensor.datatype} (${tensor.data.constructor.name}); expected ${spec.datatype} in a ${arrayName}`);
      }
      const expected = `[${spec.shape.map((dim) => (dim < 0 ? '?' : dim)).join(', ')}]`;
      if (shape.length !== spec.shape.length || shape.some((dim, axis) => !Number.isInteger(dim) || dim < 0 || (spec.shape[axis] >= 0 && dim !== spec.shape[axis]))) {
        throw invalidArgument(`input '${spec.name}' has shape [${shape.join(', ')}], expected ${expected}`);
      }
      if (tensor.data.length !== elementCount(shape)) {
        throw invalidArgument(`input '${spec.name}' has ${tensor.data.length} elements, its shape [${shape.join(', ')}] needs ${elementCount(shape)}`);
      }
      checkInputBindingSize(this.resources.device, spec.name, shape, STORAGE_BYTES[storageOf(spec.datatype, this.precision)]);
      shapes.set(spec.name, [...shape]);
    }
    return shapes;
  }
}

/**
 * Runs ONNX models on the GPU with the executor's own WGSL kernels.
 *
 * Compile once: decode, check every operator, order the nodes, upload the weights, build the
 * pipelines. Then per batch: find (or build) the plan for these input shapes, write the inputs,
 * encode every dispatch and every output copy in one command encoder, submit once, map the
 * read-back buffer once.
 */
import { elementCount } from '../../onnx/datatypes.ts';
import { decodeModel, type HostTensor, type ModelSignature } from '../../onnx/model.ts';
import { ErrorCode, failedPrecondition, invalidArgument, NexusError } from '../../rpc/errors.ts';
import type { GpuContext } from '../gpu/device.ts';
import { pipelineCacheFor, type CachedPipeline } from '../gpu/pipeline-cache.ts';
import { compileGraph, type CompiledGraph, type Step } from './graph.ts';
import { LruCache } from './plan-cache.ts';
import { checkInputBindingSize, createExecutionPlan, TIMESTAMP_BYTES, type ExecutionPlan, type PlanResources } from './plan.ts';

/** Distinct input-shape sets whose plans (buffers + bind groups) are kept per model. */
export const PLAN_CACHE_CAPACITY = 8;

export interface CompiledModel {
  readonly signature: ModelSignature;
  /**
   * Runs one batch. FP32 inputs by name, each matching the signature's rank and fixed dims.
   * Concurrent calls are queued and run one at a time. Rejects with INVALID_ARGUMENT for bad
   * inputs, FAILED_PRECONDITION after dispose() or when the batch does not fit the device.
   */
  run(inputs: Map<string, HostTensor>): Promise<RunResult>;
  /** Frees the model's GPU memory once queued runs have finished; later runs reject. */
  dispose(): void;
}

export interface RunResult {
  /** FP32 outputs by name, in signature order. */
  outputs: Map<string, HostTensor>;
  /** GPU time of the batch's compute pass in nanoseconds; undefined without timestamp-query. */
  gpuNs: number | undefined;
}

/**
 * Compiles an ONNX model for `gpu`. Rejects with INVALID_ARGUMENT when the bytes are not an
 * ONNX model, and with FAILED_PRECONDITION ("operator 'X' (node 'n') is not supported", ...)
 * when the model uses anything the executor cannot run.
 */
export async function compileOnnxModel(gpu: GpuContext, onnxBytes: Uint8Array): Promise<CompiledModel> {
  const graph = compileGraph(decodeModel(onnxBytes));
  const { device } = gpu;
  const label = `model '${graph.name || 'unnamed'}'`;

  const pipelineCache = pipelineCacheFor(device);
  const pipelines = new Map<Step, CachedPipeline[]>();
  await Promise.all(graph.steps.map(async (step) => {
    if (step.operator.kind !== 'kernel') return;
    pipelines.set(step, await Promise.all(step.operator.variants.map((variant) => pipelineCache.get(variant))));
  }));

  const constantBuffers = uploadConstants(device, label, graph);
  const placeholder = device.createBuffer({ label: `${label} placeholder`, size: 16, usage: GPUBufferUsage.STORAGE });
  const timer = gpu.hasTimestamps ? createTimer(device, label) : undefined;
  const resources: PlanResources = { device, label, graph, constantBuffers, pipelines, placeholder, timestamps: Boolean(timer) };
  return new GpuModel(resources, timer, () => {
    for (const buffer of constantBuffers.values()) buffer.destroy();
    placeholder.destroy();
    timer?.querySet.destroy();
    timer?.resolveBuffer.destroy();
  });
}

/** The FP32 constants that some step reads or that are graph outputs, on the GPU. */
function uploadConstants(device: GPUDevice, label: string, graph: CompiledGraph): Map<string, GPUBuffer> {
  const used = new Set<string>(graph.outputs);
  for (const step of graph.steps) for (const input of step.inputs) if (input) used.add(input);
  const buffers = new Map<string, GPUBuffer>();
  for (const name of used) {
    const tensor = graph.constants.get(name);
    if (!tensor) continue;
    const bytes = tensor.data.byteLength;
    if (bytes > device.limits.maxStorageBufferBindingSize) {
      for (const buffer of buffers.values()) buffer.destroy();
      throw failedPrecondition(
        `constant '${name}' [${tensor.shape.join(', ')}] has ${bytes} bytes, more than this device binds ` +
        `(maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize})`,
      );
    }
    const buffer = device.createBuffer({
      label: `${label} constant '${name}'`,
      size: Math.max(16, Math.ceil(bytes / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Float32Array(buffer.getMappedRange()).set(tensor.data as Float32Array);
    buffer.unmap();
    buffers.set(name, buffer);
  }
  return buffers;
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
  private readonly resources: PlanResources;
  private readonly timer: Timer | undefined;
  private readonly releaseModel: () => void;
  private readonly plans = new LruCache<ExecutionPlan>(PLAN_CACHE_CAPACITY, (plan) => plan.destroy());
  /** Settles when the last queued run has finished; runs chain onto it one at a time. */
  private queueTail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(resources: PlanResources, timer: Timer | undefined, releaseModel: () => void) {
    this.signature = resources.graph.signature;
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

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    void this.queueTail.then(() => {
      this.plans.clear();
      this.releaseModel();
    });
  }

  private async runNow(inputs: Map<string, HostTensor>): Promise<RunResult> {
    const { device } = this.resources;
    const shapes = this.checkInputs(inputs);
    const key = [...shapes.values()].map((shape) => shape.join('x')).join('|');
    let plan = this.plans.get(key);
    if (!plan) {
      plan = await createExecutionPlan(this.resources, shapes);
      this.plans.set(key, plan);
    }

    for (const input of plan.inputs) {
      const data = inputs.get(input.name)!.data as Float32Array;
      if (data.byteLength > 0) device.queue.writeBuffer(input.buffer, 0, data);
    }
    // Encoding mistakes surface at submit as validation errors; this scope holds only this batch.
    device.pushErrorScope('validation');
    device.queue.submit([this.encode(plan)]);
    const validation = device.popErrorScope();
    const mapping = plan.readback.mapAsync(GPUMapMode.READ);
    const [validationError, mapped] = await Promise.allSettled([validation, mapping]);
    const problem = validationError.status === 'fulfilled' ? validationError.value : validationError.reason;
    if (problem || mapped.status === 'rejected') {
      if (mapped.status === 'fulfilled') plan.readback.unmap();
      const reason = problem ?? (mapped as PromiseRejectedResult).reason;
      throw new NexusError(ErrorCode.INTERNAL, `${this.resources.label}: GPU batch failed: ${(reason as Error).message}`, { cause: reason });
    }

    const bytes = plan.readback.getMappedRange();
    const outputs = new Map<string, HostTensor>();
    for (const output of plan.outputs) {
      // slice() copies: the mapped range is detached on unmap.
      const data = new Float32Array(bytes.slice(output.readbackOffset, output.readbackOffset + output.byteLength));
      outputs.set(output.name, { datatype: 'FP32', shape: [...output.shape], data });
    }
    let gpuNs: number | undefined;
    if (this.timer) {
      const [begin, end] = new BigUint64Array(bytes, 0, 2);
      gpuNs = end >= begin && begin > 0n ? Number(end - begin) : undefined;
    }
    plan.readback.unmap();
    return { outputs, gpuNs };
  }

  /** The batch's one command buffer: every dispatch in one timed pass, then every read-back copy. */
  private encode(plan: ExecutionPlan): GPUCommandBuffer {
    const { device, label } = this.resources;
    const encoder = device.createCommandEncoder({ label });
    const passDescriptor: GPUComputePassDescriptor = { label };
    if (this.timer) {
      passDescriptor.timestampWrites = { querySet: this.timer.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 };
    }
    const pass = encoder.beginComputePass(passDescriptor);
    for (const dispatch of plan.dispatches) {
      pass.setPipeline(dispatch.pipeline);
      pass.setBindGroup(0, dispatch.bindGroup);
      pass.dispatchWorkgroups(...dispatch.workgroups);
    }
    pass.end();
    if (this.timer) {
      encoder.resolveQuerySet(this.timer.querySet, 0, 2, this.timer.resolveBuffer, 0);
      encoder.copyBufferToBuffer(this.timer.resolveBuffer, 0, plan.readback, 0, TIMESTAMP_BYTES);
    }
    for (const output of plan.outputs) {
      if (output.byteLength > 0) encoder.copyBufferToBuffer(output.source, 0, plan.readback, output.readbackOffset, output.byteLength);
    }
    return encoder.finish();
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
      if (tensor.datatype !== 'FP32' || !(tensor.data instanceof Float32Array)) {
        throw invalidArgument(`input '${spec.name}' is ${tensor.datatype} (${tensor.data.constructor.name}); expected FP32 in a Float32Array`);
      }
      const expected = `[${spec.shape.map((dim) => (dim < 0 ? '?' : dim)).join(', ')}]`;
      if (shape.length !== spec.shape.length || shape.some((dim, axis) => !Number.isInteger(dim) || dim < 0 || (spec.shape[axis] >= 0 && dim !== spec.shape[axis]))) {
        throw invalidArgument(`input '${spec.name}' has shape [${shape.join(', ')}], expected ${expected}`);
      }
      if (tensor.data.length !== elementCount(shape)) {
        throw invalidArgument(`input '${spec.name}' has ${tensor.data.length} elements, its shape [${shape.join(', ')}] needs ${elementCount(shape)}`);
      }
      checkInputBindingSize(this.resources.device, spec.name, shape);
      shapes.set(spec.name, [...shape]);
    }
    return shapes;
  }
}

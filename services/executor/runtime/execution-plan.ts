/**
 * The per-shape half of a compiled model: for one set of input shapes, every tensor's shape,
 * the host values of shape computations, the GPU buffers (intermediates shared by the memory
 * planner), the uniform blocks and bind groups of every dispatch, and where each output lands
 * in the read-back buffer. Building a plan is the expensive part of a new batch size; running
 * one only writes inputs and encodes.
 *
 * A graph whose shapes depend on values computed on the GPU (compiler/segments.ts) runs as a
 * chain of plans: the first segment's plan is submitted, the values the next segment needs are
 * read back, and the next segment's plan (built once per read-back content and kept by the plan
 * before it) binds the earlier plans' buffers. Each read-back is one more submit and map.
 */
import { createHash } from 'node:crypto';
import { elementCount, type Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { ErrorCode, failedPrecondition, NexusError } from '../../domain/errors.ts';
import {
  bindingTarget, bufferBytes, planLayout, segmentationOf, storageType, type CompiledGraph, type DeviceStep, type PlanLayout, type SegmentReadback,
} from '../compiler/index.ts';
import { expectGpuWork, type CachedPipeline } from '../gpu/index.ts';
import { fromStorageBytes, STORAGE_BYTES, toNumbers, toStorageBytes, type StorageType } from '../tensor/index.ts';
import { LruCache } from './plan-cache.ts';

/** Plans of the next segment kept per plan, by what its read-back said. */
const NEXT_PLAN_CAPACITY = 8;

/** Bytes at the start of the read-back buffer that hold the two resolved timestamps. */
export const TIMESTAMP_BYTES = 16;

/** What a plan builds on: the model's device objects that outlive any one shape. */
export interface PlanResources {
  readonly device: GPUDevice;
  readonly label: string;
  readonly graph: CompiledGraph;
  /** The pipelines of every device step, one per variant of its operator. */
  readonly pipelines: ReadonlyMap<DeviceStep, readonly CachedPipeline[]>;
  /** Bound where a kernel has a binding the node leaves empty (MatMul's bias). */
  readonly placeholder: GPUBuffer;
  /** Reserve TIMESTAMP_BYTES at the front of the read-back buffer. */
  readonly timestamps: boolean;
  /** The GPU copy of a constant, uploaded on first use and shared by every plan. */
  constantBuffer(name: string): GPUBuffer;
}

export interface PlannedDispatch {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
}

/** A graph output copied back from the GPU. */
export interface DeviceOutput {
  readonly kind: 'device';
  readonly name: string;
  readonly shape: number[];
  readonly datatype: Datatype;
  readonly storage: StorageType;
  readonly source: GPUBuffer;
  /** Bytes copied (the tensor's bytes rounded up to 4). */
  readonly byteLength: number;
  /** Where the output is copied in the read-back buffer. */
  readonly readbackOffset: number;
}

/** A graph output known on the host (a constant, or a shape computation). */
export interface HostOutput {
  readonly kind: 'host';
  readonly name: string;
  readonly tensor: HostTensor;
}

export interface PlannedInput {
  readonly name: string;
  readonly buffer: GPUBuffer;
  readonly storage: StorageType;
}

export interface ExecutionPlan {
  /** The graph inputs the run writes (the first segment's plan only). */
  readonly inputs: readonly PlannedInput[];
  readonly dispatches: readonly PlannedDispatch[];
  /** The graph outputs (the last segment's plan only). */
  readonly outputs: ReadonlyArray<DeviceOutput | HostOutput>;
  /** Before the next segment: the values and the dims (as INT32 [rank]) read back after this one. */
  readonly readValues: readonly DeviceOutput[];
  readonly readDims: readonly DeviceOutput[];
  /** MAP_READ | COPY_DST: timestamps (when measured), then every device output or read-back value. */
  readonly readback: GPUBuffer;
  readonly layout: PlanLayout;
  /** The next segment's plans, by read-back content; undefined for the last segment. */
  readonly next: LruCache<ExecutionPlan> | undefined;
  /** The buffer holding value `name` (this plan's or an earlier segment's). */
  bufferOf(name: string): GPUBuffer;
  /** Bytes of GPU memory this plan owns. */
  readonly byteSize: number;
  /** Activation memory: inputs, intermediates (shared by the memory planner) and host values. */
  readonly peakBytes: number;
  /** What the intermediates would take with one buffer each. */
  readonly unsharedBytes: number;
  destroy(): void;
}

/**
 * Builds the plan for `inputShapes` (name -> shape of every graph input) and the values of the
 * graph inputs steps read on the host (planInputs). Shape errors reject with INVALID_ARGUMENT
 * naming the node; tensors beyond the device's binding limit and out-of-memory with
 * FAILED_PRECONDITION.
 */
export function createExecutionPlan(
  resources: PlanResources, inputShapes: ReadonlyMap<string, readonly number[]>, inputValues: ReadonlyMap<string, HostTensor> = new Map(),
): Promise<ExecutionPlan> {
  return buildPlan(resources, inputShapes, planLayout(resources.graph, inputShapes, resources.device.limits, { inputValues }), undefined);
}

/** The plan of the segment after `previous`, for what its read-back said. */
function createNextPlan(resources: PlanResources, previous: ExecutionPlan, readback: Omit<SegmentReadback, 'layout'>): Promise<ExecutionPlan> {
  const layout = planLayout(resources.graph, previous.layout.inputShapes, resources.device.limits, { after: { ...readback, layout: previous.layout } });
  return buildPlan(resources, previous.layout.inputShapes, layout, previous);
}

async function buildPlan(
  resources: PlanResources, inputShapes: ReadonlyMap<string, readonly number[]>, layout: PlanLayout, previous: ExecutionPlan | undefined,
): Promise<ExecutionPlan> {
  const { device } = resources;
  const owned: GPUBuffer[] = [];
  const next = layout.final ? undefined : new LruCache<ExecutionPlan>(NEXT_PLAN_CAPACITY, (plan) => plan.destroy());
  const destroy = () => {
    next?.clear();
    for (const buffer of owned) buffer.destroy();
  };
  // Out-of-memory shows up in an error scope, not as an exception; nothing awaits in between,
  // so no other work on the device lands in this scope.
  device.pushErrorScope('out-of-memory');
  let plan: Allocated;
  let outOfMemory: Promise<GPUError | null>;
  try {
    plan = allocate(resources, layout, previous, (descriptor) => {
      const buffer = device.createBuffer(descriptor);
      owned.push(buffer);
      return buffer;
    });
  } finally {
    outOfMemory = device.popErrorScope();
  }
  const error = await outOfMemory;
  const byteSize = owned.reduce((total, buffer) => total + buffer.size, 0);
  if (error) {
    destroy();
    throw failedPrecondition(`out of GPU memory for a batch of ${describeShapes(inputShapes)} (${byteSize} bytes): ${error.message}`);
  }
  return { ...plan, layout, next, byteSize, peakBytes: layout.peakBytes, unsharedBytes: layout.unsharedBytes, destroy };
}

type Allocated = Omit<ExecutionPlan, 'byteSize' | 'destroy' | 'peakBytes' | 'unsharedBytes' | 'layout' | 'next'>;

/** Creates the plan's buffers and bind groups. */
function allocate(
  resources: PlanResources, layout: PlanLayout, previous: ExecutionPlan | undefined, createBuffer: (descriptor: GPUBufferDescriptor) => GPUBuffer,
): Allocated {
  const { device, label: modelLabel, graph } = resources;
  const intermediates = layout.bufferSizes.map((size, index) => createBuffer({
    label: `${modelLabel} intermediate ${index}`, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  }));
  // Later segments read the inputs the first segment's plan holds.
  const inputs: PlannedInput[] = previous ? [] : [...layout.inputShapes].map(([name, shape]) => {
    const storage = storageType(resources.graph, name);
    return {
      name, storage,
      buffer: createBuffer({
        label: `${modelLabel} input '${name}'`,
        size: bufferBytes(elementCount(shape) * STORAGE_BYTES[storage]),
        // COPY_SRC: a graph input may also be a graph output.
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      }),
    };
  });
  const inputBuffers = new Map(inputs.map((input) => [input.name, input.buffer]));
  const hostBuffers = new Map<string, GPUBuffer>();
  for (const name of layout.hostBound) {
    const bytes = toStorageBytes(layout.values.get(name)!, storageType(resources.graph, name), name);
    const buffer = createBuffer({
      label: `${modelLabel} host value '${name}'`, size: bufferBytes(bytes.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    if (padded.byteLength > 0) device.queue.writeBuffer(buffer, 0, padded);
    hostBuffers.set(name, buffer);
  }
  const bufferOf = (name: string): GPUBuffer => {
    const where = layout.storage.get(name);
    if (!where) throw new Error(`value '${name}' has no storage`);
    switch (where.kind) {
      case 'input': return inputBuffers.get(where.name)!;
      case 'constant': return resources.constantBuffer(where.name);
      case 'host': return hostBuffers.get(where.name)!;
      case 'intermediate': return intermediates[layout.bufferOf[where.id]];
      case 'earlier': return previous!.bufferOf(where.name);
    }
  };

  // Every dispatch's uniform block in one buffer, at the device's offset alignment; shapes are
  // fixed for the plan, so it is written once here and never per run.
  const alignment = device.limits.minUniformBufferOffsetAlignment;
  const uniformBytes = new Uint8Array(Math.max(16, layout.kernels.length * alignment));
  layout.kernels.forEach(({ kernel }, index) => uniformBytes.set(new Uint8Array(kernel.uniforms), index * alignment));
  const uniformBuffer = createBuffer({
    label: `${modelLabel} uniforms`, size: uniformBytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(uniformBuffer, 0, uniformBytes);

  const tableBuffers = new Map([...layout.tables].map(([step, tables]) => [step, tables.map((table, index) => {
    const buffer = createBuffer({ label: `${step.label} table ${index}`, size: bufferBytes(table.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    if (table.byteLength > 0) device.queue.writeBuffer(buffer, 0, table);
    return buffer;
  })]));
  const dispatches: PlannedDispatch[] = layout.kernels.map(({ step, kernel }, index) => {
    const pipeline = resources.pipelines.get(step)![kernel.variant ?? 0];
    const buffers = kernel.bindings.map((binding) => {
      const target = bindingTarget(step, binding);
      if (target === undefined) return resources.placeholder;
      if (typeof target === 'string') return bufferOf(target);
      if ('dims' in target) return intermediates[layout.bufferOf[layout.dimsIds.get(target.dims)!]];
      if ('table' in target) return tableBuffers.get(step)![target.table];
      return intermediates[layout.bufferOf[layout.scratchIds.get(step)![target.scratch]]];
    });
    const bindGroup = device.createBindGroup({
      label: step.label,
      layout: pipeline.bindGroupLayout,
      entries: [
        ...buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
        { binding: buffers.length, resource: { buffer: uniformBuffer, offset: index * alignment, size: kernel.uniforms.byteLength } },
      ],
    });
    return { label: step.label, pipeline: pipeline.pipeline, bindGroup, workgroups: kernel.workgroups };
  });

  let readbackSize = resources.timestamps ? TIMESTAMP_BYTES : 0;
  const copied = (name: string, shape: number[], datatype: Datatype, storage: StorageType, source: GPUBuffer): DeviceOutput => {
    const byteLength = Math.ceil((elementCount(shape) * STORAGE_BYTES[storage]) / 4) * 4;
    const output: DeviceOutput = { kind: 'device', name, shape, datatype, storage, source, byteLength, readbackOffset: readbackSize };
    readbackSize += byteLength;
    return output;
  };
  const outputs = !layout.final ? [] : graph.outputs.map((name): DeviceOutput | HostOutput => {
    const where = layout.storage.get(name);
    if (where?.kind === 'constant' || where?.kind === 'host') {
      return { kind: 'host', name, tensor: (where.kind === 'constant' ? graph.constants.get(name) : layout.values.get(name))! };
    }
    return copied(name, [...layout.shapes.get(name)!], graph.datatypes.get(name)!, storageType(resources.graph, name), bufferOf(name));
  });
  const readValues = layout.readValues.map((name) =>
    copied(name, [...layout.shapes.get(name)!], graph.datatypes.get(name)!, storageType(resources.graph, name), bufferOf(name)));
  const readDims = layout.readShapes.map((name) => {
    const rank = layout.shapes.get(name)!.length;
    // Every cut reads the dims of all outputs the GPU shaped before it, so they are this segment's.
    const id = layout.dimsIds.get(name);
    if (id === undefined) throw new Error(`the dims of '${name}' are not written in segment ${layout.segment}`);
    return copied(name, [rank], 'INT32', 'i32', intermediates[layout.bufferOf[id]]);
  });
  const readback = createBuffer({
    label: `${modelLabel} read-back`, size: bufferBytes(readbackSize), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  return { inputs, dispatches, outputs, readValues, readDims, readback, bufferOf };
}

/** Two timestamps around a compute pass, resolved into a buffer the read-back copies from. */
export interface PassTimer {
  readonly querySet: GPUQuerySet;
  readonly resolveBuffer: GPUBuffer;
}

/** What one run of a plan chain gives back. */
export interface PlanRun {
  readonly outputs: Map<string, HostTensor>;
  /** GPU time of every segment's compute pass together; undefined without timestamps. */
  readonly gpuNs: number | undefined;
  /** Activation bytes of every plan the run used. */
  readonly peakBytes: number;
  /** Read-backs before the last segment (0 unless the graph's shapes depend on values computed on the GPU). */
  readonly readbacks: number;
}

/** Elements up to which a value read on the host keys plans by its numbers; beyond, by a digest of its bytes. */
const LITERAL_KEY_ELEMENTS = 64;

/**
 * What a value read on the host contributes to a plan key: its shape and numbers when it is small
 * (axes, starts, repeats, K), a digest of its bytes when it is large (the boxes a
 * NonMaxSuppression reads), so keys stay short; a plan then serves only runs with those bytes.
 */
function contentKey(tensor: HostTensor): string {
  if (tensor.data.length <= LITERAL_KEY_ELEMENTS) return `[${tensor.shape.join('x')}]${toNumbers(tensor).join(',')}`;
  const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  return `[${tensor.shape.join('x')}]#${createHash('sha256').update(bytes).digest('base64')}`;
}

/**
 * The plan key and the host-read input values of a request: input shapes, plus the values of
 * the graph inputs that steps read on the host (Reshape's shape, Tile's repeats, ... given as
 * graph inputs), since those decide shapes too.
 */
export function planInputs(graph: CompiledGraph, inputs: ReadonlyMap<string, HostTensor>, shapes: ReadonlyMap<string, readonly number[]>) {
  const values = new Map<string, HostTensor>();
  for (const name of segmentationOf(graph).hostReadInputs) values.set(name, inputs.get(name)!);
  const key = [...shapes.values()].map((shape) => shape.join('x')).join('|') + [...values].map(([name, tensor]) => `|${name}=${contentKey(tensor)}`).join('');
  return { key, values };
}

/**
 * Runs `root` (the first segment's plan) on `inputs`, then every later segment: after each
 * segment but the last, the values and dims later steps need are read back and the next plan is
 * found (or built) for them. Rejects INTERNAL when the GPU rejects a batch.
 */
export async function runExecutionPlan(
  resources: PlanResources, root: ExecutionPlan, inputs: ReadonlyMap<string, HostTensor>, timer: PassTimer | undefined,
): Promise<PlanRun> {
  const { device } = resources;
  for (const input of root.inputs) {
    const bytes = toStorageBytes(inputs.get(input.name)!, input.storage, input.name);
    if (bytes.byteLength === 0) continue;
    // writeBuffer takes whole 4-byte words.
    const padded = bytes.byteLength % 4 === 0 ? bytes : (() => { const copy = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4); copy.set(bytes); return copy; })();
    device.queue.writeBuffer(input.buffer, 0, padded);
  }
  let plan = root;
  let gpuNs: number | undefined = 0;
  let peakBytes = 0;
  let readbacks = 0;
  for (;;) {
    const { bytes, passNs } = await submit(resources, plan, timer);
    peakBytes += plan.peakBytes;
    gpuNs = gpuNs !== undefined && passNs !== undefined ? gpuNs + passNs : undefined;
    // fromStorageBytes copies out of the mapped range, which is detached on unmap.
    const read = (output: DeviceOutput) => fromStorageBytes(bytes, output.readbackOffset, output.storage, output.datatype, output.shape);
    if (plan.layout.final) {
      const outputs = new Map<string, HostTensor>();
      for (const output of plan.outputs) {
        outputs.set(output.name, output.kind === 'host' ? { ...output.tensor, shape: [...output.tensor.shape] } : read(output));
      }
      plan.readback.unmap();
      return { outputs, gpuNs, peakBytes, readbacks };
    }
    const values = new Map(plan.readValues.map((output) => [output.name, read(output)]));
    const shapes = new Map(plan.readDims.map((output) => [output.name, toNumbers(read(output))]));
    plan.readback.unmap();
    readbacks += 1;
    const key = [...values].map(([name, tensor]) => `${name}=${contentKey(tensor)}`)
      .concat([...shapes].map(([name, dims]) => `${name}:${dims.join('x')}`)).join('|');
    let next = plan.next!.get(key);
    if (!next) {
      next = await createNextPlan(resources, plan, { values, shapes });
      plan.next!.set(key, next);
    }
    plan = next;
  }
}

/**
 * Encodes and submits one plan (its dispatches in one timed pass, then its read-back copies) and
 * maps its read-back buffer; gives the mapped range and the pass's GPU time (undefined without
 * timestamps). How long the GPU work took is kept for the plan, so the next run of it can tell
 * the device how long it will wait (expectGpuWork).
 */
async function submit(
  resources: PlanResources, plan: ExecutionPlan, timer: PassTimer | undefined,
): Promise<{ bytes: ArrayBuffer; passNs: number | undefined }> {
  const { device, label } = resources;
  const encoding = encodingOf(resources, plan, timer);
  // Encoding mistakes surface at submit as validation errors; this scope holds only this batch.
  device.pushErrorScope('validation');
  device.queue.submit([encode(resources, plan, encoding, timer)]);
  const start = performance.now();
  expectGpuWork(encoding.expectedMs);
  const validation = device.popErrorScope();
  const mapping = plan.readback.mapAsync(GPUMapMode.READ);
  const [validationError, mapped] = await Promise.allSettled([validation, mapping]);
  const waitMs = performance.now() - start;
  const problem = validationError.status === 'fulfilled' ? validationError.value : validationError.reason;
  if (problem || mapped.status === 'rejected') {
    if (mapped.status === 'fulfilled') plan.readback.unmap();
    const reason = problem ?? (mapped as PromiseRejectedResult).reason;
    throw new NexusError(ErrorCode.INTERNAL, `${label}: GPU batch failed: ${(reason as Error).message}`, { cause: reason });
  }
  const bytes = plan.readback.getMappedRange();
  // The pass's own time where measured: the wait includes how late its end was noticed, which
  // depends on how the wait polled.
  const passNs = timer ? passNanoseconds(bytes) : undefined;
  encoding.expectedMs = passNs === undefined ? waitMs : passNs / 1e6;
  return { bytes, passNs };
}

/** The compute pass's time from the two timestamps at the front of the read-back; undefined when they are not usable. */
function passNanoseconds(bytes: ArrayBuffer): number | undefined {
  const [begin, end] = new BigUint64Array(bytes, 0, 2);
  return end >= begin && begin > 0n ? Number(end - begin) : undefined;
}

/** What encoding a plan needs beyond its dispatches, worked out on its first run and kept. */
interface PlanEncoding {
  readonly passDescriptor: GPUComputePassDescriptor;
  /** A dispatch's pipeline, or undefined where it is the pipeline of the dispatch before (set once). */
  readonly pipelines: ReadonlyArray<GPUComputePipeline | undefined>;
  /** The read-back copies after the pass: source, offset in the read-back buffer, bytes. */
  readonly copies: ReadonlyArray<readonly [GPUBuffer, number, number]>;
  /** How long the last run's GPU work took: its pass (timestamps) or else its wait, submitted to mapped; 0 before the first. */
  expectedMs: number;
}

const encodings = new WeakMap<ExecutionPlan, PlanEncoding>();

/**
 * Encoding one batch is JavaScript calls into Dawn, one per command, on the critical path of
 * every run (WebGPU command buffers cannot be submitted twice): so the pass descriptor and the
 * list of copies are built once per plan, and a pipeline is set only when it changes.
 */
function encodingOf(resources: PlanResources, plan: ExecutionPlan, timer: PassTimer | undefined): PlanEncoding {
  let encoding = encodings.get(plan);
  if (encoding) return encoding;
  const passDescriptor: GPUComputePassDescriptor = { label: resources.label };
  if (timer) passDescriptor.timestampWrites = { querySet: timer.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 };
  const pipelines = plan.dispatches.map((dispatch, index) =>
    (index > 0 && plan.dispatches[index - 1].pipeline === dispatch.pipeline ? undefined : dispatch.pipeline));
  const copies = [...plan.outputs, ...plan.readValues, ...plan.readDims]
    .filter((output): output is DeviceOutput => output.kind === 'device' && output.byteLength > 0)
    .map((output) => [output.source, output.readbackOffset, output.byteLength] as const);
  encoding = { passDescriptor, pipelines, copies, expectedMs: 0 };
  encodings.set(plan, encoding);
  return encoding;
}

function encode(resources: PlanResources, plan: ExecutionPlan, encoding: PlanEncoding, timer: PassTimer | undefined): GPUCommandBuffer {
  const encoder = resources.device.createCommandEncoder({ label: resources.label });
  const pass = encoder.beginComputePass(encoding.passDescriptor);
  const { dispatches } = plan;
  for (let index = 0; index < dispatches.length; index++) {
    const dispatch = dispatches[index];
    const pipeline = encoding.pipelines[index];
    if (pipeline) pass.setPipeline(pipeline);
    pass.setBindGroup(0, dispatch.bindGroup);
    const [x, y, z] = dispatch.workgroups;
    pass.dispatchWorkgroups(x, y, z);
  }
  pass.end();
  if (timer) {
    encoder.resolveQuerySet(timer.querySet, 0, 2, timer.resolveBuffer, 0);
    encoder.copyBufferToBuffer(timer.resolveBuffer, 0, plan.readback, 0, TIMESTAMP_BYTES);
  }
  for (const [source, offset, size] of encoding.copies) encoder.copyBufferToBuffer(source, 0, plan.readback, offset, size);
  return encoder.finish();
}

function describeShapes(shapes: ReadonlyMap<string, readonly number[]>): string {
  return [...shapes].map(([name, shape]) => `${name}[${shape.join(',')}]`).join(' ');
}

/** Throws FAILED_PRECONDITION when an input of `shape` is larger than the device can bind. */
export function checkInputBindingSize(device: GPUDevice, name: string, shape: readonly number[], bytesPerElement: number): void {
  const bytes = elementCount(shape) * bytesPerElement;
  if (bytes > device.limits.maxStorageBufferBindingSize) {
    throw failedPrecondition(
      `input '${name}' [${shape.join(', ')}] needs ${bytes} bytes, more than this device binds ` +
      `(maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize}); use a smaller batch`,
    );
  }
}

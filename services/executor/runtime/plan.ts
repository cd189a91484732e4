/**
 * The per-shape half of a compiled model: for one set of input shapes, every tensor's shape,
 * the GPU buffers (intermediates shared by the memory planner), the uniform blocks and bind
 * groups of every dispatch, and where each output lands in the read-back buffer. Building a
 * plan is the expensive part of a new batch size; running one only writes inputs and encodes.
 */
import { elementCount } from '../../onnx/datatypes.ts';
import { failedPrecondition, NexusError } from '../../rpc/errors.ts';
import type { CachedPipeline } from '../gpu/pipeline-cache.ts';
import type { Dispatch } from '../kernels/kernel.ts';
import type { CompiledGraph, Step } from './graph.ts';
import { planMemory, type MemoryPlan } from './memory-planner.ts';

const FP32_BYTES = 4;
/** Bytes at the start of the read-back buffer that hold the two resolved timestamps. */
export const TIMESTAMP_BYTES = 16;

/** What a plan builds on: the model's device objects that outlive any one shape. */
export interface PlanResources {
  readonly device: GPUDevice;
  readonly label: string;
  readonly graph: CompiledGraph;
  /** FP32 constants on the GPU, by value name. */
  readonly constantBuffers: ReadonlyMap<string, GPUBuffer>;
  /** The pipelines of every kernel step, one per variant of its operator. */
  readonly pipelines: ReadonlyMap<Step, readonly CachedPipeline[]>;
  /** Bound where a kernel has an input slot the node leaves empty (MatMul's bias). */
  readonly placeholder: GPUBuffer;
  /** Reserve TIMESTAMP_BYTES at the front of the read-back buffer. */
  readonly timestamps: boolean;
}

export interface PlannedDispatch {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
}

export interface PlannedOutput {
  readonly name: string;
  readonly shape: number[];
  readonly source: GPUBuffer;
  readonly byteLength: number;
  /** Where the output is copied in the read-back buffer. */
  readonly readbackOffset: number;
}

export interface PlannedInput {
  readonly name: string;
  readonly buffer: GPUBuffer;
}

export interface ExecutionPlan {
  readonly inputs: readonly PlannedInput[];
  readonly dispatches: readonly PlannedDispatch[];
  readonly outputs: readonly PlannedOutput[];
  /** MAP_READ | COPY_DST: timestamps (when measured), then every output. */
  readonly readback: GPUBuffer;
  /** Bytes of GPU memory this plan owns. */
  readonly byteSize: number;
  destroy(): void;
}

/** Where a value's bytes live. */
type Storage =
  | { kind: 'input'; name: string }
  | { kind: 'constant'; name: string }
  | { kind: 'intermediate'; id: number };

/** Storage buffers are sized in whole 16-byte units and never empty. */
const bufferBytes = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

/**
 * Builds the plan for `inputShapes` (name → shape of every graph input). Shape errors reject
 * with INVALID_ARGUMENT naming the node; tensors beyond the device's binding limit and
 * out-of-memory with FAILED_PRECONDITION.
 */
export async function createExecutionPlan(resources: PlanResources, inputShapes: ReadonlyMap<string, readonly number[]>): Promise<ExecutionPlan> {
  const { device } = resources;
  const layout = planLayout(resources, inputShapes);
  const owned: GPUBuffer[] = [];
  const destroy = () => { for (const buffer of owned) buffer.destroy(); };
  // Out-of-memory shows up in an error scope, not as an exception; nothing awaits in between,
  // so no other work on the device lands in this scope.
  device.pushErrorScope('out-of-memory');
  let plan: Omit<ExecutionPlan, 'byteSize' | 'destroy'>;
  let outOfMemory: Promise<GPUError | null>;
  try {
    plan = allocate(resources, inputShapes, layout, (descriptor) => {
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
  return { ...plan, byteSize, destroy };
}

/** Everything about a plan that is decided before touching the device. */
interface PlanLayout {
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly storage: ReadonlyMap<string, Storage>;
  /** Intermediate buffer sizes, and which buffer each intermediate tensor (by id) uses. */
  readonly memory: MemoryPlan;
  readonly kernels: ReadonlyArray<{ step: Step; dispatch: Dispatch }>;
}

/** Shapes, storage, memory plan and dispatches; pure apart from reading device limits. */
function planLayout(resources: PlanResources, inputShapes: ReadonlyMap<string, readonly number[]>): PlanLayout {
  const { device, graph } = resources;
  const shapes = new Map<string, readonly number[]>(inputShapes);
  for (const [name, tensor] of graph.constants) shapes.set(name, tensor.shape);
  const storage = new Map<string, Storage>();
  for (const name of inputShapes.keys()) storage.set(name, { kind: 'input', name });
  for (const name of resources.constantBuffers.keys()) storage.set(name, { kind: 'constant', name });
  const shapesOf = (step: Step) => step.inputs.map((name) => (name === undefined ? undefined : shapes.get(name)));

  // Each kernel output is a new intermediate tensor; an alias shares its input's storage.
  const lifetimes: Array<{ byteSize: number; firstStep: number; lastStep: number }> = [];
  graph.steps.forEach((step, index) => {
    const shape = inferStepShape(step, shapesOf(step));
    checkBindingSize(device, step, shape);
    shapes.set(step.output, shape);
    if (step.operator.kind === 'alias') {
      storage.set(step.output, storage.get(step.inputs[0]!)!);
    } else {
      storage.set(step.output, { kind: 'intermediate', id: lifetimes.length });
      lifetimes.push({ byteSize: bufferBytes(elementCount(shape) * FP32_BYTES), firstStep: index, lastStep: index });
    }
  });
  // A tensor lives until its last reader (through any alias); graph outputs until the read-back.
  const extend = (name: string | undefined, step: number) => {
    const where = name === undefined ? undefined : storage.get(name);
    if (where?.kind === 'intermediate') lifetimes[where.id].lastStep = Math.max(lifetimes[where.id].lastStep, step);
  };
  graph.steps.forEach((step, index) => { for (const name of step.inputs) extend(name, index); });
  for (const name of graph.outputs) extend(name, graph.steps.length);

  const kernels: Array<PlanLayout['kernels'][number]> = [];
  for (const step of graph.steps) {
    if (step.operator.kind !== 'kernel') continue;
    const dispatch = dispatchOf(step, shapesOf(step), shapes.get(step.output)!, device.limits.maxComputeWorkgroupsPerDimension);
    // Empty tensors: nothing to compute.
    if (dispatch.workgroups.some((count) => count === 0)) continue;
    kernels.push({ step, dispatch });
  }
  return { shapes, storage, memory: planMemory(lifetimes), kernels };
}

/** Creates the plan's buffers and bind groups. */
function allocate(
  resources: PlanResources,
  inputShapes: ReadonlyMap<string, readonly number[]>,
  { shapes, storage, memory, kernels }: PlanLayout,
  createBuffer: (descriptor: GPUBufferDescriptor) => GPUBuffer,
): Omit<ExecutionPlan, 'byteSize' | 'destroy'> {
  const { device, label: modelLabel } = resources;
  const intermediates = memory.bufferSizes.map((size, index) => createBuffer({
    label: `${modelLabel} intermediate ${index}`, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  }));
  const inputs: PlannedInput[] = [...inputShapes].map(([name, shape]) => ({
    name,
    buffer: createBuffer({
      label: `${modelLabel} input '${name}'`,
      size: bufferBytes(elementCount(shape) * FP32_BYTES),
      // COPY_SRC: a graph input may also be a graph output.
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    }),
  }));
  const inputBuffers = new Map(inputs.map((input) => [input.name, input.buffer]));
  const bufferOf = (name: string): GPUBuffer => {
    const where = storage.get(name);
    if (!where) throw new Error(`value '${name}' has no storage`);
    switch (where.kind) {
      case 'input': return inputBuffers.get(where.name)!;
      case 'constant': return resources.constantBuffers.get(where.name)!;
      case 'intermediate': return intermediates[memory.bufferOf[where.id]];
    }
  };

  // Every dispatch's uniform block in one buffer, at the device's offset alignment; shapes are
  // fixed for the plan, so it is written once here and never per run.
  const alignment = device.limits.minUniformBufferOffsetAlignment;
  const uniformBytes = new Uint8Array(Math.max(16, kernels.length * alignment));
  kernels.forEach(({ dispatch }, index) => uniformBytes.set(new Uint8Array(dispatch.uniforms), index * alignment));
  const uniformBuffer = createBuffer({
    label: `${modelLabel} uniforms`, size: uniformBytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(uniformBuffer, 0, uniformBytes);

  const dispatches: PlannedDispatch[] = kernels.map(({ step, dispatch: { variant = 0, workgroups, uniforms } }, index) => {
    const pipeline = resources.pipelines.get(step)![variant];
    const label = `${step.node.opType} '${step.node.name}'`;
    const buffers = [...step.inputs.map((name) => (name === undefined ? resources.placeholder : bufferOf(name))), bufferOf(step.output)];
    const bindGroup = device.createBindGroup({
      label,
      layout: pipeline.bindGroupLayout,
      entries: [
        ...buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
        { binding: buffers.length, resource: { buffer: uniformBuffer, offset: index * alignment, size: uniforms.byteLength } },
      ],
    });
    return { label, pipeline: pipeline.pipeline, bindGroup, workgroups };
  });

  let readbackSize = resources.timestamps ? TIMESTAMP_BYTES : 0;
  const outputs: PlannedOutput[] = resources.graph.outputs.map((name) => {
    const shape = [...shapes.get(name)!];
    const byteLength = elementCount(shape) * FP32_BYTES;
    const output = { name, shape, source: bufferOf(name), byteLength, readbackOffset: readbackSize };
    readbackSize += byteLength;
    return output;
  });
  const readback = createBuffer({
    label: `${modelLabel} read-back`, size: bufferBytes(readbackSize), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  return { inputs, dispatches, outputs, readback };
}

function describeShapes(shapes: ReadonlyMap<string, readonly number[]>): string {
  return [...shapes].map(([name, shape]) => `${name}[${shape.join(',')}]`).join(' ');
}

function nodeLabel(step: Step): string {
  return `node '${step.node.name}' (${step.node.opType})`;
}

function inferStepShape(step: Step, inputShapes: ReadonlyArray<readonly number[] | undefined>): number[] {
  try {
    return step.operator.inferShape(inputShapes);
  } catch (error) {
    if (error instanceof NexusError) throw new NexusError(error.code, `${nodeLabel(step)}: ${error.message}`, { cause: error });
    throw error;
  }
}

function dispatchOf(step: Step, inputShapes: ReadonlyArray<readonly number[] | undefined>, outputShape: readonly number[], maxPerDimension: number) {
  if (step.operator.kind !== 'kernel') throw new Error(`${nodeLabel(step)} has no kernel`);
  try {
    return step.operator.dispatch(inputShapes, outputShape, maxPerDimension);
  } catch (error) {
    // The kernels' own limits (grid size, batch rank) are limits of this executor, not bad input.
    if (error instanceof RangeError) throw failedPrecondition(`${nodeLabel(step)}: ${error.message}`);
    if (error instanceof NexusError) throw new NexusError(error.code, `${nodeLabel(step)}: ${error.message}`, { cause: error });
    throw error;
  }
}

function checkBindingSize(device: GPUDevice, step: Step, shape: readonly number[]): void {
  const bytes = elementCount(shape) * FP32_BYTES;
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw failedPrecondition(
      `${nodeLabel(step)}: output [${shape.join(', ')}] needs ${bytes} bytes, more than this device binds ` +
      `(maxStorageBufferBindingSize ${limit}); use a smaller batch`,
    );
  }
}

/** Throws FAILED_PRECONDITION when an input of `shape` is larger than the device can bind. */
export function checkInputBindingSize(device: GPUDevice, name: string, shape: readonly number[]): void {
  const bytes = elementCount(shape) * FP32_BYTES;
  if (bytes > device.limits.maxStorageBufferBindingSize) {
    throw failedPrecondition(
      `input '${name}' [${shape.join(', ')}] needs ${bytes} bytes, more than this device binds ` +
      `(maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize}); use a smaller batch`,
    );
  }
}

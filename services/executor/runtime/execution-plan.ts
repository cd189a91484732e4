/**
 * The per-shape half of a compiled model: for one set of input shapes, every tensor's shape,
 * the host values of shape computations, the GPU buffers (intermediates shared by the memory
 * planner), the uniform blocks and bind groups of every dispatch, and where each output lands
 * in the read-back buffer. Building a plan is the expensive part of a new batch size; running
 * one only writes inputs and encodes.
 */
import { elementCount, type Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { failedPrecondition } from '../../domain/errors.ts';
import {
  bindingTarget, bufferBytes, planLayout, storageType, type CompiledGraph, type DeviceStep, type PlanLayout,
} from '../compiler/index.ts';
import type { CachedPipeline } from '../gpu/index.ts';
import { STORAGE_BYTES, toStorageBytes, type StorageType } from '../tensor/index.ts';

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
  readonly inputs: readonly PlannedInput[];
  readonly dispatches: readonly PlannedDispatch[];
  readonly outputs: ReadonlyArray<DeviceOutput | HostOutput>;
  /** MAP_READ | COPY_DST: timestamps (when measured), then every device output. */
  readonly readback: GPUBuffer;
  /** Bytes of GPU memory this plan owns. */
  readonly byteSize: number;
  /** Activation memory: inputs, intermediates (shared by the memory planner) and host values. */
  readonly peakBytes: number;
  /** What the intermediates would take with one buffer each. */
  readonly unsharedBytes: number;
  destroy(): void;
}

/**
 * Builds the plan for `inputShapes` (name -> shape of every graph input). Shape errors reject
 * with INVALID_ARGUMENT naming the node; tensors beyond the device's binding limit and
 * out-of-memory with FAILED_PRECONDITION.
 */
export async function createExecutionPlan(resources: PlanResources, inputShapes: ReadonlyMap<string, readonly number[]>): Promise<ExecutionPlan> {
  const { device } = resources;
  const layout = planLayout(resources.graph, inputShapes, device.limits);
  const owned: GPUBuffer[] = [];
  const destroy = () => { for (const buffer of owned) buffer.destroy(); };
  // Out-of-memory shows up in an error scope, not as an exception; nothing awaits in between,
  // so no other work on the device lands in this scope.
  device.pushErrorScope('out-of-memory');
  let plan: Omit<ExecutionPlan, 'byteSize' | 'destroy' | 'peakBytes' | 'unsharedBytes'>;
  let outOfMemory: Promise<GPUError | null>;
  try {
    plan = allocate(resources, layout, (descriptor) => {
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
  return { ...plan, byteSize, peakBytes: layout.peakBytes, unsharedBytes: layout.unsharedBytes, destroy };
}
/** Creates the plan's buffers and bind groups. */
function allocate(
  resources: PlanResources, layout: PlanLayout, createBuffer: (descriptor: GPUBufferDescriptor) => GPUBuffer,
): Omit<ExecutionPlan, 'byteSize' | 'destroy' | 'peakBytes' | 'unsharedBytes'> {
  const { device, label: modelLabel, graph } = resources;
  const intermediates = layout.bufferSizes.map((size, index) => createBuffer({
    label: `${modelLabel} intermediate ${index}`, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  }));
  const inputs: PlannedInput[] = [...layout.inputShapes].map(([name, shape]) => {
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

  const dispatches: PlannedDispatch[] = layout.kernels.map(({ step, kernel }, index) => {
    const pipeline = resources.pipelines.get(step)![kernel.variant ?? 0];
    const buffers = kernel.bindings.map((binding) => {
      const target = bindingTarget(step, binding);
      if (target === undefined) return resources.placeholder;
      if (typeof target === 'string') return bufferOf(target);
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
  const outputs = graph.outputs.map((name): DeviceOutput | HostOutput => {
    const where = layout.storage.get(name);
    if (where?.kind === 'constant' || where?.kind === 'host') {
      return { kind: 'host', name, tensor: (where.kind === 'constant' ? graph.constants.get(name) : layout.values.get(name))! };
    }
    const shape = [...layout.shapes.get(name)!];
    const storage = storageType(resources.graph, name);
    const byteLength = Math.ceil((elementCount(shape) * STORAGE_BYTES[storage]) / 4) * 4;
    const output: DeviceOutput = {
      kind: 'device', name, shape, datatype: graph.datatypes.get(name)!, storage, source: bufferOf(name), byteLength, readbackOffset: readbackSize,
    };
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

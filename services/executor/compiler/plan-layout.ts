/**
 * The device-independent half of a plan for one set of input shapes: every tensor's shape and
 * host value, where each value's bytes live, the memory plan that shares intermediate buffers
 * between tensors whose lifetimes do not overlap, and every dispatch with its bindings. Pure:
 * it reads only the device's limits, so it is tested without a GPU.
 */
import { elementCount } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { failedPrecondition } from '../../domain/errors.ts';
import type { BindingRef, PlannedKernel } from '../ops/index.ts';
import { STORAGE_BYTES, storageOf, type StorageType } from '../tensor/index.ts';
import type { CompiledGraph } from './compile-graph.ts';
import { planMemory } from './memory-planner.ts';
import { segmentationOf } from './segments.ts';
import { walkShapes } from './shape-walk.ts';
import type { DeviceStep } from './steps.ts';

/** The device limits a layout respects. */
export interface DeviceLimits {
  /** Workgroups per grid dimension (WebGPU's default is 65535). */
  readonly maxComputeWorkgroupsPerDimension: number;
  /** Bytes one storage binding may cover. */
  readonly maxStorageBufferBindingSize: number;
}

/** Where a value's bytes live. */
export type Storage =
  | { kind: 'input'; name: string }
  | { kind: 'constant'; name: string }
  | { kind: 'host'; name: string }
  | { kind: 'intermediate'; id: number }
  /** In a buffer of an earlier segment's plan (an input, or an intermediate computed before a read-back). */
  | { kind: 'earlier'; name: string };

/** Storage buffers are sized in whole 16-byte units and never empty: the bytes a buffer for `bytes` takes. */
export const bufferBytes = (bytes: number): number => Math.max(16, Math.ceil(bytes / 16) * 16);

/** Everything about a plan that is decided before touching the device. */
export interface PlanLayout {
  readonly inputShapes: ReadonlyMap<string, readonly number[]>;
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly values: ReadonlyMap<string, HostTensor>;
  readonly storage: ReadonlyMap<string, Storage>;
  /** Byte size of each intermediate (by id) and the shared buffer it lives in. */
  readonly bufferSizes: readonly number[];
  readonly bufferOf: readonly number[];
  readonly scratchIds: ReadonlyMap<DeviceStep, readonly number[]>;
  readonly kernels: ReadonlyArray<{ step: DeviceStep; kernel: PlannedKernel }>;
  /** Host values some dispatch binds. */
  readonly hostBound: ReadonlySet<string>;
  readonly peakBytes: number;
  readonly unsharedBytes: number;
  /** Which segment of the graph's steps this layout covers (segments.ts); 0 and final for most models. */
  readonly segment: number;
  /** The last segment: its plan copies the graph outputs back. Otherwise it ends in a read-back. */
  readonly final: boolean;
  /** Device values read back after this segment, whose host copies the next segment reads. */
  readonly readValues: readonly string[];
  /** Outputs whose shape the GPU decided: their dims are read back after this segment from the intermediates `dimsIds` names. */
  readonly readShapes: readonly string[];
  readonly dimsIds: ReadonlyMap<string, number>;
  /** Each step's tables (OperatorPlan.tables), uploaded by the plan. */
  readonly tables: ReadonlyMap<DeviceStep, readonly Uint32Array[]>;
}

/** What a segment after the first is laid out on: the layout before it and what its read-back said. */
export interface SegmentReadback {
  readonly layout: PlanLayout;
  /** The read-back values (readValues), as host tensors. */
  readonly values: ReadonlyMap<string, HostTensor>;
  /** The decided shapes (readShapes). */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
}

export interface LayoutOptions {
  /**
   * Values of the graph inputs that steps read on the host (Segmentation.hostReadInputs), from the
   * request. Without them the layout covers the steps up to the first that reads one (an estimate).
   */
  readonly inputValues?: ReadonlyMap<string, HostTensor>;
  /** Lays out the segment after `after.layout`'s. */
  readonly after?: SegmentReadback;
}

/** The storage type of value `name` under the graph's precision. */
export function storageType(graph: CompiledGraph, name: string): StorageType {
  const datatype = graph.datatypes.get(name);
  if (!datatype) throw new Error(`value '${name}' has no datatype`);
  return storageOf(datatype, graph.precision);
}

/** The value name (or scratch) a binding refers to, within `step`. */
export function bindingTarget(step: DeviceStep, binding: BindingRef): string | { scratch: number } | { dims: string } | { table: number } | undefined {
  if ('input' in binding) return step.inputs[binding.input];
  if ('value' in binding) return binding.value;
  if ('output' in binding) return step.outputs[binding.output];
  if ('scratch' in binding) return { scratch: binding.scratch };
  if ('dims' in binding) return { dims: step.outputs[binding.dims] };
  if ('table' in binding) return { table: binding.table };
  return undefined;
}

/**
 * Shapes, storage, memory plan and dispatches for `inputShapes` (name -> shape of every graph
 * input) of the graph's first segment, or with `options.after` of the segment after that
 * layout's. Shape errors are INVALID_ARGUMENT naming the node; a tensor beyond
 * `limits.maxStorageBufferBindingSize` is FAILED_PRECONDITION.
 */
export function planLayout(
  graph: CompiledGraph, inputShapes: ReadonlyMap<string, readonly number[]>, limits: DeviceLimits, options: LayoutOptions = {},
): PlanLayout {
  const { segments } = segmentationOf(graph);
  const previous = options.after?.layout;
  const segmentIndex = previous ? previous.segment + 1 : 0;
  const segment = segments[segmentIndex];
  const startShapes = new Map<string, readonly number[]>(previous?.shapes ?? inputShapes);
  if (!previous) for (const [name, tensor] of graph.constants) startShapes.set(name, tensor.shape);
  for (const [name, shape] of options.after?.shapes ?? []) startShapes.set(name, shape);
  const startValues = new Map<string, HostTensor>(previous?.values ?? graph.constants);
  for (const [name, tensor] of [...(options.inputValues ?? []), ...(options.after?.values ?? [])]) startValues.set(name, tensor);
  const walk = walkShapes(graph.steps, graph.constants, inputShapes, limits.maxComputeWorkgroupsPerDimension, undefined, {
    shapes: startShapes, values: startValues, start: segment.start, end: segment.end, stopWhenUnknown: !previous && !options.inputValues,
  });
  const storage = new Map<string, Storage>();
  if (previous) {
    // What earlier segments computed stays in their plans' buffers; host values are uploaded again where bound.
    for (const [name, where] of previous.storage) storage.set(name, where.kind === 'input' || where.kind === 'intermediate' ? { kind: 'earlier', name } : where);
  } else {
    for (const name of inputShapes.keys()) storage.set(name, { kind: 'input', name });
    for (const name of graph.constants.keys()) storage.set(name, { kind: 'constant', name });
  }
  for (const [name] of walk.values) if (!storage.has(name)) storage.set(name, { kind: 'host', name });

  const lifetimes: Array<{ byteSize: number; firstStep: number; lastStep: number }> = [];
  const scratchIds = new Map<DeviceStep, number[]>();
  const kernels: Array<{ step: DeviceStep; kernel: PlannedKernel }> = [];
  const hostBound = new Set<string>();
  const deviceSteps = graph.steps.slice(segment.start, walk.end).filter((step): step is DeviceStep => step.kind === 'device');
  const dimsIds = new Map<string, number>();
  const tables = new Map<DeviceStep, readonly Uint32Array[]>();
  const extend = (name: string | undefined, index: number) => {
    const where = name === undefined ? undefined : storage.get(name);
    if (where?.kind === 'intermediate') lifetimes[where.id].lastStep = Math.max(lifetimes[where.id].lastStep, index);
    if (where?.kind === 'host') hostBound.add(where.name);
  };

  deviceSteps.forEach((step, index) => {
    const plan = walk.plans.get(step)!;
    step.outputs.forEach((name, output) => {
      const shape = plan.outputShapes[output];
      // An output the operator does not compute (Dropout's mask, BatchNormalization's running
      // statistics) is named but never read: checkExtraOutputs refuses a model that reads it.
      if (!name || !shape) return;
      const bytes = elementCount(shape) * STORAGE_BYTES[storageType(graph, name)];
      checkBindingSize(limits, step, name, shape, bytes);
      if (step.operator.kind === 'alias') {
        storage.set(name, storage.get(step.inputs[0]!)!);
        return;
      }
      storage.set(name, { kind: 'intermediate', id: lifetimes.length });
      lifetimes.push({ byteSize: bufferBytes(bytes), firstStep: index, lastStep: index });
    });
    // Output 0 may be unnamed (an RNN asked only for its final state): the first named output's type.
    const scratchBytes = STORAGE_BYTES[storageType(graph, step.outputs.find(Boolean) ?? step.outputs[0])];
    scratchIds.set(step, (plan.scratch ?? []).map((count) => {
      lifetimes.push({ byteSize: bufferBytes(count * scratchBytes), firstStep: index, lastStep: index });
      return lifetimes.length - 1;
    }));
    if (plan.tables?.length) tables.set(step, plan.tables);
    // The dims of an output the GPU shapes live until the read-back after the segment.
    for (const output of step.operator.deviceShaped ?? []) {
      const name = step.outputs[output];
      if (!name) continue;
      dimsIds.set(name, lifetimes.length);
      lifetimes.push({ byteSize: bufferBytes(4 * plan.outputShapes[output].length), firstStep: index, lastStep: Infinity });
    }
    if (step.operator.kind === 'alias') {
      extend(step.inputs[0], index);
      return;
    }
    for (const kernel of plan.dispatches) {
      for (const binding of kernel.bindings) {
        const target = bindingTarget(step, binding);
        if (typeof target === 'string') extend(target, index);
      }
      // Empty tensors: nothing to compute.
      if (kernel.workgroups.every((count) => count > 0)) kernels.push({ step, kernel });
    }
  });
  const complete = walk.end === segment.end;
  const final = complete && segmentIndex === segments.length - 1;
  const segmentEnd = deviceSteps.length;
  for (const id of dimsIds.values()) lifetimes[id].lastStep = segmentEnd;
  if (final) {
    // Graph outputs live until the read-back copy after the last step.
    for (const name of graph.outputs) extend(name, segmentEnd);
  } else {
    // Whatever a later segment reads, and what is read back, must outlive this segment's steps.
    const keepAlive = (name: string | undefined) => {
      const where = name === undefined ? undefined : storage.get(name);
      if (where?.kind === 'intermediate') lifetimes[where.id].lastStep = segmentEnd;
    };
    for (const step of graph.steps.slice(segment.end)) step.inputs.forEach(keepAlive);
    graph.outputs.forEach(keepAlive);
  }

  const memory = planMemory(lifetimes);
  const inputBytes = previous ? 0 : [...inputShapes].reduce((total, [name, shape]) => total + bufferBytes(elementCount(shape) * STORAGE_BYTES[storageType(graph, name)]), 0);
  const hostBytes = [...hostBound].reduce((total, name) => total + bufferBytes(walk.values.get(name)!.data.byteLength), 0)
    + [...tables.values()].flat().reduce((total, table) => total + bufferBytes(table.byteLength), 0);
  return {
    inputShapes, shapes: walk.shapes, values: walk.values, storage, bufferSizes: memory.bufferSizes, bufferOf: memory.bufferOf, scratchIds, kernels, hostBound,
    peakBytes: memory.bufferSizes.reduce((total, size) => total + size, 0) + inputBytes + hostBytes,
    unsharedBytes: lifetimes.reduce((total, lifetime) => total + lifetime.byteSize, 0),
    segment: segmentIndex, final,
    readValues: complete ? segment.readValues : [], readShapes: complete ? segment.readShapes : [], dimsIds, tables,
  };
}

function checkBindingSize(limits: DeviceLimits, step: DeviceStep, name: string, shape: readonly number[], bytes: number): void {
  const limit = limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw failedPrecondition(
      `${step.label}: output '${name}' [${shape.join(', ')}] needs ${bytes} bytes, more than this device binds ` +
      `(maxStorageBufferBindingSize ${limit}); use a smaller batch`,
    );
  }
}

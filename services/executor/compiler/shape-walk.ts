/**
 * Every value's shape (and every host value) for concrete input shapes: host steps evaluated
 * on the CPU, device steps planned. The per-shape plan and the load-time probe that proves a
 * fused residual's shape both use it.
 */
import type { HostTensor, ModelSignature } from '../../onnx/model.ts';
import { ErrorCode, failedPrecondition, NexusError } from '../../domain/errors.ts';
import type { NodeInput, OperatorPlan } from '../ops/index.ts';
import { createFoldAllocator, DEFAULT_COMPILE_BUDGETS, type CompileBudgets } from './compile-budgets.ts';
import { evaluateOnCpu } from './cpu-evaluation.ts';
import { hostReads, type DeviceStep, type Step } from './steps.ts';

/** Every value's shape and every host value for concrete input shapes, and each device step's plan. */
export interface ShapeWalk {
  readonly shapes: Map<string, readonly number[]>;
  readonly values: Map<string, HostTensor>;
  readonly plans: Map<DeviceStep, OperatorPlan>;
  /** The step the walk stopped before (the end of its range, unless it met a value it does not know). */
  readonly end: number;
}

/** Where a walk over part of the steps starts: what earlier steps (and read-backs) decided. */
export interface WalkStart {
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly values: ReadonlyMap<string, HostTensor>;
  readonly start: number;
  readonly end: number;
  /**
   * Stop (instead of failing) before a step that reads on the host a value not known yet, or the
   * shape of an output the GPU decides: the probe and the activation estimate walk what they can.
   */
  readonly stopWhenUnknown?: boolean;
}

/**
 * Walks the steps in order for concrete input shapes: host steps are evaluated on the CPU,
 * device steps planned (shapes and dispatches). Shape errors are INVALID_ARGUMENT naming the
 * node; a kernel's own limit (RangeError) is FAILED_PRECONDITION. `maxPerDimension`: the
 * device's workgroups per grid dimension. What host steps allocate counts against `budgets`
 * (foldTensorBytes each, foldBytes in all), RESOURCE_EXHAUSTED beyond. `from` walks only steps
 * [from.start, from.end) on top of what earlier segments decided (segments.ts).
 */
export function walkShapes(
  steps: readonly Step[], constants: ReadonlyMap<string, HostTensor>, inputShapes: ReadonlyMap<string, readonly number[]>, maxPerDimension: number,
  budgets: CompileBudgets = DEFAULT_COMPILE_BUDGETS, from?: WalkStart,
): ShapeWalk {
  const allocator = createFoldAllocator(budgets, 'host evaluation');
  const shapes = new Map<string, readonly number[]>(from?.shapes ?? inputShapes);
  const values = new Map<string, HostTensor>(from?.values ?? constants);
  if (!from) for (const [name, tensor] of constants) shapes.set(name, tensor.shape);
  const plans = new Map<DeviceStep, OperatorPlan>();
  // Capacity shapes of outputs the GPU decides, until a read-back replaces them.
  const undecided = new Set<string>();
  const end = from?.end ?? steps.length;
  for (let index = from?.start ?? 0; index < end; index++) {
    const step = steps[index];
    if (from?.stopWhenUnknown && (hostReads(step).some((name) => !values.has(name)) || step.inputs.some((name) => name && undecided.has(name)))) {
      return { shapes, values, plans, end: index };
    }
    if (step.kind === 'host') {
      const inputs = step.inputs.map((name): NodeInput | undefined => {
        const shape = name ? shapes.get(name) : undefined;
        return shape ? { shape, value: values.get(name!) } : undefined;
      });
      const outputs = evaluateOnCpu(step.node, step.spec, step.opset, step.outputTypes, inputs, allocator);
      outputs.forEach((tensor, output) => {
        const name = step.outputs[output];
        if (!name) return;
        values.set(name, tensor);
        shapes.set(name, tensor.shape);
      });
      continue;
    }
    const inputs: Array<NodeInput | undefined> = step.inputs.map((name) => {
      if (!name) return undefined;
      const shape = shapes.get(name);
      if (!shape) throw new Error(`${step.label}: input '${name}' has no shape yet`);
      return { shape, value: values.get(name) };
    });
    let plan: OperatorPlan;
    try {
      plan = step.operator.plan(inputs, maxPerDimension);
    } catch (error) {
      if (error instanceof RangeError) throw failedPrecondition(`${step.label}: ${error.message}`);
      if (error instanceof NexusError) throw new NexusError(error.code, `${step.label}: ${error.message}`, { cause: error });
      throw error;
    }
    plans.set(step, plan);
    step.outputs.forEach((name, output) => {
      if (name && plan.outputShapes[output]) shapes.set(name, plan.outputShapes[output]);
    });
    for (const output of step.operator.deviceShaped ?? []) if (step.outputs[output]) undecided.add(step.outputs[output]);
  }
  return { shapes, values, plans, end };
}

/** Every value's shapes for a few probe input shapes; undefined when the model refuses them. */
export type ProbeShapes = Array<ReadonlyMap<string, readonly number[]>>;

/**
 * Shapes of every value for two sets of probe input shapes (variable dims set to 2, then 3), or
 * undefined when the model does not accept them. Used at load to prove a residual addition
 * has the GEMM output's shape before fusing it.
 */
export function probeShapes(
  steps: readonly Step[], signature: ModelSignature, constants: ReadonlyMap<string, HostTensor>, budgets: CompileBudgets = DEFAULT_COMPILE_BUDGETS,
): ProbeShapes | undefined {
  const walks: ProbeShapes = [];
  for (const probe of [2, 3]) {
    const inputShapes = new Map(signature.inputs.map((input) => [input.name, input.shape.map((dim) => (dim < 0 ? probe : dim))]));
    try {
      // Up to the first value only a run knows (one read back from the GPU, or a graph input's).
      const walk = walkShapes(steps, constants, inputShapes, 65535, budgets, {
        shapes: new Map([...inputShapes, ...[...constants].map(([name, tensor]): [string, readonly number[]] => [name, tensor.shape])]),
        values: constants, start: 0, end: steps.length, stopWhenUnknown: true,
      });
      walks.push(walk.shapes);
    } catch (error) {
      if (error instanceof NexusError && error.code === ErrorCode.FAILED_PRECONDITION) throw error;
      return undefined;
    }
  }
  return walks;
}

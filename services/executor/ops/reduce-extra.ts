/**
 * The reductions beyond sums and extremes: ReduceSumSquare, ReduceL1, ReduceL2, ReduceLogSum and
 * ReduceLogSumExp (the maximum subtracted first), on the reduce kernel with the attributes and
 * axes input of every reduction (reduce.ts), and on the CPU for constants.
 */
import type { ReduceOp } from '../kernels/index.ts';
import { numberView, product, reduceShape, stridesOf } from '../tensor/index.ts';
import { booleanAttribute } from './attributes.ts';
import type { CpuOp, OperatorSpec } from './contract.ts';
import { reserve, store, stridedIndices } from './cpu-indexing.ts';
import { reduceAxes, requiredValue } from './parameters.ts';
import { reductionDevice } from './reduce.ts';
import { sameAsInput } from './spec-parts.ts';

interface Accumulation {
  readonly op: ReduceOp;
  /** Each element's term: the sum of terms is taken. */
  readonly term: (x: number) => number;
  readonly finish: (sum: number) => number;
}

const ACCUMULATIONS: Readonly<Record<string, Accumulation>> = {
  ReduceSumSquare: { op: 'sumSquare', term: (x) => x * x, finish: (sum) => sum },
  ReduceL1: { op: 'l1', term: Math.abs, finish: (sum) => sum },
  ReduceL2: { op: 'l2', term: (x) => x * x, finish: Math.sqrt },
  ReduceLogSum: { op: 'logSum', term: (x) => x, finish: Math.log },
  // Shifted by the maximum on the CPU as on the GPU (cpuReduce); the terms here are exp(x - max).
  ReduceLogSumExp: { op: 'logSumExp', term: Math.exp, finish: Math.log },
};

export const EXTRA_REDUCTIONS: readonly string[] = Object.keys(ACCUMULATIONS);

function cpuReduce(accumulation: Accumulation): CpuOp {
  return (context) => {
    const input = requiredValue(context, 0);
    const { node, opset } = context;
    const { outShape, axes } = reduceShape(input.shape, reduceAxes(node, opset, context.inputs), booleanAttribute(node, 'keepdims', true),
      booleanAttribute(node, 'noop_with_empty_axes', false));
    reserve(context, outShape, context.outputTypes[0]);
    const reduced = new Set(axes);
    const keptShape = input.shape.map((dim, axis) => (reduced.has(axis) ? 1 : dim));
    const targets = stridedIndices(input.shape, stridesOf(keptShape).map((stride, axis) => (reduced.has(axis) ? 0 : stride)), 0);
    const values = numberView(input);
    const shift = new Float64Array(product(keptShape));
    if (accumulation.op === 'logSumExp') {
      shift.fill(-Infinity);
      for (let index = 0; index < values.length; index++) shift[targets[index]] = Math.max(shift[targets[index]], values[index]);
      // No finite maximum (nothing reduced, or only -inf): no shift.
      for (let target = 0; target < shift.length; target++) if (!Number.isFinite(shift[target])) shift[target] = 0;
    }
    const sums = new Float64Array(shift.length);
    for (let index = 0; index < values.length; index++) sums[targets[index]] += accumulation.term(values[index] - shift[targets[index]]);
    return [store(context.outputTypes[0], outShape, sums.map((sum, target) => accumulation.finish(sum) + shift[target]))];
  };
}

export function extraReductionSpec(opType: string): OperatorSpec {
  const accumulation = ACCUMULATIONS[opType];
  return {
    attributes: ['axes', 'keepdims', 'noop_with_empty_axes'],
    inputs: [1, 2],
    parameters: [1],
    types: sameAsInput,
    cpu: cpuReduce(accumulation),
    device: (context) => reductionDevice(context, accumulation.op),
  };
}

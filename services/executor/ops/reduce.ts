/**
 * Reductions on the GPU (ReduceSum / Mean / Max / Min / Prod over any axes), with a CPU
 * implementation for constants and shape computations.
 */
import { reduceDispatch, type ReduceOp, reduceVariants } from '../kernels/index.ts';
import { numberView, reduceShape, stridesOf, product } from '../tensor/index.ts';
import { booleanAttribute, intAttribute } from './attributes.ts';
import type { CpuOp, DeviceOperator, LoadContext, OperatorSpec } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { reduceAxes, required, requiredValue } from './parameters.ts';
import { inputStorage, io, sameAsInput } from './spec-parts.ts';

/** The reduce kernel's op of each ONNX reduction. */
export const REDUCE_OP_OF: Record<string, ReduceOp> = {
  ReduceSum: 'sum', ReduceMean: 'mean', ReduceMax: 'max', ReduceMin: 'min', ReduceProd: 'prod',
};

function reduce(opType: string): CpuOp {
  return (context) => {
    const input = requiredValue(context, 0);
    const { outShape, axes } = reduceShape(input.shape, reduceAxes(context.node, context.opset, context.inputs), intAttribute(context.node, 'keepdims', 1) === 1,
      intAttribute(context.node, 'noop_with_empty_axes', 0) === 1);
    reserve(context, outShape, context.outputTypes[0]);
    const values = numberView(input);
    const reduced = new Set(axes);
    const keptShape = input.shape.map((dim, axis) => (reduced.has(axis) ? 1 : dim));
    const outCount = product(keptShape);
    const init = opType === 'ReduceMax' ? -Infinity : opType === 'ReduceMin' ? Infinity : opType === 'ReduceProd' ? 1 : 0;
    const acc = new Float64Array(outCount).fill(init);
    const keptStrides = stridesOf(keptShape);
    const coords = new Array<number>(input.shape.length).fill(0);
    for (let index = 0; index < values.length; index++) {
      let target = 0;
      for (let dim = 0; dim < coords.length; dim++) target += (reduced.has(dim) ? 0 : coords[dim]) * keptStrides[dim];
      const x = values[index];
      acc[target] = opType === 'ReduceMax' ? Math.max(acc[target], x) : opType === 'ReduceMin' ? Math.min(acc[target], x)
        : opType === 'ReduceProd' ? acc[target] * x : acc[target] + x;
      for (let dim = coords.length - 1; dim >= 0; dim--) {
        if (++coords[dim] < input.shape[dim]) break;
        coords[dim] = 0;
      }
    }
    const count = product(axes.map((axis) => input.shape[axis]));
    // The mean of nothing is 0, as onnxruntime computes it (the sum, not 0 / 0).
    const result = opType === 'ReduceMean' ? acc.map((sum) => (count === 0 ? 0 : sum / count)) : acc;
    return [store(context.outputTypes[0], outShape, result)];
  };
}

export function reduceSpec(opType: string): OperatorSpec {
  return {
    attributes: ['axes', 'keepdims', 'noop_with_empty_axes'],
    inputs: [1, 2],
    parameters: [1],
    types: sameAsInput,
    cpu: reduce(opType),
    device: (context) => reductionDevice(context, REDUCE_OP_OF[opType]),
  };
}

/** The reduce kernel computing `op` over the node's axes (attribute or input), keepdims and noop_with_empty_axes. */
export function reductionDevice(context: LoadContext, op: ReduceOp): DeviceOperator {
  const { node, opset } = context;
  const keepDims = booleanAttribute(node, 'keepdims', true);
  const noop = booleanAttribute(node, 'noop_with_empty_axes', false);
  return {
    kind: 'kernel',
    variants: reduceVariants(inputStorage(context, 0)),
    plan(inputs, maxPerDimension) {
      const shape = required(inputs, 0).shape;
      const { outShape, axes } = reduceShape(shape, reduceAxes(node, opset, inputs), keepDims, noop);
      return { outputShapes: [outShape], dispatches: [{ ...reduceDispatch(shape, axes, op, maxPerDimension), bindings: io(1) }] };
    },
  };
}

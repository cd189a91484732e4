/**
 * ArgMax / ArgMin (axis, keepdims, select_last_index) and CumSum (exclusive, reverse; the axis
 * an input read on the host): row kernels along one axis on the GPU, and CPU implementations for
 * constants and shape computations.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { argReduceDispatch, argReduceVariant, type AxisProblem, cumSumDispatch, cumSumVariant } from '../kernels/index.ts';
import { normalizeAxis, numberView, product, toNumbers } from '../tensor/index.ts';
import { booleanAttribute, intAttribute, invalidNode } from './attributes.ts';
import type { CpuContext, NodeInput, OperatorSpec } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { required, requiredValue } from './parameters.ts';
import { inputStorage, io, sameAsInput } from './spec-parts.ts';

/** `shape` seen from `axis` (already normalized). */
function axisProblem(shape: readonly number[], axis: number): AxisProblem {
  return { outer: product(shape.slice(0, axis)), axisLength: shape[axis], inner: product(shape.slice(axis + 1)) };
}

// ArgMax / ArgMin

function argAxis(node: NodeProto, shape: readonly number[]): { axis: number; outShape: number[] } {
  const axis = normalizeAxis(intAttribute(node, 'axis', 0), shape.length);
  if (shape[axis] === 0) throw invalidArgument(`${node.opType} along axis ${axis} of [${shape}], which is empty: there is no index to return`);
  const outShape = booleanAttribute(node, 'keepdims', true) ? shape.map((dim, index) => (index === axis ? 1 : dim)) : shape.filter((_, index) => index !== axis);
  return { axis, outShape };
}

function cpuArgReduce(smallest: boolean) {
  return (context: CpuContext): HostTensor[] => {
    const input = requiredValue(context, 0);
    const { axis, outShape } = argAxis(context.node, input.shape);
    reserve(context, outShape, 'INT64');
    const { outer, axisLength, inner } = axisProblem(input.shape, axis);
    const selectLast = booleanAttribute(context.node, 'select_last_index');
    const values = numberView(input);
    const indices = new Float64Array(outer * inner);
    for (let row = 0; row < indices.length; row++) {
      const base = Math.floor(row / inner) * axisLength * inner + (row % inner);
      let best = values[base];
      for (let j = 1; j < axisLength; j++) {
        const value = values[base + j * inner];
        if ((smallest ? value < best : value > best) || (selectLast && value === best)) {
          best = value;
          indices[row] = j;
        }
      }
    }
    return [store('INT64', outShape, indices)];
  };
}

export function argReduceSpec(smallest: boolean): OperatorSpec {
  return {
    attributes: ['axis', 'keepdims', 'select_last_index'],
    inputs: [1, 1],
    types: (): Datatype[] => ['INT64'],
    validate(node) {
      booleanAttribute(node, 'keepdims', true);
      booleanAttribute(node, 'select_last_index');
    },
    cpu: cpuArgReduce(smallest),
    device(context) {
      const { node } = context;
      const selectLast = booleanAttribute(node, 'select_last_index');
      return {
        kind: 'kernel',
        variants: [argReduceVariant(inputStorage(context, 0))],
        plan(inputs, maxPerDimension) {
          const shape = required(inputs, 0).shape;
          const { axis, outShape } = argAxis(node, shape);
          return { outputShapes: [outShape], dispatches: [{ ...argReduceDispatch(axisProblem(shape, axis), smallest, selectLast, maxPerDimension), bindings: io(1) }] };
        },
      };
    },
  };
}

// CumSum

/** The axis input: a scalar (or one-element) integer tensor known on the host. */
function cumSumAxis(node: NodeProto, inputs: ReadonlyArray<NodeInput | undefined>): number {
  const tensor = inputs[1]?.value;
  if (!tensor) throw invalidNode(node, 'the axis input is not known before the GPU runs');
  const values = toNumbers(tensor);
  if (values.length !== 1) throw invalidArgument(`CumSum's axis has ${values.length} values, expected one`);
  return normalizeAxis(values[0], required(inputs, 0).shape.length);
}

function cpuCumSum(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  reserve(context, input.shape, context.outputTypes[0]);
  const { outer, axisLength, inner } = axisProblem(input.shape, cumSumAxis(context.node, context.inputs));
  const exclusive = booleanAttribute(context.node, 'exclusive');
  const reverse = booleanAttribute(context.node, 'reverse');
  const values = numberView(input);
  const sums = new Float64Array(values.length);
  for (let row = 0; row < outer * inner; row++) {
    const base = Math.floor(row / inner) * axisLength * inner + (row % inner);
    let sum = 0;
    for (let step = 0; step < axisLength; step++) {
      const index = base + (reverse ? axisLength - 1 - step : step) * inner;
      if (exclusive) sums[index] = sum;
      sum += values[index];
      if (!exclusive) sums[index] = sum;
    }
  }
  return [store(context.outputTypes[0], input.shape, sums)];
}

export const cumSumSpec: OperatorSpec = {
  attributes: ['exclusive', 'reverse'],
  inputs: [2, 2],
  parameters: [1],
  types: sameAsInput,
  validate(node) {
    booleanAttribute(node, 'exclusive');
    booleanAttribute(node, 'reverse');
  },
  cpu: cpuCumSum,
  device(context) {
    const { node } = context;
    const exclusive = booleanAttribute(node, 'exclusive');
    const reverse = booleanAttribute(node, 'reverse');
    return {
      kind: 'kernel',
      variants: [cumSumVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        const problem = axisProblem(shape, cumSumAxis(node, inputs));
        return { outputShapes: [shape], dispatches: [{ ...cumSumDispatch(problem, exclusive, reverse, maxPerDimension), bindings: io(1) }] };
      },
    };
  },
};

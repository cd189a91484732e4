/**
 * TopK: the K largest (or smallest, opset 11) elements along an axis and their indices, sorted,
 * equal values by lower index (as onnxruntime orders them). K is the attribute before opset 10
 * and an input from 10, read on the host (a K computed on the GPU is read back first). One
 * workgroup per row on the GPU (shaders/indexing/topk.wgsl); a CPU implementation folds constants.
 */
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { topKDispatch, topKVariant } from '../kernels/selection.ts';
import { fromNumbers, kindOf, normalizeAxis, numberView, product, showShape, toNumbers } from '../tensor/index.ts';
import { booleanAttribute, intAttribute, unsupported } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { pick, reserve } from './cpu-indexing.ts';
import { required, requiredValue, type ParameterInputs } from './parameters.ts';
import { inputStorage } from './spec-parts.ts';

interface TopKOptions {
  readonly axis: number;
  readonly largest: boolean;
}

function optionsOf(node: CpuContext['node'], opset: number): TopKOptions {
  return { axis: intAttribute(node, 'axis', -1), largest: opset < 11 || booleanAttribute(node, 'largest', true) };
}

/** K from the attribute (opset < 10) or input 1; INVALID_ARGUMENT unless 0 <= K <= the axis length. */
function kOf(node: CpuContext['node'], opset: number, inputs: ParameterInputs, axisLength: number): number {
  let k: number;
  if (opset < 10) {
    k = intAttribute(node, 'k', -1);
  } else {
    const tensor = inputs[1]?.value;
    if (!tensor) throw invalidArgument('TopK needs K');
    const values = toNumbers(tensor);
    if (values.length !== 1) throw invalidArgument(`TopK K must be one value, got ${showShape(tensor.shape)}`);
    k = values[0];
  }
  if (!(Number.isInteger(k) && k >= 0 && k <= axisLength)) throw invalidArgument(`TopK K ${k} must be in 0..${axisLength} (the axis length)`);
  return k;
}

/** The [outer, length, inner] view and the output shape. */
function topKProblem(shape: readonly number[], options: TopKOptions, k: (axisLength: number) => number) {
  if (shape.length === 0) throw invalidArgument('TopK needs an input of rank >= 1');
  const axis = normalizeAxis(options.axis, shape.length);
  const count = k(shape[axis]);
  const outShape = shape.map((dim, index) => (index === axis ? count : dim));
  return { outer: product(shape.slice(0, axis)), length: shape[axis], inner: product(shape.slice(axis + 1)), k: count, outShape };
}

function cpuTopK(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const options = optionsOf(context.node, context.opset);
  const { outer, length, inner, k, outShape } = topKProblem(input.shape, options, (axisLength) => kOf(context.node, context.opset, context.inputs, axisLength));
  reserve(context, outShape, input.datatype);
  const values = numberView(input);
  const picks = new Float64Array(product(outShape));
  const positions = new Float64Array(picks.length);
  const order = Array.from({ length }, (_, index) => index);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (e: number) => values[(o * length + e) * inner + i];
      order.sort((a, b) => (at(a) === at(b) ? a - b : options.largest ? at(b) - at(a) : at(a) - at(b)));
      for (let j = 0; j < k; j++) {
        picks[(o * k + j) * inner + i] = (o * length + order[j]) * inner + i;
        positions[(o * k + j) * inner + i] = order[j];
      }
      order.sort((a, b) => a - b);
    }
  }
  return [pick(input, outShape, picks), fromNumbers('INT64', outShape, positions)];
}

export const topKSpec: OperatorSpec = {
  attributes: ['axis', 'k', 'largest', 'sorted'],
  inputs: [1, 2],
  outputs: [1, 2],
  computesEveryOutput: true,
  parameters: [1],
  types: ({ inputTypes }) => [inputTypes[0] ?? 'FP32', 'INT64'],
  validate(node, opset) {
    if (opset < 10 && intAttribute(node, 'k', -1) < 0) throw unsupported(node, 'no k attribute (TopK before opset 10 takes K as an attribute)');
    if (opset >= 11) {
      booleanAttribute(node, 'largest', true);
      // sorted=0 leaves the order to the implementation: ours is sorted either way.
      booleanAttribute(node, 'sorted', true);
    }
  },
  cpu: cpuTopK,
  device(context) {
    const { node, opset } = context;
    const datatype = context.inputs[0].datatype!;
    if (kindOf(datatype) === 'bool') throw unsupported(node, 'BOOL input');
    const options = optionsOf(node, opset);
    return {
      kind: 'kernel',
      variants: [topKVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const { outer, length, inner, k, outShape } = topKProblem(required(inputs, 0).shape, options, (axisLength) => kOf(node, opset, inputs, axisLength));
        return {
          outputShapes: [outShape, [...outShape]],
          dispatches: [{ ...topKDispatch(outer, length, inner, k, options.largest, maxPerDimension), bindings: [{ input: 0 }, { output: 0 }, { output: 1 }] }],
        };
      },
    };
  },
};

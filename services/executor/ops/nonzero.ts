/**
 * Operators whose output shapes depend on their input values. NonZero runs on the GPU in one
 * workgroup that also writes the output's dims, which the runtime reads back before anything
 * reads the output (DeviceOperator.deviceShaped). Unique runs on the CPU: with an input computed
 * on the GPU the run reads it back first (compiler/segments.ts), and its outputs are host values
 * (uploaded where a GPU step reads them).
 */
import type { HostTensor } from '../../onnx/model.ts';
import { nonZeroDispatch, nonZeroVariant } from '../kernels/selection.ts';
import { fromNumbers, normalizeAxis, numberView, product, stridesOf } from '../tensor/index.ts';
import { attributeOf, booleanAttribute, intAttribute } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { pick, reserve } from './cpu-indexing.ts';
import { required, requiredValue } from './parameters.ts';
import { inputStorage } from './spec-parts.ts';

// NonZero

function cpuNonZero(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const values = numberView(input);
  const rank = input.shape.length;
  let count = 0;
  for (let index = 0; index < values.length; index++) if (values[index] !== 0) count++;
  reserve(context, [rank, count], 'INT64');
  const coords = new Float64Array(rank * count);
  const strides = stridesOf(input.shape);
  let next = 0;
  for (let index = 0; index < values.length; index++) {
    if (values[index] === 0) continue;
    let rest = index;
    for (let dim = 0; dim < rank; dim++) {
      coords[dim * count + next] = Math.floor(rest / strides[dim]);
      rest %= strides[dim];
    }
    next++;
  }
  return [fromNumbers('INT64', [rank, count], coords)];
}

export const nonZeroSpec: OperatorSpec = {
  attributes: [],
  inputs: [1, 1],
  types: () => ['INT64'],
  cpu: cpuNonZero,
  device(context) {
    return {
      kind: 'kernel',
      variants: [nonZeroVariant(inputStorage(context, 0))],
      deviceShaped: [0],
      plan(inputs) {
        const shape = required(inputs, 0).shape;
        // The buffer holds the case where every element is non-zero; the dims say how much is used.
        return {
          outputShapes: [[shape.length, product(shape)]],
          dispatches: [{ ...nonZeroDispatch(shape), bindings: [{ input: 0 }, { output: 0 }, { dims: 0 }] }],
        };
      },
    };
  },
};

// Unique

/** Compares two slices of `values` (each `size` long, starting at a and b) element by element. */
function compareSlices(values: ArrayLike<number>, a: number, b: number, size: number): number {
  for (let index = 0; index < size; index++) {
    const difference = values[a + index] - values[b + index];
    if (difference !== 0) return difference;
  }
  return 0;
}

function cpuUnique(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const sorted = booleanAttribute(context.node, 'sorted', true);
  const hasAxis = attributeOf(context.node, 'axis') !== undefined;
  // Without an axis, the flattened elements are the items; with one, the slices along it.
  const shape = hasAxis ? input.shape : [product(input.shape)];
  const axis = hasAxis ? normalizeAxis(intAttribute(context.node, 'axis', 0), shape.length) : 0;
  const outer = product(shape.slice(0, axis));
  const length = shape[axis];
  const inner = product(shape.slice(axis + 1));
  // Items laid out contiguously: item e is [outer, inner] at row e.
  const values = numberView(input);
  const itemSize = outer * inner;
  const items = new Float64Array(length * itemSize);
  for (let o = 0; o < outer; o++) {
    for (let e = 0; e < length; e++) for (let i = 0; i < inner; i++) items[e * itemSize + o * inner + i] = values[(o * length + e) * inner + i];
  }
  const firsts: number[] = [];
  const inverse = new Float64Array(length);
  const counts: number[] = [];
  // Items by their values (a number, or a slice's values joined): one lookup per item.
  const seen = new Map<number | string, number>();
  for (let e = 0; e < length; e++) {
    const key = itemSize === 1 ? items[e] : items.subarray(e * itemSize, (e + 1) * itemSize).join(',');
    const found = seen.get(key);
    if (found !== undefined) {
      inverse[e] = found;
      counts[found]++;
    } else {
      inverse[e] = firsts.length;
      seen.set(key, firsts.length);
      firsts.push(e);
      counts.push(1);
    }
  }
  let order = firsts.map((_, index) => index);
  if (sorted) order = order.sort((a, b) => compareSlices(items, firsts[a] * itemSize, firsts[b] * itemSize, itemSize));
  const rank = new Float64Array(order.length);
  order.forEach((unique, position) => { rank[unique] = position; });
  const outShape = hasAxis ? input.shape.map((dim, index) => (index === axis ? order.length : dim)) : [order.length];
  reserve(context, outShape, input.datatype);
  const picks = new Float64Array(product(outShape));
  for (let o = 0; o < outer; o++) {
    order.forEach((unique, position) => {
      for (let i = 0; i < inner; i++) picks[(o * order.length + position) * inner + i] = (o * length + firsts[unique]) * inner + i;
    });
  }
  return [
    pick(input, outShape, picks),
    fromNumbers('INT64', [order.length], order.map((unique) => firsts[unique])),
    fromNumbers('INT64', [length], Array.from(inverse, (unique) => rank[unique])),
    fromNumbers('INT64', [order.length], order.map((unique) => counts[unique])),
  ].slice(0, context.node.output.length);
}

export const uniqueSpec: OperatorSpec = {
  attributes: ['axis', 'sorted'],
  inputs: [1, 1],
  outputs: [1, 4],
  computesEveryOutput: true,
  types: ({ node, inputTypes }) => node.output.map((_, index) => (index === 0 ? inputTypes[0] ?? 'FP32' : 'INT64')),
  validate(node) {
    booleanAttribute(node, 'sorted', true);
  },
  cpu: cpuUnique,
};

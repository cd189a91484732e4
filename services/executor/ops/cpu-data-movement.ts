/**
 * CPU implementations of the data-movement and reshaping operators (Reshape, Flatten, Squeeze,
 * Unsqueeze, Concat, Split, Slice, Gather, Transpose, Expand, Tile, Pad, Identity). They fold
 * constant subgraphs at load and evaluate shape computations such as Shape -> Gather -> Concat
 * once per input shape, so the GPU never sees them. Each output is reserved with the context's
 * allocator (the compile's budgets) before it is allocated.
 */
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import {
  broadcastShapes, concatShape, flattenShape, gatherShape, normalizeAxis, padAmounts, product, reshapeShape, sliceAxes, splitSizes,
  numberView, squeezeShape, stridesOf, tileShape, toNumbers, transposeShape, typedArrayFor, unsqueezeShape,
} from '../tensor/index.ts';
import { intAttribute, intsAttribute, stringAttribute } from './attributes.ts';
import type { CpuContext } from './contract.ts';
import { broadcastIndices, elementAt, elementOf, pick, reserve, setElement, stridedIndices, withShape } from './cpu-indexing.ts';
import { padParameters, reshapeTarget, requiredValue, sliceParameters, splitOf, squeezeAxes } from './parameters.ts';

export function cpuReshape(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  return [withShape(input, reshapeShape(input.shape, reshapeTarget(context.node, context.inputs), intAttribute(context.node, 'allowzero', 0) === 1))];
}

export function cpuFlatten(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  return [withShape(input, flattenShape(input.shape, intAttribute(context.node, 'axis', 1)))];
}

export function cpuSqueeze(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  return [withShape(input, squeezeShape(input.shape, squeezeAxes(context.node, context.opset, context.inputs)))];
}

export function cpuUnsqueeze(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const axes = squeezeAxes(context.node, context.opset, context.inputs);
  if (!axes) throw invalidArgument('Unsqueeze needs axes');
  return [withShape(input, unsqueezeShape(input.shape, axes))];
}

export function cpuConcat(context: CpuContext): HostTensor[] {
  const inputs = context.inputs.map((_, index) => requiredValue(context, index));
  const { outShape, axis } = concatShape(inputs.map((input) => input.shape), intAttribute(context.node, 'axis', 0));
  const datatype = context.outputTypes[0];
  reserve(context, outShape, datatype);
  const outer = product(outShape.slice(0, axis));
  const inner = product(outShape.slice(axis + 1));
  // Concat's inputs share one datatype, so blocks are copied as they are stored.
  const data = typedArrayFor(datatype, product(outShape));
  const target = data as { set(source: ArrayLike<number | bigint>, offset: number): void };
  let next = 0;
  for (let o = 0; o < outer; o++) {
    for (const input of inputs) {
      const block = input.shape[axis] * inner;
      target.set(input.data.subarray(o * block, (o + 1) * block) as ArrayLike<number | bigint>, next);
      next += block;
    }
  }
  return [{ datatype, shape: outShape, data }];
}

export function cpuSplit(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const axis = normalizeAxis(intAttribute(context.node, 'axis', 0), input.shape.length);
  const sizes = splitSizes(input.shape[axis], context.node.output.length, splitOf(context.node, context.opset, context.inputs));
  const strides = stridesOf(input.shape);
  let start = 0;
  return sizes.map((size) => {
    const shape = [...input.shape];
    shape[axis] = size;
    reserve(context, shape, input.datatype);
    const result = pick(input, shape, stridedIndices(shape, strides, start * strides[axis], product(input.shape)));
    start += size;
    return result;
  });
}

export function cpuSlice(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { starts, ends, axes, steps } = sliceParameters(context.node, context.opset, context.inputs);
  const sliced = sliceAxes(input.shape, starts, ends, axes, steps);
  const strides = stridesOf(input.shape);
  const offset = sliced.reduce((total, axis, dim) => total + axis.start * strides[dim], 0);
  const shape = sliced.map((axis) => axis.count);
  reserve(context, shape, input.datatype);
  return [pick(input, shape, stridedIndices(shape, sliced.map((axis, dim) => axis.step * strides[dim]), product(shape) === 0 ? 0 : offset))];
}

export function cpuGather(context: CpuContext): HostTensor[] {
  const data = requiredValue(context, 0);
  const indices = requiredValue(context, 1);
  const { outShape, axis } = gatherShape(data.shape, indices.shape, intAttribute(context.node, 'axis', 0));
  reserve(context, outShape, data.datatype);
  const outer = product(data.shape.slice(0, axis));
  const inner = product(data.shape.slice(axis + 1));
  const axisLength = data.shape[axis];
  const indexValues = numberView(indices);
  const picks = new Float64Array(product(outShape));
  let next = 0;
  for (let o = 0; o < outer; o++) {
    for (let position = 0; position < indexValues.length; position++) {
      const raw = indexValues[position];
      const k = raw < 0 ? raw + axisLength : raw;
      if (!(k >= 0 && k < axisLength)) throw invalidArgument(`Gather index ${raw} is out of range for an axis of ${axisLength}`);
      for (let i = 0; i < inner; i++) picks[next++] = (o * axisLength + k) * inner + i;
    }
  }
  return [pick(data, outShape, picks)];
}

export function cpuTranspose(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { outShape, perm } = transposeShape(input.shape, intsAttribute(context.node, 'perm'));
  reserve(context, outShape, input.datatype);
  const strides = stridesOf(input.shape);
  return [pick(input, outShape, stridedIndices(outShape, perm.map((axis) => strides[axis]), 0))];
}

export function cpuExpand(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const outShape = broadcastShapes(input.shape, toNumbers(requiredValue(context, 1)));
  reserve(context, outShape, input.datatype);
  return [pick(input, outShape, broadcastIndices(input.shape, outShape))];
}

export function cpuTile(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const outShape = tileShape(input.shape, toNumbers(requiredValue(context, 1)));
  reserve(context, outShape, input.datatype);
  const strides = stridesOf(input.shape);
  const indices = new Float64Array(product(outShape));
  for (let index = 0; index < indices.length; index++) {
    let rest = index;
    let source = 0;
    for (let dim = outShape.length - 1; dim >= 0; dim--) {
      const coord = rest % outShape[dim];
      rest = Math.floor(rest / outShape[dim]);
      source += (coord % input.shape[dim]) * strides[dim];
    }
    indices[index] = source;
  }
  return [pick(input, outShape, indices)];
}

export function cpuPad(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { pads, value: fill, axes } = padParameters(context.node, context.opset, context.inputs);
  const mode = stringAttribute(context.node, 'mode', 'constant');
  const { begin, end, outShape } = padAmounts(input.shape, pads, axes);
  reserve(context, outShape, input.datatype);
  const strides = stridesOf(input.shape);
  const data = typedArrayFor(input.datatype, product(outShape));
  const fillElement = elementOf(input.datatype, fill);
  for (let index = 0; index < data.length; index++) {
    let rest = index;
    let source = 0;
    for (let dim = outShape.length - 1; dim >= 0 && source >= 0; dim--) {
      const n = input.shape[dim];
      let c = (rest % outShape[dim]) - begin[dim];
      rest = Math.floor(rest / outShape[dim]);
      if (c < 0 || c >= n) {
        if (mode === 'constant') {
          source = -1;
          break;
        }
        if (mode === 'edge') c = Math.min(Math.max(c, 0), n - 1);
        else if (mode === 'wrap') {
          // Round what negative pads leave of the axis, as onnxruntime does.
          const low = Math.max(-begin[dim], 0);
          const span = Math.max(n - low - Math.max(-end[dim], 0), 1);
          c = low + ((((c - low) % span) + span) % span);
        }
        else {
          const period = Math.max(2 * (n - 1), 1);
          c = ((c % period) + period) % period;
          if (c >= n) c = period - c;
        }
      }
      source += c * strides[dim];
    }
    setElement(data, index, source < 0 ? fillElement : elementAt(input.data, source));
  }
  return [{ datatype: input.datatype, shape: outShape, data }];
}

export function cpuIdentity(context: CpuContext): HostTensor[] {
  return [requiredValue(context, 0)];
}

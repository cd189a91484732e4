/**
 * CPU implementations of the data-movement and reshaping operators (Reshape, Flatten, Squeeze,
 * Unsqueeze, Concat, Split, Slice, Gather, Transpose, Expand, Tile, Pad, Identity). They fold
 * constant subgraphs at load and evaluate shape computations such as Shape -> Gather -> Concat
 * once per input shape, so the GPU never sees them.
 */
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import {
  broadcastShapes, concatShape, flattenShape, gatherShape, normalizeAxis, padAmounts, product, reshapeShape, sliceAxes, splitSizes,
  squeezeShape, stridesOf, tileShape, toNumbers, transposeShape, unsqueezeShape,
} from '../tensor/index.ts';
import { intAttribute, intsAttribute, stringAttribute } from './attributes.ts';
import type { CpuContext } from './contract.ts';
import { broadcastIndices, pick, store, stridedIndices, withShape } from './cpu-indexing.ts';
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
  const outer = product(outShape.slice(0, axis));
  const inner = product(outShape.slice(axis + 1));
  // Element by element: spreading a block into push() overflows the stack for blocks of more
  // than ~100k values (large initializers folded at load).
  const values = new Array<number>(product(outShape));
  const sources = inputs.map(toNumbers);
  let next = 0;
  for (let o = 0; o < outer; o++) {
    inputs.forEach((input, index) => {
      const block = input.shape[axis] * inner;
      const source = sources[index];
      for (let offset = o * block; offset < (o + 1) * block; offset++) values[next++] = source[offset];
    });
  }
  return [store(context.outputTypes[0], outShape, values)];
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
    const result = pick(input, shape, stridedIndices(shape, strides, start * strides[axis]));
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
  return [pick(input, shape, stridedIndices(shape, sliced.map((axis, dim) => axis.step * strides[dim]), product(shape) === 0 ? 0 : offset))];
}

export function cpuGather(context: CpuContext): HostTensor[] {
  const data = requiredValue(context, 0);
  const indices = requiredValue(context, 1);
  const { outShape, axis } = gatherShape(data.shape, indices.shape, intAttribute(context.node, 'axis', 0));
  const outer = product(data.shape.slice(0, axis));
  const inner = product(data.shape.slice(axis + 1));
  const axisLength = data.shape[axis];
  const picks: number[] = [];
  const indexValues = toNumbers(indices);
  for (let o = 0; o < outer; o++) {
    for (const raw of indexValues) {
      const k = raw < 0 ? raw + axisLength : raw;
      if (k < 0 || k >= axisLength) throw invalidArgument(`Gather index ${raw} is out of range for an axis of ${axisLength}`);
      for (let i = 0; i < inner; i++) picks.push((o * axisLength + k) * inner + i);
    }
  }
  return [pick(data, outShape, picks)];
}

export function cpuTranspose(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { outShape, perm } = transposeShape(input.shape, intsAttribute(context.node, 'perm'));
  const strides = stridesOf(input.shape);
  return [pick(input, outShape, stridedIndices(outShape, perm.map((axis) => strides[axis]), 0))];
}

export function cpuExpand(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const outShape = broadcastShapes(input.shape, toNumbers(requiredValue(context, 1)));
  return [pick(input, outShape, broadcastIndices(input.shape, outShape))];
}

export function cpuTile(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const outShape = tileShape(input.shape, toNumbers(requiredValue(context, 1)));
  const strides = stridesOf(input.shape);
  const indices = stridedIndices(outShape, outShape.map(() => 0), 0).map((_, index) => {
    let rest = index;
    let source = 0;
    for (let dim = outShape.length - 1; dim >= 0; dim--) {
      const coord = rest % outShape[dim];
      rest = Math.floor(rest / outShape[dim]);
      source += (coord % input.shape[dim]) * strides[dim];
    }
    return source;
  });
  return [pick(input, outShape, indices)];
}

export function cpuPad(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { pads, value: fill, axes } = padParameters(context.node, context.opset, context.inputs);
  const mode = stringAttribute(context.node, 'mode', 'constant');
  const { begin, end, outShape } = padAmounts(input.shape, pads, axes);
  const values = toNumbers(input);
  const strides = stridesOf(input.shape);
  const out = stridedIndices(outShape, outShape.map(() => 0), 0).map((_, index) => {
    let rest = index;
    let source = 0;
    for (let dim = outShape.length - 1; dim >= 0; dim--) {
      const n = input.shape[dim];
      let c = (rest % outShape[dim]) - begin[dim];
      rest = Math.floor(rest / outShape[dim]);
      if (c < 0 || c >= n) {
        if (mode === 'constant') return fill;
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
    return values[source];
  });
  return [store(input.datatype, outShape, out)];
}

export function cpuIdentity(context: CpuContext): HostTensor[] {
  return [requiredValue(context, 0)];
}

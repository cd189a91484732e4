/**
 * Static shape rules of the data-movement, shape and reduction operators: pure functions from
 * input shapes (and attribute values) to output shapes. They throw INVALID_ARGUMENT when the
 * shapes do not fit together; the caller adds which node it was.
 */
import { invalidArgument } from '../../domain/errors.ts';
import { normalizeAxes, normalizeAxis, product, showShape as show } from './shape.ts';

/**
 * Reshape's output: 0 copies the input dim at that position (unless `allowZero`), one -1 takes
 * whatever is left.
 */
export function reshapeShape(inputShape: readonly number[], target: readonly number[], allowZero: boolean): number[] {
  const out = target.map((dim, index) => {
    if (dim === 0 && !allowZero) {
      if (index >= inputShape.length) throw invalidArgument(`Reshape target ${show(target)} copies dim ${index} of rank-${inputShape.length} input`);
      return inputShape[index];
    }
    return dim;
  });
  const inferred = out.indexOf(-1);
  if (out.some((dim, index) => dim < -1 || (dim === -1 && index !== inferred))) {
    throw invalidArgument(`Reshape target ${show(target)} may hold at most one -1 and no other negative dim`);
  }
  const count = product(inputShape);
  if (inferred >= 0) {
    const known = product(out.filter((_, index) => index !== inferred));
    if (known === 0 || count % known !== 0) {
      throw invalidArgument(`cannot reshape ${show(inputShape)} (${count} elements) to ${show(target)}`);
    }
    out[inferred] = count / known;
  }
  if (product(out) !== count) {
    throw invalidArgument(`cannot reshape ${show(inputShape)} (${count} elements) to ${show(target)}`);
  }
  return out;
}

/** Flatten: [prod(dims before axis), prod(dims from axis)]. */
export function flattenShape(shape: readonly number[], axis: number): number[] {
  const split = normalizeAxis(axis, shape.length, true);
  return [product(shape.slice(0, split)), product(shape.slice(split))];
}

/** Squeeze: drops the given size-1 axes, or every size-1 dim when `axes` is undefined. */
export function squeezeShape(shape: readonly number[], axes: readonly number[] | undefined): number[] {
  if (!axes) return shape.filter((dim) => dim !== 1);
  const drop = new Set(normalizeAxes(axes, shape.length));
  for (const axis of drop) {
    if (shape[axis] !== 1) throw invalidArgument(`cannot squeeze axis ${axis} of ${show(shape)}: its size is ${shape[axis]}, not 1`);
  }
  return shape.filter((_, axis) => !drop.has(axis));
}

/** Unsqueeze: inserts size-1 dims at `axes` of the output. */
export function unsqueezeShape(shape: readonly number[], axes: readonly number[]): number[] {
  const rank = shape.length + axes.length;
  const inserted = new Set(normalizeAxes(axes, rank));
  const out: number[] = [];
  let next = 0;
  for (let axis = 0; axis < rank; axis++) out.push(inserted.has(axis) ? 1 : shape[next++]);
  return out;
}

/** Concat along `axis`: the other dims must agree. */
export function concatShape(shapes: ReadonlyArray<readonly number[]>, axis: number): { outShape: number[]; axis: number } {
  const rank = shapes[0].length;
  const dim = normalizeAxis(axis, rank);
  const out = [...shapes[0]];
  out[dim] = 0;
  for (const shape of shapes) {
    if (shape.length !== rank || shape.some((size, index) => index !== dim && size !== shapes[0][index])) {
      throw invalidArgument(`Concat along axis ${axis} needs equal other dims, got ${shapes.map(show).join(', ')}`);
    }
    out[dim] += shape[dim];
  }
  return { outShape: out, axis: dim };
}

/** Split sizes along `axis`: explicit `split`, or `outputs` near-equal parts (the last smaller). */
export function splitSizes(length: number, outputs: number, split: readonly number[] | undefined): number[] {
  if (split) {
    if (split.length !== outputs || split.some((size) => size < 0) || split.reduce((sum, size) => sum + size, 0) !== length) {
      throw invalidArgument(`split [${split}] does not divide a dim of ${length} into ${outputs} parts`);
    }
    return [...split];
  }
  const part = Math.ceil(length / outputs);
  return Array.from({ length: outputs }, (_, index) => Math.max(0, Math.min(part, length - index * part)));
}

/** One sliced axis: the first index taken, how many, and the step between them. */
export interface SliceAxis {
  start: number;
  count: number;
  step: number;
}

/** Slice (opset 10+): per-axis start/end/step, clamped as ONNX specifies; untouched axes whole. */
export function sliceAxes(
  shape: readonly number[], starts: readonly number[], ends: readonly number[], axes: readonly number[] | undefined, steps: readonly number[] | undefined,
): SliceAxis[] {
  const rank = shape.length;
  const axisList = axes ?? starts.map((_, index) => index);
  if (starts.length !== ends.length || axisList.length !== starts.length || (steps && steps.length !== starts.length)) {
    throw invalidArgument(`Slice starts [${starts}], ends [${ends}], axes [${axisList}], steps [${steps ?? []}] differ in length`);
  }
  const result: SliceAxis[] = shape.map((dim) => ({ start: 0, count: dim, step: 1 }));
  const seen = new Set<number>();
  axisList.forEach((rawAxis, index) => {
    const axis = normalizeAxis(rawAxis, rank);
    if (seen.has(axis)) throw invalidArgument(`Slice axes [${axisList}] repeat axis ${axis}`);
    seen.add(axis);
    const dim = shape[axis];
    const step = steps?.[index] ?? 1;
    if (step === 0) throw invalidArgument('Slice steps must not be 0');
    let start = starts[index];
    let end = ends[index];
    start = start < 0 ? start + dim : start;
    end = end < 0 ? end + dim : end;
    if (step > 0) {
      start = Math.min(Math.max(start, 0), dim);
      end = Math.min(Math.max(end, 0), dim);
      result[axis] = { start, count: Math.max(0, Math.ceil((end - start) / step)), step };
    } else {
      start = Math.min(Math.max(start, -1), dim - 1);
      end = Math.min(Math.max(end, -1), dim - 1);
      result[axis] = { start, count: Math.max(0, Math.ceil((end - start) / step)), step };
    }
  });
  return result;
}

/** Transpose: the permutation (default: reverse the dims) and the output shape. */
export function transposeShape(shape: readonly number[], perm: readonly number[] | undefined): { outShape: number[]; perm: number[] } {
  const order = perm ? [...perm] : shape.map((_, index) => shape.length - 1 - index);
  if (order.length !== shape.length || [...order].sort((a, b) => a - b).some((axis, index) => axis !== index)) {
    throw invalidArgument(`Transpose perm [${order}] is not a permutation of ${shape.length} axes`);
  }
  return { outShape: order.map((axis) => shape[axis]), perm: order };
}

/** Tile: each dim times its repeat. */
export function tileShape(shape: readonly number[], repeats: readonly number[]): number[] {
  if (repeats.length !== shape.length || repeats.some((repeat) => repeat < 0)) {
    throw invalidArgument(`Tile repeats [${repeats}] must be ${shape.length} non-negative counts`);
  }
  return shape.map((dim, index) => dim * repeats[index]);
}

/** Pad: pads (begin for each axis, then end for each axis) over `axes` (default all). */
export function padAmounts(shape: readonly number[], pads: readonly number[], axes: readonly number[] | undefined): { begin: number[]; end: number[]; outShape: number[] } {
  const rank = shape.length;
  const axisList = axes ? axes.map((axis) => normalizeAxis(axis, rank)) : shape.map((_, index) => index);
  if (pads.length !== 2 * axisList.length) {
    throw invalidArgument(`Pad needs ${2 * axisList.length} pads for ${axisList.length} axes, got ${pads.length}`);
  }
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  axisList.forEach((axis, index) => {
    begin[axis] = pads[index];
    end[axis] = pads[index + axisList.length];
  });
  const outShape = shape.map((dim, axis) => dim + begin[axis] + end[axis]);
  if (outShape.some((dim) => dim < 0)) throw invalidArgument(`pads [${pads}] crop ${show(shape)} below zero`);
  return { begin, end, outShape };
}

/** Gather along `axis`: data dims before axis, the indices' dims, data dims after axis. */
export function gatherShape(dataShape: readonly number[], indicesShape: readonly number[], axis: number): { outShape: number[]; axis: number } {
  const dim = normalizeAxis(axis, dataShape.length);
  return { outShape: [...dataShape.slice(0, dim), ...indicesShape, ...dataShape.slice(dim + 1)], axis: dim };
}

/** Reduce: the output shape and the reduced axes (empty `axes`: all, unless noopWithEmptyAxes). */
export function reduceShape(shape: readonly number[], axes: readonly number[] | undefined, keepDims: boolean, noopWithEmptyAxes: boolean): { outShape: number[]; axes: number[] } {
  let reduced: number[];
  if (!axes || axes.length === 0) {
    reduced = noopWithEmptyAxes ? [] : shape.map((_, index) => index);
  } else {
    reduced = normalizeAxes(axes, shape.length);
  }
  const set = new Set(reduced);
  const outShape = keepDims ? shape.map((dim, axis) => (set.has(axis) ? 1 : dim)) : shape.filter((_, axis) => !set.has(axis));
  return { outShape, axes: reduced };
}

/**
 * Softmax as [outer, axisLength, inner]. From opset 13 it runs along `axis` alone; before, the
 * input was coerced to 2-D at `axis` and softmax ran over all dims from `axis` on.
 */
export function softmaxProblem(shape: readonly number[], axis: number, opset: number): { outer: number; axisLength: number; inner: number } {
  if (shape.length === 0) throw invalidArgument('Softmax needs an input of rank >= 1');
  const split = normalizeAxis(axis, shape.length);
  if (opset < 13) {
    return { outer: product(shape.slice(0, split)), axisLength: product(shape.slice(split)), inner: 1 };
  }
  return { outer: product(shape.slice(0, split)), axisLength: shape[split], inner: product(shape.slice(split + 1)) };
}

/** Range: ceil((limit - start) / delta) elements, at least 0. */
export function rangeLength(start: number, limit: number, delta: number): number {
  if (delta === 0) throw invalidArgument('Range delta must not be 0');
  return Math.max(0, Math.ceil((limit - start) / delta));
}

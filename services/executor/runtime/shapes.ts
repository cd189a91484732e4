/**
 * Static shape rules of the supported ONNX operators: pure functions from input shapes (and
 * attribute values) to output shapes and the kernels' problem descriptions. They throw
 * INVALID_ARGUMENT when the shapes do not fit together; the caller adds which node it was.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { MatMulProblem } from '../kernels/matmul.ts';

export const product = (dims: readonly number[]) => dims.reduce((total, dim) => total * dim, 1);
const show = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** Row-major element strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let dim = shape.length - 1; dim >= 0; dim--) {
    strides[dim] = stride;
    stride *= shape[dim];
  }
  return strides;
}

/** The numpy (multidirectional) broadcast of any number of shapes. */
export function broadcastShapes(...shapes: ReadonlyArray<readonly number[]>): number[] {
  const rank = Math.max(0, ...shapes.map((shape) => shape.length));
  const out: number[] = [];
  for (let dim = 0; dim < rank; dim++) {
    let size = 1;
    for (const shape of shapes) {
      const value = shape[dim - (rank - shape.length)] ?? 1;
      if (value === 1) continue;
      if (size !== 1 && value !== size) {
        throw invalidArgument(`shapes ${shapes.map(show).join(' and ')} do not broadcast (dim ${dim}: ${size} vs ${value})`);
      }
      size = value;
    }
    // A 0-sized dim broadcasts against 1 only; 0 wins over 1.
    if (shapes.some((shape) => (shape[dim - (rank - shape.length)] ?? 1) === 0)) size = 0;
    out.push(size);
  }
  return out;
}

/** Element strides of `shape` over the dims of `outShape` it broadcasts to (0 where broadcast). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const offset = outShape.length - shape.length;
  const strides = new Array<number>(outShape.length).fill(0);
  let stride = 1;
  for (let dim = shape.length - 1; dim >= 0; dim--) {
    strides[dim + offset] = shape[dim] === 1 ? 0 : stride;
    stride *= shape[dim];
  }
  return strides;
}

/**
 * Drops size-1 dims of `shape` and merges neighbouring dims across which every stride set stays
 * contiguous (stepping the outer dim once equals stepping the inner one `size` times), so kernels
 * unravel as few dims as possible. Returns at least one dim.
 */
export function mergeDims(shape: readonly number[], strideSets: ReadonlyArray<readonly number[]>): { shape: number[]; strides: number[][] } {
  const merged = { shape: [] as number[], strides: strideSets.map(() => [] as number[]) };
  for (let dim = 0; dim < shape.length; dim++) {
    const size = shape[dim];
    if (size === 1) continue;
    const last = merged.shape.length - 1;
    if (last >= 0 && strideSets.every((strides, set) => merged.strides[set][last] === strides[dim] * size)) {
      merged.shape[last] *= size;
      strideSets.forEach((strides, set) => { merged.strides[set][last] = strides[dim]; });
    } else {
      merged.shape.push(size);
      strideSets.forEach((strides, set) => merged.strides[set].push(strides[dim]));
    }
  }
  if (merged.shape.length === 0) {
    merged.shape.push(1);
    merged.strides.forEach((strides) => strides.push(0));
  }
  return merged;
}

/** An axis in [-rank, rank - 1] (or [-rank, rank] with `allowEnd`) as a non-negative index. */
export function normalizeAxis(axis: number, rank: number, allowEnd = false): number {
  const upper = allowEnd ? rank : rank - 1;
  if (!Number.isInteger(axis) || axis < -rank || axis > upper) {
    throw invalidArgument(`axis ${axis} is out of range for rank ${rank} (allowed ${-rank}..${upper})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Distinct normalized axes, sorted. */
export function normalizeAxes(axes: readonly number[], rank: number): number[] {
  const normalized = axes.map((axis) => normalizeAxis(axis, rank));
  if (new Set(normalized).size !== normalized.length) throw invalidArgument(`axes [${axes}] repeat an axis`);
  return normalized.sort((left, right) => left - right);
}

/**
 * An operand stored with shape `stored` and read through the permutation `perm` (a Transpose
 * folded into the product): its logical shape and the element strides of each logical dim.
 */
function operandView(stored: readonly number[], perm: readonly number[] | undefined, what: string): { shape: number[]; strides: number[] } {
  const strides = stridesOf(stored);
  if (!perm) return { shape: [...stored], strides };
  const seen = new Set(perm);
  if (perm.length !== stored.length || seen.size !== perm.length || perm.some((dim) => !Number.isInteger(dim) || dim < 0 || dim >= stored.length)) {
    throw invalidArgument(`Transpose perm [${perm}] of MatMul ${what} does not fit its shape ${show(stored)}`);
  }
  return { shape: perm.map((dim) => stored[dim]), strides: perm.map((dim) => strides[dim]) };
}

/**
 * numpy.matmul: 1-D operands become a row (A) / column (B) vector and lose that dim again in the
 * output; batch dims broadcast. Batch dims are merged where both operands allow it, so the
 * kernel's 4 batch dims cover most outputs of rank <= 6. `aPerm` / `bPerm`: the operand is
 * stored with the given shape and read transposed by that permutation (through its strides).
 */
export function matmulShapes(
  aShape: readonly number[], bShape: readonly number[], aPerm?: readonly number[], bPerm?: readonly number[],
): { outShape: number[]; problem: MatMulProblem } {
  const aView = operandView(aShape, aPerm, 'A');
  const bView = operandView(bShape, bPerm, 'B');
  if (aView.shape.length === 0 || bView.shape.length === 0) {
    throw invalidArgument(`MatMul needs operands of rank >= 1, got ${show(aView.shape)} and ${show(bView.shape)}`);
  }
  const aRank1 = aView.shape.length === 1;
  const bRank1 = bView.shape.length === 1;
  const a = aRank1 ? [1, aView.shape[0]] : aView.shape;
  const aStrides = aRank1 ? [aView.shape[0], 1] : aView.strides;
  const b = bRank1 ? [bView.shape[0], 1] : bView.shape;
  const bStrides = bRank1 ? [1, 1] : bView.strides;
  const [m, k] = a.slice(-2);
  const [kB, n] = b.slice(-2);
  if (k !== kB) {
    throw invalidArgument(`MatMul inner dims differ: ${show(aView.shape)} @ ${show(bView.shape)} (${k} vs ${kB})`);
  }
  const aBatch = a.slice(0, -2);
  const bBatch = b.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch);
  // Each operand's element stride along the output batch dims, 0 where it broadcasts.
  const batchStrides = (shape: readonly number[], strides: readonly number[]) => batch.map((_, dim) => {
    const own = dim - (batch.length - shape.length);
    return own < 0 || shape[own] === 1 ? 0 : strides[own];
  });
  const merged = mergeDims(batch, [batchStrides(aBatch, aStrides), batchStrides(bBatch, bStrides)]);
  const outShape = [...batch, m, n];
  if (bRank1) outShape.splice(-1, 1);
  if (aRank1) outShape.splice(-2, 1);
  const problem: MatMulProblem = { m, n, k, batchShape: merged.shape, aBatchStrides: merged.strides[0], bBatchStrides: merged.strides[1] };
  const [aStrideM, aStrideK] = aStrides.slice(-2);
  const [bStrideK, bStrideN] = bStrides.slice(-2);
  if (aStrideM !== k || aStrideK !== 1) problem.aStrides = [aStrideM, aStrideK];
  if (bStrideK !== n || bStrideN !== 1) problem.bStrides = [bStrideK, bStrideN];
  return { outShape, problem };
}

export interface GemmAttributes {
  alpha: number;
  beta: number;
  transA: boolean;
  transB: boolean;
}

/** Gemm: Y[M, N] = alpha * A' @ B' + beta * C, C broadcast one way to [M, N]. */
export function gemmShapes(
  aShape: readonly number[], bShape: readonly number[], cShape: readonly number[] | undefined, attributes: GemmAttributes,
): { outShape: number[]; problem: MatMulProblem } {
  if (aShape.length !== 2 || bShape.length !== 2) {
    throw invalidArgument(`Gemm needs 2-D A and B, got ${show(aShape)} and ${show(bShape)}`);
  }
  const [m, k] = attributes.transA ? [aShape[1], aShape[0]] : aShape;
  const [kB, n] = attributes.transB ? [bShape[1], bShape[0]] : bShape;
  if (k !== kB) {
    throw invalidArgument(`Gemm inner dims differ: A' is [${m}, ${k}], B' is [${kB}, ${n}]`);
  }
  const problem: MatMulProblem = {
    m, n, k, batchShape: [1], aBatchStrides: [0], bBatchStrides: [0], alpha: attributes.alpha, beta: attributes.beta,
  };
  // A stored [K, M] / B stored [N, K]: read through their strides.
  if (attributes.transA) problem.aStrides = [1, m];
  if (attributes.transB) problem.bStrides = [1, k];
  if (cShape) problem.biasStrides = biasStrides(cShape, m, n, 'Gemm\'s C');
  return { outShape: [m, n], problem };
}

/** Strides along (m, n) of a bias that broadcasts one way to [M, N]. */
export function biasStrides(shape: readonly number[], m: number, n: number, what: string): [number, number] {
  if (shape.length > 2 && shape.slice(0, -2).some((dim) => dim !== 1)) {
    throw invalidArgument(`${what} ${show(shape)} does not broadcast to [${m}, ${n}]`);
  }
  const [rows, cols] = [...new Array<number>(Math.max(0, 2 - shape.length)).fill(1), ...shape.slice(-2)];
  if ((rows !== 1 && rows !== m) || (cols !== 1 && cols !== n)) {
    throw invalidArgument(`${what} ${show(shape)} does not broadcast to [${m}, ${n}]`);
  }
  return [rows === 1 ? 0 : cols, cols === 1 ? 0 : 1];
}

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

/** Expand: bidirectional broadcast of the input and the requested shape. */
export function expandShape(shape: readonly number[], target: readonly number[]): number[] {
  return broadcastShapes(shape, target);
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

/** ONNX auto_pad values. */
export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

/** Spatial window geometry shared by Conv and the pools. */
export interface WindowAttributes {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Begin pads then end pads, one per spatial dim (NOTSET only). */
  pads: number[];
  autoPad: AutoPad;
  ceilMode?: boolean;
}

/** Output spatial dims and the effective begin / end pads of a sliding window. */
export function windowGeometry(inputSpatial: readonly number[], attributes: WindowAttributes): { outSpatial: number[]; padBegin: number[]; padEnd: number[] } {
  const rank = inputSpatial.length;
  const outSpatial: number[] = [];
  const padBegin: number[] = [];
  const padEnd: number[] = [];
  for (let dim = 0; dim < rank; dim++) {
    const size = inputSpatial[dim];
    const stride = attributes.strides[dim];
    const extent = (attributes.kernel[dim] - 1) * attributes.dilations[dim] + 1;
    if (attributes.autoPad === 'SAME_UPPER' || attributes.autoPad === 'SAME_LOWER') {
      const out = Math.ceil(size / stride);
      const [begin, end] = splitSamePad(Math.max(0, (out - 1) * stride + extent - size), attributes.autoPad === 'SAME_UPPER');
      outSpatial.push(out);
      padBegin.push(begin);
      padEnd.push(end);
      continue;
    }
    const [begin, end] = attributes.autoPad === 'VALID' ? [0, 0] : [attributes.pads[dim], attributes.pads[dim + rank]];
    const span = size + begin + end - extent;
    if (span < 0) {
      throw invalidArgument(`window of ${extent} (kernel ${attributes.kernel[dim]}, dilation ${attributes.dilations[dim]}) does not fit spatial dim ${dim} of size ${size} with pads ${begin}+${end}`);
    }
    let out = (attributes.ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
    // With ceil_mode the last window must still start inside the input or the begin padding.
    if (attributes.ceilMode && (out - 1) * stride >= size + begin) out--;
    outSpatial.push(out);
    padBegin.push(begin);
    padEnd.push(end);
  }
  return { outSpatial, padBegin, padEnd };
}

/** Splits an auto_pad SAME total between begin and end: the odd pixel at the end when `upper`. */
function splitSamePad(total: number, upper: boolean): [begin: number, end: number] {
  const small = Math.floor(total / 2);
  return upper ? [small, total - small] : [total - small, small];
}

/** ConvTranspose output spatial dims and effective pads (ONNX opset 11+ formulas). */
export function convTransposeGeometry(
  inputSpatial: readonly number[],
  attributes: WindowAttributes & { outputPadding: number[]; outputShape?: number[] },
): { outSpatial: number[]; padBegin: number[]; padEnd: number[] } {
  const rank = inputSpatial.length;
  const outSpatial: number[] = [];
  const padBegin: number[] = [];
  const padEnd: number[] = [];
  for (let dim = 0; dim < rank; dim++) {
    const stride = attributes.strides[dim];
    const extent = (attributes.kernel[dim] - 1) * attributes.dilations[dim] + 1;
    const full = stride * (inputSpatial[dim] - 1) + attributes.outputPadding[dim] + extent;
    if (attributes.outputShape || attributes.autoPad === 'SAME_UPPER' || attributes.autoPad === 'SAME_LOWER') {
      const out = attributes.outputShape ? attributes.outputShape[dim] : inputSpatial[dim] * stride;
      // As the ONNX spec and onnxruntime: SAME_UPPER puts the odd pad at the end, SAME_LOWER and
      // an explicit output_shape at the start.
      const [begin, end] = splitSamePad(Math.max(0, full - out), attributes.autoPad === 'SAME_UPPER');
      outSpatial.push(out);
      padBegin.push(begin);
      padEnd.push(end);
      continue;
    }
    const [begin, end] = attributes.autoPad === 'VALID' ? [0, 0] : [attributes.pads[dim], attributes.pads[dim + rank]];
    const out = full - begin - end;
    if (out < 0) throw invalidArgument(`ConvTranspose pads ${begin}+${end} exceed the output of spatial dim ${dim}`);
    outSpatial.push(out);
    padBegin.push(begin);
    padEnd.push(end);
  }
  return { outSpatial, padBegin, padEnd };
}

/** Range: ceil((limit - start) / delta) elements, at least 0. */
export function rangeLength(start: number, limit: number, delta: number): number {
  if (delta === 0) throw invalidArgument('Range delta must not be 0');
  return Math.max(0, Math.ceil((limit - start) / delta));
}

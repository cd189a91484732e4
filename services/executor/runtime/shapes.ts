/**
 * Static shape rules of the supported ONNX operators: pure functions from input shapes to the
 * output shape (and the kernel's problem description). They throw INVALID_ARGUMENT when the
 * shapes do not fit together; the caller adds which node it was.
 */
import { invalidArgument } from '../../rpc/errors.ts';
import { broadcastLayout } from '../kernels/binary.ts';
import type { MatMulProblem } from '../kernels/matmul.ts';
import type { SoftmaxProblem } from '../kernels/softmax.ts';

const product = (dims: readonly number[]) => dims.reduce((total, dim) => total * dim, 1);
const show = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** The numpy (multidirectional) broadcast of two shapes. */
export function broadcastShapes(aShape: readonly number[], bShape: readonly number[]): number[] {
  const rank = Math.max(aShape.length, bShape.length);
  const out: number[] = [];
  for (let dim = 0; dim < rank; dim++) {
    const a = aShape[dim - (rank - aShape.length)] ?? 1;
    const b = bShape[dim - (rank - bShape.length)] ?? 1;
    if (a !== b && a !== 1 && b !== 1) {
      throw invalidArgument(`shapes ${show(aShape)} and ${show(bShape)} do not broadcast (dim ${dim}: ${a} vs ${b})`);
    }
    out.push(a === 1 ? b : a);
  }
  return out;
}

/** An axis in [-rank, rank - 1] (or [-rank, rank] with `allowEnd`) as a non-negative index. */
export function normalizeAxis(axis: number, rank: number, allowEnd = false): number {
  const upper = allowEnd ? rank : rank - 1;
  if (axis < -rank || axis > upper) {
    throw invalidArgument(`axis ${axis} is out of range for rank ${rank} (allowed ${-rank}..${upper})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/**
 * numpy.matmul: 1-D operands become a row (A) / column (B) vector and lose that dim again in the
 * output; batch dims broadcast. Batch dims are merged where both operands allow it, so the
 * kernel's 4 batch dims cover every output of rank <= 6.
 */
export function matmulShapes(aShape: readonly number[], bShape: readonly number[]): { outShape: number[]; problem: MatMulProblem } {
  if (aShape.length === 0 || bShape.length === 0) {
    throw invalidArgument(`MatMul needs operands of rank >= 1, got ${show(aShape)} and ${show(bShape)}`);
  }
  const a = aShape.length === 1 ? [1, aShape[0]] : [...aShape];
  const b = bShape.length === 1 ? [bShape[0], 1] : [...bShape];
  const [m, k] = a.slice(-2);
  const [kB, n] = b.slice(-2);
  if (k !== kB) {
    throw invalidArgument(`MatMul inner dims differ: ${show(aShape)} @ ${show(bShape)} (${k} vs ${kB})`);
  }
  const aBatch = a.slice(0, -2);
  const bBatch = b.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch);
  const merged = broadcastLayout(aBatch, bBatch, batch);
  const outShape = [...batch, m, n];
  if (bShape.length === 1) outShape.splice(-1, 1);
  if (aShape.length === 1) outShape.splice(-2, 1);
  return {
    outShape,
    problem: {
      m, n, k,
      batchShape: merged.shape,
      aBatchStrides: merged.aStrides.map((stride) => stride * m * k),
      bBatchStrides: merged.bStrides.map((stride) => stride * k * n),
    },
  };
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
    m, n, k, batchShape: [], aBatchStrides: [], bBatchStrides: [], alpha: attributes.alpha, beta: attributes.beta,
  };
  if (cShape) {
    if (cShape.length > 2) throw invalidArgument(`Gemm's C must have rank <= 2, got ${show(cShape)}`);
    const [cRows, cCols] = [...new Array<number>(2 - cShape.length).fill(1), ...cShape];
    if ((cRows !== 1 && cRows !== m) || (cCols !== 1 && cCols !== n)) {
      throw invalidArgument(`Gemm's C ${show(cShape)} does not broadcast to [${m}, ${n}]`);
    }
    problem.biasStrides = [cRows === 1 ? 0 : cCols, cCols === 1 ? 0 : 1];
  }
  return { outShape: [m, n], problem };
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

/**
 * Softmax as [outer, axisLength, inner]. From opset 13 it runs along `axis` alone; before, the
 * input was coerced to 2-D at `axis` and softmax ran over all dims from `axis` on.
 */
export function softmaxProblem(shape: readonly number[], axis: number, opset: number): SoftmaxProblem {
  if (shape.length === 0) throw invalidArgument('Softmax needs an input of rank >= 1');
  const split = normalizeAxis(axis, shape.length);
  if (opset < 13) {
    return { outer: product(shape.slice(0, split)), axisLength: product(shape.slice(split)), inner: 1 };
  }
  return { outer: product(shape.slice(0, split)), axisLength: shape[split], inner: product(shape.slice(split + 1)) };
}

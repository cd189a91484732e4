/**
 * The shape rules of the GEMM-shaped operators: numpy.matmul (with Transposes folded into an
 * operand's strides) and Gemm, as the kernels' problem descriptions. Pure; INVALID_ARGUMENT when
 * the operands do not fit together.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { MatMulProblem } from '../kernels/index.ts';
import { broadcastShapes, mergeDims, showShape as show, stridesOf } from '../tensor/index.ts';

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

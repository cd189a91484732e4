/**
 * shaders/matmul/matmul.wgsl: output[batch] = alpha * op(A[batch]) @ op(B[batch]) + beta * bias.
 * Serves MatMul (batched, broadcast batch dims) and Gemm (transA / transB / alpha / beta / C).
 */
import { UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

/**
 * Workgroup shapes, as the shader's WG_X x WG_Y (each invocation computes 4x4 outputs):
 * `square` makes 64x64 output tiles; `skinny` makes 4x256 tiles for products with few rows
 * (batch-1 and small-batch dense layers), where a 64-row tile would compute mostly padding.
 */
export const MATMUL_TILES = {
  square: { WG_X: 16, WG_Y: 16 },
  skinny: { WG_X: 64, WG_Y: 1 },
} as const;
export type MatMulTile = keyof typeof MATMUL_TILES;
const TILE_ORDER: readonly MatMulTile[] = ['square', 'skinny'];
/** Products with at most this many rows use the skinny tile. */
export const SKINNY_MAX_ROWS = 8;
/** Batch dims the uniform block has room for. */
export const MATMUL_MAX_BATCH_RANK = 4;

export interface MatMulVariantOptions {
  /** A is stored [K, M] (Gemm transA). */
  transA: boolean;
  /** B is stored [N, K] (Gemm transB). */
  transB: boolean;
  /** Add beta * bias; without it binding 2 takes any small placeholder buffer. */
  hasBias: boolean;
}

/** Bindings: a, b, bias, output, params. One variant per tile, in the order matmulDispatch indexes them. */
export function matmulVariants(options: MatMulVariantOptions): KernelVariant[] {
  return TILE_ORDER.map((tile) => ({
    shader: 'matmul/matmul.wgsl',
    constants: {
      TRANS_A: Number(options.transA), TRANS_B: Number(options.transB), HAS_BIAS: Number(options.hasBias), ...MATMUL_TILES[tile],
    },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  }));
}

/** The tile for an M-row product. */
export function matmulTileFor(m: number): MatMulTile {
  return m <= SKINNY_MAX_ROWS ? 'skinny' : 'square';
}

/** One (batched) matrix product with concrete sizes. */
export interface MatMulProblem {
  m: number;
  n: number;
  k: number;
  /** Output batch dims (at most MATMUL_MAX_BATCH_RANK); [] for a plain matrix product. */
  batchShape: number[];
  /** Element stride of A per output batch dim, 0 where A is broadcast. */
  aBatchStrides: number[];
  /** Element stride of B per output batch dim, 0 where B is broadcast. */
  bBatchStrides: number[];
  /** Default 1. */
  alpha?: number;
  /** Default 1 (only read with a bias). */
  beta?: number;
  /** Element strides of the bias along m and n (0 where broadcast). Default [0, 0]. */
  biasStrides?: [number, number];
}

/** The variant (tile), workgroups (N tiles, M tiles, batch) and the Params block. */
export function matmulDispatch(problem: MatMulProblem, maxPerDimension: number): Dispatch {
  const { m, n, k, batchShape } = problem;
  const tile = matmulTileFor(m);
  const { WG_X, WG_Y } = MATMUL_TILES[tile];
  if (batchShape.length > MATMUL_MAX_BATCH_RANK) {
    throw new RangeError(`matmul supports at most ${MATMUL_MAX_BATCH_RANK} batch dims, got [${batchShape}]`);
  }
  const batchCount = batchShape.reduce((product, dim) => product * dim, 1);
  const workgroups: [number, number, number] = [Math.ceil(n / (4 * WG_X)), Math.ceil(m / (4 * WG_Y)), batchCount];
  if (workgroups.some((count) => count > maxPerDimension)) {
    throw new RangeError(`matmul grid [${workgroups}] exceeds ${maxPerDimension} workgroups per dimension`);
  }
  const pad = MATMUL_MAX_BATCH_RANK - batchShape.length;
  const padFront = (values: number[], fill: number) => [...new Array<number>(pad).fill(fill), ...values];
  const [biasStrideM, biasStrideN] = problem.biasStrides ?? [0, 0];
  const uniforms = new UniformWriter(80)
    .u32(m).u32(n).u32(k).u32(0)
    .f32(problem.alpha ?? 1).f32(problem.beta ?? 1).u32(biasStrideM).u32(biasStrideN)
    .vec4u32(padFront(batchShape, 1))
    .vec4u32(padFront(problem.aBatchStrides, 0))
    .vec4u32(padFront(problem.bBatchStrides, 0))
    .finish();
  return { variant: TILE_ORDER.indexOf(tile), workgroups, uniforms };
}

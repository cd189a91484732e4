/**
 * GEMM-shaped kernels: MatMul, Gemm and Conv (as an implicit GEMM) share one parameter block,
 * one epilogue (bias, residual, activation) and two algorithms:
 *
 * - `simd` (shaders/matmul/gemm_simd.wgsl): for GPUs that are a CPU's SIMD units (lavapipe);
 *   one subgroup per workgroup, no workgroup memory, A spread over lanes with subgroupBroadcast.
 * - `tiled` (shaders/matmul/gemm_tiled.wgsl): the classic workgroup-memory tiling for GPUs.
 *
 * Operand fetchers (shaders/matmul/fetch_dense.wgsl, shaders/conv/fetch_im2col.wgsl) decide what
 * A, B and the output are; B loaders (b_vec4 / b_scalar) read B's rows.
 */
import type { StorageType } from '../tensor/index.ts';
import { checkGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';
import { IDENTITY, type UnaryFunction } from './unary-ops.ts';

export type GemmAlgorithm = 'simd' | 'tiled';
export type GemmFetcher = 'dense' | 'conv';

/** Rows per workgroup of the simd algorithm: a large block for throughput, a small one for few rows. */
export const SIMD_ROWS = { large: 32, small: 4 } as const;
/** Products with at most this many rows take the skinny tile (tiled); the simd block is chosen by simdSmallBlock. */
export const SMALL_M = 8;
/** Workgroup shapes of the tiled algorithm (each invocation computes 4x4 outputs). */
export const TILED_SHAPES = { square: { WG_X: 16, WG_Y: 16 }, skinny: { WG_X: 64, WG_Y: 1 } } as const;
/** Batch dims the uniform block has room for. */
export const MATMUL_MAX_BATCH_RANK = 4;

export interface GemmVariantOptions {
  algorithm: GemmAlgorithm;
  fetcher: GemmFetcher;
  type: StorageType;
  /**
   * B rows are read as vec4 (packed rows, N a multiple of 4 or padded by the host); else 4 scalar
   * loads through B's strides (any layout: transposed, interleaved).
   */
  bVec4: boolean;
  hasBias: boolean;
  hasResidual: boolean;
}

/**
 * Bindings: a, b, bias, residual, output, params. Two variants, in the order gemmDispatch
 * indexes them: [large, small] blocks (simd) or [square, skinny] tiles (tiled).
 */
export function gemmVariants(options: GemmVariantOptions): KernelVariant[] {
  const preludes = [
    'common/index.wgsl', 'common/unary_ops.wgsl', 'matmul/gemm_common.wgsl',
    options.fetcher === 'conv' ? 'conv/fetch_im2col.wgsl' : 'matmul/fetch_dense.wgsl',
    options.bVec4 ? 'matmul/b_vec4.wgsl' : 'matmul/b_scalar.wgsl',
  ];
  const constants: Record<string, number> = { HAS_BIAS: Number(options.hasBias), HAS_RESIDUAL: Number(options.hasResidual) };
  const types = { T: options.type, BT: options.bVec4 ? `vec4<${options.type}>` : options.type } as Record<string, StorageType>;
  const bindings = ['read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'] as const;
  if (options.algorithm === 'simd') {
    return [SIMD_ROWS.large, SIMD_ROWS.small].map((rows) => ({
      shader: 'matmul/gemm_simd.wgsl', preludes, types, unroll: { ROWS: rows }, constants, bindings,
    }));
  }
  return [TILED_SHAPES.square, TILED_SHAPES.skinny].map((shape) => ({
    shader: 'matmul/gemm_tiled.wgsl', preludes, types, constants: { ...constants, ...shape }, bindings,
  }));
}

/** One (batched) dense matrix product with concrete sizes. */
export interface MatMulProblem {
  m: number;
  n: number;
  k: number;
  /** Output batch dims (at most MATMUL_MAX_BATCH_RANK); [1] for a plain matrix product. */
  batchShape: number[];
  /** Element stride of A per output batch dim, 0 where A is broadcast. */
  aBatchStrides: number[];
  /** Element stride of B per output batch dim, 0 where B is broadcast. */
  bBatchStrides: number[];
  /** Element strides of A along m and k. Default [k, 1] (packed rows). */
  aStrides?: [number, number];
  /** Element strides of B along k and n. Default [n, 1]; the vec4 B loader needs the default. */
  bStrides?: [number, number];
  /** Default 1. */
  alpha?: number;
  /** Default 1 (only read with a bias). */
  beta?: number;
  /** Element strides of the bias along m and n (0 where broadcast). Default [0, 0]. */
  biasStrides?: [number, number];
}

/** A 2-D convolution with concrete sizes (NCHW). */
export interface ConvProblem {
  batch: number;
  inChannels: number;
  inH: number;
  inW: number;
  outChannels: number;
  groups: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
  dilationH: number;
  dilationW: number;
  outH: number;
  outW: number;
}

interface GemmGeometry {
  m: number;
  n: number;
  k: number;
  n4: number;
  z: number;
}

function writeParams(
  geometry: GemmGeometry, epilogue: UnaryFunction, dense: MatMulProblem | undefined, conv: ConvProblem | undefined,
): ArrayBuffer {
  const writer = new UniformWriter(192)
    .u32(geometry.m).u32(geometry.n).u32(geometry.k).u32(geometry.n4)
    .f32(dense?.alpha ?? 1).f32(dense?.beta ?? 1).u32(dense?.biasStrides?.[0] ?? 0).u32(dense?.biasStrides?.[1] ?? (conv ? 1 : 0))
    .u32(epilogue.op).f32(epilogue.alpha).f32(epilogue.beta).u32(0);
  const batchShape = dense?.batchShape ?? [1];
  if (batchShape.length > MATMUL_MAX_BATCH_RANK) {
    throw new RangeError(`matmul supports at most ${MATMUL_MAX_BATCH_RANK} separate batch dims, got [${batchShape}]`);
  }
  const pad = MATMUL_MAX_BATCH_RANK - batchShape.length;
  const front = (values: readonly number[], fill: number) => [...new Array<number>(pad).fill(fill), ...values];
  writer.vec4u32(front(batchShape, 1)).vec4u32(front(dense?.aBatchStrides ?? [0], 0)).vec4u32(front(dense?.bBatchStrides ?? [0], 0));
  const [aStrideM, aStrideK] = dense?.aStrides ?? [geometry.k, 1];
  const [bStrideK, bStrideN] = dense?.bStrides ?? [geometry.n, 1];
  writer.u32(aStrideM).u32(aStrideK).u32(bStrideK).u32(bStrideN);
  const c = conv;
  writer
    .u32(c?.inChannels ?? 0).u32(c ? c.inChannels / c.groups : 0).u32(c?.inH ?? 0).u32(c?.inW ?? 0)
    .u32(c?.outChannels ?? 0).u32(c ? c.outChannels / c.groups : 0).u32(c?.outH ?? 0).u32(c?.outW ?? 0)
    .u32(c?.kernelH ?? 0).u32(c?.kernelW ?? 0).u32(c?.strideH ?? 0).u32(c?.strideW ?? 0)
    .i32(c?.padTop ?? 0).i32(c?.padLeft ?? 0).u32(c?.dilationH ?? 0).u32(c?.dilationW ?? 0)
    .f32(reciprocal(c ? c.outH * c.outW : 0)).f32(reciprocal(c?.outW ?? 0))
    .f32(reciprocal(c ? c.kernelH * c.kernelW : 0)).f32(reciprocal(c?.kernelW ?? 0));
  return writer.finish();
}

/**
 * What one block of `rows` rows costs in the simd GEMM, in rows' worth of multiply-adds: every
 * row it covers (those past M too, which compute and are not stored) plus the B row loads the
 * block makes once for all its rows, taken as three rows. Measured on lavapipe with the MLP's
 * 256→1024→1024→256 layers, interleaved: 4-row blocks took 0.49× the time of 32-row blocks at
 * M = 9 and 12, 0.62–0.67× at 13–16, 0.84–1.04× at 18–20, 0.89–1.27× at 24; so they are taken
 * up to 16 rows (and for 33–36), where they win clearly.
 */
const simdBlockCost = (rows: number) => rows + 3;

/**
 * The simd GEMM's row block for M rows: the small one when it does less work. A batch of 9–16
 * rows in one 32-row block computes 16–23 rows for nothing; in 4-row blocks, at most 3. The
 * choice changes which workgroup computes an output, never how: each output's sum runs over k in
 * the same order either way.
 */
function simdSmallBlock(m: number): boolean {
  return Math.ceil(m / SIMD_ROWS.small) * simdBlockCost(SIMD_ROWS.small) < Math.ceil(m / SIMD_ROWS.large) * simdBlockCost(SIMD_ROWS.large);
}

function gemmGrid(algorithm: GemmAlgorithm, geometry: GemmGeometry, maxPerDimension: number): { variant: number; workgroups: [number, number, number] } {
  if (geometry.m === 0 || geometry.n === 0 || geometry.z === 0) return { variant: 0, workgroups: [0, 1, 1] };
  if (algorithm === 'simd') {
    const small = simdSmallBlock(geometry.m);
    const rows = small ? SIMD_ROWS.small : SIMD_ROWS.large;
    return {
      variant: small ? 1 : 0,
      workgroups: checkGrid('matmul', [Math.ceil(geometry.n4 / 8), Math.ceil(geometry.m / rows), geometry.z], maxPerDimension),
    };
  }
  const small = geometry.m <= SMALL_M;
  const shape = small ? TILED_SHAPES.skinny : TILED_SHAPES.square;
  return {
    variant: small ? 1 : 0,
    workgroups: checkGrid('matmul', [Math.ceil(geometry.n4 / shape.WG_X), Math.ceil(geometry.m / (4 * shape.WG_Y)), geometry.z], maxPerDimension),
  };
}

/**
 * A batched product whose B is shared by every batch (a dense layer applied to [N, S, K]) and
 * whose A batches are packed one after another is one product with batch * M rows: the output
 * rows are packed the same way. Folding fills the row blocks (13 rows a batch would use 13 of a
 * 32-row block) and makes one wide grid instead of many thin ones. Not when the bias varies
 * along M (its row index would run past M).
 */
function foldBatchIntoRows(problem: MatMulProblem): MatMulProblem {
  const { batchShape, aBatchStrides, bBatchStrides } = problem;
  if (batchShape.length === 0 || batchShape.every((dim) => dim === 1)) return problem;
  if (bBatchStrides.some((stride, dim) => stride !== 0 && batchShape[dim] !== 1)) return problem;
  if ((problem.biasStrides?.[0] ?? 0) !== 0) return problem;
  // Rows of a strided A (a transposed view) are not one packed run across the batches.
  if (problem.aStrides && (problem.aStrides[0] !== problem.k || problem.aStrides[1] !== 1)) return problem;
  let packed = problem.m * problem.k;
  for (let dim = batchShape.length - 1; dim >= 0; dim--) {
    if (batchShape[dim] === 1) continue;
    if (aBatchStrides[dim] !== packed) return problem;
    packed *= batchShape[dim];
  }
  const batches = batchShape.reduce((total, dim) => total * dim, 1);
  return { ...problem, m: problem.m * batches, batchShape: [1], aBatchStrides: [0], bBatchStrides: [0] };
}

/**
 * The dispatch of a dense product. `bRowVec4s`: the vec4s per B row (N / 4 for vec4 rows, or
 * the padded width of a host-padded B); undefined for scalar B loads.
 */
export function matmulDispatch(
  algorithm: GemmAlgorithm, problem: MatMulProblem, bRowVec4s: number | undefined, epilogue: UnaryFunction = IDENTITY, maxPerDimension = 65535,
): Dispatch {
  problem = foldBatchIntoRows(problem);
  const z = problem.batchShape.reduce((total, dim) => total * dim, 1);
  const geometry = { m: problem.m, n: problem.n, k: problem.k, n4: bRowVec4s ?? Math.ceil(problem.n / 4), z };
  const { variant, workgroups } = gemmGrid(algorithm, geometry, maxPerDimension);
  return { variant, workgroups, uniforms: writeParams(geometry, epilogue, problem, undefined) };
}

/** The dispatch of a convolution (weights laid out by convWeightsForGemm). */
export function convDispatch(algorithm: GemmAlgorithm, problem: ConvProblem, epilogue: UnaryFunction = IDENTITY, maxPerDimension = 65535): Dispatch {
  const columns = problem.outChannels / problem.groups;
  const geometry = {
    m: problem.batch * problem.outH * problem.outW,
    n: columns,
    k: (problem.inChannels / problem.groups) * problem.kernelH * problem.kernelW,
    n4: Math.ceil(columns / 4),
    z: problem.groups,
  };
  const { variant, workgroups } = gemmGrid(algorithm, geometry, maxPerDimension);
  return { variant, workgroups, uniforms: writeParams(geometry, epilogue, undefined, problem) };
}

/**
 * Conv weights [C_out, C_in / groups, KH, KW] as the conv fetcher's B: per group, [K, C_out /
 * groups] with the columns padded to a multiple of 4 (zeros), K = C_in / groups * KH * KW.
 */
export function convWeightsForGemm(weights: Float32Array, outChannels: number, groups: number, k: number): Float32Array {
  const columns = outChannels / groups;
  const padded = Math.ceil(columns / 4) * 4;
  const out = new Float32Array(groups * k * padded);
  for (let group = 0; group < groups; group++) {
    for (let column = 0; column < columns; column++) {
      const source = (group * columns + column) * k;
      for (let row = 0; row < k; row++) out[(group * k + row) * padded + column] = weights[source + row];
    }
  }
  return out;
}

/** A constant [K, N] (or [N, K] when `transposed`) matrix as row-major [K, N padded to 4]. */
export function denseWeightsForGemm(weights: Float32Array, k: number, n: number, transposed: boolean): Float32Array {
  const padded = Math.ceil(n / 4) * 4;
  const out = new Float32Array(k * padded);
  for (let row = 0; row < k; row++) {
    for (let column = 0; column < n; column++) {
      out[row * padded + column] = transposed ? weights[column * k + row] : weights[row * n + column];
    }
  }
  return out;
}

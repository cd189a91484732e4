/**
 * Indexing kernels: shaders/indexing/{gather_elements,gather_nd,one_hot,scatter_elements,scatter_nd}.wgsl.
 * Gathers and OneHot only move elements, so every 4-byte type shares one pipeline (T = u32);
 * scatters combine values (add, mul, max, min) and are typed.
 */
import { product, stridesOf, type StorageType } from '../tensor/index.ts';
import { copyElementType } from './data.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 256;
/** Dims the indexing kernels unravel, and the longest index tuple of GatherND / ScatterND. */
export const INDEXING_MAX_RANK = 8;

const grid = (invocations: number, maxPerDimension: number): [number, number, number] =>
  (invocations === 0 ? [0, 1, 1] : linearGrid(Math.ceil(invocations / WORKGROUP_SIZE), maxPerDimension));

const reversed = (values: readonly number[]) => [...values].reverse();

function checkRank(what: string, rank: number): void {
  if (rank > INDEXING_MAX_RANK) throw new RangeError(`${what} supports rank <= ${INDEXING_MAX_RANK}, got ${rank}`);
}

function variant(shader: string, types: Record<string, StorageType | 'u32'>, bindings: KernelVariant['bindings']): KernelVariant {
  return {
    shader: `indexing/${shader}.wgsl`, preludes: ['common/index.wgsl'], types, unroll: { MAX_RANK: INDEXING_MAX_RANK },
    constants: { WORKGROUP_SIZE }, bindings,
  };
}

const GATHER_BINDINGS: KernelVariant['bindings'] = ['read-only-storage', 'read-only-storage', 'storage', 'uniform'];

/** Bindings: data, indices, output, params. */
export const gatherElementsVariant = (type: StorageType): KernelVariant => variant('gather_elements', { T: copyElementType(type) }, GATHER_BINDINGS);

/** GatherElements of `dataShape` along `axis` (normalized) by indices of `indicesShape`. */
export function gatherElementsDispatch(dataShape: readonly number[], indicesShape: readonly number[], axis: number, maxPerDimension: number): Dispatch {
  checkRank('GatherElements', indicesShape.length);
  const count = product(indicesShape);
  const dataStrides = stridesOf(dataShape);
  const overAxis = dataStrides.map((stride, dim) => (dim === axis ? 0 : stride));
  const uniforms = new UniformWriter(16 + 3 * 32).u32(count).u32(indicesShape.length).u32(dataShape[axis]).u32(dataStrides[axis])
    .u32Array(reversed(indicesShape), 2).f32Array(reversed(indicesShape.map(reciprocal)), 2).u32Array(reversed(overAxis), 2).finish();
  return { workgroups: grid(count, maxPerDimension), uniforms };
}

/** Bindings: data, indices, output, params. */
export const gatherNdVariant = (type: StorageType): KernelVariant => variant('gather_nd', { T: copyElementType(type) }, GATHER_BINDINGS);

/**
 * GatherND: `tuples` index tuples of length `k` (tuplesPerBatch per batch), each picking a slice
 * of `sliceSize` elements; the tuple indexes data dims `dims` of strides `strides`; one batch of
 * data spans `batchStride` elements.
 */
export function gatherNdDispatch(
  problem: { tuples: number; tuplesPerBatch: number; sliceSize: number; batchStride: number; dims: readonly number[]; strides: readonly number[] },
  maxPerDimension: number,
): Dispatch {
  checkRank('GatherND index tuples', problem.dims.length);
  const count = problem.tuples * problem.sliceSize;
  const uniforms = new UniformWriter(32 + 2 * 32).u32(count).u32(problem.sliceSize).f32(reciprocal(problem.sliceSize)).u32(problem.dims.length)
    .u32(problem.tuplesPerBatch).f32(reciprocal(problem.tuplesPerBatch)).u32(problem.batchStride).u32(0)
    .i32Array(problem.dims, 2).u32Array(problem.strides, 2).finish();
  return { workgroups: grid(count, maxPerDimension), uniforms };
}

/** Bindings: indices, values, output, params. */
export const oneHotVariant = (indexType: StorageType, type: StorageType): KernelVariant =>
  variant('one_hot', { I: indexType, T: copyElementType(type) }, GATHER_BINDINGS);

/** OneHot: indices viewed as [outer, inner], output [outer, depth, inner]. */
export function oneHotDispatch(outer: number, depth: number, inner: number, maxPerDimension: number): Dispatch {
  const count = outer * depth * inner;
  const uniforms = new UniformWriter(32).u32(count).u32(depth).u32(inner).f32(reciprocal(inner)).f32(reciprocal(depth)).finish();
  return { workgroups: grid(count, maxPerDimension), uniforms };
}

/** How a scatter combines an update with what the output holds. */
export const SCATTER_REDUCTIONS = { none: 0, add: 1, mul: 2, max: 3, min: 4 } as const;
export type ScatterReduction = keyof typeof SCATTER_REDUCTIONS;

const SCATTER_BINDINGS: KernelVariant['bindings'] = ['read-only-storage', 'read-only-storage', 'storage', 'uniform'];

/** Bindings: indices, updates, output (holding the data already), params. */
export const scatterElementsVariant = (type: StorageType): KernelVariant => variant('scatter_elements', { T: type }, SCATTER_BINDINGS);

/** ScatterElements of updates `updatesShape` into data `dataShape` along `axis` (normalized). */
export function scatterElementsDispatch(
  dataShape: readonly number[], updatesShape: readonly number[], axis: number, reduction: ScatterReduction, maxPerDimension: number,
): Dispatch {
  checkRank('ScatterElements', dataShape.length);
  const lineShape = updatesShape.map((dim, index) => (index === axis ? 1 : dim));
  const lines = product(lineShape);
  const updateStrides = stridesOf(updatesShape);
  const dataStrides = stridesOf(dataShape);
  const uniforms = new UniformWriter(32 + 4 * 32).u32(updatesShape[axis] === 0 ? 0 : lines).u32(dataShape.length).u32(updatesShape[axis]).u32(dataShape[axis])
    .u32(updateStrides[axis]).u32(dataStrides[axis]).u32(SCATTER_REDUCTIONS[reduction]).u32(0)
    .u32Array(reversed(lineShape), 2).f32Array(reversed(lineShape.map(reciprocal)), 2)
    .u32Array(reversed(updateStrides), 2).u32Array(reversed(dataStrides), 2).finish();
  return { workgroups: grid(updatesShape[axis] === 0 ? 0 : lines, maxPerDimension), uniforms };
}

/** Bindings: indices, updates, output (holding the data already), params. */
export const scatterNdVariant = (type: StorageType): KernelVariant => variant('scatter_nd', { T: type }, SCATTER_BINDINGS);

/** ScatterND: `tuples` tuples indexing data dims `dims` (strides `strides`), each updating a slice of `sliceSize`. */
export function scatterNdDispatch(
  tuples: number, sliceSize: number, dims: readonly number[], strides: readonly number[], reduction: ScatterReduction, maxPerDimension: number,
): Dispatch {
  checkRank('ScatterND index tuples', dims.length);
  const uniforms = new UniformWriter(16 + 2 * 32).u32(sliceSize).u32(tuples).u32(dims.length).u32(SCATTER_REDUCTIONS[reduction])
    .i32Array(dims, 2).u32Array(strides, 2).finish();
  return { workgroups: grid(tuples === 0 ? 0 : sliceSize, maxPerDimension), uniforms };
}

/**
 * Selection kernels: shaders/indexing/topk.wgsl (one workgroup per row, K rounds) and
 * shaders/indexing/nonzero.wgsl (one workgroup, its output's shape decided on the GPU).
 */
import { product, type StorageType } from '../tensor/index.ts';
import { INDEXING_MAX_RANK } from './indexing.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

/** Bindings: input, values, indices, params. */
export function topKVariant(type: StorageType): KernelVariant {
  return {
    shader: 'indexing/topk.wgsl', preludes: ['common/index.wgsl'], types: { T: type }, constants: {},
    bindings: ['read-only-storage', 'storage', 'storage', 'uniform'],
  };
}

/** TopK of `k` along an axis of `length`, the input viewed as [outer, length, inner]. */
export function topKDispatch(outer: number, length: number, inner: number, k: number, largest: boolean, maxPerDimension: number): Dispatch {
  const rows = outer * inner;
  const uniforms = new UniformWriter(32).u32(rows).u32(length).u32(inner).u32(k).u32(largest ? 1 : 0).f32(reciprocal(inner)).finish();
  return { workgroups: rows === 0 || k === 0 ? [0, 1, 1] : linearGrid(rows, maxPerDimension), uniforms };
}

/** Bindings: input, output, dims, params. */
export function nonZeroVariant(type: StorageType): KernelVariant {
  return {
    shader: 'indexing/nonzero.wgsl', preludes: ['common/index.wgsl'], types: { T: type }, unroll: { MAX_RANK: INDEXING_MAX_RANK }, constants: {},
    bindings: ['read-only-storage', 'storage', 'storage', 'uniform'],
  };
}

/** Lanes of the NonZero workgroup (shaders/indexing/nonzero.wgsl's LANES). */
const NONZERO_LANES = 256;

/** NonZero over an input of `shape`: one workgroup, which also writes the dims when nothing is non-zero. */
export function nonZeroDispatch(shape: readonly number[]): Dispatch {
  if (shape.length > INDEXING_MAX_RANK) throw new RangeError(`NonZero supports rank <= ${INDEXING_MAX_RANK}, got ${shape.length}`);
  const count = product(shape);
  const innermostFirst = [...shape].reverse();
  const uniforms = new UniformWriter(16 + 2 * 32).u32(count).u32(shape.length).u32(Math.ceil(count / NONZERO_LANES)).u32(0)
    .u32Array(innermostFirst, 2).f32Array(innermostFirst.map(reciprocal), 2).finish();
  return { workgroups: [1, 1, 1], uniforms };
}

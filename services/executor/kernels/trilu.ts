/** Trilu: shaders/data/trilu.wgsl, one invocation per element of the batch of matrices. */
import { product, type StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 256;

/** Bindings: input, output, params. */
export function triluVariant(type: StorageType): KernelVariant {
  return {
    shader: 'data/trilu.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: type },
    constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

/** Keeps col - row >= k (upper) or <= k (lower) of the last two dims of `shape` (rank >= 2). */
export function triluDispatch(shape: readonly number[], upper: boolean, k: number, maxPerDimension: number): Dispatch {
  const [rows, cols] = shape.slice(-2);
  const count = product(shape);
  // Beyond ±(rows + cols) every k keeps everything or nothing.
  const clamped = Math.min(Math.max(k, -(rows + cols)), rows + cols);
  return {
    workgroups: count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension),
    uniforms: new UniformWriter(32).u32(count).u32(rows).u32(cols).u32(Number(upper)).i32(clamped)
      .f32(reciprocal(rows)).f32(reciprocal(cols)).finish(),
  };
}

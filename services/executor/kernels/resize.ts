/**
 * The resize kernel: shaders/resize/resize_axis.wgsl, one pass of a separable resize along one
 * axis, reading a sampling table (positions and weights per output position) the host computed.
 */
import type { StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 256;

/** Bindings: input, table, output, params. */
export function resizeVariant(type: StorageType): KernelVariant {
  return {
    shader: 'resize/resize_axis.wgsl', preludes: ['common/index.wgsl'], types: { T: type }, constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** One pass over [outer, inLength, inner] -> [outer, outLength, inner] with `taps` table entries per position. */
export function resizeDispatch(
  outer: number, inLength: number, outLength: number, inner: number, taps: number, extrapolation: number, maxPerDimension: number,
): Dispatch {
  const count = outer * outLength * inner;
  const uniforms = new UniformWriter(32).u32(count).u32(outLength).u32(inner).u32(inLength).u32(taps)
    .f32(reciprocal(outLength)).f32(reciprocal(inner)).f32(extrapolation).finish();
  return { workgroups: count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension), uniforms };
}

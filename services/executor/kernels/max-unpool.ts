/**
 * MaxUnpool: shaders/pool/max_unpool.wgsl, a zero fill of the output, then a scatter of the
 * values to their indices.
 */
import type { StorageType } from '../tensor/index.ts';
import { linearGrid, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 64;

/** Variants: the zero fill, then the scatter. Bindings: x, indices, output, params. */
export function maxUnpoolVariants(type: StorageType): KernelVariant[] {
  return [1, 0].map((zero) => ({
    shader: 'pool/max_unpool.wgsl', types: { T: type }, constants: { ZERO: zero, WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  }));
}

/** The fill over `outputCount` elements, then the scatter of `inputCount`. */
export function maxUnpoolDispatches(inputCount: number, outputCount: number, maxPerDimension: number): Dispatch[] {
  const uniforms = new UniformWriter(8).u32(inputCount).u32(outputCount).finish();
  const workgroups = (count: number): [number, number, number] => (count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension));
  return [{ variant: 0, workgroups: workgroups(outputCount), uniforms }, { variant: 1, workgroups: workgroups(inputCount), uniforms }];
}

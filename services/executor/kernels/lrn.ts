/**
 * Local response normalization: shaders/norm/lrn.wgsl, one invocation per element summing the
 * squares of its channel window.
 */
import { product, type StorageType } from '../tensor/index.ts';
import { planeGrid } from './elementwise.ts';
import { UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 64;

/** LRN's attributes with their defaults filled in. */
export interface LrnAttributes {
  readonly size: number;
  readonly alpha: number;
  readonly beta: number;
  readonly bias: number;
}

/** Bindings: x, output, params. */
export function lrnVariant(type: StorageType): KernelVariant {
  return {
    shader: 'norm/lrn.wgsl',
    types: { T: type },
    constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

/** x viewed as [N, C, plane]; the window spans floor((size - 1) / 2) channels down, ceil up. */
export function lrnDispatch(shape: readonly number[], attributes: LrnAttributes, maxPerDimension: number): Dispatch {
  const [batch, channels] = [shape[0], shape[1]];
  const planeSize = product(shape.slice(2));
  const planes = batch * channels;
  return {
    workgroups: planes === 0 || planeSize === 0 ? [0, 1, 1] : planeGrid(planes, planeSize, WORKGROUP_SIZE, maxPerDimension),
    uniforms: new UniformWriter(32).u32(planes).u32(channels).u32(planeSize)
      .u32(Math.floor((attributes.size - 1) / 2)).u32(Math.ceil((attributes.size - 1) / 2))
      .f32(attributes.alpha / attributes.size).f32(attributes.beta).f32(attributes.bias).finish(),
  };
}

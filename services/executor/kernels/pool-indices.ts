/**
 * MaxPool with its Indices output (shaders/pool/max_pool_indices.wgsl). It takes the plain pool
 * kernel's uniform block and grid, so its dispatch is poolDispatch's (kernels/conv.ts).
 */
import type { StorageType } from '../tensor/index.ts';
import type { KernelVariant } from './kernel.ts';

/** The plain pool kernel's workgroup size, which poolDispatch's grid assumes. */
const WORKGROUP_SIZE = 64;

/** Bindings: input, output, indices, params. `columnMajor` is storage_order 1. */
export function maxPoolIndicesVariant(type: StorageType, columnMajor: boolean): KernelVariant {
  return {
    shader: 'pool/max_pool_indices.wgsl',
    preludes: ['common/index.wgsl', 'pool/pool_params.wgsl'],
    types: { T: type },
    constants: { COLUMN_MAJOR: Number(columnMajor), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'storage', 'uniform'],
  };
}

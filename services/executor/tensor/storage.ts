/**
 * How tensors are stored on the GPU, shared by the kernels (which declare bindings of these
 * types) and the runtime (which sizes buffers and converts bytes).
 */

/**
 * How a tensor is stored on the GPU. Floats are f32 (safe mode) or f16 (fast mode); every
 * integer and boolean tensor is i32 (INT64 values are narrowed when they are uploaded).
 */
export type StorageType = 'f32' | 'f16' | 'i32';

/** Bytes per element of each storage type. */
export const STORAGE_BYTES: Readonly<Record<StorageType, number>> = { f32: 4, f16: 2, i32: 4 };

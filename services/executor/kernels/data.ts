/**
 * Data-movement kernels: shaders/data/{copy,gather,pad}.wgsl. Copies do not look at values, so
 * every 4-byte type shares one pipeline (T = u32) and f16 has its own (each in a scalar and a
 * vec4 width).
 */
import { mergeDims, product, type StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 256;
/** Dims a copy, a pad or a gather's index math unravels (after merging). */
export const COPY_MAX_RANK = 8;

/** The copy shader's element type for a storage type: any 4-byte element is copied as u32. */
export function copyElementType(type: StorageType): 'u32' | 'f16' {
  return type === 'f16' ? 'f16' : 'u32';
}

/**
 * Bindings: input, output, params. Variant 0 copies one element per invocation; variant 1 four
 * (as one vec4), for copies whose innermost dim is contiguous on both sides (Transpose keeping
 * the last axis, Concat / Split / Slice along an outer one).
 */
export function copyVariants(type: StorageType): KernelVariant[] {
  const element = copyElementType(type);
  // The vec4 variant's T is a vector type, which the alias table takes as written; E names the
  // element type too, so that the module enables f16 when the elements are f16.
  const types: Array<Record<string, StorageType | 'u32'>> = [{ T: element }, { T: `vec4<${element}>` as StorageType, E: element }];
  return types.map((aliases) => ({
    shader: 'data/copy.wgsl',
    preludes: ['common/index.wgsl'],
    types: aliases,
    unroll: { MAX_RANK: COPY_MAX_RANK },
    constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'uniform'] as const,
  }));
}

/** A strided copy: walk `shape`, read at inOffset + coords . inStrides, write at outOffset + coords . outStrides. */
export interface CopyProblem {
  shape: readonly number[];
  inStrides: readonly number[];
  outStrides: readonly number[];
  inOffset: number;
  outOffset: number;
}

/**
 * The merged walk in vec4 units, when the innermost dim is contiguous on both sides, a multiple
 * of 4 long, and every other stride and both offsets are multiples of 4 (so every vec4 is
 * aligned in both buffers); undefined otherwise.
 */
function asVec4(merged: { shape: number[]; strides: number[][] }, inOffset: number, outOffset: number) {
  const last = merged.shape.length - 1;
  const [inStrides, outStrides] = merged.strides;
  if (merged.shape[last] % 4 !== 0 || inStrides[last] !== 1 || outStrides[last] !== 1 || inOffset % 4 !== 0 || outOffset % 4 !== 0) return undefined;
  if (inStrides.some((stride, dim) => dim !== last && stride % 4 !== 0) || outStrides.some((stride, dim) => dim !== last && stride % 4 !== 0)) return undefined;
  const quarter = (values: readonly number[]) => values.map((value, dim) => (dim === last ? value : value / 4));
  return {
    shape: merged.shape.map((size, dim) => (dim === last ? size / 4 : size)),
    strides: [quarter(inStrides), quarter(outStrides)],
    inOffset: inOffset / 4,
    outOffset: outOffset / 4,
  };
}

export function copyDispatch(problem: CopyProblem, maxPerDimension: number): Dispatch {
  const merged = mergeDims(problem.shape, [problem.inStrides, problem.outStrides]);
  if (merged.shape.length > COPY_MAX_RANK) {
    throw new RangeError(`a copy over [${problem.shape}] needs ${merged.shape.length} dims, at most ${COPY_MAX_RANK} are supported`);
  }
  const vec4 = product(problem.shape) === 0 ? undefined : asVec4(merged, problem.inOffset, problem.outOffset);
  const walk = vec4 ?? { ...merged, inOffset: problem.inOffset, outOffset: problem.outOffset };
  const count = product(walk.shape);
  // The shader walks the dims innermost first.
  const reversed = (values: readonly number[]) => [...values].reverse();
  const writer = new UniformWriter(16 + 4 * 32).u32(count).u32(walk.shape.length).u32(walk.inOffset).u32(walk.outOffset)
    .u32Array(reversed(walk.shape), 2).f32Array(reversed(walk.shape.map(reciprocal)), 2)
    .i32Array(reversed(walk.strides[0]), 2).i32Array(reversed(walk.strides[1]), 2);
  return {
    variant: vec4 ? 1 : 0,
    workgroups: product(problem.shape) === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension),
    uniforms: writer.finish(),
  };
}

/** Bindings: data, indices, output, params. */
export function gatherVariant(type: StorageType): KernelVariant {
  return {
    shader: 'data/gather.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: copyElementType(type) },
    constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** data viewed as [outer, axisLength, inner], indices flattened to `indexCount`. */
export function gatherDispatch(outer: number, axisLength: number, indexCount: number, inner: number, maxPerDimension: number): Dispatch {
  const count = outer * indexCount * inner;
  const uniforms = new UniformWriter(32).u32(count).u32(axisLength).u32(indexCount).u32(inner)
    .f32(reciprocal(inner)).f32(reciprocal(indexCount)).finish();
  return { workgroups: count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension), uniforms };
}

export const PAD_MODES = { constant: 0, reflect: 1, edge: 2, wrap: 3 } as const;
export type PadMode = keyof typeof PAD_MODES;

/** Bindings: input, output, params. */
export function padVariant(type: StorageType): KernelVariant {
  return {
    shader: 'data/pad.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: type },
    constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

export function padDispatch(
  inShape: readonly number[], outShape: readonly number[], padBegin: readonly number[], padEnd: readonly number[], mode: PadMode, value: number,
  maxPerDimension: number,
): Dispatch {
  if (outShape.length > COPY_MAX_RANK) throw new RangeError(`Pad supports rank <= ${COPY_MAX_RANK}, got ${outShape.length}`);
  const count = product(outShape);
  const inStrides: number[] = [];
  let stride = 1;
  for (let dim = inShape.length - 1; dim >= 0; dim--) {
    inStrides[dim] = stride;
    stride *= inShape[dim];
  }
  const writer = new UniformWriter(16 + 6 * 32).u32(count).u32(outShape.length).u32(PAD_MODES[mode]).f32(value)
    .u32Array(outShape, 2).f32Array(outShape.map(reciprocal), 2)
    .i32Array(inShape, 2).u32Array(inStrides, 2).i32Array(padBegin, 2).i32Array(padEnd, 2);
  return { workgroups: count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension), uniforms: writer.finish() };
}

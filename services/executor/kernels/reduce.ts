/**
 * Row-wise kernels: shaders/reduce/{reduce,softmax,softmax_rows}.wgsl and
 * shaders/norm/{layernorm,layernorm_rows}.wgsl. Softmax and LayerNormalization each have a
 * workgroup-per-row kernel for long rows and an invocation-per-row kernel for short ones.
 */
import { product, type StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

/** The reduce shader's op codes. */
export const REDUCE_OPS = { sum: 0, mean: 1, max: 2, min: 3, prod: 4, sumSquare: 5, l1: 6, l2: 7, logSum: 8, logSumExp: 9 } as const;
export type ReduceOp = keyof typeof REDUCE_OPS;

/** Invocations per output in the cooperative variant. */
const REDUCE_GROUP = 64;
/** Reductions at least this long use a workgroup per output, when outputs are few enough. */
const COOPERATIVE_MIN_LENGTH = 256;
const COOPERATIVE_MAX_OUTPUTS = 4096;

/** Bindings: input, output, params. Variant 0: one invocation per output; 1: a workgroup per output. */
export function reduceVariants(type: StorageType): KernelVariant[] {
  return [1, REDUCE_GROUP].map((size) => ({
    shader: 'reduce/reduce.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: type },
    constants: { WORKGROUP_SIZE: size },
    bindings: ['read-only-storage', 'storage', 'uniform'] as const,
  }));
}

/**
 * Reduces `shape` over `axes`. Kept dims (up to 4 after merging) index the output; reduced dims
 * (up to 3 after merging) are walked by nested loops, innermost first.
 */
export function reduceDispatch(shape: readonly number[], axes: readonly number[], op: ReduceOp, maxPerDimension: number): Dispatch {
  const reduced = new Set(axes);
  const strides: number[] = [];
  let stride = 1;
  for (let dim = shape.length - 1; dim >= 0; dim--) {
    strides[dim] = stride;
    stride *= shape[dim];
  }
  const mergeRun = (dims: number[]) => {
    // Merge neighbouring dims (outermost first) whose strides stay contiguous; drop size-1 dims.
    const out: Array<{ size: number; stride: number }> = [];
    for (const dim of dims) {
      if (shape[dim] === 1) continue;
      const last = out[out.length - 1];
      if (last && last.stride === strides[dim] * shape[dim]) {
        last.size *= shape[dim];
        last.stride = strides[dim];
      } else {
        out.push({ size: shape[dim], stride: strides[dim] });
      }
    }
    return out;
  };
  const kept = mergeRun(shape.map((_, dim) => dim).filter((dim) => !reduced.has(dim)));
  const reducedDims = mergeRun([...reduced].sort((left, right) => left - right)).reverse();
  if (kept.length > 4) throw new RangeError(`a reduction keeping ${kept.length} separate dims (at most 4 are supported)`);
  if (reducedDims.length > 3) throw new RangeError(`a reduction over ${reducedDims.length} separate dims (at most 3 are supported)`);
  const outputs = product(kept.map((dim) => dim.size));
  const reduceCount = product(reducedDims.map((dim) => dim.size));
  const cooperative = reduceCount >= COOPERATIVE_MIN_LENGTH && outputs <= COOPERATIVE_MAX_OUTPUTS;
  const reduceSizes = [0, 1, 2].map((index) => reducedDims[index]?.size ?? 1);
  const uniforms = new UniformWriter(96).u32(outputs).u32(REDUCE_OPS[op]).u32(kept.length).u32(reduceCount)
    .vec4u32(kept.map((dim) => dim.size), 1).vec4f32(kept.map((dim) => reciprocal(dim.size)), 1).vec4u32(kept.map((dim) => dim.stride))
    .vec4u32(reduceSizes, 1).vec4u32(reducedDims.map((dim) => dim.stride)).finish();
  const groups = cooperative ? outputs : Math.ceil(outputs / 1);
  return {
    variant: cooperative ? 1 : 0,
    workgroups: outputs === 0 ? [0, 1, 1] : linearGrid(groups, maxPerDimension),
    uniforms,
  };
}

const SOFTMAX_GROUP = 64;
/** Rows per workgroup of the row kernels (an invocation per row). */
const ROWS_PER_GROUP = 64;

/**
 * The longest row a row kernel (one invocation per row) takes, by device. On a CPU's SIMD units
 * (lavapipe) every workgroup barrier and workgroup-memory access is a loop over the lanes, so the
 * cooperative kernel's two tree reductions cost far more than an invocation walking a row of a
 * few hundred elements; there are only a few cores to keep busy, so a few dozen rows already
 * fill them. On GPUs the cooperative kernel keeps long rows fast (and few rows busy); only rows
 * short enough to leave most of a 64-invocation workgroup idle go one per invocation.
 */
export const ROW_KERNEL_MAX_LENGTH = { cpuSimd: 1024, gpu: 64 } as const;

/** Bindings: input, output, params. Variant 0: a workgroup per row; 1: an invocation per row. */
export function softmaxVariants(type: StorageType): KernelVariant[] {
  const bindings = ['read-only-storage', 'storage', 'uniform'] as const;
  return [
    { shader: 'reduce/softmax.wgsl', types: { T: type }, constants: { WORKGROUP_SIZE: SOFTMAX_GROUP }, bindings },
    { shader: 'reduce/softmax_rows.wgsl', preludes: ['common/index.wgsl'], types: { T: type }, constants: { WORKGROUP_SIZE: ROWS_PER_GROUP }, bindings },
  ];
}

/**
 * The tensor viewed as [outer, axisLength, inner]; softmax runs along the middle dim, of
 * `scale` times the input (a folded constant factor, default 1). Rows up to `maxRowLength`
 * long take the row kernel.
 */
export function softmaxDispatch(
  problem: { outer: number; axisLength: number; inner: number }, logOutput: boolean, maxPerDimension: number,
  options: { scale?: number; maxRowLength?: number } = {},
): Dispatch {
  const rows = problem.outer * problem.inner;
  const empty = problem.axisLength === 0 || rows === 0;
  const inner = Math.max(problem.inner, 1);
  const perInvocation = problem.axisLength <= (options.maxRowLength ?? ROW_KERNEL_MAX_LENGTH.gpu);
  const groups = perInvocation ? Math.ceil(rows / ROWS_PER_GROUP) : rows;
  return {
    variant: perInvocation ? 1 : 0,
    workgroups: empty ? [0, 1, 1] : linearGrid(groups, maxPerDimension),
    uniforms: new UniformWriter(32).u32(rows).u32(problem.axisLength).u32(inner).u32(Number(logOutput))
      .f32(options.scale ?? 1).f32(reciprocal(inner)).finish(),
  };
}

const LAYERNORM_GROUP = 64;

/**
 * Bindings: input, scale, bias, output, params. Variant 0: a workgroup per row; 1: an invocation
 * per row reading vec4s (rows a multiple of 4 long).
 */
export function layerNormVariants(type: StorageType, hasBias: boolean): KernelVariant[] {
  const bindings = ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'] as const;
  return [
    { shader: 'norm/layernorm.wgsl', types: { T: type }, constants: { HAS_BIAS: Number(hasBias), WORKGROUP_SIZE: LAYERNORM_GROUP }, bindings },
    { shader: 'norm/layernorm_rows.wgsl', types: { T: type }, constants: { HAS_BIAS: Number(hasBias), WORKGROUP_SIZE: ROWS_PER_GROUP }, bindings },
  ];
}

export function layerNormDispatch(
  rows: number, length: number, epsilon: number, scaleCount: number, biasCount: number, maxPerDimension: number,
  maxRowLength: number = ROW_KERNEL_MAX_LENGTH.gpu,
): Dispatch {
  const perInvocation = length % 4 === 0 && length <= maxRowLength;
  const groups = perInvocation ? Math.ceil(rows / ROWS_PER_GROUP) : rows;
  return {
    variant: perInvocation ? 1 : 0,
    workgroups: rows === 0 || length === 0 ? [0, 1, 1] : linearGrid(groups, maxPerDimension),
    uniforms: new UniformWriter(32).u32(rows).u32(length).f32(epsilon).u32(scaleCount === 1 ? 0 : 1).u32(biasCount === 1 ? 0 : 1).finish(),
  };
}

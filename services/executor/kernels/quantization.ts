/**
 * Integer quantization kernels (shaders/quantization/): element-wise QuantizeLinear /
 * DequantizeLinear over per-tensor, per-axis or blocked scales, the min / max pass of
 * DynamicQuantizeLinear, and exact i32 integer GEMM and direct convolution with an optional
 * requantization (QLinearMatMul / QLinearConv). Quantized elements are i32 on the GPU (UINT8 and
 * INT8 are widened at upload), so every product and sum is exact 32-bit integer arithmetic.
 */
import type { StorageType } from '../tensor/index.ts';
import { linearGrid, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 64;
/** DynamicQuantizeLinear's min / max runs as one workgroup of this many invocations. */
const RANGE_WORKGROUP_SIZE = 256;

/** Which scale (and zero point) an element of the quantized tensor uses. */
export interface ScaleLayout {
  /** 0: one scale; 1: one per index along the axis; 2: blocks of `block` along the axis. */
  readonly mode: 0 | 1 | 2;
  /** Elements after the axis, the axis' length, the block length and the scale's length along the axis. */
  readonly inner: number;
  readonly axisLength: number;
  readonly block: number;
  readonly blocks: number;
}

const grid = (count: number, maxPerDimension: number): [number, number, number] =>
  (count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension));

/** Bindings: input (T), scales (f32 words), zero points (i32), output (i32), params. */
export function quantizeVariant(input: StorageType): KernelVariant {
  return {
    shader: 'quantization/quantize.wgsl', preludes: ['quantization/quantization_params.wgsl'], types: { T: input }, constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** Bindings: input (i32), scales (f32 words), zero points (i32), output (T), params. */
export function dequantizeVariant(output: StorageType): KernelVariant {
  return {
    shader: 'quantization/dequantize.wgsl', preludes: ['quantization/quantization_params.wgsl'], types: { T: output }, constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** Quantize (saturating to [low, high]) or dequantize `count` elements. */
export function quantizeDispatch(count: number, layout: ScaleLayout, low: number, high: number, maxPerDimension: number): Dispatch {
  return {
    workgroups: grid(count, maxPerDimension),
    uniforms: new UniformWriter(32).u32(count).u32(Math.max(layout.inner, 1)).u32(Math.max(layout.axisLength, 1)).u32(Math.max(layout.block, 1))
      .u32(layout.blocks).u32(layout.mode).i32(low).i32(high).finish(),
  };
}

/**
 * Bindings: input (T), scale word (f32, scratch), zero point word (i32, scratch), y_scale
 * (output 1, U), y_zero_point (output 2, i32), params.
 */
export function quantizationRangeVariant(input: StorageType, scale: StorageType): KernelVariant {
  return {
    shader: 'quantization/dynamic_range.wgsl', types: { T: input, U: scale }, constants: { WORKGROUP_SIZE: RANGE_WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'storage', 'storage', 'storage', 'uniform'],
  };
}

export function quantizationRangeDispatch(count: number): Dispatch {
  return { workgroups: [1, 1, 1], uniforms: new UniformWriter(16).u32(count).finish() };
}

/** The requantization of an i32 accumulator: none (the i32 itself), or to [low, high] around zeroPoint. */
export interface Requantize {
  readonly low: number;
  readonly high: number;
  readonly zeroPoint: number;
}

/**
 * Bindings: A (i32), B (i32), A zero points per row, B zero points per column, multipliers per
 * column (f32 words), batch offsets (A, B words per batch), output (i32), params.
 */
export function integerGemmVariant(): KernelVariant {
  return {
    shader: 'quantization/integer_gemm.wgsl', constants: { WORKGROUP_SIZE },
    bindings: [...new Array<'read-only-storage'>(6).fill('read-only-storage'), 'storage', 'uniform'],
  };
}

export function integerGemmDispatch(
  batches: number, m: number, n: number, k: number, requantize: Requantize | undefined, maxPerDimension: number,
): Dispatch {
  return {
    workgroups: grid(batches * m * n, maxPerDimension),
    uniforms: new UniformWriter(32).u32(batches * m * n).u32(m).u32(n).u32(k).u32(Number(requantize !== undefined))
      .i32(requantize?.low ?? 0).i32(requantize?.high ?? 0).i32(requantize?.zeroPoint ?? 0).finish(),
  };
}

/** A grouped convolution as 3 spatial dims (lower ranks pad with 1s in front). */
export interface IntegerConvProblem {
  readonly batch: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly group: number;
  readonly inSpatial: readonly number[];
  readonly outSpatial: readonly number[];
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  readonly padBegin: readonly number[];
}

/**
 * Bindings: X (i32), W (i32), X zero point, W zero points per output channel, multipliers per
 * output channel (f32 words), bias per output channel (i32), output (i32), params.
 */
export function integerConvVariant(): KernelVariant {
  return {
    shader: 'quantization/integer_conv.wgsl', constants: { WORKGROUP_SIZE },
    bindings: [...new Array<'read-only-storage'>(6).fill('read-only-storage'), 'storage', 'uniform'],
  };
}

export function integerConvDispatch(problem: IntegerConvProblem, requantize: Requantize | undefined, maxPerDimension: number): Dispatch {
  const count = problem.batch * problem.outChannels * problem.outSpatial.reduce((total, dim) => total * dim, 1);
  return {
    workgroups: grid(count, maxPerDimension),
    uniforms: new UniformWriter(128).u32(count).u32(problem.inChannels / problem.group).u32(problem.outChannels).u32(problem.outChannels / problem.group)
      .u32(Number(requantize !== undefined)).i32(requantize?.low ?? 0).i32(requantize?.high ?? 0).i32(requantize?.zeroPoint ?? 0)
      .vec4u32(problem.inSpatial, 1).vec4u32(problem.outSpatial, 1).vec4u32(problem.kernel, 1).vec4u32(problem.strides, 1)
      .vec4u32(problem.dilations, 1).vec4i32(problem.padBegin, 0).finish(),
  };
}

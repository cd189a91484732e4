/**
 * Window kernels over up to 3 spatial dims (shaders/window/): direct convolution, transposed
 * convolution and pooling (max, average, Lp), one invocation per output element. They run the
 * 3-D cases and LpPool; fewer spatial dims run with leading dims of size 1.
 */
import { product, type StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';
import type { UnaryFunction } from './unary-ops.ts';

const WORKGROUP_SIZE = 64;
/** Spatial dims the window kernels take. */
export const WINDOW_MAX_SPATIAL = 3;

/** A window over [batch, channels, spatial...] with its spatial geometry (1 to 3 dims). */
export interface WindowProblem {
  readonly batch: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly groups: number;
  readonly inSpatial: readonly number[];
  readonly outSpatial: readonly number[];
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  readonly padBegin: readonly number[];
  readonly padEnd: readonly number[];
}

/** Spatial values as (depth, height, width): fewer dims get leading `fill`s. */
function as3d(values: readonly number[], fill: number): number[] {
  if (values.length > WINDOW_MAX_SPATIAL) throw new RangeError(`${values.length}-D windows exceed the ${WINDOW_MAX_SPATIAL} spatial dims supported`);
  return [...new Array<number>(WINDOW_MAX_SPATIAL - values.length).fill(fill), ...values];
}

const grid = (count: number, maxPerDimension: number): [number, number, number] =>
  (count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension));

/** The shared head of the convolution uniforms: counts, shapes, inverses and the window. */
function convUniforms(problem: WindowProblem, activation: UnaryFunction): { count: number; uniforms: ArrayBuffer } {
  const outSpatial = as3d(problem.outSpatial, 1);
  const count = problem.batch * problem.outChannels * product(outSpatial);
  const uniforms = new UniformWriter(16 + 7 * 16 + 16)
    .u32(count).u32(problem.outChannels).u32(problem.outChannels / problem.groups).u32(problem.inChannels / problem.groups)
    .vec4i32(as3d(problem.inSpatial, 1)).vec4u32(outSpatial)
    .vec4f32([reciprocal(outSpatial[2]), reciprocal(outSpatial[1]), reciprocal(outSpatial[0]), reciprocal(problem.outChannels)])
    .vec4i32(as3d(problem.kernel, 1)).vec4i32(as3d(problem.strides, 1)).vec4i32(as3d(problem.padBegin, 0)).vec4i32(as3d(problem.dilations, 1))
    .u32(activation.op).f32(activation.alpha).f32(activation.beta).u32(0).finish();
  return { count, uniforms };
}

/** Bindings: x, w, bias, residual, output, params. */
export function convNdVariant(type: StorageType, hasBias: boolean, hasResidual: boolean): KernelVariant {
  return {
    shader: 'window/conv_nd.wgsl', preludes: ['common/index.wgsl', 'common/unary_ops.wgsl', 'window/conv_nd_params.wgsl'], types: { T: type },
    constants: { HAS_BIAS: Number(hasBias), HAS_RESIDUAL: Number(hasResidual), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/**
 * A direct or transposed convolution: both group their input channels (in_per_group =
 * C_in / groups) and output channels (out_per_group = C_out / groups) the same way.
 */
export function convNdDispatch(problem: WindowProblem, activation: UnaryFunction, maxPerDimension: number): Dispatch {
  const { count, uniforms } = convUniforms(problem, activation);
  return { workgroups: grid(count, maxPerDimension), uniforms };
}

/** Bindings: x, w, bias, output, params. */
export function convTransposeNdVariant(type: StorageType, hasBias: boolean): KernelVariant {
  return {
    shader: 'window/conv_transpose_nd.wgsl', preludes: ['common/index.wgsl', 'common/unary_ops.wgsl', 'window/conv_nd_params.wgsl'], types: { T: type },
    constants: { HAS_BIAS: Number(hasBias), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

export const POOL_MODES = { max: 0, average: 1, lp: 2 } as const;
export type PoolMode = keyof typeof POOL_MODES;

/** Bindings: input, output, params. */
export function poolNdVariant(type: StorageType, mode: PoolMode): KernelVariant {
  return {
    shader: 'window/pool_nd.wgsl', preludes: ['common/index.wgsl'], types: { T: type },
    constants: { MODE: POOL_MODES[mode], WORKGROUP_SIZE }, bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

export function poolNdDispatch(problem: WindowProblem, countIncludePad: boolean, p: number, maxPerDimension: number): Dispatch {
  const outSpatial = as3d(problem.outSpatial, 1);
  const inSpatial = as3d(problem.inSpatial, 1);
  const count = problem.batch * problem.outChannels * product(outSpatial);
  const padEnd = as3d(problem.padEnd, 0);
  const uniforms = new UniformWriter(16 + 8 * 16)
    .u32(count).u32(Number(countIncludePad)).f32(p).u32(0)
    .vec4i32(inSpatial).vec4u32(outSpatial).vec4f32([reciprocal(outSpatial[2]), reciprocal(outSpatial[1]), reciprocal(outSpatial[0])])
    .vec4i32(as3d(problem.kernel, 1)).vec4i32(as3d(problem.strides, 1)).vec4i32(as3d(problem.padBegin, 0))
    .vec4i32(inSpatial.map((dim, axis) => dim + padEnd[axis])).vec4i32(as3d(problem.dilations, 1)).finish();
  return { workgroups: grid(count, maxPerDimension), uniforms };
}

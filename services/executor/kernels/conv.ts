/**
 * Convolution kernels outside the implicit GEMM: depthwise (shaders/conv/depthwise.wgsl) and
 * transposed (shaders/conv/conv_transpose.wgsl), plus the pools (shaders/pool/pool.wgsl).
 */
import { planeGrid } from './elementwise.ts';
import type { StorageType } from '../tensor/index.ts';
import { reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';
import type { ConvProblem } from './matmul.ts';
import type { UnaryFunction } from './unary-ops.ts';

const WORKGROUP_SIZE = 64;

/** Bindings: x, w, bias, residual, output, params. */
export function depthwiseVariant(type: StorageType, hasBias: boolean, hasResidual: boolean): KernelVariant {
  return {
    shader: 'conv/depthwise.wgsl',
    preludes: ['common/index.wgsl', 'common/unary_ops.wgsl'],
    types: { T: type },
    constants: { HAS_BIAS: Number(hasBias), HAS_RESIDUAL: Number(hasResidual), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

export function depthwiseDispatch(problem: ConvProblem, activation: UnaryFunction, maxPerDimension: number): Dispatch {
  const planes = problem.batch * problem.outChannels;
  const positions = problem.outH * problem.outW;
  const uniforms = new UniformWriter(80)
    .u32(planes).u32(problem.outChannels).u32(problem.outChannels / problem.inChannels).i32(problem.inH)
    .i32(problem.inW).u32(problem.outH).u32(problem.outW).f32(reciprocal(problem.outW))
    .i32(problem.kernelH).i32(problem.kernelW).i32(problem.strideH).i32(problem.strideW)
    .i32(problem.padTop).i32(problem.padLeft).i32(problem.dilationH).i32(problem.dilationW)
    .u32(activation.op).f32(activation.alpha).f32(activation.beta).u32(0).finish();
  return { workgroups: planes === 0 || positions === 0 ? [0, 1, 1] : planeGrid(planes, positions, WORKGROUP_SIZE, maxPerDimension), uniforms };
}

/** Bindings: x, w, bias, output, params. */
export function convTransposeVariant(type: StorageType, hasBias: boolean): KernelVariant {
  return {
    shader: 'conv/conv_transpose.wgsl',
    preludes: ['common/index.wgsl', 'common/unary_ops.wgsl'],
    types: { T: type },
    constants: { HAS_BIAS: Number(hasBias), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

export function convTransposeDispatch(problem: ConvProblem, activation: UnaryFunction, maxPerDimension: number): Dispatch {
  const planes = problem.batch * problem.outChannels;
  const positions = problem.outH * problem.outW;
  const uniforms = new UniformWriter(80)
    .u32(planes).u32(problem.outChannels).u32(problem.outChannels / problem.groups).u32(problem.inChannels / problem.groups)
    .i32(problem.inH).i32(problem.inW).u32(problem.outH).u32(problem.outW)
    .f32(reciprocal(problem.outW)).i32(problem.kernelH).i32(problem.kernelW).i32(problem.strideH)
    .i32(problem.strideW).i32(problem.padTop).i32(problem.padLeft).i32(problem.dilationH)
    .i32(problem.dilationW).u32(activation.op).f32(activation.alpha).f32(activation.beta).finish();
  return { workgroups: planes === 0 || positions === 0 ? [0, 1, 1] : planeGrid(planes, positions, WORKGROUP_SIZE, maxPerDimension), uniforms };
}

/** Bindings: input, output, params. */
export function poolVariant(type: StorageType, isMax: boolean): KernelVariant {
  return {
    shader: 'pool/pool.wgsl',
    preludes: ['common/index.wgsl', 'pool/pool_params.wgsl'],
    types: { T: type },
    constants: { IS_MAX: Number(isMax), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

/** A 2-D pooling window over [planes, inH, inW]. */
export interface PoolProblem {
  planes: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  dilationH: number;
  dilationW: number;
  countIncludePad: boolean;
}

export function poolDispatch(problem: PoolProblem, maxPerDimension: number): Dispatch {
  const positions = problem.outH * problem.outW;
  const uniforms = new UniformWriter(80)
    .u32(problem.planes).i32(problem.inH).i32(problem.inW).u32(problem.outH)
    .u32(problem.outW).f32(reciprocal(problem.outW)).i32(problem.kernelH).i32(problem.kernelW)
    .i32(problem.strideH).i32(problem.strideW).i32(problem.padTop).i32(problem.padLeft)
    .i32(problem.dilationH).i32(problem.dilationW).i32(problem.inH + problem.padBottom).i32(problem.inW + problem.padRight)
    .u32(Number(problem.countIncludePad)).finish();
  return { workgroups: problem.planes === 0 || positions === 0 ? [0, 1, 1] : planeGrid(problem.planes, positions, WORKGROUP_SIZE, maxPerDimension), uniforms };
}

/** shaders/reduce/softmax.wgsl: stable softmax along one axis, one workgroup per row. */
import { linearGrid, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

/** Invocations per row; a power of two (the shader's tree reduction halves it). */
const WORKGROUP_SIZE = 64;

/** Bindings: input, output, params. */
export function softmaxVariant(): KernelVariant {
  return {
    shader: 'reduce/softmax.wgsl',
    constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

/** The tensor viewed as [outer, axisLength, inner]; softmax runs along the middle dim. */
export interface SoftmaxProblem {
  outer: number;
  axisLength: number;
  inner: number;
}

/** One workgroup per (outer, inner) row. */
export function softmaxDispatch(problem: SoftmaxProblem, maxPerDimension: number): Dispatch {
  const rows = problem.outer * problem.inner;
  const empty = problem.axisLength === 0 || rows === 0;
  return {
    workgroups: empty ? [0, 1, 1] : linearGrid(rows, maxPerDimension),
    uniforms: new UniformWriter(16).u32(rows).u32(problem.axisLength).u32(Math.max(problem.inner, 1)).u32(0).finish(),
  };
}

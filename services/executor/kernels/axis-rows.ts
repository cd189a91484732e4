/**
 * Row kernels along one axis of a tensor viewed as [outer, axis, inner], one invocation per row:
 * ArgMax / ArgMin (shaders/reduce/arg_reduce.wgsl) and CumSum (shaders/reduce/cumsum.wgsl).
 */
import type { StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const ROWS_PER_GROUP = 64;

/** The tensor seen from one axis: `outer` rows of `axisLength` elements `inner` apart, times `inner`. */
export interface AxisProblem {
  readonly outer: number;
  readonly axisLength: number;
  readonly inner: number;
}

/** Bindings: input, output (i32 indices), params. */
export function argReduceVariant(type: StorageType): KernelVariant {
  return {
    shader: 'reduce/arg_reduce.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: type },
    constants: { WORKGROUP_SIZE: ROWS_PER_GROUP },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

function rowsDispatch(problem: AxisProblem, flags: readonly [number, number], maxPerDimension: number): Dispatch {
  const rows = problem.outer * problem.inner;
  const inner = Math.max(problem.inner, 1);
  return {
    workgroups: rows === 0 || problem.axisLength === 0 ? [0, 1, 1] : linearGrid(Math.ceil(rows / ROWS_PER_GROUP), maxPerDimension),
    uniforms: new UniformWriter(32).u32(rows).u32(problem.axisLength).u32(inner).u32(flags[0]).u32(flags[1]).f32(reciprocal(inner)).finish(),
  };
}

/** The index of each row's largest (`smallest`: smallest) element; ties go to the first, or the last with `selectLast`. */
export function argReduceDispatch(problem: AxisProblem, smallest: boolean, selectLast: boolean, maxPerDimension: number): Dispatch {
  return rowsDispatch(problem, [Number(smallest), Number(selectLast)], maxPerDimension);
}

/** Bindings: input, output, params. Floats sum in f32, integers in i32. */
export function cumSumVariant(type: StorageType): KernelVariant {
  return {
    shader: 'reduce/cumsum.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: type, A: type === 'i32' ? 'i32' : 'f32' },
    constants: { WORKGROUP_SIZE: ROWS_PER_GROUP },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

export function cumSumDispatch(problem: AxisProblem, exclusive: boolean, reverse: boolean, maxPerDimension: number): Dispatch {
  return rowsDispatch(problem, [Number(exclusive), Number(reverse)], maxPerDimension);
}

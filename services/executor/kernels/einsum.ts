/**
 * The einsum kernel: shaders/einsum/einsum.wgsl, one invocation per output element summing over
 * the contracted labels through each operand's strides.
 */
import { mergeDims, product, stridesOf, type StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 64;
/** Output and contracted labels together (after merging) the kernel unravels. */
export const EINSUM_MAX_LABELS = 8;

/** Bindings: a, b (a again for one operand), output, params. */
export function einsumVariant(type: StorageType, operands: 1 | 2): KernelVariant {
  return {
    shader: 'einsum/einsum.wgsl', preludes: ['common/index.wgsl'], types: { T: type, A: type === 'i32' ? 'i32' : 'f32' },
    unroll: { MAX_RANK: EINSUM_MAX_LABELS }, constants: { WORKGROUP_SIZE, OPERANDS: operands },
    bindings: ['read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** The labels of an einsum, outermost first: their dims and each operand's strides over them. */
export interface EinsumProblem {
  readonly outShape: readonly number[];
  readonly outStrides: readonly [readonly number[], readonly number[]];
  readonly reduceShape: readonly number[];
  readonly reduceStrides: readonly [readonly number[], readonly number[]];
}

export function einsumDispatch(problem: EinsumProblem, maxPerDimension: number): Dispatch {
  const count = product(problem.outShape);
  // Neighbouring labels that every tensor steps through contiguously become one.
  const out = mergeDims(problem.outShape, [...problem.outStrides, stridesOf(problem.outShape)]);
  const reduce = mergeDims(problem.reduceShape, problem.reduceStrides);
  const reduceCount = product(problem.reduceShape);
  const outRank = count === 0 ? 0 : out.shape.length;
  const reduceRank = reduceCount === 0 ? 0 : reduce.shape.length;
  if (outRank + reduceRank > EINSUM_MAX_LABELS) {
    throw new RangeError(`Einsum walks ${outRank} output and ${reduceRank} contracted dims; at most ${EINSUM_MAX_LABELS} together are supported`);
  }
  // Output labels innermost first, then contracted labels innermost first.
  const both = (outValues: readonly number[], reduceValues: readonly number[]) =>
    [...outValues.slice(0, outRank)].reverse().concat([...reduceValues.slice(0, reduceRank)].reverse());
  const uniforms = new UniformWriter(16 + 4 * 32).u32(count).u32(outRank).u32(reduceRank).u32(reduceCount)
    .u32Array(both(out.shape, reduce.shape), 2).f32Array(both(out.shape.map(reciprocal), reduce.shape.map(reciprocal)), 2)
    .u32Array(both(out.strides[0], reduce.strides[0]), 2).u32Array(both(out.strides[1], reduce.strides[1]), 2).finish();
  return { workgroups: count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension), uniforms };
}

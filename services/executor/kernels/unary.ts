/** shaders/elementwise/unary.wgsl: output[i] = f(input[i]) for Relu, Sigmoid, Tanh. */
import { linearGrid, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

/** The shader's OP override values. */
export const UNARY_OPS = { Relu: 0, Sigmoid: 1, Tanh: 2 } as const;
export type UnaryOp = keyof typeof UNARY_OPS;

const WORKGROUP_SIZE = 256;

export function isUnaryOp(opType: string): opType is UnaryOp {
  return Object.hasOwn(UNARY_OPS, opType);
}

/** Bindings: input, output, params. */
export function unaryVariant(op: UnaryOp): KernelVariant {
  return {
    shader: 'elementwise/unary.wgsl',
    constants: { OP: UNARY_OPS[op], WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

/** One invocation per element. */
export function unaryDispatch(elementCount: number, maxPerDimension: number): Dispatch {
  return {
    workgroups: linearGrid(Math.ceil(elementCount / WORKGROUP_SIZE), maxPerDimension),
    uniforms: new UniformWriter(4).u32(elementCount).finish(),
  };
}

/** shaders/elementwise/binary.wgsl: output = a OP b with numpy-style broadcasting, rank <= 6. */
import { linearGrid, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

/** The shader's OP override values. */
export const BINARY_OPS = { Add: 0, Sub: 1, Mul: 2, Div: 3 } as const;
export type BinaryOp = keyof typeof BINARY_OPS;

/** Dims the uniform block has room for. */
export const BINARY_MAX_RANK = 6;
const WORKGROUP_SIZE = 256;

export function isBinaryOp(opType: string): opType is BinaryOp {
  return Object.hasOwn(BINARY_OPS, opType);
}

/** Bindings: a, b, output, params. */
export function binaryVariant(op: BinaryOp): KernelVariant {
  return {
    shader: 'elementwise/binary.wgsl',
    constants: { OP: BINARY_OPS[op], WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** The output's dims with each operand's element strides over them (0 where it broadcasts). */
export interface BroadcastLayout {
  shape: number[];
  aStrides: number[];
  bStrides: number[];
}

/**
 * Right-aligns `aShape` and `bShape` to `outShape`, gives broadcast dims stride 0, drops size-1
 * output dims and merges neighbouring dims across which both operands stay contiguous (or both
 * stay broadcast), so the shader unravels as few dims as possible: [64, 37] + [37] becomes
 * shape [64, 37] with b strides [0, 1]; equal shapes become one dim.
 */
export function broadcastLayout(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]): BroadcastLayout {
  const stridesOver = (shape: readonly number[]) => {
    const offset = outShape.length - shape.length;
    const strides = new Array<number>(outShape.length).fill(0);
    let stride = 1;
    for (let dim = shape.length - 1; dim >= 0; dim--) {
      strides[dim + offset] = shape[dim] === 1 ? 0 : stride;
      stride *= shape[dim];
    }
    return strides;
  };
  const aFull = stridesOver(aShape);
  const bFull = stridesOver(bShape);
  const layout: BroadcastLayout = { shape: [], aStrides: [], bStrides: [] };
  for (let dim = 0; dim < outShape.length; dim++) {
    const size = outShape[dim];
    if (size === 1) continue;
    const last = layout.shape.length - 1;
    // Dim `dim` merges into the previous kept dim when, for each operand, stepping the previous
    // dim once equals stepping this dim `size` times.
    if (last >= 0 && layout.aStrides[last] === aFull[dim] * size && layout.bStrides[last] === bFull[dim] * size) {
      layout.shape[last] *= size;
      layout.aStrides[last] = aFull[dim];
      layout.bStrides[last] = bFull[dim];
    } else {
      layout.shape.push(size);
      layout.aStrides.push(aFull[dim]);
      layout.bStrides.push(bFull[dim]);
    }
  }
  return layout;
}

/** One invocation per output element. */
export function binaryDispatch(
  aShape: readonly number[], bShape: readonly number[], outShape: readonly number[], maxPerDimension: number,
): Dispatch {
  const layout = broadcastLayout(aShape, bShape, outShape);
  if (layout.shape.length > BINARY_MAX_RANK) {
    throw new RangeError(`broadcast of [${aShape}] and [${bShape}] needs ${layout.shape.length} dims, at most ${BINARY_MAX_RANK} are supported`);
  }
  const count = outShape.reduce((product, dim) => product * dim, 1);
  const lanes = (values: number[], from: number) => values.slice(from, from + 4);
  const uniforms = new UniformWriter(112).u32(count).u32(layout.shape.length).u32(0).u32(0);
  for (const values of [layout.shape, layout.aStrides, layout.bStrides]) {
    uniforms.vec4u32(lanes(values, 0)).vec4u32(lanes(values, 4));
  }
  return { workgroups: linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension), uniforms: uniforms.finish() };
}

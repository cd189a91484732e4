/**
 * Element-wise kernels: shaders/elementwise/{unary,binary,where,channel_affine}.wgsl. The op is a
 * uniform, so one pipeline per storage-type combination serves every op.
 */
import { broadcastStrides, mergeDims, product, type StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';
import type { UnaryFunction } from './unary-ops.ts';

const WORKGROUP_SIZE = 256;
/** Dims the broadcasting kernels unravel (after merging). */
export const ELEMENTWISE_MAX_RANK = 8;
const UNIFORM_DIM_SLOTS = 2;

export const UNARY_MODE = { float: 0, integer: 1, toBoolean: 2 } as const;
export type UnaryMode = keyof typeof UNARY_MODE;

/** Bindings: input, output, params. */
export function unaryVariant(input: StorageType, output: StorageType, mode: UnaryMode): KernelVariant {
  return {
    shader: 'elementwise/unary.wgsl',
    preludes: ['common/unary_ops.wgsl', 'common/math_ops.wgsl'],
    types: { TI: input, TO: output },
    constants: { MODE: UNARY_MODE[mode], WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'storage', 'uniform'],
  };
}

/** One invocation per element. */
export function unaryDispatch(elementCount: number, fn: UnaryFunction, maxPerDimension: number): Dispatch {
  return {
    workgroups: linearGrid(Math.ceil(elementCount / WORKGROUP_SIZE), maxPerDimension),
    uniforms: new UniformWriter(16).u32(elementCount).u32(fn.op).f32(fn.alpha).f32(fn.beta).finish(),
  };
}

/** The shader's binary op codes (shaders/common/binary_ops.wgsl). */
export const BINARY_OPS = {
  Add: 0, Sub: 1, Mul: 2, Div: 3, Pow: 4, Min: 5, Max: 6, PRelu: 7, Equal: 8, Greater: 9, Less: 10,
  GreaterOrEqual: 11, LessOrEqual: 12, And: 13, Or: 14, Xor: 15,
  Mod: 16, Fmod: 17, ShiftLeft: 18, ShiftLeft8: 19, ShiftLeft16: 20, ShiftRight: 21, BitwiseAnd: 22, BitwiseOr: 23, BitwiseXor: 24,
} as const;
export type BinaryOpName = keyof typeof BINARY_OPS;

/** Binary ops defined on integers (binary_int). */
export const INTEGER_BINARY_OPS: ReadonlySet<string> = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Min', 'Max', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor',
]);

/** Bindings: a, b, output, params. */
export function binaryVariant(a: StorageType, b: StorageType, output: StorageType, integerMath: boolean): KernelVariant {
  return {
    shader: 'elementwise/binary.wgsl',
    preludes: ['common/index.wgsl', 'common/binary_ops.wgsl', 'common/unary_ops.wgsl'],
    types: { TA: a, TB: b, TO: output },
    constants: { INT_MATH: Number(integerMath), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

function writeDims(writer: UniformWriter, values: readonly number[]): UniformWriter {
  return writer.u32Array(values, UNIFORM_DIM_SLOTS);
}

/** One invocation per output element; operands broadcast numpy-style. */
export function binaryDispatch(
  op: number, activation: UnaryFunction, aShape: readonly number[], bShape: readonly number[], outShape: readonly number[], maxPerDimension: number,
): Dispatch {
  const merged = mergeDims(outShape, [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape)]);
  if (merged.shape.length > ELEMENTWISE_MAX_RANK) {
    throw new RangeError(`broadcast of [${aShape}] and [${bShape}] needs ${merged.shape.length} dims, at most ${ELEMENTWISE_MAX_RANK} are supported`);
  }
  const count = product(outShape);
  const writer = new UniformWriter(32 + 4 * 32).u32(count).u32(merged.shape.length).u32(op).u32(activation.op)
    .f32(activation.alpha).f32(activation.beta).u32(0).u32(0);
  writeDims(writer, merged.shape);
  writer.f32Array(merged.shape.map(reciprocal), UNIFORM_DIM_SLOTS);
  writeDims(writer, merged.strides[0]);
  writeDims(writer, merged.strides[1]);
  return { workgroups: linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension), uniforms: writer.finish() };
}

/** Bindings: condition, x, y, output, params. */
export function whereVariant(type: StorageType): KernelVariant {
  return {
    shader: 'elementwise/where.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: type },
    constants: { WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

export function whereDispatch(
  conditionShape: readonly number[], xShape: readonly number[], yShape: readonly number[], outShape: readonly number[], maxPerDimension: number,
): Dispatch {
  const merged = mergeDims(outShape, [conditionShape, xShape, yShape].map((shape) => broadcastStrides(shape, outShape)));
  if (merged.shape.length > ELEMENTWISE_MAX_RANK) {
    throw new RangeError(`Where over [${outShape}] needs ${merged.shape.length} dims, at most ${ELEMENTWISE_MAX_RANK} are supported`);
  }
  const count = product(outShape);
  const writer = new UniformWriter(16 + 5 * 32).u32(count).u32(merged.shape.length).u32(0).u32(0);
  writeDims(writer, merged.shape);
  writer.f32Array(merged.shape.map(reciprocal), UNIFORM_DIM_SLOTS);
  for (const strides of merged.strides) writeDims(writer, strides);
  return { workgroups: linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension), uniforms: writer.finish() };
}

const PLANE_WORKGROUP = 64;

/** Grid for kernels that walk N * C planes on y / z and positions in a plane on x. */
export function planeGrid(planes: number, planeSize: number, workgroupSize: number, maxPerDimension: number): [number, number, number] {
  const x = Math.ceil(planeSize / workgroupSize);
  const y = Math.min(planes, maxPerDimension);
  const z = Math.ceil(planes / y);
  if (x > maxPerDimension || z > maxPerDimension) throw new RangeError(`${planes} planes of ${planeSize} exceed the dispatch grid`);
  return [x, y, z];
}

/** Bindings: x, scale, shift, output, params. */
export function channelAffineVariant(type: StorageType): KernelVariant {
  return {
    shader: 'elementwise/channel_affine.wgsl',
    preludes: ['common/unary_ops.wgsl'],
    types: { T: type },
    constants: { WORKGROUP_SIZE: PLANE_WORKGROUP },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** x viewed as [N, C, plane]: y = act(x * scale[c] + shift[c]). */
export function channelAffineDispatch(shape: readonly number[], activation: UnaryFunction, maxPerDimension: number): Dispatch {
  const [batch, channels] = [shape[0], shape[1] ?? 1];
  const planeSize = product(shape.slice(2));
  const planes = batch * channels;
  return {
    workgroups: planes === 0 || planeSize === 0 ? [0, 1, 1] : planeGrid(planes, planeSize, PLANE_WORKGROUP, maxPerDimension),
    uniforms: new UniformWriter(32).u32(planes).u32(channels).u32(planeSize).u32(activation.op)
      .f32(activation.alpha).f32(activation.beta).finish(),
  };
}

/**
 * Index walks the CPU implementations share: which source element each output element reads
 * under broadcasting or a strided view, and gathering those elements into a new tensor. Every
 * output is reserved with the context's allocator before anything of its size is allocated,
 * and tensor data and index lists are typed arrays, never JS arrays.
 */
import type { Datatype, TypedArray } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { broadcastStrides, fromNumbers, product, typedArrayFor } from '../tensor/index.ts';
import type { CpuContext } from './contract.ts';

/** Element access common to every typed array (bigint for the 64-bit integer arrays). */
type Elements = { [index: number]: number | bigint };

/** Flat element indices: 4 bytes each while they fit, else 8. */
export type IndexArray = Uint32Array | Float64Array;

const indexArray = (count: number, largest: number): IndexArray => (largest <= 0xffff_ffff ? new Uint32Array(count) : new Float64Array(count));

/** Checks the node's output of `shape` against the compile's budgets, before it is allocated. */
export function reserve(context: Pick<CpuContext, 'node' | 'allocator'>, shape: readonly number[], datatype: Datatype): void {
  context.allocator.reserve(context.node, shape, datatype);
}

/** `tensor`'s data under a new shape (same element count). */
export const withShape = (tensor: HostTensor, shape: readonly number[]): HostTensor => ({ ...tensor, shape: [...shape] });

/** Gathers `source` at `indices` into a new tensor of `shape` with the source's datatype (no conversion). */
export function pick(source: HostTensor, shape: readonly number[], indices: ArrayLike<number>): HostTensor {
  const data = typedArrayFor(source.datatype, indices.length);
  const out = data as unknown as Elements;
  const from = source.data as unknown as Elements;
  for (let index = 0; index < indices.length; index++) out[index] = from[indices[index]];
  return { datatype: source.datatype, shape: [...shape], data };
}

/** For each element of `outShape`, the flat index of the element of `shape` that broadcasts to it. */
export function broadcastIndices(shape: readonly number[], outShape: readonly number[]): IndexArray {
  return stridedIndices(outShape, broadcastStrides(shape, outShape), 0, product(shape));
}

/** Flat source indices of a strided walk over `shape` starting at `offset`; `sourceCount` bounds them. */
export function stridedIndices(shape: readonly number[], strides: readonly number[], offset: number, sourceCount = Infinity): IndexArray {
  const count = product(shape);
  const indices = indexArray(count, Math.min(sourceCount, Number.MAX_SAFE_INTEGER));
  const coords = new Array<number>(shape.length).fill(0);
  let source = offset;
  for (let index = 0; index < count; index++) {
    indices[index] = source;
    for (let dim = shape.length - 1; dim >= 0; dim--) {
      source += strides[dim];
      if (++coords[dim] < shape[dim]) break;
      source -= coords[dim] * strides[dim];
      coords[dim] = 0;
    }
  }
  return indices;
}

/** Rounds to what the output datatype holds (f32 rounding for FP32, truncation for integers). */
export function store(datatype: Datatype, shape: readonly number[], values: ArrayLike<number>): HostTensor {
  return fromNumbers(datatype, shape, values);
}

/** One element of `datatype` as its typed array stores it (FP16 bits, bigint for INT64, ...). */
export function elementOf(datatype: Datatype, value: number): number | bigint {
  return (fromNumbers(datatype, [1], [value]).data as unknown as Elements)[0];
}

/** A new `datatype` tensor of `shape` with every element `value`. */
export function filled(datatype: Datatype, shape: readonly number[], value: number): HostTensor {
  const data: TypedArray = typedArrayFor(datatype, product(shape));
  (data as { fill(value: number | bigint): unknown }).fill(elementOf(datatype, value));
  return { datatype, shape: [...shape], data };
}

/** Writes `value` at `index` of any typed array. */
export function setElement(data: TypedArray, index: number, value: number | bigint): void {
  (data as unknown as Elements)[index] = value;
}

/** Reads element `index` of any typed array. */
export function elementAt(data: TypedArray, index: number): number | bigint {
  return (data as unknown as Elements)[index];
}

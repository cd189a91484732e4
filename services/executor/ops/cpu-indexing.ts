/**
 * Index walks the CPU implementations share: which source element each output element reads
 * under broadcasting or a strided view, and gathering those elements into a new tensor.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { broadcastStrides, fromNumbers, product, toNumbers } from '../tensor/index.ts';

/** `tensor`'s data under a new shape (same element count). */
export const withShape = (tensor: HostTensor, shape: readonly number[]): HostTensor => ({ ...tensor, shape: [...shape] });

/** Gathers `source` at `indices` into a new tensor of `shape` with the source's datatype. */
export function pick(source: HostTensor, shape: readonly number[], indices: ArrayLike<number>): HostTensor {
  const values = toNumbers(source);
  return fromNumbers(source.datatype, shape, Array.from({ length: indices.length }, (_, index) => values[indices[index]]));
}

/** For each element of `outShape`, the flat index of the element of `shape` that broadcasts to it. */
export function broadcastIndices(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = broadcastStrides(shape, outShape);
  const count = product(outShape);
  const indices = new Array<number>(count);
  const coords = new Array<number>(outShape.length).fill(0);
  for (let index = 0; index < count; index++) {
    let source = 0;
    for (let dim = 0; dim < outShape.length; dim++) source += coords[dim] * strides[dim];
    indices[index] = source;
    for (let dim = outShape.length - 1; dim >= 0; dim--) {
      if (++coords[dim] < outShape[dim]) break;
      coords[dim] = 0;
    }
  }
  return indices;
}

/** Flat source indices of a strided walk over `shape` starting at `offset`. */
export function stridedIndices(shape: readonly number[], strides: readonly number[], offset: number): number[] {
  const count = product(shape);
  const indices = new Array<number>(count);
  const coords = new Array<number>(shape.length).fill(0);
  for (let index = 0; index < count; index++) {
    let source = offset;
    for (let dim = 0; dim < shape.length; dim++) source += coords[dim] * strides[dim];
    indices[index] = source;
    for (let dim = shape.length - 1; dim >= 0; dim--) {
      if (++coords[dim] < shape[dim]) break;
      coords[dim] = 0;
    }
  }
  return indices;
}

/** Rounds to what the output datatype holds (f32 rounding for FP32, truncation for integers). */
export function store(datatype: Datatype, shape: readonly number[], values: number[]): HostTensor {
  return fromNumbers(datatype, shape, values);
}

/**
 * Tensor element types, named as the Open Inference Protocol names them (FP32, INT64, ...),
 * with their ONNX codes, byte sizes and typed-array views.
 */
import { invalidArgument } from '../domain/errors.ts';

export const DATATYPES = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64',
  'FP16', 'FP32', 'FP64', 'BF16', 'BYTES',
] as const;
export type Datatype = (typeof DATATYPES)[number];

const ONNX_CODE_BY_DATATYPE: Record<Datatype, number> = {
  FP32: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, BYTES: 8, BOOL: 9,
  FP16: 10, FP64: 11, UINT32: 12, UINT64: 13, BF16: 16,
};
const DATATYPE_BY_ONNX_CODE = new Map<number, Datatype>(
  Object.entries(ONNX_CODE_BY_DATATYPE).map(([name, code]) => [code, name as Datatype]),
);

/** Bytes per element; BYTES tensors have no fixed size and report 0. */
export const BYTES_PER_ELEMENT: Record<Datatype, number> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, BF16: 2,
  UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8, BYTES: 0,
};

export function isDatatype(value: string): value is Datatype {
  return (DATATYPES as readonly string[]).includes(value);
}

/** The ONNX TensorProto.DataType code for a datatype. */
export function onnxCodeOf(datatype: Datatype): number {
  return ONNX_CODE_BY_DATATYPE[datatype];
}

/** The datatype for an ONNX TensorProto.DataType code; throws INVALID_ARGUMENT for unknown codes. */
export function datatypeOfOnnxCode(code: number): Datatype {
  const datatype = DATATYPE_BY_ONNX_CODE.get(code);
  if (!datatype) throw invalidArgument(`unsupported ONNX element type ${code}`);
  return datatype;
}

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

/**
 * A typed array viewing `bytes` as `datatype` (copying when the bytes are not aligned).
 * FP16, BF16 and BOOL come back as their raw bit patterns (Uint16Array / Uint8Array).
 */
export function viewAs(datatype: Datatype, bytes: Uint8Array): TypedArray {
  const size = BYTES_PER_ELEMENT[datatype];
  if (size === 0) throw invalidArgument(`datatype ${datatype} has no fixed-size layout`);
  if (bytes.byteLength % size !== 0) {
    throw invalidArgument(`${bytes.byteLength} bytes is not a whole number of ${datatype} elements (${size} bytes each)`);
  }
  // new Uint8Array(bytes) copies; Buffer#slice would not (it returns a view with the same offset).
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  const { buffer, byteOffset } = aligned;
  const length = aligned.byteLength / size;
  switch (datatype) {
    case 'FP32': return new Float32Array(buffer, byteOffset, length);
    case 'FP64': return new Float64Array(buffer, byteOffset, length);
    case 'INT8': return new Int8Array(buffer, byteOffset, length);
    case 'INT16': return new Int16Array(buffer, byteOffset, length);
    case 'INT32': return new Int32Array(buffer, byteOffset, length);
    case 'INT64': return new BigInt64Array(buffer, byteOffset, length);
    case 'UINT8': case 'BOOL': return new Uint8Array(buffer, byteOffset, length);
    case 'UINT16': case 'FP16': case 'BF16': return new Uint16Array(buffer, byteOffset, length);
    case 'UINT32': return new Uint32Array(buffer, byteOffset, length);
    case 'UINT64': return new BigUint64Array(buffer, byteOffset, length);
    case 'BYTES': throw invalidArgument('BYTES has no typed view');
  }
}

/** The bytes under a typed array, without copying. */
export function bytesOf(array: TypedArray): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Number of elements in a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

/**
 * Tensor element types as the runtime sees them: which ONNX datatypes it computes, how each is
 * stored on the GPU, and conversions between host tensors, plain numbers and GPU bytes.
 */
import { elementCount, type Datatype, type TypedArray } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import type { StorageType } from './storage.ts';

/** "fp32": every float stored and computed in f32 (safe mode). "fp16": stored as f16 (fast mode). */
export type Precision = 'fp32' | 'fp16';

export type ElementKind = 'float' | 'int' | 'bool';

const FLOATS: ReadonlySet<Datatype> = new Set(['FP32', 'FP16', 'FP64', 'BF16']);
const INTS: ReadonlySet<Datatype> = new Set(['INT64', 'INT32', 'INT16', 'INT8', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);

/** Datatypes the GPU computes (floats as f32 / f16, integers and booleans as i32). */
export function isComputable(datatype: Datatype): boolean {
  return datatype !== 'BYTES';
}

export function kindOf(datatype: Datatype): ElementKind {
  if (FLOATS.has(datatype)) return 'float';
  if (INTS.has(datatype)) return 'int';
  if (datatype === 'BOOL') return 'bool';
  throw invalidArgument(`datatype ${datatype} is not computed by the GPU executor`);
}

/** The GPU storage type of a datatype under a precision. */
export function storageOf(datatype: Datatype, precision: Precision): StorageType {
  return kindOf(datatype) === 'float' ? (precision === 'fp16' ? 'f16' : 'f32') : 'i32';
}

/**
 * The typed array a host tensor of `datatype` holds its data in, by constructor name (FP16 and
 * BF16 as their bit patterns in a Uint16Array, BOOL as bytes), as onnx/datatypes.ts viewAs makes it.
 */
export function typedArrayNameOf(datatype: Datatype): string {
  return typedArrayFor(datatype, 0).constructor.name;
}

/** A tensor's values as JS numbers (INT64 through Number, FP16 / BF16 decoded). */
export function toNumbers(tensor: HostTensor): number[] {
  const { data, datatype } = tensor;
  if (datatype === 'FP16') return Array.from(new Float16Array(data.buffer, data.byteOffset, data.length));
  if (datatype === 'BF16') {
    const bits = data as Uint16Array;
    const view = new DataView(new ArrayBuffer(4));
    return Array.from(bits, (value) => {
      view.setUint32(0, value << 16, true);
      return view.getFloat32(0, true);
    });
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Array.from(data, Number);
  return Array.from(data as ArrayLike<number>);
}

/**
 * A tensor's values as numbers without copying where its data already holds numbers (FP32,
 * INT32, ...); FP16 through a Float16Array view, INT64 / UINT64 / BF16 converted into a
 * Float64Array / Float32Array. For bulk data, where `toNumbers`' JS array would double the heap.
 */
export function numberView(tensor: HostTensor): ArrayLike<number> {
  const { data, datatype } = tensor;
  if (datatype === 'FP16') return new Float16Array(data.buffer, data.byteOffset, data.length);
  if (datatype === 'BF16') return Float32Array.from(toNumbers(tensor));
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, Number);
  return data as ArrayLike<number>;
}

/** The typed array a `datatype` tensor of `count` elements stores its data in, zeroed. */
export function typedArrayFor(datatype: Datatype, count: number): TypedArray {
  switch (datatype) {
    case 'FP32': return new Float32Array(count);
    case 'FP64': return new Float64Array(count);
    case 'FP16': case 'BF16': case 'UINT16': return new Uint16Array(count);
    case 'INT64': return new BigInt64Array(count);
    case 'UINT64': return new BigUint64Array(count);
    case 'INT32': return new Int32Array(count);
    case 'INT16': return new Int16Array(count);
    case 'INT8': return new Int8Array(count);
    case 'UINT32': return new Uint32Array(count);
    case 'UINT8': case 'BOOL': return new Uint8Array(count);
    default: throw invalidArgument(`cannot build a ${datatype} tensor`);
  }
}

/** A host tensor of `datatype` holding `values` (converted as ONNX Cast does: truncation to integers). */
export function fromNumbers(datatype: Datatype, shape: readonly number[], values: ArrayLike<number>): HostTensor {
  const count = values.length;
  let data: TypedArray;
  const integer = (value: number) => (Number.isFinite(value) ? Math.trunc(value) : 0);
  switch (datatype) {
    case 'FP32': data = Float32Array.from(values as ArrayLike<number>); break;
    case 'FP64': data = Float64Array.from(values as ArrayLike<number>); break;
    case 'FP16': data = new Uint16Array(Float16Array.from(values as ArrayLike<number>).buffer); break;
    case 'BF16': data = Uint16Array.from({ length: count }, (_, index) => bfloat16Bits(values[index])); break;
    case 'INT64': data = BigInt64Array.from({ length: count }, (_, index) => BigInt(integer(values[index]))); break;
    // Out of range, integers keep their low bits as ONNX Cast specifies (-1 is 2^64 - 1).
    case 'UINT64': data = BigUint64Array.from({ length: count }, (_, index) => BigInt.asUintN(64, BigInt(integer(values[index])))); break;
    case 'INT32': data = Int32Array.from({ length: count }, (_, index) => integer(values[index])); break;
    case 'INT16': data = Int16Array.from({ length: count }, (_, index) => integer(values[index])); break;
    case 'INT8': data = Int8Array.from({ length: count }, (_, index) => integer(values[index])); break;
    case 'UINT32': data = Uint32Array.from({ length: count }, (_, index) => integer(values[index])); break;
    case 'UINT16': data = Uint16Array.from({ length: count }, (_, index) => integer(values[index])); break;
    case 'UINT8': data = Uint8Array.from({ length: count }, (_, index) => integer(values[index])); break;
    case 'BOOL': data = Uint8Array.from({ length: count }, (_, index) => (values[index] !== 0 ? 1 : 0)); break;
    default: throw invalidArgument(`cannot build a ${datatype} tensor`);
  }
  return { datatype, shape: [...shape], data };
}

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);

/** The BFLOAT16 bit pattern nearest to `value` (ties to even; NaN stays NaN). */
function bfloat16Bits(value: number): number {
  f32View[0] = value;
  const bits = f32Bits[0];
  if ((bits & 0x7fff_ffff) > 0x7f80_0000) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The largest finite f32: a float beyond it has no f32 to be computed in. */
const F32_MAX = 3.4028234663852886e38;
const I32_MIN = -0x8000_0000;
const I32_MAX = 0x7fff_ffff;

/**
 * A tensor's values as `storage` GPU bytes (4-byte aligned), converted exactly where the storage
 * type holds the value: FP16 / BF16 widen to f32 exactly, FP64 rounds to the nearest f32, every
 * integer type becomes i32 and BOOL 0 / 1. Throws INVALID_ARGUMENT naming the tensor, the value
 * and its index for an integer beyond the i32 range or a finite FP64 beyond the f32 range, which
 * the GPU could only compute wrong (wrapped, or as infinity).
 */
export function toStorageBytes(tensor: HostTensor, storage: StorageType, name: string): Uint8Array {
  const count = elementCount(tensor.shape);
  if (storage === 'f32') {
    if (tensor.datatype === 'FP32') return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    const values = numberView(tensor);
    const out = Float32Array.from(values);
    if (tensor.datatype === 'FP64') {
      for (let index = 0; index < count; index++) {
        if (!Number.isFinite(out[index]) && Number.isFinite(values[index])) {
          throw invalidArgument(`'${name}' holds ${values[index]} at index ${index}, beyond the f32 range (±${F32_MAX}) the GPU computes FP64 in`);
        }
      }
    }
    return new Uint8Array(out.buffer);
  }
  if (storage === 'f16') {
    if (tensor.datatype === 'FP16') return paddedTo4(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
    const values = tensor.datatype === 'FP32' ? (tensor.data as Float32Array) : numberView(tensor);
    const halves = new Float16Array(count + (count % 2));
    halves.set(values);
    return new Uint8Array(halves.buffer);
  }
  if (tensor.datatype === 'INT32') return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const out = new Int32Array(count);
  if (tensor.datatype === 'BOOL') {
    // Any non-zero byte is true; the kernels compare with 0 and 1.
    const bytes = tensor.data as Uint8Array;
    for (let index = 0; index < count; index++) out[index] = bytes[index] === 0 ? 0 : 1;
    return new Uint8Array(out.buffer);
  }
  if (tensor.data instanceof BigInt64Array || tensor.data instanceof BigUint64Array) {
    // Compared as bigints: converting to a number first would round values beyond 2^53.
    const wide = tensor.data;
    for (let index = 0; index < count; index++) {
      const value = wide[index];
      if (value > BigInt(I32_MAX) || value < BigInt(I32_MIN)) throw beyondI32(name, value, index, tensor.datatype);
      out[index] = Number(value);
    }
    return new Uint8Array(out.buffer);
  }
  const values = numberView(tensor);
  for (let index = 0; index < count; index++) {
    const value = Math.trunc(values[index]);
    if (value > I32_MAX || value < I32_MIN) throw beyondI32(name, values[index], index, tensor.datatype);
    out[index] = value;
  }
  return new Uint8Array(out.buffer);
}

const beyondI32 = (name: string, value: number | bigint, index: number, datatype: Datatype) =>
  invalidArgument(`'${name}' holds ${value} at index ${index} (${datatype}), beyond the 32-bit integers the GPU computes with ([${I32_MIN}, ${I32_MAX}])`);

/** `bytes` zero-padded to a whole number of 4-byte words (GPU copies move words). */
function paddedTo4(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength % 4 === 0) return bytes;
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  return padded;
}

/**
 * GPU bytes of `storage` back to a host tensor of `datatype`: f32 to FP64 exactly and to FP16 /
 * BF16 rounded to nearest even; i32 to each integer type keeping its low bits, as ONNX's integer
 * arithmetic wraps (a UINT8 200 + 100 reads back 44), and to BOOL as non-zero. Reads the bytes
 * at `byteOffset` of `buffer` (a mapped read-back range, detached once unmapped) and copies them
 * once: into the tensor's own array, or through the conversion.
 */
export function fromStorageBytes(buffer: ArrayBuffer, byteOffset: number, storage: StorageType, datatype: Datatype, shape: readonly number[]): HostTensor {
  const count = elementCount(shape);
  if (storage === 'f32') {
    const values = new Float32Array(buffer, byteOffset, count);
    return datatype === 'FP32' ? { datatype, shape: [...shape], data: values.slice() } : fromNumbers(datatype, shape, values);
  }
  if (storage === 'f16') {
    if (datatype === 'FP16') return { datatype, shape: [...shape], data: new Uint16Array(buffer, byteOffset, count).slice() };
    return fromNumbers(datatype, shape, new Float16Array(buffer, byteOffset, count));
  }
  const values = new Int32Array(buffer, byteOffset, count);
  const tensor = (data: TypedArray): HostTensor => ({ datatype, shape: [...shape], data });
  switch (datatype) {
    case 'INT32': return tensor(values.slice());
    // Typed-array construction converts modulo 2^bits: the low bits, reinterpreted.
    case 'INT8': return tensor(new Int8Array(values));
    case 'INT16': return tensor(new Int16Array(values));
    case 'UINT8': return tensor(new Uint8Array(values));
    case 'UINT16': return tensor(new Uint16Array(values));
    case 'UINT32': return tensor(new Uint32Array(values));
    case 'INT64': return tensor(BigInt64Array.from(values, (value) => BigInt(value)));
    // A negative i32 is an unsigned subtraction that went below zero: it wraps as UINT64 does.
    case 'UINT64': return tensor(BigUint64Array.from(values, (value) => BigInt.asUintN(64, BigInt(value))));
    case 'BOOL': return tensor(Uint8Array.from(values, (value) => (value === 0 ? 0 : 1)));
    default: return fromNumbers(datatype, shape, values);
  }
}

/**
 * A strict reader of safetensors files: an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and [begin, end) byte offsets into the data that follows.
 * A model file is untrusted input, so the header is checked the way the reference (Rust)
 * implementation checks it, before any tensor is read: the header starts with '{' and fits the
 * file, every entry has exactly a known dtype, a shape of non-negative safe integers and offsets
 * whose length is the shape's bytes, and the tensors tile the data region without gap or
 * overlap up to the file's last byte. Every failure is INVALID_ARGUMENT naming the file and why.
 */
import { invalidArgument, type NexusError } from '../../domain/index.ts';

/** Largest JSON header accepted, in bytes: 100 MB, the reference implementation's limit. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every dtype the format defines. */
const DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
} as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** One tensor of a file, located within the file's bytes. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Offset of the tensor's first byte from the start of the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsFile {
  /** The file's path within its checkpoint, for messages. */
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  /** The header's `__metadata__` (string values only). */
  readonly metadata: ReadonlyMap<string, string>;
}

const malformed = (path: string, reason: string): NexusError => invalidArgument(`file '${path}' is not a valid safetensors file: ${reason}`);

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function checkedShape(path: string, name: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) throw malformed(path, `tensor '${name}' has shape ${JSON.stringify(shape)}, not an array`);
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || (dim as number) < 0) throw malformed(path, `tensor '${name}' has dimension ${JSON.stringify(dim)}, not a non-negative integer`);
  }
  return shape as number[];
}

/** Parses and checks a safetensors file's header (see the file comment); the bytes are kept, not copied. */
export function parseSafetensors(path: string, bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < 8) throw malformed(path, `it has ${bytes.byteLength} bytes, fewer than the 8 of its length field`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) throw malformed(path, `its header claims ${headerLength} bytes, over the ${MAX_HEADER_BYTES} allowed`);
  const headerBytes = Number(headerLength);
  if (8 + headerBytes > bytes.byteLength) throw malformed(path, `its header claims ${headerBytes} bytes, past the file's ${bytes.byteLength}`);
  if (headerBytes < 2 || bytes[8] !== 0x7b) throw malformed(path, "its header does not start with '{'");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes)));
  } catch (error) {
    throw malformed(path, `its header is not UTF-8 JSON (${(error as Error).message})`);
  }
  if (!isRecord(header)) throw malformed(path, 'its header is not a JSON object');

  const dataStart = 8 + headerBytes;
  const dataBytes = bytes.byteLength - dataStart;
  const tensors = new Map<string, TensorEntry>();
  const metadata = new Map<string, string>();
  const spans: Array<{ name: string; begin: number; end: number }> = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(value)) throw malformed(path, '__metadata__ is not an object');
      for (const [key, text] of Object.entries(value)) {
        if (typeof text !== 'string') throw malformed(path, `__metadata__ '${key}' is not a string`);
        metadata.set(key, text);
      }
      continue;
    }
    if (!isRecord(value)) throw malformed(path, `tensor '${name}' is not an object`);
    const extra = Object.keys(value).filter((key) => key !== 'dtype' && key !== 'shape' && key !== 'data_offsets');
    if (extra.length > 0) throw malformed(path, `tensor '${name}' has unknown field '${extra[0]}'`);
    const { dtype, data_offsets: offsets } = value;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      throw malformed(path, `tensor '${name}' has dtype ${JSON.stringify(dtype)}; known dtypes: ${Object.keys(DTYPE_BYTES).join(', ')}`);
    }
    const shape = checkedShape(path, name, value.shape);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((offset) => Number.isSafeInteger(offset) && offset >= 0)) {
      throw malformed(path, `tensor '${name}' has data_offsets ${JSON.stringify(offsets)}, not two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    const elements = shape.reduce((product, dim) => product * dim, 1);
    const expected = elements * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (!Number.isSafeInteger(expected)) throw malformed(path, `tensor '${name}' of shape [${shape}] is too large`);
    if (end < begin || end - begin !== expected) {
      throw malformed(path, `tensor '${name}' (${dtype} [${shape}]) needs ${expected} bytes, its data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    if (end > dataBytes) throw malformed(path, `tensor '${name}' ends at data byte ${end}, past the ${dataBytes} bytes of data`);
    tensors.set(name, { name, dtype: dtype as SafetensorsDtype, shape, byteOffset: dataStart + begin, byteLength: expected });
    spans.push({ name, begin, end });
  }
  // The tensors tile the data region exactly: no byte belongs to two tensors or to none.
  spans.sort((left, right) => left.begin - right.begin || left.end - right.end);
  let covered = 0;
  for (const span of spans) {
    if (span.begin !== covered) {
      throw malformed(path, span.begin < covered
        ? `tensor '${span.name}' overlaps the tensor before it (data byte ${span.begin} < ${covered})`
        : `data bytes ${covered} to ${span.begin} belong to no tensor`);
    }
    covered = span.end;
  }
  if (covered !== dataBytes) throw malformed(path, `data bytes ${covered} to ${dataBytes} belong to no tensor`);
  return { path, bytes, tensors, metadata };
}

/** A tensor's values as f32 (F32 as is, F16 widened, BF16 by its bits); INVALID_ARGUMENT for another dtype. */
export function tensorAsFloat32(file: SafetensorsFile, entry: TensorEntry): Float32Array {
  const raw = file.bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength);
  // A copy: the tensor's offset in the file need not be aligned for a typed-array view. Copied
  // through Uint8Array's slice, never the bytes' own: a Node Buffer's slice is a view that
  // shares (and whose .buffer is) the whole file or Node's allocation pool.
  const aligned = Uint8Array.prototype.slice.call(raw).buffer;
  switch (entry.dtype) {
    case 'F32':
      return new Float32Array(aligned);
    case 'F16':
      return Float32Array.from(new Float16Array(aligned));
    case 'BF16': {
      const halves = new Uint16Array(aligned);
      const widened = new Uint32Array(halves.length);
      for (let index = 0; index < halves.length; index++) widened[index] = halves[index] << 16;
      return new Float32Array(widened.buffer);
    }
    default:
      throw invalidArgument(`tensor '${entry.name}' in '${file.path}' is ${entry.dtype}; model weights must be F32, F16 or BF16`);
  }
}

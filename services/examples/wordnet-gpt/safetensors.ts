/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the raw little-endian data. Only F32 is written and
 * read here (the example's weights are FP32).
 */

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Serializes the tensors in the order given, header padded with spaces to 8 bytes as Hugging Face does. */
export function encodeSafetensors(tensors: readonly NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, HeaderEntry | Record<string, string>> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const { name, shape, data } of tensors) {
    const expected = shape.reduce((product, dimension) => product * dimension, 1);
    if (expected !== data.length) throw new RangeError(`tensor ${name} has ${data.length} values, shape [${shape}] needs ${expected}`);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const { data } of tensors) {
    // Little-endian on every platform Node runs on; copy the bytes as they are.
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** Parses a safetensors file of F32 tensors, in header order, with the `__metadata__` strings. */
export function decodeSafetensors(bytes: Uint8Array): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new RangeError(`safetensors file of ${bytes.length} bytes has no header length`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new RangeError(`safetensors header of ${headerLength} bytes overruns the file`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  const dataStart = 8 + headerLength;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const tensors = Object.entries(header).filter(([name]) => name !== '__metadata__').map(([name, value]) => {
    const entry = value as HeaderEntry;
    if (entry.dtype !== 'F32') throw new TypeError(`tensor ${name} is ${entry.dtype}; only F32 is read`);
    const [begin, end] = entry.data_offsets;
    if (dataStart + end > bytes.length || end - begin !== 4 * entry.shape.reduce((p, d) => p * d, 1)) {
      throw new RangeError(`tensor ${name}'s byte range [${begin}, ${end}) does not fit its shape or the file`);
    }
    // Copied into its own buffer, so the tensor is aligned whatever the header's length (and a
    // Node Buffer's shared pool is never aliased).
    const copy = new Uint8Array(end - begin);
    copy.set(bytes.subarray(dataStart + begin, dataStart + end));
    const data = new Float32Array(copy.buffer);
    return { name, shape: entry.shape, data };
  });
  return { tensors, metadata };
}

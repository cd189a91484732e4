/**
 * Weights read from a Node Buffer (what the artifact cache's readFile returns) come out as the
 * file says: a Buffer's own slice is a view sharing its whole allocation, so a tensor copied
 * through it would read another part of the file (or Node's allocation pool).
 */
import { expect, it } from 'vitest';
import { parseSafetensors, tensorAsFloat32 } from '../../../services/executor/llm/safetensors.ts';

/** A safetensors file of one F32 tensor `t` with `values`. */
function safetensorsOf(values: number[]): Uint8Array {
  const header = Buffer.from(JSON.stringify({ t: { dtype: 'F32', shape: [values.length], data_offsets: [0, values.length * 4] } }));
  const file = new Uint8Array(8 + header.length + values.length * 4);
  new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
  file.set(header, 8);
  file.set(new Uint8Array(new Float32Array(values).buffer), 8 + header.length);
  return file;
}

it('reads a tensor from a Buffer that is a view into a larger allocation', () => {
  const values = [1.5, -2, 3.25, 7];
  const file = safetensorsOf(values);
  // The file at an unaligned offset inside a larger Buffer, as a pooled or sliced read gives it.
  const backing = Buffer.alloc(file.length + 101, 0xff);
  backing.set(file, 37);
  const bytes = backing.subarray(37, 37 + file.length);
  const parsed = parseSafetensors('model.safetensors', bytes);
  expect(Array.from(tensorAsFloat32(parsed, parsed.tensors.get('t')!))).toEqual(values);
});

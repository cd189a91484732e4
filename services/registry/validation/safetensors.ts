/**
 * A safetensors file starts with an 8-byte little-endian header length and a JSON header whose
 * tensors' offsets must fit the file. The registry reads that prefix of a stored blob; these
 * functions decide whether it is sound.
 */
import { invalidArgument, type NexusError } from '../../domain/index.ts';

/** Largest safetensors header read to check a file, in bytes (16 MiB). */
export const MAX_SAFETENSORS_HEADER_BYTES = 16 * 1024 * 1024;

/** INVALID_ARGUMENT: the file at `path` is not a valid safetensors file, and why. */
export const notSafetensors = (path: string, reason: string): NexusError =>
  invalidArgument(`file '${path}' is not a valid safetensors file: ${reason}`);

/**
 * How many bytes from the file's start hold its length field and JSON header, read from its
 * first 8 bytes; throws when the header could not fit a file of `sizeBytes`.
 */
export function safetensorsPrefixBytes(path: string, sizeBytes: number, first8: Uint8Array): number {
  if (sizeBytes < 8 || first8.byteLength < 8) throw notSafetensors(path, 'shorter than 8 bytes');
  const headerBytes = Number(Buffer.from(first8.buffer, first8.byteOffset, 8).readBigUInt64LE(0));
  if (headerBytes > MAX_SAFETENSORS_HEADER_BYTES || 8 + headerBytes > sizeBytes) throw notSafetensors(path, `its header claims ${headerBytes} bytes`);
  return 8 + headerBytes;
}

/**
 * Throws unless `prefix` (the first `safetensorsPrefixBytes` bytes) holds a JSON header whose
 * every tensor has a dtype, a shape and data offsets ending inside a file of `sizeBytes`.
 */
export function checkSafetensorsPrefix(path: string, sizeBytes: number, prefix: Uint8Array): void {
  let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
  try {
    header = JSON.parse(Buffer.from(prefix.buffer, prefix.byteOffset + 8, prefix.byteLength - 8).toString('utf8'));
  } catch {
    throw notSafetensors(path, 'its header is not JSON');
  }
  let dataEnd = 0;
  for (const [name, tensor] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const offsets = tensor?.data_offsets;
    if (typeof tensor?.dtype !== 'string' || !Array.isArray(tensor.shape) || !Array.isArray(offsets) || offsets.length !== 2) {
      throw notSafetensors(path, `tensor '${name}' lacks dtype, shape or data_offsets`);
    }
    dataEnd = Math.max(dataEnd, Number(offsets[1]));
  }
  if (prefix.byteLength + dataEnd > sizeBytes) {
    throw notSafetensors(path, `its tensors end at byte ${prefix.byteLength + dataEnd}, past the file's ${sizeBytes} bytes`);
  }
}

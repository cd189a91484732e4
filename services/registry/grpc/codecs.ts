/**
 * The registry's wire encoding where the generated code is not good enough: DownloadArtifact's
 * responses carry multi-megabyte chunks, and the generated serializer copies each one three times.
 */
import { RegistryService, type DownloadArtifactResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';

function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes += 1;
  }
  return bytes;
}

function writeVarint(target: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  target[at++] = value;
  return at;
}

/**
 * Encodes a DownloadArtifactResponse with one copy of the chunk (the generated serializer makes
 * three), which keeps the garbage of a multi-gigabyte download, and so the registry's memory, low.
 * Field order and encoding are protobuf's: 1 bytes chunk, 2 uint64 offset, 3 uint64 total.
 */
export function encodeDownloadResponse(message: DownloadArtifactResponse): Buffer {
  const chunk = message.chunk;
  const size = (chunk.byteLength > 0 ? 1 + varintBytes(chunk.byteLength) + chunk.byteLength : 0)
    + (message.offset > 0 ? 1 + varintBytes(message.offset) : 0)
    + (message.totalSizeBytes > 0 ? 1 + varintBytes(message.totalSizeBytes) : 0);
  const output = Buffer.allocUnsafe(size);
  let at = 0;
  if (chunk.byteLength > 0) {
    output[at++] = 0x0a;
    at = writeVarint(output, at, chunk.byteLength);
    output.set(chunk, at);
    at += chunk.byteLength;
  }
  if (message.offset > 0) {
    output[at++] = 0x10;
    at = writeVarint(output, at, message.offset);
  }
  if (message.totalSizeBytes > 0) {
    output[at++] = 0x18;
    at = writeVarint(output, at, message.totalSizeBytes);
  }
  return output;
}

/** The service definition, with the lean download encoder in place of the generated one. */
export const REGISTRY_SERVICE_DEFINITION = {
  ...RegistryService,
  downloadArtifact: { ...RegistryService.downloadArtifact, responseSerialize: encodeDownloadResponse },
};

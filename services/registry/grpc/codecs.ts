/**
 * The registry's wire encoding where the generated code is not good enough: DownloadArtifact's
 * responses carry multi-megabyte chunks, and the generated serializer copies each one three times;
 * and a request holding a 64-bit integer beyond 2^53 fails the generated decoder, which grpc-js
 * answers INTERNAL, where the client's mistake deserves INVALID_ARGUMENT naming the field.
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import {
  DownloadArtifactRequest, GarbageCollectRequest, GetAliasHistoryRequest, GetAliasRequest, GetVersionRequest, ListAliasesRequest,
  ListAuditRequest, ListModelsRequest, ListVersionsRequest, RegistryService, RollbackAliasRequest, SetAliasRequest, StatBlobsRequest,
  UploadBlobRequest, UploadVersionRequest, WatchRequest, type DownloadArtifactResponse,
} from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { LARGEST_EXACT_COUNT } from '../validation/index.ts';

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

const LARGEST = BigInt(LARGEST_EXACT_COUNT);

/**
 * Reads 64-bit integers beyond what a JavaScript number holds exactly as ±(2^53 - 1), so the
 * request decodes and the registry's range checks (see validation/limits.ts) refuse it by name.
 * The string '__proto__' is refused outright: as a map key (a tag) the generated decoder would
 * drop it silently, so no check after decoding could see it.
 */
class SaturatingReader extends BinaryReader {
  override string(): string {
    const value = super.string();
    if (value === '__proto__') throw new Error("the string '__proto__' is refused in every field (as a tag key it would be dropped unseen)");
    return value;
  }

  override uint64(): bigint | string {
    const value = BigInt(super.uint64());
    return value > LARGEST ? LARGEST : value;
  }

  override int64(): bigint | string {
    const value = BigInt(super.int64());
    return value > LARGEST ? LARGEST : value < -LARGEST ? -LARGEST : value;
  }
}

type RequestType = { decode(input: BinaryReader): unknown };
/** Every method's request message, decoded with the SaturatingReader. */
const REQUEST_TYPES: { [method in keyof typeof RegistryService]: RequestType } = {
  uploadVersion: UploadVersionRequest, getVersion: GetVersionRequest, listVersions: ListVersionsRequest, listModels: ListModelsRequest,
  downloadArtifact: DownloadArtifactRequest, uploadBlob: UploadBlobRequest, statBlobs: StatBlobsRequest, setAlias: SetAliasRequest,
  getAlias: GetAliasRequest, listAliases: ListAliasesRequest, getAliasHistory: GetAliasHistoryRequest, rollbackAlias: RollbackAliasRequest,
  watch: WatchRequest, garbageCollect: GarbageCollectRequest, listAudit: ListAuditRequest,
};

/**
 * The service definition, with saturating request decoders and the lean download encoder in
 * place of the generated ones.
 */
export const REGISTRY_SERVICE_DEFINITION = Object.fromEntries(Object.entries(RegistryService).map(([method, definition]) => {
  const type = REQUEST_TYPES[method as keyof typeof RegistryService];
  const requestDeserialize = (bytes: Buffer) => type.decode(new SaturatingReader(bytes));
  return [method, method === 'downloadArtifact'
    ? { ...definition, requestDeserialize, responseSerialize: encodeDownloadResponse }
    : { ...definition, requestDeserialize }];
})) as unknown as typeof RegistryService;

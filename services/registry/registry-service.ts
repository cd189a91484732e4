/**
 * The registry's gRPC API over a ModelRegistry: uploads verified before they become versions,
 * immutable version records, aliases moved by compare-and-swap, downloads that resume from an
 * offset, a watch stream with a resume cursor, and garbage collection.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  RegistryService, type DownloadArtifactRequest, type DownloadArtifactResponse, type GarbageCollectRequest,
  type GarbageCollectResponse, type GetAliasHistoryRequest, type GetAliasHistoryResponse, type GetAliasRequest,
  type GetAliasResponse, type GetVersionRequest, type GetVersionResponse, type ListAliasesRequest, type ListAliasesResponse,
  type ListModelsResponse, type ListVersionsRequest, type ListVersionsResponse, type ModelSignature, type ModelVersion,
  type RollbackAliasRequest, type RollbackAliasResponse, type SetAliasRequest, type SetAliasResponse, type StatBlobsRequest,
  type StatBlobsResponse, type UploadBlobRequest, type UploadBlobResponse, type UploadHeader, type UploadVersionRequest,
  type UploadVersionResponse, type WatchRequest, type WatchResponse,
} from '../protocol/generated/nexus/registry/v1/registry.ts';
import { clientStream, serverStream, unary } from '../rpc/handlers.ts';
import { ErrorCode, invalidArgument, NexusError, notFound } from '../domain/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import type { RegistryEvent } from './event-log.ts';
import { FILE_FORMATS, DIRECTORY_FORMATS, isDirectoryFormat, type ModelRegistry } from './model-registry.ts';
import { checkAliasName, checkManifestPath, checkModelName, checkSha256, checkTags } from './names.ts';
import { OnnxSignatureReader } from './onnx-signature.ts';
import { noteTransferredBytes } from './transfer-memory.ts';

/** Artifact formats the registry accepts. */
export const SUPPORTED_FORMATS = [...FILE_FORMATS, ...DIRECTORY_FORMATS] as const;
/**
 * Size of each streamed download chunk, in bytes: small enough that the few chunks in flight and
 * their encoded copies stay a few megabytes, large enough that framing costs nothing.
 */
export const DOWNLOAD_CHUNK_BYTES = 256 * 1024;
/** Most digests one StatBlobs call may ask about. */
const MAX_STAT_BLOBS = 10_000;

function checkHeader(header: UploadHeader): UploadHeader {
  checkModelName(header.modelName, 'header.model_name');
  if (!(SUPPORTED_FORMATS as readonly string[]).includes(header.format)) {
    throw invalidArgument(`header.format '${header.format}' is not supported; use one of: ${SUPPORTED_FORMATS.join(', ')}`);
  }
  if (header.sha256) checkSha256(header.sha256, 'header.sha256');
  checkTags(header.tags, 'header.tags');
  if (header.fileName && (header.fileName !== basename(header.fileName) || header.fileName.includes('\\'))) {
    throw invalidArgument(`header.file_name '${header.fileName.slice(0, 200)}' must be a base name, without directories`);
  }
  if (header.fileName) checkManifestPath(header.fileName, 'header.file_name');
  if (isDirectoryFormat(header.format) && header.files.length === 0) {
    throw invalidArgument(`format '${header.format}' is a directory model: list its files in header.files (uploaded with UploadBlob)`);
  }
  if (!isDirectoryFormat(header.format) && header.files.length > 0) {
    throw invalidArgument(`format '${header.format}' is one file: stream it as chunks instead of listing header.files`);
  }
  return header;
}

/**
 * The chunks of an upload stream after its header. A trailer may follow the last chunk; anything
 * else out of place is refused.
 */
async function* chunksOf(messages: AsyncIterator<UploadVersionRequest>, onTrailer: (sha256: string) => void): AsyncGenerator<Uint8Array> {
  let trailerSeen = false;
  for (;;) {
    const next = await messages.next();
    if (next.done) return;
    if (next.value.header) throw invalidArgument('a second header arrived mid-upload; send the header once, first');
    if (trailerSeen) throw invalidArgument('a message arrived after the trailer; the trailer comes last');
    if (next.value.trailer) {
      if (next.value.trailer.sha256) onTrailer(checkSha256(next.value.trailer.sha256, 'trailer.sha256'));
      trailerSeen = true;
    } else if (next.value.chunk && next.value.chunk.byteLength > 0) {
      yield next.value.chunk;
    }
  }
}

/** Writes one message, waiting for the transport to drain so a slow client paces the server. */
async function send<T>(call: ServerWritableStream<unknown, T>, message: T): Promise<void> {
  if (!call.write(message)) {
    await new Promise<void>((resume) => {
      const done = () => {
        call.off('drain', done);
        call.off('cancelled', done);
        resume();
      };
      call.on('drain', done);
      call.on('cancelled', done);
    });
  }
}

function toWatchResponse(event: RegistryEvent): WatchResponse {
  return {
    cursor: event.cursor, recordedAtUnixMs: event.recordedAtUnixMs,
    versionCreated: event.versionCreated, aliasMoved: event.aliasMoved, caughtUp: undefined,
  };
}

const eventModel = (event: RegistryEvent) => event.versionCreated?.modelName ?? event.aliasMoved?.modelName;

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

export interface RegistryServiceHandle {
  implementation: UntypedServiceImplementation;
  /** Ends every Watch stream (clients resume elsewhere with their cursor). */
  closeWatchers(): void;
}

export function createRegistryService(registry: ModelRegistry, logger: Logger): RegistryServiceHandle {
  const watchers = new Set<AbortController>();

  const implementation: UntypedServiceImplementation = {
    uploadVersion: clientStream<UploadVersionRequest, UploadVersionResponse>('UploadVersion', logger, async (call) => {
      const messages = (call as AsyncIterable<UploadVersionRequest>)[Symbol.asyncIterator]();
      const first = await messages.next();
      if (first.done || !first.value.header) throw invalidArgument('the first message of an upload must be its header');
      const header = checkHeader(first.value.header);

      if (isDirectoryFormat(header.format)) {
        const next = await messages.next();
        if (!next.done && (next.value.chunk?.byteLength || next.value.header)) {
          throw invalidArgument('a directory model sends no chunks: upload its files with UploadBlob, then list them in header.files');
        }
        const artifact = await registry.storeManifest(header.format, header.files);
        const record = await registry.createVersion(header, artifact);
        logger.info({ model: record.modelName, version: record.version, sha256: record.sha256, files: record.files.length }, 'version created');
        return { version: record, deduplicated: true };
      }

      const reader = new OnnxSignatureReader();
      let signature: ModelSignature | undefined;
      let trailer: string | undefined;
      const blob = await registry.blobs.write(chunksOf(messages, (sha256) => (trailer = sha256)), {
        expectedSha256: header.sha256 || undefined,
        expectedSizeBytes: header.sizeBytes,
        onChunk: (chunk) => reader.push(chunk),
        trailerSha256: () => trailer,
        // A file that is not a valid model never becomes a blob.
        validate: () => {
          signature = reader.finish();
        },
      });
      metrics.registryBytes.inc({ direction: 'up' }, blob.sizeBytes);
      const record = await registry.createVersion(header, {
        sha256: blob.sha256, sizeBytes: blob.sizeBytes, signature: signature!,
        files: [{ path: header.fileName || `${header.modelName}.${header.format}`, sha256: blob.sha256, sizeBytes: blob.sizeBytes }],
      });
      logger.info({ model: record.modelName, version: record.version, sha256: record.sha256, bytes: record.sizeBytes }, 'version created');
      return { version: record, deduplicated: blob.deduplicated };
    }),

    uploadBlob: clientStream<UploadBlobRequest, UploadBlobResponse>('UploadBlob', logger, async (call) => {
      const messages = (call as AsyncIterable<UploadBlobRequest>)[Symbol.asyncIterator]();
      const first = await messages.next();
      if (first.done || !first.value.header) throw invalidArgument('the first message of a blob upload must be its header');
      const header = first.value.header;
      checkSha256(header.sha256, 'header.sha256');
      const blob = await registry.blobs.write(chunksOf(messages as AsyncIterator<UploadVersionRequest>, () => undefined), {
        expectedSha256: header.sha256, expectedSizeBytes: header.sizeBytes,
      });
      metrics.registryBytes.inc({ direction: 'up' }, blob.sizeBytes);
      return { sha256: blob.sha256, sizeBytes: blob.sizeBytes, deduplicated: blob.deduplicated };
    }),

    statBlobs: unary('StatBlobs', logger, async (request: StatBlobsRequest): Promise<StatBlobsResponse> => {
      if (request.sha256.length > MAX_STAT_BLOBS) throw invalidArgument(`sha256 lists ${request.sha256.length} digests; at most ${MAX_STAT_BLOBS} per call`);
      request.sha256.forEach((digest, index) => checkSha256(digest, `sha256[${index}]`));
      const blobs: StatBlobsResponse['blobs'] = [];
      for (let start = 0; start < request.sha256.length; start += 16) {
        const batch = request.sha256.slice(start, start + 16);
        const infos = await Promise.all(batch.map((digest) => registry.blobs.info(digest)));
        batch.forEach((digest, index) => blobs.push({ sha256: digest, present: Boolean(infos[index]), sizeBytes: infos[index]?.sizeBytes ?? 0 }));
      }
      return { blobs };
    }),

    getVersion: unary('GetVersion', logger, async (request: GetVersionRequest): Promise<GetVersionResponse> => {
      const record = await registry.resolve(request.modelName, { version: request.version, alias: request.alias });
      return { version: record, aliases: await registry.aliasesOf(record.modelName, record.version) };
    }),

    listVersions: unary('ListVersions', logger, async (request: ListVersionsRequest): Promise<ListVersionsResponse> => {
      checkModelName(request.modelName);
      const versions = await registry.versions.list(request.modelName);
      if (versions.length === 0) throw notFound(`model '${request.modelName}' does not exist`);
      return { versions, aliases: await registry.aliases.list(request.modelName) };
    }),

    listModels: unary('ListModels', logger, async (): Promise<ListModelsResponse> => {
      const latest: ModelVersion[] = [];
      for (const name of await registry.versions.modelNames()) {
        const record = await registry.versions.read(name, 0);
        if (record) latest.push(record);
      }
      return { latest };
    }),

    downloadArtifact: serverStream('DownloadArtifact', logger, async (request: DownloadArtifactRequest, call: ServerWritableStream<DownloadArtifactRequest, DownloadArtifactResponse>) => {
      checkSha256(request.sha256);
      const info = await registry.blobs.info(request.sha256);
      if (!info) throw notFound(`no artifact with sha256 ${request.sha256}`);
      const total = info.sizeBytes;
      if (request.offset > total) throw invalidArgument(`offset ${request.offset} is past the artifact's end (${total} bytes)`);
      // From the start, the bytes are hashed on the way out: a blob damaged at rest ends the
      // stream with DATA_LOSS instead of OK. A resumed download is verified by its client.
      const hash = request.offset === 0 ? createHash('sha256') : undefined;
      let offset = request.offset;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes === 0) return;
        const chunk = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        await send(call, { chunk, offset, totalSizeBytes: total });
        offset += chunk.byteLength;
        metrics.registryBytes.inc({ direction: 'down' }, chunk.byteLength);
      };
      for await (const piece of registry.blobs.read(request.sha256, request.offset)) {
        if (call.cancelled) return;
        hash?.update(piece);
        noteTransferredBytes(piece.byteLength);
        // Backends read in pieces of their own size: send about DOWNLOAD_CHUNK_BYTES per message.
        for (let at = 0; at < piece.byteLength;) {
          const take = Math.min(piece.byteLength - at, DOWNLOAD_CHUNK_BYTES - pendingBytes);
          pending.push(Buffer.from(piece.buffer, piece.byteOffset + at, take));
          pendingBytes += take;
          at += take;
          if (pendingBytes === DOWNLOAD_CHUNK_BYTES) await flush();
        }
      }
      await flush();
      if (call.cancelled) return;
      if (offset !== total) {
        logger.error({ sha256: request.sha256, expected_bytes: total, read_bytes: offset }, 'stored blob changed size while being read');
        throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${request.sha256} ended after ${offset} of ${total} bytes`);
      }
      const actual = hash?.digest('hex');
      if (actual && actual !== request.sha256) {
        logger.error({ sha256: request.sha256, actual_sha256: actual }, 'stored blob is corrupt');
        throw new NexusError(ErrorCode.DATA_LOSS, `stored artifact ${request.sha256} is corrupt: its bytes hash to ${actual}; do not use them`);
      }
    }),

    setAlias: unary('SetAlias', logger, async (request: SetAliasRequest): Promise<SetAliasResponse> => {
      const { alias, move } = await registry.setAlias({
        modelName: request.modelName, alias: request.alias, expectedVersion: request.expectedVersion,
        expectedRevision: request.expectedRevision, reason: request.reason, actor: request.actor,
      }, request.version, request.split, request.stickyParameter);
      logger.info({
        model: alias.modelName, alias: alias.alias, from: move.fromVersion, to: move.toVersion, actor: move.actor,
        ...(alias.split.length > 0 ? { split: alias.split.map((arm) => `${arm.version}=${arm.weight}`).join(',') } : {}),
      }, 'alias moved');
      return { alias, move };
    }),

    getAlias: unary('GetAlias', logger, async (request: GetAliasRequest): Promise<GetAliasResponse> => {
      checkModelName(request.modelName);
      checkAliasName(request.alias);
      const alias = await registry.aliases.get(request.modelName, request.alias);
      if (!alias) throw notFound(`model '${request.modelName}' has no alias '${request.alias}'`);
      return { alias };
    }),

    listAliases: unary('ListAliases', logger, async (request: ListAliasesRequest): Promise<ListAliasesResponse> => {
      await registry.requireModel(request.modelName);
      return { aliases: await registry.aliases.list(request.modelName) };
    }),

    getAliasHistory: unary('GetAliasHistory', logger, async (request: GetAliasHistoryRequest): Promise<GetAliasHistoryResponse> => {
      checkModelName(request.modelName);
      checkAliasName(request.alias);
      const moves = await registry.aliases.history(request.modelName, request.alias);
      if (moves.length === 0) throw notFound(`model '${request.modelName}' has no alias '${request.alias}'`);
      return { moves };
    }),

    rollbackAlias: unary('RollbackAlias', logger, async (request: RollbackAliasRequest): Promise<RollbackAliasResponse> => {
      const { alias, move } = await registry.rollbackAlias({
        modelName: request.modelName, alias: request.alias, expectedVersion: request.expectedVersion,
        expectedRevision: request.expectedRevision, reason: request.reason, actor: request.actor,
      });
      logger.info({ model: alias.modelName, alias: alias.alias, from: move.fromVersion, to: move.toVersion, actor: move.actor }, 'alias rolled back');
      return { alias, move };
    }),

    watch: serverStream('Watch', logger, async (request: WatchRequest, call: ServerWritableStream<WatchRequest, WatchResponse>) => {
      if (request.modelName) checkModelName(request.modelName);
      const stop = new AbortController();
      watchers.add(stop);
      call.on('cancelled', () => stop.abort());
      try {
        const head = await registry.events.refreshHead();
        // A cursor from the future means the client followed another log (a replaced or restored
        // store): continuing would silently skip events, so it is told to start over.
        if (!request.fromNow && request.afterCursor > head) {
          throw new NexusError(ErrorCode.OUT_OF_RANGE, `after_cursor ${request.afterCursor} is past the newest event (${head}); read the state again and watch with from_now`);
        }
        let cursor = request.fromNow ? head : request.afterCursor;
        const drain = async () => {
          for (;;) {
            const events = await registry.events.readAfter(cursor);
            if (events.length === 0) return;
            for (const event of events) {
              if (stop.signal.aborted) return;
              cursor = event.cursor;
              if (!request.modelName || eventModel(event) === request.modelName) await send(call, toWatchResponse(event));
            }
          }
        };
        await drain();
        if (stop.signal.aborted) return;
        await send(call, { cursor, recordedAtUnixMs: Date.now(), caughtUp: { cursor }, versionCreated: undefined, aliasMoved: undefined });
        while (!stop.signal.aborted) {
          await registry.events.waitForChange(cursor, stop.signal);
          await drain();
        }
      } finally {
        watchers.delete(stop);
      }
    }),

    garbageCollect: unary('GarbageCollect', logger, async (request: GarbageCollectRequest): Promise<GarbageCollectResponse> => {
      const report = await registry.garbage.collect({
        delete: request.delete,
        minAgeMs: request.minAgeSeconds === undefined ? undefined : request.minAgeSeconds * 1000,
      });
      if (report.deleted) logger.info({ objects: report.garbage.length, bytes: report.garbageBytes }, 'garbage deleted');
      return report;
    }),
  };

  return {
    implementation,
    closeWatchers: () => {
      for (const watcher of watchers) watcher.abort();
    },
  };
}

export { RegistryService };

/**
 * The registry's gRPC API over a ModelRegistry. Each handler only translates: it reads the
 * request (and, for streams, frames it; see framing.ts), calls the registry, and writes the
 * answer, logging what changed and counting the bytes that crossed. Every rule lives in the
 * registry.
 */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type {
  AliasMove, DownloadArtifactRequest, DownloadArtifactResponse, GarbageCollectRequest, GarbageCollectResponse, GetAliasHistoryRequest,
  GetAliasHistoryResponse, GetAliasRequest, GetAliasResponse, GetVersionRequest, GetVersionResponse, ListAliasesRequest,
  ListAliasesResponse, ListAuditRequest, ListAuditResponse, ListModelsResponse, ListVersionsRequest, ListVersionsResponse, RollbackAliasRequest, RollbackAliasResponse,
  SetAliasRequest, SetAliasResponse, StatBlobsRequest, StatBlobsResponse, UploadBlobRequest, UploadBlobResponse, UploadVersionRequest,
  UploadVersionResponse, WatchRequest, WatchResponse,
} from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { clientStream, serverStream, unary } from '../../rpc/handlers.ts';
import { formatSplit, invalidArgument } from '../../domain/index.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { metrics } from '../../telemetry/metrics.ts';
import type { AuditLog, ModelRegistry, WatchItem } from '../core/index.ts';
import { checkCount, isDirectoryFormat } from '../validation/index.ts';
import { authorizeModel } from '../../auth/access.ts';
import type { Principal } from '../../auth/principal.ts';
import { principalOf } from '../../rpc/call-principal.ts';
import { createAuditTrail, recordedAuthor } from './audit-trail.ts';
import { downloadChunks, uploadBody } from './framing.ts';

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

function toWatchResponse(item: WatchItem): WatchResponse {
  if (item.kind === 'caught-up') {
    return { cursor: item.cursor, recordedAtUnixMs: item.recordedAtUnixMs, caughtUp: { cursor: item.cursor }, versionCreated: undefined, aliasMoved: undefined };
  }
  const { event } = item;
  return {
    cursor: event.cursor, recordedAtUnixMs: event.recordedAtUnixMs,
    versionCreated: event.versionCreated, aliasMoved: event.aliasMoved, caughtUp: undefined,
  };
}

/**
 * Whether `principal` may see the model `modelName`: a key or JWT with model globs sees only the
 * models they cover, so ListModels and an unfiltered Watch do not reveal the names of the others.
 * Every other caller (no globs, a service, authentication off) sees every model.
 */
function seesModel(principal: Principal, modelName: string): boolean {
  if ((principal.kind !== 'key' && principal.kind !== 'jwt') || principal.models.length === 0) return true;
  try {
    authorizeModel(principal, modelName);
    return true;
  } catch {
    return false;
  }
}

/** The model a Watch event is about ('' for none). */
const modelOfEvent = (item: WatchItem) => (item.kind === 'event' ? item.event.versionCreated?.modelName ?? item.event.aliasMoved?.modelName ?? '' : '');

/** An alias move for the audit log: `3 -> 4 (revision 5)`, splits as `3=90,4=10`. */
function describeMove(move: AliasMove): string {
  const side = (version: number, split: AliasMove['toSplit']) => (split.length > 0 ? formatSplit(split) : String(version || 'unset'));
  return `${side(move.fromVersion, move.fromSplit)} -> ${side(move.toVersion, move.toSplit)} (revision ${move.revision}${move.rollback ? ', rollback' : ''})`;
}

export interface RegistryServiceHandle {
  implementation: UntypedServiceImplementation;
  /** Ends every Watch stream (clients resume elsewhere with their cursor). */
  closeWatchers(): void;
}

/**
 * The handlers of nexus.registry.v1.Registry over `registry`, logging to `logger`. Every write
 * and admin call is recorded in `audit`; versions and alias moves are recorded as made by the
 * authenticated principal (what the client claims counts only with authentication off).
 */
export function createRegistryService(registry: ModelRegistry, audit: AuditLog, logger: Logger): RegistryServiceHandle {
  const watchers = new Set<AbortController>();
  const audited = createAuditTrail(audit, logger);

  const implementation: UntypedServiceImplementation = {
    uploadVersion: clientStream<UploadVersionRequest, UploadVersionResponse>('UploadVersion', logger, (call) => audited(call, 'UploadVersion', async (note, principal) => {
      const messages = (call as AsyncIterable<UploadVersionRequest>)[Symbol.asyncIterator]();
      const first = await messages.next();
      if (first.done || !first.value.header) throw invalidArgument('the first message of an upload must be its header');
      const header = { ...first.value.header, creator: recordedAuthor(principal, first.value.header.creator) };
      note.target = header.modelName;
      authorizeModel(principal, header.modelName);
      const body = uploadBody(messages);
      const { version, deduplicated } = await registry.upload(header, body.chunks, { trailerSha256: body.trailerSha256 });
      note.target = `${version.modelName}:${version.version}`;
      note.detail = `sha256 ${version.sha256}, ${version.sizeBytes} bytes${isDirectoryFormat(version.format) ? `, ${version.files.length} files` : ''}${deduplicated ? ', bytes stored already' : ''}`;
      if (isDirectoryFormat(version.format)) {
        // Its files crossed in UploadBlob calls, counted there.
        logger.info({ model: version.modelName, version: version.version, sha256: version.sha256, files: version.files.length, creator: version.creator }, 'version created');
      } else {
        metrics.registryBytes.inc({ direction: 'up' }, version.sizeBytes);
        logger.info({ model: version.modelName, version: version.version, sha256: version.sha256, bytes: version.sizeBytes, creator: version.creator }, 'version created');
      }
      return { version, deduplicated };
    })),

    uploadBlob: clientStream<UploadBlobRequest, UploadBlobResponse>('UploadBlob', logger, (call) => audited(call, 'UploadBlob', async (note) => {
      const messages = (call as AsyncIterable<UploadBlobRequest>)[Symbol.asyncIterator]();
      const first = await messages.next();
      if (first.done || !first.value.header) throw invalidArgument('the first message of a blob upload must be its header');
      note.target = `sha256:${first.value.header.sha256}`;
      const blob = await registry.uploadBlob(first.value.header, uploadBody(messages).chunks);
      note.detail = `${blob.sizeBytes} bytes${blob.deduplicated ? ', stored already' : ''}`;
      metrics.registryBytes.inc({ direction: 'up' }, blob.sizeBytes);
      return { sha256: blob.sha256, sizeBytes: blob.sizeBytes, deduplicated: blob.deduplicated };
    })),

    statBlobs: unary('StatBlobs', logger, async (request: StatBlobsRequest): Promise<StatBlobsResponse> => ({
      blobs: await registry.statBlobs(request.sha256),
    })),

    getVersion: unary('GetVersion', logger, async (request: GetVersionRequest): Promise<GetVersionResponse> =>
      registry.getVersion(request.modelName, { version: request.version, alias: request.alias })),

    listVersions: unary('ListVersions', logger, async (request: ListVersionsRequest): Promise<ListVersionsResponse> =>
      registry.listVersions(request.modelName)),

    listModels: unary('ListModels', logger, async (_request: unknown, call): Promise<ListModelsResponse> => {
      const principal = principalOf(call);
      return { latest: (await registry.listModels()).filter((version) => seesModel(principal, version.modelName)) };
    }),

    downloadArtifact: serverStream('DownloadArtifact', logger, async (request: DownloadArtifactRequest, call: ServerWritableStream<DownloadArtifactRequest, DownloadArtifactResponse>) => {
      const download = await registry.download(request.sha256, request.offset);
      let offset = request.offset;
      for await (const chunk of downloadChunks(download.chunks)) {
        if (call.cancelled) return;
        await send(call, { chunk, offset, totalSizeBytes: download.totalSizeBytes });
        offset += chunk.byteLength;
        metrics.registryBytes.inc({ direction: 'down' }, chunk.byteLength);
      }
    }),

    setAlias: unary('SetAlias', logger, (request: SetAliasRequest, call) => audited(call, 'SetAlias', async (note, principal): Promise<SetAliasResponse> => {
      note.target = `${request.modelName}@${request.alias}`;
      const started = Date.now();
      const { alias, move } = await registry.setAlias({
        modelName: request.modelName, alias: request.alias, expectedVersion: request.expectedVersion,
        expectedRevision: request.expectedRevision, reason: request.reason, actor: recordedAuthor(principal, request.actor),
      }, request.version, request.split, request.stickyParameter);
      // A move to where the alias points already changes nothing and returns the move that put it there.
      note.detail = move.movedAtUnixMs < started ? `already there (revision ${move.revision}); nothing changed` : describeMove(move);
      logger.info({
        model: alias.modelName, alias: alias.alias, from: move.fromVersion, to: move.toVersion, actor: move.actor,
        ...(alias.split.length > 0 ? { split: formatSplit(alias.split) } : {}),
      }, 'alias moved');
      return { alias, move };
    })),

    getAlias: unary('GetAlias', logger, async (request: GetAliasRequest): Promise<GetAliasResponse> => ({
      alias: await registry.getAlias(request.modelName, request.alias),
    })),

    listAliases: unary('ListAliases', logger, async (request: ListAliasesRequest): Promise<ListAliasesResponse> => ({
      aliases: await registry.listAliases(request.modelName),
    })),

    getAliasHistory: unary('GetAliasHistory', logger, async (request: GetAliasHistoryRequest): Promise<GetAliasHistoryResponse> => ({
      moves: await registry.aliasHistory(request.modelName, request.alias),
    })),

    rollbackAlias: unary('RollbackAlias', logger, (request: RollbackAliasRequest, call) => audited(call, 'RollbackAlias', async (note, principal): Promise<RollbackAliasResponse> => {
      note.target = `${request.modelName}@${request.alias}`;
      const { alias, move } = await registry.rollbackAlias({
        modelName: request.modelName, alias: request.alias, expectedVersion: request.expectedVersion,
        expectedRevision: request.expectedRevision, reason: request.reason, actor: recordedAuthor(principal, request.actor),
      });
      note.detail = describeMove(move);
      logger.info({ model: alias.modelName, alias: alias.alias, from: move.fromVersion, to: move.toVersion, actor: move.actor }, 'alias rolled back');
      return { alias, move };
    })),

    watch: serverStream('Watch', logger, async (request: WatchRequest, call: ServerWritableStream<WatchRequest, WatchResponse>) => {
      const stop = new AbortController();
      watchers.add(stop);
      call.on('cancelled', () => stop.abort());
      const principal = principalOf(call);
      try {
        const from = request.fromNow ? 'now' : request.afterCursor;
        for await (const item of registry.watch(from, stop.signal, { modelName: request.modelName })) {
          // Events of models outside the caller's globs are left out; the next cursor still moves past them.
          if (item.kind === 'event' && !seesModel(principal, modelOfEvent(item))) continue;
          await send(call, toWatchResponse(item));
        }
      } finally {
        watchers.delete(stop);
      }
    }),

    garbageCollect: unary('GarbageCollect', logger, (request: GarbageCollectRequest, call) => audited(call, 'GarbageCollect', async (note): Promise<GarbageCollectResponse> => {
      note.target = request.delete ? 'delete' : 'dry run';
      const asked = request.minAgeSeconds === undefined ? undefined : checkCount(request.minAgeSeconds, 'min_age_seconds');
      const report = await registry.collectGarbage({ delete: request.delete, minAgeMs: asked === undefined ? undefined : asked * 1000 });
      const minAgeSeconds = Math.ceil(report.minAgeMs / 1000);
      if (report.minAgeRaised) {
        logger.warn({ asked_seconds: asked, applied_seconds: minAgeSeconds }, 'garbage collection min_age_seconds raised to the server minimum');
      }
      if (report.deleted) logger.info({ objects: report.garbage.length, bytes: report.garbageBytes }, 'garbage deleted');
      note.detail = `${report.deleted ? 'deleted' : 'found'} ${report.garbage.length} unreferenced objects, ${report.garbageBytes} bytes (min age ${minAgeSeconds} s)`;
      return {
        garbage: report.garbage, garbageBytes: report.garbageBytes, referencedBlobs: report.referencedBlobs, deleted: report.deleted,
        minAgeSeconds, minAgeRaised: report.minAgeRaised,
      };
    })),

    listAudit: unary('ListAudit', logger, async (request: ListAuditRequest): Promise<ListAuditResponse> => ({
      records: await audit.list({ limit: request.limit, beforeUnixMs: request.beforeUnixMs }),
    })),
  };

  return {
    implementation,
    closeWatchers: () => {
      for (const watcher of watchers) watcher.abort();
    },
  };
}

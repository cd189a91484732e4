/**
 * The registry's state over one ObjectStore, with no other database: blobs, version records,
 * aliases with their history, the event log and garbage collection. Every rule lives here or
 * below (the input rules in ../validation/); the gRPC layer (../grpc/) only translates messages to
 * these calls and back.
 */
import { createHash } from 'node:crypto';
import type {
  Alias, AliasMove, AliasTarget, ManifestEntry, ModelSignature, ModelVersion, UploadHeader,
} from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, failedPrecondition, invalidArgument, NexusError, notFound } from '../../domain/index.ts';
import { createLogger, type Logger } from '../../telemetry/logger.ts';
import { AliasRecords } from './alias-records.ts';
import { blobKey, BlobStore, type WrittenBlob } from './blob-store.ts';
import { EventLog, type EventLogOptions, type WatchCursor, type WatchItem } from './event-log.ts';
import { GarbageCollector, type GarbageReport } from './garbage-collector.ts';
import { OnnxSignatureReader } from './onnx-signature.ts';
import { checkpointSignature, mayBeCheckpoint } from './checkpoint-signature.ts';
import { classifyDirectory, ONNX_ENTRY_TAG } from '../../domain/directory-model.ts';
import type { ObjectStore } from '../store/index.ts';
import { noteTransferredBytes } from './transfer-memory.ts';
import { UploadLeases, type UploadLease } from './upload-leases.ts';
import {
  checkAliasName, checkArtifactSize, checkCount, checkDestination, checkManifest, checkModelName, checkMove, checkSafetensorsPrefix,
  checkSha256, checkUploadHeader, DEFAULT_LIMITS, isDirectoryFormat, notSafetensors, safetensorsPrefixBytes, type MoveRequest,
  type RegistryLimits,
} from '../validation/index.ts';
import { VersionRecords } from './version-records.ts';

/** Most digests one StatBlobs call may ask about. */
export const MAX_STAT_BLOBS = 10_000;
/** Blob lookups made at once by statBlobs. */
const STAT_CONCURRENCY = 16;

/** What a version's artifact turned out to be, once its bytes are stored and checked. */
interface StoredArtifact {
  sha256: string;
  sizeBytes: number;
  signature: ModelSignature;
  files: ManifestEntry[];
}

/** The manifest blob of a directory model: canonical JSON, so equal directories share a digest. */
export function manifestBytes(format: string, files: ManifestEntry[]): Buffer {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return Buffer.from(`${JSON.stringify({
    mediaType: 'application/vnd.nexusml.manifest.v1+json',
    format,
    files: sorted.map((file) => ({ path: file.path, sha256: file.sha256, size_bytes: file.sizeBytes })),
  }, null, 2)}\n`);
}

export interface ModelRegistryOptions extends EventLogOptions {
  /** Where damage found in stored blobs is logged. Default: a logger for service 'registry'. */
  logger?: Logger;
  /** Budgets on uploads, versions and garbage collection; each one left out has its default (DEFAULT_LIMITS). */
  limits?: Partial<RegistryLimits>;
}

export interface UploadOptions {
  /** A digest the client sent after the bytes (a trailer); read once the chunks have ended. */
  trailerSha256?: () => string | undefined;
}

/** A version created by an upload. */
export interface UploadedVersion {
  version: ModelVersion;
  /** True when the artifact's bytes were stored already (and so were not written again). */
  deduplicated: boolean;
}

/** Whether a blob is stored, and its size in bytes (0 when absent). */
export interface BlobPresence {
  sha256: string;
  present: boolean;
  sizeBytes: number;
}

/** A download under way: the artifact's whole size, and its bytes from the offset asked for. */
export interface VerifiedDownload {
  /** The artifact's size in bytes, whatever the offset. */
  totalSizeBytes: number;
  /**
   * The bytes from the offset, in the backend's pieces. Read from the start they are hashed on
   * the way out: a blob damaged at rest ends the stream with DATA_LOSS after its last piece
   * instead of ending cleanly. A stream that ends short of the size fails DATA_LOSS too.
   */
  chunks: AsyncIterable<Uint8Array>;
}

export class ModelRegistry {
  private readonly store: ObjectStore;
  private readonly logger: Logger;
  private readonly blobs: BlobStore;
  private readonly versions: VersionRecords;
  private readonly aliases: AliasRecords;
  private readonly events: EventLog;
  private readonly garbage: GarbageCollector;
  private readonly leases = new UploadLeases();
  /** The budgets in force. */
  readonly limits: Readonly<RegistryLimits>;

  private constructor(store: ObjectStore, options: ModelRegistryOptions) {
    this.store = store;
    this.logger = options.logger ?? createLogger('registry');
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...options.limits });
    this.blobs = new BlobStore(store);
    this.versions = new VersionRecords(store, this.limits.maxVersionsPerModel);
    this.events = new EventLog(store, options);
    this.aliases = new AliasRecords(store, async (move) => {
      await this.events.append({ aliasMoved: move });
    });
    this.garbage = new GarbageCollector(store, this.versions, this.leases, this.limits.gcMinAgeMs);
  }

  static async open(store: ObjectStore, options: ModelRegistryOptions = {}): Promise<ModelRegistry> {
    const registry = new ModelRegistry(store, options);
    await registry.versions.ensureIndex();
    return registry;
  }

  /**
   * Creates a version from an upload. A one-file model (onnx) streams its bytes as `chunks`;
   * they become a blob only once they match the header's size and digest (and the trailer's),
   * and parse as a model whose signature is recorded. A directory model sends no chunks: its
   * header lists files already stored with uploadBlob. Anything refused leaves nothing visible.
   *
   * Sizes over `limits` and a model at its version quota fail RESOURCE_EXHAUSTED before any byte
   * is stored; bytes beyond the artifact cap abort the upload as they arrive. Every blob the
   * upload writes or counts on is leased against garbage collection until its version record is
   * written.
   */
  async upload(header: UploadHeader, chunks: AsyncIterable<Uint8Array>, options: UploadOptions = {}): Promise<UploadedVersion> {
    checkUploadHeader(header, this.limits);
    await this.versions.checkQuota(header.modelName);
    const lease = this.leases.open();
    try {
      if (isDirectoryFormat(header.format)) {
        const first = await chunks[Symbol.asyncIterator]().next();
        if (!first.done) {
          throw invalidArgument('a directory model sends no chunks: upload its files with UploadBlob, then list them in header.files');
        }
        const version = await this.createVersion(header, await this.storeManifest(header.format, header.files, header.tags, lease));
        return { version, deduplicated: true };
      }
      const reader = new OnnxSignatureReader();
      let signature: ModelSignature | undefined;
      const blob = await this.blobs.write(chunks, {
        expectedSha256: header.sha256 || undefined,
        expectedSizeBytes: header.sizeBytes,
        cap: { bytes: this.limits.maxArtifactBytes, budget: 'max_artifact_bytes (the upload\'s chunks)' },
        lease,
        onChunk: (chunk) => reader.push(chunk),
        trailerSha256: options.trailerSha256,
        // A file that is not a valid model never becomes a blob.
        validate: () => {
          signature = reader.finish();
        },
      });
      const version = await this.createVersion(header, {
        sha256: blob.sha256, sizeBytes: blob.sizeBytes, signature: signature!,
        files: [{ path: header.fileName || `${header.modelName}.${header.format}`, sha256: blob.sha256, sizeBytes: blob.sizeBytes }],
      });
      return { version, deduplicated: blob.deduplicated };
    } finally {
      lease.release();
    }
  }

  /**
   * Stores one file of a directory model, verified against the digest and size announced, within
   * the artifact cap. Until a version lists it, only the collector's minimum age protects it.
   */
  async uploadBlob(header: { sha256: string; sizeBytes: number }, chunks: AsyncIterable<Uint8Array>): Promise<WrittenBlob> {
    checkSha256(header.sha256, 'header.sha256');
    checkArtifactSize(checkCount(header.sizeBytes, 'header.size_bytes'), this.limits, 'header.size_bytes');
    const lease = this.leases.open();
    try {
      return await this.blobs.write(chunks, {
        expectedSha256: header.sha256, expectedSizeBytes: header.sizeBytes, lease,
        cap: { bytes: this.limits.maxArtifactBytes, budget: 'max_artifact_bytes (the blob\'s chunks)' },
      });
    } finally {
      lease.release();
    }
  }

  /** Which of these blobs are stored, in the order asked (at most MAX_STAT_BLOBS). */
  async statBlobs(digests: string[]): Promise<BlobPresence[]> {
    if (digests.length > MAX_STAT_BLOBS) throw invalidArgument(`sha256 lists ${digests.length} digests; at most ${MAX_STAT_BLOBS} per call`);
    digests.forEach((digest, index) => checkSha256(digest, `sha256[${index}]`));
    const found: BlobPresence[] = [];
    for (let start = 0; start < digests.length; start += STAT_CONCURRENCY) {
      const batch = digests.slice(start, start + STAT_CONCURRENCY);
      const infos = await Promise.all(batch.map((digest) => this.blobs.info(digest)));
      batch.forEach((digest, index) => found.push({ sha256: digest, present: Boolean(infos[index]), sizeBytes: infos[index]?.sizeBytes ?? 0 }));
    }
    return found;
  }

  /**
   * A stored artifact's bytes from `offset` (0: the start), verified as they stream (see
   * VerifiedDownload). NOT_FOUND for an unknown digest, INVALID_ARGUMENT for an offset past the end.
   */
  async download(sha256: string, offset = 0): Promise<VerifiedDownload> {
    checkSha256(sha256);
    checkCount(offset, 'offset');
    const info = await this.blobs.info(sha256);
    if (!info) throw notFound(`no artifact with sha256 ${sha256}`);
    const total = info.sizeBytes;
    if (offset > total) throw invalidArgument(`offset ${offset} is past the artifact's end (${total} bytes)`);
    const { blobs, logger } = this;
    async function* verified(): AsyncGenerator<Uint8Array> {
      // A resumed download is verified by its client, which holds the bytes before the offset.
      const hash = offset === 0 ? createHash('sha256') : undefined;
      let read = offset;
      for await (const piece of blobs.read(sha256, offset)) {
        hash?.update(piece);
        noteTransferredBytes(piece.byteLength);
        read += piece.byteLength;
        yield piece;
      }
      if (read !== total) {
        logger.error({ sha256, expected_bytes: total, read_bytes: read }, 'stored blob changed size while being read');
        throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${sha256} ended after ${read} of ${total} bytes`);
      }
      const actual = hash?.digest('hex');
      if (actual && actual !== sha256) {
        logger.error({ sha256, actual_sha256: actual }, 'stored blob is corrupt');
        throw new NexusError(ErrorCode.DATA_LOSS, `stored artifact ${sha256} is corrupt: its bytes hash to ${actual}; do not use them`);
      }
    }
    return { totalSizeBytes: total, chunks: verified() };
  }

  /** A version by number (0: the newest) or by alias, with the aliases pointing at it now. */
  async getVersion(modelName: string, selector: { version?: number; alias?: string }): Promise<{ version: ModelVersion; aliases: string[] }> {
    const version = await this.resolve(modelName, selector);
    const aliases = (await this.aliases.list(version.modelName)).filter((alias) => alias.version === version.version).map((alias) => alias.alias);
    return { version, aliases };
  }

  /** Every version of a model, oldest first, with its aliases; NOT_FOUND for a model without versions. */
  async listVersions(modelName: string): Promise<{ versions: ModelVersion[]; aliases: Alias[] }> {
    checkModelName(modelName);
    const versions = await this.versions.list(modelName);
    if (versions.length === 0) throw notFound(`model '${modelName}' does not exist`);
    return { versions, aliases: await this.aliases.list(modelName) };
  }

  /** The newest version of every model, by model name. */
  async listModels(): Promise<ModelVersion[]> {
    const latest: ModelVersion[] = [];
    for (const name of await this.versions.modelNames()) {
      const record = await this.versions.read(name, 0);
      if (record) latest.push(record);
    }
    return latest;
  }

  /** Where an alias points; NOT_FOUND when it was never set. */
  async getAlias(modelName: string, alias: string): Promise<Alias> {
    checkModelName(modelName);
    checkAliasName(alias);
    const found = await this.aliases.get(modelName, alias);
    if (!found) throw notFound(`model '${modelName}' has no alias '${alias}'`);
    return found;
  }

  /** Every alias of a model, sorted by name; NOT_FOUND for a model without versions. */
  async listAliases(modelName: string): Promise<Alias[]> {
    checkModelName(modelName);
    if ((await this.versions.latestNumber(modelName)) === 0) throw notFound(`model '${modelName}' does not exist`);
    return this.aliases.list(modelName);
  }

  /** Every move of an alias, oldest first; NOT_FOUND when it was never set. */
  async aliasHistory(modelName: string, alias: string): Promise<AliasMove[]> {
    checkModelName(modelName);
    checkAliasName(alias);
    const moves = await this.aliases.history(modelName, alias);
    if (moves.length === 0) throw notFound(`model '${modelName}' has no alias '${alias}'`);
    return moves;
  }

  /**
   * Points an alias at an existing version, or splits it between existing versions, by
   * compare-and-swap on `expectedVersion` and/or `expectedRevision`.
   */
  async setAlias(request: MoveRequest, version: number, split: AliasTarget[] = [], stickyParameter = ''): Promise<{ alias: Alias; move: AliasMove }> {
    const checked = checkMove(request);
    const destination = checkDestination(version, split, stickyParameter);
    for (const arm of destination.split.length > 0 ? destination.split : [destination]) {
      await this.resolve(checked.modelName, { version: arm.version });
    }
    return this.aliases.move(checked, destination);
  }

  /** Moves an alias back to its previous target. */
  rollbackAlias(request: MoveRequest): Promise<{ alias: Alias; move: AliasMove }> {
    return this.aliases.rollback(checkMove(request));
  }

  /**
   * The events after `cursor` (or from the newest, with 'now'), then a caught-up marker, then
   * each new event until `signal` aborts; with `modelName`, only that model's events (the
   * caught-up cursor still counts the others). OUT_OF_RANGE for a cursor past the newest event.
   */
  async *watch(cursor: WatchCursor, signal: AbortSignal, filter: { modelName?: string } = {}): AsyncGenerator<WatchItem> {
    if (filter.modelName) checkModelName(filter.modelName);
    if (cursor !== 'now') checkCount(cursor, 'after_cursor');
    for await (const item of this.events.follow(cursor, signal)) {
      if (item.kind === 'event' && filter.modelName) {
        const model = item.event.versionCreated?.modelName ?? item.event.aliasMoved?.modelName;
        if (model !== filter.modelName) continue;
      }
      yield item;
    }
  }

  /**
   * Lists blobs no version refers to and abandoned uploads older than `minAgeMs` (default one
   * hour, and never less than `limits.gcMinAgeMs`); with `delete`, removes them. Objects leased
   * by an upload under way are never touched.
   */
  collectGarbage(options: { delete: boolean; minAgeMs?: number }): Promise<GarbageReport> {
    return this.garbage.collect(options);
  }

  /** Closes the event log (waking every watcher) and the store. */
  async close(): Promise<void> {
    this.events.close();
    await this.store.close();
  }

  /** Records a new version for an artifact already stored and checked, and announces it. */
  private async createVersion(header: UploadHeader, artifact: StoredArtifact): Promise<ModelVersion> {
    const record = await this.versions.create(header.modelName, (version) => ({
      modelName: header.modelName,
      version,
      sha256: artifact.sha256,
      sizeBytes: artifact.sizeBytes,
      format: header.format,
      signature: artifact.signature,
      lineage: header.lineage,
      tags: header.tags,
      creator: header.creator,
      createdAtUnixMs: Date.now(),
      batching: header.batching,
      files: artifact.files,
    }));
    await this.events.append({ versionCreated: record });
    return record;
  }

  /**
   * Stores a directory model's manifest once every file it lists is stored with the size given,
   * and checks each safetensors file's header.
   */
  private async storeManifest(format: string, files: ManifestEntry[], tags: Record<string, string>, lease: UploadLease): Promise<StoredArtifact> {
    checkManifest(format, files, this.limits);
    for (const file of files) {
      await lease.hold(blobKey(file.sha256));
      const info = await this.blobs.info(file.sha256);
      if (!info) throw failedPrecondition(`file '${file.path}' (sha256 ${file.sha256}) is not stored; upload it with UploadBlob first`);
      if (info.sizeBytes !== file.sizeBytes) {
        throw invalidArgument(`file '${file.path}' is listed with ${file.sizeBytes} bytes, but its blob holds ${info.sizeBytes}`);
      }
      if (file.path.endsWith('.safetensors')) await this.checkSafetensors(file);
    }
    const bytes = manifestBytes(format, files);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const blob = await this.blobs.write((async function* () { yield bytes; })(), { expectedSha256: sha256, expectedSizeBytes: bytes.byteLength, lease });
    return { sha256: blob.sha256, sizeBytes: blob.sizeBytes, signature: await this.directorySignature(files, tags), files };
  }

  /**
   * A directory's signature: an ONNX model's (a .onnx at its root, or the one ONNX_ENTRY_TAG
   * names) read from its entry file as it streams, refused FAILED_PRECONDITION when which model
   * it is cannot be told (domain/directory-model.ts); text generation for a causal-LM checkpoint,
   * read from its config.json (checkpoint-signature.ts).
   */
  private async directorySignature(files: ManifestEntry[], tags: Record<string, string>): Promise<ModelSignature> {
    if (tags[ONNX_ENTRY_TAG] || files.some((file) => !file.path.includes('/') && file.path.endsWith('.onnx'))) {
      const directory = classifyDirectory(files, tags);
      if (directory.kind === 'onnx') {
        const reader = new OnnxSignatureReader();
        for await (const chunk of this.blobs.read(directory.entry.sha256)) reader.push(chunk);
        return reader.finish();
      }
    }
    const config = mayBeCheckpoint(files);
    if (!config) return checkpointSignature(files, undefined);
    const parts: Buffer[] = [];
    for await (const chunk of this.blobs.read(config.sha256)) parts.push(Buffer.from(chunk));
    return checkpointSignature(files, Buffer.concat(parts).toString('utf8'));
  }

  /** Reads a stored safetensors file's length field and header, no further, and checks them. */
  private async checkSafetensors(file: ManifestEntry): Promise<void> {
    if (file.sizeBytes < 8) throw notSafetensors(file.path, 'shorter than 8 bytes');
    const parts: Buffer[] = [];
    let have = 0;
    let want: number | undefined;
    for await (const chunk of this.blobs.read(file.sha256)) {
      parts.push(Buffer.from(chunk));
      have += chunk.byteLength;
      if (want === undefined && have >= 8) want = safetensorsPrefixBytes(file.path, file.sizeBytes, Buffer.concat(parts).subarray(0, 8));
      if (want !== undefined && have >= want) break;
    }
    if (want === undefined || have < want) throw notSafetensors(file.path, 'its blob ended early');
    checkSafetensorsPrefix(file.path, file.sizeBytes, Buffer.concat(parts).subarray(0, want));
  }

  /** A version by number (0: the newest) or by alias; NOT_FOUND says which part is missing. */
  private async resolve(modelName: string, selector: { version?: number; alias?: string }): Promise<ModelVersion> {
    checkModelName(modelName);
    let number = selector.version ?? 0;
    if (selector.alias) {
      if (number !== 0) throw invalidArgument('give a version or an alias, not both');
      checkAliasName(selector.alias);
      const alias = await this.aliases.get(modelName, selector.alias);
      if (!alias) throw notFound(`model '${modelName}' has no alias '${selector.alias}'`);
      number = alias.version;
    }
    const record = await this.versions.read(modelName, number);
    if (!record) throw notFound(`model '${modelName}' has no ${number === 0 ? 'version' : `version ${number}`}`);
    return record;
  }
}

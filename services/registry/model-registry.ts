/**
 * The registry's state over one ObjectStore, with no other database: blobs, version records,
 * aliases with their history, the event log and garbage collection. The gRPC layer
 * (registry-service.ts) only translates messages; every rule lives here or below.
 */
import { createHash } from 'node:crypto';
import type {
  Alias, AliasMove, AliasTarget, ManifestEntry, ModelSignature, ModelVersion, UploadHeader,
} from '../protocol/generated/nexus/registry/v1/registry.ts';
import { failedPrecondition, invalidArgument, notFound } from '../domain/errors.ts';
import { AliasRecords, type AliasDestination, type MoveRequest } from './alias-records.ts';
import { BlobStore } from './blob-store.ts';
import { EventLog, type EventLogOptions } from './event-log.ts';
import { GarbageCollector } from './garbage-collector.ts';
import { checkAliasName, checkManifestPath, checkModelName, checkSha256, MAX_MANIFEST_FILES } from './names.ts';
import type { ObjectStore } from './store/object-store.ts';
import { VersionRecords } from './version-records.ts';

/** Formats whose artifact is one file streamed in the upload. */
export const FILE_FORMATS = ['onnx'] as const;
/** Formats whose artifact is a directory: files uploaded as blobs first, then a manifest. */
export const DIRECTORY_FORMATS = ['safetensors', 'directory'] as const;
/** Largest safetensors header read to check a file, in bytes. */
const MAX_SAFETENSORS_HEADER_BYTES = 16 * 1024 * 1024;
/** Longest reason or actor recorded, in characters. */
const MAX_NOTE_CHARS = 1024;
/** Most arms of a split alias. */
export const MAX_SPLIT_ARMS = 16;
/** Largest weight of one arm of a split alias. */
export const MAX_SPLIT_WEIGHT = 1_000_000;
/** A request parameter name that keeps a client on one arm of a split. */
const STICKY_PARAMETER = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * Checks where SetAlias should point an alias: one version, or a split of two or more distinct
 * versions with positive weights whose first arm is the control (`version` is 0 or the first
 * arm's). Returns the destination to record; INVALID_ARGUMENT names the field at fault.
 */
export function checkDestination(version: number, split: AliasTarget[], stickyParameter: string): AliasDestination {
  if (split.length === 0) {
    if (version <= 0) throw invalidArgument('version must be 1 or more');
    if (stickyParameter) throw invalidArgument('sticky_parameter needs a split: give split, or leave sticky_parameter empty');
    return { version, split: [], stickyParameter: '' };
  }
  if (split.length < 2 || split.length > MAX_SPLIT_ARMS) throw invalidArgument(`split has ${split.length} arms; give 2 to ${MAX_SPLIT_ARMS}`);
  const seen = new Set<number>();
  split.forEach((arm, index) => {
    if (arm.version <= 0) throw invalidArgument(`split[${index}].version must be 1 or more`);
    if (!Number.isInteger(arm.weight) || arm.weight < 1 || arm.weight > MAX_SPLIT_WEIGHT) {
      throw invalidArgument(`split[${index}].weight must be 1 to ${MAX_SPLIT_WEIGHT}, got ${arm.weight}`);
    }
    if (seen.has(arm.version)) throw invalidArgument(`split[${index}].version ${arm.version} is listed twice`);
    seen.add(arm.version);
  });
  if (version !== 0 && version !== split[0].version) {
    throw invalidArgument(`version ${version} differs from split[0].version ${split[0].version}; give 0 or the first arm's version (the control)`);
  }
  if (stickyParameter && !STICKY_PARAMETER.test(stickyParameter)) {
    throw invalidArgument(`sticky_parameter '${stickyParameter.slice(0, 100)}' is invalid: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or '_'`);
  }
  return { version: split[0].version, split: split.map((arm) => ({ version: arm.version, weight: arm.weight })), stickyParameter };
}

export const isDirectoryFormat = (format: string) => (DIRECTORY_FORMATS as readonly string[]).includes(format);

/** What a version's artifact turned out to be, once its bytes are stored and checked. */
export interface StoredArtifact {
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

/** Checks a directory model's file list: valid unique paths, valid digests, a sane count. */
export function checkManifest(format: string, files: ManifestEntry[]): ManifestEntry[] {
  if (files.length > MAX_MANIFEST_FILES) throw invalidArgument(`header.files lists ${files.length} files; at most ${MAX_MANIFEST_FILES} are allowed`);
  const seen = new Set<string>();
  for (const [index, file] of files.entries()) {
    checkManifestPath(file.path, `header.files[${index}].path`);
    checkSha256(file.sha256, `header.files[${index}].sha256`);
    const folded = file.path.toLowerCase();
    if (seen.has(folded)) throw invalidArgument(`header.files lists '${file.path}' twice (paths must differ, ignoring case)`);
    seen.add(folded);
  }
  // A file and a directory of the same name cannot both be restored.
  for (const file of files) {
    const parts = file.path.toLowerCase().split('/');
    for (let depth = 1; depth < parts.length; depth++) {
      if (seen.has(parts.slice(0, depth).join('/'))) throw invalidArgument(`header.files has '${parts.slice(0, depth).join('/')}' as both a file and a directory`);
    }
  }
  if (format === 'safetensors' && !files.some((file) => file.path.endsWith('.safetensors'))) {
    throw invalidArgument("format 'safetensors' needs at least one *.safetensors file; use format 'directory' for other files");
  }
  return files;
}

export interface ModelRegistryOptions extends EventLogOptions {}

export class ModelRegistry {
  readonly store: ObjectStore;
  readonly blobs: BlobStore;
  readonly versions: VersionRecords;
  readonly aliases: AliasRecords;
  readonly events: EventLog;
  readonly garbage: GarbageCollector;

  private constructor(store: ObjectStore, options: ModelRegistryOptions) {
    this.store = store;
    this.blobs = new BlobStore(store);
    this.versions = new VersionRecords(store);
    this.events = new EventLog(store, options);
    this.aliases = new AliasRecords(store, async (move) => {
      await this.events.append({ aliasMoved: move });
    });
    this.garbage = new GarbageCollector(store, this.versions);
  }

  static async open(store: ObjectStore, options: ModelRegistryOptions = {}): Promise<ModelRegistry> {
    const registry = new ModelRegistry(store, options);
    await registry.versions.ensureIndex();
    return registry;
  }

  /** Records a new version for an artifact already stored and checked, and announces it. */
  async createVersion(header: UploadHeader, artifact: StoredArtifact): Promise<ModelVersion> {
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
  async storeManifest(format: string, files: ManifestEntry[]): Promise<StoredArtifact> {
    checkManifest(format, files);
    for (const file of files) {
      const info = await this.blobs.info(file.sha256);
      if (!info) throw failedPrecondition(`file '${file.path}' (sha256 ${file.sha256}) is not stored; upload it with UploadBlob first`);
      if (info.sizeBytes !== file.sizeBytes) {
        throw invalidArgument(`file '${file.path}' is listed with ${file.sizeBytes} bytes, but its blob holds ${info.sizeBytes}`);
      }
      if (file.path.endsWith('.safetensors')) await this.checkSafetensors(file);
    }
    const bytes = manifestBytes(format, files);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const blob = await this.blobs.write((async function* () { yield bytes; })(), { expectedSha256: sha256, expectedSizeBytes: bytes.byteLength });
    return { sha256: blob.sha256, sizeBytes: blob.sizeBytes, signature: { inputs: [], outputs: [] }, files };
  }

  /** A safetensors file starts with an 8-byte little-endian header length and a JSON header whose offsets must fit the file. */
  private async checkSafetensors(file: ManifestEntry): Promise<void> {
    const invalid = (reason: string) => invalidArgument(`file '${file.path}' is not a valid safetensors file: ${reason}`);
    if (file.sizeBytes < 8) throw invalid('shorter than 8 bytes');
    const parts: Buffer[] = [];
    let have = 0;
    let want: number | undefined;
    for await (const chunk of this.blobs.read(file.sha256)) {
      parts.push(Buffer.from(chunk));
      have += chunk.byteLength;
      if (want === undefined && have >= 8) {
        const headerBytes = Number(Buffer.concat(parts).readBigUInt64LE(0));
        if (headerBytes > MAX_SAFETENSORS_HEADER_BYTES || 8 + headerBytes > file.sizeBytes) throw invalid(`its header claims ${headerBytes} bytes`);
        want = 8 + headerBytes;
      }
      if (want !== undefined && have >= want) break;
    }
    if (want === undefined || have < want) throw invalid('its blob ended early');
    const bytes = Buffer.concat(parts).subarray(0, want);
    let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
    try {
      header = JSON.parse(bytes.subarray(8).toString('utf8'));
    } catch {
      throw invalid('its header is not JSON');
    }
    let dataEnd = 0;
    for (const [name, tensor] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const offsets = tensor?.data_offsets;
      if (typeof tensor?.dtype !== 'string' || !Array.isArray(tensor.shape) || !Array.isArray(offsets) || offsets.length !== 2) {
        throw invalid(`tensor '${name}' lacks dtype, shape or data_offsets`);
      }
      dataEnd = Math.max(dataEnd, Number(offsets[1]));
    }
    if (want + dataEnd > file.sizeBytes) throw invalid(`its tensors end at byte ${want + dataEnd}, past the file's ${file.sizeBytes} bytes`);
  }

  /** A version by number (0: the newest) or by alias; NOT_FOUND says which part is missing. */
  async resolve(modelName: string, selector: { version?: number; alias?: string }): Promise<ModelVersion> {
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

  /** The aliases pointing at a version now, sorted. */
  async aliasesOf(modelName: string, version: number): Promise<string[]> {
    return (await this.aliases.list(modelName)).filter((alias) => alias.version === version).map((alias) => alias.alias);
  }

  private checkMove(request: MoveRequest): MoveRequest {
    checkModelName(request.modelName);
    checkAliasName(request.alias);
    if (request.reason.length > MAX_NOTE_CHARS) throw invalidArgument(`reason is longer than ${MAX_NOTE_CHARS} characters`);
    if (request.actor.length > 256) throw invalidArgument('actor is longer than 256 characters');
    return { ...request, actor: request.actor || 'unknown' };
  }

  /**
   * Points an alias at an existing version, or splits it between existing versions, by
   * compare-and-swap on `expectedVersion` and/or `expectedRevision`.
   */
  async setAlias(request: MoveRequest, version: number, split: AliasTarget[] = [], stickyParameter = ''): Promise<{ alias: Alias; move: AliasMove }> {
    const checked = this.checkMove(request);
    const destination = checkDestination(version, split, stickyParameter);
    for (const arm of destination.split.length > 0 ? destination.split : [destination]) {
      await this.resolve(checked.modelName, { version: arm.version });
    }
    return this.aliases.move(checked, destination);
  }

  /** Moves an alias back to its previous target. */
  rollbackAlias(request: MoveRequest): Promise<{ alias: Alias; move: AliasMove }> {
    return this.aliases.rollback(this.checkMove(request));
  }

  /** Fails NOT_FOUND unless the model has a version. */
  async requireModel(modelName: string): Promise<void> {
    checkModelName(modelName);
    if ((await this.versions.latestNumber(modelName)) === 0) throw notFound(`model '${modelName}' does not exist`);
  }

  async close(): Promise<void> {
    this.events.close();
    await this.store.close();
  }
}

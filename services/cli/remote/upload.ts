/**
 * Moving model bytes between the CLI and the registry, never whole in memory:
 *
 * - a model file: hashed first so the registry can verify what it receives (and, on S3 or GCS,
 *   write it straight to its final place), then streamed in chunks;
 * - a model directory: every file hashed, the ones the registry lacks uploaded as blobs, then
 *   the version recorded with the list of files (a manifest);
 * - a download: appended to `<file>.partial`, resumed from its size after an interruption,
 *   verified against its sha256, and only then renamed into place.
 */
import type { ClientWritableStream } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import type {
  ManifestEntry, RegistryClient, StatBlobsResponse, UploadBlobResponse, UploadHeader, UploadVersionRequest, UploadVersionResponse,
} from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import { unaryCall } from './clients.ts';
import { META_FILE } from '../lineage/index.ts';

/** Bytes per upload message. */
export const UPLOAD_CHUNK_BYTES = 1024 * 1024;

/** Called as bytes move: how many so far, out of how many. */
export type ProgressListener = (doneBytes: number, totalBytes: number) => void;

/** What the caller says about a version; sizes, digests and files are filled in here. */
export type VersionHeader = Pick<UploadHeader, 'modelName' | 'format' | 'lineage' | 'tags' | 'creator' | 'batching'> & Partial<Pick<UploadHeader, 'fileName'>>;

export async function sha256OfFile(path: string, onBytes: (bytes: number) => void = () => {}): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES })) {
    hash.update(chunk as Buffer);
    onBytes((chunk as Buffer).byteLength);
  }
  return hash.digest('hex');
}

/** Writes `chunks` to a client stream, pacing on the transport, then ends it. */
async function pump<T>(stream: ClientWritableStream<T>, messages: AsyncIterable<T>): Promise<void> {
  for await (const message of messages) {
    if (!stream.write(message)) await new Promise((resume) => stream.once('drain', resume));
  }
  stream.end();
}

/** Sends an upload (header, then chunks) and resolves with the registry's answer. */
function sendUpload<Req, Res>(
  open: (done: (error: Error | null, response: Res) => void) => ClientWritableStream<Req>,
  messages: AsyncIterable<Req>,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const stream = open((error, response) => (error ? reject(error) : resolve(response)));
    pump(stream, messages).catch((error: unknown) => {
      stream.cancel();
      reject(error);
    });
  });
}

async function* fileChunks(path: string, onBytes: (bytes: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES })) {
    onBytes((chunk as Buffer).byteLength);
    yield chunk as Buffer;
  }
}

/**
 * Uploads one model file as a new version. `onProgress` sees the hashing pass and then the
 * upload, each as bytes out of the file's size.
 */
export async function uploadModelFile(
  client: RegistryClient,
  path: string,
  header: VersionHeader,
  onProgress: ProgressListener = () => {},
  onPhase: (phase: 'hashing' | 'uploading') => void = () => {},
): Promise<UploadVersionResponse> {
  const { size } = await stat(path);
  onPhase('hashing');
  let hashed = 0;
  const sha256 = await sha256OfFile(path, (bytes) => onProgress((hashed += bytes), size));
  onPhase('uploading');
  let sent = 0;
  const full: UploadHeader = { ...header, fileName: header.fileName ?? basename(path), sizeBytes: size, sha256, files: [] };
  async function* messages(): AsyncGenerator<UploadVersionRequest> {
    yield { header: full };
    // A file that changes after the hashing pass fails the registry's check instead of storing silently.
    for await (const chunk of fileChunks(path, (bytes) => onProgress((sent += bytes), size))) yield { chunk };
  }
  return sendUpload((done) => client.uploadVersion(done), messages());
}

/** The files of a model directory, relative paths with '/' separators, sorted; `.git` and our metadata file left out. */
export async function listModelFiles(dir: string): Promise<Array<{ path: string; absolute: string; sizeBytes: number }>> {
  const files: Array<{ path: string; absolute: string; sizeBytes: number }> = [];
  const walk = async (current: string) => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const absolute = join(current, entry.name);
      if (entry.name === '.git' || entry.name === META_FILE) continue;
      // stat follows symbolic links, as a Hugging Face snapshot's files are.
      const info = await stat(absolute);
      if (info.isDirectory()) await walk(absolute);
      else if (info.isFile()) files.push({ path: relative(dir, absolute).split(sep).join('/'), absolute, sizeBytes: info.size });
    }
  };
  await walk(dir);
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Uploads one blob by digest. */
function uploadBlob(client: RegistryClient, path: string, sha256: string, sizeBytes: number, onBytes: (bytes: number) => void): Promise<UploadBlobResponse> {
  async function* messages() {
    yield { header: { sha256, sizeBytes } };
    for await (const chunk of fileChunks(path, onBytes)) yield { chunk };
  }
  return sendUpload((done) => client.uploadBlob(done), messages());
}

/**
 * Uploads a model directory as a new version: each file is hashed, the files the registry lacks
 * are uploaded (those it has are skipped), then the version is recorded with its file list.
 */
export async function uploadModelDirectory(
  client: RegistryClient,
  dir: string,
  header: VersionHeader,
  onProgress: ProgressListener = () => {},
  onPhase: (phase: 'hashing' | 'uploading') => void = () => {},
): Promise<UploadVersionResponse & { uploadedFiles: number; skippedFiles: number }> {
  const files = await listModelFiles(dir);
  if (files.length === 0) throw new NexusError(ErrorCode.INVALID_ARGUMENT, `${dir} holds no files`);
  const total = files.reduce((sum, file) => sum + file.sizeBytes, 0);
  onPhase('hashing');
  let hashed = 0;
  const entries: ManifestEntry[] = [];
  for (const file of files) {
    entries.push({ path: file.path, sha256: await sha256OfFile(file.absolute, (bytes) => onProgress((hashed += bytes), total)), sizeBytes: file.sizeBytes });
  }
  const present = new Set<string>();
  for (let start = 0; start < entries.length; start += 1000) {
    const { blobs } = await unaryCall<StatBlobsResponse>((done) =>
      client.statBlobs({ sha256: entries.slice(start, start + 1000).map((entry) => entry.sha256) }, done));
    for (const blob of blobs) if (blob.present) present.add(blob.sha256);
  }
  onPhase('uploading');
  const missing = files.filter((_, index) => !present.has(entries[index].sha256));
  const missingTotal = missing.reduce((sum, file) => sum + file.sizeBytes, 0);
  let sent = 0;
  const uploaded = new Set<string>();
  for (const file of missing) {
    const entry = entries[files.indexOf(file)];
    if (uploaded.has(entry.sha256)) continue; // the same bytes twice in one directory go up once
    await uploadBlob(client, file.absolute, entry.sha256, entry.sizeBytes, (bytes) => onProgress((sent += bytes), missingTotal));
    uploaded.add(entry.sha256);
  }
  const full: UploadHeader = { ...header, fileName: '', sizeBytes: 0, sha256: '', files: entries };
  const response = await sendUpload<UploadVersionRequest, UploadVersionResponse>((done) => client.uploadVersion(done), (async function* () {
    yield { header: full };
  })());
  return { ...response, uploadedFiles: uploaded.size, skippedFiles: files.length - missing.length };
}

/**
 * Downloads a blob into `path`, resuming from `<path>.partial` when an earlier attempt was
 * interrupted, and renames it into place only once its sha256 matches.
 */
export async function downloadBlob(
  client: RegistryClient,
  sha256: string,
  path: string,
  onBytes: (bytes: number) => void = () => {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.partial`;
  const offset = await stat(partial).then((info) => info.size, () => 0);
  onBytes(offset);
  let expected = offset;
  try {
    const stream = client.downloadArtifact({ sha256, offset });
    for await (const message of stream as AsyncIterable<{ chunk: Uint8Array; offset: number }>) {
      if (message.offset !== expected) {
        stream.cancel();
        throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${sha256}: chunk at offset ${message.offset}, expected ${expected}`);
      }
      await appendFile(partial, message.chunk);
      expected += message.chunk.byteLength;
      onBytes(message.chunk.byteLength);
    }
  } catch (error) {
    // The registry found the stored bytes corrupt: what arrived is worthless, resume nothing.
    if ((error as { code?: number }).code === ErrorCode.DATA_LOSS) await rm(partial, { force: true });
    throw error;
  }
  if (expected === 0) await appendFile(partial, new Uint8Array(0));
  const actual = await sha256OfFile(partial);
  if (actual !== sha256) {
    await rm(partial, { force: true });
    throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${sha256} arrived with sha256 ${actual}; discarded`);
  }
  await rename(partial, path);
}

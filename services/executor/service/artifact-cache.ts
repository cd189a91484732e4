/**
 * Fetches model artifacts from the registry by digest into a local cache directory, which several
 * executors may share (`nexus up --executors N`). Each download goes to a partial file of its own
 * (`<sha256>.<pid>.<random>.partial`, created exclusively), and nothing is used until its sha256
 * matches the digest it was asked for (an executor serves only artifacts it verified); only then
 * is it renamed to `<sha256>`, and a rename over a file another executor placed there meanwhile
 * replaces identical verified bytes. A download that sends nothing for the idle timeout is
 * cancelled (UNAVAILABLE), so no load waits on a stalled stream forever. A digest must be 64
 * lower-case hex characters before it names any file, and every path is checked to stay inside
 * the cache directory, so no digest can reach (or delete) a file elsewhere.
 *
 * Downloads stream to disk and are hashed as they arrive, never gathered in memory, so an
 * artifact of any size (an external data file past 2 GiB) costs no memory until it is read.
 * `fetchFile` gives the verified cached file's path; `stageDirectory` lays a directory
 * version's files out under their manifest paths as hard links to verified cached files
 * (`staged/<pid>.<random>/`, removed once the load has read them; ones left by a dead executor
 * are removed later), so a model that reads files beside it sees exactly the verified bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import type { RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { injectIntoMetadata } from '../../telemetry/tracing.ts';
import { ErrorCode, NexusError } from '../../domain/errors.ts';
import { checkSha256 } from './digest.ts';
import { checkStoredPath } from './directory-version.ts';
import type { StoredFile } from '../llm/checkpoint.ts';

/** How long a download may go without a chunk before it is cancelled, in milliseconds: 30 s. */
export const DEFAULT_DOWNLOAD_IDLE_MS = 30_000;

/** `<sha256>.<pid>.<random>.partial`: a download in progress, or one an executor left behind. */
const PARTIAL_NAME = /^[0-9a-f]{64}\.\d+\.[0-9a-f]{12}\.partial$/;

/** The folder of staged directory versions, inside the cache directory. */
const STAGED_FOLDER = 'staged';

/** `<pid>.<random>`: one load's staged directory. */
const STAGED_NAME = /^(\d+)\.[0-9a-f]{12}$/;

/** One read covers at most this much: a file handle reads at most 2 GiB - 1 bytes per call. */
const READ_CHUNK_BYTES = 1 << 30;

/** A directory version's files laid out for one load; `remove` deletes the layout (never the cached files). */
export interface StagedDirectory {
  readonly path: string;
  remove(): Promise<void>;
}

export interface ArtifactCacheOptions {
  /** Longest wait for the next chunk of a download, in milliseconds. Default DEFAULT_DOWNLOAD_IDLE_MS (30 s). */
  idleTimeoutMs?: number;
}

export class ArtifactCache {
  private readonly dir: string;
  private readonly registry: RegistryClient;
  private readonly idleTimeoutMs: number;
  /** Fetches in progress by digest; a settled one (failed or not) is removed, so a failure can be retried. */
  private readonly inFlight = new Map<string, Promise<string>>();
  /** Set once the partial files left by an executor that died mid-download have been looked for. */
  private sweptOrphans = false;

  constructor(dir: string, registry: RegistryClient, options: ArtifactCacheOptions = {}) {
    this.dir = resolve(dir);
    this.registry = registry;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_DOWNLOAD_IDLE_MS;
  }

  /**
   * The verified bytes of an artifact, downloading it when not cached. Rejects INVALID_ARGUMENT
   * for a digest that is not 64 lower-case hex characters, DATA_LOSS for bytes that do not match
   * it, UNAVAILABLE for a download idle past the timeout.
   */
  async fetch(sha256: string): Promise<Uint8Array> {
    checkSha256('sha256', sha256);
    const path = this.pathInside(sha256);
    const cached = await readWhole(path).catch(() => undefined);
    if (cached && createHash('sha256').update(cached).digest('hex') === sha256) return cached;
    // Downloaded (and verified as it was written) by fetchFile.
    return readWhole(await this.fetchFile(sha256));
  }

  /**
   * The path of an artifact's verified file in the cache, downloading it when not cached (it
   * never passes through memory whole); rejects as fetch does. The file may be replaced by
   * identical bytes (another executor's verified download) but never changed.
   */
  fetchFile(sha256: string): Promise<string> {
    try {
      checkSha256('sha256', sha256);
    } catch (error) {
      return Promise.reject(error);
    }
    let pending = this.inFlight.get(sha256);
    if (!pending) {
      pending = this.fetchOnce(sha256).finally(() => this.inFlight.delete(sha256));
      this.inFlight.set(sha256, pending);
    }
    return pending;
  }

  /**
   * Lays `files` out in a fresh directory under their manifest paths, each the verified cached
   * artifact of its sha256 (a hard link, a copy where links fail). Rejects INVALID_ARGUMENT for
   * a path that is absolute or climbs out, and as fetchFile does for each file.
   */
  async stageDirectory(files: readonly StoredFile[]): Promise<StagedDirectory> {
    for (const file of files) checkStoredPath(file.path);
    await this.prepare();
    const staged = this.pathInside(`${STAGED_FOLDER}${sep}${process.pid}.${randomBytes(6).toString('hex')}`, 2);
    const remove = () => rm(staged, { recursive: true, force: true });
    try {
      await mkdir(staged, { recursive: true });
      for (const file of files) {
        const source = await this.fetchFile(file.sha256);
        const target = resolve(staged, file.path);
        if (!target.startsWith(staged + sep)) throw new NexusError(ErrorCode.INVALID_ARGUMENT, `stored file path '${file.path}' resolves outside the staged directory`);
        await mkdir(dirname(target), { recursive: true });
        await link(source, target).catch(() => copyFile(source, target));
      }
    } catch (error) {
      await remove();
      throw error;
    }
    return { path: staged, remove };
  }

  /** Creates the cache directory, and once per cache removes what dead executors left behind. */
  private async prepare(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    if (!this.sweptOrphans) {
      this.sweptOrphans = true;
      await this.removeOrphanedPartials();
      await this.removeOrphanedStaging();
    }
  }

  private async fetchOnce(sha256: string): Promise<string> {
    await this.prepare();
    const finalPath = this.pathInside(sha256);
    if (await stat(finalPath).then(() => true, () => false)) {
      if (await sha256OfFile(finalPath) === sha256) return finalPath;
      await rm(finalPath, { force: true }); // corrupted on disk: fetch it again
    }
    // Our own name, so executors sharing the directory never write into one file.
    const partialPath = `${finalPath}.${process.pid}.${randomBytes(6).toString('hex')}.partial`;
    try {
      const actual = await this.download(sha256, partialPath);
      if (actual !== sha256) {
        throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${sha256} arrived with sha256 ${actual}; refusing to load it`);
      }
      await rename(partialPath, finalPath);
      return finalPath;
    } finally {
      await rm(partialPath, { force: true });
    }
  }

  /**
   * Deletes staged directories of executors no longer running (their pid gone) that are older
   * than ten idle timeouts; a load in progress belongs to a live process.
   */
  private async removeOrphanedStaging(): Promise<void> {
    const folder = this.pathInside(STAGED_FOLDER);
    const staleBeforeMs = Date.now() - 10 * this.idleTimeoutMs;
    for (const name of await readdir(folder).catch(() => [] as string[])) {
      const pid = STAGED_NAME.exec(name)?.[1];
      if (pid === undefined || isRunning(Number(pid))) continue;
      const path = this.pathInside(`${STAGED_FOLDER}${sep}${name}`, 2);
      const modified = await stat(path).then((info) => info.mtimeMs, () => Infinity);
      if (modified < staleBeforeMs) await rm(path, { recursive: true, force: true });
    }
  }

  /**
   * Deletes partial files nobody has written to for ten idle timeouts: a download in progress
   * writes at least once per idle timeout or is cancelled, so such a file was left by an
   * executor that died mid-download (whichever executor sharing the directory it was).
   */
  private async removeOrphanedPartials(): Promise<void> {
    const staleBeforeMs = Date.now() - 10 * this.idleTimeoutMs;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!PARTIAL_NAME.test(name)) continue;
      const path = this.pathInside(name);
      const modified = await stat(path).then((info) => info.mtimeMs, () => Infinity);
      if (modified < staleBeforeMs) await rm(path, { force: true });
    }
  }

  /**
   * The cache file (or, at `depth` 2, a staged directory) of a checked name; throws
   * INVALID_ARGUMENT if it would leave the cache directory.
   */
  private pathInside(name: string, depth = 1): string {
    const path = resolve(this.dir, name);
    const inside = relative(this.dir, path);
    if (inside === '' || inside.startsWith('..') || inside.split(sep).length !== depth || resolve(this.dir, inside) !== path) {
      throw new NexusError(ErrorCode.INVALID_ARGUMENT, `artifact name '${name}' resolves to ${path}, outside the cache directory ${this.dir}`);
    }
    return path;
  }

  /** Streams the artifact into `path` (created exclusively), within the idle timeout; returns the sha256 of what arrived. */
  private async download(sha256: string, path: string): Promise<string> {
    const file = await open(path, 'wx');
    // The registry's span joins the trace of the load that asked for these bytes.
    const stream = this.registry.downloadArtifact({ sha256, offset: 0 }, injectIntoMetadata(new Metadata()));
    let idle = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idle = true;
        stream.cancel();
      }, this.idleTimeoutMs);
    };
    const hash = createHash('sha256');
    let expectedOffset = 0;
    try {
      arm();
      for await (const message of stream as AsyncIterable<{ chunk: Uint8Array; offset: number }>) {
        arm();
        if (message.offset !== expectedOffset) {
          stream.cancel();
          throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${sha256}: chunk at offset ${message.offset}, expected ${expectedOffset}`);
        }
        await file.write(message.chunk);
        hash.update(message.chunk);
        expectedOffset += message.chunk.byteLength;
      }
    } catch (error) {
      if (idle) {
        throw new NexusError(ErrorCode.UNAVAILABLE,
          `artifact ${sha256}: the registry sent nothing for ${this.idleTimeoutMs} ms after ${expectedOffset} bytes; download cancelled`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
      await file.close();
    }
    if (idle) throw new NexusError(ErrorCode.UNAVAILABLE, `artifact ${sha256}: download cancelled after ${this.idleTimeoutMs} ms without a chunk`);
    return hash.digest('hex');
  }
}

/** Whether a process with this pid runs here (EPERM: it runs, as another user). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A file's sha256, read as a stream. */
async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A whole file in one buffer, in reads of at most READ_CHUNK_BYTES (readFile stops at 2 GiB). */
async function readWhole(path: string): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const bytes = new Uint8Array(size);
    for (let done = 0; done < size;) {
      const { bytesRead } = await file.read(bytes, done, Math.min(READ_CHUNK_BYTES, size - done), done);
      if (bytesRead === 0) throw new NexusError(ErrorCode.DATA_LOSS, `cached artifact ${path} ended after ${done} of its ${size} bytes`);
      done += bytesRead;
    }
    return bytes;
  } finally {
    await file.close();
  }
}

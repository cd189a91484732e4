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
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import type { RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { injectIntoMetadata } from '../../telemetry/tracing.ts';
import { ErrorCode, NexusError } from '../../domain/errors.ts';
import { checkSha256 } from './digest.ts';

/** How long a download may go without a chunk before it is cancelled, in milliseconds: 30 s. */
export const DEFAULT_DOWNLOAD_IDLE_MS = 30_000;

/** `<sha256>.<pid>.<random>.partial`: a download in progress, or one an executor left behind. */
const PARTIAL_NAME = /^[0-9a-f]{64}\.\d+\.[0-9a-f]{12}\.partial$/;

export interface ArtifactCacheOptions {
  /** Longest wait for the next chunk of a download, in milliseconds. Default DEFAULT_DOWNLOAD_IDLE_MS (30 s). */
  idleTimeoutMs?: number;
}

export class ArtifactCache {
  private readonly dir: string;
  private readonly registry: RegistryClient;
  private readonly idleTimeoutMs: number;
  /** Fetches in progress by digest; a settled one (failed or not) is removed, so a failure can be retried. */
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();
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
  fetch(sha256: string): Promise<Uint8Array> {
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

  private async fetchOnce(sha256: string): Promise<Uint8Array> {
    await mkdir(this.dir, { recursive: true });
    if (!this.sweptOrphans) {
      this.sweptOrphans = true;
      await this.removeOrphanedPartials();
    }
    const finalPath = this.pathInside(sha256);
    if (await stat(finalPath).then(() => true, () => false)) {
      const cached = await readFile(finalPath);
      if (createHash('sha256').update(cached).digest('hex') === sha256) return cached;
      await rm(finalPath, { force: true }); // corrupted on disk: fetch it again
    }
    // Our own name, so executors sharing the directory never write into one file.
    const partialPath = `${finalPath}.${process.pid}.${randomBytes(6).toString('hex')}.partial`;
    try {
      const bytes = await this.download(sha256, partialPath);
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== sha256) {
        throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${sha256} arrived with sha256 ${actual}; refusing to load it`);
      }
      await rename(partialPath, finalPath);
      return bytes;
    } finally {
      await rm(partialPath, { force: true });
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

  /** The cache file of a checked digest; throws INVALID_ARGUMENT if it would leave the cache directory. */
  private pathInside(name: string): string {
    const path = resolve(this.dir, name);
    const inside = relative(this.dir, path);
    if (inside === '' || inside.startsWith('..') || inside.includes(sep) || resolve(this.dir, inside) !== path) {
      throw new NexusError(ErrorCode.INVALID_ARGUMENT, `artifact name '${name}' resolves to ${path}, outside the cache directory ${this.dir}`);
    }
    return path;
  }

  /** Streams the artifact into `path` (created exclusively) and returns its bytes, within the idle timeout. */
  private async download(sha256: string, path: string): Promise<Uint8Array> {
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
    const chunks: Uint8Array[] = [];
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
        chunks.push(message.chunk);
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
    return Buffer.concat(chunks);
  }
}

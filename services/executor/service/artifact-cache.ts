/**
 * Fetches model artifacts from the registry by digest into a local cache directory. A download
 * resumes from the bytes already on disk, and nothing is used until its sha256 matches the digest
 * it was asked for (an executor serves only artifacts it verified). A digest must be 64 lower-case
 * hex characters before it names any file, and every path is checked to stay inside the cache
 * directory, so no digest can reach (or delete) a file elsewhere.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import type { RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { injectIntoMetadata } from '../../telemetry/tracing.ts';
import { ErrorCode, NexusError } from '../../domain/errors.ts';
import { checkSha256 } from './digest.ts';

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export class ArtifactCache {
  private readonly dir: string;
  private readonly registry: RegistryClient;
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();

  constructor(dir: string, registry: RegistryClient) {
    this.dir = resolve(dir);
    this.registry = registry;
  }

  /**
   * The verified bytes of an artifact, downloading (or resuming) it when not cached. Rejects
   * INVALID_ARGUMENT for a digest that is not 64 lower-case hex characters.
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
    const finalPath = this.pathInside(sha256);
    const partialPath = `${finalPath}.partial`;
    if (await stat(finalPath).then(() => true, () => false)) {
      const cached = await readFile(finalPath);
      if (createHash('sha256').update(cached).digest('hex') === sha256) return cached;
      await rm(finalPath, { force: true }); // corrupted on disk: fetch it again
    }
    const offset = await stat(partialPath).then((info) => info.size, () => 0);
    await this.download(sha256, partialPath, offset);
    const actual = await sha256OfFile(partialPath);
    if (actual !== sha256) {
      await rm(partialPath, { force: true });
      throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${sha256} arrived with sha256 ${actual}; refusing to load it`);
    }
    await rename(partialPath, finalPath);
    return readFile(finalPath);
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

  private async download(sha256: string, path: string, offset: number): Promise<void> {
    // The registry's span joins the trace of the load that asked for these bytes.
    const stream = this.registry.downloadArtifact({ sha256, offset }, injectIntoMetadata(new Metadata()));
    let expectedOffset = offset;
    for await (const message of stream as AsyncIterable<{ chunk: Uint8Array; offset: number }>) {
      if (message.offset !== expectedOffset) {
        stream.cancel();
        throw new NexusError(ErrorCode.DATA_LOSS, `artifact ${sha256}: chunk at offset ${message.offset}, expected ${expectedOffset}`);
      }
      await appendFile(path, message.chunk);
      expectedOffset += message.chunk.byteLength;
    }
  }
}

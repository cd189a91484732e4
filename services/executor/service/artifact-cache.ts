/**
 * Fetches model artifacts from the registry by digest into a local cache directory. A download
 * resumes from the bytes already on disk, and nothing is used until its sha256 matches the digest
 * it was asked for (an executor serves only artifacts it verified).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import type { RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { injectIntoMetadata } from '../../telemetry/tracing.ts';
import { ErrorCode, NexusError } from '../../domain/errors.ts';

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
    this.dir = dir;
    this.registry = registry;
  }

  /** The verified bytes of an artifact, downloading (or resuming) it when not cached. */
  fetch(sha256: string): Promise<Uint8Array> {
    let pending = this.inFlight.get(sha256);
    if (!pending) {
      pending = this.fetchOnce(sha256).finally(() => this.inFlight.delete(sha256));
      this.inFlight.set(sha256, pending);
    }
    return pending;
  }

  private async fetchOnce(sha256: string): Promise<Uint8Array> {
    await mkdir(this.dir, { recursive: true });
    const finalPath = join(this.dir, sha256);
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

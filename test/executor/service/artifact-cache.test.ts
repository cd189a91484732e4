/**
 * The artifact cache against fake registries: a stalled download is cancelled after the idle
 * timeout (and the next fetch downloads again), and executors sharing one cache directory
 * download the same digest at once without mixing their bytes.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import type { RegistryClient } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ArtifactCache } from '../../../services/executor/service/artifact-cache.ts';

const ARTIFACT = new Uint8Array(Array.from({ length: 4096 }, (_, index) => index % 251));
const SHA = createHash('sha256').update(ARTIFACT).digest('hex');
const CHUNK = 1024;

/** A download stream the test feeds: chunks of ARTIFACT with `gapMs` between them, or a stall after `stallAfter` chunks. */
function downloadStream(gapMs: number, stallAfter = Infinity) {
  const stream = new PassThrough({ objectMode: true }) as PassThrough & { cancel(): void; cancelled: boolean };
  stream.cancelled = false;
  stream.cancel = () => {
    stream.cancelled = true;
    stream.destroy(Object.assign(new Error('1 CANCELLED: Cancelled on client'), { code: 1 }));
  };
  void (async () => {
    for (let offset = 0, sent = 0; offset < ARTIFACT.byteLength; offset += CHUNK, sent += 1) {
      if (sent >= stallAfter) return; // sends nothing more, never ends
      await new Promise((resolve) => setTimeout(resolve, gapMs));
      if (stream.cancelled) return;
      stream.write({ offset, chunk: ARTIFACT.slice(offset, offset + CHUNK) });
    }
    stream.end();
  })();
  return stream;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-artifacts-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('artifact downloads', () => {
  it('cancels a download idle past the timeout as UNAVAILABLE, and the next fetch downloads again', async () => {
    const streams: Array<ReturnType<typeof downloadStream>> = [];
    const registry = {
      downloadArtifact: () => {
        const stream = streams.length === 0 ? downloadStream(1, 1) : downloadStream(1);
        streams.push(stream);
        return stream;
      },
    } as unknown as RegistryClient;
    const cache = new ArtifactCache(dir, registry, { idleTimeoutMs: 100 });
    const started = performance.now();
    await expect(cache.fetch(SHA)).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE, message: expect.stringMatching(/nothing for 100 ms after 1024 bytes/) });
    expect(performance.now() - started).toBeLessThan(5000);
    expect(streams[0].cancelled).toBe(true);
    expect(await readdir(dir)).toEqual([]); // its partial file is gone
    expect(new Uint8Array(await cache.fetch(SHA))).toEqual(ARTIFACT);
    expect(streams).toHaveLength(2);
  });

  it('lets executors sharing a cache directory download one digest at once, each into its own partial file', async () => {
    const registry = { downloadArtifact: () => downloadStream(5) } as unknown as RegistryClient;
    const caches = [new ArtifactCache(dir, registry), new ArtifactCache(dir, registry), new ArtifactCache(dir, registry)];
    const fetched = await Promise.all(caches.map((cache) => cache.fetch(SHA)));
    for (const bytes of fetched) expect(new Uint8Array(bytes)).toEqual(ARTIFACT);
    expect(await readdir(dir)).toEqual([SHA]);
    expect(new Uint8Array(await readFile(join(dir, SHA)))).toEqual(ARTIFACT);
  });

  it('deletes partial files left by an executor that died mid-download, and keeps fresh ones', async () => {
    const stale = `${SHA}.4242.0123456789ab.partial`;
    const fresh = `${SHA}.4343.ba9876543210.partial`;
    const unrelated = 'notes.txt';
    for (const name of [stale, fresh, unrelated]) await writeFile(join(dir, name), 'x');
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(join(dir, stale), longAgo, longAgo);
    await utimes(join(dir, unrelated), longAgo, longAgo);
    const registry = { downloadArtifact: () => downloadStream(1) } as unknown as RegistryClient;
    const cache = new ArtifactCache(dir, registry, { idleTimeoutMs: 1_000 });
    expect(new Uint8Array(await cache.fetch(SHA))).toEqual(ARTIFACT);
    expect((await readdir(dir)).sort()).toEqual([SHA, fresh, unrelated].sort());
  });
});

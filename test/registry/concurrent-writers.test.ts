/**
 * Consistency with no database besides the store: two registry processes over one local
 * directory, and 8 writer processes storing 10 versions each through either of them, get 80
 * distinct, gap-free version numbers, and the event log announces each version exactly once.
 */
import { credentials } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RegistryClient, WatchRequest, type ListVersionsResponse, type WatchResponse } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { unaryCall } from '../../services/cli/remote/index.ts';
import { REPO_ROOT, startRegistryProcess, type RegistryProcess } from './fixtures.ts';

const WRITERS = 8;
const VERSIONS_EACH = 10;

let dataDir: string;
let registries: RegistryProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nexus-writers-'));
  const store = join(dataDir, 'store');
  registries = await Promise.all([startRegistryProcess(['--data-dir', store]), startRegistryProcess(['--data-dir', store])]);
});

afterAll(async () => {
  for (const registry of registries) await registry.stop();
  await rm(dataDir, { recursive: true, force: true });
});

it('gives 8 writer processes through 2 registry processes 80 distinct, gap-free numbers', async () => {
  const results = await Promise.all(Array.from({ length: WRITERS }, (_, writer) =>
    promisify(execFile)(process.execPath, [
      join(REPO_ROOT, 'test/registry/writer-process.ts'), registries[writer % 2].address, 'contended', String(VERSIONS_EACH), String(writer + 1),
    ]).then(({ stdout }) => JSON.parse(stdout) as number[])));

  const numbers = results.flat().sort((a, b) => a - b);
  expect(numbers).toEqual(Array.from({ length: WRITERS * VERSIONS_EACH }, (_, index) => index + 1));
  // Each writer saw its own numbers increase: a version never takes a number below one already handed out to it.
  for (const mine of results) expect(mine).toEqual([...mine].sort((a, b) => a - b));

  // Both registries list the same 80 versions, each with the writer that made it.
  for (const registry of registries) {
    const client = new RegistryClient(registry.address, credentials.createInsecure());
    const { versions } = await unaryCall<ListVersionsResponse>((done) => client.listVersions({ modelName: 'contended' }, done));
    client.close();
    expect(versions.map((version) => version.version)).toEqual(numbers);
    expect(new Set(versions.map((version) => version.sha256)).size).toBe(WRITERS * VERSIONS_EACH);
  }

  // The event log holds one event per version, with gap-free cursors.
  const client = new RegistryClient(registries[1].address, credentials.createInsecure());
  const events = await new Promise<WatchResponse[]>((resolve, reject) => {
    const seen: WatchResponse[] = [];
    const stream = client.watch(WatchRequest.fromPartial({ afterCursor: 0 }));
    stream.on('data', (message: WatchResponse) => {
      if (!message.caughtUp) return void seen.push(message);
      stream.cancel();
      resolve(seen);
    });
    stream.on('error', (error: { code: number }) => (error.code === 1 ? undefined : reject(error)));
  });
  client.close();
  expect(events.map((event) => event.cursor)).toEqual(events.map((_, index) => index + 1));
  expect(events.map((event) => event.versionCreated!.version).sort((a, b) => a - b)).toEqual(numbers);
}, 60_000);

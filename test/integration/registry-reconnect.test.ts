/**
 * The router's Watch stream across registry outages: while its registry is down, models already
 * served keep serving, and what happened meanwhile (through a second registry over the same
 * store) is caught up from the router's cursor once the registry is back, with no request failing.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;
let second: RunningRegistry;
let restarted: RunningRegistry | undefined;
const models = [42, 43, 44].map((seed) => trainIrisModel({ seed }));

beforeAll(async () => {
  cluster = await startCluster();
  // Another registry process over the same store, as in a replicated deployment.
  second = await startRegistry({ dataDir: join(cluster.dataDir, 'registry'), watchPollIntervalMs: 50 });
  await cluster.store('iris', models[0].onnx);
  await cluster.waitUntilReady('iris');
});

afterAll(async () => {
  await cluster?.stop();
  await restarted?.shutdown(1000);
  await second?.shutdown(1000);
});

const ask = (modelVersion = '') => cluster.infer({
  modelName: 'iris', modelVersion,
  inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents([6.0, 2.9, 4.5, 1.5]) }],
}, 10_000);

/** Asks until the answer comes from `version`, failing on any error or after `timeoutMs`. */
async function untilServedBy(version: string, modelVersion = '', timeoutMs = 30_000): Promise<void> {
  for (const started = Date.now(); ;) {
    const response = await ask(modelVersion);
    if (response.modelVersion === version) return;
    expect(Date.now() - started, `still answered by ${response.modelVersion}`).toBeLessThan(timeoutMs);
    await new Promise((wake) => setTimeout(wake, 50));
  }
}

/** Stores ONNX bytes as a new version of iris through the registry at `address`. */
async function storeThrough(address: string, onnx: Uint8Array): Promise<void> {
  const path = join(cluster.dataDir, `iris-${randomUUID()}.onnx`);
  await writeFile(path, onnx);
  const stored = await cluster.cli(['store', path, 'iris', '--registry', address]);
  expect(stored.code, stored.stderr).toBe(0);
}

async function promoteThrough(address: string, version: string): Promise<void> {
  const promoted = await cluster.cli(['promote', 'iris', version, 'production', '--registry', address]);
  expect(promoted.code, promoted.stderr).toBe(0);
}

it('catches up from its cursor on what happened while its registry was down, failing no request', async () => {
  expect((await ask()).modelVersion).toBe('1');
  const cursorBefore = cluster.router.watcher.cursor!;
  expect(cursorBefore).toBeGreaterThan(0);
  const resyncs = vi.spyOn(cluster.router.catalog, 'resync');

  const address = cluster.registry.address;
  await cluster.registry.shutdown(100);
  // Served models keep serving while the registry is away.
  expect((await ask()).modelVersion).toBe('1');

  // Meanwhile, through the other registry: a new version, and production created on it.
  await storeThrough(second.address, models[1].onnx);
  await promoteThrough(second.address, '2');
  expect((await ask()).modelVersion).toBe('1');
  expect(cluster.router.watcher.live).toBe(false);

  // The registry comes back on the same address; the router resumes from its cursor.
  restarted = await startRegistry({ address, dataDir: join(cluster.dataDir, 'registry') });
  await untilServedBy('2');
  expect(cluster.router.watcher.cursor).toBe(cursorBefore + 2);
  // Resumed, not re-read: the cursor vouched for continuity.
  expect(resyncs).not.toHaveBeenCalled();

  // And the resumed stream is live: a move made now is followed too.
  await storeThrough(address, models[2].onnx);
  await promoteThrough(address, '3');
  await untilServedBy('3', 'production');
  expect(cluster.router.watcher.cursor).toBe(cursorBefore + 4);
}, 90_000);

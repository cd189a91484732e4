/**
 * A registry killed halfway through an upload: after a restart nothing of that upload is visible
 * (no version, no blob), only a leftover under uploads/, which `nexus gc` lists and then deletes.
 */
import { credentials, status } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { GetVersionRequest, RegistryClient, UploadHeader } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { unaryCall } from '../../services/cli/remote/index.ts';
import { hugeOnnxModel, REPO_ROOT, startRegistryProcess, type RegistryProcess } from './fixtures.ts';

let dataDir: string | undefined;
let registry: RegistryProcess | undefined;

afterAll(async () => {
  await registry?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('shows nothing of an upload whose registry was killed halfway, and collects what it left', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nexus-crash-'));
  const store = join(dataDir, 'store');
  registry = await startRegistryProcess(['--data-dir', store]);
  const model = hugeOnnxModel(64 * 1024 * 1024);
  let client = new RegistryClient(registry.address, credentials.createInsecure());
  let sent = 0;
  const outcome = new Promise<{ code?: number }>((resolve) => {
    const stream = client.uploadVersion((error) => resolve(error ?? {}));
    void (async () => {
      stream.write({ header: UploadHeader.fromPartial({ modelName: 'crashed', format: 'onnx', sizeBytes: model.sizeBytes }) });
      for await (const chunk of model.chunks()) {
        if (!stream.write({ chunk })) await new Promise((resume) => stream.once('drain', resume));
        sent += chunk.byteLength;
        if (sent >= model.sizeBytes / 2) {
          registry!.process.kill('SIGKILL');
          break;
        }
      }
    })().catch(() => undefined);
  });
  expect((await outcome).code).toBe(status.UNAVAILABLE);
  client.close();
  await registry.stop();

  const leftovers = await readdir(join(store, 'uploads'));
  expect(leftovers.length).toBe(1); // the half-written temporary file, under no blob's name
  expect(await readdir(join(store, 'blobs/sha256')).catch(() => [])).toEqual([]);

  // The server's minimum age would keep a fresh leftover for an hour; this registry allows 0.
  registry = await startRegistryProcess(['--data-dir', store, '--gc-min-age-seconds', '0']);
  client = new RegistryClient(registry.address, credentials.createInsecure());
  await expect(unaryCall((done) => client.getVersion(GetVersionRequest.fromPartial({ modelName: 'crashed' }), done)))
    .rejects.toMatchObject({ code: status.NOT_FOUND });
  client.close();

  const cli = (args: string[]) => promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), ...args, '--registry', registry!.address]);
  const listed = JSON.parse((await cli(['gc', '--min-age-seconds', '0', '--json'])).stdout);
  expect(listed).toMatchObject({ deleted: false, garbage: [{ key: `uploads/${leftovers[0]}`, sha256: '' }] });
  expect(await readdir(join(store, 'uploads'))).toEqual(leftovers); // a dry run deletes nothing
  const deleted = JSON.parse((await cli(['gc', '--min-age-seconds', '0', '--delete', '--json'])).stdout);
  expect(deleted).toMatchObject({ deleted: true, garbage: [{ key: `uploads/${leftovers[0]}` }] });
  expect(await readdir(join(store, 'uploads'))).toEqual([]);
}, 60_000);

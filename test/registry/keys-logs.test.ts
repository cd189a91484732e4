/**
 * No key reaches the registry's logs: a registry process with authentication on (the default)
 * and debug logging writes its bootstrap admin key file, creates, uses and revokes keys, and
 * refuses forged and revoked ones; everything it printed is searched for every key, secret and
 * token that crossed it. The log does say where the bootstrap key file is.
 */
import { credentials, status } from '@grpc/grpc-js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CreateKeyRequest, KeysClient, type CreateKeyResponse } from '../../services/protocol/generated/nexus/auth/v1/keys.ts';
import { RegistryClient } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { bearerInterceptor, unaryCall, uploadModelFile } from '../../services/cli/remote/index.ts';
import { startRegistryProcess, tinyModel, type RegistryProcess } from './fixtures.ts';

let work: string;
let registry: RegistryProcess;
let keyFile: string;

const clients = (token: string) => ({
  keys: new KeysClient(registry.address, credentials.createInsecure(), { interceptors: [bearerInterceptor(token)] }),
  registry: new RegistryClient(registry.address, credentials.createInsecure(), { interceptors: [bearerInterceptor(token)] }),
});

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-key-logs-'));
  keyFile = join(work, 'credentials', 'admin.key');
  registry = await startRegistryProcess(['--data-dir', join(work, 'store'), '--bootstrap-admin-key-file', keyFile], { NEXUS_LOG_LEVEL: 'debug', NEXUS_INSECURE: '' });
});

afterAll(async () => {
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

it('never logs a key, a secret or a presented token', async () => {
  const adminKey = (await readFile(keyFile, 'utf8')).trim();
  const admin = clients(adminKey);
  const writer = await unaryCall<CreateKeyResponse>((done) => admin.keys.createKey(CreateKeyRequest.fromPartial({ role: 'write', name: 'ci' }), done));
  const modelPath = join(work, 'model.onnx');
  await writeFile(modelPath, tinyModel(1));
  const writing = clients(writer.key);
  await uploadModelFile(writing.registry, modelPath, { modelName: 'iris', format: 'onnx', lineage: undefined, tags: {}, creator: 'ci', batching: undefined });
  await expect(unaryCall((done) => writing.keys.listKeys({}, done))).rejects.toMatchObject({ code: status.PERMISSION_DENIED });

  const forgedKey = `${writer.key.slice(0, 17)}${'Z'.repeat(43)}`;
  const jwtLike = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLXRoYXQtZG9lcy1ub3QtdmVyaWZ5';
  for (const token of [forgedKey, jwtLike]) {
    await expect(unaryCall((done) => clients(token).registry.listModels({}, done))).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  }
  await unaryCall((done) => admin.keys.revokeKey({ id: writer.info!.id }, done));
  await expect(unaryCall((done) => writing.registry.listModels({}, done))).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  for (const client of [admin, writing]) {
    client.keys.close();
    client.registry.close();
  }

  const output = registry.output();
  // The run logged the calls it refused (debug) and the key it wrote, so the search had something to search.
  expect(output).toContain('call refused');
  expect(output).toContain(keyFile);
  expect(output).toContain(writer.info!.id);
  for (const secret of [adminKey, adminKey.slice(17), writer.key, writer.key.slice(17), forgedKey.slice(17), jwtLike]) {
    expect(output.includes(secret), `the log holds '${secret.slice(0, 8)}...'`).toBe(false);
  }
});

/**
 * A key limited to some models does not learn the names of the others: the registry's ListModels
 * and a Watch without a model name leave out every model its globs do not cover, while a key
 * without globs and the router's certificate see them all. (Calls that name a model outside the
 * globs are refused; security-matrix.test.ts checks those.)
 */
import { credentials, Metadata, type ChannelCredentials } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SERVICE_IDENTITIES } from '../../services/auth/roles.ts';
import { RegistryClient, UploadHeader, type ListModelsResponse, type WatchResponse } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { channelCredentials, serverCredentials } from '../../services/tls/credentials.ts';
import { ensureServiceMaterial, loadServiceMaterial } from '../../services/tls/material.ts';
import { tinyModel } from '../registry/fixtures.ts';

const NO_LIMITS = { requestsPerSecond: 0, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 };
let dir: string;
let registry: RunningRegistry;
let caOnly: ChannelCredentials;
let routerCertificate: ChannelCredentials;
const clients: RegistryClient[] = [];

async function store(modelName: string, seed: number) {
  const bytes = tinyModel(seed);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await registry.registry.upload(UploadHeader.fromPartial({ modelName, format: 'onnx', creator: 'test', sha256, sizeBytes: bytes.byteLength }),
    (async function* () { yield bytes; })());
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-model-scope-'));
  await ensureServiceMaterial(join(dir, 'tls'), SERVICE_IDENTITIES);
  const registryMaterial = await loadServiceMaterial(join(dir, 'tls'), 'registry');
  caOnly = credentials.createSsl(registryMaterial.caPem);
  routerCertificate = channelCredentials(await loadServiceMaterial(join(dir, 'tls'), 'router'), 'registry');
  registry = await startRegistry({ dataDir: join(dir, 'registry'), credentials: serverCredentials(registryMaterial, { clientCertificate: 'optional' }), auth: {} });
  await store('iris-small', 1);
  await store('resnet', 2);
  await store('iris-large', 3);
  await registry.registry.setAlias({ modelName: 'resnet', alias: 'production', reason: '', actor: 'test' }, 1, [], '');
  await registry.registry.setAlias({ modelName: 'iris-small', alias: 'production', reason: '', actor: 'test' }, 1, [], '');
});

afterAll(async () => {
  for (const client of clients) client.close();
  await registry?.shutdown(100);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A client presenting `token` over TLS trusting the CA, or the router's certificate when no token is given. */
function clientFor(token: string | undefined): { client: RegistryClient; metadata: Metadata } {
  const client = new RegistryClient(registry.address, token ? caOnly : routerCertificate);
  clients.push(client);
  const metadata = new Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return { client, metadata };
}

async function listedModels(token: string | undefined): Promise<string[]> {
  const { client, metadata } = clientFor(token);
  const { latest } = await new Promise<ListModelsResponse>((resolve, reject) =>
    client.listModels({}, metadata, (error, response) => (error ? reject(error) : resolve(response))));
  return latest.map((version) => version.modelName).sort();
}

/** What a Watch from the start, for every model, shows until it has caught up: "created <model>" and "moved <model>@<alias>". */
async function watchedEvents(token: string | undefined): Promise<string[]> {
  const { client, metadata } = clientFor(token);
  const stream = client.watch({ afterCursor: 0, fromNow: false, modelName: '' }, metadata, { deadline: Date.now() + 10_000 });
  const seen: string[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (message: WatchResponse) => {
      if (message.versionCreated) seen.push(`created ${message.versionCreated.modelName}`);
      if (message.aliasMoved) seen.push(`moved ${message.aliasMoved.modelName}@${message.aliasMoved.alias}`);
      if (message.caughtUp) {
        stream.cancel();
        resolve();
      }
    });
    stream.on('error', (error: { code: number }) => (error.code === 1 ? resolve() : reject(error)));
  });
  return seen;
}

it('lists and watches only the models a key\'s globs cover', async () => {
  const { key } = await registry.keys.create({ name: 'iris-only', role: 'infer', models: ['iris-*'], limits: NO_LIMITS }, 'test');
  expect(await listedModels(key)).toEqual(['iris-large', 'iris-small']);
  expect(await watchedEvents(key)).toEqual(['created iris-small', 'created iris-large', 'moved iris-small@production']);
});

it('lists and watches every model for a key without globs and for the router\'s certificate', async () => {
  const { key } = await registry.keys.create({ name: 'everything', role: 'infer', models: [], limits: NO_LIMITS }, 'test');
  const every = ['created iris-small', 'created resnet', 'created iris-large', 'moved resnet@production', 'moved iris-small@production'];
  for (const token of [key, undefined]) {
    expect(await listedModels(token)).toEqual(['iris-large', 'iris-small', 'resnet']);
    expect(await watchedEvents(token)).toEqual(every);
  }
});

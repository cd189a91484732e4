/**
 * How the registry picks its store: the --data-dir default, a `.nexusrc` found from the working
 * directory up, NEXUS_STORE_* variables, --store flags, each later layer winning; credentials are
 * refused in the file and never appear in what the registry prints. Then registry processes
 * configured only by a `.nexusrc` (S3) and only by variables (GCS) store and serve a model.
 */
import { credentials } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, UploadHeader, type DownloadArtifactResponse, type UploadVersionResponse } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { checkStoreConfig, parseRcFile, resolveStoreConfig } from '../../../services/registry/store/store-config.ts';
import { startGcsBackend, startS3Backend, type TestBackend } from './backends.ts';
import { startRegistryProcess, tinyModel } from '../fixtures.ts';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-config-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('resolveStoreConfig', () => {
  it('layers defaults, the nearest .nexusrc, the environment and flags, field by field', async () => {
    const project = join(work, 'project');
    await mkdir(join(project, 'deep/down'), { recursive: true });
    const cwd = join(project, 'deep/down');
    expect(resolveStoreConfig({ cwd, env: {}, defaultPath: '/var/nexus' }).config).toEqual({ provider: 'local', path: '/var/nexus' });

    await writeFile(join(project, '.nexusrc'), 'provider: s3\nbucket: ml-models\nprefix: team-a\nregion: eu-west-1\n');
    expect(resolveStoreConfig({ cwd, env: {}, defaultPath: '/var/nexus' }).config)
      .toMatchObject({ provider: 's3', bucket: 'ml-models', prefix: 'team-a', region: 'eu-west-1' });

    const layered = resolveStoreConfig({
      cwd, defaultPath: '/var/nexus',
      env: { NEXUS_STORE_BUCKET: 'from-env', NEXUS_STORE_ENDPOINT: 'http://minio:9000' },
      flags: { prefix: 'from-flags' },
    });
    expect(layered.config).toMatchObject({ provider: 's3', bucket: 'from-env', prefix: 'from-flags', region: 'eu-west-1', endpoint: 'http://minio:9000' });
    expect(layered.sources).toEqual(['defaults', join(project, '.nexusrc'), 'environment', 'flags']);

    await writeFile(join(project, '.nexusrc'), 'provider: local\npath: ./store\n');
    expect(resolveStoreConfig({ cwd, env: {}, defaultPath: '/x' }).config).toEqual({ provider: 'local', path: join(project, 'store') });
  });

  it.each([
    ['a secret in the file', () => parseRcFile('provider: s3\nbucket: b\nsecretAccessKey: abc\n', '/r/.nexusrc'), /credentials do not belong in \.nexusrc/],
    ['an unknown setting', () => parseRcFile('bukcet: b\n', '/r/.nexusrc'), /unknown setting 'bukcet'/],
    ['an endpoint with a password', () => checkStoreConfig({ provider: 's3', bucket: 'models', endpoint: 'http://user:pw@minio:9000' }), /endpoint carries credentials/],
    ['an unknown provider', () => checkStoreConfig({ provider: 'azure' as 's3', bucket: 'models' }), /provider 'azure' is unknown; use one of: local, s3, gcs/],
    ['a bucket-less S3 store', () => checkStoreConfig({ provider: 's3' }), /needs a bucket/],
    ['a prefix that climbs out', () => checkStoreConfig({ provider: 'gcs', bucket: 'models', prefix: '../other' }), /prefix '\.\.\/other' is invalid/],
  ])('refuses %s, saying what is wrong', (_, check, message) => {
    expect(check).toThrow(message);
  });
});

describe.each([
  { name: 's3 from a .nexusrc', start: startS3Backend },
  { name: 'gcs from NEXUS_STORE_* variables', start: startGcsBackend },
])('a registry process on $name', ({ start }) => {
  let backend: TestBackend;

  beforeAll(async () => {
    backend = await start();
  });

  afterAll(async () => {
    await backend?.stop();
  });

  it('stores and serves a model there, never printing credentials', async () => {
    const cwd = join(work, backend.name);
    await mkdir(cwd, { recursive: true });
    const store = await backend.open();
    const description = store.description; // e.g. "s3://models/team/registry at http://127.0.0.1:PORT"
    const endpointUrl = /at (\S+)$/.exec(description)![1];
    const env: Record<string, string> = { AWS_SECRET_ACCESS_KEY: 'S3RVER', NEXUS_LOG_LEVEL: 'info' };
    if (backend.name === 's3') {
      await writeFile(join(cwd, '.nexusrc'), `provider: s3\nbucket: models\nprefix: from-rc\nendpoint: ${endpointUrl}\nregion: us-east-1\n`);
    } else {
      Object.assign(env, { NEXUS_STORE_PROVIDER: 'gcs', NEXUS_STORE_BUCKET: 'models', NEXUS_STORE_PREFIX: 'from-env', NEXUS_STORE_ENDPOINT: endpointUrl });
    }
    const registry = await startRegistryProcess(['--data-dir', join(cwd, 'unused')], env, cwd);
    const client = new RegistryClient(registry.address, credentials.createInsecure());
    try {
      const bytes = tinyModel(99);
      const response = await new Promise<UploadVersionResponse>((resolve, reject) => {
        const stream = client.uploadVersion((error, reply) => (error ? reject(error) : resolve(reply)));
        stream.write({ header: UploadHeader.fromPartial({ modelName: 'configured', format: 'onnx', sha256: createHash('sha256').update(bytes).digest('hex') }) });
        stream.write({ chunk: bytes });
        stream.end();
      });
      expect(response.version).toMatchObject({ modelName: 'configured', version: 1 });
      const parts: Buffer[] = [];
      for await (const message of client.downloadArtifact({ sha256: response.version!.sha256, offset: 0 }) as AsyncIterable<DownloadArtifactResponse>) parts.push(Buffer.from(message.chunk));
      expect(Buffer.concat(parts).equals(Buffer.from(bytes))).toBe(true);

      // The records landed under the configured prefix of the bucket, not in the local directory.
      const prefix = backend.name === 's3' ? 'from-rc' : 'from-env';
      const keys: string[] = [];
      const other = await (await import(backend.name === 's3' ? '../../../services/registry/store/s3-store.ts' : '../../../services/registry/store/gcs-store.ts'));
      const raw = backend.name === 's3'
        ? await other.createS3Store({ bucket: 'models', prefix, endpoint: endpointUrl })
        : await other.createGcsStore({ bucket: 'models', prefix, endpoint: endpointUrl });
      for await (const info of raw.list('models/configured/')) keys.push(info.key);
      await raw.close();
      expect(keys).toEqual(['models/configured/versions/000001.json']);
    } finally {
      client.close();
      await registry.stop();
    }
    const output = registry.output();
    expect(output).toContain(backend.name === 's3' ? 's3://models/from-rc' : 'gs://models/from-env');
    expect(output).not.toContain('S3RVER');
  });
});

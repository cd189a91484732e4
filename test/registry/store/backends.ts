/**
 * The three store backends as tests start them, all on 127.0.0.1 with no network and no Docker:
 * a temporary directory; s3rver behind a proxy that enforces S3's conditional writes; an
 * in-memory server speaking the GCS JSON API. Each `open()` gives a new, independent client over
 * the same data, as a second registry process would have.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGcsStore } from '../../../services/registry/store/gcs-store.ts';
import { LocalObjectStore } from '../../../services/registry/store/local-store.ts';
import type { ObjectStore } from '../../../services/registry/store/object-store.ts';
import { createS3Store } from '../../../services/registry/store/s3-store.ts';
import { startFakeGcs } from './fakes/gcs-json-api.ts';
import { startConditionalProxy } from './fakes/s3-conditional-proxy.ts';

export interface TestBackend {
  name: 'local' | 's3' | 'gcs';
  /** A new client over the shared data. */
  open(): Promise<ObjectStore>;
  /** Conditional writes the backend refused so far (for local, exclusive links that lost). */
  conditionalFailures(): number;
  /** Bytes of the largest upload part held in memory, for sizing test artifacts. */
  partSizeBytes: number;
  stop(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

/** Small parts and chunks, so multipart and resumable uploads are exercised by megabytes, not gigabytes. */
const S3_PART_BYTES = 5 * 1024 * 1024;
const GCS_CHUNK_BYTES = 256 * 1024;

export async function startLocalBackend(): Promise<TestBackend> {
  const dir = await mkdtemp(join(tmpdir(), 'nexus-store-local-'));
  let failures = 0;
  return {
    name: 'local',
    partSizeBytes: 1024 * 1024,
    async open() {
      const store = await new LocalObjectStore(dir).init();
      const put = store.put.bind(store);
      // Count lost exclusive links the way the proxies count 412s.
      store.put = async (key, body, condition) => {
        try {
          return await put(key, body, condition);
        } catch (error) {
          if ((error as Error).name === 'PreconditionFailedError') failures += 1;
          throw error;
        }
      };
      return store;
    },
    conditionalFailures: () => failures,
    stop: () => rm(dir, { recursive: true, force: true }),
  };
}

export async function startS3Backend(): Promise<TestBackend> {
  const dir = await mkdtemp(join(tmpdir(), 'nexus-store-s3-'));
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: 'models' }] });
  const { port } = await s3rver.run();
  const proxy = await startConditionalProxy(port);
  // s3rver's built-in account; the SDK's standard chain reads them from the environment.
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const stores: ObjectStore[] = [];
  return {
    name: 's3',
    partSizeBytes: S3_PART_BYTES,
    async open() {
      const store = await createS3Store({ bucket: 'models', prefix: 'team/registry', endpoint: proxy.endpoint, region: 'us-east-1', partSizeBytes: S3_PART_BYTES });
      stores.push(store);
      return store;
    },
    conditionalFailures: () => proxy.preconditionFailures,
    async stop() {
      for (const store of stores) await store.close();
      await proxy.close();
      await s3rver.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startGcsBackend(): Promise<TestBackend & { fake: Awaited<ReturnType<typeof startFakeGcs>> }> {
  const fake = await startFakeGcs(['models']);
  return {
    name: 'gcs',
    fake,
    partSizeBytes: GCS_CHUNK_BYTES,
    open: () => createGcsStore({ bucket: 'models', prefix: 'team/registry', endpoint: fake.endpoint, chunkSizeBytes: GCS_CHUNK_BYTES }),
    conditionalFailures: () => fake.preconditionFailures,
    stop: () => fake.close(),
  };
}

export const BACKENDS: Array<{ name: TestBackend['name']; start: () => Promise<TestBackend> }> = [
  { name: 'local', start: startLocalBackend },
  { name: 's3', start: startS3Backend },
  { name: 'gcs', start: startGcsBackend },
];

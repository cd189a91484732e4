/**
 * One contract, every backend: the local directory, S3 (s3rver behind a proxy that enforces
 * If-None-Match / If-Match) and GCS (a local server speaking its JSON API with generation
 * preconditions). The object-store primitives first, then the registry rules built on them:
 * verified blobs, gap-free numbering under concurrent writers, alias compare-and-swap, the event
 * log and garbage collection.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadHeader, type ModelVersion } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { blobKey, BlobStore } from '../../../services/registry/core/blob-store.ts';
import { ModelRegistry, type RegistryEvent } from '../../../services/registry/index.ts';
import { ObjectNotFoundError, PreconditionFailedError, type ObjectStore } from '../../../services/registry/store/index.ts';
import { BACKENDS, type TestBackend } from './backends.ts';
import { tinyModel } from '../fixtures.ts';

const text = (value: string) => Buffer.from(value);
const decode = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString() : undefined);

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

async function readBytes(store: ObjectStore, key: string, offset = 0): Promise<Buffer> {
  return Buffer.concat((await collect(store.read(key, offset))).map((chunk) => Buffer.from(chunk)));
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** One small model uploaded as every numbering test's version (the numbering does not care what it holds). */
const MODEL = Buffer.from(tinyModel(1));
/** The header of an upload of MODEL: announced digest and size, so repeats store nothing new. */
const header = (modelName: string) => UploadHeader.fromPartial({
  modelName, format: 'onnx', creator: 'contract', sha256: sha256(MODEL), sizeBytes: MODEL.byteLength,
});

/** Every event after `cursor`, read through the registry's Watch until it has caught up. */
async function eventsAfter(registry: ModelRegistry, cursor: number): Promise<RegistryEvent[]> {
  const events: RegistryEvent[] = [];
  for await (const item of registry.watch(cursor, new AbortController().signal)) {
    if (item.kind === 'caught-up') break;
    events.push(item.event);
  }
  return events;
}

describe.each(BACKENDS)('the $name store', ({ start }) => {
  let backend: TestBackend;
  let store: ObjectStore;

  beforeAll(async () => {
    backend = await start();
    store = await backend.open();
  });

  afterAll(async () => {
    await backend?.stop();
  });

  it('reads, lists and deletes small objects; absent ones read as undefined', async () => {
    expect(await store.get('records/absent.json')).toBeUndefined();
    expect(await store.head('records/absent.json')).toBeUndefined();
    await store.put('records/a.json', text('{"a":1}'));
    expect(decode((await store.get('records/a.json'))?.body)).toBe('{"a":1}');
    expect(await store.head('records/a.json')).toMatchObject({ key: 'records/a.json', sizeBytes: 7 });
    await store.delete('records/a.json');
    expect(await store.get('records/a.json')).toBeUndefined();
    await store.delete('records/a.json'); // deleting twice is fine
  });

  it('creates once: a second create-only write fails and leaves the first in place', async () => {
    await store.put('records/once.json', text('first'), { ifNoneMatch: true });
    await expect(store.put('records/once.json', text('second'), { ifNoneMatch: true })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(decode((await store.get('records/once.json'))?.body)).toBe('first');
  });

  it('compares and swaps on the etag it read, and refuses a stale one', async () => {
    const first = await store.put('records/cas.json', text('v1'), { ifNoneMatch: true });
    const read = await store.get('records/cas.json');
    expect(read?.etag).toBe(first);
    const second = await store.put('records/cas.json', text('v2'), { ifMatch: read!.etag });
    expect(second).not.toBe(first);
    await expect(store.put('records/cas.json', text('lost update'), { ifMatch: first })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(decode((await store.get('records/cas.json'))?.body)).toBe('v2');
    expect((await store.get('records/cas.json'))?.etag).toBe(second);
    await expect(store.put('records/never.json', text('x'), { ifMatch: second })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(await store.get('records/never.json')).toBeUndefined();
  });

  it('lists by prefix in key order, after a key, across pages', async () => {
    for (const index of [5, 1, 7, 3, 2, 6, 4]) await store.put(`listing/item-${index}.json`, text(String(index)));
    await store.put('listing-other/x.json', text('x'));
    const keys = (await collect(store.list('listing/'))).map((info) => info.key);
    expect(keys).toEqual([1, 2, 3, 4, 5, 6, 7].map((index) => `listing/item-${index}.json`));
    const after = (await collect(store.list('listing/', { startAfter: 'listing/item-4.json' }))).map((info) => info.key);
    expect(after).toEqual(['listing/item-5.json', 'listing/item-6.json', 'listing/item-7.json']);
    expect(await collect(store.list('nothing-here/'))).toEqual([]);
  });

  it('streams a multi-part upload in and reads it back whole and from an offset', async () => {
    const bytes = randomBytes(backend.partSizeBytes * 2 + 12345);
    let committed = false;
    await store.upload('blobs/test/multi', chunked(bytes, 64 * 1024), async () => {
      // Not visible before the commit check passes.
      expect(await store.head('blobs/test/multi')).toBeUndefined();
      committed = true;
    });
    expect(committed).toBe(true);
    expect((await readBytes(store, 'blobs/test/multi')).equals(bytes)).toBe(true);
    expect((await readBytes(store, 'blobs/test/multi', 1000)).equals(bytes.subarray(1000))).toBe(true);
    expect((await readBytes(store, 'blobs/test/multi', bytes.byteLength)).byteLength).toBe(0);
    await store.copy('blobs/test/multi', 'blobs/test/copy');
    expect((await readBytes(store, 'blobs/test/copy')).equals(bytes)).toBe(true);
  });

  it('leaves nothing visible when the commit check or the bytes fail', async () => {
    const bytes = randomBytes(backend.partSizeBytes + 1000);
    await expect(store.upload('blobs/test/refused', chunked(bytes, 64 * 1024), async () => {
      throw new NexusError(ErrorCode.DATA_LOSS, 'digest mismatch');
    })).rejects.toMatchObject({ code: ErrorCode.DATA_LOSS });
    expect(await store.head('blobs/test/refused')).toBeUndefined();

    async function* broken() {
      yield* chunked(bytes.subarray(0, backend.partSizeBytes + 10), 64 * 1024);
      throw new Error('client went away');
    }
    await expect(store.upload('blobs/test/broken', broken(), async () => {})).rejects.toThrow('client went away');
    expect(await store.head('blobs/test/broken')).toBeUndefined();
    expect((await collect(store.list('blobs/test/'))).map((info) => info.key)).toEqual(['blobs/test/copy', 'blobs/test/multi']);
    await expect(collect(store.read('blobs/test/refused'))).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  describe('under the registry', () => {
    let registry: ModelRegistry;
    let registryStore: ObjectStore;
    /** The blob store the registry keeps its artifacts in, over the same store. */
    let blobs: BlobStore;

    beforeAll(async () => {
      registryStore = await backend.open();
      // No server minimum age, so the collection below can be asked for age 0.
      registry = await ModelRegistry.open(registryStore, { limits: { gcMinAgeMs: 0 } });
      blobs = new BlobStore(registryStore);
    });

    it('stores verified blobs once, and nothing when the digest is wrong', async () => {
      const bytes = randomBytes(100_000);
      const digest = sha256(bytes);
      const first = await blobs.write(chunked(bytes, 30_000), { expectedSha256: digest, expectedSizeBytes: bytes.byteLength });
      expect(first).toEqual({ sha256: digest, sizeBytes: bytes.byteLength, deduplicated: false });
      const again = await blobs.write(chunked(bytes, 30_000), {});
      expect(again).toEqual({ sha256: digest, sizeBytes: bytes.byteLength, deduplicated: true });
      const other = randomBytes(50_000);
      await expect(blobs.write(chunked(other, 20_000), { expectedSha256: 'a'.repeat(64) }))
        .rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/header.sha256 announced a{64}/) });
      expect(await blobs.info(sha256(other))).toBeUndefined();
      expect(await blobs.info('a'.repeat(64))).toBeUndefined();
      expect(await collect(registryStore.list('uploads/'))).toEqual([]);
    });

    it('gives 8 concurrent writers (separate clients, as separate registries) 80 distinct gap-free numbers', async () => {
      const writers = await Promise.all(Array.from({ length: 8 }, async () => ModelRegistry.open(await backend.open())));
      const failuresBefore = backend.conditionalFailures();
      const created = await Promise.all(writers.map(async (writer) => {
        const mine: ModelVersion[] = [];
        for (let index = 0; index < 10; index++) mine.push((await writer.upload(header('busy'), chunked(MODEL, 64))).version);
        return mine;
      }));
      const numbers = created.flat().map((version) => version.version).sort((a, b) => a - b);
      expect(numbers).toEqual(Array.from({ length: 80 }, (_, index) => index + 1));
      expect((await registry.listVersions('busy')).versions.map((version) => version.version)).toEqual(numbers);
      // The races really happened and were settled by the store's conditional writes.
      expect(backend.conditionalFailures()).toBeGreaterThan(failuresBefore);
      // Every version was announced exactly once, in a gap-free global order.
      const events = await eventsAfter(registry, 0);
      expect(events.map((event) => event.cursor)).toEqual(events.map((_, index) => index + 1));
      expect(events.filter((event) => event.versionCreated?.modelName === 'busy').map((event) => event.versionCreated!.version).sort((a, b) => a - b)).toEqual(numbers);
    }, 60_000);

    it('moves an alias by compare-and-swap: of two racing moves one wins, the stale one fails, nothing is lost', async () => {
      const other = await ModelRegistry.open(await backend.open());
      for (let index = 0; index < 3; index++) await registry.upload(header('swap'), chunked(MODEL, 64));
      const move = (target: ModelRegistry, version: number, expectedVersion?: number) =>
        target.setAlias({ modelName: 'swap', alias: 'production', expectedVersion, reason: `to ${version}`, actor: 'ci' }, version);
      await move(registry, 1, 0);
      const outcomes = await Promise.allSettled([move(registry, 2, 1), move(other, 3, 1)]);
      const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const lost = outcomes.filter((outcome) => outcome.status === 'rejected') as PromiseRejectedResult[];
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0].reason).toMatchObject({ code: ErrorCode.FAILED_PRECONDITION });
      const winner = (won[0] as PromiseFulfilledResult<{ alias: { version: number } }>).value.alias.version;
      expect((await other.getAlias('swap', 'production')).version).toBe(winner);
      const history = await other.aliasHistory('swap', 'production');
      expect(history.map((entry) => [entry.revision, entry.fromVersion, entry.toVersion])).toEqual([[1, 0, 1], [2, 1, winner]]);

      // A stale expectation changes nothing.
      await expect(move(other, 1, 1)).rejects.toMatchObject({ code: ErrorCode.FAILED_PRECONDITION, message: expect.stringMatching(/points at version \d, not the expected 1/) });
      expect(await registry.aliasHistory('swap', 'production')).toHaveLength(2);

      // Rollback returns to the previous target, and is recorded as such.
      const back = await other.rollbackAlias({ modelName: 'swap', alias: 'production', reason: 'bad metrics', actor: 'oncall' });
      expect(back.alias.version).toBe(1);
      expect(back.move).toMatchObject({ revision: 3, fromVersion: winner, toVersion: 1, rollback: true, reason: 'bad metrics', actor: 'oncall' });
      await expect(registry.rollbackAlias({ modelName: 'swap', alias: 'production', reason: '', actor: 'oncall' }))
        .rejects.toMatchObject({ code: ErrorCode.FAILED_PRECONDITION, message: expect.stringMatching(/no earlier target/) });
    });

    it('collects only unreferenced blobs, and only when asked to delete', async () => {
      const kept = Buffer.from(tinyModel(2));
      const orphan = randomBytes(2000);
      const { version: keptBlob } = await registry.upload(UploadHeader.fromPartial({ modelName: 'gc', format: 'onnx', creator: 'contract' }), chunked(kept, 500));
      // Stored like a directory model's file whose version never came.
      const orphanBlob = await registry.uploadBlob({ sha256: sha256(orphan), sizeBytes: orphan.byteLength }, chunked(orphan, 500));

      const young = await registry.collectGarbage({ delete: true });
      expect(young.garbage.map((object) => object.sha256)).not.toContain(orphanBlob.sha256); // too young to be sure

      // A registry with the default minimum age raises a request for 0 to an hour, and says so.
      const guarded = await (await ModelRegistry.open(registryStore)).collectGarbage({ delete: true, minAgeMs: 0 });
      expect(guarded).toMatchObject({ minAgeMs: 3600_000, minAgeRaised: true });
      expect(guarded.garbage.map((object) => object.sha256)).not.toContain(orphanBlob.sha256);

      const listed = await registry.collectGarbage({ delete: false, minAgeMs: 0 });
      expect(listed).toMatchObject({ minAgeMs: 0, minAgeRaised: false });
      expect(listed.deleted).toBe(false);
      expect(listed.garbage.map((object) => object.sha256)).toContain(orphanBlob.sha256);
      expect(listed.garbage.map((object) => object.sha256)).not.toContain(keptBlob.sha256);
      expect(await blobs.info(orphanBlob.sha256)).toBeDefined();

      const removed = await registry.collectGarbage({ delete: true, minAgeMs: 0 });
      expect(removed.garbage.map((object) => object.key)).toContain(blobKey(orphanBlob.sha256));
      expect(await blobs.info(orphanBlob.sha256)).toBeUndefined();
      expect(await blobs.info(keptBlob.sha256)).toBeDefined();
    });
  });
});

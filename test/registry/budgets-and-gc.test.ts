/**
 * The registry's budgets and garbage collection under uploads: sizes over the artifact or model
 * cap are refused before a byte is stored and aborted when they only show mid-stream, a model at
 * its version quota takes no more, and a collection with no minimum age, run while an upload is
 * under way or between a blob's commit and its version record, leaves that upload's bytes alone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UploadHeader } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode } from '../../services/domain/errors.ts';
import { blobKey } from '../../services/registry/core/blob-store.ts';
import { ModelRegistry } from '../../services/registry/index.ts';
import { LocalObjectStore, type ObjectStore } from '../../services/registry/store/index.ts';
import type { RegistryLimits } from '../../services/registry/validation/index.ts';
import { tinyModel } from './fixtures.ts';

let root: string;
let registry: ModelRegistry | undefined;
/** Runs before each put of a version record, while the upload waits (set by a test). */
let beforeVersionRecord: (() => Promise<void>) | undefined;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function* chunked(bytes: Uint8Array, size = 64): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

const header = (modelName: string, fields: Partial<UploadHeader> = {}) =>
  UploadHeader.fromPartial({ modelName, format: 'onnx', creator: 'unit', ...fields });

const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: { code: number; message: string }) => error);

/** The local store, with a pause before each version record is written (see beforeVersionRecord). */
function hooked(store: ObjectStore): ObjectStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'put') {
        return async (key: string, ...rest: Parameters<ObjectStore['put']> extends [string, ...infer R] ? R : never) => {
          if (/^models\/[^/]+\/versions\//.test(key)) await beforeVersionRecord?.();
          return target.put(key, ...rest);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function open(limits: Partial<RegistryLimits>): Promise<ModelRegistry> {
  registry = await ModelRegistry.open(hooked(await new LocalObjectStore(join(root, 'store')).init()), { limits });
  return registry;
}

const stagingFiles = () => readdir(join(root, 'store/uploads'));

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'nexus-budgets-'));
  beforeVersionRecord = undefined;
});

afterEach(async () => {
  await registry?.close();
  registry = undefined;
  await rm(root, { recursive: true, force: true });
});

describe('upload budgets', () => {
  it('refuses a declared size over the artifact cap before reading a byte', async () => {
    const registry = await open({ maxArtifactBytes: 1000 });
    let read = false;
    async function* untouched(): AsyncGenerator<Uint8Array> {
      read = true;
      yield new Uint8Array(1);
    }
    expect(await refusal(registry.upload(header('big', { sizeBytes: 1001 }), untouched()))).toMatchObject({
      code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(/max_artifact_bytes \(header.size_bytes\) exceeded: 1001 bytes asked for, the limit is 1000 bytes/),
    });
    expect(await refusal(registry.uploadBlob({ sha256: 'a'.repeat(64), sizeBytes: 5000 }, untouched())))
      .toMatchObject({ code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(/max_artifact_bytes/) });
    expect(read).toBe(false);
  });

  it('aborts an upload that passes the cap mid-stream, removing its staging file', async () => {
    const bytes = tinyModel(1);
    const registry = await open({ maxArtifactBytes: bytes.byteLength - 1 });
    // Size unknown up front: only the stream shows it is too big.
    expect(await refusal(registry.upload(header('sneaky'), chunked(bytes, 16)))).toMatchObject({
      code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(new RegExp(`max_artifact_bytes \\(the upload's chunks\\) exceeded: \\d+ or more bytes asked for, the limit is ${bytes.byteLength - 1} bytes`)),
    });
    const blob = randomBytes(bytes.byteLength);
    expect(await refusal(registry.uploadBlob({ sha256: sha256(blob), sizeBytes: 0 }, chunked(blob, 16))))
      .toMatchObject({ code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(/max_artifact_bytes \(the blob's chunks\)/) });
    expect(await stagingFiles()).toEqual([]);
    expect((await registry.statBlobs([sha256(bytes), sha256(blob)])).map((found) => found.present)).toEqual([false, false]);
    expect(await refusal(registry.getVersion('sneaky', {}))).toMatchObject({ code: ErrorCode.NOT_FOUND });
  });

  it('refuses a directory model whose files add up to more than the model cap', async () => {
    const registry = await open({ maxArtifactBytes: 600, maxModelBytes: 1000 });
    const files = [{ path: 'a.bin', sha256: 'a'.repeat(64), sizeBytes: 600 }, { path: 'b.bin', sha256: 'b'.repeat(64), sizeBytes: 500 }];
    expect(await refusal(registry.upload(header('dir', { format: 'directory', files }), chunked(new Uint8Array(0))))).toMatchObject({
      code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(/max_model_bytes .* exceeded: 1100 bytes asked for, the limit is 1000 bytes/),
    });
    files[1].sizeBytes = 601;
    expect(await refusal(registry.upload(header('dir', { format: 'directory', files }), chunked(new Uint8Array(0)))))
      .toMatchObject({ code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(/max_artifact_bytes \(header.files\[1\].size_bytes\)/) });
  });

  it('stops a model at its version quota, and only that model', async () => {
    const registry = await open({ maxVersionsPerModel: 2 });
    for (const seed of [1, 2]) await registry.upload(header('capped'), chunked(tinyModel(seed)));
    expect(await refusal(registry.upload(header('capped'), chunked(tinyModel(3))))).toMatchObject({
      code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(/max_versions_per_model \(model 'capped'\) exceeded: 3 versions asked for, the limit is 2 versions/),
    });
    expect((await registry.upload(header('other'), chunked(tinyModel(3)))).version.version).toBe(1);
    expect((await registry.listVersions('capped')).versions).toHaveLength(2);
  });
});

describe('garbage collection beside uploads', () => {
  it('leaves an upload in flight alone when run with min_age 0, and the upload succeeds', async () => {
    const registry = await open({ gcMinAgeMs: 0 });
    for (const announced of [true, false]) {
      const bytes = tinyModel(announced ? 10 : 11);
      let resume!: () => void;
      const paused = new Promise<void>((wake) => (resume = wake));
      let halfway!: () => void;
      const reachedHalf = new Promise<void>((wake) => (halfway = wake));
      async function* slow(): AsyncGenerator<Uint8Array> {
        const half = Math.floor(bytes.byteLength / 2);
        yield bytes.subarray(0, half);
        halfway();
        await paused;
        yield bytes.subarray(half);
      }
      const uploading = registry.upload(header(`inflight-${announced}`, announced ? { sha256: sha256(bytes), sizeBytes: bytes.byteLength } : {}), slow());
      await reachedHalf;
      expect((await stagingFiles()).length).toBeGreaterThan(0); // the half-written file is there
      const report = await registry.collectGarbage({ delete: true, minAgeMs: 0 });
      expect(report).toMatchObject({ deleted: true, minAgeMs: 0, minAgeRaised: false, garbage: [] });
      resume();
      const { version } = await uploading;
      expect(version.sha256).toBe(sha256(bytes));
      expect((await registry.statBlobs([version.sha256]))[0].present).toBe(true);
    }
    expect(await stagingFiles()).toEqual([]);
  });

  it('cannot collect a blob between its commit and its version record', async () => {
    const registry = await open({ gcMinAgeMs: 0 });
    const collected: string[][] = [];
    beforeVersionRecord = async () => {
      // The blob is committed (or found stored already); its version record is not written yet.
      const report = await registry.collectGarbage({ delete: true, minAgeMs: 0 });
      collected.push(report.garbage.map((object) => object.key));
    };
    const storeOrphan = async () => {
      // An unrelated orphan shows that the collection in the gap really runs and deletes.
      const orphan = randomBytes(3000);
      await registry.uploadBlob({ sha256: sha256(orphan), sizeBytes: orphan.byteLength }, chunked(orphan));
      return blobKey(sha256(orphan));
    };

    const firstOrphan = await storeOrphan();
    const fresh = await registry.upload(header('raced'), chunked(tinyModel(20)));
    // Bytes stored already and unreferenced, which the next upload deduplicates against.
    const reusedBytes = tinyModel(21);
    await registry.uploadBlob({ sha256: sha256(reusedBytes), sizeBytes: reusedBytes.byteLength }, chunked(reusedBytes));
    const secondOrphan = await storeOrphan();
    const reused = await registry.upload(header('raced', { sha256: sha256(reusedBytes), sizeBytes: reusedBytes.byteLength }), chunked(reusedBytes));
    beforeVersionRecord = undefined;

    expect(reused.deduplicated).toBe(true);
    expect(collected).toEqual([[firstOrphan], [secondOrphan]]);
    for (const { version } of [fresh, reused]) {
      const download = await registry.download(version.sha256);
      let bytes = 0;
      for await (const piece of download.chunks) bytes += piece.byteLength;
      expect(bytes).toBe(version.sizeBytes);
    }
    // Once recorded, the versions' blobs are references, never garbage.
    expect((await registry.collectGarbage({ delete: true, minAgeMs: 0 })).referencedBlobs).toBe(2);
  });
});

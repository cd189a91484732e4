/**
 * The registry over gRPC: verified uploads, one copy per digest, resumable downloads, numbering,
 * damage detected on download, aborted uploads leaving nothing, directory models, aliases moved
 * by compare-and-swap, and the Watch stream resumed by cursor, across two registries over one store.
 */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import {
  GetAliasHistoryRequest, GetVersionRequest, RegistryClient, SetAliasRequest, UploadHeader, WatchRequest,
  type GetAliasHistoryResponse, type GetVersionResponse, type SetAliasResponse, type UploadVersionResponse, type WatchResponse,
} from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { tinyModel } from '../fixtures.ts';
import { startRegistry, type RunningRegistry } from '../../../services/registry/index.ts';
import { downloadBlob, uploadModelDirectory, uploadModelFile } from '../../../services/cli/remote/index.ts';
import { unaryCall } from '../../../services/cli/remote/index.ts';
import { blobKey } from '../../../services/registry/core/blob-store.ts';

let dataDir: string;
let registry: RunningRegistry;
let client: RegistryClient;

async function upload(name: string, bytes: Uint8Array): Promise<UploadVersionResponse> {
  const path = join(dataDir, `upload-${Math.random()}.onnx`);
  await writeFile(path, bytes);
  return uploadModelFile(client, path, { modelName: name, format: 'onnx', lineage: undefined, tags: {}, creator: 'test', batching: undefined });
}

function download(sha256: string, offset = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const stream = client.downloadArtifact({ sha256, offset });
    stream.on('data', (message: { chunk: Uint8Array }) => parts.push(Buffer.from(message.chunk)));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nexus-registry-'));
  registry = await startRegistry({ dataDir: join(dataDir, 'store') });
  client = new RegistryClient(registry.address, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await registry?.shutdown(1000);
  await rm(dataDir, { recursive: true, force: true });
});

describe('registry', () => {
  it('stores a version with its digest and signature, and serves the same bytes back', async () => {
    const bytes = tinyModel(1);
    const { version, deduplicated } = await upload('tiny', bytes);
    expect(deduplicated).toBe(false);
    expect(version).toMatchObject({
      modelName: 'tiny', version: 1, format: 'onnx', sizeBytes: bytes.byteLength,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] },
    });
    expect(Buffer.from(await download(version!.sha256)).equals(Buffer.from(bytes))).toBe(true);
    // Resuming from an offset returns the rest.
    expect(Buffer.from(await download(version!.sha256, 10)).equals(Buffer.from(bytes.subarray(10)))).toBe(true);
  });

  it('keeps one copy of bytes stored under several versions', async () => {
    const bytes = tinyModel(2);
    const first = await upload('dedup', bytes);
    const second = await upload('dedup', bytes);
    expect(second.deduplicated).toBe(true);
    expect(second.version!.version).toBe(first.version!.version + 1);
    const blobDir = join(dataDir, 'store/blobs/sha256', first.version!.sha256.slice(0, 2));
    expect(await readdir(blobDir)).toEqual([first.version!.sha256.slice(2)]);
  });

  it('gives concurrent writers distinct, gap-free version numbers', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, index) => upload('busy', tinyModel(100 + index))));
    const numbers = results.map((result) => result.version!.version).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 12 }, (_, index) => index + 1));
  });

  it('refuses an upload whose bytes do not match the announced digest, leaving nothing visible', async () => {
    const error = await new Promise<ServiceError>((resolve) => {
      const stream = client.uploadVersion((failure) => resolve(failure!));
      stream.write({ header: UploadHeader.fromPartial({ modelName: 'liar', format: 'onnx', sha256: 'a'.repeat(64) }) });
      stream.write({ chunk: tinyModel(3) });
      stream.end();
    });
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/header.sha256 announced a{64}, but the uploaded bytes hash to sha256 [0-9a-f]{64}/);
    const missing = await new Promise<ServiceError>((resolve) =>
      client.getVersion(GetVersionRequest.fromPartial({ modelName: 'liar' }), (failure) => resolve(failure!)));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(await readdir(join(dataDir, 'store/uploads'))).toEqual([]);
  });

  it.each([
    ['a path-traversal name', '../etc', /model_name '..\/etc' is invalid/],
    ['an upper-case name', 'Iris', /is invalid/],
  ])('rejects %s with INVALID_ARGUMENT', async (_, name, message) => {
    const error = await upload(name, tinyModel(4)).then(() => undefined, (failure: ServiceError) => failure);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(message);
  });

  it('answers NOT_FOUND for an unknown digest and INVALID_ARGUMENT for a malformed one', async () => {
    await expect(download('0'.repeat(64))).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(download('../../etc/passwd')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});

/** A safetensors file: 8-byte little-endian header length, JSON header, then the tensor bytes. */
function safetensors(values: number[]): Buffer {
  const data = Buffer.from(new Float32Array(values).buffer);
  const header = Buffer.from(JSON.stringify({ weight: { dtype: 'F32', shape: [values.length], data_offsets: [0, data.byteLength] } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.byteLength));
  return Buffer.concat([length, header, data]);
}

const header = { lineage: undefined, tags: {}, creator: 'test', batching: undefined };

describe('damage and interruption', () => {
  it('detects a blob damaged at rest when it is downloaded, and the client keeps nothing of it', async () => {
    const { version } = await upload('damaged', tinyModel(7));
    const path = join(dataDir, 'store', blobKey(version!.sha256));
    const bytes = await readFile(path);
    bytes[bytes.byteLength >> 1] ^= 0xff; // same size, one byte flipped
    await writeFile(path, bytes);

    await expect(download(version!.sha256)).rejects.toMatchObject({ code: status.DATA_LOSS, details: expect.stringMatching(/corrupt/) });
    const target = join(dataDir, 'pulled', 'damaged.onnx');
    await expect(downloadBlob(client, version!.sha256, target)).rejects.toMatchObject({ code: status.DATA_LOSS });
    await expect(readFile(target)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readFile(`${target}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('leaves nothing visible when the client goes away halfway through an upload', async () => {
    const model = tinyModel(8);
    const stream = client.uploadVersion(() => undefined);
    stream.write({ header: UploadHeader.fromPartial({ modelName: 'abandoned', format: 'onnx', sizeBytes: model.byteLength * 2 }) });
    stream.write({ chunk: model });
    await new Promise((wait) => setTimeout(wait, 100));
    stream.cancel();
    for (const started = Date.now(); (await readdir(join(dataDir, 'store/uploads'))).length > 0 && Date.now() - started < 5000;) {
      await new Promise((wait) => setTimeout(wait, 20));
    }
    expect(await readdir(join(dataDir, 'store/uploads'))).toEqual([]);
    await expect(unaryCall((done) => client.getVersion(GetVersionRequest.fromPartial({ modelName: 'abandoned' }), done)))
      .rejects.toMatchObject({ code: status.NOT_FOUND });
    const digest = createHash('sha256').update(model).digest('hex');
    await expect(download(digest)).rejects.toMatchObject({ code: status.NOT_FOUND });
  });
});

describe('directory models', () => {
  it('stores a directory as a manifest of blobs, sends each file once, and restores every file', async () => {
    const dir = join(dataDir, 'llm');
    await mkdir(join(dir, 'tokenizer'), { recursive: true });
    const files: Record<string, Buffer> = {
      'model.safetensors': safetensors([1, 2, 3, 4]),
      'config.json': Buffer.from('{"hidden_size": 4}\n'),
      'tokenizer/tokenizer.json': Buffer.from('{"vocab": {"a": 0}}\n'),
    };
    for (const [path, bytes] of Object.entries(files)) await writeFile(join(dir, path), bytes);

    const first = await uploadModelDirectory(client, dir, { modelName: 'llm', format: 'safetensors', ...header });
    expect(first.uploadedFiles).toBe(3);
    expect(first.version).toMatchObject({ modelName: 'llm', version: 1, format: 'safetensors', signature: { inputs: [], outputs: [] } });
    expect(first.version!.files.map((file) => file.path)).toEqual(['config.json', 'model.safetensors', 'tokenizer/tokenizer.json']);
    // The version's digest names the manifest, which lists every file's blob.
    const manifest = JSON.parse((await download(first.version!.sha256)).toString());
    expect(manifest.files.map((file: { sha256: string }) => file.sha256)).toEqual(first.version!.files.map((file) => file.sha256));

    const again = await uploadModelDirectory(client, dir, { modelName: 'llm', format: 'safetensors', ...header });
    expect({ uploaded: again.uploadedFiles, skipped: again.skippedFiles, version: again.version!.version }).toEqual({ uploaded: 0, skipped: 3, version: 2 });
    expect(again.version!.sha256).toBe(first.version!.sha256); // the same directory, the same manifest

    for (const file of first.version!.files) {
      const target = join(dataDir, 'restored', file.path);
      await downloadBlob(client, file.sha256, target);
      expect((await readFile(target)).equals(files[file.path])).toBe(true);
    }
  });

  it('refuses a manifest naming a blob that was never uploaded, or a broken safetensors file', async () => {
    const missing = UploadHeader.fromPartial({ modelName: 'ghost', format: 'directory', files: [{ path: 'a.bin', sha256: 'b'.repeat(64), sizeBytes: 3 }] });
    const refused = await new Promise<ServiceError>((resolve) => {
      const stream = client.uploadVersion((error) => resolve(error!));
      stream.write({ header: missing });
      stream.end();
    });
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/a\.bin.*not stored.*UploadBlob/);

    const dir = join(dataDir, 'broken');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.safetensors'), Buffer.concat([safetensors([1, 2]).subarray(0, 20)]));
    await expect(uploadModelDirectory(client, dir, { modelName: 'broken', format: 'safetensors', ...header }))
      .rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/not a valid safetensors file/) });

    const traversal = UploadHeader.fromPartial({ modelName: 'escape', format: 'directory', files: [{ path: '../../etc/passwd', sha256: 'b'.repeat(64), sizeBytes: 3 }] });
    const escaped = await new Promise<ServiceError>((resolve) => {
      const stream = client.uploadVersion((error) => resolve(error!));
      stream.write({ header: traversal });
      stream.end();
    });
    expect(escaped.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe('aliases and Watch across two registries over one store', () => {
  let second: RunningRegistry;
  let secondClient: RegistryClient;

  beforeAll(async () => {
    second = await startRegistry({ dataDir: join(dataDir, 'store'), watchPollIntervalMs: 50 });
    secondClient = new RegistryClient(second.address, credentials.createInsecure());
  });

  afterAll(async () => {
    secondClient?.close();
    await second?.shutdown(1000);
  });

  const setAlias = (target: RegistryClient, version: number, expectedVersion?: number) =>
    unaryCall<SetAliasResponse>((done) => target.setAlias(SetAliasRequest.fromPartial({
      modelName: 'shared', alias: 'production', version, expectedVersion, reason: `promote ${version}`, actor: 'test',
    }), done));

  it('refuses an alias move with a stale expected version, changing and losing nothing', async () => {
    for (const seed of [21, 22, 23]) await upload('shared', tinyModel(seed));
    await setAlias(client, 1, 0);
    await setAlias(secondClient, 2, 1); // through the other registry
    const stale = await setAlias(client, 3, 1).then(() => undefined, (error: ServiceError) => error);
    expect(stale?.code).toBe(status.FAILED_PRECONDITION);
    expect(stale?.details).toMatch(/points at version 2, not the expected 1; nothing changed/);

    const { moves } = await unaryCall<GetAliasHistoryResponse>((done) => client.getAliasHistory(GetAliasHistoryRequest.fromPartial({ modelName: 'shared', alias: 'production' }), done));
    expect(moves.map((move) => [move.revision, move.fromVersion, move.toVersion, move.actor])).toEqual([[1, 0, 1, 'test'], [2, 1, 2, 'test']]);
    const resolved = await unaryCall<GetVersionResponse>((done) => secondClient.getVersion(GetVersionRequest.fromPartial({ modelName: 'shared', alias: 'production' }), done));
    expect(resolved.version?.version).toBe(2);
    expect(resolved.aliases).toEqual(['production']);
  });

  it('gives a watcher that reconnects with its cursor every later event once, in order', async () => {
    /** Watches through `target` from `afterCursor`; collects events until `count` arrived, then hangs up. */
    const watch = (target: RegistryClient, afterCursor: number, count: number) => new Promise<WatchResponse[]>((resolve, reject) => {
      const events: WatchResponse[] = [];
      const stream = target.watch(WatchRequest.fromPartial({ afterCursor, modelName: 'watched' }));
      stream.on('data', (message: WatchResponse) => {
        if (message.caughtUp) return;
        events.push(message);
        if (events.length === count) {
          stream.cancel();
          resolve(events);
        }
      });
      stream.on('error', (error: ServiceError) => (error.code === status.CANCELLED ? undefined : reject(error)));
    });

    // Before anything happens: where the log stands now.
    const head = await new Promise<number>((resolve) => {
      const stream = client.watch(WatchRequest.fromPartial({ fromNow: true }));
      stream.on('data', (message: WatchResponse) => {
        if (message.caughtUp) {
          stream.cancel();
          resolve(message.caughtUp.cursor);
        }
      });
      stream.on('error', () => undefined);
    });

    // A watcher on the second registry sees the first three events, written through the first.
    const firstPart = watch(secondClient, head, 3);
    await upload('watched', tinyModel(31));
    await upload('watched', tinyModel(32));
    await unaryCall((done) => client.setAlias(SetAliasRequest.fromPartial({ modelName: 'watched', alias: 'staging', version: 2, expectedVersion: 0, actor: 'test' }), done));
    const seen = await firstPart;

    // While it is away, more happens, some of it through the other registry and another model.
    await upload('watched', tinyModel(33));
    await upload('unrelated', tinyModel(34));
    await unaryCall((done) => secondClient.setAlias(SetAliasRequest.fromPartial({ modelName: 'watched', alias: 'staging', version: 3, expectedVersion: 2, actor: 'test' }), done));
    await unaryCall((done) => client.rollbackAlias({ modelName: 'watched', alias: 'staging', reason: 'rollback', actor: 'test', expectedVersion: undefined }, done));

    const rest = await watch(client, seen.at(-1)!.cursor, 3);
    const all = [...seen, ...rest];
    const describe = (event: WatchResponse) => (event.versionCreated
      ? `version ${event.versionCreated.version}`
      : `staging ${event.aliasMoved!.fromVersion}->${event.aliasMoved!.toVersion}${event.aliasMoved!.rollback ? ' rollback' : ''}`);
    expect(all.map(describe)).toEqual(['version 1', 'version 2', 'staging 0->2', 'version 3', 'staging 2->3', 'staging 3->2 rollback']);
    const cursors = all.map((event) => event.cursor);
    expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    expect(new Set(cursors).size).toBe(cursors.length);
    expect(cursors[0]).toBeGreaterThan(head);
  });
});

describe('split aliases and stale watch cursors', () => {
  const setAlias = (fields: Partial<SetAliasRequest>) =>
    unaryCall<SetAliasResponse>((done) => client.setAlias(SetAliasRequest.fromPartial({ modelName: 'splitted', alias: 'production', actor: 'test', ...fields }), done));
  const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: ServiceError) => error);

  it('records a split with compare-and-swap on the revision, in the history, and rolls it back', async () => {
    for (const seed of [51, 52, 53]) await upload('splitted', tinyModel(seed));
    await setAlias({ version: 1, expectedRevision: 0 });
    const split = await setAlias({ split: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], stickyParameter: 'user', expectedRevision: 1 });
    expect(split.alias).toMatchObject({ version: 1, revision: 2, split: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], stickyParameter: 'user' });
    expect(split.move).toMatchObject({ fromVersion: 1, fromSplit: [], toVersion: 1, toSplit: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], toStickyParameter: 'user' });

    // Only the weights change: the version (the control) is the same, so only the revision catches a race.
    const reweighted = await setAlias({ split: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }], stickyParameter: 'user', expectedRevision: 2 });
    expect(reweighted.alias?.revision).toBe(3);
    const stale = await failure(setAlias({ split: [{ version: 1, weight: 10 }, { version: 2, weight: 90 }], stickyParameter: 'user', expectedRevision: 2 }));
    expect(stale?.code).toBe(status.FAILED_PRECONDITION);
    expect(stale?.details).toMatch(/is at revision 3, not the expected 2; nothing changed/);
    // The same destination again changes nothing.
    expect((await setAlias({ split: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }], stickyParameter: 'user' })).alias?.revision).toBe(3);

    await setAlias({ version: 3, expectedVersion: 1 });
    // A rollback can compare on the revision too: revision 4 is the move to version 3.
    const staleRollback = await failure(unaryCall((done) =>
      client.rollbackAlias({ modelName: 'splitted', alias: 'production', reason: 'bad', actor: 'test', expectedRevision: 3 }, done)));
    expect(staleRollback?.code).toBe(status.FAILED_PRECONDITION);
    expect(staleRollback?.details).toMatch(/is at revision 4, not the expected 3; nothing changed/);
    const rolledBack = await unaryCall<{ alias?: { split: unknown; version: number; stickyParameter: string } }>((done) =>
      client.rollbackAlias({ modelName: 'splitted', alias: 'production', reason: 'bad', actor: 'test', expectedVersion: 3, expectedRevision: 4 }, done));
    expect(rolledBack.alias).toMatchObject({ version: 1, split: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }], stickyParameter: 'user' });
  });

  it('refuses bad splits with INVALID_ARGUMENT naming the field, and missing versions with NOT_FOUND', async () => {
    const cases: Array<[Partial<SetAliasRequest>, RegExp]> = [
      [{ split: [{ version: 1, weight: 1 }] }, /split has 1 arms; give 2 to 16/],
      [{ split: [{ version: 1, weight: 1 }, { version: 1, weight: 1 }] }, /split\[1\]\.version 1 is listed twice/],
      [{ split: [{ version: 1, weight: 0 }, { version: 2, weight: 1 }] }, /split\[0\]\.weight must be 1 to 1000000, got 0/],
      [{ split: [{ version: 1, weight: 1 }, { version: 0, weight: 1 }] }, /split\[1\]\.version must be 1 or more/],
      [{ version: 2, split: [{ version: 1, weight: 1 }, { version: 2, weight: 1 }] }, /version 2 differs from split\[0\]\.version 1/],
      [{ split: [{ version: 1, weight: 1 }, { version: 2, weight: 1 }], stickyParameter: 'a b' }, /sticky_parameter 'a b' is invalid/],
      [{ version: 1, stickyParameter: 'user' }, /sticky_parameter needs a split/],
    ];
    for (const [fields, message] of cases) {
      const error = await failure(setAlias({ alias: 'staging', ...fields }));
      expect(error?.code, String(message)).toBe(status.INVALID_ARGUMENT);
      expect(error?.details).toMatch(message);
    }
    const missing = await failure(setAlias({ alias: 'staging', split: [{ version: 1, weight: 1 }, { version: 9, weight: 1 }] }));
    expect(missing?.code).toBe(status.NOT_FOUND);
    expect(missing?.details).toMatch(/no version 9/);
  });

  it('answers OUT_OF_RANGE to a cursor past the newest event', async () => {
    const error = await new Promise<ServiceError>((resolve) => {
      const stream = client.watch(WatchRequest.fromPartial({ afterCursor: 1_000_000 }));
      stream.on('data', () => undefined);
      stream.on('error', resolve);
    });
    expect(error.code).toBe(status.OUT_OF_RANGE);
    expect(error.details).toMatch(/after_cursor 1000000 is past the newest event/);
  });
});

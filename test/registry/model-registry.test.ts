/**
 * ModelRegistry called directly, without a server: a verified upload becomes a version, a header
 * that lies about the bytes is refused and leaves nothing visible, downloads resume from an offset
 * and fail on a blob damaged at rest, and watch follows the event log from a cursor.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadHeader } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode } from '../../services/domain/errors.ts';
import { blobKey } from '../../services/registry/core/blob-store.ts';
import { ModelRegistry, type WatchItem } from '../../services/registry/index.ts';
import { LocalObjectStore } from '../../services/registry/store/index.ts';
import { tinyModel } from './fixtures.ts';

let root: string;
let registry: ModelRegistry;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function* chunked(bytes: Uint8Array, size = 7): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

async function readAll(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

const header = (modelName: string, fields: Partial<UploadHeader> = {}) =>
  UploadHeader.fromPartial({ modelName, format: 'onnx', creator: 'unit', ...fields });

/** What a failed call was refused with. */
const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: { code: number; message: string }) => error);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nexus-model-registry-'));
  registry = await ModelRegistry.open(await new LocalObjectStore(join(root, 'store')).init(), { pollIntervalMs: 20 });
});

afterAll(async () => {
  await registry?.close();
  await rm(root, { recursive: true, force: true });
});

describe('upload', () => {
  it('turns verified bytes into a version with their digest, size and signature', async () => {
    const bytes = tinyModel(1);
    const { version, deduplicated } = await registry.upload(
      header('verified', { sha256: sha256(bytes), sizeBytes: bytes.byteLength, tags: { team: 'unit' } }), chunked(bytes));
    expect(deduplicated).toBe(false);
    expect(version).toMatchObject({
      modelName: 'verified', version: 1, format: 'onnx', sha256: sha256(bytes), sizeBytes: bytes.byteLength, tags: { team: 'unit' },
      signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] },
      files: [{ path: 'verified.onnx', sha256: sha256(bytes), sizeBytes: bytes.byteLength }],
    });
    expect((await registry.getVersion('verified', { version: 1 })).version).toEqual(version);
    expect((await registry.statBlobs([sha256(bytes)]))[0]).toEqual({ sha256: sha256(bytes), present: true, sizeBytes: bytes.byteLength });

    // The same bytes again, announced only by a trailer: a second version, nothing stored twice.
    const again = await registry.upload(header('verified'), chunked(bytes), { trailerSha256: () => sha256(bytes) });
    expect({ version: again.version.version, deduplicated: again.deduplicated }).toEqual({ version: 2, deduplicated: true });
  });

  it.each([
    ['a size larger than the bytes', (bytes: Uint8Array) => ({ sizeBytes: bytes.byteLength + 1 }), /header.size_bytes announced \d+ bytes, but the upload ended after \d+/],
    ['a size smaller than the bytes', (bytes: Uint8Array) => ({ sizeBytes: bytes.byteLength - 1 }), /header.size_bytes announced \d+ bytes, but the upload sent more/],
    ['a digest of other bytes', () => ({ sha256: sha256(tinyModel(99)) }), /header.sha256 announced [0-9a-f]{64}, but the uploaded bytes hash to sha256 [0-9a-f]{64}/],
  ])('refuses a header announcing %s with INVALID_ARGUMENT (a false claim, not data loss), leaving nothing visible', async (_, lie, message) => {
    const bytes = tinyModel(2);
    const error = await refusal(registry.upload(header('liar', lie(bytes)), chunked(bytes)));
    expect(error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(message) });
    expect(await refusal(registry.getVersion('liar', {}))).toMatchObject({ code: ErrorCode.NOT_FOUND });
    expect((await registry.statBlobs([sha256(bytes)]))[0].present).toBe(false);
    expect(await readdir(join(root, 'store/uploads')).catch(() => [])).toEqual([]);
  });

  it('refuses a trailer that contradicts the bytes', async () => {
    const bytes = tinyModel(3);
    const error = await refusal(registry.upload(header('trailer-liar'), chunked(bytes), { trailerSha256: () => 'f'.repeat(64) }));
    expect(error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/trailer.sha256 announced f{64}, but the uploaded bytes hash to/) });
    expect(await refusal(registry.getVersion('trailer-liar', {}))).toMatchObject({ code: ErrorCode.NOT_FOUND });
  });

  it('checks the header before reading any bytes', async () => {
    let read = false;
    async function* untouched(): AsyncGenerator<Uint8Array> {
      read = true;
      yield tinyModel(4);
    }
    expect(await refusal(registry.upload(header('Upper'), untouched())))
      .toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/header.model_name 'Upper' is invalid/) });
    expect(await refusal(registry.upload(header('fmt', { format: 'pickle' }), untouched())))
      .toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/header.format 'pickle' is not supported/) });
    expect(read).toBe(false);
    // A directory model must send none: the first chunk found is refused.
    expect(await refusal(registry.upload(header('dir', { format: 'directory', files: [{ path: 'a.bin', sha256: 'b'.repeat(64), sizeBytes: 1 }] }), untouched())))
      .toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/directory model sends no chunks/) });
    expect(read).toBe(true);
  });

  it('refuses bytes that are not an ONNX model, storing nothing', async () => {
    const junk = Buffer.from('certainly not protobuf'.repeat(10));
    expect(await refusal(registry.upload(header('junk'), chunked(junk)))).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect((await registry.statBlobs([sha256(junk)]))[0].present).toBe(false);
  });
});

describe('download', () => {
  it('streams the stored bytes, whole and from an offset, with the whole size', async () => {
    const bytes = tinyModel(5);
    const { version } = await registry.upload(header('downloaded'), chunked(bytes));
    const whole = await registry.download(version.sha256);
    expect(whole.totalSizeBytes).toBe(bytes.byteLength);
    expect((await readAll(whole.chunks)).equals(Buffer.from(bytes))).toBe(true);
    const rest = await registry.download(version.sha256, 10);
    expect(rest.totalSizeBytes).toBe(bytes.byteLength);
    expect((await readAll(rest.chunks)).equals(Buffer.from(bytes.subarray(10)))).toBe(true);
    expect((await readAll((await registry.download(version.sha256, bytes.byteLength)).chunks)).byteLength).toBe(0);
  });

  it('refuses an unknown digest, a malformed one and an offset past the end before streaming', async () => {
    const bytes = tinyModel(6);
    const { version } = await registry.upload(header('bounds'), chunked(bytes));
    expect(await refusal(registry.download('0'.repeat(64)))).toMatchObject({ code: ErrorCode.NOT_FOUND });
    expect(await refusal(registry.download('../../etc/passwd'))).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect(await refusal(registry.download(version.sha256, bytes.byteLength + 1)))
      .toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/offset \d+ is past the artifact's end/) });
  });

  it('fails DATA_LOSS when a blob damaged at rest is read from the start', async () => {
    const bytes = tinyModel(7);
    const { version } = await registry.upload(header('damaged'), chunked(bytes));
    const path = join(root, 'store', blobKey(version.sha256));
    const stored = await readFile(path);
    stored[stored.byteLength >> 1] ^= 0xff; // same size, one byte flipped
    await writeFile(path, stored);

    const download = await registry.download(version.sha256);
    expect(await refusal(readAll(download.chunks)))
      .toMatchObject({ code: ErrorCode.DATA_LOSS, message: expect.stringMatching(new RegExp(`${version.sha256} is corrupt: its bytes hash to [0-9a-f]{64}`)) });
    // A resumed download cannot be hashed here (the client holds the start): its client checks it.
    expect((await readAll((await registry.download(version.sha256, 1)).chunks)).equals(stored.subarray(1))).toBe(true);
  });
});

describe('watch', () => {
  /** Reads `count` items of a watch, then stops it. */
  async function take(from: number | 'now', count: number, modelName?: string, during?: () => Promise<void>): Promise<WatchItem[]> {
    const stop = new AbortController();
    const items: WatchItem[] = [];
    const stream = registry.watch(from, stop.signal, { modelName });
    const reading = (async () => {
      for await (const item of stream) {
        items.push(item);
        if (items.length === count) stop.abort();
      }
    })();
    await during?.();
    await reading;
    return items;
  }
  const describeItem = (item: WatchItem) => (item.kind === 'caught-up'
    ? 'caught up'
    : item.event.versionCreated ? `${item.event.versionCreated.modelName} v${item.event.versionCreated.version}` : `${item.event.aliasMoved!.alias} -> ${item.event.aliasMoved!.toVersion}`);

  it('yields the events after a cursor in order, then says it caught up, then follows new events', async () => {
    const [start] = await take('now', 1);
    expect(start.kind).toBe('caught-up');
    const cursor = start.kind === 'caught-up' ? start.cursor : 0;

    await registry.upload(header('watched'), chunked(tinyModel(11)));
    await registry.upload(header('watched'), chunked(tinyModel(12)));
    await registry.setAlias({ modelName: 'watched', alias: 'production', expectedVersion: 0, reason: '', actor: 'unit' }, 1);

    const items = await take(cursor, 5, undefined, async () => {
      // Recorded while the watcher waits past its catch-up.
      await new Promise((wake) => setTimeout(wake, 50));
      await registry.upload(header('watched'), chunked(tinyModel(13)));
    });
    expect(items.map(describeItem)).toEqual(['watched v1', 'watched v2', 'production -> 1', 'caught up', 'watched v3']);
    const cursors = items.map((item) => (item.kind === 'event' ? item.event.cursor : item.cursor));
    expect(cursors).toEqual([cursor + 1, cursor + 2, cursor + 3, cursor + 3, cursor + 4]);
  });

  it("keeps to one model's events when asked, while its cursor passes the others", async () => {
    const [start] = await take('now', 1);
    const cursor = start.kind === 'caught-up' ? start.cursor : 0;
    await registry.upload(header('other-model'), chunked(tinyModel(21)));
    await registry.upload(header('watched'), chunked(tinyModel(22)));
    await registry.upload(header('other-model'), chunked(tinyModel(23)));
    const items = await take(cursor, 2, 'watched');
    expect(items.map(describeItem)).toEqual(['watched v4', 'caught up']);
    expect(items[1]).toMatchObject({ kind: 'caught-up', cursor: cursor + 3 });
  });

  it('refuses a cursor past the newest event with OUT_OF_RANGE, and a malformed model name', async () => {
    expect(await refusal(take(1_000_000, 1)))
      .toMatchObject({ code: ErrorCode.OUT_OF_RANGE, message: expect.stringMatching(/after_cursor 1000000 is past the newest event/) });
    expect(await refusal(take(0, 1, '../x'))).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });
});

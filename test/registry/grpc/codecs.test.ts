/**
 * The registry's wire helpers: the lean DownloadArtifact encoder writes exactly the bytes the
 * generated serializer does, downloads are regrouped into message-sized chunks without losing or
 * reordering a byte, and an upload stream's framing (header once, chunks, trailer last) is enforced.
 */
import { describe, expect, it } from 'vitest';
import { DownloadArtifactResponse } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { downloadChunks, encodeDownloadResponse, uploadBody, type UploadMessage } from '../../../services/registry/grpc/index.ts';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function* pieces(...sizes: number[]): AsyncGenerator<Uint8Array> {
  let next = 0;
  for (const size of sizes) yield Uint8Array.from({ length: size }, () => next++ % 251);
}

const messages = (...items: UploadMessage[]) => (async function* () { yield* items; })();

describe('encodeDownloadResponse', () => {
  it.each([
    ['an empty message', { chunk: new Uint8Array(), offset: 0, totalSizeBytes: 0 }],
    ['a first chunk', { chunk: Uint8Array.from([1, 2, 3]), offset: 0, totalSizeBytes: 3 }],
    ['a chunk far into a large artifact', { chunk: new Uint8Array(300).fill(7), offset: 2 ** 40 + 5, totalSizeBytes: 2 ** 41 }],
    ['the end of a stream', { chunk: new Uint8Array(), offset: 128, totalSizeBytes: 128 }],
  ])('writes %s exactly as the generated serializer does', (_, message) => {
    expect(Buffer.from(encodeDownloadResponse(message)).equals(Buffer.from(DownloadArtifactResponse.encode(message).finish()))).toBe(true);
  });
});

describe('downloadChunks', () => {
  it('regroups backend pieces into chunks of the chunk size, the last one shorter, every byte in order', async () => {
    const chunks = await collect(downloadChunks(pieces(3, 10, 1, 7), 4));
    expect(chunks.map((chunk) => chunk.byteLength)).toEqual([4, 4, 4, 4, 4, 1]);
    expect([...Buffer.concat(chunks)]).toEqual([...Buffer.concat(await collect(pieces(3, 10, 1, 7)))]);
    expect(await collect(downloadChunks(pieces(), 4))).toEqual([]);
  });
});

describe('uploadBody', () => {
  it('yields the non-empty chunks and keeps the trailer digest for after them', async () => {
    const body = uploadBody(messages({ chunk: Uint8Array.from([1]) }, { chunk: new Uint8Array() }, { chunk: Uint8Array.from([2, 3]) }, { trailer: { sha256: 'c'.repeat(64) } }));
    expect(body.trailerSha256()).toBeUndefined();
    expect((await collect(body.chunks)).map((chunk) => [...chunk])).toEqual([[1], [2, 3]]);
    expect(body.trailerSha256()).toBe('c'.repeat(64));
  });

  it.each([
    ['a second header', [{ chunk: Uint8Array.from([1]) }, { header: {} }], /second header arrived mid-upload/],
    ['a chunk after the trailer', [{ trailer: { sha256: 'c'.repeat(64) } }, { chunk: Uint8Array.from([1]) }], /after the trailer/],
    ['a malformed trailer digest', [{ trailer: { sha256: 'xyz' } }], /trailer.sha256 'xyz' is not a sha256 digest/],
  ])('refuses %s with INVALID_ARGUMENT', async (_, stream, message) => {
    await expect(collect(uploadBody(messages(...(stream as UploadMessage[]))).chunks))
      .rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(message) });
  });
});

/**
 * How the registry's streams are cut into messages: an upload is a header, chunks and an
 * optional trailer; a download is chunks of about DOWNLOAD_CHUNK_BYTES, whatever piece size the
 * store backend reads in.
 */
import { invalidArgument } from '../../domain/index.ts';
import { checkSha256 } from '../validation/index.ts';

/**
 * Size of each streamed download chunk, in bytes (256 KiB): small enough that the few chunks in
 * flight and their encoded copies stay a few megabytes, large enough that framing costs nothing.
 */
export const DOWNLOAD_CHUNK_BYTES = 256 * 1024;

/** One message of an upload stream (UploadVersionRequest, or UploadBlobRequest without a trailer). */
export interface UploadMessage {
  header?: unknown;
  chunk?: Uint8Array;
  trailer?: { sha256: string };
}

/** The chunks of an upload stream after its header, and the digest its trailer announced. */
export interface UploadBody {
  chunks: AsyncGenerator<Uint8Array>;
  /** The trailer's sha256, once the chunks have ended; undefined without a trailer. */
  trailerSha256: () => string | undefined;
}

/**
 * The chunks of an upload stream whose header was read already (empty chunks are skipped). A
 * trailer may follow the last chunk; a second header, or anything after the trailer, is refused.
 */
export function uploadBody(messages: AsyncIterator<UploadMessage>): UploadBody {
  let trailer: string | undefined;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let trailerSeen = false;
    for (;;) {
      const next = await messages.next();
      if (next.done) return;
      if (next.value.header) throw invalidArgument('a second header arrived mid-upload; send the header once, first');
      if (trailerSeen) throw invalidArgument('a message arrived after the trailer; the trailer comes last');
      if (next.value.trailer) {
        if (next.value.trailer.sha256) trailer = checkSha256(next.value.trailer.sha256, 'trailer.sha256');
        trailerSeen = true;
      } else if (next.value.chunk && next.value.chunk.byteLength > 0) {
        yield next.value.chunk;
      }
    }
  }
  return { chunks: chunks(), trailerSha256: () => trailer };
}

/**
 * Regroups `pieces` into chunks of DOWNLOAD_CHUNK_BYTES (the last one shorter), copying only
 * where a chunk spans pieces.
 */
export async function* downloadChunks(pieces: AsyncIterable<Uint8Array>, chunkBytes = DOWNLOAD_CHUNK_BYTES): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const take = () => {
    const chunk = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return chunk;
  };
  for await (const piece of pieces) {
    for (let at = 0; at < piece.byteLength;) {
      const size = Math.min(piece.byteLength - at, chunkBytes - pendingBytes);
      pending.push(Buffer.from(piece.buffer, piece.byteOffset + at, size));
      pendingBytes += size;
      at += size;
      if (pendingBytes === chunkBytes) yield take();
    }
  }
  if (pendingBytes > 0) yield take();
}

/**
 * Content-addressed blobs over an ObjectStore: `blobs/sha256/ab/cdef…`, written once however many
 * versions point at them, and visible only after their bytes were hashed and matched every digest
 * the client announced (header or trailer) and whatever else the caller checks (an ONNX
 * signature). Nothing is held in memory: chunks stream through the hash into the store.
 */
import { createHash, randomUUID } from 'node:crypto';
import { invalidArgument, notFound } from '../../domain/index.ts';
import { ObjectNotFoundError, type ObjectInfo, type ObjectStore } from '../store/index.ts';
import { budgetExceeded } from '../validation/index.ts';
import { noteTransferredBytes } from './transfer-memory.ts';
import type { UploadLease } from './upload-leases.ts';

/** The key of the blob with this digest. */
export const blobKey = (sha256: string) => `blobs/sha256/${sha256.slice(0, 2)}/${sha256.slice(2)}`;

/** The digest a blob key names, or undefined for any other key. */
export function sha256OfBlobKey(key: string): string | undefined {
  const match = /^blobs\/sha256\/([0-9a-f]{2})\/([0-9a-f]{62})$/.exec(key);
  return match ? match[1] + match[2] : undefined;
}

export interface BlobWriteOptions {
  /** The digest the client announced before sending; the bytes must hash to it. */
  expectedSha256?: string;
  /** The size the client announced (0 = unknown); the bytes must add up to it. */
  expectedSizeBytes?: number;
  /** The field that announced the size and digest, for messages. Default 'header'. */
  headerField?: string;
  /**
   * Most bytes the upload may carry, and the budget's name for RESOURCE_EXHAUSTED: the upload
   * is aborted (nothing stored) as soon as more arrive. Default: no cap.
   */
  cap?: { bytes: number; budget: string };
  /** Holds the staging key and the blob's key against garbage collection (see upload-leases.ts). */
  lease?: UploadLease;
  /** Sees every chunk as it passes (e.g. to read an ONNX signature on the way). */
  onChunk?: (chunk: Uint8Array) => void;
  /** A digest the client sent after the bytes (a trailer); read once the chunks have ended. */
  trailerSha256?: () => string | undefined;
  /** Last check before the blob becomes visible; throwing discards the upload. */
  validate?: () => void | Promise<void>;
}

export interface WrittenBlob {
  sha256: string;
  sizeBytes: number;
  /** True when the same bytes were stored already (and so were not written again). */
  deduplicated: boolean;
}

export class BlobStore {
  private readonly store: ObjectStore;

  constructor(store: ObjectStore) {
    this.store = store;
  }

  /**
   * Streams `chunks` into a blob. With the digest announced up front the bytes go straight to
   * their final key (S3 and GCS complete the upload only after verification); without it they
   * are staged under `uploads/` and copied into place once their digest is known.
   */
  async write(chunks: AsyncIterable<Uint8Array>, options: BlobWriteOptions = {}): Promise<WrittenBlob> {
    const hash = createHash('sha256');
    let sizeBytes = 0;
    let sha256 = '';
    const expectedSize = options.expectedSizeBytes ?? 0;
    const field = options.headerField ?? 'header';
    const { cap, lease } = options;
    // A client's false claim about its own bytes is an invalid argument, not data loss.
    async function* hashed(): AsyncGenerator<Uint8Array> {
      for await (const chunk of chunks) {
        sizeBytes += chunk.byteLength;
        if (expectedSize && sizeBytes > expectedSize) {
          throw invalidArgument(`${field}.size_bytes announced ${expectedSize} bytes, but the upload sent more (${sizeBytes} so far)`);
        }
        if (cap && sizeBytes > cap.bytes) throw budgetExceeded(cap.budget, `${sizeBytes} or more`, cap.bytes);
        hash.update(chunk);
        noteTransferredBytes(chunk.byteLength);
        options.onChunk?.(chunk);
        yield chunk;
      }
    }
    const verify = async () => {
      sha256 = hash.digest('hex');
      if (sizeBytes === 0) throw invalidArgument('the upload carried no bytes');
      if (expectedSize && sizeBytes !== expectedSize) {
        throw invalidArgument(`${field}.size_bytes announced ${expectedSize} bytes, but the upload ended after ${sizeBytes}`);
      }
      if (options.expectedSha256 && options.expectedSha256 !== sha256) {
        throw invalidArgument(`${field}.sha256 announced ${options.expectedSha256}, but the uploaded bytes hash to sha256 ${sha256}`);
      }
      const trailer = options.trailerSha256?.();
      if (trailer && trailer !== sha256) {
        throw invalidArgument(`trailer.sha256 announced ${trailer}, but the uploaded bytes hash to sha256 ${sha256}`);
      }
      await options.validate?.();
    };

    if (options.expectedSha256) {
      await lease?.hold(blobKey(options.expectedSha256));
      const existing = await this.store.head(blobKey(options.expectedSha256));
      if (existing && (!expectedSize || existing.sizeBytes === expectedSize)) {
        // Stored already: the bytes are still received and checked (the client must really have
        // them, and the caller may read them), but not written a second time.
        for await (const chunk of hashed()) void chunk;
        await verify();
        return { sha256, sizeBytes, deduplicated: true };
      }
      await this.store.upload(blobKey(options.expectedSha256), hashed(), verify);
      return { sha256, sizeBytes, deduplicated: false };
    }

    const stagingKey = `uploads/${randomUUID()}`;
    await lease?.hold(stagingKey);
    await this.store.upload(stagingKey, hashed(), verify);
    try {
      await lease?.hold(blobKey(sha256));
      const existing = await this.store.head(blobKey(sha256));
      if (!existing || existing.sizeBytes !== sizeBytes) await this.store.copy(stagingKey, blobKey(sha256));
      return { sha256, sizeBytes, deduplicated: Boolean(existing && existing.sizeBytes === sizeBytes) };
    } finally {
      await this.store.delete(stagingKey);
    }
  }

  /** Size and time of a stored blob; undefined when absent. */
  info(sha256: string): Promise<ObjectInfo | undefined> {
    return this.store.head(blobKey(sha256));
  }

  /** A stored blob's bytes from `offset`; NOT_FOUND when absent. */
  async *read(sha256: string, offset = 0): AsyncIterable<Uint8Array> {
    try {
      yield* this.store.read(blobKey(sha256), offset);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) throw notFound(`no artifact with sha256 ${sha256}`);
      throw error;
    }
  }

  /** Every stored blob. */
  async *list(): AsyncIterable<ObjectInfo & { sha256: string }> {
    for await (const info of this.store.list('blobs/sha256/')) {
      const sha256 = sha256OfBlobKey(info.key);
      if (sha256) yield { ...info, sha256 };
    }
  }
}

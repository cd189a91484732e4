/**
 * The store on Google Cloud Storage (or an emulator at `endpoint`), through @google-cloud/storage.
 * Create-only writes carry `ifGenerationMatch=0` and compare-and-swap carries
 * `ifGenerationMatch=<generation read>`; the etag is the object's generation. Large uploads are
 * resumable sessions sent in fixed-size chunks (one chunk in memory), and the final chunk goes
 * only after the registry has verified the digest, so a failed upload is never finalised.
 * Credentials come only from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
 * gcloud, the metadata server); an emulator endpoint is used without any.
 */
import type { Bucket, File } from '@google-cloud/storage';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import {
  checkKey, normalizePrefix, ObjectNotFoundError, PreconditionFailedError, type ObjectInfo, type ObjectStore, type StoredObject,
  type WriteCondition,
} from './object-store.ts';
import { endpointForDisplay } from './s3-store.ts';

export interface GcsStoreOptions {
  bucket: string;
  /** Object name prefix, without leading or trailing '/'. Default ''. */
  prefix?: string;
  /** API endpoint of an emulator, e.g. http://127.0.0.1:4443. Default: Google's. */
  endpoint?: string;
  /** Project id; only needed by calls that create buckets, which the registry never makes. */
  projectId?: string;
  /** Bytes per resumable-upload request; a multiple of 256 KiB. Default 8 MiB. */
  chunkSizeBytes?: number;
}

const codeOf = (error: unknown) => Number((error as { code?: unknown })?.code);

/** Resolves when a writable may take more, or can take nothing more (it closed or failed). */
function drained(output: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      output.off('drain', done);
      output.off('close', done);
      output.off('error', done);
      resolve();
    };
    output.on('drain', done);
    output.on('close', done);
    output.on('error', done);
  });
}

export async function createGcsStore(options: GcsStoreOptions): Promise<ObjectStore> {
  const { Storage } = await import('@google-cloud/storage');
  const storage = new Storage({
    ...(options.endpoint ? { apiEndpoint: options.endpoint.replace(/\/$/, ''), useAuthWithCustomEndpoint: false } : {}),
    ...(options.projectId ? { projectId: options.projectId } : {}),
  });
  const bucket: Bucket = storage.bucket(options.bucket);
  const prefix = normalizePrefix(options.prefix);
  const full = (key: string) => (prefix ? `${prefix}/${checkKey(key)}` : checkKey(key));
  const fullPrefix = (listPrefix: string) => (prefix ? `${prefix}/` : '') + listPrefix;
  const relative = (name: string) => (prefix ? name.slice(prefix.length + 1) : name);
  const description = `gs://${options.bucket}${prefix ? `/${prefix}` : ''}${options.endpoint ? ` at ${endpointForDisplay(options.endpoint)}` : ''}`;
  const chunkSize = options.chunkSizeBytes ?? 8 * 1024 * 1024;
  if (chunkSize % (256 * 1024) !== 0) throw new Error(`GCS chunk size ${chunkSize} is not a multiple of 256 KiB`);

  const unavailable = (what: string, error: unknown) =>
    new NexusError(ErrorCode.UNAVAILABLE, `store ${description}: ${what} failed: ${(error as Error)?.message}`, { cause: error });
  const infoOf = (key: string, metadata: File['metadata']): ObjectInfo => ({
    key, sizeBytes: Number(metadata.size ?? 0), modifiedAtMs: metadata.updated ? Date.parse(String(metadata.updated)) : 0,
  });

  const store: ObjectStore = {
    description,

    async get(key): Promise<StoredObject | undefined> {
      // Metadata first, then exactly that generation, so body and etag always belong together.
      for (let attempt = 0; attempt < 5; attempt++) {
        let generation: string;
        try {
          const [metadata] = await bucket.file(full(key)).getMetadata();
          generation = String(metadata.generation);
        } catch (error) {
          if (codeOf(error) === 404) return undefined;
          throw unavailable(`reading ${key}`, error);
        }
        try {
          const [body] = await bucket.file(full(key), { generation }).download({ validation: false });
          return { body, etag: generation };
        } catch (error) {
          if (codeOf(error) !== 404) throw unavailable(`reading ${key}`, error);
          // Replaced between the two calls: read the newer generation.
        }
      }
      throw new NexusError(ErrorCode.UNAVAILABLE, `store ${description}: ${key} kept changing while being read`);
    },

    async put(key, body, condition?: WriteCondition) {
      const file = bucket.file(full(key));
      const ifGenerationMatch = condition ? ('ifNoneMatch' in condition ? 0 : Number(condition.ifMatch)) : undefined;
      try {
        await file.save(Buffer.from(body.buffer, body.byteOffset, body.byteLength), {
          resumable: false,
          validation: false,
          contentType: 'application/json',
          ...(ifGenerationMatch !== undefined ? { preconditionOpts: { ifGenerationMatch } } : {}),
        });
      } catch (error) {
        if (codeOf(error) === 412) throw new PreconditionFailedError(key, { cause: error });
        throw unavailable(`writing ${key}`, error);
      }
      return String(file.metadata.generation);
    },

    async head(key) {
      try {
        const [metadata] = await bucket.file(full(key)).getMetadata();
        return infoOf(key, metadata);
      } catch (error) {
        if (codeOf(error) === 404) return undefined;
        throw unavailable(`looking up ${key}`, error);
      }
    },

    async *list(listPrefix, listOptions = {}) {
      let pageToken: string | undefined;
      do {
        let files: File[];
        let next: { pageToken?: string } | undefined;
        try {
          [files, next] = await bucket.getFiles({
            prefix: fullPrefix(listPrefix),
            // startOffset is inclusive; the key itself is skipped below.
            startOffset: listOptions.startAfter === undefined ? undefined : full(listOptions.startAfter),
            autoPaginate: false,
            maxResults: 1000,
            pageToken,
          }) as unknown as [File[], { pageToken?: string } | undefined];
        } catch (error) {
          throw unavailable(`listing ${listPrefix}`, error);
        }
        for (const file of files) {
          const key = relative(file.name);
          if (listOptions.startAfter !== undefined && key <= listOptions.startAfter) continue;
          yield infoOf(key, file.metadata);
        }
        pageToken = next?.pageToken;
      } while (pageToken);
    },

    async delete(key) {
      try {
        await bucket.file(full(key)).delete({ ignoreNotFound: true });
      } catch (error) {
        throw unavailable(`deleting ${key}`, error);
      }
    },

    async *read(key, offset = 0) {
      const info = await store.head(key);
      if (!info) throw new ObjectNotFoundError(key);
      if (offset >= info.sizeBytes) return;
      try {
        yield* bucket.file(full(key)).createReadStream({ start: offset, validation: false }) as AsyncIterable<Uint8Array>;
      } catch (error) {
        if (codeOf(error) === 404) throw new ObjectNotFoundError(key, { cause: error });
        throw unavailable(`reading ${key}`, error);
      }
    },

    async upload(key, chunks, beforeCommit) {
      const output = bucket.file(full(key)).createWriteStream({
        resumable: true, chunkSize, validation: false, contentType: 'application/octet-stream',
      });
      let streamError: unknown;
      output.on('error', (error) => (streamError ??= error));
      try {
        for await (const chunk of chunks) {
          if (streamError) throw streamError;
          if (!output.write(chunk)) await drained(output);
        }
        // The session is finalised by the last request, which only goes out on end().
        await beforeCommit();
        if (streamError) throw streamError;
        output.end();
        await finished(output);
      } catch (error) {
        output.destroy();
        // A failure of the stream is the store's; anything else (the chunks, the check) is the caller's.
        if (streamError) throw unavailable(`uploading ${key}`, streamError);
        throw error;
      }
    },

    async copy(fromKey, toKey) {
      try {
        await bucket.file(full(fromKey)).copy(bucket.file(full(toKey)));
      } catch (error) {
        if (codeOf(error) === 404) throw new ObjectNotFoundError(fromKey, { cause: error });
        throw unavailable(`copying ${fromKey} to ${toKey}`, error);
      }
    },

    async close() {},
  };
  return store;
}

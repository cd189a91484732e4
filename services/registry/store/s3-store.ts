/**
 * The store on Amazon S3 or any S3-compatible service (MinIO, Ceph, R2, s3rver…), through
 * @aws-sdk/client-s3. Create-only writes send `If-None-Match: *` and compare-and-swap sends
 * `If-Match: <etag>`; both answer 412 when they lose, which is what keeps several registries over
 * one bucket consistent. Uploads above one part go multipart through @aws-sdk/lib-storage, one
 * part in memory per uploader, and are completed only after the registry has verified the digest
 * (a failed upload is aborted, so nothing becomes visible). Credentials come only from the SDK's
 * default chain (environment, profile, SSO, instance or pod role).
 */
import type { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import {
  checkKey, normalizePrefix, ObjectNotFoundError, PreconditionFailedError, type ObjectInfo, type ObjectStore, type StoredObject,
  type WriteCondition,
} from './object-store.ts';

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing '/'. Default '' (the bucket root). */
  prefix?: string;
  /** Endpoint URL of an S3-compatible service, e.g. http://127.0.0.1:9000. Default: AWS. */
  endpoint?: string;
  /** Default: AWS_REGION, else us-east-1 (which S3-compatible services accept). */
  region?: string;
  /** Path-style addressing (http://host/bucket/key). Default true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Size of each multipart part, in bytes; uploads smaller than this are one PUT. Default 8 MiB (S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /** Parts uploaded at once (each held in memory). Default 2. */
  partConcurrency?: number;
}

/** How many times a write that met a conflicting one in flight (409) is retried. */
const CONFLICT_RETRIES = 5;
/** The most CopyObject copies in one request, in bytes. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;

const statusOf = (error: unknown) => (error as S3ServiceException)?.$metadata?.httpStatusCode;
const nameOf = (error: unknown) => (error as Error)?.name;
const isNotFound = (error: unknown) => statusOf(error) === 404 || nameOf(error) === 'NoSuchKey' || nameOf(error) === 'NotFound';

/** Drops user:password@ from an endpoint before it is shown anywhere. */
export function endpointForDisplay(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable endpoint)';
  }
}

export async function createS3Store(options: S3StoreOptions): Promise<ObjectStore> {
  const sdk = await import('@aws-sdk/client-s3');
  const { Upload } = await import('@aws-sdk/lib-storage');
  const client: S3Client = new sdk.S3Client({
    region: options.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoint: options.endpoint || undefined,
    forcePathStyle: options.forcePathStyle ?? Boolean(options.endpoint),
    // Checksums only where S3 requires them: S3-compatible services reject the newer trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = options.bucket;
  const prefix = normalizePrefix(options.prefix);
  const full = (key: string) => (prefix ? `${prefix}/${checkKey(key)}` : checkKey(key));
  const fullPrefix = (listPrefix: string) => (prefix ? `${prefix}/` : '') + listPrefix;
  const relative = (key: string) => (prefix ? key.slice(prefix.length + 1) : key);
  const description = `s3://${bucket}${prefix ? `/${prefix}` : ''}${options.endpoint ? ` at ${endpointForDisplay(options.endpoint)}` : ''}`;
  const partSize = options.partSizeBytes ?? 8 * 1024 * 1024;

  /** Anything but a lost condition or a missing key means the store is out of reach. */
  const unavailable = (what: string, error: unknown) =>
    new NexusError(ErrorCode.UNAVAILABLE, `store ${description}: ${what} failed: ${nameOf(error)}: ${(error as Error)?.message}`, { cause: error });

  const store: ObjectStore = {
    description,

    async get(key): Promise<StoredObject | undefined> {
      try {
        const response = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: full(key) }));
        return { body: await response.Body!.transformToByteArray(), etag: response.ETag ?? '' };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw unavailable(`reading ${key}`, error);
      }
    },

    async put(key, body, condition?: WriteCondition) {
      for (let attempt = 0; ; attempt++) {
        try {
          const response = await client.send(new sdk.PutObjectCommand({
            Bucket: bucket, Key: full(key), Body: body, ContentType: 'application/json',
            IfNoneMatch: condition && 'ifNoneMatch' in condition ? '*' : undefined,
            IfMatch: condition && 'ifMatch' in condition ? condition.ifMatch : undefined,
          }));
          return response.ETag ?? '';
        } catch (error) {
          if (statusOf(error) === 412) throw new PreconditionFailedError(key, { cause: error });
          // 409: another conditional write to this key was in flight. It may yet fail, so this
          // write is retried rather than counted as lost (a lost create would leave a gap).
          if (statusOf(error) === 409 && attempt < CONFLICT_RETRIES) {
            await new Promise((wake) => setTimeout(wake, 20 * 2 ** attempt));
            continue;
          }
          throw unavailable(`writing ${key}`, error);
        }
      }
    },

    async head(key): Promise<ObjectInfo | undefined> {
      try {
        const response = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: full(key) }));
        return { key, sizeBytes: response.ContentLength ?? 0, modifiedAtMs: response.LastModified?.getTime() ?? 0 };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw unavailable(`looking up ${key}`, error);
      }
    },

    async *list(listPrefix, listOptions = {}) {
      let continuationToken: string | undefined;
      do {
        let response;
        try {
          response = await client.send(new sdk.ListObjectsV2Command({
            Bucket: bucket, Prefix: fullPrefix(listPrefix),
            StartAfter: continuationToken || listOptions.startAfter === undefined ? undefined : full(listOptions.startAfter),
            ContinuationToken: continuationToken,
          }));
        } catch (error) {
          throw unavailable(`listing ${listPrefix}`, error);
        }
        for (const object of response.Contents ?? []) {
          if (!object.Key) continue;
          yield { key: relative(object.Key), sizeBytes: object.Size ?? 0, modifiedAtMs: object.LastModified?.getTime() ?? 0 };
        }
        continuationToken = response.IsTruncated ? response.NextContinuationToken : undefined;
      } while (continuationToken);
    },

    async delete(key) {
      try {
        await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: full(key) }));
      } catch (error) {
        if (!isNotFound(error)) throw unavailable(`deleting ${key}`, error);
      }
    },

    async *read(key, offset = 0) {
      let response;
      try {
        response = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: full(key), Range: offset > 0 ? `bytes=${offset}-` : undefined }));
      } catch (error) {
        if (isNotFound(error)) throw new ObjectNotFoundError(key, { cause: error });
        if (statusOf(error) === 416) return; // offset at the end: nothing left to send
        throw unavailable(`reading ${key}`, error);
      }
      yield* response.Body as unknown as AsyncIterable<Uint8Array>;
    },

    async upload(key, chunks, beforeCommit) {
      // The body ends only once beforeCommit accepts the bytes; lib-storage sends the last part
      // (or the single PUT) and completes the upload only after the body ends, and aborts the
      // multipart upload when the body fails.
      let bodyError: unknown;
      async function* body() {
        try {
          for await (const chunk of chunks) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          await beforeCommit();
        } catch (error) {
          bodyError = error;
          throw error;
        }
      }
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: full(key), Body: Readable.from(body(), { objectMode: false }), ContentType: 'application/octet-stream' },
        partSize,
        queueSize: options.partConcurrency ?? 2,
        leavePartsOnError: false,
      });
      try {
        await upload.done();
      } catch (error) {
        // The caller's failure wins over a failed abort: the parts of an aborted upload are never
        // visible (and a bucket lifecycle rule for incomplete multipart uploads reclaims them).
        if (bodyError) throw bodyError;
        if (error instanceof NexusError || !(statusOf(error) ?? 0)) throw error;
        throw unavailable(`uploading ${key}`, error);
      }
    },

    async copy(fromKey, toKey) {
      const source = await store.head(fromKey);
      if (!source) throw new ObjectNotFoundError(fromKey);
      if (source.sizeBytes > MAX_COPY_BYTES) {
        throw new NexusError(ErrorCode.FAILED_PRECONDITION,
          `store ${description}: cannot copy ${source.sizeBytes} bytes in one request (S3 allows 5 GiB); upload with the sha256 in the header instead`);
      }
      try {
        await client.send(new sdk.CopyObjectCommand({
          Bucket: bucket, Key: full(toKey), CopySource: encodeURI(`${bucket}/${full(fromKey)}`),
        }));
      } catch (error) {
        if (isNotFound(error)) throw new ObjectNotFoundError(fromKey, { cause: error });
        throw unavailable(`copying ${fromKey} to ${toKey}`, error);
      }
    },

    async close() {
      client.destroy();
    },
  };
  return store;
}

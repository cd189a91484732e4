/**
 * The one interface every storage backend implements (local directory, S3, GCS). The registry
 * keeps everything in it, records included, so a bucket is the whole database:
 *
 *   blobs/sha256/ab/cdef…                       artifact bytes, named by their digest
 *   uploads/<id>                                 uploads whose digest is not known yet
 *   models/<name>/versions/000001.json           version records, created once (create-only)
 *   models/<name>/aliases/<alias>.json           where an alias points (compare-and-swap)
 *   models/<name>/alias-history/<alias>/….json   every move of an alias (create-only)
 *   events/000000000001.json                     the global event log behind Watch (create-only)
 *
 * Consistency comes from two conditional writes only: create-only (`ifNoneMatch`) and
 * compare-and-swap on the etag read (`ifMatch`). S3 maps them to If-None-Match / If-Match, GCS to
 * ifGenerationMatch, the local directory to exclusive hard links.
 */

/** What a listing or a head returns about one object. */
export interface ObjectInfo {
  key: string;
  sizeBytes: number;
  /** Last write time, in milliseconds since the epoch. */
  modifiedAtMs: number;
}

/** A small object read whole, with the etag a later compare-and-swap must name. */
export interface StoredObject {
  body: Uint8Array;
  etag: string;
}

/** A conditional write: create-only, or replace only while the object still has this etag. */
export type WriteCondition = { ifNoneMatch: true } | { ifMatch: string };

/** A conditional write lost: the object exists (create-only) or changed since it was read. */
export class PreconditionFailedError extends Error {
  readonly key: string;

  constructor(key: string, options?: { cause?: unknown }) {
    super(`the object '${key}' exists or changed since it was read`, options);
    this.name = 'PreconditionFailedError';
    this.key = key;
  }
}

/** The object asked for is not stored. */
export class ObjectNotFoundError extends Error {
  readonly key: string;

  constructor(key: string, options?: { cause?: unknown }) {
    super(`no object '${key}'`, options);
    this.name = 'ObjectNotFoundError';
    this.key = key;
  }
}

export interface ObjectStore {
  /** Where the objects live, for logs and messages, e.g. "s3://bucket/prefix"; never credentials. */
  readonly description: string;

  /** Reads a small object (a record) whole; undefined when absent. */
  get(key: string): Promise<StoredObject | undefined>;

  /**
   * Writes a small object (a record) and returns its new etag. With a condition, throws
   * PreconditionFailedError when it does not hold, and writes nothing.
   */
  put(key: string, body: Uint8Array, condition?: WriteCondition): Promise<string>;

  /** Size and time of an object; undefined when absent. */
  head(key: string): Promise<ObjectInfo | undefined>;

  /** Every object whose key starts with `prefix`, in key order, after `startAfter` when given. */
  list(prefix: string, options?: { startAfter?: string }): AsyncIterable<ObjectInfo>;

  /** Deletes an object; deleting an absent one is not an error. */
  delete(key: string): Promise<void>;

  /** Streams an object's bytes from `offset`; throws ObjectNotFoundError when absent. */
  read(key: string, offset?: number): AsyncIterable<Uint8Array>;

  /**
   * Streams `chunks` into `key` (multipart on S3, resumable on GCS, a temporary file locally) and
   * makes it visible only after `beforeCommit` resolves. If the chunks or `beforeCommit` throw,
   * nothing becomes visible and the error is rethrown. Replaces an existing object, so it is for
   * keys whose content is fixed by the key (blobs) or private to the writer (uploads).
   */
  upload(key: string, chunks: AsyncIterable<Uint8Array>, beforeCommit: () => Promise<void>): Promise<void>;

  /** Copies an object within the store (server-side where the backend can). */
  copy(fromKey: string, toKey: string): Promise<void>;

  /** Releases connections; the store is unusable afterwards. */
  close(): Promise<void>;
}

/** Keys are '/'-separated, each segment non-empty, without '..' or characters a backend treats specially. */
const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Throws unless `key` is a well-formed object key (the registry builds keys from validated names). */
export function checkKey(key: string): string {
  if (!KEY.test(key) || key.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new Error(`invalid object key '${key}'`);
  }
  return key;
}

/** Normalises a bucket prefix ('' or segments without '/' at either end); throws on '.', '..' or odd characters. */
export function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (trimmed) checkKey(trimmed);
  return trimmed;
}

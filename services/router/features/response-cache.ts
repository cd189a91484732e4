/**
 * An in-process LRU cache of inference responses, keyed by model version and a hash of the
 * request's inputs, bounded by bytes and by age. Pure apart from the hash; the clock is injected.
 */
import { createHash } from 'node:crypto';
import type { Tensor } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { ValidatedRequest } from '../admission/index.ts';

export interface ResponseCacheOptions {
  /** Most bytes of cached output tensors. */
  maxBytes: number;
  /** How long an entry stays valid, in milliseconds. */
  ttlMs: number;
  /** Clock in milliseconds. Default Date.now. */
  now?: () => number;
}

interface Entry {
  outputs: Map<string, Tensor>;
  bytes: number;
  storedAtMs: number;
}

/** A key that changes with any byte, shape, datatype or name of the inputs, and with the version. */
export function cacheKeyOf(versionKey: string, request: ValidatedRequest): string {
  const hash = createHash('sha256').update(versionKey);
  for (const input of request.inputs) {
    hash.update(`\0${input.name}\0${input.datatype}\0${input.shape.join(',')}\0`);
    hash.update(input.data);
  }
  return hash.digest('hex');
}

export class ResponseCache {
  hits = 0;
  misses = 0;
  private bytes = 0;
  private readonly entries = new Map<string, Entry>();
  private readonly options: Required<ResponseCacheOptions>;

  constructor(options: ResponseCacheOptions) {
    this.options = { now: Date.now, ...options };
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** The cached outputs for a key, refreshed as most recently used; undefined on a miss. */
  get(key: string): Map<string, Tensor> | undefined {
    const entry = this.entries.get(key);
    if (!entry || this.options.now() - entry.storedAtMs > this.options.ttlMs) {
      if (entry) this.delete(key, entry);
      this.misses += 1;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.hits += 1;
    return entry.outputs;
  }

  /** Stores outputs (copied, so later changes to their buffers cannot alter the cache). */
  set(key: string, outputs: Map<string, Tensor>): void {
    const copied = new Map([...outputs].map(([name, tensor]) => [name, { ...tensor, data: new Uint8Array(tensor.data) }]));
    const bytes = [...copied.values()].reduce((sum, tensor) => sum + tensor.data.byteLength, 0);
    if (bytes > this.options.maxBytes) return;
    const previous = this.entries.get(key);
    if (previous) this.delete(key, previous);
    this.entries.set(key, { outputs: copied, bytes, storedAtMs: this.options.now() });
    this.bytes += bytes;
    // Map iteration order is insertion order: the first entries are the least recently used.
    for (const [oldKey, oldEntry] of this.entries) {
      if (this.bytes <= this.options.maxBytes) break;
      this.delete(oldKey, oldEntry);
    }
  }

  private delete(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}

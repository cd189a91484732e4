/**
 * A small least-recently-used map of execution plans by input shapes, so a batch size seen
 * again reuses its buffers and bind groups. Evicted plans are handed to `onEvict` (which frees
 * their GPU memory).
 */
export class LruCache<Value> {
  private readonly entries = new Map<string, Value>();
  private readonly capacity: number;
  private readonly onEvict: (value: Value) => void;

  /** `capacity`: entries kept (>= 1). */
  constructor(capacity: number, onEvict: (value: Value) => void) {
    if (!(capacity >= 1)) throw new RangeError(`cache capacity must be >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.onEvict = onEvict;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value for `key`, now the most recently used; undefined when absent. */
  get(key: string): Value | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      // Map iterates in insertion order: re-inserting moves the key to the young end.
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  /** Adds `value` as the most recently used, evicting the least recently used beyond capacity. */
  set(key: string, value: Value): void {
    const previous = this.entries.get(key);
    this.entries.delete(key);
    if (previous !== undefined && previous !== value) this.onEvict(previous);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) {
      const [oldestKey, oldest] = this.entries.entries().next().value!;
      this.entries.delete(oldestKey);
      this.onEvict(oldest);
    }
  }

  /** Evicts everything. */
  clear(): void {
    const values = [...this.entries.values()];
    this.entries.clear();
    for (const value of values) this.onEvict(value);
  }
}

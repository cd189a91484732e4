/**
 * Leases that keep garbage collection away from uploads under way. An upload holds its staging
 * key and its blob's key from before it first looks for the blob until its version record is
 * written (or the upload fails); the collector skips every key held, and every key released
 * while it was running (its list of references predates the record that release stands for).
 * A key being deleted cannot be leased until the deletion is over, so an upload never counts on
 * a blob the collector is removing: it finds the blob absent and stores its bytes itself.
 *
 * Leases are per process. Registries sharing one store are kept apart by the collector's
 * minimum age instead (see RegistryLimits.gcMinAgeMs).
 */

/** The keys one upload holds; release() lets them all go, once. */
export interface UploadLease {
  /** Holds `key` until release(), after any deletion of it under way has ended. */
  hold(key: string): Promise<void>;
  release(): void;
}

export class UploadLeases {
  private readonly held = new Map<string, number>();
  private readonly deleting = new Map<string, Promise<unknown>>();
  private collections = 0;
  /** Keys released while a collection ran, which that collection must not delete. */
  private readonly releasedDuringCollection = new Set<string>();

  /** A new lease, holding nothing yet. */
  open(): UploadLease {
    const keys: string[] = [];
    let released = false;
    return {
      hold: async (key) => {
        while (this.deleting.has(key)) await this.deleting.get(key)!.catch(() => undefined);
        if (released) return;
        keys.push(key);
        this.held.set(key, (this.held.get(key) ?? 0) + 1);
      },
      release: () => {
        if (released) return;
        released = true;
        for (const key of keys) {
          const count = this.held.get(key)! - 1;
          if (count === 0) this.held.delete(key);
          else this.held.set(key, count);
          if (this.collections > 0) this.releasedDuringCollection.add(key);
        }
      },
    };
  }

  /** True while some upload holds `key`. */
  isHeld(key: string): boolean {
    return this.held.has(key);
  }

  /** Marks a collection as running; the returned function ends it. */
  beginCollection(): () => void {
    this.collections += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.collections -= 1;
      if (this.collections === 0) this.releasedDuringCollection.clear();
    };
  }

  /**
   * Runs `remove` for `key` unless an upload holds it or released it during this collection;
   * leasing `key` waits until `remove` has finished. Resolves to what `remove` did (whether it
   * deleted), or false when it did not run.
   */
  async collect(key: string, remove: () => Promise<boolean>): Promise<boolean> {
    if (this.held.has(key) || this.releasedDuringCollection.has(key) || this.deleting.has(key)) return false;
    const removal = remove();
    this.deleting.set(key, removal);
    try {
      return await removal;
    } finally {
      this.deleting.delete(key);
    }
  }
}

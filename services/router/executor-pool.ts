/**
 * All executors this router dials. Picks the least-loaded ready executor that holds a model and
 * has a free slot, and keeps every served model loaded on every executor (also after one
 * reconnects). A batch lost with its executor comes back to the batcher as UNAVAILABLE.
 */
import type { BatchResult, ExecuteBatch } from '../protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, NexusError } from '../domain/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { ExecutorLink } from './executor-link.ts';

export const versionKey = (version: Pick<ModelVersion, 'modelName' | 'version'>) => `${version.modelName}:${version.version}`;

/** How long a load may wait for a first executor to connect, in milliseconds. */
const WAIT_FOR_EXECUTOR_MS = 30_000;

export class ExecutorPool {
  readonly links: ExecutorLink[];
  private readonly served = new Map<string, ModelVersion>();
  private readonly capacityListeners = new Set<() => void>();
  private readonly logger: Logger;

  constructor(addresses: string[], logger: Logger) {
    this.logger = logger;
    this.links = addresses.map((address) => new ExecutorLink(address, logger));
    for (const link of this.links) {
      link.onCapacity = () => {
        this.reloadServedModels(link);
        for (const listener of this.capacityListeners) listener();
      };
    }
  }

  get anyReady(): boolean {
    return this.links.some((link) => link.ready);
  }

  /** Calls `listener` whenever an executor frees a slot or (re)connects. Returns an unsubscribe. */
  onCapacity(listener: () => void): () => void {
    this.capacityListeners.add(listener);
    return () => this.capacityListeners.delete(listener);
  }

  isLoaded(key: string): boolean {
    return this.links.some((link) => link.ready && link.loaded.has(key));
  }

  /** True when some executor holding `key` has a free slot. */
  hasCapacity(key: string): boolean {
    return this.pick(key) !== undefined;
  }

  private pick(key: string): ExecutorLink | undefined {
    let best: ExecutorLink | undefined;
    for (const link of this.links) {
      if (!link.loaded.has(key) || link.freeSlots === 0) continue;
      if (!best || link.inflight < best.inflight) best = link;
    }
    return best;
  }

  /** Loads `version` on every ready executor; resolves once at least one has it. */
  async ensureLoaded(version: ModelVersion): Promise<void> {
    const key = versionKey(version);
    this.served.set(key, version);
    if (this.isLoaded(key)) return;
    if (!this.anyReady) await this.waitForAnyExecutor();
    const attempts = this.links.filter((link) => link.ready && !link.loaded.has(key)).map((link) => link.load(version));
    if (attempts.length === 0 && this.isLoaded(key)) return;
    try {
      await Promise.any(attempts);
    } catch (error) {
      this.served.delete(key);
      const first = (error as AggregateError).errors?.[0];
      throw first ? NexusError.from(first) : new NexusError(ErrorCode.UNAVAILABLE, `no executor could load ${key}`);
    }
  }

  private async waitForAnyExecutor(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NexusError(ErrorCode.UNAVAILABLE,
        `no executor is connected (tried ${this.links.map((link) => link.address).join(', ') || 'none configured'})`)), WAIT_FOR_EXECUTOR_MS);
    });
    try {
      await Promise.race([Promise.any(this.links.map((link) => link.whenReady())), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private reloadServedModels(link: ExecutorLink): void {
    if (!link.ready) return;
    for (const [key, version] of this.served) {
      if (link.loaded.has(key)) continue;
      link.load(version).then(
        () => { for (const listener of this.capacityListeners) listener(); },
        (error: unknown) => this.logger.warn({ err: error, model: key, executor: link.address }, 'reload on reconnect failed'),
      );
    }
  }

  /** Stops serving a version: no reload on reconnect, and every executor frees it. */
  unload(version: Pick<ModelVersion, 'modelName' | 'version'>): void {
    this.served.delete(versionKey(version));
    for (const link of this.links) link.unload(version.modelName, version.version);
  }

  /**
   * Runs a batch on the least-loaded executor holding the model. UNAVAILABLE means the batch did
   * not run (its executor was lost or none had a slot): the batcher queues it again.
   */
  execute(key: string, batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult> {
    const link = this.pick(key);
    if (!link) return Promise.reject(new NexusError(ErrorCode.UNAVAILABLE, `no executor with a free slot holds ${key}`));
    return link.execute(batch);
  }

  close(): void {
    for (const link of this.links) link.close();
  }
}

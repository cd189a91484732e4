/**
 * All executors this router dials. Picks the least-loaded ready executor that holds a model and
 * has a free slot, and keeps every served model loaded on every executor (also after one
 * reconnects). A batch lost with its executor comes back to the batcher as UNAVAILABLE. The pool
 * makes its links through an injected factory, so it is tested with fakes and no sockets.
 *
 * Executors may come and go while it serves (DNS discovery, executor-discovery.ts): one added is
 * dialed and given the served models; one drained gets no new batch, load or sequence, and is
 * closed and forgotten once the batches and sequences it runs are answered (or after
 * `drainTimeoutMs`, when whatever is left fails UNAVAILABLE and runs elsewhere).
 */
import type { BatchResult, ExecuteBatch, ModelLoadResult } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, modelKeyOf, NexusError, type ModelKey } from '../../domain/index.ts';
import type { Logger } from '../../telemetry/logger.ts';

/** What the pool needs of one executor link (ExecutorLink is one). */
export interface PoolLink {
  readonly address: string;
  /** Connected and greeted. */
  readonly ready: boolean;
  /** Batches sent and not yet answered. */
  readonly inflight: number;
  /** Batches it may take now. */
  readonly freeSlots: number;
  /** Model versions it holds, by model key. */
  readonly loaded: ReadonlySet<string>;
  /** Set by the pool: called when a slot frees or the link (re)connects. */
  onCapacity: () => void;
  /** Set by the pool: called when the executor unloaded a model on its own (its GPU memory budget). */
  onModelUnloaded: (key: ModelKey) => void;
  /** Text generation sequences running on it (a drained link waits for them too); none when absent. */
  readonly runningSequences?: number;
  start(): void;
  whenReady(): Promise<void>;
  load(version: ModelVersion, maxBatchSize?: number): Promise<ModelLoadResult>;
  unload(modelName: string, version: number): void;
  execute(batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult>;
  close(): void;
}

/** Where an executor's address came from: --executor (kept for the life of the router) or DNS. */
export type ExecutorOrigin = 'static' | 'discovered';

export interface ExecutorPoolOptions<Link extends PoolLink = PoolLink> {
  /** Executors to dial, host:port each. */
  addresses: readonly string[];
  /** Makes the link to one address; it dials nothing until `start`. */
  createLink: (address: string, origin: ExecutorOrigin) => Link;
  logger: Logger;
  /** How long a load may wait for a first executor to connect, in milliseconds. Default 30 000. */
  waitForExecutorMs?: number;
  /** The clock, in Unix milliseconds (tests pass their own). Default Date.now. */
  now?: () => number;
  /**
   * Longest wait for a drained executor's batches and sequences, in milliseconds, before it is
   * closed regardless (what is left fails UNAVAILABLE and runs elsewhere). Default 60 000.
   */
  drainTimeoutMs?: number;
}

/** Backoff before an evicted model is loaded again on the executor that evicted it: 1 s doubling to 5 min. */
const EVICTION_BACKOFF_MIN_MS = 1_000;
const EVICTION_BACKOFF_MAX_MS = 300_000;
/** An eviction this long after the previous one starts the backoff afresh. */
const EVICTION_MEMORY_MS = 600_000;

export class ExecutorPool<Link extends PoolLink = PoolLink> {
  /** Every executor dialed, draining ones included until they are dropped. */
  readonly links: Link[] = [];
  /** Executors being drained, with the timer that closes them regardless. */
  private readonly draining = new Map<Link, NodeJS.Timeout>();
  private readonly origins = new Map<Link, ExecutorOrigin>();
  private readonly createLink: (address: string, origin: ExecutorOrigin) => Link;
  private readonly drainTimeoutMs: number;
  private started = false;
  /** Served versions with the max batch size their executors warm up to. */
  private readonly served = new Map<ModelKey, { version: ModelVersion; maxBatchSize: number }>();
  private readonly capacityListeners = new Set<() => void>();
  /** Reloads under way, by link and model key, so capacity events do not start them twice. */
  private readonly reloading = new Set<string>();
  /**
   * Models an executor evicted to fit its GPU memory budget, by link and model key: they are
   * loaded there again only when a batch needs them, and no sooner than their backoff allows, so
   * served models that do not fit together cannot make the router and the executor reload each
   * other's choice forever.
   */
  private readonly evictions = new Map<string, { retryAtMs: number; delayMs: number; lastMs: number }>();
  private readonly now: () => number;
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly logger: Logger;
  private readonly waitForExecutorMs: number;

  constructor(options: ExecutorPoolOptions<Link>) {
    this.logger = options.logger;
    this.waitForExecutorMs = options.waitForExecutorMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.createLink = options.createLink;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
    for (const address of options.addresses) this.attach(address, 'static');
  }

  private attach(address: string, origin: ExecutorOrigin): Link {
    const link = this.createLink(address, origin);
    link.onCapacity = () => {
      if (this.draining.has(link)) {
        this.dropWhenIdle(link);
        return;
      }
      this.reloadServedModels(link);
      this.notifyCapacity();
    };
    link.onModelUnloaded = (key) => this.evicted(link, key);
    this.links.push(link);
    this.origins.set(link, origin);
    return link;
  }

  /** Dials every executor. */
  start(): void {
    this.started = true;
    for (const link of this.links) link.start();
  }

  /** The links that take new work: every link but the draining ones. */
  get acceptingLinks(): Link[] {
    return this.links.filter((link) => !this.draining.has(link));
  }

  /**
   * Adds an executor found after start and dials it (the served models follow once it says
   * hello). A draining one is taken back. False, changing nothing, when the pool holds the
   * address as an --executor.
   */
  addExecutor(address: string): boolean {
    const existing = this.links.find((link) => link.address === address);
    if (existing && this.origins.get(existing) === 'static') return false;
    if (existing) {
      clearTimeout(this.draining.get(existing));
      if (this.draining.delete(existing)) this.logger.info({ executor: address }, 'executor back; no longer draining');
      existing.onCapacity();
      return true;
    }
    const link = this.attach(address, 'discovered');
    if (this.started) link.start();
    return true;
  }

  /**
   * Drains an executor: no new batch, load or sequence goes to it; it is closed and forgotten
   * once what it runs is answered, or after `drainTimeoutMs`.
   */
  drainExecutor(address: string): void {
    const link = this.links.find((candidate) => candidate.address === address);
    if (!link || this.draining.has(link)) return;
    const timer = setTimeout(() => {
      this.logger.warn({ executor: address, inflight: link.inflight, sequences: link.runningSequences ?? 0, after_ms: this.drainTimeoutMs },
        'drained executor still busy; closing it (what it runs fails UNAVAILABLE and runs elsewhere)');
      this.drop(link);
    }, this.drainTimeoutMs);
    timer.unref();
    this.draining.set(link, timer);
    this.logger.info({ executor: address, inflight: link.inflight }, 'draining executor');
    this.dropWhenIdle(link);
  }

  private dropWhenIdle(link: Link): void {
    if (link.inflight === 0 && (link.runningSequences ?? 0) === 0) this.drop(link);
  }

  private drop(link: Link): void {
    clearTimeout(this.draining.get(link));
    this.draining.delete(link);
    this.origins.delete(link);
    const at = this.links.indexOf(link);
    if (at < 0) return;
    this.links.splice(at, 1);
    for (const slot of [...this.evictions.keys()]) if (slot.startsWith(`${link.address}|`)) this.evictions.delete(slot);
    link.close();
    this.logger.info({ executor: link.address }, 'executor dropped');
    // What waited for it may go elsewhere now.
    this.notifyCapacity();
  }

  get anyReady(): boolean {
    return this.acceptingLinks.some((link) => link.ready);
  }

  /** Calls `listener` whenever an executor frees a slot or (re)connects. Returns an unsubscribe. */
  onCapacity(listener: () => void): () => void {
    this.capacityListeners.add(listener);
    return () => this.capacityListeners.delete(listener);
  }

  private notifyCapacity(): void {
    for (const listener of this.capacityListeners) listener();
  }

  isLoaded(key: ModelKey): boolean {
    return this.acceptingLinks.some((link) => link.ready && link.loaded.has(key));
  }

  /**
   * True when some executor holding `key` has a free slot. Asked by a batcher with requests
   * waiting, so a served model no executor holds any more (evicted) is loaded again from here.
   */
  hasCapacity(key: ModelKey): boolean {
    if (this.pick(key) !== undefined) return true;
    if (!this.isLoaded(key)) this.reloadEvicted(key);
    return false;
  }

  private evicted(link: Link, key: ModelKey): void {
    const slot = `${link.address}|${key}`;
    const now = this.now();
    const previous = this.evictions.get(slot);
    // Evicted again soon after coming back: wait twice as long before the next reload.
    const delayMs = previous && now - previous.lastMs < EVICTION_MEMORY_MS ? Math.min(previous.delayMs * 2, EVICTION_BACKOFF_MAX_MS) : EVICTION_BACKOFF_MIN_MS;
    this.evictions.set(slot, { retryAtMs: now + delayMs, delayMs, lastMs: now });
    this.logger.warn({ model: key, executor: link.address, reload_after_ms: delayMs }, 'executor evicted a model; it is loaded again when a batch needs it');
  }

  /** Loads an evicted, served model again on one ready executor whose backoff for it has passed. */
  private reloadEvicted(key: ModelKey): void {
    const served = this.served.get(key);
    if (!served) return;
    const now = this.now();
    let soonestMs = Infinity;
    for (const link of this.acceptingLinks) {
      const slot = `${link.address}|${key}`;
      const eviction = this.evictions.get(slot);
      if (!link.ready || !eviction || this.reloading.has(slot)) continue;
      if (now >= eviction.retryAtMs) {
        this.reload(link, key, served);
        return;
      }
      soonestMs = Math.min(soonestMs, eviction.retryAtMs);
    }
    // The batcher asks again on the next capacity event; make sure there is one when the backoff ends.
    if (soonestMs < Infinity && !this.wakeTimer) {
      this.wakeTimer = setTimeout(() => {
        this.wakeTimer = undefined;
        this.notifyCapacity();
      }, soonestMs - now);
      this.wakeTimer.unref();
    }
  }

  private reload(link: Link, key: ModelKey, served: { version: ModelVersion; maxBatchSize: number }): void {
    const slot = `${link.address}|${key}`;
    this.reloading.add(slot);
    link.load(served.version, served.maxBatchSize).then(
      () => this.notifyCapacity(),
      (error: unknown) => this.logger.warn({ err: error, model: key, executor: link.address }, 'reload failed'),
    ).finally(() => this.reloading.delete(slot));
  }

  private pick(key: ModelKey): Link | undefined {
    let best: Link | undefined;
    for (const link of this.acceptingLinks) {
      if (!link.loaded.has(key) || link.freeSlots === 0) continue;
      if (!best || link.inflight < best.inflight) best = link;
    }
    return best;
  }

  /**
   * Loads `version` on every ready executor, warmed up to `maxBatchSize` (the batcher's max batch
   * size; 0: the record's); resolves once at least one has it.
   */
  async ensureLoaded(version: ModelVersion, maxBatchSize = 0): Promise<void> {
    const key = modelKeyOf(version);
    this.served.set(key, { version, maxBatchSize });
    if (this.isLoaded(key)) return;
    if (!this.anyReady) await this.waitForAnyExecutor();
    const attempts = this.acceptingLinks.filter((link) => link.ready && !link.loaded.has(key)).map((link) => link.load(version, maxBatchSize));
    if (attempts.length === 0 && this.isLoaded(key)) return;
    try {
      await Promise.any(attempts);
    } catch (error) {
      this.served.delete(key);
      const first = (error as AggregateError).errors?.[0];
      throw first ? NexusError.from(first) : new NexusError(ErrorCode.UNAVAILABLE, `no executor could load ${key}`);
    }
  }

  /** Waits for any accepting executor to say hello, one added later (discovered) included. */
  private waitForAnyExecutor(): Promise<void> {
    if (this.anyReady) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const unsubscribe = this.onCapacity(() => {
        if (!this.anyReady) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new NexusError(ErrorCode.UNAVAILABLE,
          `no executor is connected (tried ${this.acceptingLinks.map((link) => link.address).join(', ') || 'none configured or discovered yet'})`));
      }, this.waitForExecutorMs);
    });
  }

  private reloadServedModels(link: Link): void {
    if (!link.ready) return;
    for (const [key, served] of this.served) {
      if (link.loaded.has(key)) continue;
      const slot = `${link.address}|${key}`;
      // An evicted model comes back on demand (hasCapacity), not on every freed slot.
      if (this.reloading.has(slot) || this.evictions.has(slot)) continue;
      this.reload(link, key, served);
    }
  }

  /** Stops serving a version: no reload on reconnect, and every executor frees it. */
  unload(version: Pick<ModelVersion, 'modelName' | 'version'>): void {
    this.served.delete(modelKeyOf(version));
    for (const link of this.links) link.unload(version.modelName, version.version);
  }

  /**
   * Runs a batch on the least-loaded executor holding the model. UNAVAILABLE means the batch did
   * not run (its executor was lost or none had a slot): the batcher queues it again.
   */
  execute(key: ModelKey, batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult> {
    const link = this.pick(key);
    if (!link) return Promise.reject(new NexusError(ErrorCode.UNAVAILABLE, `no executor with a free slot holds ${key}`));
    return link.execute(batch);
  }

  close(): void {
    for (const timer of this.draining.values()) clearTimeout(timer);
    this.draining.clear();
    for (const link of this.links) link.close();
  }
}

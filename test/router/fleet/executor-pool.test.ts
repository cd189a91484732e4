/** The executor pool over fake links: where batches go, capacity, a lost link and its reload. */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { BatchResult, ExecuteBatch, ModelLoadResult } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, modelKey, modelKeyOf, NexusError, type ModelKey } from '../../../services/domain/index.ts';
import { ModelBatcher } from '../../../services/router/batching/index.ts';
import { ExecutorPool, type PoolLink } from '../../../services/router/fleet/index.ts';
import { doubled, record } from '../fakes.ts';

const logger = pino({ level: 'silent' });
const IRIS = modelKey('iris', 1);

class FakeLink implements PoolLink {
  ready = true;
  inflight = 0;
  slots = 2;
  started = false;
  readonly loaded = new Set<string>();
  readonly ran: Array<Omit<ExecuteBatch, 'batchId'>> = [];
  readonly loads: ModelVersion[] = [];
  /** The max batch size each load asked the executor to warm up to. */
  readonly loadBatchSizes: number[] = [];
  onCapacity: () => void = () => {};
  onModelUnloaded: (key: ModelKey) => void = () => {};
  /** What the next batch does; default: answered at once. */
  next: () => Promise<BatchResult> | undefined = () => undefined;

  readonly address: string;
  constructor(address: string) {
    this.address = address;
  }

  get freeSlots(): number {
    return this.ready ? Math.max(0, this.slots - this.inflight) : 0;
  }

  start(): void {
    this.started = true;
  }

  async whenReady(): Promise<void> {}

  async load(version: ModelVersion, maxBatchSize = 0): Promise<ModelLoadResult> {
    this.loads.push(version);
    this.loadBatchSizes.push(maxBatchSize);
    this.loaded.add(modelKeyOf(version));
    return { requestId: 0, errorCode: 0, errorMessage: '', model: undefined } as unknown as ModelLoadResult;
  }

  unload(modelName: string, version: number): void {
    this.loaded.delete(modelKey(modelName, version));
  }

  execute(batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult> {
    this.ran.push(batch);
    return this.next() ?? Promise.resolve(doubled(batch));
  }

  /** The stream breaks: not ready, nothing loaded. */
  lose(): void {
    this.ready = false;
    this.loaded.clear();
  }

  close(): void {}
}

function poolOf(count: number, now: () => number = Date.now) {
  const links: FakeLink[] = [];
  const pool = new ExecutorPool({
    now,
    addresses: Array.from({ length: count }, (_, index) => `executor-${index}:1`),
    createLink: (address) => {
      const link = new FakeLink(address);
      links.push(link);
      return link;
    },
    logger,
    waitForExecutorMs: 50,
  });
  return { pool, links };
}

const batch = (): Omit<ExecuteBatch, 'batchId'> => ({
  modelName: 'iris', version: 1, deadlineUnixMs: 0, traceContext: {},
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Uint8Array(new Float32Array([1, 2]).buffer) }],
});

describe('ExecutorPool', () => {
  it('dials nothing until started', () => {
    const { pool, links } = poolOf(2);
    expect(links.map((link) => link.started)).toEqual([false, false]);
    pool.start();
    expect(links.map((link) => link.started)).toEqual([true, true]);
  });

  it('sends a batch to the least-loaded link that holds the model', async () => {
    const { pool, links } = poolOf(3);
    for (const link of links) link.loaded.add(IRIS);
    links[0].inflight = 1;
    links[1].inflight = 0;
    links[2].loaded.clear(); // idle, but without the model
    await pool.execute(IRIS, batch());
    expect(links.map((link) => link.ran.length)).toEqual([0, 1, 0]);
  });

  it('has capacity only while a link holding the model has a free slot', async () => {
    const { pool, links } = poolOf(2);
    expect(pool.hasCapacity(IRIS)).toBe(false);
    links[0].loaded.add(IRIS);
    expect(pool.hasCapacity(IRIS)).toBe(true);
    links[0].inflight = links[0].slots;
    expect(pool.hasCapacity(IRIS)).toBe(false);
    await expect(pool.execute(IRIS, batch())).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(links[0].ran).toHaveLength(0);
  });

  it('loads a version on every ready link and resolves once one has it', async () => {
    const { pool, links } = poolOf(2);
    links[1].ready = false;
    await pool.ensureLoaded(record('iris', 1));
    expect(links.map((link) => link.loads.length)).toEqual([1, 0]);
    expect(pool.isLoaded(IRIS)).toBe(true);
  });

  it('runs a batch lost with its link again on another one', async () => {
    const { pool, links } = poolOf(2);
    for (const link of links) link.loaded.add(IRIS);
    links[1].inflight = 1; // link 0 is chosen first
    links[0].next = () => {
      links[0].lose();
      return Promise.reject(new NexusError(ErrorCode.UNAVAILABLE, 'executor-0 disconnected'));
    };
    const batcher = new ModelBatcher({
      policy: { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 10 },
      hasCapacity: () => pool.hasCapacity(IRIS),
      run: (inputs) => pool.execute(IRIS, { ...batch(), inputs }),
    });
    const answer = await batcher.submit({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Uint8Array(new Float32Array([3, 4]).buffer) }],
      rows: 1, shapeKey: 'x:2', outputNames: ['y'], rawOutput: false, inputBytes: 0, outputBytes: 0,
    });
    expect(links.map((link) => link.ran.length)).toEqual([1, 1]);
    expect(Array.from(new Float32Array(new Uint8Array(answer.outputs.get('y')!.data).buffer))).toEqual([6, 8]);
  });

  it('reloads what it serves on a link that reconnects, and tells the batchers', async () => {
    const { pool, links } = poolOf(2);
    await pool.ensureLoaded(record('iris', 1));
    let told = 0;
    pool.onCapacity(() => { told += 1; });
    links[0].lose();
    expect(pool.isLoaded(IRIS)).toBe(true); // link 1 still has it
    links[0].ready = true;
    links[0].onCapacity(); // hello again
    await new Promise((resolve) => setImmediate(resolve));
    expect(links[0].loads).toHaveLength(2);
    expect(links[0].loaded.has(IRIS)).toBe(true);
    expect(told).toBeGreaterThanOrEqual(2); // the reconnect, and the reload's end
  });

  it('asks every executor to warm up to the batcher\'s max batch size, on reloads too', async () => {
    const { pool, links } = poolOf(2);
    await pool.ensureLoaded(record('iris', 1), 40);
    links[0].lose();
    links[0].ready = true;
    links[0].onCapacity(); // hello again
    await new Promise((resolve) => setImmediate(resolve));
    expect(links.map((link) => link.loadBatchSizes)).toEqual([[40, 40], [40]]);
  });

  it('stops reloading a version once it is unloaded', async () => {
    const { pool, links } = poolOf(1);
    await pool.ensureLoaded(record('iris', 1));
    pool.unload({ modelName: 'iris', version: 1 });
    expect(pool.isLoaded(IRIS)).toBe(false);
    links[0].onCapacity();
    expect(links[0].loads).toHaveLength(1);
  });

  it('loads a model its executor evicted again only when a batch needs it, with a growing backoff', async () => {
    let clock = 1_000_000;
    const { pool, links } = poolOf(1, () => clock);
    await pool.ensureLoaded(record('iris', 1));
    const evict = () => {
      links[0].loaded.delete(IRIS);
      links[0].onModelUnloaded(IRIS);
    };
    evict();
    // Freed slots do not bring it back: only demand does, and not before its backoff (1 s).
    links[0].onCapacity();
    expect(pool.hasCapacity(IRIS)).toBe(false);
    expect(links[0].loads).toHaveLength(1);
    clock += 1_000;
    expect(pool.hasCapacity(IRIS)).toBe(false); // the reload has only started
    await new Promise((resolve) => setImmediate(resolve));
    expect(links[0].loads).toHaveLength(2);
    expect(pool.hasCapacity(IRIS)).toBe(true);
    // Evicted again soon after: the next reload waits twice as long.
    evict();
    clock += 1_999;
    pool.hasCapacity(IRIS);
    await new Promise((resolve) => setImmediate(resolve));
    expect(links[0].loads).toHaveLength(2);
    clock += 1;
    pool.hasCapacity(IRIS);
    await new Promise((resolve) => setImmediate(resolve));
    expect(links[0].loads).toHaveLength(3);
  });

  it('wakes the batchers when an evicted model\'s backoff ends, so waiting requests run', async () => {
    const { pool, links } = poolOf(1);
    await pool.ensureLoaded(record('iris', 1));
    let told = 0;
    pool.onCapacity(() => { told += 1; });
    links[0].loaded.delete(IRIS);
    links[0].onModelUnloaded(IRIS);
    expect(pool.hasCapacity(IRIS)).toBe(false);
    expect(told).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(told).toBe(1);
    expect(pool.hasCapacity(IRIS)).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.hasCapacity(IRIS)).toBe(true);
  });
});

/**
 * Executors found by DNS (--executors-dns): reading the flag, what one resolution changes, the
 * follower with an injected resolver, and the pool adding and draining executors under it, over
 * fake links (no sockets, no DNS).
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { BatchResult, ExecuteBatch, ModelLoadResult } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, modelKey, modelKeyOf, type ModelKey } from '../../../services/domain/index.ts';
import {
  ExecutorDiscovery, executorAddress, membershipChange, parseDnsTarget, reportingReconnects, systemResolver, type Resolution,
} from '../../../services/router/fleet/executor-discovery.ts';
import { ExecutorPool, type PoolLink } from '../../../services/router/fleet/index.ts';
import type { ExecutorStream } from '../../../services/router/fleet/index.ts';
import { deferred, doubled, record, settle } from '../fakes.ts';

const logger = pino({ level: 'silent' });
const IRIS = modelKey('iris', 1);

describe('parseDnsTarget', () => {
  it('reads NAME and NAME:PORT, the port defaulting to the executor\'s 8021', () => {
    expect(parseDnsTarget('nexus-executor.nexus.svc.cluster.local')).toEqual({ name: 'nexus-executor.nexus.svc.cluster.local', port: 8021 });
    expect(parseDnsTarget('executors:9000')).toEqual({ name: 'executors', port: 9000 });
    expect(parseDnsTarget(' executors.local. ')).toEqual({ name: 'executors.local.', port: 8021 });
  });

  it('refuses what is not a DNS name with a port, naming the flag', () => {
    expect(() => parseDnsTarget('')).toThrow(/--executors-dns \(NEXUS_EXECUTORS_DNS\) is empty/);
    expect(() => parseDnsTarget('10.0.0.5:8021')).toThrow(/is an address, not a DNS name; dial one executor by address with --executor/);
    expect(() => parseDnsTarget('10.0.0.5')).toThrow(/is an address/);
    expect(() => parseDnsTarget('[fd00::1]:8021')).toThrow(/is an address/);
    expect(() => parseDnsTarget('fd00::1')).toThrow(/is an address/);
    expect(() => parseDnsTarget('executors:0')).toThrow(/the port must be a number from 1 to 65535, got '0'/);
    expect(() => parseDnsTarget('executors:70000')).toThrow(/got '70000'/);
    expect(() => parseDnsTarget('executors:http')).toThrow(/got 'http'/);
    expect(() => parseDnsTarget('bad name:8021')).toThrow(/'bad name' is not a DNS name/);
    expect(() => parseDnsTarget(`${'a'.repeat(64)}.example`)).toThrow(/is not a DNS name/);
  });
});

describe('membershipChange', () => {
  const held = new Set(['10.0.0.1:8021', '10.0.0.2:8021']);

  it('adds the new addresses and drains the ones gone', () => {
    const change = membershipChange(held, { kind: 'addresses', ips: ['10.0.0.2', '10.0.0.3', 'fd00::7'] }, 8021);
    expect(change).toEqual({ add: ['10.0.0.3:8021', '[fd00::7]:8021'], drain: ['10.0.0.1:8021'] });
  });

  it('changes nothing when DNS could not tell, and drains everything on an authoritative "none"', () => {
    expect(membershipChange(held, { kind: 'unknown', reason: 'ETIMEOUT' }, 8021)).toEqual({ add: [], drain: [] });
    expect(membershipChange(held, { kind: 'none', reason: 'ENOTFOUND' }, 8021)).toEqual({ add: [], drain: ['10.0.0.1:8021', '10.0.0.2:8021'] });
  });

  it('writes IPv6 addresses in brackets', () => {
    expect(executorAddress('fd00::1', 8021)).toBe('[fd00::1]:8021');
    expect(executorAddress('10.77.0.2', 8021)).toBe('10.77.0.2:8021');
  });
});

describe('systemResolver', () => {
  it('resolves localhost through getaddrinfo and calls an unknown name "none"', async () => {
    const local = await systemResolver('localhost');
    expect(local.kind).toBe('addresses');
    expect((local as Extract<Resolution, { kind: 'addresses' }>).ips).toContain('127.0.0.1');
    // .invalid is reserved never to resolve (RFC 6761).
    expect((await systemResolver('no-such-executor.invalid')).kind).toBe('none');
  });
});

/** A fleet that records what discovery asks of it. */
class RecordingFleet {
  readonly held = new Set<string>();
  readonly log: string[] = [];
  refuse = new Set<string>();

  addExecutor(address: string): boolean {
    if (this.refuse.has(address)) return false;
    this.held.add(address);
    this.log.push(`+${address}`);
    return true;
  }

  drainExecutor(address: string): void {
    this.held.delete(address);
    this.log.push(`-${address}`);
  }
}

/** A resolver whose answers the test sets, counting calls. */
function scriptedResolver(first: Resolution) {
  const state = { answer: first, calls: 0 };
  return { state, resolver: async () => { state.calls += 1; return state.answer; } };
}

describe('ExecutorDiscovery', () => {
  it('keeps the fleet equal to the records: new ones added, vanished ones drained, a returning one added again', async () => {
    const fleet = new RecordingFleet();
    const { state, resolver } = scriptedResolver({ kind: 'addresses', ips: ['10.77.0.2', '10.77.0.3'] });
    const discovery = new ExecutorDiscovery({ target: { name: 'executors', port: 8021 }, fleet, logger, resolver });
    await discovery.resolveNow();
    expect(discovery.addresses).toEqual(['10.77.0.2:8021', '10.77.0.3:8021']);
    state.answer = { kind: 'addresses', ips: ['10.77.0.3', '10.77.0.4'] };
    await discovery.resolveNow();
    expect(fleet.log).toEqual(['+10.77.0.2:8021', '+10.77.0.3:8021', '-10.77.0.2:8021', '+10.77.0.4:8021']);
    state.answer = { kind: 'unknown', reason: 'EAI_AGAIN' };
    await discovery.resolveNow();
    expect(discovery.addresses).toEqual(['10.77.0.3:8021', '10.77.0.4:8021']);
    state.answer = { kind: 'addresses', ips: ['10.77.0.2'] };
    await discovery.resolveNow();
    expect([...fleet.held].sort()).toEqual(['10.77.0.2:8021']);
  });

  it('does not claim an address the pool holds as an --executor, so it never drains it', async () => {
    const fleet = new RecordingFleet();
    fleet.refuse.add('10.77.0.2:8021');
    const { state, resolver } = scriptedResolver({ kind: 'addresses', ips: ['10.77.0.2'] });
    const discovery = new ExecutorDiscovery({ target: { name: 'executors', port: 8021 }, fleet, logger, resolver });
    await discovery.resolveNow();
    state.answer = { kind: 'none', reason: 'ENOTFOUND' };
    await discovery.resolveNow();
    expect(fleet.log).toEqual([]);
  });

  it('shares one resolution among concurrent asks, and resolves on its interval until closed', async () => {
    const { state, resolver } = scriptedResolver({ kind: 'addresses', ips: ['10.77.0.2'] });
    const discovery = new ExecutorDiscovery({ target: { name: 'executors', port: 8021 }, fleet: new RecordingFleet(), logger, resolver, intervalMs: 20 });
    await Promise.all([discovery.resolveNow(), discovery.resolveNow()]);
    expect(state.calls).toBe(1);
    discovery.start();
    await new Promise((resolve) => setTimeout(resolve, 110));
    discovery.close();
    const after = state.calls;
    expect(after).toBeGreaterThanOrEqual(4);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(state.calls).toBe(after);
  });

  it('resolves soon after a lost stream, at most once a second', async () => {
    const { state, resolver } = scriptedResolver({ kind: 'addresses', ips: ['10.77.0.2'] });
    const discovery = new ExecutorDiscovery({ target: { name: 'executors', port: 8021 }, fleet: new RecordingFleet(), logger, resolver, intervalMs: 60_000 });
    discovery.refreshSoon();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(state.calls).toBe(1);
    discovery.refreshSoon();
    discovery.refreshSoon();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(state.calls).toBe(1); // within the second: waiting
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(state.calls).toBe(2); // the two asks made one resolution
    discovery.close();
  });

  it('reportingReconnects tells of every dial after the first, which a link makes only after a loss', () => {
    let lost = 0;
    let dials = 0;
    const dialer = reportingReconnects({ connect: () => { dials += 1; return {} as ExecutorStream; }, close: () => {} }, () => { lost += 1; });
    dialer.connect();
    expect([dials, lost]).toEqual([1, 0]);
    dialer.connect();
    dialer.connect();
    expect([dials, lost]).toEqual([3, 2]);
  });
});

class FakeLink implements PoolLink {
  ready = false;
  inflight = 0;
  runningSequences = 0;
  started = false;
  closed = false;
  readonly loaded = new Set<string>();
  readonly ran: number[] = [];
  onCapacity: () => void = () => {};
  onModelUnloaded: (key: ModelKey) => void = () => {};
  private readonly answers: Array<(result: BatchResult) => void> = [];

  readonly address: string;
  readonly origin: string;
  constructor(address: string, origin: string) {
    this.address = address;
    this.origin = origin;
  }

  get freeSlots(): number {
    return this.ready ? Math.max(0, 4 - this.inflight) : 0;
  }

  start(): void {
    this.started = true;
  }

  /** The executor says hello. */
  greet(): void {
    this.ready = true;
    this.onCapacity();
  }

  async whenReady(): Promise<void> {}

  async load(version: ModelVersion): Promise<ModelLoadResult> {
    this.loaded.add(modelKeyOf(version));
    return { requestId: 0, errorCode: 0, errorMessage: '', model: undefined, loadNs: 0 };
  }

  unload(modelName: string, version: number): void {
    this.loaded.delete(modelKey(modelName, version));
  }

  /** Batches wait until `answerAll`, so the test sees them in flight. */
  execute(batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult> {
    this.ran.push(batch.inputs.length);
    this.inflight += 1;
    const answer = deferred<BatchResult>();
    this.answers.push(answer.resolve);
    return answer.promise.then((result) => {
      this.inflight -= 1;
      queueMicrotask(() => this.onCapacity());
      return result;
    });
  }

  answerAll(): void {
    for (const answer of this.answers.splice(0)) answer(doubled(batch()));
  }

  close(): void {
    this.closed = true;
    this.ready = false;
  }
}

const batch = (): Omit<ExecuteBatch, 'batchId'> => ({
  modelName: 'iris', version: 1, deadlineUnixMs: 0, traceContext: {},
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Uint8Array(new Float32Array([1, 2]).buffer) }],
});

function discoveredPool(options: { static?: string[]; drainTimeoutMs?: number } = {}) {
  const made: FakeLink[] = [];
  const pool = new ExecutorPool({
    addresses: options.static ?? [],
    createLink: (address, origin) => {
      const link = new FakeLink(address, origin);
      made.push(link);
      return link;
    },
    logger,
    waitForExecutorMs: 2_000,
    drainTimeoutMs: options.drainTimeoutMs,
  });
  const linkAt = (address: string) => made.find((link) => link.address === address && !link.closed)!;
  return { pool, made, linkAt };
}

describe('ExecutorPool with discovered executors', () => {
  it('waits for a first executor that DNS has not found yet, then loads there', async () => {
    const { pool, linkAt } = discoveredPool();
    pool.start();
    const loading = pool.ensureLoaded(record('iris', 1));
    await settle();
    expect(pool.addExecutor('10.77.0.2:8021')).toBe(true);
    const link = linkAt('10.77.0.2:8021');
    expect([link.started, link.origin]).toEqual([true, 'discovered']);
    link.greet();
    await loading;
    expect(pool.isLoaded(IRIS)).toBe(true);
  });

  it('gives an executor added later every served model, and sends it batches', async () => {
    const { pool, linkAt } = discoveredPool();
    pool.start();
    pool.addExecutor('10.77.0.2:8021');
    linkAt('10.77.0.2:8021').greet();
    await pool.ensureLoaded(record('iris', 1));
    pool.addExecutor('10.77.0.3:8021');
    const added = linkAt('10.77.0.3:8021');
    added.greet();
    await settle();
    expect(added.loaded.has(IRIS)).toBe(true);
    // The least loaded holder gets the next batch: the new one, while the first has one in flight.
    void pool.execute(IRIS, batch());
    void pool.execute(IRIS, batch());
    expect([linkAt('10.77.0.2:8021').ran.length, added.ran.length]).toEqual([1, 1]);
  });

  it('drains an executor: no new batches, the ones in flight answered, then closed and forgotten', async () => {
    const { pool, linkAt } = discoveredPool();
    pool.start();
    for (const address of ['10.77.0.2:8021', '10.77.0.3:8021']) {
      pool.addExecutor(address);
      linkAt(address).greet();
    }
    await pool.ensureLoaded(record('iris', 1));
    const leaving = linkAt('10.77.0.2:8021');
    const staying = linkAt('10.77.0.3:8021');
    const inflight = pool.execute(IRIS, batch()); // to the first, both idle
    expect(leaving.ran).toHaveLength(1);
    pool.drainExecutor('10.77.0.2:8021');
    expect(leaving.closed).toBe(false);
    expect(pool.anyReady).toBe(true);
    for (let index = 0; index < 3; index++) void pool.execute(IRIS, batch());
    expect([leaving.ran.length, staying.ran.length]).toEqual([1, 3]);
    leaving.answerAll();
    await expect(inflight).resolves.toMatchObject({ errorCode: 0 });
    await settle();
    expect(leaving.closed).toBe(true);
    expect(pool.links.map((link) => link.address)).toEqual(['10.77.0.3:8021']);
    staying.answerAll();
  });

  it('waits for a drained executor\'s sequences too', async () => {
    const { pool, linkAt } = discoveredPool();
    pool.start();
    pool.addExecutor('10.77.0.2:8021');
    const link = linkAt('10.77.0.2:8021');
    link.greet();
    link.runningSequences = 1;
    pool.drainExecutor('10.77.0.2:8021');
    expect(link.closed).toBe(false);
    expect(pool.acceptingLinks).toEqual([]);
    link.runningSequences = 0;
    link.onCapacity();
    expect(link.closed).toBe(true);
  });

  it('closes a drained executor that stays busy once the drain timeout passes', async () => {
    const { pool, linkAt } = discoveredPool({ drainTimeoutMs: 30 });
    pool.start();
    pool.addExecutor('10.77.0.2:8021');
    const link = linkAt('10.77.0.2:8021');
    link.greet();
    await pool.ensureLoaded(record('iris', 1));
    void pool.execute(IRIS, batch());
    pool.drainExecutor('10.77.0.2:8021');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(link.closed).toBe(true);
    expect(pool.links).toEqual([]);
  });

  it('takes a draining executor back when DNS names it again', async () => {
    const { pool, linkAt, made } = discoveredPool();
    pool.start();
    pool.addExecutor('10.77.0.2:8021');
    const link = linkAt('10.77.0.2:8021');
    link.greet();
    await pool.ensureLoaded(record('iris', 1));
    void pool.execute(IRIS, batch());
    pool.drainExecutor('10.77.0.2:8021');
    expect(pool.hasCapacity(IRIS)).toBe(false);
    expect(pool.addExecutor('10.77.0.2:8021')).toBe(true);
    expect(made).toHaveLength(1);
    expect(pool.hasCapacity(IRIS)).toBe(true);
    link.answerAll();
    await settle();
    expect(link.closed).toBe(false);
  });

  it('keeps --executor addresses out of discovery\'s hands', async () => {
    const { pool, linkAt } = discoveredPool({ static: ['10.77.0.9:8021'] });
    pool.start();
    expect(linkAt('10.77.0.9:8021').origin).toBe('static');
    expect(pool.addExecutor('10.77.0.9:8021')).toBe(false);
  });

  it('answers UNAVAILABLE, naming what it tried, when no executor appears in time', async () => {
    const made: FakeLink[] = [];
    const pool = new ExecutorPool({ addresses: [], createLink: (address, origin) => { const link = new FakeLink(address, origin); made.push(link); return link; }, logger, waitForExecutorMs: 20 });
    pool.start();
    await expect(pool.ensureLoaded(record('iris', 1))).rejects.toMatchObject({
      code: ErrorCode.UNAVAILABLE, message: 'no executor is connected (tried none configured or discovered yet)',
    });
  });
});

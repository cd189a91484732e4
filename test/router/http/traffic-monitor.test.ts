/** Live traffic per model: one bucket a second for the window, percentiles from a log histogram. */
import { describe, expect, it } from 'vitest';
import { quantileMs, TrafficMonitor } from '../../../services/router/http/traffic-monitor.ts';

const SILENT = { requestFinished() {}, cacheLookup() {} };
const SILENT_BATCHER = () => ({ queueDepth() {}, queueTime() {}, batchSent() {}, inflightBatches() {} });

describe('TrafficMonitor', () => {
  it('counts requests, errors, latency, batches, GPU time and cache lookups per second', () => {
    let now = 1_000_000;
    const monitor = new TrafficMonitor({ windowSeconds: 5, now: () => now });
    const requests = monitor.requestReporter(SILENT);
    const batcher = monitor.batcherReporter(SILENT_BATCHER)('iris');
    for (let index = 0; index < 100; index++) requests.requestFinished('iris', index < 98 ? 'ok' : 'UNAVAILABLE', index < 90 ? 0.002 : 0.2);
    requests.cacheLookup('iris', true);
    requests.cacheLookup('iris', false);
    requests.cacheLookup('iris', false);
    requests.cacheLookup('iris', false);
    batcher.queueDepth(7);
    batcher.batchSent(30);
    batcher.batchSent(2);
    monitor.batchExecuted('iris', 3_000_000);
    monitor.batchExecuted('iris', 1_000_000);
    requests.requestFinished('unknown', 'NOT_FOUND', 0.001);
    now += 1000;
    const [iris, ...others] = monitor.snapshot();
    expect(others).toEqual([]);
    expect(iris.points).toHaveLength(5);
    const second = iris.points.at(-2)!;
    expect(second).toMatchObject({ requestsPerSecond: 100, errorsPerSecond: 2, queueDepth: 7, meanBatchRows: 16, gpuMsPerBatch: 2, cacheHitRate: 0.25 });
    expect(second.p50Ms).toBeGreaterThan(1.9);
    expect(second.p50Ms).toBeLessThan(2.1);
    expect(second.p99Ms).toBeGreaterThan(190);
    expect(iris.points.at(-1)).toMatchObject({ requestsPerSecond: 0, p50Ms: null, queueDepth: 7 });
    expect(iris.batchSizes.find((bin) => bin.rows === '32')!.batches).toBe(1);
    expect(iris.batchSizes.find((bin) => bin.rows === '2')!.batches).toBe(1);
    expect(iris.recent.requests).toBe(100);
  });

  it('forgets seconds past the window and models without traffic in it', () => {
    let now = 5_000;
    const monitor = new TrafficMonitor({ windowSeconds: 3, now: () => now });
    monitor.requestReporter(SILENT).requestFinished('old', 'ok', 0.01);
    now += 4_000;
    expect(monitor.snapshot()).toEqual([]);
  });

  it('still tells the reporters it wraps', () => {
    const told: string[] = [];
    const monitor = new TrafficMonitor();
    monitor.requestReporter({ requestFinished: (model) => told.push(`request ${model}`), cacheLookup: (model, hit) => told.push(`cache ${model} ${hit}`) })
      .requestFinished('iris', 'ok', 0.1);
    monitor.batcherReporter(() => ({ ...SILENT_BATCHER(), batchSent: (rows) => told.push(`batch ${rows}`) }))('iris').batchSent(4);
    expect(told).toEqual(['request iris', 'batch 4']);
  });
});

describe('quantileMs', () => {
  it('answers undefined for an empty histogram', () => {
    expect(quantileMs(new Uint32Array(10), 0.5)).toBeUndefined();
  });
});

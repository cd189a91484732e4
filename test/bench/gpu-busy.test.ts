/**
 * nexus_executor_gpu_busy_ratio: the share of the last 10 s a GPU spent on batches, from their
 * timestamp-query times, as the window computes it and as Prometheus reads it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BusyWindow, metricsRegistry, reportGpuBusy } from '../../services/telemetry/metrics.ts';

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

describe('the busy window', () => {
  it('is GPU time over wall time, counting only what falls inside the window', () => {
    const window = new BusyWindow(10_000, 0);
    window.record(20_000, 2_000); // 18..20 s
    window.record(25_000, 1_000); // 24..25 s
    expect(window.ratio(25_000)).toBeCloseTo(3 / 10);
    // At 29 s the window starts at 19 s: half of the first batch is left.
    expect(window.ratio(29_000)).toBeCloseTo(2 / 10);
    // At 40 s both are out of it.
    expect(window.ratio(40_000)).toBe(0);
  });

  it('divides by the time since it was made while that is shorter than the window', () => {
    const window = new BusyWindow(10_000, 1_000);
    window.record(3_000, 1_000);
    expect(window.ratio(3_000)).toBeCloseTo(1 / 2);
  });

  it('never says more than fully busy, and ignores batches without a GPU time', () => {
    const window = new BusyWindow(1_000, 0);
    window.record(1_000, 800);
    window.record(1_000, 800);
    window.record(1_000, Number.NaN);
    window.record(1_000, 0);
    expect(window.ratio(1_000)).toBe(1);
  });
});

describe('nexus_executor_gpu_busy_ratio', () => {
  const scraped = async () => Number(/^nexus_executor_gpu_busy_ratio (\S+)$/m.exec(await metricsRegistry.metrics())?.[1]);

  it('reports the busiest executor of the process at each scrape, and 0 once none reports', async () => {
    const now = performance.now();
    const idle = new BusyWindow(10_000, now - 10_000);
    const busy = new BusyWindow(10_000, now - 10_000);
    busy.record(now, 4_000);
    stops.push(reportGpuBusy(idle), reportGpuBusy(busy));
    expect(await scraped()).toBeCloseTo(0.4, 2);
    for (const stop of stops.splice(0)) stop();
    expect(await scraped()).toBe(0);
  });
});

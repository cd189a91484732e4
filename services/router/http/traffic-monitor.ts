/**
 * Live traffic per model for the dashboard, kept in the router's memory: one bucket per second
 * for the last `windowSeconds`, filled by the same reporters that feed Prometheus (the request
 * path's, each batcher's) and by the batches' GPU times, so gRPC and HTTP traffic count alike.
 * Latency percentiles come from a log-spaced histogram per bucket (bins 5% apart), so memory
 * stays fixed whatever the rate. Pure apart from the clock, which is injected.
 */
import type { BatchResult, ExecuteBatch } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelKey } from '../../domain/index.ts';
import type { BatcherReporter } from '../batching/index.ts';
import type { RequestReporter } from '../request-path/index.ts';
import type { VersionHost } from '../models/index.ts';

/** Latency histogram: bin i holds [LOW·RATIO^i, LOW·RATIO^(i+1)) seconds; below LOW in bin 0. */
const LOW_SECONDS = 0.0001;
const RATIO = 1.05;
const BINS = Math.ceil(Math.log(1000 / LOW_SECONDS) / Math.log(RATIO)) + 1;
/** Batch sizes are counted in powers of two: 1, 2, 3-4, 5-8, ..., 257+. */
const BATCH_BINS = 10;

interface Bucket {
  second: number;
  requests: number;
  errors: number;
  latency: Uint32Array;
  batches: number;
  batchRows: number;
  batchSizes: Uint32Array;
  gpuBatches: number;
  gpuSeconds: number;
  cacheHits: number;
  cacheMisses: number;
  queueDepthMax: number;
}

const binOf = (seconds: number) => (seconds <= LOW_SECONDS ? 0 : Math.min(BINS - 1, Math.floor(Math.log(seconds / LOW_SECONDS) / Math.log(RATIO))));
const batchBinOf = (rows: number) => Math.min(BATCH_BINS - 1, Math.ceil(Math.log2(Math.max(1, rows))));
/** The upper bound of a batch-size bin, as the dashboard labels it. */
const batchBinLabel = (bin: number) => (bin === BATCH_BINS - 1 ? `>${2 ** (bin - 1)}` : String(2 ** bin));

/** The `quantile` (0..1) of a latency histogram, in milliseconds (the bin's geometric middle); undefined when empty. Pure. */
export function quantileMs(histogram: Uint32Array, quantile: number): number | undefined {
  let total = 0;
  for (const count of histogram) total += count;
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(quantile * total));
  let seen = 0;
  for (let bin = 0; bin < histogram.length; bin++) {
    seen += histogram[bin];
    if (seen >= rank) return LOW_SECONDS * RATIO ** (bin + 0.5) * 1000;
  }
  return undefined;
}

/** One second of one model, as the dashboard charts it. */
export interface TrafficPoint {
  /** Unix seconds. */
  t: number;
  requestsPerSecond: number;
  errorsPerSecond: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  queueDepth: number;
  meanBatchRows: number | null;
  gpuMsPerBatch: number | null;
  cacheHitRate: number | null;
}

export interface ModelTraffic {
  model: string;
  /** Oldest first, one per second of the window, the current (partial) second last. */
  points: TrafficPoint[];
  /** Batches by size over the window: label (upper bound of the bin) and count. */
  batchSizes: Array<{ rows: string; batches: number }>;
  /** Latency over the last 10 s. */
  recent: { requests: number; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null };
}

export interface TrafficMonitorOptions {
  windowSeconds?: number;
  /** Unix milliseconds. Default Date.now. */
  now?: () => number;
}

export class TrafficMonitor {
  private readonly windowSeconds: number;
  private readonly now: () => number;
  private readonly models = new Map<string, Bucket[]>();
  private readonly queueDepths = new Map<string, number>();

  constructor(options: TrafficMonitorOptions = {}) {
    this.windowSeconds = options.windowSeconds ?? 60;
    this.now = options.now ?? Date.now;
  }

  /** The current second's bucket of `model`, dropping those past the window. */
  private bucket(model: string): Bucket {
    const second = Math.floor(this.now() / 1000);
    let buckets = this.models.get(model);
    if (!buckets) {
      buckets = [];
      this.models.set(model, buckets);
    }
    let last = buckets.at(-1);
    if (!last || last.second !== second) {
      last = {
        second, requests: 0, errors: 0, latency: new Uint32Array(BINS), batches: 0, batchRows: 0, batchSizes: new Uint32Array(BATCH_BINS),
        gpuBatches: 0, gpuSeconds: 0, cacheHits: 0, cacheMisses: 0, queueDepthMax: this.queueDepths.get(model) ?? 0,
      };
      buckets.push(last);
      while (buckets.length > 0 && buckets[0].second <= second - this.windowSeconds) buckets.shift();
    }
    return last;
  }

  /** The request path's reporter: records each answered request and cache lookup, then tells `next`. */
  requestReporter(next: RequestReporter): RequestReporter {
    return {
      requestFinished: (model, outcome, seconds) => {
        next.requestFinished(model, outcome, seconds);
        if (model === 'unknown') return;
        const bucket = this.bucket(model);
        bucket.requests += 1;
        if (outcome !== 'ok') bucket.errors += 1;
        bucket.latency[binOf(seconds)] += 1;
      },
      cacheLookup: (model, hit) => {
        next.cacheLookup(model, hit);
        const bucket = this.bucket(model);
        if (hit) bucket.cacheHits += 1;
        else bucket.cacheMisses += 1;
      },
    };
  }

  /** A batcher's reporter: records queue depth and batch sizes, then tells `next`'s. */
  batcherReporter(next: (model: string) => BatcherReporter): (model: string) => BatcherReporter {
    return (model) => {
      const forwarded = next(model);
      return {
        ...forwarded,
        queueDepth: (depth) => {
          forwarded.queueDepth(depth);
          this.queueDepths.set(model, depth);
          const bucket = this.bucket(model);
          bucket.queueDepthMax = Math.max(bucket.queueDepthMax, depth);
        },
        batchSent: (rows) => {
          forwarded.batchSent(rows);
          const bucket = this.bucket(model);
          bucket.batches += 1;
          bucket.batchRows += rows;
          bucket.batchSizes[batchBinOf(rows)] += 1;
        },
      };
    };
  }

  /** Records one batch's GPU time. */
  batchExecuted(model: string, gpuNs: number): void {
    const bucket = this.bucket(model);
    bucket.gpuBatches += 1;
    bucket.gpuSeconds += gpuNs / 1e9;
  }

  /** `host` with every batch's GPU time recorded here on its way back. */
  observedHost(host: VersionHost): VersionHost {
    return {
      ensureLoaded: (version, maxBatchSize) => host.ensureLoaded(version, maxBatchSize),
      unload: (version) => host.unload(version),
      isLoaded: (key) => host.isLoaded(key),
      hasCapacity: (key) => host.hasCapacity(key),
      onCapacity: (listener) => host.onCapacity(listener),
      execute: (key: ModelKey, batch: Omit<ExecuteBatch, 'batchId'>) => host.execute(key, batch).then((result: BatchResult) => {
        if (result.gpuNs > 0) this.batchExecuted(batch.modelName, result.gpuNs);
        return result;
      }),
    };
  }

  /** Every model with traffic in the window, by name. */
  snapshot(): ModelTraffic[] {
    const nowSecond = Math.floor(this.now() / 1000);
    const traffic: ModelTraffic[] = [];
    for (const [model, buckets] of [...this.models].sort(([a], [b]) => a.localeCompare(b))) {
      const live = buckets.filter((bucket) => bucket.second > nowSecond - this.windowSeconds);
      if (live.length === 0) {
        this.models.delete(model);
        continue;
      }
      const bySecond = new Map(live.map((bucket) => [bucket.second, bucket]));
      const points: TrafficPoint[] = [];
      for (let second = nowSecond - this.windowSeconds + 1; second <= nowSecond; second++) {
        const bucket = bySecond.get(second);
        const lookups = bucket ? bucket.cacheHits + bucket.cacheMisses : 0;
        points.push({
          t: second,
          requestsPerSecond: bucket?.requests ?? 0,
          errorsPerSecond: bucket?.errors ?? 0,
          p50Ms: bucket ? quantileMs(bucket.latency, 0.5) ?? null : null,
          p95Ms: bucket ? quantileMs(bucket.latency, 0.95) ?? null : null,
          p99Ms: bucket ? quantileMs(bucket.latency, 0.99) ?? null : null,
          queueDepth: bucket?.queueDepthMax ?? this.queueDepths.get(model) ?? 0,
          meanBatchRows: bucket && bucket.batches > 0 ? bucket.batchRows / bucket.batches : null,
          gpuMsPerBatch: bucket && bucket.gpuBatches > 0 ? (bucket.gpuSeconds * 1000) / bucket.gpuBatches : null,
          cacheHitRate: lookups > 0 ? bucket!.cacheHits / lookups : null,
        });
      }
      const sizes = new Uint32Array(BATCH_BINS);
      const recentLatency = new Uint32Array(BINS);
      let recentRequests = 0;
      for (const bucket of live) {
        bucket.batchSizes.forEach((count, bin) => { sizes[bin] += count; });
        if (bucket.second > nowSecond - 10) {
          recentRequests += bucket.requests;
          bucket.latency.forEach((count, bin) => { recentLatency[bin] += count; });
        }
      }
      traffic.push({
        model, points,
        batchSizes: Array.from(sizes, (batches, bin) => ({ rows: batchBinLabel(bin), batches })),
        recent: {
          requests: recentRequests,
          p50Ms: quantileMs(recentLatency, 0.5) ?? null, p95Ms: quantileMs(recentLatency, 0.95) ?? null, p99Ms: quantileMs(recentLatency, 0.99) ?? null,
        },
      });
    }
    return traffic;
  }
}

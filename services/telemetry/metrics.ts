/**
 * The Prometheus metrics of every NexusML service, in one place so names, labels and units are
 * documented together (docs/observability.md lists them). Each process serves its registry on
 * /metrics (see metrics-server.ts). Durations are in seconds, sizes in bytes, as Prometheus asks.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'nexus_process_' });

/** Latency buckets from 0.5 ms to 10 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

const registers = [metricsRegistry];

/** Every gRPC method of every service. */
export const rpcMetrics = {
  rpcRequests: new Counter({
    name: 'nexus_rpc_requests_total', help: 'gRPC calls handled, by service, method and status code name.',
    labelNames: ['service', 'method', 'code'], registers,
  }),
  rpcDuration: new Histogram({
    name: 'nexus_rpc_duration_seconds', help: 'Time to handle a gRPC call, by service and method.',
    labelNames: ['service', 'method'], buckets: LATENCY_BUCKETS, registers,
  }),
};

/** The router's inference requests, queues and batches (reported through router/prometheus-reporters.ts). */
export const routerMetrics = {
  inferRequests: new Counter({
    name: 'nexus_inference_requests_total', help: 'Inference requests answered, by model and outcome (ok or a gRPC status code name).',
    labelNames: ['model', 'outcome'], registers,
  }),
  inferLatency: new Histogram({
    name: 'nexus_inference_latency_seconds', help: 'End-to-end inference latency in the router, by model.',
    labelNames: ['model'], buckets: LATENCY_BUCKETS, registers,
  }),
  queueTime: new Histogram({
    name: 'nexus_queue_time_seconds', help: 'Time a request waited in its model queue before its batch was sent.',
    labelNames: ['model'], buckets: LATENCY_BUCKETS, registers,
  }),
  batchSize: new Histogram({
    name: 'nexus_batch_size_rows', help: 'Rows per batch sent to an executor, by model.',
    labelNames: ['model'], buckets: BATCH_BUCKETS, registers,
  }),
  queueDepth: new Gauge({
    name: 'nexus_queue_depth', help: 'Requests waiting in the model queue.', labelNames: ['model'], registers,
  }),
  inflightBatches: new Gauge({
    name: 'nexus_inflight_batches', help: 'Batches sent to executors and not yet answered, by model.', labelNames: ['model'], registers,
  }),
  cacheLookups: new Counter({
    name: 'nexus_response_cache_lookups_total', help: 'Response cache lookups, by model and result (hit or miss).',
    labelNames: ['model', 'result'], registers,
  }),
  rateLimited: new Counter({
    name: 'nexus_rate_limited_total',
    help: 'Calls refused by a rate limit, by principal id (never a secret) and limit (requests_per_second, rows_per_second, daily_quota, max_concurrent).',
    labelNames: ['principal', 'limit'], registers,
  }),
};

/** How far back nexus_executor_gpu_busy_ratio looks, in milliseconds. */
export const GPU_BUSY_WINDOW_MS = 10_000;

/**
 * The share of the last `windowMs` a GPU spent running batches: each batch's GPU time (its
 * timestamp queries) laid at its end, [end − gpu, end], clipped to the window, over the window
 * (or the time since the window was made, when that is shorter). Batches queued on one device
 * run one after another, so the spans do not overlap; the ratio is capped at 1 all the same.
 */
export class BusyWindow {
  readonly windowMs: number;
  private readonly createdAtMs: number;
  private readonly spans: Array<{ startMs: number; endMs: number }> = [];

  constructor(windowMs: number = GPU_BUSY_WINDOW_MS, nowMs: number = performance.now()) {
    this.windowMs = windowMs;
    this.createdAtMs = nowMs;
  }

  /** A batch that ended at `endMs` after `busyMs` of GPU time. */
  record(endMs: number, busyMs: number): void {
    if (!(busyMs > 0)) return;
    this.spans.push({ startMs: endMs - busyMs, endMs });
  }

  ratio(nowMs: number = performance.now()): number {
    const from = nowMs - this.windowMs;
    while (this.spans.length > 0 && this.spans[0].endMs <= from) this.spans.shift();
    let busy = 0;
    for (const span of this.spans) busy += Math.max(0, Math.min(span.endMs, nowMs) - Math.max(span.startMs, from));
    const elapsed = Math.min(this.windowMs, nowMs - this.createdAtMs);
    return elapsed > 0 ? Math.min(1, busy / elapsed) : 0;
  }
}

/** The windows of the executors in this process, read at each scrape. */
const gpuBusyWindows = new Set<BusyWindow>();

/** Reports `window` as nexus_executor_gpu_busy_ratio until the returned function is called. */
export function reportGpuBusy(window: BusyWindow): () => void {
  gpuBusyWindows.add(window);
  return () => gpuBusyWindows.delete(window);
}

/** The executor's devices and loaded models. */
export const executorMetrics = {
  gpuBusyRatio: new Gauge({
    name: 'nexus_executor_gpu_busy_ratio',
    help: `Share of the last ${GPU_BUSY_WINDOW_MS / 1000} s the GPU spent running batches (timestamp queries over wall time); 0 without timestamp queries. `
      + 'One executor per process in a deployment; with several, the busiest.',
    registers,
    collect() {
      this.set(Math.max(0, ...[...gpuBusyWindows].map((window) => window.ratio())));
    },
  }),
  gpuTime: new Histogram({
    name: 'nexus_gpu_execution_seconds', help: 'GPU time of a batch (timestamp queries), by model.',
    labelNames: ['model'], buckets: LATENCY_BUCKETS, registers,
  }),
  modelLoadTime: new Histogram({
    name: 'nexus_model_load_seconds', help: 'Time to fetch, verify and compile a model version, by model.',
    labelNames: ['model'], buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120], registers,
  }),
  modelWeightBytes: new Gauge({
    name: 'nexus_executor_model_weight_bytes', help: 'GPU memory of a loaded version\'s weights.',
    labelNames: ['model', 'version'], registers,
  }),
  modelPeakActivationBytes: new Gauge({
    name: 'nexus_executor_model_peak_activation_bytes',
    help: 'Largest GPU memory a batch of a loaded version has needed for inputs and intermediates (weights excluded).',
    labelNames: ['model', 'version'], registers,
  }),
};

/** The registry's artifact traffic. */
export const registryMetrics = {
  registryBytes: new Counter({
    name: 'nexus_registry_bytes_total', help: 'Artifact bytes moved by the registry, by direction (up or down).',
    labelNames: ['direction'], registers,
  }),
};

/** Every metric by name, for the services that read them from one object. */
export const metrics = { ...rpcMetrics, ...routerMetrics, ...executorMetrics, ...registryMetrics };

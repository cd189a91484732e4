/**
 * The router's reporters as Prometheus metrics (names and labels in telemetry/metrics.ts and
 * docs/observability.md). Each component is given its reporter; none reaches for the registry.
 */
import { routerMetrics } from '../telemetry/metrics.ts';
import type { BatcherReporter } from './batching/index.ts';
import type { RequestReporter } from './request-path/index.ts';

/** nexus_inference_requests_total, nexus_inference_latency_seconds and nexus_response_cache_lookups_total. */
export const prometheusRequestReporter: RequestReporter = {
  requestFinished(model, outcome, seconds) {
    routerMetrics.inferRequests.inc({ model, outcome });
    routerMetrics.inferLatency.observe({ model }, seconds);
  },
  cacheLookup(model, hit) {
    routerMetrics.cacheLookups.inc({ model, result: hit ? 'hit' : 'miss' });
  },
};

/** The queue and batch metrics of one model: nexus_queue_depth, _queue_time_seconds, _batch_size_rows, _inflight_batches. */
export function prometheusBatcherReporter(model: string): BatcherReporter {
  // Built once: every request and batch of the model is counted under them.
  const labels = { model };
  return {
    queueDepth: (depth) => routerMetrics.queueDepth.set(labels, depth),
    queueTime: (seconds) => routerMetrics.queueTime.observe(labels, seconds),
    batchSent: (rows) => routerMetrics.batchSize.observe(labels, rows),
    inflightBatches: (count) => routerMetrics.inflightBatches.set(labels, count),
  };
}

/**
 * The fleet: one link per executor over its Connect stream (with a per-batch timeout and a
 * circuit breaker), and the pool that places loads and batches on them.
 */
export { DEFAULT_BATCH_TIMEOUT_MS, ExecutorLink } from './executor-link.ts';
export { ExecutorPool, type PoolLink } from './executor-pool.ts';
export { DEFAULT_DNS_INTERVAL_MS, ExecutorDiscovery, parseDnsTarget, reportingReconnects, type DnsResolver, type DnsTarget } from './executor-discovery.ts';
export { grpcExecutorDialer, type ExecutorDialer, type ExecutorStream } from './executor-stream.ts';

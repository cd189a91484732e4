/**
 * The fleet: one link per executor over its Connect stream (with a per-batch timeout and a
 * circuit breaker), and the pool that places loads and batches on them.
 */
export {
  CIRCUIT_FAILURE_THRESHOLD, CIRCUIT_OPEN_MS, DEFAULT_BATCH_TIMEOUT_MS, ExecutorLink, type ExecutorLinkOptions,
} from './executor-link.ts';
export { ExecutorPool, type ExecutorPoolOptions, type PoolLink } from './executor-pool.ts';
export { grpcExecutorDialer, type ExecutorDialer, type ExecutorStream } from './executor-stream.ts';

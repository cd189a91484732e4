/**
 * The executor as a gRPC service: its state (loaded models, batches, stats), the Connect
 * stream a router talks to, the verified artifact cache, and the server that wires them up.
 */
export { startExecutor, type ExecutorOptions, type RunningExecutor } from './server.ts';
export { ExecutorState, precisionOf } from './executor-state.ts';
export { createExecutorService, ExecutorService, MAX_INFLIGHT_BATCHES } from './executor-service.ts';
export { ArtifactCache } from './artifact-cache.ts';

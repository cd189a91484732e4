/**
 * The router: what other services, the CLI and tests may use. `startRouter` is the composition
 * root (server.ts); main.ts runs it as a process.
 */
export { DEFAULT_BATCHING_POLICY, type BatchingPolicy } from './batching/index.ts';
export {
  DEFAULT_SERVING_CONFIG, loadRouterConfig, parseRouterConfig, type ModelServingConfig, type RouterConfig, type TrafficSplit,
} from './config/index.ts';
export { DEFAULT_BATCH_TIMEOUT_MS } from './fleet/index.ts';
export { startRouter, type RouterOptions, type RunningRouter } from './server.ts';

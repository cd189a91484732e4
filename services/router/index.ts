/**
 * The router: what other services, the CLI and tests may use. `startRouter` is the composition
 * root (server.ts); main.ts runs it as a process.
 */
export type { BatchingPolicy } from './batching/index.ts';
export { DEFAULT_SERVING_CONFIG, type RouterConfig } from './config/index.ts';
export { startRouter, type RunningRouter } from './server.ts';

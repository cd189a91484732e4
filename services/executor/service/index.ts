/**
 * The executor as a gRPC service: its state (loaded models, batches, stats), the Connect
 * stream a router talks to, the verified artifact cache, and the server that wires them up.
 */
export { startExecutor, type RunningExecutor } from './server.ts';
;

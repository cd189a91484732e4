/** Starts a router: the Open Inference Protocol in front, executors behind, registry beside. */
import { credentials } from '@grpc/grpc-js';
import { RegistryClient } from '../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, NexusError } from '../domain/errors.ts';
import { startGrpcServer, type RunningServer } from '../rpc/server.ts';
import { createLogger } from '../telemetry/logger.ts';
import type { RouterConfig } from './router-config.ts';
import { ExecutorPool } from './executor-pool.ts';
import { createInferenceService, GRPCInferenceServiceService } from './inference-service.ts';
import { createExperimentService, ExperimentsService } from './experiment-service.ts';
import { createInferencePipeline } from './inference-pipeline.ts';
import { ModelCatalog } from './model-catalog.ts';
import { RegistryWatcher } from './registry-watch.ts';
import { createTaskService, TasksService } from './task-service.ts';

export interface RouterOptions {
  /** host:port to bind. Default 127.0.0.1:8001 (Triton's gRPC port). */
  address?: string;
  registryAddress: string;
  /** Executors to dial, host:port each. */
  executorAddresses: string[];
  /** Serving settings (batching, priorities, cache) per model; see router-config.ts. */
  config?: RouterConfig;
  /** Least time between turning NOT_SERVING and closing, in milliseconds. Default 0. */
  drainDelayMs?: number;
}

export interface RunningRouter extends RunningServer {
  pool: ExecutorPool;
  catalog: ModelCatalog;
  watcher: RegistryWatcher;
}

export async function startRouter(options: RouterOptions): Promise<RunningRouter> {
  const logger = createLogger('router');
  // Keepalive pings: the Watch stream is otherwise silent for as long as nothing changes, and a
  // half-open connection (a registry host gone without a reset) would go unnoticed until TCP
  // gives up, minutes later, with the router following nothing meanwhile.
  const registry = new RegistryClient(options.registryAddress, credentials.createInsecure(), {
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  const pool = new ExecutorPool(options.executorAddresses, logger);
  let setHealth: RunningServer['setHealth'] = () => {};
  const catalog = new ModelCatalog(registry, pool, {
    config: options.config,
    logger,
    // grpc.health.v1 per model: SERVING once the model is loaded and warmed on an executor.
    onModelHealth: (modelName, serving) => setHealth(`model/${modelName}`, serving ? 'SERVING' : 'NOT_SERVING'),
  });
  const running = await startGrpcServer({
    address: options.address ?? '127.0.0.1:8001',
    drainDelayMs: options.drainDelayMs,
    services: [{
      name: 'inference.GRPCInferenceService',
      protoFile: 'inference/grpc_service.proto',
      definition: GRPCInferenceServiceService,
      implementation: createInferenceService(catalog, () => pool.anyReady, logger),
    }, {
      name: 'nexus.router.v1.Tasks',
      protoFile: 'nexus/router/v1/tasks.proto',
      definition: TasksService,
      implementation: createTaskService(createInferencePipeline(catalog), logger),
    }, {
      name: 'nexus.router.v1.Experiments',
      protoFile: 'nexus/router/v1/experiments.proto',
      definition: ExperimentsService,
      implementation: createExperimentService(catalog, logger),
    }],
  });
  setHealth = running.setHealth;
  // One stream for every model: new versions and alias moves reach the catalog as they happen.
  const watcher = new RegistryWatcher(registry, {
    onEvent: (event) => catalog.applyEvent(event),
    onResync: () => catalog.resync(),
    logger,
  });
  watcher.start();
  logger.info({ address: running.address, executors: options.executorAddresses }, 'router listening');
  const shutdown = running.shutdown;
  return {
    ...running,
    pool,
    catalog,
    watcher,
    async shutdown(graceMs = 5_000) {
      // Not ready first, then answer everything queued, then stop listening.
      running.drain();
      await catalog.drain(graceMs);
      await shutdown(graceMs);
      catalog.close(new NexusError(ErrorCode.UNAVAILABLE, 'the router is shutting down'));
      watcher.close();
      pool.close();
      registry.close();
    },
  };
}

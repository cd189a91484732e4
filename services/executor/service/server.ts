/** Starts an executor: opens the GPU, then serves the Connect stream, health and reflection. */
import { credentials } from '@grpc/grpc-js';
import { RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { startGrpcServer, type RunningServer } from '../../rpc/server.ts';
import { createLogger } from '../../telemetry/logger.ts';
import { ArtifactCache } from './artifact-cache.ts';
import { createExecutorService, ExecutorService } from './executor-service.ts';
import { ExecutorState } from './executor-state.ts';
import { openGpu } from '../gpu/index.ts';

export interface ExecutorOptions {
  /** host:port to bind. Default 127.0.0.1:0. */
  address?: string;
  /** The registry to fetch artifacts from, host:port. */
  registryAddress: string;
  /** Where verified artifacts are cached. */
  cacheDir: string;
  /** Least time between turning NOT_SERVING and closing, in milliseconds. Default 0. */
  drainDelayMs?: number;
}

export interface RunningExecutor extends RunningServer {
  state: ExecutorState;
}

export async function startExecutor(options: ExecutorOptions): Promise<RunningExecutor> {
  const logger = createLogger('executor');
  const gpu = await openGpu();
  const registry = new RegistryClient(options.registryAddress, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
  const state = new ExecutorState(gpu, new ArtifactCache(options.cacheDir, registry), logger);
  const running = await startGrpcServer({
    address: options.address ?? '127.0.0.1:0',
    drainDelayMs: options.drainDelayMs,
    services: [{
      name: 'nexus.executor.v1.Executor',
      protoFile: 'nexus/executor/v1/executor.proto',
      definition: ExecutorService,
      implementation: createExecutorService(state, gpu.description, logger),
    }],
  });
  logger.info({ address: running.address, device: gpu.description }, 'executor listening');
  const shutdown = running.shutdown;
  return {
    ...running,
    state,
    async shutdown(graceMs) {
      await shutdown(graceMs);
      registry.close();
      gpu.destroy();
    },
  };
}

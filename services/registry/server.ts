/** Starts a registry: the gRPC API over a local store, plus health and reflection. */
import { startGrpcServer, type RunningServer } from '../rpc/server.ts';
import { createLogger } from '../telemetry/logger.ts';
import { createRegistryService, RegistryService } from './registry-service.ts';
import { LocalStore } from './store/local-store.ts';

export interface RegistryOptions {
  /** host:port to bind. Default 127.0.0.1:0 (a free port). */
  address?: string;
  /** Directory holding blobs and records. */
  dataDir: string;
  /** Least time between turning NOT_SERVING and closing, in milliseconds. Default 0. */
  drainDelayMs?: number;
}

export async function startRegistry(options: RegistryOptions): Promise<RunningServer> {
  const logger = createLogger('registry');
  const store = await new LocalStore(options.dataDir).init();
  const running = await startGrpcServer({
    address: options.address ?? '127.0.0.1:0',
    drainDelayMs: options.drainDelayMs,
    services: [{
      name: 'nexus.registry.v1.Registry',
      protoFile: 'nexus/registry/v1/registry.proto',
      definition: RegistryService,
      implementation: createRegistryService(store, logger),
    }],
  });
  logger.info({ address: running.address, dataDir: options.dataDir }, 'registry listening');
  return running;
}

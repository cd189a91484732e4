/** Starts a registry: the gRPC API over a store (a local directory, S3 or GCS), plus health and reflection. */
import { startGrpcServer, type RunningServer } from '../rpc/server.ts';
import { createLogger } from '../telemetry/logger.ts';
import { ModelRegistry } from './core/index.ts';
import { createRegistryService, REGISTRY_SERVICE_DEFINITION } from './grpc/index.ts';
import { openStore, type ObjectStore, type StoreConfig } from './store/index.ts';
import type { RegistryLimits } from './validation/index.ts';

export interface RegistryOptions {
  /** host:port to bind. Default 127.0.0.1:0 (a free port). */
  address?: string;
  /** A local directory holding blobs and records; used when `store` is not given. */
  dataDir?: string;
  /** The store to use: a configuration (see store-config.ts) or an opened store. */
  store?: StoreConfig | ObjectStore;
  /** Least time between turning NOT_SERVING and closing, in milliseconds. Default 0. */
  drainDelayMs?: number;
  /** How often Watch streams look for events written by other registry processes, in ms. Default 500. */
  watchPollIntervalMs?: number;
  /** Upload, version and garbage-collection budgets; each one left out has its default (see validation/limits.ts). */
  limits?: Partial<RegistryLimits>;
}

export interface RunningRegistry extends RunningServer {
  registry: ModelRegistry;
}

/** Opens the store and the registry over it, and serves it over gRPC until `shutdown`. */
export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const logger = createLogger('registry');
  const store = options.store && 'get' in options.store
    ? options.store
    : await openStore(options.store ?? { provider: 'local', path: options.dataDir ?? '' });
  let registry: ModelRegistry;
  try {
    registry = await ModelRegistry.open(store, { pollIntervalMs: options.watchPollIntervalMs, logger, limits: options.limits });
  } catch (error) {
    await store.close();
    throw error;
  }
  const service = createRegistryService(registry, logger);
  const running = await startGrpcServer({
    address: options.address ?? '127.0.0.1:0',
    drainDelayMs: options.drainDelayMs,
    services: [{
      name: 'nexus.registry.v1.Registry',
      protoFile: 'nexus/registry/v1/registry.proto',
      definition: REGISTRY_SERVICE_DEFINITION,
      implementation: service.implementation,
    }],
  });
  logger.info({ address: running.address, store: store.description, limits: registry.limits }, 'registry listening');
  const shutdown = running.shutdown;
  let closing: Promise<void> | undefined;
  return {
    ...running,
    registry,
    shutdown(graceMs) {
      closing ??= (async () => {
        // Watch streams never end by themselves; their clients resume elsewhere with their cursor.
        const draining = shutdown(graceMs);
        service.closeWatchers();
        await draining;
        await registry.close();
      })();
      return closing;
    },
  };
}

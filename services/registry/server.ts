/**
 * Starts a registry: the gRPC API over a store (a local directory, S3 or GCS), plus health and
 * reflection, and nexus.auth.v1.Keys over the API keys kept in the same store. With `auth`, every
 * call is authenticated (API keys from the store, JWTs, service certificates) and checked against
 * the access tables in grpc/access.ts; without it every call is anonymous (development, tests).
 */
import type { ServerCredentials } from '@grpc/grpc-js';
import { KeysService } from '../protocol/generated/nexus/auth/v1/keys.ts';
import { startGrpcServer, type RunningServer } from '../rpc/server.ts';
import { createLogger } from '../telemetry/logger.ts';
import { AuditLog, KeyStore, ModelRegistry } from './core/index.ts';
import { createKeysService, createRegistryService, REGISTRY_SERVICE_DEFINITION } from './grpc/index.ts';
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
  /** How the port is secured (TLS from services/tls/). Default plaintext. */
  credentials?: ServerCredentials;
  /** How often key subscribers look for keys changed by other registry processes, in ms. Default 3000. */
  keyPollIntervalMs?: number;
}

export interface RunningRegistry extends RunningServer {
  registry: ModelRegistry;
  keys: KeyStore;
  audit: AuditLog;
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
  const keys = new KeyStore(store, { pollIntervalMs: options.keyPollIntervalMs, logger });
  const audit = new AuditLog(store);
  const service = createRegistryService(registry, audit, logger);
  const keysService = createKeysService(keys, audit, logger);
  let running: RunningServer;
  try {
    running = await startGrpcServer({
      address: options.address ?? '127.0.0.1:0',
      drainDelayMs: options.drainDelayMs,
      credentials: options.credentials,
      services: [{
        name: 'nexus.registry.v1.Registry',
        protoFile: 'nexus/registry/v1/registry.proto',
        definition: REGISTRY_SERVICE_DEFINITION,
        implementation: service.implementation,
      }, {
        name: 'nexus.auth.v1.Keys',
        protoFile: 'nexus/auth/v1/keys.proto',
        definition: KeysService,
        implementation: keysService.implementation,
      }],
    });
  } catch (error) {
    keys.close();
    await registry.close();
    throw error;
  }
  logger.info({ address: running.address, store: store.description, limits: registry.limits }, 'registry listening');
  const shutdown = running.shutdown;
  let closing: Promise<void> | undefined;
  return {
    ...running,
    registry,
    keys,
    audit,
    shutdown(graceMs) {
      closing ??= (async () => {
        // Watch streams never end by themselves; their clients resume elsewhere with their cursor.
        const draining = shutdown(graceMs);
        service.closeWatchers();
        keysService.closeWatchers();
        await draining;
        keys.close();
        await registry.close();
      })();
      return closing;
    },
  };
}

/**
 * Starts a registry: the gRPC API over a store (a local directory, S3 or GCS), plus health and
 * reflection, and nexus.auth.v1.Keys over the API keys kept in the same store. With `auth`, every
 * call is authenticated (API keys from the store, JWTs, service certificates) and checked against
 * the access tables in grpc/access.ts; without it every call is anonymous (development, tests).
 */
import type { ServerCredentials } from '@grpc/grpc-js';
import { createAuthenticator, type Authenticator } from '../auth/authenticator.ts';
import { JwtVerifier, type JwtVerifierOptions } from '../auth/jwt.ts';
import { KeysService } from '../protocol/generated/nexus/auth/v1/keys.ts';
import { startGrpcServer, type RunningServer } from '../rpc/server.ts';
import { createLogger } from '../telemetry/logger.ts';
import { peerServiceIdentity } from '../tls/index.ts';
import { ensureBootstrapAdminKey } from './bootstrap-admin-key.ts';
import { AuditLog, KeyStore, ModelRegistry, StoreKeyVerifier } from './core/index.ts';
import { createKeysService, createRegistryService, KEYS_ACCESS, REGISTRY_ACCESS, REGISTRY_SERVICE_DEFINITION } from './grpc/index.ts';
import { openStore, type ObjectStore, type StoreConfig } from './store/index.ts';
import type { RegistryLimits } from './validation/index.ts';

/** Methods whose refusals are audited: every one that needs the write or admin role, as clients name them. */
const AUDITED_METHODS: ReadonlySet<string> = new Set(Object.entries({ ...REGISTRY_ACCESS, ...KEYS_ACCESS })
  .filter(([, access]) => 'role' in access && access.role !== 'infer')
  .map(([name]) => name[0]!.toUpperCase() + name.slice(1)));

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
  /**
   * Authentication: API keys from this registry's store, JWTs when `jwt` is given, and NexusML
   * services by their verified certificates (with TLS), each call checked against grpc/access.ts.
   * Default off: every call is anonymous and clients' creator and actor are recorded as given.
   */
  auth?: { jwt?: JwtVerifierOptions };
  /**
   * A file for the first admin key (see bootstrap-admin-key.ts): created with one when neither it
   * nor the store holds a valid bootstrap admin key. Default none.
   */
  bootstrapAdminKeyFile?: string;
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
  let keyVerifier: StoreKeyVerifier | undefined;
  try {
    if (options.bootstrapAdminKeyFile) await ensureBootstrapAdminKey(keys, options.bootstrapAdminKeyFile, logger);
    let authenticator: Authenticator | undefined;
    if (options.auth) {
      keyVerifier = await StoreKeyVerifier.open(keys);
      const jwt = options.auth.jwt ? await JwtVerifier.create(options.auth.jwt) : undefined;
      authenticator = createAuthenticator({ apiKeys: keyVerifier, jwt, serviceIdentityOf: peerServiceIdentity });
    }
    running = await startGrpcServer({
      address: options.address ?? '127.0.0.1:0',
      drainDelayMs: options.drainDelayMs,
      credentials: options.credentials,
      auth: authenticator && {
        authenticator, logger,
        // A refused write or admin call is an audit record too: who tried what, and why not.
        onRefused: (refused) => {
          if (!AUDITED_METHODS.has(refused.method)) return;
          audit.append({ principal: refused.principal, action: refused.method, target: '', outcome: refused.code, detail: refused.reason })
            .catch((error: unknown) => logger.error({ err: error, action: refused.method }, 'audit record could not be written'));
        },
      },
      services: [{
        name: 'nexus.registry.v1.Registry',
        protoFile: 'nexus/registry/v1/registry.proto',
        definition: REGISTRY_SERVICE_DEFINITION,
        implementation: service.implementation,
        access: REGISTRY_ACCESS,
      }, {
        name: 'nexus.auth.v1.Keys',
        protoFile: 'nexus/auth/v1/keys.proto',
        definition: KeysService,
        implementation: keysService.implementation,
        access: KEYS_ACCESS,
      }],
    });
  } catch (error) {
    keyVerifier?.close();
    keys.close();
    await registry.close();
    throw error;
  }
  logger.info({
    address: running.address, store: store.description, limits: registry.limits,
    authentication: options.auth ? `API keys${options.auth.jwt ? ', JWTs' : ''}, service certificates` : 'off',
  }, 'registry listening');
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
        keyVerifier?.close();
        keys.close();
        await registry.close();
      })();
      return closing;
    },
  };
}

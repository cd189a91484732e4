/**
 * Starts a router: the composition root. The Open Inference Protocol in front, executors behind,
 * registry beside; every component gets its collaborators and reporters here.
 */
import { credentials, type ChannelCredentials, type ServerCredentials } from '@grpc/grpc-js';
import { RegistryClient } from '../protocol/generated/nexus/registry/v1/registry.ts';
import { KeysClient } from '../protocol/generated/nexus/auth/v1/keys.ts';
import { createAuthenticator } from '../auth/authenticator.ts';
import { JwtVerifier, type JwtVerifierOptions } from '../auth/jwt.ts';
import { KeyDirectory } from '../auth/key-directory.ts';
import { peerServiceIdentity } from '../tls/index.ts';
import { ErrorCode, NexusError } from '../domain/index.ts';
import { startGrpcServer, type RunningServer } from '../rpc/server.ts';
import { createLogger } from '../telemetry/logger.ts';
import { routerMetrics } from '../telemetry/metrics.ts';
import { PrincipalLimiter } from '../auth/rate-limits.ts';
import { budgetsOf, type RouterConfig } from './config/index.ts';
import {
  ExecutorDiscovery, ExecutorLink, ExecutorPool, grpcExecutorDialer, reportingReconnects, type DnsResolver, type DnsTarget,
} from './fleet/index.ts';
import {
  createExperimentService, createGenerationService, createInferenceService, createTaskService, EXPERIMENTS_ACCESS, ExperimentsService,
  GENERATION_ACCESS, GenerationService, GRPCInferenceServiceService, INFERENCE_ACCESS, TASKS_ACCESS, TasksService,
} from './grpc/index.ts';
import {
  createGenerationPath, grpcBlobReader, prometheusGenerationReporter, SequenceScheduler, TokenizerCache, tritonDispatch,
} from './generation/index.ts';
import { grpcRegistryView, KeyFollower, ModelCatalog, RegistryWatcher } from './models/index.ts';
import { prometheusBatcherReporter, prometheusRequestReporter } from './prometheus-reporters.ts';
import { createRequestPath, TaskStore, type RequestPath } from './request-path/index.ts';
import { grpcDashboardRegistry, startHttpServer, TrafficMonitor, type RunningHttpServer } from './http/index.ts';

export interface RouterOptions {
  /** host:port to bind. Default 127.0.0.1:8001 (Triton's gRPC port). */
  address?: string;
  registryAddress: string;
  /** Executors to dial, host:port each. */
  executorAddresses: string[];
  /**
   * Executors found by a DNS name besides (--executors-dns): every A/AAAA record, resolved again
   * every `intervalMs` (default 5 s) and after a lost stream; `resolver` for tests. Default none.
   */
  executorsDns?: DnsTarget & { intervalMs?: number; resolver?: DnsResolver };
  /** Serving settings (batching, priorities, cache) per model; see config/router-config.ts. */
  config?: RouterConfig;
  /** Least time between turning NOT_SERVING and closing, in milliseconds. Default 0. */
  drainDelayMs?: number;
  /** Longest wait for an executor's answer to one batch, in milliseconds. Default 30 000. */
  batchTimeoutMs?: number;
  /**
   * How the public port is secured; default plaintext. TLS, or mutual TLS, from the operator's
   * files (services/tls/: publicServerCredentials, the --tls-cert/--tls-key/--tls-client-ca flags).
   */
  credentials?: ServerCredentials;
  /** How the registry is dialed; default plaintext. With TLS: the router's own certificate (services/tls/: channelCredentials). */
  registryCredentials?: ChannelCredentials;
  /** How executors are dialed; default plaintext. With TLS: the router's own certificate, which executors require. */
  executorCredentials?: ChannelCredentials;
  /**
   * How executors found by DNS are dialed, by pod IP: the same certificate, the executor verified
   * by its identity (spiffe://nexusml/executor) alone, as no certificate can name every pod's
   * address in advance. Default executorCredentials.
   */
  discoveredExecutorCredentials?: ChannelCredentials;
  /**
   * Authentication off: every call is ANONYMOUS (--insecure, NEXUS_INSECURE=1). Default false:
   * a call needs an API key the registry issued (followed through its WatchKeys stream), a JWT
   * when `jwt` is set, or a NexusML service certificate.
   */
  insecure?: boolean;
  /** JWTs accepted beside API keys (--jwt-issuer, --jwt-audience, --jwt-key-file or --jwt-jwks-url). Default none. */
  jwt?: JwtVerifierOptions;
  /**
   * The HTTP port (REST, OpenAI API, dashboard; --http-address, main.ts's default 127.0.0.1:8000):
   * host:port, CORS for one origin (--http-cors-origin), HTTPS with the public port's PEM files.
   * Default none: gRPC only.
   */
  http?: { address: string; corsOrigin?: string; tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer } };
}

export interface RunningRouter extends RunningServer {
  pool: ExecutorPool;
  catalog: ModelCatalog;
  requests: RequestPath;
  watcher: RegistryWatcher;
  /** host:port of the HTTP port; undefined without one. */
  httpAddress?: string;
}

export async function startRouter(options: RouterOptions): Promise<RunningRouter> {
  const logger = createLogger('router');
  const budgets = budgetsOf(options.config);
  // First, so a bad key file fails the start before anything is dialed.
  const jwt = options.jwt && !options.insecure ? await JwtVerifier.create(options.jwt) : undefined;
  // Keepalive pings: the Watch stream is otherwise silent for as long as nothing changes, and a
  // half-open connection (a registry host gone without a reset) would go unnoticed until TCP
  // gives up, minutes later, with the router following nothing meanwhile.
  const registry = new RegistryClient(options.registryAddress, options.registryCredentials ?? credentials.createInsecure(), {
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  let discovery: ExecutorDiscovery | undefined;
  const pool = new ExecutorPool({
    addresses: options.executorAddresses,
    logger,
    createLink: (address, origin) => {
      const dialer = origin === 'discovered'
        // A lost stream to a discovered executor asks DNS at once whether it is still there.
        ? reportingReconnects(grpcExecutorDialer(address, options.discoveredExecutorCredentials ?? options.executorCredentials), () => discovery?.refreshSoon())
        : grpcExecutorDialer(address, options.executorCredentials);
      return new ExecutorLink({ address, dialer, logger, batchTimeoutMs: options.batchTimeoutMs, maxResultBytes: budgets.maxResultBytes });
    },
  });
  if (options.executorsDns) {
    const { name, port, intervalMs, resolver } = options.executorsDns;
    discovery = new ExecutorDiscovery({ target: { name, port }, fleet: pool, logger, intervalMs, resolver });
  }
  // The registry's keys, followed over the registry's channel, so callers' API keys are checked here.
  const keys = new KeyDirectory();
  const keyFollower = options.insecure ? undefined : new KeyFollower(
    new KeysClient(options.registryAddress, options.registryCredentials ?? credentials.createInsecure(), { channelOverride: registry.getChannel() }),
    keys, { logger });
  keyFollower?.start();
  const authenticator = options.insecure ? undefined : createAuthenticator({ apiKeys: keys, jwt, serviceIdentityOf: peerServiceIdentity });
  let setHealth: RunningServer['setHealth'] = () => {};
  // The dashboard's live traffic, fed by the same reporters as Prometheus and by each batch's GPU time.
  const traffic = options.http ? new TrafficMonitor() : undefined;
  const catalog = new ModelCatalog(grpcRegistryView(registry), traffic?.observedHost(pool) ?? pool, {
    config: options.config,
    logger,
    batcherReporter: traffic?.batcherReporter(prometheusBatcherReporter) ?? prometheusBatcherReporter,
    // grpc.health.v1 per model: SERVING once the model is loaded and warmed on an executor.
    onModelHealth: (modelName, serving) => setHealth(`model/${modelName}`, serving ? 'SERVING' : 'NOT_SERVING'),
  });
  const requests = createRequestPath(catalog, {
    reporter: traffic?.requestReporter(prometheusRequestReporter) ?? prometheusRequestReporter,
    limits: {
      maxRequestBytes: budgets.maxRequestBytes, maxBatchBytes: budgets.maxBatchBytes,
      // The answer is one public message; results between that and the batch limit come back chunked.
      maxResponseBytes: Math.min(budgets.maxMessageBytes, budgets.maxResultBytes),
    },
  });
  // Sequences wait for KV capacity per version on the executors the links reach.
  const scheduler = new SequenceScheduler({ executors: () => pool.acceptingLinks, wantLoaded: (key) => pool.hasCapacity(key) });
  pool.onCapacity(() => scheduler.pump());
  const generation = createGenerationPath({
    catalog, scheduler, reporter: prometheusGenerationReporter, tokenizers: new TokenizerCache(grpcBlobReader(registry)),
    // A sequence waits for its executor's next step as long as a batch waits for its answer.
    stallTimeoutMs: options.batchTimeoutMs,
  });
  // Every principal's rate limits, one set for the public API (inference calls and tasks alike).
  const limiter = new PrincipalLimiter({
    defaults: options.config?.auth?.defaultLimits,
    onRefused: (principal, limit) => routerMetrics.rateLimited.inc({ principal, limit }),
  });
  pool.start();
  discovery?.start();
  const running = await startGrpcServer({
    address: options.address ?? '127.0.0.1:8001',
    drainDelayMs: options.drainDelayMs,
    credentials: options.credentials,
    auth: authenticator && { authenticator, logger },
    maxMessageBytes: budgets.maxMessageBytes,
    maxConcurrentStreams: budgets.maxConcurrentStreams,
    maxSessionMemoryMiB: budgets.maxSessionMemoryMiB,
    services: [{
      name: 'inference.GRPCInferenceService',
      protoFile: 'inference/grpc_service.proto',
      definition: GRPCInferenceServiceService,
      // One bad message on a stream gets its own error_message; the stream's other requests go on.
      answersUndecodableMessages: ['modelStreamInfer'],
      access: INFERENCE_ACCESS,
      implementation: createInferenceService({
        requests, catalog, isServerReady: () => pool.anyReady, logger, maxStreamInflight: budgets.maxStreamInflight, limiter,
        generation: tritonDispatch(catalog, generation),
      }),
    }, {
      name: 'nexus.llm.v1.Generation',
      protoFile: 'nexus/llm/v1/llm.proto',
      definition: GenerationService,
      access: GENERATION_ACCESS,
      implementation: createGenerationService(generation, logger, limiter),
    }, {
      name: 'nexus.router.v1.Tasks',
      protoFile: 'nexus/router/v1/tasks.proto',
      definition: TasksService,
      access: TASKS_ACCESS,
      implementation: createTaskService(new TaskStore(requests.handle, { maxTaskBytes: budgets.maxTaskBytes }), logger, limiter),
    }, {
      name: 'nexus.router.v1.Experiments',
      protoFile: 'nexus/router/v1/experiments.proto',
      definition: ExperimentsService,
      access: EXPERIMENTS_ACCESS,
      implementation: createExperimentService(catalog, logger),
    }],
  });
  setHealth = running.setHealth;
  let http: RunningHttpServer | undefined;
  try {
    http = options.http && await startHttpServer({
      address: options.http.address, corsOrigin: options.http.corsOrigin, tls: options.http.tls,
      requests, catalog, generation: { path: generation, triton: tritonDispatch(catalog, generation) }, limiter, authenticator, logger,
      isServerReady: () => pool.anyReady, maxBodyBytes: budgets.maxMessageBytes,
      dashboard: { registry: grpcDashboardRegistry(registry), traffic: traffic!, executors: () => pool.links },
    });
  } catch (error) {
    await running.shutdown(0);
    keyFollower?.close();
    discovery?.close();
    pool.close();
    registry.close();
    throw error;
  }
  // One stream for every model: new versions and alias moves reach the catalog as they happen.
  const watcher = new RegistryWatcher(registry, {
    onEvent: (event) => catalog.applyEvent(event),
    onResync: () => catalog.resync(),
    logger,
  });
  watcher.start();
  logger.info({ address: running.address, http_address: http?.address, executors: options.executorAddresses, executors_dns: options.executorsDns?.name }, 'router listening');
  const shutdown = running.shutdown;
  return {
    ...running,
    pool,
    catalog,
    requests,
    watcher,
    httpAddress: http?.address,
    async shutdown(graceMs = 5_000) {
      // Not ready first, then answer everything queued, then stop listening.
      running.drain();
      await Promise.all([requests.drain(graceMs), generation.drain(graceMs)]);
      await Promise.all([shutdown(graceMs), http?.close()]);
      catalog.close(new NexusError(ErrorCode.UNAVAILABLE, 'the router is shutting down'));
      watcher.close();
      keyFollower?.close();
      discovery?.close();
      pool.close();
      registry.close();
    },
  };
}

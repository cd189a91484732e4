#!/usr/bin/env node
/** The router as a process: node services/router/main.ts --registry HOST:PORT --executor HOST:PORT (or --executors-dns NAME[:PORT]) */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { drainDelayMs, runServiceProcess } from '../rpc/service-process.ts';
import { DEFAULT_BATCHING_POLICY } from '../domain/index.ts';
import {
  BUDGET_KEYS, DEFAULT_ROUTER_BUDGETS, DEFAULT_SERVING_CONFIG, loadRouterConfig, type ModelServingConfig, type RouterBudgets,
} from './config/index.ts';
import { DEFAULT_BATCH_TIMEOUT_MS, DEFAULT_DNS_INTERVAL_MS, parseDnsTarget } from './fleet/index.ts';
import { enforceBindPolicy, loadServiceTls, publicServerCredentials, tlsDirFrom } from '../tls/index.ts';
import { jwtOptionsFrom } from '../auth/jwt.ts';
import { startRouter } from './server.ts';

const collect = (value: string, previous: string[]) => [...previous, value];
/** A flag that must be a number of at least `min`: a typo fails at start, not as NaN timers later. */
const atLeast = (min: number) => (value: string) => {
  const number = Number(value);
  if (!Number.isFinite(number) || number < min) throw new InvalidArgumentError(`expected a number >= ${min}, got '${value}'`);
  return value;
};
const program = new Command('nexus-router')
  .option('--metrics-address <host:port>', 'where /metrics is served for Prometheus', '127.0.0.1:8002')
  .addOption(new Option('--health-address <host:port>', 'a plaintext port serving grpc.health.v1 alone, for probes that cannot speak TLS (Kubernetes gRPC probes); default none').env('NEXUS_HEALTH_ADDRESS'))
  .option('--address <host:port>', 'address to listen on', '127.0.0.1:8001')
  .addOption(new Option('--http-address <host:port>', "HTTP port: REST (KServe v2), OpenAI API, dashboard; 'none' turns it off (default: --address's host, its port - 1: 127.0.0.1:8000)").env('NEXUS_HTTP_ADDRESS'))
  .addOption(new Option('--http-cors-origin <origin>', "let browsers on this origin (or '*') call the HTTP port; default no CORS").env('NEXUS_HTTP_CORS_ORIGIN'))
  .option('--registry <host:port>', 'registry address', '127.0.0.1:8011')
  .addOption(new Option('--executor <host:port>', 'an executor to dial (repeatable)').argParser(collect).default([]))
  .addOption(new Option('--executors-dns <name[:port]>', 'executors by DNS name: every A/AAAA record is one (a headless Service); port default 8021').env('NEXUS_EXECUTORS_DNS'))
  .addOption(new Option('--executors-dns-interval-ms <ms>', 'how often --executors-dns is resolved again').argParser(atLeast(100)).env('NEXUS_EXECUTORS_DNS_INTERVAL_MS')
    .default(String(DEFAULT_DNS_INTERVAL_MS)))
  .option('--max-batch-size <rows>', 'default max batch size', atLeast(1), String(DEFAULT_BATCHING_POLICY.maxBatchSize))
  .option('--max-queue-delay-us <us>', 'default max queue delay in microseconds', atLeast(0), String(DEFAULT_BATCHING_POLICY.maxQueueDelayMs * 1000))
  .option('--max-queue-size <requests>', 'default bound on queued requests per model', atLeast(1), String(DEFAULT_BATCHING_POLICY.maxQueueSize))
  .option('--batch-timeout-ms <ms>', 'longest wait for an executor to answer one batch', atLeast(1), String(DEFAULT_BATCH_TIMEOUT_MS))
  .option('--max-message-bytes <bytes>', 'largest public message, after decompression', atLeast(1024), String(DEFAULT_ROUTER_BUDGETS.maxMessageBytes))
  .option('--max-request-bytes <bytes>', 'largest input bytes of one request', atLeast(1), String(DEFAULT_ROUTER_BUDGETS.maxRequestBytes))
  .option('--max-batch-bytes <bytes>', 'largest batch inputs or outputs sent to or from an executor', atLeast(1), String(DEFAULT_ROUTER_BUDGETS.maxBatchBytes))
  .option('--max-result-bytes <bytes>', 'largest result of one batch (chunked past the executor message limit)', atLeast(1), String(DEFAULT_ROUTER_BUDGETS.maxResultBytes))
  .option('--max-queue-bytes <bytes>', 'input bytes queued per model version', atLeast(1), String(DEFAULT_ROUTER_BUDGETS.maxQueueBytes))
  .option('--max-task-bytes <bytes>', 'request and response bytes the task API holds', atLeast(1), String(DEFAULT_ROUTER_BUDGETS.maxTaskBytes))
  .option('--max-concurrent-streams <calls>', 'calls open at once per client connection', atLeast(1), String(DEFAULT_ROUTER_BUDGETS.maxConcurrentStreams))
  .option('--max-session-memory-mib <MiB>', 'memory one client connection may buffer', atLeast(1), String(DEFAULT_ROUTER_BUDGETS.maxSessionMemoryMiB))
  .option('--max-stream-inflight <requests>', 'requests in flight on one ModelStreamInfer stream', atLeast(1), String(DEFAULT_ROUTER_BUDGETS.maxStreamInflight))
  .option('--config <file>', 'YAML serving settings per model (see services/router/config/router-config.ts)')
  .option('--tls-dir <dir>', 'CA and service certificates: dial executors and the registry with the router\'s certificate (env NEXUS_TLS_DIR); default plaintext')
  .option('--tls-cert <file>', 'PEM certificate: serve the public port over TLS, with --tls-key (env NEXUS_TLS_CERT; Triton\'s --grpc-use-ssl)')
  .option('--tls-key <file>', 'PEM private key of --tls-cert (env NEXUS_TLS_KEY)')
  .option('--tls-client-ca <file>', 'PEM CA: public clients need a certificate it signed (env NEXUS_TLS_CLIENT_CA; Triton\'s --grpc-use-ssl-mutual)')
  .option('--insecure', 'authentication off; also allows listening beyond loopback without TLS and authentication (env NEXUS_INSECURE=1)')
  .addOption(new Option('--jwt-issuer <iss>', 'accept JWTs from this issuer (their iss), beside API keys').env('NEXUS_JWT_ISSUER'))
  .addOption(new Option('--jwt-audience <aud>', 'the aud accepted JWTs must include').env('NEXUS_JWT_AUDIENCE'))
  .addOption(new Option('--jwt-key-file <file>', 'JWT verification key: PEM public key, JWK, JWKS, or an HS256 secret').env('NEXUS_JWT_KEY_FILE'))
  .addOption(new Option('--jwt-jwks-url <url>', "the issuer's JWKS, fetched and cached (https unless loopback)").env('NEXUS_JWT_JWKS_URL'))
  .parse();
const options = program.opts<{
  address: string; httpAddress?: string; httpCorsOrigin?: string; metricsAddress: string; healthAddress?: string; registry: string; executor: string[]; executorsDns?: string; executorsDnsIntervalMs: string; maxBatchSize: string; maxQueueDelayUs: string; maxQueueSize: string;
  batchTimeoutMs: string; config?: string; tlsDir?: string; tlsCert?: string; tlsKey?: string; tlsClientCa?: string; insecure?: boolean;
  jwtIssuer?: string; jwtAudience?: string; jwtKeyFile?: string; jwtJwksUrl?: string;
} & Record<`max${string}`, string>>();

/**
 * The HTTP port's address: as given ('none': no HTTP port), else beside the gRPC port as Triton
 * has them (8000 beside 8001; port 0 stays 0, so a free one is picked).
 */
function httpAddressOf(given: string | undefined, grpcAddress: string): string | undefined {
  if (given === 'none') return undefined;
  if (given) return given;
  const at = grpcAddress.lastIndexOf(':');
  const port = Number(grpcAddress.slice(at + 1));
  return `${grpcAddress.slice(0, at)}:${port > 1 ? port - 1 : 0}`;
}

/** The public ports' PEM files from --tls-cert/--tls-key/--tls-client-ca (or their variables). */
function publicTlsFiles() {
  return {
    cert: options.tlsCert ?? (process.env.NEXUS_TLS_CERT || undefined),
    key: options.tlsKey ?? (process.env.NEXUS_TLS_KEY || undefined),
    clientCa: options.tlsClientCa ?? (process.env.NEXUS_TLS_CLIENT_CA || undefined),
  };
}

/** The public port's TLS from --tls-cert/--tls-key/--tls-client-ca (or their variables); undefined: plaintext. */
function publicCredentials() {
  const { cert, key, clientCa } = publicTlsFiles();
  if (cert === undefined && key === undefined && clientCa === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    const missing = [cert === undefined && '--tls-cert (NEXUS_TLS_CERT)', key === undefined && '--tls-key (NEXUS_TLS_KEY)'].filter(Boolean);
    throw new Error(`TLS on the public port needs --tls-cert and --tls-key; missing ${missing.join(' and ')}`);
  }
  return publicServerCredentials(cert, key, clientCa);
}



await runServiceProcess('router', async () => {
  const fromFlags: ModelServingConfig = {
    ...DEFAULT_SERVING_CONFIG,
    maxBatchSize: Number(options.maxBatchSize),
    maxQueueDelayMs: Number(options.maxQueueDelayUs) / 1000,
    maxQueueSize: Number(options.maxQueueSize),
  };
  const loaded = options.config ? loadRouterConfig(options.config, fromFlags) : { defaults: fromFlags, models: {} };
  // Lowest first: the defaults, the config file's budgets, the flags given on the command line.
  const budgets: RouterBudgets = { ...DEFAULT_ROUTER_BUDGETS, ...loaded.budgets };
  for (const [key, budget] of Object.entries(BUDGET_KEYS)) {
    // --max-session-memory-mib is max_session_memory_mib in the file and maxSessionMemoryMib to commander.
    const flag = key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
    if (program.getOptionValueSource(flag) === 'cli') budgets[budget] = Number(options[flag as `max${string}`]);
  }
  const config = { ...loaded, budgets };
  const credentials = publicCredentials();
  const insecure = options.insecure === true || process.env.NEXUS_INSECURE === '1';
  enforceBindPolicy({
    service: 'router', address: options.address, tls: credentials !== undefined, authentication: !insecure, insecure,
    remedies: { tls: 'pass --tls-cert FILE and --tls-key FILE' },
  });
  // The HTTP port is public too: the same bind policy, and HTTPS with the same files as the gRPC port.
  const httpAddress = httpAddressOf(options.httpAddress, options.address);
  if (httpAddress) {
    enforceBindPolicy({
      service: 'router', address: httpAddress, tls: credentials !== undefined, authentication: !insecure, insecure,
      remedies: { tls: 'pass --tls-cert FILE and --tls-key FILE, or --http-address none' },
    });
  }
  const files = publicTlsFiles();
  const httpTls = credentials === undefined ? undefined
    : { cert: readFileSync(files.cert!), key: readFileSync(files.key!), clientCa: files.clientCa === undefined ? undefined : readFileSync(files.clientCa) };
  const tls = await loadServiceTls('router', tlsDirFrom(options.tlsDir), 'none');
  // An empty NEXUS_EXECUTORS_DNS is no name, as an unset one.
  const executorsDns = !options.executorsDns ? undefined
    : { ...parseDnsTarget(options.executorsDns), intervalMs: Number(options.executorsDnsIntervalMs) };
  const jwt = jwtOptionsFrom({ issuer: options.jwtIssuer, audience: options.jwtAudience, keyFile: options.jwtKeyFile, jwksUrl: options.jwtJwksUrl });
  if (insecure && jwt) throw new Error('--insecure (or NEXUS_INSECURE=1) turns authentication off, so the --jwt-* settings would be ignored; give one or the other');
  const router = await startRouter({
    http: httpAddress ? { address: httpAddress, corsOrigin: options.httpCorsOrigin || undefined, tls: httpTls } : undefined,
    credentials, registryCredentials: tls?.dial('registry'), executorCredentials: tls?.dial('executor'),
    discoveredExecutorCredentials: tls?.dialByIdentity('executor'),
    address: options.address, registryAddress: options.registry, executorAddresses: options.executor, executorsDns, config,
    drainDelayMs: drainDelayMs(), batchTimeoutMs: Number(options.batchTimeoutMs), insecure, jwt,
  });
  if (router.httpAddress) {
    // Before the 'listening' line: nexus up prints the HTTP address beside the gRPC one.
    const announced = { event: 'http-listening', service: 'router', address: router.httpAddress };
    console.log(JSON.stringify(announced));
    process.send?.(announced);
  }
  return router;
}, { metricsAddress: options.metricsAddress, healthAddress: options.healthAddress });

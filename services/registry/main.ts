#!/usr/bin/env node
/**
 * The registry as a process:
 *   node services/registry/main.ts --address 127.0.0.1:8011 --data-dir DIR
 *   node services/registry/main.ts --store s3 --store-bucket models --store-endpoint http://minio:9000
 * Without --store flags the store comes from NEXUS_STORE_* variables, then a .nexusrc found from
 * the working directory up, then the local --data-dir (see store/store-config.ts).
 */
import { Command, Option } from 'commander';
import { jwtOptionsFrom, type JwtVerifierOptions } from '../auth/jwt.ts';
import { drainDelayMs, runServiceProcess } from '../rpc/service-process.ts';
import { enforceBindPolicy, loadServiceTls, tlsDirFrom } from '../tls/index.ts';
import { startRegistry } from './server.ts';
import { defaultDataDir } from '../domain/index.ts';
import { join } from 'node:path';
import { resolveStoreConfig, STORE_PROVIDERS, type StoreConfig } from './store/index.ts';
import { DEFAULT_LIMITS, parseLimit, type RegistryLimits } from './validation/index.ts';

const options = new Command('nexus-registry')
  .option('--metrics-address <host:port>', 'where /metrics is served for Prometheus', '127.0.0.1:8012')
  .addOption(new Option('--health-address <host:port>', 'a plaintext port serving grpc.health.v1 alone, for probes that cannot speak TLS (Kubernetes gRPC probes); default none').env('NEXUS_HEALTH_ADDRESS'))
  .option('--address <host:port>', 'address to listen on', '127.0.0.1:8011')
  .option('--data-dir <dir>', 'the local store\'s directory', join(defaultDataDir(), 'registry'))
  .option('--store <provider>', `where blobs and records are kept: ${STORE_PROVIDERS.join(', ')} (env NEXUS_STORE_PROVIDER)`)
  .option('--store-bucket <bucket>', 'S3 or GCS bucket (env NEXUS_STORE_BUCKET)')
  .option('--store-prefix <prefix>', 'key prefix inside the bucket (env NEXUS_STORE_PREFIX)')
  .option('--store-endpoint <url>', 'S3-compatible endpoint or GCS emulator (env NEXUS_STORE_ENDPOINT)')
  .option('--store-region <region>', 'S3 region (env NEXUS_STORE_REGION)')
  .option('--watch-poll-ms <ms>', 'how often Watch looks for events from other registry processes', '500')
  .option('--max-artifact-bytes <bytes>', `largest artifact or blob, in bytes (env NEXUS_REGISTRY_MAX_ARTIFACT_BYTES; default ${DEFAULT_LIMITS.maxArtifactBytes}, 16 GiB)`)
  .option('--max-model-bytes <bytes>', `largest directory model, all files, in bytes (env NEXUS_REGISTRY_MAX_MODEL_BYTES; default ${DEFAULT_LIMITS.maxModelBytes}, 64 GiB)`)
  .option('--max-versions-per-model <count>', `most versions of one model (env NEXUS_REGISTRY_MAX_VERSIONS_PER_MODEL; default ${DEFAULT_LIMITS.maxVersionsPerModel})`)
  .option('--gc-min-age-seconds <seconds>', `least age of an object GC may delete, whatever a client asks (env NEXUS_REGISTRY_GC_MIN_AGE_SECONDS; default ${DEFAULT_LIMITS.gcMinAgeMs / 1000})`)
  .option('--tls-dir <dir>', 'CA and service certificates: serve TLS, routers and executors identified by their certificates (env NEXUS_TLS_DIR); default plaintext')
  .option('--insecure', 'authentication off; also allows listening beyond loopback without TLS and authentication (env NEXUS_INSECURE=1)')
  .option('--bootstrap-admin-key-file <path>', 'write a first admin key here when neither it nor the store holds a valid one (env NEXUS_BOOTSTRAP_ADMIN_KEY_FILE)')
  .option('--jwt-issuer <iss>', 'accept JWTs from this issuer, besides API keys (env NEXUS_JWT_ISSUER)')
  .option('--jwt-audience <aud>', 'the audience JWTs must name (env NEXUS_JWT_AUDIENCE)')
  .option('--jwt-key-file <file>', 'the JWT verification key: PEM public key, JWK, JWKS or an HS256 secret (env NEXUS_JWT_KEY_FILE)')
  .option('--jwt-jwks-url <url>', 'where the issuer publishes its JWKS, instead of --jwt-key-file (env NEXUS_JWT_JWKS_URL)')
  .parse()
  .opts<{
    address: string; metricsAddress: string; healthAddress?: string; dataDir: string; store?: string; storeBucket?: string; storePrefix?: string;
    storeEndpoint?: string; storeRegion?: string; watchPollMs: string; maxArtifactBytes?: string; maxModelBytes?: string;
    maxVersionsPerModel?: string; gcMinAgeSeconds?: string; tlsDir?: string; insecure?: boolean; bootstrapAdminKeyFile?: string;
    jwtIssuer?: string; jwtAudience?: string; jwtKeyFile?: string; jwtJwksUrl?: string;
  }>();

/** A flag, else its variable; an empty variable counts as unset. */
const flagOrEnv = (flag: string | undefined, variable: string) => flag ?? (process.env[variable] || undefined);

/** The budgets from flags, then NEXUS_REGISTRY_* variables; the rest keep their defaults. */
function readLimits(): Partial<RegistryLimits> {
  const limits: Partial<RegistryLimits> = {};
  const read = (flag: string | undefined, variable: string, name: string) => {
    const text = flag ?? process.env[variable];
    return text === undefined || text === '' ? undefined : parseLimit(text, flag === undefined ? variable : name);
  };
  const artifact = read(options.maxArtifactBytes, 'NEXUS_REGISTRY_MAX_ARTIFACT_BYTES', '--max-artifact-bytes');
  const model = read(options.maxModelBytes, 'NEXUS_REGISTRY_MAX_MODEL_BYTES', '--max-model-bytes');
  const versions = read(options.maxVersionsPerModel, 'NEXUS_REGISTRY_MAX_VERSIONS_PER_MODEL', '--max-versions-per-model');
  const gcSeconds = read(options.gcMinAgeSeconds, 'NEXUS_REGISTRY_GC_MIN_AGE_SECONDS', '--gc-min-age-seconds');
  if (artifact !== undefined) limits.maxArtifactBytes = artifact;
  if (model !== undefined) limits.maxModelBytes = model;
  if (versions !== undefined) limits.maxVersionsPerModel = versions;
  if (gcSeconds !== undefined) limits.gcMinAgeMs = gcSeconds * 1000;
  return limits;
}

let store: StoreConfig;
let limits: Partial<RegistryLimits>;
let jwt: JwtVerifierOptions | undefined;
try {
  limits = readLimits();
  jwt = jwtOptionsFrom({
    issuer: flagOrEnv(options.jwtIssuer, 'NEXUS_JWT_ISSUER'), audience: flagOrEnv(options.jwtAudience, 'NEXUS_JWT_AUDIENCE'),
    keyFile: flagOrEnv(options.jwtKeyFile, 'NEXUS_JWT_KEY_FILE'), jwksUrl: flagOrEnv(options.jwtJwksUrl, 'NEXUS_JWT_JWKS_URL'),
  });
  store = resolveStoreConfig({
    cwd: process.cwd(),
    env: process.env,
    defaultPath: options.dataDir,
    flags: {
      provider: options.store as StoreConfig['provider'] | undefined, bucket: options.storeBucket, prefix: options.storePrefix,
      endpoint: options.storeEndpoint, region: options.storeRegion,
    },
  }).config;
} catch (error) {
  console.error(`registry: ${(error as Error).message}`);
  process.exit(2);
}

await runServiceProcess('registry', async () => {
  // A client certificate is asked for, not required: services show theirs, people send tokens.
  const tls = await loadServiceTls('registry', tlsDirFrom(options.tlsDir), 'optional');
  const insecure = options.insecure === true || process.env.NEXUS_INSECURE === '1';
  enforceBindPolicy({ service: 'registry', address: options.address, tls: tls !== undefined, authentication: !insecure, insecure });
  return startRegistry({
    address: options.address, store, drainDelayMs: drainDelayMs(), watchPollIntervalMs: Number(options.watchPollMs), limits,
    credentials: tls?.server, auth: insecure ? undefined : { jwt },
    bootstrapAdminKeyFile: flagOrEnv(options.bootstrapAdminKeyFile, 'NEXUS_BOOTSTRAP_ADMIN_KEY_FILE'),
  });
}, {
  metricsAddress: options.metricsAddress,
  healthAddress: options.healthAddress,
});

/**
 * Which store the registry uses, decided by layers where each later one wins field by field:
 *
 *   1. the local directory given by --data-dir (the default);
 *   2. a `.nexusrc` YAML file, the first found from the working directory upwards;
 *   3. NEXUS_STORE_PROVIDER, NEXUS_STORE_BUCKET, NEXUS_STORE_PREFIX, NEXUS_STORE_ENDPOINT,
 *      NEXUS_STORE_REGION, NEXUS_STORE_PATH, NEXUS_STORE_PROJECT;
 *   4. --store, --store-bucket, --store-prefix, --store-endpoint, --store-region flags.
 *
 *   # .nexusrc
 *   provider: s3            # local | s3 | gcs
 *   bucket: ml-models
 *   prefix: nexus           # optional
 *   endpoint: http://minio:9000   # optional: MinIO, any S3-compatible store, a GCS emulator
 *   region: eu-west-1       # optional
 *
 * Credentials never come from here: each SDK's own chain provides them. A `.nexusrc` naming a
 * key, secret or token, or an endpoint carrying user:password, is refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { LocalObjectStore } from './local-store.ts';
import type { ObjectStore } from './object-store.ts';

export const STORE_PROVIDERS = ['local', 's3', 'gcs'] as const;
export type StoreProvider = (typeof STORE_PROVIDERS)[number];

export interface StoreConfig {
  provider: StoreProvider;
  /** local: the directory. */
  path?: string;
  /** s3, gcs: the bucket. */
  bucket?: string;
  /** s3, gcs: key prefix inside the bucket. */
  prefix?: string;
  /** s3: an S3-compatible endpoint (path-style addressing is then used); gcs: an emulator. */
  endpoint?: string;
  /** s3: the region. */
  region?: string;
  /** gcs: the project id (optional). */
  project?: string;
}

/** The store chosen and where each setting came from, for the startup log. */
export interface ResolvedStoreConfig {
  config: StoreConfig;
  /** e.g. ".nexusrc at /repo/.nexusrc, env" */
  sources: string[];
}

export const RC_FILE = '.nexusrc';
const FIELDS = ['provider', 'path', 'bucket', 'prefix', 'endpoint', 'region', 'project'] as const;
type Field = (typeof FIELDS)[number];
const ENV: Record<Field, string> = {
  provider: 'NEXUS_STORE_PROVIDER', path: 'NEXUS_STORE_PATH', bucket: 'NEXUS_STORE_BUCKET', prefix: 'NEXUS_STORE_PREFIX',
  endpoint: 'NEXUS_STORE_ENDPOINT', region: 'NEXUS_STORE_REGION', project: 'NEXUS_STORE_PROJECT',
};
const SECRET_LOOKING = /key|secret|token|password|credential|auth/i;

/** The `.nexusrc` in `from` or its nearest ancestor; undefined when there is none. */
export function findRcFile(from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, RC_FILE);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Parses a `.nexusrc`; relative local paths are taken relative to the file. */
export function parseRcFile(text: string, path: string): Partial<StoreConfig> {
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new Error(`${path} is not valid YAML: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${path} must be a YAML map of store settings`);
  const config: Partial<Record<Field, string>> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (SECRET_LOOKING.test(name)) {
      throw new Error(`${path} sets '${name}': credentials do not belong in ${RC_FILE}; use the provider's standard chain (AWS_PROFILE or an instance role for S3, GOOGLE_APPLICATION_CREDENTIALS or gcloud for GCS)`);
    }
    if (!(FIELDS as readonly string[]).includes(name)) {
      throw new Error(`${path} sets unknown setting '${name}'; known settings: ${FIELDS.join(', ')}`);
    }
    if (typeof value !== 'string' && typeof value !== 'number') throw new Error(`${path}: '${name}' must be a string`);
    config[name as Field] = String(value);
  }
  if (config.path) config.path = resolve(dirname(path), config.path);
  return config as Partial<StoreConfig>;
}

/** Checks a merged configuration; errors name the setting and what would be right. */
export function checkStoreConfig(config: StoreConfig): StoreConfig {
  if (!(STORE_PROVIDERS as readonly string[]).includes(config.provider)) {
    throw new Error(`store provider '${config.provider}' is unknown; use one of: ${STORE_PROVIDERS.join(', ')}`);
  }
  if (config.provider === 'local') {
    if (!config.path) throw new Error('the local store needs a directory (--data-dir, path in .nexusrc, or NEXUS_STORE_PATH)');
    return config;
  }
  if (!config.bucket) throw new Error(`the ${config.provider} store needs a bucket (bucket in .nexusrc, NEXUS_STORE_BUCKET or --store-bucket)`);
  if (!/^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$/.test(config.bucket)) {
    throw new Error(`bucket '${config.bucket}' is not a valid bucket name (3-63 lower-case letters, digits, '.', '-' or '_')`);
  }
  const prefixSegments = (config.prefix ?? '').replace(/^\/+|\/+$/g, '').split('/');
  if (config.prefix && prefixSegments.some((segment) => !/^[A-Za-z0-9._-]+$/.test(segment) || segment === '.' || segment === '..')) {
    throw new Error(`store prefix '${config.prefix}' is invalid: use '/'-separated segments of letters, digits, '.', '_' or '-'`);
  }
  if (config.endpoint) {
    let url: URL;
    try {
      url = new URL(config.endpoint);
    } catch {
      throw new Error(`store endpoint '${config.endpoint}' is not a URL (e.g. http://127.0.0.1:9000)`);
    }
    if (url.username || url.password) {
      throw new Error('the store endpoint carries credentials; remove them and use the provider\'s standard credential chain');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`store endpoint '${url.origin}' must be http or https`);
  }
  return config;
}

/**
 * Merges the layers above. `flags` hold what was given on the command line; `defaultPath` is the
 * local directory used when nothing else is configured.
 */
export function resolveStoreConfig(options: {
  cwd: string;
  env: NodeJS.ProcessEnv;
  flags?: Partial<StoreConfig>;
  defaultPath: string;
}): ResolvedStoreConfig {
  const merged: Partial<StoreConfig> = { provider: 'local', path: options.defaultPath };
  const sources = ['defaults'];
  const apply = (layer: Partial<StoreConfig>, source: string) => {
    const set = Object.entries(layer).filter(([, value]) => value !== undefined && value !== '');
    if (set.length === 0) return;
    Object.assign(merged, Object.fromEntries(set));
    sources.push(source);
  };
  const rcPath = findRcFile(options.cwd);
  if (rcPath) apply(parseRcFile(readFileSync(rcPath, 'utf8'), rcPath), rcPath);
  apply(Object.fromEntries(FIELDS.map((field) => [field, options.env[ENV[field]]])) as Partial<StoreConfig>, 'environment');
  apply(options.flags ?? {}, 'flags');
  return { config: checkStoreConfig(merged as StoreConfig), sources };
}

/** Opens the configured store (the cloud SDKs are loaded only when used). */
export async function openStore(config: StoreConfig): Promise<ObjectStore> {
  switch (config.provider) {
    case 'local':
      return new LocalObjectStore(config.path!).init();
    case 's3': {
      const { createS3Store } = await import('./s3-store.ts');
      return createS3Store({ bucket: config.bucket!, prefix: config.prefix, endpoint: config.endpoint, region: config.region });
    }
    case 'gcs': {
      const { createGcsStore } = await import('./gcs-store.ts');
      return createGcsStore({ bucket: config.bucket!, prefix: config.prefix, endpoint: config.endpoint, projectId: config.project });
    }
  }
}

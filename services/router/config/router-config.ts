/**
 * The router's per-model serving settings, from a YAML file (`--config router.yaml`):
 *
 *   defaults:                      # every model
 *     max_batch_size: 32           # rows per batch
 *     max_queue_delay_us: 2000     # longest a request waits for company
 *     wait_when_idle: false        # true: wait the delay even with nothing running (Triton)
 *     max_queue_size: 1024         # queued requests beyond this get RESOURCE_EXHAUSTED
 *     default_priority: normal     # high | normal | low, for requests that name none
 *   models:
 *     iris:
 *       preferred_batch_sizes: [8, 16]
 *       response_cache: { max_bytes: 16777216, ttl_seconds: 60 }
 *       split:                     # A/B: unversioned requests go to these versions by weight
 *         sticky_parameter: user   # a request parameter that keeps a client on one arm
 *         arms: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }]
 *   budgets:                       # RouterBudgets, snake_case; a flag given explicitly wins
 *     max_request_bytes: 16777216
 *   auth:                          # see auth-config.ts
 *     default_limits: { requests_per_second: 20, max_concurrent: 16 }
 *
 * Precedence, lowest first: built-in defaults, the file's `defaults` (or the router's flags), the
 * batching stored with the version (`nexus store --max-batch-size`), the file's `models.<name>`.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { BatchingConfig } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { DEFAULT_PRIORITY, priorityLevelOf } from '../admission/index.ts';
import { DEFAULT_BATCHING_POLICY } from '../../domain/index.ts';
import type { BatchingPolicy } from '../batching/index.ts';
import { parseAuthConfig, type AuthConfig } from './auth-config.ts';

/** An A/B split of a model's unversioned traffic between versions. */
export interface TrafficSplit {
  arms: Array<{ version: number; weight: number }>;
  /** A request parameter whose value pins a client to one arm; absent: random per request. */
  stickyParameter?: string;
}

export interface ModelServingConfig extends BatchingPolicy {
  /** 1 (high) … 3 (low). */
  defaultPriority: number;
  /** Absent: no caching. */
  responseCache?: { maxBytes: number; ttlMs: number };
  /** Absent: requests without a version go to the latest. */
  split?: TrafficSplit;
}

export interface RouterConfig {
  defaults: ModelServingConfig;
  models: Record<string, Partial<ModelServingConfig>>;
  /** Byte and count budgets; absent ones take DEFAULT_ROUTER_BUDGETS. */
  budgets?: Partial<RouterBudgets>;
  /** Authentication settings (rate-limit defaults); absent: unlimited. */
  auth?: AuthConfig;
}

const MIB = 1024 * 1024;

/** What the router holds at most, in bytes or counts (docs/router.md, "Budgets and limits"). */
export interface RouterBudgets {
  /**
   * Largest public gRPC message, in bytes, after decompression (grpc-js stops inflating a
   * compressed request past it and answers RESOURCE_EXHAUSTED). Default 32 MiB.
   */
  maxMessageBytes: number;
  /** Largest input of one request, in bytes (its shapes × its datatypes, summed). Default 16 MiB. */
  maxRequestBytes: number;
  /**
   * Largest batch to or from an executor, in bytes: a batch's stacked inputs, and its outputs when
   * the output shapes are static, stay under it (batches are cut smaller; one request over it is
   * refused). Under the 64 MiB router↔executor message limit, with room for the envelope. Default 60 MiB.
   */
  maxBatchBytes: number;
  /**
   * Largest result of one batch, in bytes: outputs past the router↔executor message limit come
   * back in chunks and are put together up to this; batches are cut so their known outputs stay
   * under it. Default 1 GiB.
   */
  maxResultBytes: number;
  /** Input bytes queued on one model version; a request past it gets RESOURCE_EXHAUSTED. Default 256 MiB. */
  maxQueueBytes: number;
  /** Bytes of requests and responses the task API holds; new tasks past it get RESOURCE_EXHAUSTED. Default 256 MiB. */
  maxTaskBytes: number;
  /** Calls one client connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). Default 1 000. */
  maxConcurrentStreams: number;
  /** Memory one client connection may buffer, in MiB; new calls on it are refused while over it. Default 256. */
  maxSessionMemoryMiB: number;
  /** Requests one ModelStreamInfer stream may have in flight; past it the router stops reading the stream. Default 64. */
  maxStreamInflight: number;
}

export const DEFAULT_ROUTER_BUDGETS: RouterBudgets = {
  maxMessageBytes: 32 * MIB,
  maxRequestBytes: 16 * MIB,
  maxBatchBytes: 60 * MIB,
  maxResultBytes: 1024 * MIB,
  maxQueueBytes: 256 * MIB,
  maxTaskBytes: 256 * MIB,
  maxConcurrentStreams: 1_000,
  maxSessionMemoryMiB: 256,
  maxStreamInflight: 64,
};

/** The config's budgets with the defaults filled in. */
export function budgetsOf(config: RouterConfig | undefined): RouterBudgets {
  return { ...DEFAULT_ROUTER_BUDGETS, ...config?.budgets };
}

export const DEFAULT_SERVING_CONFIG: ModelServingConfig = { ...DEFAULT_BATCHING_POLICY, defaultPriority: DEFAULT_PRIORITY };

const KNOWN_KEYS = ['max_batch_size', 'max_queue_delay_us', 'max_queue_size', 'preferred_batch_sizes', 'wait_when_idle', 'default_priority', 'response_cache', 'split'];

function positiveInteger(value: unknown, where: string, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new Error(`${where} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Reads one `defaults` or `models.<name>` block; throws naming the bad key. */
function parseBlock(raw: unknown, where: string): Partial<ModelServingConfig> {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where} must be a mapping`);
  const block = raw as Record<string, unknown>;
  const unknown = Object.keys(block).filter((key) => !KNOWN_KEYS.includes(key));
  if (unknown.length > 0) throw new Error(`${where}.${unknown[0]} is not a setting; known: ${KNOWN_KEYS.join(', ')}`);
  const config: Partial<ModelServingConfig> = {};
  if (block.max_batch_size !== undefined) config.maxBatchSize = positiveInteger(block.max_batch_size, `${where}.max_batch_size`);
  if (block.max_queue_delay_us !== undefined) config.maxQueueDelayMs = positiveInteger(block.max_queue_delay_us, `${where}.max_queue_delay_us`, true) / 1000;
  if (block.wait_when_idle !== undefined) {
    if (typeof block.wait_when_idle !== 'boolean') throw new Error(`${where}.wait_when_idle must be true or false`);
    config.waitWhenIdle = block.wait_when_idle;
  }
  if (block.max_queue_size !== undefined) config.maxQueueSize = positiveInteger(block.max_queue_size, `${where}.max_queue_size`);
  if (block.preferred_batch_sizes !== undefined) {
    if (!Array.isArray(block.preferred_batch_sizes)) throw new Error(`${where}.preferred_batch_sizes must be a list`);
    config.preferredBatchSizes = block.preferred_batch_sizes.map((size, index) => positiveInteger(size, `${where}.preferred_batch_sizes[${index}]`));
  }
  if (block.default_priority !== undefined) {
    const level = priorityLevelOf(block.default_priority);
    if (level === undefined) throw new Error(`${where}.default_priority must be high, normal or low`);
    config.defaultPriority = level;
  }
  if (block.response_cache !== undefined) {
    const cache = block.response_cache as Record<string, unknown>;
    if (typeof cache !== 'object' || cache === null) throw new Error(`${where}.response_cache must be a mapping`);
    config.responseCache = {
      maxBytes: positiveInteger(cache.max_bytes, `${where}.response_cache.max_bytes`),
      ttlMs: positiveInteger(cache.ttl_seconds, `${where}.response_cache.ttl_seconds`) * 1000,
    };
  }
  if (block.split !== undefined) config.split = parseSplit(block.split, `${where}.split`);
  return config;
}

function parseSplit(raw: unknown, where: string): TrafficSplit {
  const split = raw as { arms?: unknown; sticky_parameter?: unknown };
  if (typeof split !== 'object' || split === null || !Array.isArray(split.arms) || split.arms.length < 2) {
    throw new Error(`${where}.arms must list at least two { version, weight } entries`);
  }
  const arms = split.arms.map((arm: { version?: unknown; weight?: unknown }, index: number) => {
    const weight = arm?.weight;
    if (typeof weight !== 'number' || !(weight > 0) || !Number.isFinite(weight)) {
      throw new Error(`${where}.arms[${index}].weight must be a positive number`);
    }
    return { version: positiveInteger(arm?.version, `${where}.arms[${index}].version`), weight };
  });
  if (new Set(arms.map((arm) => arm.version)).size !== arms.length) throw new Error(`${where}.arms names a version twice`);
  if (split.sticky_parameter !== undefined && typeof split.sticky_parameter !== 'string') {
    throw new Error(`${where}.sticky_parameter must be a parameter name`);
  }
  return { arms, stickyParameter: split.sticky_parameter as string | undefined };
}

/** Each budget by its name in the config file's `budgets` section, which is its flag's name with underscores. */
export const BUDGET_KEYS: Readonly<Record<string, keyof RouterBudgets>> = {
  max_message_bytes: 'maxMessageBytes', max_request_bytes: 'maxRequestBytes', max_batch_bytes: 'maxBatchBytes',
  max_result_bytes: 'maxResultBytes', max_queue_bytes: 'maxQueueBytes', max_task_bytes: 'maxTaskBytes',
  max_concurrent_streams: 'maxConcurrentStreams', max_session_memory_mib: 'maxSessionMemoryMiB', max_stream_inflight: 'maxStreamInflight',
};

/** Reads the `budgets` section; throws naming the bad key. */
function parseBudgets(raw: unknown): Partial<RouterBudgets> {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error("'budgets' must be a mapping");
  const budgets: Partial<RouterBudgets> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!Object.hasOwn(BUDGET_KEYS, key)) throw new Error(`budgets.${key} is not a budget; known: ${Object.keys(BUDGET_KEYS).join(', ')}`);
    budgets[BUDGET_KEYS[key]] = positiveInteger(value, `budgets.${key}`);
  }
  return budgets;
}

/** Parses the YAML text of a router config; throws an Error naming the first bad setting. */
export function parseRouterConfig(text: string, base: ModelServingConfig = DEFAULT_SERVING_CONFIG): RouterConfig {
  const raw = (parse(text) ?? {}) as Record<string, unknown>;
  const extra = Object.keys(raw).filter((key) => !['defaults', 'models', 'budgets', 'auth'].includes(key));
  if (extra.length > 0) throw new Error(`'${extra[0]}' is not a section; use 'defaults', 'models', 'budgets' and 'auth'`);
  const models = (raw.models ?? {}) as Record<string, unknown>;
  if (typeof models !== 'object' || Array.isArray(models)) throw new Error("'models' must map model names to settings");
  return {
    defaults: { ...base, ...parseBlock(raw.defaults, 'defaults') },
    models: Object.fromEntries(Object.entries(models).map(([name, block]) => [name, parseBlock(block, `models.${name}`)])),
    budgets: parseBudgets(raw.budgets),
    ...(raw.auth === undefined ? {} : { auth: parseAuthConfig(raw.auth) }),
  };
}

export function loadRouterConfig(path: string, base?: ModelServingConfig): RouterConfig {
  try {
    return parseRouterConfig(readFileSync(path, 'utf8'), base);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
}

/** The settings for one version, by the precedence above. */
export function servingConfigFor(config: RouterConfig, modelName: string, stored: BatchingConfig | undefined): ModelServingConfig {
  return {
    ...config.defaults,
    ...(stored?.maxBatchSize ? { maxBatchSize: stored.maxBatchSize } : {}),
    ...(stored?.maxQueueDelayUs ? { maxQueueDelayMs: stored.maxQueueDelayUs / 1000 } : {}),
    ...config.models[modelName],
  };
}

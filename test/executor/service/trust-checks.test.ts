/**
 * The executor's checks on what arrives over its stream, without a GPU: digests, cache paths,
 * LoadModel claims against the registry's record, the warm-up budget and GPU-budget evictions.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import type { ModelVersion, RegistryClient } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ArtifactCache } from '../../../services/executor/service/artifact-cache.ts';
import { checkSha256 } from '../../../services/executor/service/digest.ts';
import { budgetFromEnv, compileBudgetsFromEnv, evictionsToFit } from '../../../services/executor/service/gpu-budget.ts';
import { checkClaims, checkLoadTarget } from '../../../services/executor/service/version-trust.ts';
import { DEFAULT_WARM_UP_BUDGET_BYTES, maxBatchSizeOf, planWarmUp } from '../../../services/executor/service/warm-up.ts';

const GOOD = 'a'.repeat(64);
const HOSTILE_DIGESTS: Array<[string, string]> = [
  ['a relative path', '../../etc/passwd'],
  ['an absolute path', '/etc/passwd'],
  ['63 hex characters', 'a'.repeat(63)],
  ['65 hex characters', 'a'.repeat(65)],
  ['upper-case hex', 'A'.repeat(64)],
  ['a NUL byte', `${'a'.repeat(32)}\0${'a'.repeat(31)}`],
  ['64 characters ending in a traversal', `${'a'.repeat(58)}/../..`],
  ['empty', ''],
];

function codeOf(action: () => unknown): number | undefined {
  try {
    action();
  } catch (error) {
    return (error as NexusError).code;
  }
  return undefined;
}

describe('digests', () => {
  it.each(HOSTILE_DIGESTS)('refuses %s as INVALID_ARGUMENT naming the field', (_name, digest) => {
    expect(codeOf(() => checkSha256('load_model.version.sha256', digest))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(() => checkSha256('load_model.version.sha256', digest)).toThrow(/load_model\.version\.sha256 .* 64 lower-case hex/);
  });

  it('accepts 64 lower-case hex characters', () => {
    expect(checkSha256('sha256', GOOD)).toBe(GOOD);
  });
});

describe('the artifact cache', () => {
  let root: string;
  let cacheDir: string;
  let victim: string;
  let downloads = 0;
  const registry = { downloadArtifact: () => { downloads += 1; throw new Error('no download expected'); } } as unknown as RegistryClient;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'nexus-cache-'));
    cacheDir = join(root, 'data', 'cache');
    await mkdir(cacheDir, { recursive: true });
    victim = join(root, 'passwd');
    await writeFile(victim, 'root:x:0:0\n');
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it.each(HOSTILE_DIGESTS)('refuses %s before touching any file, and a file outside the cache survives', async (_name, digest) => {
    await expect(new ArtifactCache(cacheDir, registry).fetch(digest)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(new ArtifactCache(cacheDir, registry).fetch('../../passwd')).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect(await readFile(victim, 'utf8')).toBe('root:x:0:0\n');
    expect(downloads).toBe(0);
  });
});

const record: ModelVersion = {
  modelName: 'iris', version: 3, sha256: GOOD, sizeBytes: 1234, format: 'onnx',
  signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }] },
  lineage: undefined, tags: { 'nexus.precision': 'fp32', team: 'ml' }, creator: 'ada', createdAtUnixMs: 1, batching: { maxBatchSize: 8, maxQueueDelayUs: 0 }, files: [],
};

describe('LoadModel claims against the registry record', () => {
  it('accepts a claim equal to the record (tags in any order) and returns the record', () => {
    expect(checkClaims({ ...record, tags: { team: 'ml', 'nexus.precision': 'fp32' } }, record)).toBe(record);
  });

  it.each([
    ['sha256', { sha256: 'b'.repeat(64) }, /sha256/],
    ['format', { format: 'safetensors' }, /format/],
    ['size_bytes', { sizeBytes: 1 }, /size_bytes/],
    ['tags (a precision the registry does not have)', { tags: { 'nexus.precision': 'fp16', team: 'ml' } }, /tags/],
    ['signature', { signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 5] }], outputs: [] } }, /signature/],
    ['batching', { batching: { maxBatchSize: 4096, maxQueueDelayUs: 0 } }, /batching/],
  ])('refuses a claim whose %s disagrees, FAILED_PRECONDITION naming it', (_field, change, pattern) => {
    const claim = { ...record, ...change } as ModelVersion;
    expect(codeOf(() => checkClaims(claim, record))).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(() => checkClaims(claim, record)).toThrow(pattern);
  });

  it('refuses a malformed target as INVALID_ARGUMENT: no version, version 0, no name, a bad digest', () => {
    expect(codeOf(() => checkLoadTarget(undefined))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => checkLoadTarget({ ...record, version: 0 }))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => checkLoadTarget({ ...record, modelName: '' }))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => checkLoadTarget({ ...record, sha256: '../x' }))).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

describe('warm-up plans', () => {
  it('covers every batch size from max_batch_size down to 1, default 32', () => {
    expect(maxBatchSizeOf(record)).toBe(8);
    expect(maxBatchSizeOf({ ...record, batching: undefined })).toBe(32);
    const plan = planWarmUp('iris', { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [] }, 32, DEFAULT_WARM_UP_BUDGET_BYTES)!;
    expect(plan.batchSizes).toEqual(Array.from({ length: 32 }, (_, index) => 32 - index));
    expect(plan.inputBytes).toBe(32 * 4 * 4);
    expect(plan.inputsFor(13).get('x')!.shape).toEqual([13, 4]);
  });

  it('counts variable dims beyond the batch as 1 and a fixed batch dim as one size', () => {
    const plan = planWarmUp('m', { inputs: [{ name: 'x', datatype: 'INT64', shape: [2, -1, 3] }], outputs: [] }, 32, 1024)!;
    expect(plan.batchSizes).toEqual([1]);
    expect(plan.inputsFor(1).get('x')!.shape).toEqual([2, 1, 3]);
  });

  it('refuses a declared input of [1, 2^40] before allocating, RESOURCE_EXHAUSTED naming the budget', () => {
    const huge = { inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 2 ** 40] }], outputs: [] };
    expect(codeOf(() => planWarmUp('huge', huge, 32, DEFAULT_WARM_UP_BUDGET_BYTES))).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(() => planWarmUp('huge', huge, 32, DEFAULT_WARM_UP_BUDGET_BYTES)).toThrow(/4398046511104 bytes .* warm-up budget of 268435456 bytes/);
  });
});

describe('the GPU budget', () => {
  const residents = [
    { key: 'old', bytes: 400, idle: true, lastUsedMs: 1 },
    { key: 'busy', bytes: 300, idle: false, lastUsedMs: 0 },
    { key: 'recent', bytes: 200, idle: true, lastUsedMs: 5 },
  ];

  it('evicts nothing when a model fits', () => {
    expect(evictionsToFit(residents, 100, 1000)).toEqual([]);
  });

  it('evicts the least recently used idle models first, never a busy one', () => {
    expect(evictionsToFit(residents, 400, 1000)).toEqual(['old']);
    expect(evictionsToFit(residents, 650, 1000)).toEqual(['old', 'recent']);
  });

  it('evicts nothing when even every idle model would not make room', () => {
    expect(evictionsToFit(residents, 800, 1000)).toBeUndefined();
  });

  it('reads a budget from the environment and refuses a bad one naming the variable', () => {
    expect(budgetFromEnv('NEXUS_GPU_BUDGET_BYTES', undefined, 7)).toBe(7);
    expect(budgetFromEnv('NEXUS_GPU_BUDGET_BYTES', '1048576', 7)).toBe(1048576);
    expect(() => budgetFromEnv('NEXUS_GPU_BUDGET_BYTES', '-1', 7)).toThrow(/NEXUS_GPU_BUDGET_BYTES="-1"/);
  });

  it('takes the compile budgets that are set in the environment and leaves the rest to their defaults', () => {
    expect(compileBudgetsFromEnv({ NEXUS_MAX_GRAPH_NODES: '5000', NEXUS_COMPILE_HEAP_MB: '', PATH: '/bin' })).toEqual({ maxNodes: 5000 });
    expect(() => compileBudgetsFromEnv({ NEXUS_FOLD_BUDGET_BYTES: '1e99' })).toThrow(/NEXUS_FOLD_BUDGET_BYTES="1e99"/);
  });
});

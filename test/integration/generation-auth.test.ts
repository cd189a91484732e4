/**
 * Text generation behind authentication, over real gRPC against a fake executor: Generate and
 * Tokenize need a credential whose model globs cover the model, and a key's rows_per_second is
 * its tokens per second, each generation admitted as prompt + max_new_tokens before it starts.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrincipalLimits } from '../../services/auth/principal.ts';
import { startGenerationCluster, type GenerationCluster } from '../router/generation/generation-cluster.ts';

let cluster: GenerationCluster;
/** Ten prompt tokens and twenty new ones: 30 tokens, admitted as 30 rows. */
const request = { modelName: 'tiny-gpt', tokenIds: { ids: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, maxNewTokens: 20 };
const NO_LIMITS: PrincipalLimits = { requestsPerSecond: 0, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 };

beforeAll(async () => {
  cluster = await startGenerationCluster({ executor: { tokensFor: () => Array.from({ length: 30 }, (_, index) => 100 + index) }, authenticated: true });
  await cluster.storeCheckpoint('tiny-gpt');
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

/** A key the router has heard of (it follows the registry's keys through a stream). */
async function keyWith(models: string[], limits: Partial<PrincipalLimits> = {}): Promise<string> {
  const created = await cluster.registry.keys.create({ name: 'test', role: 'infer', models, limits: { ...NO_LIMITS, ...limits } }, 'test');
  for (const started = Date.now(); Date.now() - started < 10_000;) {
    const { error } = await cluster.generate({ modelName: 'tiny-gpt' }, 10_000, created.key);
    // Past authentication: the request itself is refused (no prompt), or the glob is.
    if (error?.code !== status.UNAUTHENTICATED) return created.key;
    await new Promise((wake) => setTimeout(wake, 50));
  }
  throw new Error('the router never heard of the key');
}

describe('Generation behind authentication', () => {
  it('refuses a call without credentials, and a model outside the key\'s globs, for Generate and Tokenize', async () => {
    expect((await cluster.generate(request)).error?.code).toBe(status.UNAUTHENTICATED);
    const key = await keyWith(['other-*']);
    const refused = await cluster.generate(request, 10_000, key);
    expect(refused.error).toMatchObject({ code: status.PERMISSION_DENIED, details: "this credential may not use model 'tiny-gpt'" });
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${key}`);
    const tokenized = await new Promise<ServiceError | null>((done) =>
      cluster.generation.tokenize({ modelName: 'tiny-gpt', modelVersion: '', text: 'x' }, metadata, (error) => done(error)));
    expect(tokenized?.code).toBe(status.PERMISSION_DENIED);
  });

  it('counts prompt + max_new_tokens against rows_per_second: one generation fits, the next in the same second is refused', async () => {
    const key = await keyWith(['tiny-*'], { rowsPerSecond: 40 });
    // keyWith's probes were refused before they counted anything.
    const first = await cluster.generate(request, 10_000, key);
    expect(first.error).toBeUndefined();
    expect(first.responses.at(-1)!.generatedTokens).toBe(20);
    const second = await cluster.generate(request, 10_000, key);
    expect(second.error?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(second.error?.details).toMatch(/rows_per_second \(40\)/);
    const tooLarge = await cluster.generate({ ...request, maxNewTokens: 31 }, 10_000, key);
    expect(tooLarge.error?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(tooLarge.error?.details).toMatch(/a call of 41 rows is over it/);
  });
});

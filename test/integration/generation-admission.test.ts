/**
 * Admission of generations by the executor's KV capacity, over real gRPC against a fake executor
 * whose cache holds 40 tokens: a sequence of prompt + max_new_tokens that does not fit beside the
 * running ones waits and starts once they end, higher priorities first; the queue is bounded; a
 * deadline passing in the queue answers DEADLINE_EXCEEDED without the sequence ever starting; a
 * sequence larger than any cache is refused; a lost executor fails its sequences UNAVAILABLE and
 * frees their reservations, and so does one that goes silent for the batch timeout.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinishReason } from '../../services/protocol/generated/nexus/llm/v1/llm.ts';
import { DEFAULT_SERVING_CONFIG } from '../../services/router/index.ts';
import { startGenerationCluster, type GenerationCluster } from '../router/generation/generation-cluster.ts';

let cluster: GenerationCluster;
/** Ten prompt tokens and twenty new ones: 30 of the cache's 40, so one sequence runs at a time. */
const request = (priority = '') => ({ modelName: 'tiny-gpt', tokenIds: { ids: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, maxNewTokens: 20, priority });

beforeAll(async () => {
  cluster = await startGenerationCluster({
    executor: {
      tokensFor: () => Array.from({ length: 40 }, (_, index) => 100 + index), kvCapacityTokens: 40, maxSequenceTokens: 64, stepMs: 8,
      // A prompt starting with token 200 hangs after its first token.
      stalls: (start) => start.promptTokenIds[0] === 200,
    },
    config: { defaults: DEFAULT_SERVING_CONFIG, models: { 'tiny-gpt': { maxQueueSize: 2 } } },
    batchTimeoutMs: 1_000,
  });
  await cluster.storeCheckpoint('tiny-gpt');
  // Loaded before the tests time anything.
  await cluster.generate({ ...request(), maxNewTokens: 1 });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

/** The executor's record of starts and ends from index `from` on, as "start <n>" / "end <n>" with n the order of the start. */
function timeline(from: number): string[] {
  const order = new Map<number, number>();
  return cluster.executor.seen.slice(from).flatMap((entry) => {
    if (entry.kind === 'start') {
      order.set(entry.start.sequenceId, order.size);
      return [`start ${order.size - 1}`];
    }
    if (entry.kind === 'end' && order.has(entry.sequenceId)) return [`end ${order.get(entry.sequenceId)}`];
    return [];
  });
}

describe('admission by KV capacity', () => {
  it('starts a sequence that does not fit beside the running one only once that one ended', async () => {
    const from = cluster.executor.seen.length;
    const [first, second] = await Promise.all([cluster.generate(request()), cluster.generate(request())]);
    expect(first.error).toBeUndefined();
    expect(second.error).toBeUndefined();
    expect(first.responses.at(-1)!.finishReason).toBe(FinishReason.FINISH_REASON_LENGTH);
    expect(second.responses.at(-1)!.generatedTokens).toBe(20);
    expect(timeline(from)).toEqual(['start 0', 'end 0', 'start 1', 'end 1']);
  });

  it('takes a waiting high-priority sequence before a low one that came first', async () => {
    const from = cluster.executor.seen.length;
    const running = cluster.generate(request());
    await expect.poll(() => cluster.executor.running()).toBe(1);
    const low = cluster.generate(request('low'));
    await new Promise((wait) => setTimeout(wait, 20));
    const high = cluster.generate(request('high'));
    await Promise.all([running, low, high]);
    const starts = cluster.executor.seen.slice(from).flatMap((entry) => (entry.kind === 'start' ? [entry.start.priority] : []));
    expect(starts).toEqual([2, 1, 3]);
  });

  it('answers RESOURCE_EXHAUSTED when the version\'s queue (max_queue_size 2) is full', async () => {
    const running = cluster.generate(request());
    await expect.poll(() => cluster.executor.running()).toBe(1);
    const waiting = [cluster.generate(request()), cluster.generate(request())];
    await new Promise((wait) => setTimeout(wait, 20));
    const refused = await cluster.generate(request());
    expect(refused.error?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.error?.details).toMatch(/generation queue is full \(2 sequences/);
    for (const outcome of await Promise.all([running, ...waiting])) expect(outcome.error).toBeUndefined();
  });

  it('answers DEADLINE_EXCEEDED for a sequence whose deadline passes in the queue, which never starts', async () => {
    const startsBefore = cluster.executor.starts().length;
    const running = cluster.generate(request());
    await expect.poll(() => cluster.executor.running()).toBe(1);
    const late = await cluster.generate(request(), 60);
    expect(late.error?.code).toBe(status.DEADLINE_EXCEEDED);
    await running;
    expect(cluster.executor.starts().length).toBe(startsBefore + 1);
  });

  it('refuses a sequence larger than any executor\'s KV cache, naming max_new_tokens', async () => {
    const { error } = await cluster.generate({ ...request(), maxNewTokens: 35 });
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/max_new_tokens: the sequence needs 45 tokens of KV cache.*executor's 40/);
  });

  it('fails a sequence whose executor is lost UNAVAILABLE, frees its reservation, and runs the next after the reconnect', async () => {
    const running = cluster.generate(request());
    await expect.poll(() => cluster.executor.running()).toBe(1);
    cluster.executor.dropStreams();
    const lost = await running;
    expect(lost.error?.code).toBe(status.UNAVAILABLE);
    const next = await cluster.generate(request());
    expect(next.error).toBeUndefined();
    expect(next.responses.at(-1)!.generatedTokens).toBe(20);
  });

  it('cancels a sequence its executor stops answering after the batch timeout, UNAVAILABLE, and frees its reservation', async () => {
    const hung = await cluster.generate({ ...request(), tokenIds: { ids: [200, 2, 3, 4, 5, 6, 7, 8, 9, 10] } });
    expect(hung.error?.code).toBe(status.UNAVAILABLE);
    expect(hung.error?.details).toMatch(/sent nothing for the sequence in 1000 ms/);
    const sequenceId = cluster.executor.starts().at(-1)!.sequenceId;
    expect(cluster.executor.cancels()).toContain(sequenceId);
    const next = await cluster.generate(request());
    expect(next.error).toBeUndefined();
  });
});

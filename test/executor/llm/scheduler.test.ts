/**
 * Continuous batching as pure decisions, without a GPU: token and sequence budgets, chunked
 * prefill, decodes first in priority order, preemption of the last sequences when the KV cache
 * runs out (and their recomputation from their tokens), deadlines, and blocks back in the pool
 * on finish and cancel. Each test drives the scheduler step by step, "executing" a plan by
 * answering every sampling sequence with a token.
 */
import { describe, expect, it } from 'vitest';
import { BlockPool } from '../../../services/executor/llm/block-pool.ts';
import { Scheduler, type SequenceSpec, type StepPlan } from '../../../services/executor/llm/scheduler.ts';

const BUDGETS = { maxStepTokens: 64, maxPrefillTokens: 32, maxSequences: 8 };

function spec(id: number, promptLength: number, maxNewTokens: number, overrides: Partial<SequenceSpec> = {}): SequenceSpec {
  return { id, prompt: Array.from({ length: promptLength }, (_, i) => (id * 7 + i) % 50), maxNewTokens, priority: 2, deadlineMs: 0, stopTokenIds: new Set(), ...overrides };
}

/** The token a sequence "samples" at a step: a function of its id and how many it has. */
const tokenFor = (id: number, generated: number) => (id * 13 + generated * 5) % 50;

function execute(scheduler: Scheduler, plan: StepPlan, maxSequenceTokens = 1000) {
  const tokens = new Map(plan.items.filter((item) => item.samples).map((item) => [item.sequenceId, tokenFor(item.sequenceId, item.generatedBefore)]));
  return scheduler.commit(plan, tokens, maxSequenceTokens);
}

/** Runs the scheduler until every sequence has finished; returns each one's tokens and the plans. */
function runToEnd(scheduler: Scheduler, pool: BlockPool, limit = 1000) {
  const generated = new Map<number, number[]>();
  const plans: StepPlan[] = [];
  for (let step = 0; step < limit && scheduler.size > 0; step++) {
    const plan = scheduler.schedule(0);
    expect(plan.items.length, 'a step with sequences waiting schedules something').toBeGreaterThan(0);
    plans.push(plan);
    for (const sampled of execute(scheduler, plan)) generated.set(sampled.sequenceId, [...(generated.get(sampled.sequenceId) ?? []), sampled.token]);
  }
  expect(scheduler.size).toBe(0);
  expect(pool.freeBlocks).toBe(pool.totalBlocks);
  return { generated, plans };
}

describe('the scheduler', () => {
  it('chunks a long prompt within the prefill budget and samples only after its last chunk', () => {
    const pool = new BlockPool(64);
    const scheduler = new Scheduler(pool, BUDGETS);
    scheduler.add(spec(1, 70, 3));
    const chunks = [0, 1, 2].map(() => {
      const plan = scheduler.schedule(0);
      execute(scheduler, plan);
      return plan.items.map((item) => [item.startPosition, item.tokens.length, item.samples]);
    });
    expect(chunks).toEqual([[[0, 32, false]], [[32, 32, false]], [[64, 6, true]]]);
    const decode = scheduler.schedule(0);
    expect(decode.items.map((item) => [item.startPosition, item.tokens, item.samples])).toEqual([[70, [tokenFor(1, 0)], true]]);
  });

  it('runs decodes of running sequences alongside a new prefill, within the token and sequence budgets', () => {
    const pool = new BlockPool(64);
    const scheduler = new Scheduler(pool, { maxStepTokens: 10, maxPrefillTokens: 8, maxSequences: 3 });
    scheduler.add(spec(1, 3, 5));
    scheduler.add(spec(2, 3, 5));
    execute(scheduler, scheduler.schedule(0));
    scheduler.add(spec(3, 20, 5));
    scheduler.add(spec(4, 2, 5));
    const plan = scheduler.schedule(0);
    // Two decodes, then the prefill budget left (8 tokens) goes to sequence 3; no room for a fourth sequence.
    expect(plan.items.map((item) => [item.sequenceId, item.tokens.length])).toEqual([[1, 1], [2, 1], [3, 8]]);
  });

  it('takes higher priorities first, and arrival order within a priority', () => {
    const pool = new BlockPool(64);
    const scheduler = new Scheduler(pool, { maxStepTokens: 4, maxPrefillTokens: 4, maxSequences: 8 });
    scheduler.add(spec(1, 4, 1, { priority: 3 }));
    scheduler.add(spec(2, 4, 1, { priority: 2 }));
    scheduler.add(spec(3, 4, 1, { priority: 1 }));
    scheduler.add(spec(4, 4, 1, { priority: 1 }));
    const order = [0, 1, 2, 3].map(() => {
      const plan = scheduler.schedule(0);
      execute(scheduler, plan);
      return plan.items.map((item) => item.sequenceId);
    });
    expect(order).toEqual([[3], [4], [2], [1]]);
  });

  it('preempts the last sequences when the cache runs out, recomputes them, and every sequence gives the tokens it gives alone', () => {
    const alone = new Map<number, number[]>();
    for (const id of [1, 2, 3, 4]) {
      const pool = new BlockPool(100);
      const scheduler = new Scheduler(pool, BUDGETS);
      scheduler.add(spec(id, 10 + id, 30));
      alone.set(id, runToEnd(scheduler, pool).generated.get(id)!);
    }
    // Each sequence needs up to 3 blocks of 16; four of them cannot run together in 6 blocks.
    const pool = new BlockPool(6);
    const scheduler = new Scheduler(pool, BUDGETS);
    for (const id of [1, 2, 3, 4]) scheduler.add(spec(id, 10 + id, 30));
    const { generated, plans } = runToEnd(scheduler, pool);
    expect(generated).toEqual(alone);
    const preempted = plans.flatMap((plan) => plan.preempted);
    expect(preempted.length).toBeGreaterThan(0);
    // The first sequence in order is never the one preempted.
    expect(preempted).not.toContain(1);
    // A recomputed sequence re-prefills its prompt and what it had generated, from position 0.
    const recompute = plans.flatMap((plan) => plan.items).find((item) => item.sequenceId === preempted[0] && item.startPosition === 0 && item.generatedBefore > 0);
    expect(recompute?.tokens.length).toBeGreaterThan(10);
  });

  it('a high-priority arrival takes the blocks of running low-priority sequences, not of its equals', () => {
    const pool = new BlockPool(4);
    const scheduler = new Scheduler(pool, { ...BUDGETS, maxPrefillTokens: 64 });
    scheduler.add(spec(1, 30, 20, { priority: 3 }));
    scheduler.add(spec(2, 30, 20, { priority: 3 }));
    execute(scheduler, scheduler.schedule(0));
    expect(pool.freeBlocks).toBe(0);
    scheduler.add(spec(3, 40, 5, { priority: 1 }));
    scheduler.add(spec(4, 40, 5, { priority: 3 }));
    const plan = scheduler.schedule(0);
    expect(plan.preempted).toEqual([2, 1]);
    expect(plan.items.map((item) => [item.sequenceId, item.tokens.length])).toEqual([[3, 40]]);
    // The free block left goes to sequence 1 (first of the preempted) in the next step, not to
    // sequence 4, which arrived later; neither takes blocks from sequence 3.
    execute(scheduler, plan);
    expect(scheduler.schedule(0).items.map((item) => [item.sequenceId, item.tokens.length])).toEqual([[3, 1], [1, 16]]);
  });

  it('ends a sequence at its stop token, at max_new_tokens, and at the longest sequence, freeing its blocks', () => {
    const pool = new BlockPool(16);
    const scheduler = new Scheduler(pool, BUDGETS);
    scheduler.add(spec(1, 4, 10, { stopTokenIds: new Set([tokenFor(1, 2)]) }));
    scheduler.add(spec(2, 4, 2));
    scheduler.add(spec(3, 4, 10));
    const finished = new Map<number, [string | undefined, number]>();
    for (let step = 0; step < 20 && scheduler.size > 0; step++) {
      for (const sampled of execute(scheduler, scheduler.schedule(0), 7)) {
        if (sampled.finish) finished.set(sampled.sequenceId, [sampled.finish, step]);
      }
    }
    expect(finished).toEqual(new Map([[2, ['length', 1]], [1, ['eos', 2]], [3, ['length', 2]]]));
    expect(pool.freeBlocks).toBe(16);
  });

  it('removes a cancelled sequence at once, blocks included, and skips its part of a step in flight', () => {
    const pool = new BlockPool(16);
    const scheduler = new Scheduler(pool, { ...BUDGETS, maxPrefillTokens: 64 });
    scheduler.add(spec(1, 40, 10));
    scheduler.add(spec(2, 4, 10));
    const plan = scheduler.schedule(0);
    expect(pool.freeBlocks).toBe(12);
    expect(scheduler.remove(1)).toBe(true);
    expect(pool.freeBlocks).toBe(15);
    expect(execute(scheduler, plan).map((sampled) => sampled.sequenceId)).toEqual([2]);
    expect(scheduler.remove(1)).toBe(false);
  });

  it('expires sequences past their deadline, running or waiting', () => {
    const pool = new BlockPool(16);
    const scheduler = new Scheduler(pool, BUDGETS);
    scheduler.add(spec(1, 4, 10, { deadlineMs: 100 }));
    scheduler.add(spec(2, 4, 10));
    scheduler.add(spec(3, 4, 10, { deadlineMs: 50 }));
    execute(scheduler, scheduler.schedule(10));
    const plan = scheduler.schedule(100);
    expect([...plan.expired].sort()).toEqual([1, 3]);
    expect(plan.items.map((item) => item.sequenceId)).toEqual([2]);
    expect(pool.freeBlocks).toBe(15);
  });
});

describe('the block pool', () => {
  it('hands blocks out all or nothing and refuses a double release', () => {
    const pool = new BlockPool(3);
    const first = pool.allocate(2)!;
    expect(pool.allocate(2)).toBeUndefined();
    expect(pool.freeBlocks).toBe(1);
    pool.release(first);
    expect(pool.freeBlocks).toBe(3);
    expect(() => pool.release(first)).toThrow(/not in use/);
    expect(pool.blocksFor(33)).toBe(3);
  });
});

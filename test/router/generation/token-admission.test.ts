/** Admission by KV capacity as pure state: order, head-of-line waiting, the bound, placement on the freest executor. */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import { executorFor, TokenAdmissionQueue } from '../../../services/router/generation/token-admission.ts';

const executors = () => [
  { executor: 'a', capacityTokens: 1000, reservedTokens: 600 },
  { executor: 'b', capacityTokens: 1000, reservedTokens: 200 },
];

describe('TokenAdmissionQueue', () => {
  it('places on the executor with the most free tokens and reserves there', () => {
    const queue = new TokenAdmissionQueue(10);
    queue.enqueue({ id: 1, tokens: 300, priority: 2 });
    const capacity = executors();
    expect(queue.place(capacity)).toEqual([{ id: 1, executor: 'b', tokens: 300 }]);
    expect(capacity[1].reservedTokens).toBe(500);
    expect(executorFor(600, capacity)).toBeUndefined();
  });

  it('takes higher priorities first and keeps arrival order within one', () => {
    const queue = new TokenAdmissionQueue(10);
    queue.enqueue({ id: 1, tokens: 10, priority: 3 });
    queue.enqueue({ id: 2, tokens: 10, priority: 2 });
    queue.enqueue({ id: 3, tokens: 10, priority: 1 });
    queue.enqueue({ id: 4, tokens: 10, priority: 2 });
    expect(queue.place(executors()).map((placement) => placement.id)).toEqual([3, 2, 4, 1]);
  });

  it('lets nothing pass a head that fits nowhere yet, so a long sequence is not starved', () => {
    const queue = new TokenAdmissionQueue(10);
    queue.enqueue({ id: 1, tokens: 900, priority: 2 });
    queue.enqueue({ id: 2, tokens: 10, priority: 2 });
    expect(queue.place(executors())).toEqual([]);
    expect(queue.positionOf(2)).toBe(1);
    expect(queue.place([{ executor: 'a', capacityTokens: 1000, reservedTokens: 0 }]).map((placement) => placement.id)).toEqual([1, 2]);
  });

  it('refuses RESOURCE_EXHAUSTED past its bound, and forgets a demand taken out', () => {
    const queue = new TokenAdmissionQueue(1);
    queue.enqueue({ id: 1, tokens: 5000, priority: 2 });
    expect(() => queue.enqueue({ id: 2, tokens: 1, priority: 2 })).toThrow(expect.objectContaining({ code: ErrorCode.RESOURCE_EXHAUSTED }));
    expect(queue.remove(1)).toBe(true);
    expect(queue.remove(1)).toBe(false);
    expect(queue.size).toBe(0);
  });
});

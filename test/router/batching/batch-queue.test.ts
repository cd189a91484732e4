import { describe, expect, it } from 'vitest';
import { BatchQueue, type BatchingPolicy, type QueuedRequest } from '../../../services/router/batching/batch-queue.ts';

const policy = (overrides: Partial<BatchingPolicy> = {}): BatchingPolicy =>
  ({ maxBatchSize: 8, maxQueueDelayMs: 10, maxQueueSize: 100, ...overrides });

let nextId = 1;
const request = (overrides: Partial<QueuedRequest> = {}): QueuedRequest =>
  ({ id: nextId++, rows: 1, shapeKey: 'x:4', enqueuedAtMs: 0, deadlineMs: undefined, ...overrides });

describe('BatchQueue', () => {
  it('is idle when empty', () => {
    expect(new BatchQueue(policy()).nextBatch(0)).toEqual({ kind: 'idle' });
  });

  it('waits for the max queue delay of the oldest request, then sends what is queued', () => {
    const queue = new BatchQueue(policy());
    queue.enqueue(request({ enqueuedAtMs: 100 }));
    queue.enqueue(request({ enqueuedAtMs: 105 }));
    expect(queue.nextBatch(104)).toEqual({ kind: 'wait', untilMs: 110 });
    expect(queue.depth).toBe(2); // declining changes nothing
    const decision = queue.nextBatch(110);
    expect(decision.kind).toBe('send');
    expect(decision.kind === 'send' && decision.requests).toHaveLength(2);
    expect(queue.depth).toBe(0);
  });

  it('sends at once when the batch is full (test_next_batch_max_size)', () => {
    const queue = new BatchQueue(policy({ maxBatchSize: 4 }));
    for (let index = 0; index < 6; index++) queue.enqueue(request({ enqueuedAtMs: 0 }));
    const decision = queue.nextBatch(1);
    expect(decision.kind === 'send' && decision.requests.length).toBe(4);
    expect(queue.depth).toBe(2);
  });

  it('counts rows, not requests, against the max batch size', () => {
    const queue = new BatchQueue(policy({ maxBatchSize: 8 }));
    queue.enqueue(request({ rows: 5 }));
    queue.enqueue(request({ rows: 4 }));
    const decision = queue.nextBatch(1);
    // 5 + 4 > 8: the walk stops at the second request and the first goes alone, now.
    expect(decision.kind === 'send' && decision.requests.map((r) => r.rows)).toEqual([5]);
  });

  it('cuts the batch at the first request whose shape differs', () => {
    const queue = new BatchQueue(policy());
    queue.enqueue(request({ shapeKey: 'a' }));
    queue.enqueue(request({ shapeKey: 'a' }));
    queue.enqueue(request({ shapeKey: 'b' }));
    queue.enqueue(request({ shapeKey: 'a' }));
    const first = queue.nextBatch(0);
    expect(first.kind === 'send' && first.requests.map((r) => r.shapeKey)).toEqual(['a', 'a']);
    const second = queue.nextBatch(0);
    expect(second.kind === 'send' && second.requests.map((r) => r.shapeKey)).toEqual(['b']);
  });

  it('with zero delay sends whatever is queued immediately', () => {
    const queue = new BatchQueue(policy({ maxQueueDelayMs: 0 }));
    queue.enqueue(request({ enqueuedAtMs: 50 }));
    expect(queue.nextBatch(50).kind).toBe('send');
  });

  it('refuses requests beyond the bound and keeps what it has', () => {
    const queue = new BatchQueue(policy({ maxQueueSize: 2 }));
    expect(queue.enqueue(request())).toBe(true);
    expect(queue.enqueue(request())).toBe(true);
    expect(queue.enqueue(request())).toBe(false);
    expect(queue.depth).toBe(2);
  });

  it('wakes for the nearest deadline and hands back expired requests', () => {
    const queue = new BatchQueue(policy({ maxQueueDelayMs: 100 }));
    const soon = request({ enqueuedAtMs: 0, deadlineMs: 30 });
    queue.enqueue(request({ enqueuedAtMs: 0 }));
    queue.enqueue(soon);
    expect(queue.nextBatch(0)).toEqual({ kind: 'wait', untilMs: 30 });
    expect(queue.takeExpired(29)).toEqual([]);
    expect(queue.takeExpired(30)).toEqual([soon]);
    expect(queue.depth).toBe(1);
  });

  it('removes a cancelled request', () => {
    const queue = new BatchQueue(policy());
    const cancelled = request();
    queue.enqueue(cancelled);
    expect(queue.remove(cancelled.id)).toBe(true);
    expect(queue.remove(cancelled.id)).toBe(false);
    expect(queue.nextBatch(1000)).toEqual({ kind: 'idle' });
  });

  it('takes every request of a higher priority first, FIFO within a level', () => {
    const queue = new BatchQueue(policy({ maxBatchSize: 3 }));
    const low = request({ priority: 3 });
    const normal1 = request({ priority: 2 });
    const high = request({ priority: 1 });
    const normal2 = request({ priority: 2 });
    for (const item of [low, normal1, high, normal2]) queue.enqueue(item);
    const first = queue.nextBatch(0);
    expect(first.kind === 'send' && first.requests).toEqual([high, normal1, normal2]);
    const second = queue.nextBatch(100);
    expect(second.kind === 'send' && second.requests).toEqual([low]);
  });

  it('bounds the wait by the longest-waiting request, whatever its priority', () => {
    const queue = new BatchQueue(policy({ maxQueueDelayMs: 10 }));
    queue.enqueue(request({ priority: 3, enqueuedAtMs: 0 }));
    queue.enqueue(request({ priority: 1, enqueuedAtMs: 8 }));
    expect(queue.nextBatch(9)).toEqual({ kind: 'wait', untilMs: 10 });
    expect(queue.nextBatch(10).kind).toBe('send');
  });

  it('sends a preferred batch size at once, before the delay runs out', () => {
    const queue = new BatchQueue(policy({ maxBatchSize: 16, maxQueueDelayMs: 100, preferredBatchSizes: [4] }));
    for (let index = 0; index < 5; index++) queue.enqueue(request({ enqueuedAtMs: 0 }));
    const decision = queue.nextBatch(1);
    expect(decision.kind === 'send' && decision.requests.length).toBe(4);
    // The one left waits for company again.
    expect(queue.nextBatch(2)).toEqual({ kind: 'wait', untilMs: 100 });
  });

  it('reports a request\'s position in the queue', () => {
    const queue = new BatchQueue(policy());
    const first = request();
    const second = request();
    queue.enqueue(first);
    queue.enqueue(second);
    expect(queue.positionOf(second.id)).toBe(1);
    expect(queue.positionOf(-5)).toBe(-1);
  });
});

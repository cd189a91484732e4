/**
 * The queue of one model version, as a pure state object: it decides the next batch from what is
 * queued and the current time, and changes nothing when it declines. No timers, no I/O; the
 * batcher loop around it owns those.
 *
 * Batches are cut by Triton's dynamic-batcher rules: requests are taken in arrival order while the
 * rows fit in `maxBatchSize`; the walk stops at the first request whose non-batch shape differs
 * from the first one; a full batch or a forced stop goes at once; otherwise the batch waits until
 * the oldest request has been queued for `maxQueueDelayMs`.
 *
 * Priorities follow Triton's: level 1 is the highest; every queued request of a level is taken
 * before any of the next level; within a level, arrival order.
 */
import type { BatchingPolicy } from '../../domain/batching-policy.ts';
import { DEFAULT_PRIORITY } from '../admission/index.ts';

export type { BatchingPolicy } from '../../domain/batching-policy.ts';

/** What the queue needs to know of a request. */
export interface QueuedRequest {
  readonly id: number;
  /** Rows along dimension 0. */
  readonly rows: number;
  /** Requests can share a batch only when their keys (the non-batch dimensions) are equal. */
  readonly shapeKey: string;
  /** When it was queued, in milliseconds on the loop's clock. */
  readonly enqueuedAtMs: number;
  /** When it must be answered by; undefined for no deadline. */
  readonly deadlineMs: number | undefined;
  /** 1 is the highest; default DEFAULT_PRIORITY. */
  readonly priority?: number;
}

const priorityOf = (request: QueuedRequest) => request.priority ?? DEFAULT_PRIORITY;

export type BatchDecision<T> =
  | { kind: 'send'; requests: T[] }
  | { kind: 'wait'; untilMs: number }
  | { kind: 'idle' };

export class BatchQueue<T extends QueuedRequest> {
  readonly policy: BatchingPolicy;
  private queue: T[] = [];

  constructor(policy: BatchingPolicy) {
    if (policy.maxBatchSize < 1) throw new RangeError(`maxBatchSize must be at least 1, got ${policy.maxBatchSize}`);
    this.policy = policy;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Queues a request behind those of its priority and above; false (nothing queued) when full. */
  enqueue(request: T): boolean {
    if (this.queue.length >= this.policy.maxQueueSize) return false;
    const priority = priorityOf(request);
    let index = this.queue.length;
    while (index > 0 && priorityOf(this.queue[index - 1]) > priority) index -= 1;
    if (index === this.queue.length) this.queue.push(request);
    else this.queue.splice(index, 0, request);
    return true;
  }

  /**
   * Puts requests back at the head of their priority level, in their original order (a batch
   * whose executor died goes first next time). Ignores the size bound: they were accepted.
   */
  requeueFront(requests: T[]): void {
    for (const request of [...requests].reverse()) {
      const priority = priorityOf(request);
      let index = 0;
      while (index < this.queue.length && priorityOf(this.queue[index]) < priority) index += 1;
      this.queue.splice(index, 0, request);
    }
  }

  /** Removes a request still waiting (e.g. its client went away); false if it was not queued. */
  remove(id: number): boolean {
    const index = this.queue.findIndex((request) => request.id === id);
    if (index < 0) return false;
    this.queue.splice(index, 1);
    return true;
  }

  /** Removes and returns every request whose deadline has passed; they must not run. */
  takeExpired(nowMs: number): T[] {
    // Called on every pump: the usual answer (nothing expired) allocates nothing but the result.
    const expired: T[] = [];
    if (this.nearestDeadlineMs() > nowMs) return expired;
    const kept: T[] = [];
    for (const request of this.queue) {
      if (request.deadlineMs !== undefined && request.deadlineMs <= nowMs) expired.push(request);
      else kept.push(request);
    }
    this.queue = kept;
    return expired;
  }

  /** When the longest-waiting request (of any priority) was queued: it bounds everyone's delay. */
  private oldestEnqueuedAtMs(): number {
    let oldest = Infinity;
    for (const request of this.queue) if (request.enqueuedAtMs < oldest) oldest = request.enqueuedAtMs;
    return oldest;
  }

  /** Requests ahead of a queued one (for the task API's queue position); -1 if not queued. */
  positionOf(id: number): number {
    return this.queue.findIndex((request) => request.id === id);
  }

  /** The earliest deadline of any queued request, or Infinity. */
  nearestDeadlineMs(): number {
    let nearest = Infinity;
    for (const request of this.queue) if (request.deadlineMs !== undefined && request.deadlineMs < nearest) nearest = request.deadlineMs;
    return nearest;
  }

  /** Removes and returns everything queued (for shutdown). */
  drain(): T[] {
    const all = this.queue;
    this.queue = [];
    return all;
  }

  /** The next batch to send now (removed from the queue), or when to look again, or idle. */
  nextBatch(nowMs: number): BatchDecision<T> {
    const head = this.queue[0];
    if (!head) return { kind: 'idle' };

    let rows = 0;
    let count = 0;
    let forced = false;
    // The largest preferred size reached on the way, as a count of requests (Triton's "mark").
    let preferredCount = 0;
    const preferred = this.policy.preferredBatchSizes ?? [];
    for (const request of this.queue) {
      if (request.shapeKey !== head.shapeKey || rows + request.rows > this.policy.maxBatchSize) {
        forced = true;
        break;
      }
      rows += request.rows;
      count += 1;
      if (preferred.includes(rows)) preferredCount = count;
    }
    const full = rows >= this.policy.maxBatchSize;
    const dueAtMs = this.oldestEnqueuedAtMs() + this.policy.maxQueueDelayMs;
    if (full || forced || nowMs >= dueAtMs) return { kind: 'send', requests: this.queue.splice(0, count) };
    // Before the delay runs out, a batch of a preferred size goes at once.
    if (preferredCount > 0) return { kind: 'send', requests: this.queue.splice(0, preferredCount) };
    return { kind: 'wait', untilMs: Math.min(dueAtMs, this.nearestDeadlineMs()) };
  }
}

/**
 * The queue of one model version, as a pure state object: it decides the next batch from what is
 * queued and the current time, and changes nothing when it declines. No timers, no I/O; the
 * batcher loop around it owns those.
 *
 * Batches are cut by Triton's dynamic-batcher rules: requests are taken in arrival order while the
 * rows fit in `maxBatchSize`; the walk stops at the first request whose non-batch shape differs
 * from the oldest one; a full batch or a forced stop goes at once; otherwise the batch waits until
 * the oldest request has been queued for `maxQueueDelayMs`.
 */

/** How a model version's requests are batched. */
export interface BatchingPolicy {
  /** Most rows (summed over requests, along dimension 0) in one batch. Default 32. */
  maxBatchSize: number;
  /** Longest the oldest request waits for company, in milliseconds. Default 2. 0 = never wait. */
  maxQueueDelayMs: number;
  /** Most requests queued at once; more are refused. Default 1024. */
  maxQueueSize: number;
}

export const DEFAULT_BATCHING_POLICY: BatchingPolicy = { maxBatchSize: 32, maxQueueDelayMs: 2, maxQueueSize: 1024 };

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
}

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

  /** Queues a request; false (and nothing queued) when the queue is full. */
  enqueue(request: T): boolean {
    if (this.queue.length >= this.policy.maxQueueSize) return false;
    this.queue.push(request);
    return true;
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
    const expired = this.queue.filter((request) => request.deadlineMs !== undefined && request.deadlineMs <= nowMs);
    if (expired.length > 0) this.queue = this.queue.filter((request) => !expired.includes(request));
    return expired;
  }

  /** The earliest deadline of any queued request, or Infinity. */
  nearestDeadlineMs(): number {
    return Math.min(...this.queue.map((request) => request.deadlineMs ?? Infinity));
  }

  /** Removes and returns everything queued (for shutdown). */
  drain(): T[] {
    const all = this.queue;
    this.queue = [];
    return all;
  }

  /** The next batch to send now (removed from the queue), or when to look again, or idle. */
  nextBatch(nowMs: number): BatchDecision<T> {
    const oldest = this.queue[0];
    if (!oldest) return { kind: 'idle' };

    let rows = 0;
    let count = 0;
    let forced = false;
    for (const request of this.queue) {
      if (request.shapeKey !== oldest.shapeKey || rows + request.rows > this.policy.maxBatchSize) {
        forced = true;
        break;
      }
      rows += request.rows;
      count += 1;
    }
    const full = rows >= this.policy.maxBatchSize;
    const dueAtMs = oldest.enqueuedAtMs + this.policy.maxQueueDelayMs;
    const due = full || forced || nowMs >= dueAtMs;
    if (!due) {
      return { kind: 'wait', untilMs: Math.min(dueAtMs, this.nearestDeadlineMs()) };
    }
    return { kind: 'send', requests: this.queue.splice(0, count) };
  }
}

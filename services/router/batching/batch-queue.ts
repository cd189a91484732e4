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
  /** Bytes of its inputs. Default 0. */
  readonly inputBytes?: number;
  /** Bytes of its outputs (0 when not known before it runs). Default 0. */
  readonly outputBytes?: number;
}

/** Byte bounds of a queue, beside its policy's counts. */
export interface QueueByteLimits {
  /** Input bytes queued at once; `enqueue` refuses past it. Default unbounded. */
  maxQueueBytes?: number;
  /** Input bytes, and known output bytes, of one batch; batches are cut before either passes it. Default unbounded. */
  maxBatchBytes?: number;
  /**
   * Known output bytes of one batch instead, when set: results past the message limit come back
   * in chunks, so outputs may be larger than inputs. Default maxBatchBytes.
   */
  maxResultBytes?: number;
}

const priorityOf = (request: QueuedRequest) => request.priority ?? DEFAULT_PRIORITY;

export type BatchDecision<T> =
  | { kind: 'send'; requests: T[] }
  | { kind: 'wait'; untilMs: number }
  | { kind: 'idle' };

export class BatchQueue<T extends QueuedRequest> {
  readonly policy: BatchingPolicy;
  readonly maxQueueBytes: number;
  readonly maxBatchBytes: number;
  readonly maxResultBytes: number;
  private queue: T[] = [];
  private queuedBytes = 0;

  constructor(policy: BatchingPolicy, limits: QueueByteLimits = {}) {
    if (policy.maxBatchSize < 1) throw new RangeError(`maxBatchSize must be at least 1, got ${policy.maxBatchSize}`);
    this.policy = policy;
    this.maxQueueBytes = limits.maxQueueBytes ?? Infinity;
    this.maxBatchBytes = limits.maxBatchBytes ?? Infinity;
    this.maxResultBytes = limits.maxResultBytes ?? this.maxBatchBytes;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Input bytes of everything queued. */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Why `request` cannot be queued now ('count' or 'bytes'), or undefined when it can. */
  refusal(request: T): 'count' | 'bytes' | undefined {
    if (this.queue.length >= this.policy.maxQueueSize) return 'count';
    // An empty queue takes any one request: the request's own size was checked at admission.
    if (this.queue.length > 0 && this.queuedBytes + (request.inputBytes ?? 0) > this.maxQueueBytes) return 'bytes';
    return undefined;
  }

  private set(queue: T[]): void {
    this.queue = queue;
    this.queuedBytes = queue.reduce((sum, request) => sum + (request.inputBytes ?? 0), 0);
  }

  private taken(requests: readonly T[]): T[] {
    for (const request of requests) this.queuedBytes -= request.inputBytes ?? 0;
    return requests as T[];
  }

  /** Queues a request behind those of its priority and above; false (nothing queued) when full by count or bytes. */
  enqueue(request: T): boolean {
    if (this.refusal(request)) return false;
    this.queuedBytes += request.inputBytes ?? 0;
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
      this.queuedBytes += request.inputBytes ?? 0;
    }
  }

  /** Removes a request still waiting (e.g. its client went away); false if it was not queued. */
  remove(id: number): boolean {
    const index = this.queue.findIndex((request) => request.id === id);
    if (index < 0) return false;
    this.taken(this.queue.splice(index, 1));
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
    this.set(kept);
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
    this.set([]);
    return all;
  }

  /** The next batch to send now (removed from the queue), or when to look again, or idle. */
  nextBatch(nowMs: number): BatchDecision<T> {
    const head = this.queue[0];
    if (!head) return { kind: 'idle' };

    let rows = 0;
    let count = 0;
    let inputBytes = 0;
    let outputBytes = 0;
    let forced = false;
    // The largest preferred size reached on the way, as a count of requests (Triton's "mark").
    let preferredCount = 0;
    const preferred = this.policy.preferredBatchSizes ?? [];
    for (const request of this.queue) {
      const tooBig = count > 0 && (inputBytes + (request.inputBytes ?? 0) > this.maxBatchBytes
        || outputBytes + (request.outputBytes ?? 0) > this.maxResultBytes);
      if (request.shapeKey !== head.shapeKey || rows + request.rows > this.policy.maxBatchSize || tooBig) {
        forced = true;
        break;
      }
      rows += request.rows;
      inputBytes += request.inputBytes ?? 0;
      outputBytes += request.outputBytes ?? 0;
      count += 1;
      if (preferred.includes(rows)) preferredCount = count;
    }
    const full = rows >= this.policy.maxBatchSize;
    const dueAtMs = this.oldestEnqueuedAtMs() + this.policy.maxQueueDelayMs;
    if (full || forced || nowMs >= dueAtMs) return { kind: 'send', requests: this.taken(this.queue.splice(0, count)) };
    // Before the delay runs out, a batch of a preferred size goes at once.
    if (preferredCount > 0) return { kind: 'send', requests: this.taken(this.queue.splice(0, preferredCount)) };
    return { kind: 'wait', untilMs: Math.min(dueAtMs, this.nearestDeadlineMs()) };
  }
}

/**
 * Where sequences run: one queue per model version (token-admission.ts decides), the tokens each
 * executor has reserved for the version's running sequences, and the waits around them. A
 * sequence waits until some executor that loaded the version for text generation has its prompt
 * plus max_new_tokens free in its KV cache; it leaves the queue DEADLINE_EXCEEDED at its deadline
 * and CANCELLED when its caller cancels. Its reservation is released when its final event arrives.
 */
import type { LoadedModel, SequenceEvent, StartSequence } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, NexusError, type ModelKey } from '../../domain/index.ts';
import type { CancelSignal } from '../batching/index.ts';
import { TokenAdmissionQueue, type ExecutorTokens } from './token-admission.ts';

/** The task an executor reports for a causal language model. */
export const TEXT_GENERATION_TASK = 'text-generation';

/** A sequence started on an executor; `cancel` asks it to end the sequence and free its KV blocks (fleet's ExecutorLink hands these out). */
export interface SequenceHandle {
  readonly sequenceId: number;
  cancel(): void;
}

/** What the scheduler needs of one executor (ExecutorLink is one). */
export interface SequenceExecutor {
  readonly address: string;
  readonly ready: boolean;
  loadedModel(key: ModelKey): LoadedModel | undefined;
  startSequence(start: Omit<StartSequence, 'sequenceId'>, onEvent: (event: SequenceEvent) => void): SequenceHandle;
}

/** Tokens reserved on one executor; `release` (idempotent) frees them when the sequence ended. */
export interface Reservation {
  executor: SequenceExecutor;
  release(): void;
}

export interface SequenceWait {
  tokens: number;
  priority: number;
  /** Unix milliseconds; undefined: none. */
  deadlineMs: number | undefined;
  signal?: CancelSignal;
  /** Sequences that may wait for the version (its max_queue_size). */
  maxQueued: number;
}

/** The largest sequence a version takes and the largest KV cache it has, over the executors that run it. */
export interface SequenceLimits {
  maxSequenceTokens: number;
  maxCapacityTokens: number;
}

interface Waiter {
  resolve(reservation: Reservation): void;
  cleanup(): void;
}

interface VersionQueue {
  queue: TokenAdmissionQueue;
  waiters: Map<number, Waiter>;
}

export interface SequenceSchedulerOptions {
  /** Every executor the router dials. */
  executors: () => readonly SequenceExecutor[];
  /**
   * Told when a sequence waits for a served version no executor holds now (one reconnecting, or
   * one that evicted it), so it is loaded again; the pool's hasCapacity does that. Default: nothing.
   */
  wantLoaded?: (key: ModelKey) => void;
  /** Longest wait for an executor to hold a version, without a deadline, in ms. Default 30 000. */
  holdWaitMs?: number;
}

interface HoldWaiter {
  key: ModelKey;
  resolve(limits: SequenceLimits): void;
}

export class SequenceScheduler {
  private readonly options: SequenceSchedulerOptions;
  private readonly queues = new Map<ModelKey, VersionQueue>();
  /** Tokens reserved by running sequences, by executor address and version. */
  private readonly reserved = new Map<string, number>();
  /** Sequences waiting for some executor to hold their version at all. */
  private readonly holdWaiters = new Set<HoldWaiter>();
  private nextId = 1;

  constructor(options: SequenceSchedulerOptions) {
    this.options = options;
  }

  /** The executors that hold `key` for text generation now, with their KV capacity and reservations. */
  private capacityOf(key: ModelKey): ExecutorTokens[] {
    const capacities: ExecutorTokens[] = [];
    for (const executor of this.options.executors()) {
      const model = executor.ready ? executor.loadedModel(key) : undefined;
      if (model?.task !== TEXT_GENERATION_TASK) continue;
      capacities.push({ executor: executor.address, capacityTokens: model.kvCapacityTokens, reservedTokens: this.reserved.get(`${executor.address}|${key}`) ?? 0 });
    }
    return capacities;
  }

  /** What the executors running `key` take; undefined when none holds it for text generation. */
  limitsOf(key: ModelKey): SequenceLimits | undefined {
    let limits: SequenceLimits | undefined;
    for (const executor of this.options.executors()) {
      const model = executor.ready ? executor.loadedModel(key) : undefined;
      if (model?.task !== TEXT_GENERATION_TASK) continue;
      limits = {
        maxSequenceTokens: Math.max(limits?.maxSequenceTokens ?? 0, model.maxSequenceTokens),
        maxCapacityTokens: Math.max(limits?.maxCapacityTokens ?? 0, model.kvCapacityTokens),
      };
    }
    return limits;
  }

  /**
   * The version's limits once some executor holds it for text generation: at once, or after a
   * reconnect or reload. FAILED_PRECONDITION when the executors that hold it loaded it as a
   * tensor model; DEADLINE_EXCEEDED at the deadline; UNAVAILABLE when none holds it for long.
   */
  async whenHeld(key: ModelKey, deadlineMs: number | undefined, signal?: CancelSignal): Promise<SequenceLimits> {
    const now = this.limitsOf(key);
    if (now) return now;
    const tensor = this.options.executors().find((executor) => executor.ready && executor.loadedModel(key) !== undefined);
    if (tensor) {
      throw new NexusError(ErrorCode.FAILED_PRECONDITION,
        `executor ${tensor.address} loaded ${key} as a tensor model (task '${tensor.loadedModel(key)!.task}'), not for text generation; check that the executors support its architecture`);
    }
    this.options.wantLoaded?.(key);
    const waitMs = deadlineMs === undefined ? this.options.holdWaitMs ?? 30_000 : Math.max(0, deadlineMs - Date.now());
    return new Promise<SequenceLimits>((resolve, reject) => {
      const onAbort = () => settle(new NexusError(ErrorCode.CANCELLED, 'the client cancelled the call'));
      const timer = setTimeout(() => settle(deadlineMs === undefined
        ? new NexusError(ErrorCode.UNAVAILABLE, `no executor holds ${key} (waited ${waitMs} ms for one to connect or load it)`)
        : new NexusError(ErrorCode.DEADLINE_EXCEEDED, `the deadline passed while waiting for an executor to hold ${key}`)), waitMs);
      timer.unref();
      const waiter: HoldWaiter = { key, resolve: (limits) => settle(undefined, limits) };
      const settle = (error: NexusError | undefined, limits?: SequenceLimits) => {
        if (!this.holdWaiters.delete(waiter)) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(limits!);
      };
      this.holdWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort);
    });
  }

  /** Sequences waiting for `key`. */
  waiting(key: ModelKey): number {
    return this.queues.get(key)?.queue.size ?? 0;
  }

  /**
   * Waits until an executor holding `key` has `wait.tokens` free and reserves them there.
   * RESOURCE_EXHAUSTED when the version's queue is full, DEADLINE_EXCEEDED at the deadline,
   * CANCELLED when the signal fires.
   */
  acquire(key: ModelKey, wait: SequenceWait): Promise<Reservation> {
    if (wait.signal?.aborted) return Promise.reject(new NexusError(ErrorCode.CANCELLED, 'the client cancelled the call'));
    let entry = this.queues.get(key);
    if (!entry) {
      entry = { queue: new TokenAdmissionQueue(wait.maxQueued), waiters: new Map() };
      this.queues.set(key, entry);
    }
    const id = this.nextId++;
    entry.queue.enqueue({ id, tokens: wait.tokens, priority: wait.priority });
    const queued = entry;
    const promise = new Promise<Reservation>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => leave(new NexusError(ErrorCode.CANCELLED, 'the client cancelled the call'));
      const cleanup = () => {
        clearTimeout(timer);
        wait.signal?.removeEventListener('abort', onAbort);
        queued.waiters.delete(id);
      };
      const leave = (error: NexusError) => {
        if (!queued.queue.remove(id)) return;
        cleanup();
        reject(error);
        // The head may have been the one blocking the rest.
        this.pump(key);
      };
      queued.waiters.set(id, { resolve, cleanup });
      if (wait.deadlineMs !== undefined) {
        timer = setTimeout(() => leave(new NexusError(ErrorCode.DEADLINE_EXCEEDED,
          'the deadline passed while the sequence waited for KV capacity on an executor')), Math.max(0, wait.deadlineMs - Date.now()));
        timer.unref();
      }
      wait.signal?.addEventListener('abort', onAbort);
    });
    this.pump(key);
    return promise;
  }

  /** Starts what fits now: for one version, or for every version with sequences waiting. */
  pump(key?: ModelKey): void {
    for (const waiter of [...this.holdWaiters]) {
      const limits = this.limitsOf(waiter.key);
      if (limits) waiter.resolve(limits);
      else this.options.wantLoaded?.(waiter.key);
    }
    const keys = key ? [key] : [...this.queues.keys()];
    for (const queuedKey of keys) {
      const entry = this.queues.get(queuedKey);
      if (!entry || entry.queue.size === 0) continue;
      const executors = this.options.executors();
      for (const placement of entry.queue.place(this.capacityOf(queuedKey))) {
        const waiter = entry.waiters.get(placement.id)!;
        waiter.cleanup();
        const slot = `${placement.executor}|${queuedKey}`;
        this.reserved.set(slot, (this.reserved.get(slot) ?? 0) + placement.tokens);
        const executor = executors.find((candidate) => candidate.address === placement.executor)!;
        waiter.resolve(this.reservationOf(executor, queuedKey, placement.tokens));
      }
      if (entry.queue.size === 0) this.queues.delete(queuedKey);
    }
  }

  private reservationOf(executor: SequenceExecutor, key: ModelKey, tokens: number): Reservation {
    let released = false;
    return {
      executor,
      release: () => {
        if (released) return;
        released = true;
        const slot = `${executor.address}|${key}`;
        const left = (this.reserved.get(slot) ?? tokens) - tokens;
        if (left > 0) this.reserved.set(slot, left);
        else this.reserved.delete(slot);
        this.pump(key);
      },
    };
  }
}

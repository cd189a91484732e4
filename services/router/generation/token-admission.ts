/**
 * Admission of sequences by the executors' KV capacity, as pure state. Each sequence reserves
 * its prompt plus max_new_tokens on one executor for as long as it runs, so what runs on an
 * executor always fits its paged KV cache (kv_capacity_tokens) and the executor never has to
 * preempt. A sequence that fits nowhere now waits, by priority then arrival; the queue is bounded.
 *
 * Placement is first come, first served within the order: when the sequence at the head fits on
 * no executor, the ones behind it wait too, so a long sequence is not starved by short ones
 * slipping past it (vLLM's scheduler waits the same way).
 */
import { ErrorCode, NexusError } from '../../domain/index.ts';

export interface SequenceDemand {
  id: number;
  /** Prompt tokens plus max_new_tokens. */
  tokens: number;
  /** 1 (high) to 3 (low). */
  priority: number;
}

/** One executor's KV cache for the model, and what running sequences reserve of it. */
export interface ExecutorTokens {
  executor: string;
  capacityTokens: number;
  reservedTokens: number;
}

export interface Placement {
  id: number;
  executor: string;
  tokens: number;
}

/** The executor with the most free tokens that can take `tokens`, or undefined. Pure. */
export function executorFor(tokens: number, executors: readonly ExecutorTokens[]): ExecutorTokens | undefined {
  let best: ExecutorTokens | undefined;
  for (const candidate of executors) {
    const free = candidate.capacityTokens - candidate.reservedTokens;
    if (free < tokens) continue;
    if (!best || free > best.capacityTokens - best.reservedTokens) best = candidate;
  }
  return best;
}

export class TokenAdmissionQueue {
  private readonly waiting: SequenceDemand[] = [];
  private readonly maxQueued: number;

  constructor(maxQueued: number) {
    this.maxQueued = maxQueued;
  }

  get size(): number {
    return this.waiting.length;
  }

  /** Queues a demand behind those of its priority or higher; RESOURCE_EXHAUSTED when the queue is full. */
  enqueue(demand: SequenceDemand): void {
    if (this.waiting.length >= this.maxQueued) {
      throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
        `the generation queue is full (${this.maxQueued} sequences wait for KV capacity); retry later`);
    }
    let at = this.waiting.length;
    while (at > 0 && this.waiting[at - 1].priority > demand.priority) at -= 1;
    this.waiting.splice(at, 0, demand);
  }

  /** Takes a demand out (cancelled, or its deadline passed); false when it was not waiting. */
  remove(id: number): boolean {
    const at = this.waiting.findIndex((demand) => demand.id === id);
    if (at < 0) return false;
    this.waiting.splice(at, 1);
    return true;
  }

  /** The place of a waiting demand from 0, or -1. */
  positionOf(id: number): number {
    return this.waiting.findIndex((demand) => demand.id === id);
  }

  /**
   * Places waiting demands in order while the head fits, reserving their tokens in `executors`
   * (updated in place), and takes them out of the queue.
   */
  place(executors: ExecutorTokens[]): Placement[] {
    const placed: Placement[] = [];
    while (this.waiting.length > 0) {
      const head = this.waiting[0];
      const target = executorFor(head.tokens, executors);
      if (!target) break;
      target.reservedTokens += head.tokens;
      this.waiting.shift();
      placed.push({ id: head.id, executor: target.executor, tokens: head.tokens });
    }
    return placed;
  }
}

/**
 * The update step of the batcher loop (schedule → execute → update), as a pure decision: what a
 * finished batch means for each of its requests. The loop applies it; tests read it directly.
 */
import type { BatchResult } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import { splitOutputs, type RequestOutputs } from './batch-tensors.ts';

/** How many times a request whose executor was lost goes back to the queue before failing. */
export const MAX_REQUEUES = 3;

/** How a batch came back: answered by an executor, or failed (lost, refused, timed out). */
export type BatchOutcome =
  | { kind: 'answered'; result: BatchResult }
  | { kind: 'failed'; error: NexusError };

/** What the request of a batch needs to know about for the update. */
export interface BatchMember {
  readonly rows: number;
  /** Times it already went back to the queue. */
  readonly requeues: number;
}

/** Per request of the batch: its answer, its error, or back to the head of the queue. */
export interface BatchUpdate<T> {
  answered: Array<{ request: T; outputs: RequestOutputs }>;
  failed: Array<{ request: T; error: NexusError }>;
  /** In their original order; each one's `requeues` is to be counted up by the loop. */
  requeued: T[];
}

/**
 * Decides the fate of every request of a batch. A batch whose executor was lost before answering
 * (UNAVAILABLE) did not run, so its requests go back to the queue, each at most MAX_REQUEUES
 * times, unless `mayRequeue` is false (the batcher is closing). Any other failure fails them all;
 * outputs that cannot be split fail them all as INTERNAL.
 */
export function updateAfterBatch<T extends BatchMember>(requests: readonly T[], outcome: BatchOutcome, mayRequeue: boolean): BatchUpdate<T> {
  const update: BatchUpdate<T> = { answered: [], failed: [], requeued: [] };
  if (outcome.kind === 'answered') {
    const totalRows = requests.reduce((sum, request) => sum + request.rows, 0);
    try {
      const slices = splitOutputs(outcome.result.outputs, requests.map((request) => request.rows), totalRows);
      requests.forEach((request, index) => update.answered.push({ request, outputs: slices[index] }));
    } catch (error) {
      const coded = NexusError.from(error);
      for (const request of requests) update.failed.push({ request, error: coded });
    }
    return update;
  }
  const retryable = outcome.error.code === ErrorCode.UNAVAILABLE && mayRequeue;
  for (const request of requests) {
    if (retryable && request.requeues < MAX_REQUEUES) update.requeued.push(request);
    else update.failed.push({ request, error: outcome.error });
  }
  return update;
}

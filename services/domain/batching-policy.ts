/**
 * How a model version's requests are batched, and the policy of a model that sets none. Shared
 * so that the router's defaults and the CLI's help text (`nexus up`) are one value.
 */

/** How a model version's requests are batched. */
export interface BatchingPolicy {
  /** Most rows (summed over requests, along dimension 0) in one batch. Default 32. */
  maxBatchSize: number;
  /** Longest the oldest request waits for company, in milliseconds. Default 2. 0 = never wait. */
  maxQueueDelayMs: number;
  /** Most requests queued at once; more are refused. Default 1024. */
  maxQueueSize: number;
  /**
   * Batch sizes (in rows) worth sending before the delay runs out, e.g. [8, 16] for a model that
   * is fastest there. Default [] (only max_batch_size counts as full).
   */
  preferredBatchSizes?: number[];
  /**
   * Triton's semantics: the oldest request waits up to maxQueueDelayMs for company even when no
   * batch of its model is running. Default false: a request that finds nothing of its model in
   * flight is sent at once, since the delay only buys a batch when there is something to batch
   * with; requests that arrive while a batch runs still wait and go together.
   */
  waitWhenIdle?: boolean;
}

/** The policy of a model whose config and version record set none. */
export const DEFAULT_BATCHING_POLICY: BatchingPolicy = { maxBatchSize: 32, maxQueueDelayMs: 2, maxQueueSize: 1024 };

/**
 * Batching: each model version's queue (a pure state object that decides the next batch) and the
 * loop around it (schedule → execute → update), with the tensor stacking and splitting it needs.
 */
export { BatchQueue, DEFAULT_BATCHING_POLICY, type BatchDecision, type BatchingPolicy, type QueuedRequest } from './batch-queue.ts';
export { splitOutputs, stackInputs, type RequestOutputs } from './batch-tensors.ts';
export { MAX_REQUEUES, updateAfterBatch, type BatchOutcome, type BatchUpdate } from './batch-update.ts';
export {
  ModelBatcher, type BatchAnswer, type BatcherReporter, type BatchRunner, type CancelSignal, type ModelBatcherOptions,
  type SubmitOptions,
} from './model-batcher.ts';

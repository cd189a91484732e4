/**
 * Batching: each model version's queue (a pure state object that decides the next batch) and the
 * loop around it (schedule → execute → update), with the tensor stacking and splitting it needs.
 */
export type { BatchingPolicy } from './batch-queue.ts';
export { MAX_REQUEUES } from './batch-update.ts';
export { ModelBatcher, type BatcherReporter, type CancelSignal } from './model-batcher.ts';

/**
 * Admission: what a request must satisfy before anything queues. Validation against the model's
 * signature yields the only type the batcher accepts; scheduling reads priority and deadline.
 * Pure: every refusal is an INVALID_ARGUMENT naming the field.
 */
export { isBatchable, validateInferRequest, type RequestByteLimits, type ValidatedRequest } from './request-validation.ts';
export { DEFAULT_PRIORITY, priorityLevelOf, schedulingOf } from './scheduling.ts';

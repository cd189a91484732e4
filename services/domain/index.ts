/**
 * The vocabulary every NexusML service and the CLI share: coded domain errors, the model-version
 * key, the data directory, tag names and the split format. Pure: no transport, no I/O.
 */
export { codeName, ErrorCode, failedPrecondition, invalidArgument, isCodedRemoteError, NexusError, notFound } from './errors.ts';
export { modelKey, modelKeyOf, type ModelKey } from './model-key.ts';
export { defaultDataDir } from './data-dir.ts';
export { LABELS_TAG, PRECISION_TAG } from './tags.ts';
export { formatSplit, parseSplitTarget, parseVersionNumber, type SplitArm } from './split-format.ts';
export { DEFAULT_BATCHING_POLICY } from './batching-policy.ts';

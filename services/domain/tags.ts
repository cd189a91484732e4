/** Version tags NexusML itself reads; every other tag is the user's. */

/** `fp32` or `fp16`: the precision an executor runs the version in (`nexus store --precision`). */
export const PRECISION_TAG = 'nexus.precision';

/**
 * The version's class labels, one per line, line i naming class index i (`nexus store --labels`):
 * the classification extension answers "score:index:label" with them.
 */
export const LABELS_TAG = 'nexus.labels';

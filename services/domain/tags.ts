/** Version tags NexusML itself reads; every other tag is the user's. */

/** `fp32` or `fp16`: the precision an executor runs the version in (`nexus store --precision`). */
export const PRECISION_TAG = 'nexus.precision';

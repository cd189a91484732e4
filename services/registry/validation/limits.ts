/**
 * The registry's budgets: how large one artifact and one directory model may be, how many
 * versions one model may have, and the least age garbage collection waits for. Each is checked
 * against what a client announces before any byte is stored, and again while bytes arrive.
 */
import { ErrorCode, invalidArgument, NexusError } from '../../domain/index.ts';

/** One gibibyte, in bytes. */
const GIB = 1024 ** 3;

export interface RegistryLimits {
  /** Largest single artifact (a one-file model, or one file of a directory model), in bytes. Default 16 GiB. */
  maxArtifactBytes: number;
  /** Largest directory model, the sum of its files' sizes, in bytes. Default 64 GiB. */
  maxModelBytes: number;
  /** Most versions one model may have (versions are never deleted). Default 10 000. */
  maxVersionsPerModel: number;
  /**
   * Least age of an unreferenced object before garbage collection may delete it, in
   * milliseconds; a client asking for less gets this. Default one hour.
   */
  gcMinAgeMs: number;
}

export const DEFAULT_LIMITS: Readonly<RegistryLimits> = Object.freeze({
  maxArtifactBytes: 16 * GIB,
  maxModelBytes: 64 * GIB,
  maxVersionsPerModel: 10_000,
  gcMinAgeMs: 3600_000,
});

/**
 * The wire's 64-bit integers arrive as JavaScript numbers, exact only below 2^53; a larger one is
 * decoded as this value (see grpc/codecs.ts), so reaching it means the client sent more.
 */
export const LARGEST_EXACT_COUNT = Number.MAX_SAFE_INTEGER;

/**
 * Throws INVALID_ARGUMENT unless `value` is a whole number from 0 to below 2^53 - 1 (what every
 * 64-bit count in the registry's messages may hold), naming the field.
 */
export function checkCount(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0) throw invalidArgument(`${field} ${value} is not a whole number of 0 or more`);
  if (value >= LARGEST_EXACT_COUNT) {
    throw invalidArgument(`${field} is ${value === LARGEST_EXACT_COUNT ? '2^53 - 1 or more' : value}; the registry takes values below 2^53 - 1 (${LARGEST_EXACT_COUNT})`);
  }
  return value;
}

/** RESOURCE_EXHAUSTED naming the budget, the value asked for and the limit. */
export const budgetExceeded = (budget: string, value: number | string, limit: number, unit = 'bytes') =>
  new NexusError(ErrorCode.RESOURCE_EXHAUSTED, `${budget} exceeded: ${value} ${unit} asked for, the limit is ${limit} ${unit}`);

/** Throws RESOURCE_EXHAUSTED when `sizeBytes` is over the artifact cap, naming `field`. */
export function checkArtifactSize(sizeBytes: number, limits: RegistryLimits, field: string): void {
  if (sizeBytes > limits.maxArtifactBytes) {
    throw budgetExceeded(`max_artifact_bytes (${field})`, sizeBytes, limits.maxArtifactBytes);
  }
}

/** Reads a limit from a flag or environment value: a whole number in the limit's unit; throws naming `name` otherwise. */
export function parseLimit(text: string, name: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new Error(`${name} '${text}' must be a whole number below 2^53`);
  return Number(text);
}

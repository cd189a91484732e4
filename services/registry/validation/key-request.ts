/**
 * What a new API key may ask for: a known role, a short plain name, a bounded list of model-name
 * globs, and finite, non-negative, bounded limits. INVALID_ARGUMENT names the field at fault.
 */
import type { KeyLimits } from '../../protocol/generated/nexus/auth/v1/keys.ts';
import { isRole, ROLES, type Role } from '../../auth/roles.ts';
import { invalidArgument } from '../../domain/index.ts';

/** Most model globs on one key. */
export const MAX_KEY_MODEL_GLOBS = 64;
/** Longest model glob, in characters. */
export const MAX_MODEL_GLOB_CHARS = 256;
/** A key's name: optional, 1-64 letters, digits, spaces and . _ : @ -, starting with a letter or digit. */
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:@-]{0,63}$/;
/** Model names are [a-z0-9._-]; a glob adds picomatch's * ? [ ] { } , ! and ranges. */
const MODEL_GLOB = /^[a-z0-9._\-*?[\]{},!]+$/;
/** A key id as api-keys.ts makes them. */
const KEY_ID = /^[0-9a-f]{12}$/;

/** The largest value each limit may take: beyond them a limit means nothing a router could count. */
export const KEY_LIMIT_BOUNDS: Readonly<Record<keyof KeyLimits, number>> = Object.freeze({
  requestsPerSecond: 1_000_000,
  burst: 1_000_000,
  rowsPerSecond: 1_000_000_000,
  dailyQuota: 1_000_000_000_000,
  maxConcurrent: 100_000,
});

/** The wire names of the limits, for messages. */
const LIMIT_FIELDS: Readonly<Record<keyof KeyLimits, string>> = {
  requestsPerSecond: 'limits.requests_per_second',
  burst: 'limits.burst',
  rowsPerSecond: 'limits.rows_per_second',
  dailyQuota: 'limits.daily_quota',
  maxConcurrent: 'limits.max_concurrent',
};
/** Limits counted in whole units. */
const WHOLE_LIMITS = new Set<keyof KeyLimits>(['burst', 'dailyQuota', 'maxConcurrent']);

export const NO_LIMITS: Readonly<KeyLimits> = Object.freeze({ requestsPerSecond: 0, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 });

/** A key request that passed every rule. */
export interface CheckedKeyRequest {
  name: string;
  role: Role;
  models: string[];
  limits: KeyLimits;
}

/** Throws INVALID_ARGUMENT unless `role` is one of infer, write, admin. */
function checkRole(role: string, field = 'role'): Role {
  if (!isRole(role)) throw invalidArgument(`${field} '${role.slice(0, 100)}' is invalid: use ${ROLES.join(', ')}`);
  return role;
}

/** Throws INVALID_ARGUMENT unless `id` is a key id (12 lower-case hex characters). */
export function checkKeyId(id: string, field = 'id'): string {
  if (!KEY_ID.test(id)) throw invalidArgument(`${field} '${id.slice(0, 100)}' is not a key id (12 lower-case hex characters, the part after 'nxk_')`);
  return id;
}

/** Throws INVALID_ARGUMENT unless the limits are finite, 0 or more, within KEY_LIMIT_BOUNDS, whole where counted. */
function checkKeyLimits(limits: KeyLimits | undefined): KeyLimits {
  if (!limits) return { ...NO_LIMITS };
  for (const name of Object.keys(LIMIT_FIELDS) as Array<keyof KeyLimits>) {
    const value = limits[name];
    const field = LIMIT_FIELDS[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalidArgument(`${field} ${value} must be a finite number of 0 or more (0: unlimited)`);
    if (WHOLE_LIMITS.has(name) && !Number.isInteger(value)) throw invalidArgument(`${field} ${value} must be a whole number`);
    if (value > KEY_LIMIT_BOUNDS[name]) throw invalidArgument(`${field} ${value} is over the largest allowed, ${KEY_LIMIT_BOUNDS[name]} (0: unlimited)`);
  }
  return {
    requestsPerSecond: limits.requestsPerSecond, burst: limits.burst, rowsPerSecond: limits.rowsPerSecond,
    dailyQuota: limits.dailyQuota, maxConcurrent: limits.maxConcurrent,
  };
}

/** Throws INVALID_ARGUMENT unless every glob is non-empty, short, of model-name characters and glob syntax, and there are few. */
function checkModelGlobs(models: readonly string[], field = 'models'): string[] {
  if (models.length > MAX_KEY_MODEL_GLOBS) throw invalidArgument(`${field} has ${models.length} globs; at most ${MAX_KEY_MODEL_GLOBS} are allowed`);
  models.forEach((glob, index) => {
    if (glob.length === 0) throw invalidArgument(`${field}[${index}] is empty; give a model name or a glob such as 'iris-*' (no globs: every model)`);
    if (glob.length > MAX_MODEL_GLOB_CHARS) throw invalidArgument(`${field}[${index}] is longer than ${MAX_MODEL_GLOB_CHARS} characters`);
    if (!MODEL_GLOB.test(glob)) {
      throw invalidArgument(`${field}[${index}] '${glob.slice(0, 100)}' is invalid: use lower-case letters, digits, '.', '_', '-' and the glob characters * ? [ ] { } , !`);
    }
  });
  return [...models];
}

/** Checks a CreateKey request; returns what the key record will hold. */
export function checkKeyRequest(request: { name: string; role: string; models: readonly string[]; limits: KeyLimits | undefined }): CheckedKeyRequest {
  const role = checkRole(request.role);
  if (request.name !== '' && !KEY_NAME.test(request.name)) {
    throw invalidArgument(`name '${request.name.slice(0, 100)}' is invalid: use 1-64 letters, digits, spaces, '.', '_', ':', '@' or '-', starting with a letter or digit (or leave it empty)`);
  }
  return { name: request.name, role, models: checkModelGlobs(request.models), limits: checkKeyLimits(request.limits) };
}

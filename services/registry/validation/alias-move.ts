/**
 * What an alias move may ask for: valid names, bounded notes, and a destination that is one
 * version or a split of distinct versions with bounded weights, the control first.
 */
import type { AliasTarget } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { invalidArgument } from '../../domain/index.ts';
import { checkCount } from './limits.ts';
import { checkAliasName, checkModelName } from './names.ts';

/** Longest reason recorded with a move, in characters. */
export const MAX_REASON_CHARS = 1024;
/** Longest actor recorded with a move, in characters. */
export const MAX_ACTOR_CHARS = 256;
/** Most arms of a split alias. */
export const MAX_SPLIT_ARMS = 16;
/** Largest weight of one arm of a split alias. */
export const MAX_SPLIT_WEIGHT = 1_000_000;
/** A request parameter name that keeps a client on one arm of a split. */
const STICKY_PARAMETER = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Who moves which alias, why, and what they expect it to point at now. */
export interface MoveRequest {
  modelName: string;
  alias: string;
  /** Must be the alias's current version (0: must not exist); undefined skips the check. */
  expectedVersion?: number;
  /** Must be the alias's current revision (0: must not exist); undefined skips the check. */
  expectedRevision?: number;
  reason: string;
  actor: string;
}

/** Where an alias sends traffic: one version, or a split (whose first arm is `version`). */
export interface AliasDestination {
  version: number;
  /** Empty: no split. */
  split: AliasTarget[];
  /** With a split: the request parameter that keeps a client on one arm; '' for random. */
  stickyParameter: string;
}

/**
 * Checks who moves which alias and why; returns the request to record, with an empty actor
 * recorded as 'unknown'. INVALID_ARGUMENT names the field at fault.
 */
export function checkMove(request: MoveRequest): MoveRequest {
  checkModelName(request.modelName);
  checkAliasName(request.alias);
  if (request.reason.length > MAX_REASON_CHARS) throw invalidArgument(`reason is longer than ${MAX_REASON_CHARS} characters`);
  if (request.actor.length > MAX_ACTOR_CHARS) throw invalidArgument(`actor is longer than ${MAX_ACTOR_CHARS} characters`);
  if (request.expectedRevision !== undefined) checkCount(request.expectedRevision, 'expected_revision');
  return { ...request, actor: request.actor || 'unknown' };
}

/**
 * Checks where SetAlias should point an alias: one version, or a split of two or more distinct
 * versions with positive weights whose first arm is the control (`version` is 0 or the first
 * arm's). Returns the destination to record; INVALID_ARGUMENT names the field at fault.
 */
export function checkDestination(version: number, split: AliasTarget[], stickyParameter: string): AliasDestination {
  if (split.length === 0) {
    if (version <= 0) throw invalidArgument('version must be 1 or more');
    if (stickyParameter) throw invalidArgument('sticky_parameter needs a split: give split, or leave sticky_parameter empty');
    return { version, split: [], stickyParameter: '' };
  }
  if (split.length < 2 || split.length > MAX_SPLIT_ARMS) throw invalidArgument(`split has ${split.length} arms; give 2 to ${MAX_SPLIT_ARMS}`);
  const seen = new Set<number>();
  split.forEach((arm, index) => {
    if (arm.version <= 0) throw invalidArgument(`split[${index}].version must be 1 or more`);
    if (!Number.isInteger(arm.weight) || arm.weight < 1 || arm.weight > MAX_SPLIT_WEIGHT) {
      throw invalidArgument(`split[${index}].weight must be 1 to ${MAX_SPLIT_WEIGHT}, got ${arm.weight}`);
    }
    if (seen.has(arm.version)) throw invalidArgument(`split[${index}].version ${arm.version} is listed twice`);
    seen.add(arm.version);
  });
  if (version !== 0 && version !== split[0].version) {
    throw invalidArgument(`version ${version} differs from split[0].version ${split[0].version}; give 0 or the first arm's version (the control)`);
  }
  if (stickyParameter && !STICKY_PARAMETER.test(stickyParameter)) {
    throw invalidArgument(`sticky_parameter '${stickyParameter.slice(0, 100)}' is invalid: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or '_'`);
  }
  return { version: split[0].version, split: split.map((arm) => ({ version: arm.version, weight: arm.weight })), stickyParameter };
}

/**
 * A request's priority and deadline, from the Open Inference Protocol's schedule-policy
 * parameters and the gRPC deadline. Pure.
 *
 *   parameters.priority  int64 1 (high) … 3 (low), 0 = the model's default; or "high" | "normal" | "low"
 *   parameters.timeout   int64 microseconds; the earlier of it and the gRPC deadline wins
 */
import type { InferParameter } from '../../protocol/generated/inference/grpc_service.ts';
import { invalidArgument } from '../../domain/index.ts';

/** Priority levels: 1 (high) to 3 (low), as Triton numbers them. */
export const PRIORITY_LEVELS = { high: 1, normal: 2, low: 3 } as const;
/** The priority of a request that names none, unless its model's config says otherwise. */
export const DEFAULT_PRIORITY = PRIORITY_LEVELS.normal;

export interface Scheduling {
  priority: number;
  /** Absolute deadline in the clock's milliseconds, or undefined for none. */
  deadlineMs: number | undefined;
}

/** The level a priority name stands for; undefined for any other text ("__proto__" included). */
export function priorityLevelOf(name: unknown): number | undefined {
  return typeof name === 'string' && Object.hasOwn(PRIORITY_LEVELS, name) ? PRIORITY_LEVELS[name as keyof typeof PRIORITY_LEVELS] : undefined;
}

const LEVEL_COUNT = Object.keys(PRIORITY_LEVELS).length;

function priorityOf(parameter: InferParameter | undefined, defaultPriority: number): number {
  if (!parameter) return defaultPriority;
  if (parameter.stringParam !== undefined) {
    const level = priorityLevelOf(parameter.stringParam);
    if (level === undefined) throw invalidArgument(`parameters.priority '${parameter.stringParam}' is not one of high, normal, low`);
    return level;
  }
  const value = parameter.int64Param ?? parameter.uint64Param;
  if (value === undefined || !Number.isInteger(value) || value < 0 || value > LEVEL_COUNT) {
    throw invalidArgument(`parameters.priority must be an integer from 1 (high) to ${LEVEL_COUNT} (low), or 0 for the default`);
  }
  return value === 0 ? defaultPriority : value;
}

function timeoutMsOf(parameter: InferParameter | undefined): number | undefined {
  if (!parameter) return undefined;
  const value = parameter.int64Param ?? parameter.uint64Param;
  if (value === undefined || !Number.isInteger(value) || value <= 0) {
    throw invalidArgument('parameters.timeout must be a positive integer number of microseconds');
  }
  return value / 1000;
}

/** Reads priority and timeout; throws INVALID_ARGUMENT naming a malformed parameter. */
export function schedulingOf(
  parameters: Record<string, InferParameter>,
  options: { defaultPriority: number; callDeadlineMs: number | undefined; nowMs: number },
): Scheduling {
  const priority = priorityOf(parameters.priority, options.defaultPriority);
  const timeoutMs = timeoutMsOf(parameters.timeout);
  const fromTimeout = timeoutMs === undefined ? undefined : options.nowMs + timeoutMs;
  const { callDeadlineMs } = options;
  const deadlineMs = fromTimeout === undefined ? callDeadlineMs : callDeadlineMs === undefined ? fromTimeout : Math.min(fromTimeout, callDeadlineMs);
  return { priority, deadlineMs };
}

/**
 * A/B splits: which arm a request goes to (pure), and each arm's running results.
 */
import type { GetExperimentResponse, WelchTest } from '../../protocol/generated/nexus/router/v1/experiments.ts';
import type { InferParameter } from '../../protocol/generated/inference/grpc_service.ts';
import type { TrafficSplit } from '../config/index.ts';
import { RunningStats, welchTTest, type WelchResult } from './welch.ts';

/**
 * A stable 32-bit hash, so a sticky key maps to the same arm on every router: FNV-1a, then
 * murmur3's finalizer, because FNV's high bits barely change between keys like "user-1", "user-2".
 */
function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The sticky key of a request, as text, if it carries the split's parameter. */
export function stickyKeyOf(split: TrafficSplit, parameters: Record<string, InferParameter>): string | undefined {
  const parameter = split.stickyParameter ? parameters[split.stickyParameter] : undefined;
  if (!parameter) return undefined;
  const value = parameter.stringParam ?? parameter.int64Param ?? parameter.uint64Param ?? parameter.doubleParam ?? parameter.boolParam;
  return value === undefined ? undefined : String(value);
}

/**
 * The version a request goes to: by the hash of its sticky key when it has one (the same key,
 * the same arm), otherwise by `random()`; in proportion to the weights either way.
 */
export function chooseArm(split: TrafficSplit, stickyKey: string | undefined, random: () => number = Math.random): number {
  const total = split.arms.reduce((sum, arm) => sum + arm.weight, 0);
  const point = (stickyKey === undefined ? random() : stableHash(stickyKey) / 2 ** 32) * total;
  let cumulative = 0;
  for (const arm of split.arms) {
    cumulative += arm.weight;
    if (point < cumulative) return arm.version;
  }
  return split.arms.at(-1)!.version;
}

/** The version a request goes to under a target: its only arm, or the arm its sticky key (or chance) picks. */
export function armFor(split: TrafficSplit, parameters: Record<string, InferParameter>): number {
  return split.arms.length > 1 ? chooseArm(split, stickyKeyOf(split, parameters)) : split.arms[0].version;
}

/**
 * The largest outcome magnitude ReportOutcome accepts: 1e12. Far past any metric a client reports
 * (revenue in cents, seconds, clicks), and small enough that Welford's sums of squared
 * differences stay finite for any count of outcomes a router will see.
 */
export const MAX_OUTCOME_MAGNITUDE = 1e12;

/** Whether an outcome may enter an arm's statistics: finite and within ±MAX_OUTCOME_MAGNITUDE. Pure. */
export function isAcceptedOutcome(value: number): boolean {
  return Number.isFinite(value) && Math.abs(value) <= MAX_OUTCOME_MAGNITUDE;
}

interface ArmResults {
  requests: number;
  errors: number;
  latencyMs: RunningStats;
  outcome: RunningStats;
}

const asTest = (result: WelchResult | undefined): WelchTest | undefined =>
  result && { t: result.t, degreesOfFreedom: result.degreesOfFreedom, pValue: result.pValue };

/** Running results of one split (of the router config's, or of a registry alias). */
export class Experiment {
  private current: TrafficSplit;
  private readonly arms = new Map<number, ArmResults>();
  /** The alias whose split this is; '' for the router config's. */
  readonly alias: string;

  constructor(split: TrafficSplit, alias = '') {
    this.current = split;
    this.alias = alias;
    this.retarget(split);
  }

  get split(): TrafficSplit {
    return this.current;
  }

  /**
   * Follows a changed split (an alias moved to new weights or arms). Arms that stay keep their
   * figures, so re-weighting does not lose what was measured; arms that leave are dropped.
   */
  retarget(split: TrafficSplit): void {
    this.current = split;
    for (const version of [...this.arms.keys()]) if (!split.arms.some((arm) => arm.version === version)) this.arms.delete(version);
    for (const arm of split.arms) {
      if (!this.arms.has(arm.version)) this.arms.set(arm.version, { requests: 0, errors: 0, latencyMs: new RunningStats(), outcome: new RunningStats() });
    }
  }

  has(version: number): boolean {
    return this.arms.has(version);
  }

  recordRequest(version: number, latencyMs: number, failed: boolean): void {
    const arm = this.arms.get(version);
    if (!arm) return;
    arm.requests += 1;
    if (failed) arm.errors += 1;
    else arm.latencyMs.add(latencyMs);
  }

  /** Adds an outcome; one that is not accepted (see isAcceptedOutcome) is ignored. */
  recordOutcome(version: number, value: number): void {
    if (!isAcceptedOutcome(value)) return;
    this.arms.get(version)?.outcome.add(value);
  }

  /** Every arm's figures, and each arm against the first (the control). */
  report(modelName: string): GetExperimentResponse {
    const entries = this.split.arms.map((arm) => ({ arm, results: this.arms.get(arm.version)! }));
    const control = entries[0].results;
    return {
      modelName,
      alias: this.alias,
      stickyParameter: this.split.stickyParameter ?? '',
      arms: entries.map(({ arm, results }) => ({
        version: arm.version, weight: arm.weight, requests: results.requests, errors: results.errors,
        latencyMeanMs: results.latencyMs.mean, latencyStddevMs: Math.sqrt(results.latencyMs.variance),
        outcomes: results.outcome.count, outcomeMean: results.outcome.mean, outcomeStddev: Math.sqrt(results.outcome.variance),
      })),
      comparisons: entries.slice(1).map(({ arm, results }) => ({
        version: arm.version,
        outcome: asTest(welchTTest(results.outcome, control.outcome)),
        latency: asTest(welchTTest(results.latencyMs, control.latencyMs)),
      })),
    };
  }
}

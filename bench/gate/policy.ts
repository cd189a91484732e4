/**
 * The CI gate's decisions, pure: which figures it holds, the limit each gets from its measured
 * value when the baselines are updated, and whether a run passes them.
 *
 * - A ratio of ours over a peer measured in the same run (kernels vs onnxruntime's WebGPU
 *   provider, batching on vs off) must stay above a floor of RATIO_FLOOR_SHARE of the value
 *   measured when the baseline was taken: far enough below that a noisy shared machine never
 *   fails it, near enough that a change which halves our speed does.
 * - Instructions per request (callgrind) must stay below the measured value plus
 *   INSTRUCTION_MARGIN: counts repeat within about 2 % between runs, so a real regression of a
 *   tenth shows and noise does not.
 * - Latency has fixed budgets (LATENCY_BUDGETS_MS): wall-clock latency on a shared CPU-only
 *   machine moves too much to hold to a measured value.
 */
import type { Figure } from '../lib/report.ts';

export const RATIO_FLOOR_SHARE = 0.6;
export const INSTRUCTION_MARGIN = 0.1;
/** Budgets by figure id; generous for lavapipe on two cores, where the measured values are a fifth of them. */
export const LATENCY_BUDGETS_MS: Record<string, number> = {
  'latency.iris.c4.mean_ms': 25,
  'latency.iris.c4.p95_ms': 50,
};

/** The figures the gate holds, by id. */
export function isGated(id: string): boolean {
  return /^kernels\.[^.]+\.webgpu_over_ours$/.test(id) || /^batching\./.test(id) || /^cpu\.(router|executor)\.instructions_per_request$/.test(id)
    || id in LATENCY_BUDGETS_MS || id === 'latency.iris.errors';
}

export interface Baseline {
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** The value measured when the baseline was taken (the median of its repetitions). */
  measured: number;
  /** Passing means at least this ('higher') or at most this ('lower'). */
  limit: number;
  /** How the limit follows from `measured`, in words. */
  rule: string;
}

export interface BaselineFile {
  about: string;
  /** Where and when the baselines were measured. */
  measuredOn: Record<string, string | number>;
  figures: Record<string, Baseline>;
}

/** The limit a figure gets from its measured value, and the rule in words. */
export function limitFor(figure: Pick<Figure, 'id' | 'unit' | 'better'>, measured: number): { limit: number; rule: string } {
  if (figure.id in LATENCY_BUDGETS_MS) return { limit: LATENCY_BUDGETS_MS[figure.id], rule: 'fixed budget' };
  if (figure.id === 'latency.iris.errors') return { limit: 0, rule: 'none may fail' };
  if (figure.unit === 'instructions') return { limit: Math.round(measured * (1 + INSTRUCTION_MARGIN)), rule: `measured + ${INSTRUCTION_MARGIN * 100}%` };
  if (figure.better === 'higher') return { limit: round(measured * RATIO_FLOOR_SHARE, 2), rule: `${RATIO_FLOOR_SHARE * 100}% of measured` };
  throw new Error(`no rule for figure ${figure.id}`);
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

export interface Verdict {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Undefined when the run did not measure it. */
  value: number | undefined;
  limit: number;
  baseline: number;
  passed: boolean;
  /** Why it failed, in words; empty when it passed. */
  reason: string;
}

/**
 * Every baseline checked against the run's figures; a gated figure the run measured that has no
 * baseline yet fails too (update the baselines to start holding it).
 */
export function check(figures: readonly Figure[], baselines: BaselineFile): Verdict[] {
  const byId = new Map(figures.map((figure) => [figure.id, figure]));
  const verdicts: Verdict[] = Object.entries(baselines.figures).map(([id, baseline]) => {
    const value = byId.get(id)?.value;
    const base = { id, label: baseline.label, unit: baseline.unit, better: baseline.better, value, limit: baseline.limit, baseline: baseline.measured };
    if (value === undefined || !Number.isFinite(value)) return { ...base, value: undefined, passed: false, reason: 'not measured in this run' };
    const passed = baseline.better === 'higher' ? value >= baseline.limit : value <= baseline.limit;
    const change = baseline.measured === 0 ? '' : ` (${formatChange(value / baseline.measured - 1)} against the baseline)`;
    const reason = passed ? '' : `${format(value, baseline.unit)} is ${baseline.better === 'higher' ? 'below the floor' : 'above the ceiling'} of ${format(baseline.limit, baseline.unit)}${change}`;
    return { ...base, passed, reason };
  });
  for (const figure of figures) {
    if (isGated(figure.id) && !(figure.id in baselines.figures) && figure.id !== 'latency.iris.errors') {
      verdicts.push({ id: figure.id, label: figure.label, unit: figure.unit, better: figure.better, value: figure.value, limit: Number.NaN, baseline: Number.NaN,
        passed: false, reason: 'no baseline: run npm run bench:baseline to start holding it' });
    }
  }
  return verdicts;
}

export function format(value: number, unit: string): string {
  if (unit === 'instructions') return `${Math.round(value).toLocaleString('en-US')} instructions`;
  if (unit === 'x') return `${value.toFixed(2)}x`;
  if (unit === 'ms') return `${value.toFixed(2)} ms`;
  return `${value} ${unit}`;
}

const formatChange = (change: number) => `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}%`;

/**
 * New baselines from the median of each gated figure over the repetitions, and a line per figure
 * saying what changed (old → new, measured and limit).
 */
export function updatedBaselines(old: BaselineFile | undefined, repetitions: readonly (readonly Figure[])[], measuredOn: BaselineFile['measuredOn']):
  { next: BaselineFile; lines: string[] } {
  const figures: Record<string, Baseline> = {};
  const lines: string[] = [];
  const ids = [...new Set(repetitions.flatMap((figures) => figures.filter((figure) => isGated(figure.id)).map((figure) => figure.id)))];
  for (const id of ids) {
    const measuredFigures = repetitions.flatMap((run) => run.filter((figure) => figure.id === id));
    // The errors figure appears only when requests failed: a baseline must never allow that.
    if (id === 'latency.iris.errors') throw new Error(`iris requests failed while measuring the baselines (${measuredFigures.map((figure) => figure.value).join(', ')}); fix that first`);
    const values = measuredFigures.map((figure) => figure.value).sort((a, b) => a - b);
    const measured = values[Math.floor((values.length - 1) / 2)];
    const { label, unit, better } = measuredFigures[0];
    const { limit, rule } = limitFor({ id, unit, better }, measured);
    figures[id] = { label, unit, better, measured: unit === 'instructions' ? Math.round(measured) : round(measured, 3), limit, rule };
    const previous = old?.figures[id];
    const spread = values.length > 1 ? `; ${values.length} runs ${format(values[0], unit)} … ${format(values.at(-1)!, unit)}, spread ${formatChange(values.at(-1)! / values[0] - 1)}` : '';
    lines.push(previous
      ? `${id}: measured ${format(previous.measured, unit)} → ${format(figures[id].measured, unit)}, limit ${format(previous.limit, unit)} → ${format(limit, unit)} (${rule}${spread})`
      : `${id}: new, measured ${format(figures[id].measured, unit)}, limit ${format(limit, unit)} (${rule}${spread})`);
  }
  for (const id of Object.keys(old?.figures ?? {})) if (!(id in figures)) lines.push(`${id}: dropped (not measured any more)`);
  return {
    next: { about: old?.about ?? 'Limits of the CI gate (npm run bench:gate); change them only with npm run bench:baseline, see docs/performance.md.', measuredOn, figures },
    lines,
  };
}

/**
 * What a bench hands back besides the tables it prints: rows (one per table line, the columns as
 * numbers where they are numbers) and figures (the few numbers the CI gate holds, each with a
 * stable id), plus notes. bench/run.ts runs each bench as a child process with
 * NEXUS_BENCH_RESULT naming a file, and the bench writes its SuiteResult there as JSON; run on
 * its own, a bench only prints.
 */
import { writeFileSync } from 'node:fs';

export type Cell = string | number | boolean | null;
export type BenchRow = Record<string, Cell>;

/** One number the gate can hold against bench/baselines.json. */
export interface Figure {
  /** Stable id, e.g. "kernels.matmul_256x1024x1024.webgpu_over_ours". */
  id: string;
  value: number;
  /** "x" for ratios, "instructions", "ms", ... */
  unit: string;
  /** Which way is better: a ratio of ours over the peer is 'higher', a cost 'lower'. */
  better: 'higher' | 'lower';
  /** What the figure is, in words, for the gate's table. */
  label: string;
}

export interface SuiteResult {
  suite: string;
  rows: BenchRow[];
  figures: Figure[];
  notes: string[];
}

/** Environment variable naming the file a bench writes its result to. */
export const RESULT_FILE_ENV = 'NEXUS_BENCH_RESULT';

/** Writes the result where bench/run.ts asked for it; nothing when run on its own. */
export function publish(result: SuiteResult): void {
  const file = process.env[RESULT_FILE_ENV];
  if (file) writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}

/** A number as a row cell: NaN and infinities become null (JSON has neither). */
export const cell = (value: number | undefined): number | null => (value === undefined || !Number.isFinite(value) ? null : value);

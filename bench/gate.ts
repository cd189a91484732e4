/**
 * The CI performance gate: measures the gated figures (bench/gate/policy.ts says which and how)
 * and holds them to bench/baselines.json.
 *
 *   npm run bench:gate [-- --only cpu,kernels,batching]     measure, check, exit 1 on a failure
 *   npm run bench:baseline [-- --repeat 3] [--only …]        measure (the median of N runs) and
 *                                                            rewrite the baselines, old → new
 *
 * Suites it runs, each as bench/run.ts runs them (--quick): cpu (router and executor
 * instructions per request under callgrind), kernels (ours over onnxruntime's WebGPU provider),
 * batching (batching on over off, interleaved; the Iris latency budget).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeEnvironment } from './lib/environment.ts';
import type { Figure } from './lib/report.ts';
import { check, format, updatedBaselines, type BaselineFile } from './gate/policy.ts';
import { runSuite } from './run.ts';

/** The gate's suites, and the figure ids each one measures. */
const GATE_SUITES: Record<string, RegExp> = { cpu: /^cpu\./, kernels: /^kernels\./, batching: /^(batching|latency)\./ };

const { values } = parseArgs({
  options: {
    update: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '1' },
    only: { type: 'string' },
    baselines: { type: 'string', default: resolve(import.meta.dirname, 'baselines.json') },
  },
});
const suites = values.only ? values.only.split(',') : Object.keys(GATE_SUITES);
for (const name of suites) if (!GATE_SUITES[name]) throw new Error(`--only takes ${Object.keys(GATE_SUITES).join(', ')}; got '${name}'`);
const repeat = values.update ? Math.max(1, Number(values.repeat)) : 1;

const started = performance.now();
const repetitions: Figure[][] = [];
const timings: string[] = [];
for (let run = 0; run < repeat; run++) {
  const figures: Figure[] = [];
  for (const name of suites) {
    const result = await runSuite(name, [], true);
    timings.push(`${name}${repeat > 1 ? ` (run ${run + 1})` : ''}: ${result.seconds.toFixed(0)} s`);
    if (result.exitCode !== 0) {
      console.error(`\ngate: the ${name} bench exited with ${result.exitCode}; its figures count as not measured`);
      continue;
    }
    figures.push(...result.figures.filter((figure) => GATE_SUITES[name].test(figure.id)));
  }
  repetitions.push(figures);
}
const seconds = (performance.now() - started) / 1000;

let old: BaselineFile | undefined;
try {
  old = JSON.parse(await readFile(values.baselines, 'utf8')) as BaselineFile;
} catch {
  old = undefined;
}
const inScope = (id: string) => suites.some((name) => GATE_SUITES[name].test(id));

if (values.update) {
  const environment = await describeEnvironment();
  const adapter = 'error' in environment.adapter ? environment.adapter.error : environment.adapter.description;
  const { next, lines } = updatedBaselines(old, repetitions, {
    adapter, cpu: environment.cpu.model, cores: environment.cpu.cores, node: environment.versions.node, commit: environment.git.commit, date: environment.date,
    repetitions: repeat,
  });
  // Figures of suites not measured this time keep their baselines.
  for (const [id, baseline] of Object.entries(old?.figures ?? {})) if (!inScope(id)) next.figures[id] = baseline;
  await writeFile(values.baselines, `${JSON.stringify(next, null, 2)}\n`);
  console.log('\n## baselines updated\n');
  for (const line of lines.filter((line) => inScope(line.split(':')[0]))) console.log(`- ${line}`);
  console.log(`\nwrote ${values.baselines} (${timings.join(', ')}; ${seconds.toFixed(0)} s in all)`);
  process.exit(0);
}

if (!old) {
  console.error(`gate: no baselines at ${values.baselines}; run npm run bench:baseline`);
  process.exit(1);
}
const scoped: BaselineFile = { ...old, figures: Object.fromEntries(Object.entries(old.figures).filter(([id]) => inScope(id))) };
const verdicts = check(repetitions[0], scoped);
console.log('\n## performance gate\n');
console.log('| figure | measured | limit | baseline | |');
console.log('|---|---:|---:|---:|---|');
for (const verdict of verdicts) {
  const value = verdict.value === undefined ? '—' : format(verdict.value, verdict.unit);
  const limit = `${verdict.better === 'higher' ? '≥' : '≤'} ${Number.isNaN(verdict.limit) ? '—' : format(verdict.limit, verdict.unit)}`;
  console.log(`| ${verdict.label} | ${value} | ${limit} | ${Number.isNaN(verdict.baseline) ? '—' : format(verdict.baseline, verdict.unit)} | ${verdict.passed ? 'ok' : 'FAIL'} |`);
}
const failed = verdicts.filter((verdict) => !verdict.passed);
console.log(`\n${timings.join(', ')}; ${seconds.toFixed(0)} s in all`);
if (failed.length) {
  console.log(`\ngate FAILED: ${failed.length} of ${verdicts.length} figures`);
  for (const verdict of failed) console.log(`- ${verdict.id}: ${verdict.reason}`);
  console.log('\nA slower change fails here on purpose. If the change is meant to cost this, update the baselines in the same commit: npm run bench:baseline (docs/performance.md).');
  process.exit(1);
}
console.log(`\ngate passed: ${verdicts.length} figures within their limits`);
process.exit(0);

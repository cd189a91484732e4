/**
 * Runs ONNX's operator conformance cases on our executor and prints the pass rate, every case
 * that does not pass grouped by its reason, and (with --json) every result.
 *
 *   node test/conformance/run.ts [--filter REGEX] [--cases DIR] [--json FILE] [--verbose] [--opset N] [--write-expected]
 *
 * The cases are written first where they are missing (generate.sh, from python3-onnx); --cases
 * DIR runs others already written.
 * --opset N runs every case lifted to opset N, onnxruntime's outputs the reference (lifted.ts).
 * --write-expected rewrites the expected failures onnx-node-suite.test.ts holds every case to
 * (expected-failures.json, or expected-failures-opsetN.json) from this run: every case that does
 * not pass, with its reason.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openGpu } from '../../services/executor/gpu/index.ts';
import { CASES_DIR, ensureCases, expectedFailuresFile, listCases, runCase, summarize, type CaseResult } from './suite.ts';

const { values: args } = parseArgs({
  options: {
    filter: { type: 'string' },
    cases: { type: 'string' },
    json: { type: 'string' },
    opset: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    'write-expected': { type: 'boolean', default: false },
  },
});

const filter = args.filter ? new RegExp(args.filter) : undefined;
if (args.cases === undefined) ensureCases();
const cases = args.cases ?? CASES_DIR;
const names = listCases(cases).filter((name) => !filter || filter.test(name));
const gpu = await openGpu();
const results: CaseResult[] = [];
const started = performance.now();
for (const name of names) {
  const result = await runCase(gpu, cases, name, { opset: args.opset === undefined ? undefined : Number(args.opset) });
  results.push(result);
  if (args.verbose || result.outcome !== 'pass') console.log(`${result.outcome.padEnd(10)} ${name}${result.detail ? `: ${result.detail}` : ''}`);
}
gpu.destroy();

const summary = summarize(results);
const percent = (count: number) => `${((100 * count) / Math.max(1, summary.tensorCases)).toFixed(1)}%`;
console.log(`\n${summary.passed} of ${summary.tensorCases} tensor cases pass (${percent(summary.passed)}); `
  + `${summary.byOutcome.mismatch} mismatch, ${summary.byOutcome.refused} refused, ${summary.byOutcome.failed} failed; `
  + `${summary.byOutcome['non-tensor']} more take or give sequences, optionals or maps, ${summary.byOutcome['faulty-case']} have faulty data`
  + `${args.opset ? `, ${summary.byOutcome['no-reference']} have no reference at opset ${args.opset}` : ''}. `
  + `${((performance.now() - started) / 1000).toFixed(0)} s.`);
if (args['write-expected']) {
  if (filter) throw new Error('--write-expected needs the whole suite: drop --filter');
  const cases = Object.fromEntries(results.filter(({ outcome }) => outcome !== 'pass').map(({ name, outcome, detail }) => [name, { outcome, detail }]));
  const file = join(import.meta.dirname, expectedFailuresFile(args.opset === undefined ? undefined : Number(args.opset)));
  writeFileSync(file, `${JSON.stringify({ about: 'Conformance cases that do not pass, with why; see docs/executor.md "Conformance".', cases }, null, 2)}\n`);
  console.log(`wrote ${Object.keys(cases).length} expected failures to ${file}`);
}
if (args.json) writeFileSync(args.json, `${JSON.stringify({ summary, results }, null, 2)}\n`);

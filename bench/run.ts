/**
 * Runs the benches, each as its own process, one after another (they would share the cores
 * otherwise), printing each one's tables as it goes, and collects their rows and figures.
 *
 *   npm run bench -- [suite…] [--quick] [--json FILE] [--with 'SUITE=ARGS']…
 *
 * Suites (all but soak when none is named): kernels, e2e, large-tensor, batching, first-request,
 * cpu, llm, registry, soak. --quick passes --quick to each (minutes instead of tens of minutes); --with
 * adds arguments to one suite's command line (e.g. --with 'kernels=--gemm simd,tiled'); --json
 * writes every suite's rows, figures and notes with the environment (adapter, driver, CPU,
 * versions, git commit).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeEnvironment, environmentLines } from './lib/environment.ts';
import { RESULT_FILE_ENV, type SuiteResult } from './lib/report.ts';

interface Suite {
  script: string;
  what: string;
  /** Arguments --quick adds; default ['--quick']. */
  quickArgs?: string[];
  /** Run when no suite is named. */
  byDefault: boolean;
}

export const SUITES: Record<string, Suite> = {
  kernels: { script: 'executor.bench.ts', what: 'kernels and whole models, ours vs onnxruntime WebGPU and CPU', byDefault: true },
  e2e: { script: 'e2e-load.bench.ts', what: 'router + executor load, batching on and off, closed and open loop', byDefault: true },
  'large-tensor': { script: 'large-tensor.bench.ts', what: 'a 1 MiB-in, 1 MiB-out matmul in process, by the executor alone, through the router, vs onnxruntime WebGPU', byDefault: true },
  batching: { script: 'batching.bench.ts', what: 'batching on vs off side by side, interleaved; the Iris latency budget (the gate\'s load)', byDefault: true },
  'first-request': { script: 'first-request.bench.ts', what: 'first request of each batch size after ModelReady vs steady state', byDefault: true },
  cpu: { script: 'cpu.bench.ts', what: 'router and executor instructions per request (callgrind) vs a bare grpc-js server', byDefault: true },
  llm: { script: 'llm.bench.ts', what: 'text generation: time to first token, decode and aggregate tokens/s vs onnxruntime', quickArgs: ['--batches', '4,16'], byDefault: true },
  registry: { script: 'registry.bench.ts', what: 'registry upload and download speed and memory vs copying and hashing the file', byDefault: true },
  // Ten minutes by default; it prints its table only.
  soak: { script: 'soak.bench.ts', what: 'minutes of load, RSS of each service over time', quickArgs: ['--minutes', '1'], byDefault: false },
};

export interface SuiteRun extends SuiteResult {
  command: string[];
  seconds: number;
  exitCode: number | null;
}

/** Runs one suite's bench with `extra` arguments; resolves with what it published (or empty). */
export async function runSuite(name: string, extra: string[], quick: boolean): Promise<SuiteRun> {
  const suite = SUITES[name];
  const dir = await mkdtemp(join(tmpdir(), 'nexus-bench-run-'));
  const resultFile = join(dir, 'result.json');
  const command = [resolve(import.meta.dirname, suite.script), ...(quick ? suite.quickArgs ?? ['--quick'] : []), ...extra];
  const started = performance.now();
  console.log(`\n## ${name}: ${suite.what}\n\n$ node bench/${[suite.script, ...command.slice(1)].join(' ')}\n`);
  const child = spawn(process.execPath, command, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, [RESULT_FILE_ENV]: resultFile, NEXUS_LOG_LEVEL: process.env.NEXUS_LOG_LEVEL ?? 'warn' },
  });
  // A signal to the runner (a CI timeout, Ctrl-C) goes on to the bench, which stops what it
  // started; then the runner stops too.
  let interrupted: NodeJS.Signals | undefined;
  const forward = (signal: NodeJS.Signals) => {
    interrupted = signal;
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const exitCode = await new Promise<number | null>((done) => child.once('exit', (code, signal) => done(code ?? (signal ? 128 : null))));
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  if (interrupted) process.exit(interrupted === 'SIGINT' ? 130 : 143);
  let result: SuiteResult = { suite: name, rows: [], figures: [], notes: ['printed its tables only'] };
  try {
    result = JSON.parse(await readFile(resultFile, 'utf8')) as SuiteResult;
  } catch {
    if (exitCode !== 0) result.notes = [`exited with ${exitCode} before writing its result`];
  }
  await rm(dir, { recursive: true, force: true });
  return { ...result, command: ['node', `bench/${suite.script}`, ...command.slice(1)], seconds: (performance.now() - started) / 1000, exitCode };
}

/** `--with 'SUITE=ARGS'` as SUITE → its arguments (split on spaces). */
function extraArguments(withFlags: string[]): Map<string, string[]> {
  const extras = new Map<string, string[]>();
  for (const flag of withFlags) {
    const at = flag.indexOf('=');
    const name = flag.slice(0, at);
    if (at <= 0 || !SUITES[name]) throw new Error(`--with '${flag}': expected SUITE=ARGS with SUITE one of ${Object.keys(SUITES).join(', ')}`);
    extras.set(name, [...extras.get(name) ?? [], ...flag.slice(at + 1).split(' ').filter(Boolean)]);
  }
  return extras;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { json: { type: 'string' }, quick: { type: 'boolean', default: false }, with: { type: 'string', multiple: true, default: [] } },
  });
  const unknown = positionals.filter((name) => !SUITES[name]);
  if (unknown.length) {
    console.error(`unknown suite ${unknown.join(', ')}; the suites: ${Object.entries(SUITES).map(([name, suite]) => `\n  ${name.padEnd(14)} ${suite.what}`).join('')}`);
    process.exit(2);
  }
  const names = positionals.length ? positionals : Object.keys(SUITES).filter((name) => SUITES[name].byDefault);
  const extras = extraArguments(values.with);
  const environment = await describeEnvironment();
  console.log('# NexusML benches\n');
  for (const line of environmentLines(environment)) console.log(`- ${line}`);
  const runs: SuiteRun[] = [];
  for (const name of names) runs.push(await runSuite(name, extras.get(name) ?? [], values.quick));
  console.log('\n## figures\n\n| suite | figure | value | took |\n|---|---|---:|---:|');
  for (const run of runs) {
    for (const figure of run.figures) console.log(`| ${run.suite} | ${figure.label} | ${figure.value.toPrecision(4)} ${figure.unit} | ${run.seconds.toFixed(0)} s |`);
    if (run.exitCode !== 0) console.log(`| ${run.suite} | FAILED (exit ${run.exitCode}) | | ${run.seconds.toFixed(0)} s |`);
  }
  if (values.json) {
    await writeFile(values.json, `${JSON.stringify({ environment, quick: values.quick, suites: runs }, null, 2)}\n`);
    console.log(`\nwrote ${values.json}`);
  }
  process.exit(runs.every((run) => run.exitCode === 0) ? 0 : 1);
}

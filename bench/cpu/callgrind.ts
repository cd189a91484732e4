/**
 * Runs a Node program under `valgrind --tool=callgrind` and counts the instructions it executes
 * between marks the driver places. A mark is SIGUSR2: a module preloaded into the program
 * answers it by calling `v8.setFlagsFromString('')`, and callgrind is told to dump its counters
 * on entering the C++ function behind that call (--dump-before), so each dump part holds exactly
 * the instructions between two marks: start-up and shutdown fall outside the parts measured.
 *
 * Instrumentation is off until `begin()` (callgrind_control -i on): start-up runs about four
 * times faster that way, and nothing before it is counted anyway.
 *
 * Instruction counts, unlike CPU time, do not depend on how busy the machine is. What still
 * varies from run to run is kept small: V8 runs its GC and JIT on the main thread
 * (--single-threaded), with fixed hash and random seeds.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { exitOnSignals } from '../lib/exit.ts';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The C++ function behind `v8.setFlagsFromString`, nothing else in Node calls it. */
const MARK_FUNCTION = 'node::v8_utils::SetFlagsFromString*';
/**
 * Preloaded with --import: a mark on SIGUSR2 (the empty flag string changes nothing). It also
 * slows the event-loop delay monitor prom-client starts (nexus_process_eventloop_lag_*) from a
 * sample every 10 ms to one a second: each sample wakes the event loop, a few thousand
 * instructions a time, so at 10 ms a process at rest runs ~300 000 instructions a second, and a
 * part's count would follow its wall time (how busy the machine is) rather than its requests.
 */
const MARKER = `data:text/javascript,${encodeURIComponent([
  "import v8 from 'node:v8';",
  "import perf from 'node:perf_hooks';",
  'const monitor = perf.monitorEventLoopDelay;',
  'perf.monitorEventLoopDelay = (options) => monitor({ ...options, resolution: 1000 });',
  "process.on('SIGUSR2', () => v8.setFlagsFromString(''));",
].join('\n'))}`;

/**
 * Node flags that make a run's instruction count repeat (see the header), and tier hot code up
 * to TurboFan after a tenth of the calls V8 waits for by default: a process under callgrind
 * serves about ten requests a second, so it must reach the steady state a server reaches
 * within its first seconds of load in a few hundred requests.
 */
export const DETERMINISTIC_NODE_FLAGS = [
  '--single-threaded', '--hash-seed=1', '--random-seed=1',
  // Garbage collection driven by allocation alone: no time-sliced incremental marking, no idle or
  // memory-reducing collections, no bytecode aged out by collections, and a small fixed young
  // generation, so each part holds several scavenges rather than none or one big one (with 16 MiB
  // a part's count jumped by half whenever a scavenge fell in it).
  '--predictable-gc-schedule', '--no-incremental-marking', '--no-memory-reducer', '--no-flush-bytecode', '--no-flush-baseline-code',
  '--min-semi-space-size=1', '--max-semi-space-size=1',
  '--invocation-count-for-turbofan=300', '--invocation-count-for-maglev=40', '--minimum-invocations-after-ic-update=50',
  '--invocation-count-for-osr=50', '--invocation-count-for-maglev-osr=10',
];

export interface MeasuredProcess {
  readonly process: ChildProcess;
  /** Everything the program printed on stdout so far. */
  readonly stdout: () => string;
  /** Turns instrumentation on and places the first mark: counting starts here. */
  begin(): Promise<void>;
  /** Places a mark and resolves once callgrind has dumped the part it closes. */
  mark(): Promise<void>;
  /** Stops the program (SIGTERM) and resolves with the counts of each part between marks. */
  stop(): Promise<PartCount[]>;
}

export interface MeasureOptions {
  /** The program and its arguments, after `node`. */
  args: string[];
  /** Directory the callgrind output files go to. */
  outDir: string;
  /** File-name stem of the output files. */
  name: string;
  env?: NodeJS.ProcessEnv;
  /** Run without valgrind (marks do nothing, stop() resolves []), for a quick look at the harness. */
  plain?: boolean;
}

/** What one part between two marks executed. */
export interface PartCount {
  /** Every instruction of the process (all threads). */
  instructions: number;
  /** Of those, the instructions inside V8's compilers (lazy, Sparkplug, Maglev, TurboFan, OSR). */
  compilerInstructions: number;
}

/**
 * V8's compiler entry points. Compiling is a one-off cost a server pays in its first seconds and
 * a process under callgrind is still paying after hundreds of requests, at moments that move
 * whenever the code changes: the figures leave it out.
 */
const COMPILER_ENTRY = /^\S*:v8::internal::Compiler::(?:Compile|CompileOptimized|CompileOptimizedOSR|CompileBaseline|CompileSharedWithBaseline)\(/;

/**
 * A part's counts from `callgrind_annotate --inclusive=yes` output: the program total and the
 * inclusive cost of the compiler entry points.
 */
export function partCountOf(annotated: string): PartCount {
  let instructions: number | undefined;
  let compilerInstructions = 0;
  for (const line of annotated.split('\n')) {
    const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!match) continue;
    const count = Number(match[1].replaceAll(',', ''));
    if (match[2].startsWith('PROGRAM TOTALS')) instructions = count;
    else if (COMPILER_ENTRY.test(match[2])) compilerInstructions += count;
  }
  if (instructions === undefined) throw new Error('callgrind_annotate printed no PROGRAM TOTALS');
  return { instructions, compilerInstructions };
}

async function countPart(path: string): Promise<PartCount> {
  const { stdout } = await promisify(execFile)('callgrind_annotate', ['--inclusive=yes', '--threshold=100', path], { maxBuffer: 256 * 1024 * 1024 });
  return partCountOf(stdout);
}

export function hasValgrind(): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, 'valgrind')));
}

/** Starts `node <args>` under callgrind, with the marker preloaded. */
export function startMeasured(options: MeasureOptions): MeasuredProcess {
  const stem = join(options.outDir, options.name);
  const nodeArgs = [...DETERMINISTIC_NODE_FLAGS, '--import', MARKER, ...options.args];
  const command = options.plain ? process.execPath : 'valgrind';
  const args = options.plain ? nodeArgs : [
    '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${stem}.%p`, `--dump-before=${MARK_FUNCTION}`,
    // Functions are all that is read: no per-instruction or per-line tables.
    '--dump-instr=no', '--dump-line=no', '--compress-strings=no',
    process.execPath, ...nodeArgs,
  ];
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  // However this process ends (a CI timeout, Ctrl-C), the measured one must not outlive it.
  exitOnSignals();
  const killChild = () => child.kill('SIGKILL');
  process.once('exit', killChild);
  child.once('exit', () => process.off('exit', killChild));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  let marks = 0;
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const partPath = (part: number) => `${stem}.${child.pid}.${part}`;
  const mark = async () => {
    marks += 1;
    if (options.plain) return;
    child.kill('SIGUSR2');
    for (const started = Date.now(); !existsSync(partPath(marks));) {
      if (child.exitCode !== null) throw new Error(`${options.name} exited before mark ${marks}:\n${stderr.slice(-4000)}`);
      if (Date.now() - started > 120_000) throw new Error(`${options.name}: callgrind wrote no part for mark ${marks}`);
      await new Promise((wake) => setTimeout(wake, 20));
    }
  };
  return {
    process: child,
    stdout: () => stdout,
    async begin() {
      if (!options.plain) await promisify(execFile)('callgrind_control', ['--instr=on', String(child.pid)]);
      await mark();
    },
    mark,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (options.plain) return [];
      if (code !== 0) throw new Error(`${options.name} exited with ${code}:\n${stderr.slice(-4000)}`);
      const written = readdirSync(options.outDir).filter((file) => file.startsWith(`${options.name}.${child.pid}.`));
      // Something else in the program calling v8.setFlagsFromString would add parts and shift them.
      if (written.length !== marks) throw new Error(`${options.name}: ${marks} marks but ${written.length} dump parts`);
      // Part k holds what ran between mark k - 1 and mark k; part 1, up to begin(), is empty.
      return Promise.all(Array.from({ length: marks - 1 }, (_, index) => countPart(partPath(index + 2))));
    },
  };
}

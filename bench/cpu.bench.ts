/**
 * CPU per request as instructions, counted by callgrind: what the router and the executor
 * execute for one Iris request, against a bare grpc-js server of the same API measured in the
 * same run (see cpu/request-instructions.ts for the set-up, cpu/callgrind.ts for how parts are
 * counted). Instruction counts do not depend on how busy the machine is, so the CI gate holds
 * them to a ceiling.
 *
 *   node bench/cpu.bench.ts [--warmup 600] [--requests 200] [--samples 3] [--idle 10] [--quick] [--plain]
 *
 * Each process's figure is its lowest part: a part can only be inflated (a reconnection, a
 * collection, a machine so busy a keepalive lapses), never deflated, so the lowest is the
 * steady cost and a regression raises every part.
 *
 * --quick: 3 parts of 120 after 500 warm-up requests (the gate's setting). --idle: seconds at
 * rest that measure the per-second work taken out of each part. --plain runs the harness without
 * valgrind (seconds instead of minutes; counts nothing).
 */
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { hasValgrind } from './cpu/callgrind.ts';
import { measureRequestInstructions, type PerRequest } from './cpu/request-instructions.ts';
import { cell, publish, type BenchRow, type Figure } from './lib/report.ts';
import { median } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    warmup: { type: 'string' },
    requests: { type: 'string' },
    samples: { type: 'string' },
    idle: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    plain: { type: 'boolean', default: false },
  },
});
const warmup = Number(args.warmup ?? (args.quick ? 500 : 600));
const requests = Number(args.requests ?? (args.quick ? 120 : 200));
const samples = Number(args.samples ?? 3);

if (!args.plain && !hasValgrind()) {
  const note = 'valgrind is not installed (Debian: apt-get install -y valgrind): instructions per request not measured';
  console.log(`- ${note}`);
  publish({ suite: 'cpu', rows: [], figures: [], notes: [note] });
  process.exit(0);
}

const counts = await measureRequestInstructions({
  warmup, requests, samples, idleSeconds: Number(args.idle), plain: args.plain, log: (line) => console.error(`cpu: ${line}`),
});
if (args.plain) {
  console.log(`- harness ran without valgrind in ${counts.seconds.toFixed(1)} s; nothing counted`);
  process.exit(0);
}

const thousands = (value: number) => (Number.isFinite(value) ? `${(value / 1000).toFixed(1)}k` : '-');
const lowest = (values: number[]) => Math.min(...values);
const echo = lowest(counts.echo.work);
const table = new Table({
  style: { head: [], border: [] },
  head: ['process', 'instructions / request (lowest part)', 'per part', 'all (JIT, per-second work)', 'at rest / s', 'bare grpc-js server', 'ratio to it'],
});
const rows: BenchRow[] = [];
const figures: Figure[] = [];
const add = (name: string, id: string, measured: PerRequest) => {
  const work = lowest(measured.work);
  table.push([name, thousands(work), measured.work.map(thousands).join(' / '), thousands(median(measured.total)), thousands(measured.idlePerSecond),
    thousands(echo), `${(work / echo).toFixed(2)}x`]);
  rows.push({ process: name, instructionsPerRequest: cell(work), all: cell(median(measured.total)), idlePerSecond: cell(measured.idlePerSecond),
    echoPerRequest: cell(echo), ratioToEcho: cell(work / echo),
    parts: measured.work.map((value) => Math.round(value)).join(' ') });
  figures.push({ id: `cpu.${id}.instructions_per_request`, value: work, unit: 'instructions', better: 'lower', label: `${name}: instructions per Iris request` });
};
add('router', 'router', counts.router);
add('executor (null GPU)', 'executor', counts.executor);
console.log(table.toString());
const notes = [
  `${samples} parts of ${requests} requests after ${warmup} warm-up, one request at a time; the lowest part, outside V8's compilers, `
  + `less the instructions each process runs per second at rest (${args.idle} s measured) times the part's length. Took ${counts.seconds.toFixed(0)} s under callgrind.`,
  'The executor runs on Dawn\'s null backend: its host-side work per batch (decode, upload, encode, submit, read back, answer) without any GPU time.',
];
for (const note of notes) console.log(`- ${note}`);
publish({ suite: 'cpu', rows, figures, notes });
process.exit(0);

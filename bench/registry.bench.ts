/**
 * Registry transfer speed and memory: a large ONNX model stored (`nexus store`) and pulled back
 * (`nexus pull`) through a registry started by `nexus up` (TLS and authentication on, as
 * deployed), against copying and hashing the same file on the same disk in the same run (the
 * registry hashes what it streams, so disk plus sha256 bounds it). Rounds alternate the three;
 * the table shows medians. The registry's peak resident memory (VmHWM) says whether an upload
 * is streamed or held whole.
 *
 *   node bench/registry.bench.ts [--mib 256] [--rounds 3] [--quick]
 *
 * --quick: 64 MiB, 2 rounds. Times include the CLI's start (a store of a tiny model measures it).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { GraphBuilder } from '../services/onnx/index.ts';
import { trainIrisModel } from '../services/examples/iris/train.ts';
import { cell, publish } from './lib/report.ts';
import { median } from './lib/stats.ts';
import { startUp, stopUp } from './nexus-up.ts';

const { values: args } = parseArgs({
  options: { mib: { type: 'string' }, rounds: { type: 'string' }, quick: { type: 'boolean', default: false } },
});
const MIB = Number(args.mib ?? (args.quick ? 64 : 256));
const ROUNDS = Number(args.rounds ?? (args.quick ? 2 : 3));
const CLI = join(resolve(import.meta.dirname, '..'), 'services/cli/main.ts');

/** A MatMul whose [MIB * 256, 1024] FP32 weight makes the file MIB MiB (plus a few hundred bytes). */
function largeModel(): Uint8Array {
  const rows = MIB * 256;
  const weights = new Float32Array(rows * 1024);
  for (let index = 0; index < weights.length; index += 1024) weights[index] = index;
  return new GraphBuilder('large').input('x', 'FP32', [1, rows]).initializer('w', 'FP32', [rows, 1024], weights)
    .node('MatMul', ['x', 'w'], ['y']).output('y', 'FP32', [1, 1024]).toBytes();
}

async function seconds(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

function cli(args: string[], home: string): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NEXUS_HOME: home } });
  return new Promise((done, reject) => child.once('exit', (code) => (code === 0 ? done() : reject(new Error(`nexus ${args[0]} exited with ${code}`)))));
}

async function hashFile(path: string): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  hash.digest();
}

/** Peak and current resident memory of a process, in MiB (Linux /proc). */
async function memoryOf(pid: number): Promise<{ peakMiB: number; nowMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakMiB: kib('VmHWM') / 1024, nowMiB: kib('VmRSS') / 1024 };
}

const dataDir = await mkdtemp(join(tmpdir(), 'nexus-registry-bench-'));
const cluster = await startUp(dataDir);
try {
  const registryPid = Number(await readFile(join(dataDir, 'run', 'registry.pid'), 'utf8'));
  const model = join(dataDir, 'large.onnx');
  await writeFile(model, largeModel());
  const tiny = join(dataDir, 'tiny.onnx');
  await writeFile(tiny, trainIrisModel().onnx);
  const store = (path: string, name: string) => cli(['store', path, name, '--registry', cluster.registry, '--allow-dirty'], dataDir);
  const before = await memoryOf(registryPid);
  const cliStart = await seconds(() => store(tiny, 'tiny'));
  const timings = { upload: [] as number[], download: [] as number[], copy: [] as number[], hash: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    console.error(`registry: round ${round + 1}/${ROUNDS}`);
    timings.upload.push(await seconds(() => store(model, 'large')));
    const pulled = join(dataDir, `pulled-${round}`);
    timings.download.push(await seconds(() => cli(['pull', 'large', pulled, '--registry', cluster.registry], dataDir)));
    await rm(pulled, { recursive: true, force: true });
    const copy = join(dataDir, 'copy.onnx');
    timings.copy.push(await seconds(() => copyFile(model, copy)));
    timings.hash.push(await seconds(() => hashFile(copy)));
    await rm(copy);
  }
  const after = await memoryOf(registryPid);
  const rate = (values: number[]) => MIB / median(values);
  const peer = MIB / (median(timings.copy) + median(timings.hash));
  const table = new Table({ style: { head: [], border: [] }, head: ['transfer', 'MiB/s', 'seconds (median)', 'copy + sha256 of the file, MiB/s', 'ratio to it'] });
  table.push(['nexus store (upload)', rate(timings.upload).toFixed(0), median(timings.upload).toFixed(2), peer.toFixed(0), `${(rate(timings.upload) / peer).toFixed(2)}x`]);
  table.push(['nexus pull (download)', rate(timings.download).toFixed(0), median(timings.download).toFixed(2), peer.toFixed(0), `${(rate(timings.download) / peer).toFixed(2)}x`]);
  console.log(table.toString());
  const notes = [
    `${MIB} MiB model, ${ROUNDS} rounds; a store of a ${(trainIrisModel().onnx.byteLength / 1024).toFixed(1)} KiB model (the CLI's start and one round trip) took ${cliStart.toFixed(2)} s and is inside each time.`,
    `registry resident memory: ${before.nowMiB.toFixed(0)} MiB before, peak ${after.peakMiB.toFixed(0)} MiB over the run (${(after.peakMiB - before.peakMiB).toFixed(0)} MiB above its peak before), ${after.nowMiB.toFixed(0)} MiB after.`,
  ];
  for (const note of notes) console.log(`- ${note}`);
  publish({
    suite: 'registry',
    rows: [
      { transfer: 'upload', mibPerSecond: cell(rate(timings.upload)), peerMibPerSecond: cell(peer), ratio: cell(rate(timings.upload) / peer) },
      { transfer: 'download', mibPerSecond: cell(rate(timings.download)), peerMibPerSecond: cell(peer), ratio: cell(rate(timings.download) / peer) },
      { transfer: 'memory', registryPeakMiB: cell(after.peakMiB), registryPeakGrowthMiB: cell(after.peakMiB - before.peakMiB), modelMiB: MIB },
    ],
    figures: [
      { id: 'registry.upload_over_copy', value: rate(timings.upload) / peer, unit: 'x', better: 'higher', label: `nexus store MiB/s / copy+sha256 MiB/s (${MIB} MiB)` },
      { id: 'registry.download_over_copy', value: rate(timings.download) / peer, unit: 'x', better: 'higher', label: `nexus pull MiB/s / copy+sha256 MiB/s (${MIB} MiB)` },
      { id: 'registry.peak_rss_growth_mib', value: after.peakMiB - before.peakMiB, unit: 'MiB', better: 'lower', label: `registry peak RSS growth moving ${MIB} MiB` },
    ],
    notes,
  });
} finally {
  await stopUp(cluster);
  await rm(dataDir, { recursive: true, force: true });
}
process.exit(0);

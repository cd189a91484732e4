/**
 * The executor's kernels and two whole models against onnxruntime-node on the same machine:
 * its WebGPU execution provider (which brings its own Dawn, so it runs on the same Vulkan
 * adapter as ours when there is only one) and its CPU provider.
 *
 *   node bench/executor.bench.ts [--runs 5] [--warmup 2] [--rounds 2] [--only matmul] [--quick]
 *                                [--gemm default|simd|tiled|simd,tiled] [--peak-tflops 67]
 *
 * Every case is an ONNX model built in code and run whole by each engine: inputs uploaded,
 * outputs read back, so the columns time the same work. Each engine is warmed up, then ours
 * (each GEMM algorithm asked for) and the WebGPU EP take turns running blocks of `--runs` runs
 * (fewer for the 1024³ product, which takes seconds on a software GPU; more for cases of a few
 * milliseconds, so a block lasts MIN_BLOCK_MS) for `--rounds` rounds,
 * then the CPU EP runs its blocks; the table shows medians, all measured in this one run. Ours
 * also reports the GPU time of its compute pass (timestamp queries) when the device has them,
 * and, where the GPU's fp32 peak is known (by its name, or --peak-tflops), the share of it.
 * --quick keeps the cases whose ratio is steady on a loaded machine (the CI gate's set).
 *
 * Prints one markdown table, then notes (adapter, what could not run and why).
 */
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { openGpu } from '../services/executor/gpu/index.ts';
import type { GemmAlgorithm } from '../services/executor/kernels/index.ts';
import { compileOnnxModel, type CompiledModel } from '../services/executor/runtime/index.ts';
import { gemmAlgorithmFor } from '../services/executor/runtime/model-runtime.ts';
import { CASES, maxRelativeError, type BenchCase } from './kernels/cases.ts';
import { fp32PeakTflops } from './lib/gpu-peaks.ts';
import { cell, publish, type BenchRow, type Figure } from './lib/report.ts';
import { median } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    gemm: { type: 'string', default: 'default' },
    'peak-tflops': { type: 'string' },
  },
});
const RUNS = Number(args.runs ?? (args.quick ? 3 : 5));
const WARMUP = Number(args.warmup ?? 2);
/** Timed blocks per engine, alternating between the engines (see timeInBlocks). */
const ROUNDS = Number(args.rounds ?? (args.quick ? 5 : 2));

interface Timing {
  medianMs: number;
  /** The median of each round's block, round by round (engines in one round ran back to back). */
  roundMs: number[];
  /** Ours only: the median GPU time of the compute pass (timestamp queries). */
  gpuMs?: number;
  output?: Float32Array;
}

function runsFor(benchCase: BenchCase): number {
  return benchCase.heavy ? Math.max(3, Math.ceil(RUNS / 2)) : RUNS;
}

/**
 * A block lasts at least this long (runs added up to MAX_BLOCK_RUNS): five runs of a 1 ms batch
 * are 5 ms, over which one descheduling on a shared machine moves the median.
 */
const MIN_BLOCK_MS = 30;
const MAX_BLOCK_RUNS = 40;

/** One engine's runner: one whole run, its output and (ours) its GPU milliseconds. */
type Runner = () => Promise<{ output: Float32Array; gpuMs?: number }>;

function oursRunner(model: CompiledModel, benchCase: BenchCase): Runner {
  return async () => {
    const result = await model.run(benchCase.inputs);
    return { output: result.outputs.values().next().value!.data as Float32Array, gpuMs: result.gpuNs === undefined ? undefined : result.gpuNs / 1e6 };
  };
}

function ortRunner(session: ort.InferenceSession, benchCase: BenchCase): Runner {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of benchCase.inputs) feeds[name] = new ort.Tensor('float32', tensor.data as Float32Array, tensor.shape);
  return async () => ({ output: (await session.run(feeds))[session.outputNames[0]].data as Float32Array });
}

/**
 * Warms every engine up, then times each in blocks of `runs` back-to-back runs, the engines
 * taking turns for ROUNDS blocks each. Back to back, each engine runs in its steady state (one
 * run right after another engine's is slowed by that engine's threads winding down, so each
 * block starts with an untimed run); taking turns, a machine that is busier for a while (it is
 * shared) slows the engines alike.
 */
async function timeInBlocks(runners: Runner[], minimumRuns: number): Promise<Timing[]> {
  const outputs: Float32Array[] = [];
  let slowestMs = 0;
  for (const [index, runner] of runners.entries()) {
    for (let run = 0; run < WARMUP; run++) {
      const start = performance.now();
      outputs[index] = (await runner()).output;
      if (run === WARMUP - 1) slowestMs = Math.max(slowestMs, performance.now() - start);
    }
  }
  // The same count for every engine, set by the slowest, so each block of either lasts long enough.
  const runs = Math.max(minimumRuns, Math.min(MAX_BLOCK_RUNS, Math.ceil(MIN_BLOCK_MS / Math.max(slowestMs, 1e-3))));
  const wall = runners.map((): number[] => []);
  const rounds = runners.map((): number[] => []);
  const gpu = runners.map((): number[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, runner] of runners.entries()) {
      outputs[index] ??= (await runner()).output;
      if (runners.length > 1) await runner();
      const block: number[] = [];
      for (let run = 0; run < runs; run++) {
        const start = performance.now();
        const result = await runner();
        block.push(performance.now() - start);
        if (result.gpuMs !== undefined) gpu[index].push(result.gpuMs);
      }
      wall[index].push(...block);
      rounds[index].push(median(block));
    }
  }
  return runners.map((_, index) => ({
    medianMs: median(wall[index]), roundMs: rounds[index], gpuMs: gpu[index].length ? median(gpu[index]) : undefined, output: outputs[index],
  }));
}

// ---------------------------------------------------------------------------------------------

const gpu = await openGpu();
const defaultAlgorithm = gemmAlgorithmFor(gpu, undefined);
const algorithms: GemmAlgorithm[] = args.gemm === 'default' ? [defaultAlgorithm]
  : args.gemm.split(',').map((name) => {
    if (name !== 'simd' && name !== 'tiled') throw new Error(`--gemm takes default, simd, tiled or simd,tiled; got '${name}'`);
    return gemmAlgorithmFor(gpu, name);
  }).filter((algorithm, index, all) => all.indexOf(algorithm) === index);
const peak = fp32PeakTflops(gpu.description, args['peak-tflops'] === undefined ? undefined : Number(args['peak-tflops']));
const notes: string[] = [`Our adapter: ${gpu.description}; timestamp queries: ${gpu.hasTimestamps ? 'yes' : 'no'}; GEMM algorithm by default: ${defaultAlgorithm}.`];

let ortWebGpuProblem: string | undefined;
async function ortSession(onnx: Uint8Array, provider: 'webgpu' | 'cpu'): Promise<ort.InferenceSession | undefined> {
  if (provider === 'webgpu' && ortWebGpuProblem) return undefined;
  try {
    return await ort.InferenceSession.create(onnx, { executionProviders: [provider], graphOptimizationLevel: 'all' });
  } catch (error) {
    if (provider === 'cpu') throw error;
    ortWebGpuProblem = `onnxruntime-node ${ort.env.versions.common} WebGPU EP failed: ${(error as Error).message}`;
    return undefined;
  }
}

interface Row {
  benchCase: BenchCase;
  algorithm: GemmAlgorithm;
  ours: Timing;
  webgpu?: Timing;
  cpu: Timing;
  error: number;
}

const rows: Row[] = [];
for (const make of CASES) {
  const benchCase = make();
  if (args.only && !benchCase.name.includes(args.only)) continue;
  if (args.quick && !benchCase.quick) continue;
  console.error(`${benchCase.name}: compiling`);
  const models = await Promise.all(algorithms.map((gemmAlgorithm) => compileOnnxModel(gpu, benchCase.onnx, { precision: 'fp32', gemmAlgorithm })));
  const webgpuSession = await ortSession(benchCase.onnx, 'webgpu');
  const cpuSession = (await ortSession(benchCase.onnx, 'cpu'))!;
  const gpuRunners = models.map((model) => oursRunner(model, benchCase));
  if (webgpuSession) gpuRunners.push(ortRunner(webgpuSession, benchCase));
  console.error(`${benchCase.name}: timing`);
  const timings = await timeInBlocks(gpuRunners, runsFor(benchCase));
  // The CPU EP runs on its own: its thread pool keeps spinning for a while after each run,
  // which would slow whichever GPU engine ran next on the same cores.
  const [cpu] = await timeInBlocks([ortRunner(cpuSession, benchCase)], runsFor(benchCase));
  for (const model of models) model.dispose();
  await webgpuSession?.release();
  await cpuSession.release();
  const webgpu = webgpuSession ? timings[models.length] : undefined;
  for (const [index, algorithm] of algorithms.entries()) {
    rows.push({ benchCase, algorithm, ours: timings[index], webgpu, cpu, error: maxRelativeError(timings[index].output!, cpu.output!) });
  }
}

const ms = (value: number | undefined) => (value === undefined ? '—' : value < 10 ? value.toFixed(2) : value.toFixed(1));
const ratioOf = (slower: number | undefined, ours: number) => (slower === undefined ? undefined : slower / ours);
const ratio = (value: number | undefined) => (value === undefined ? '—' : `${value.toFixed(2)}×`);
const gflopsOf = (flops: number | undefined, milliseconds: number | undefined) =>
  (flops === undefined || milliseconds === undefined ? undefined : flops / milliseconds / 1e6);
const gflops = (value: number | undefined) => (value === undefined ? '—' : value.toFixed(2));
const peakShare = (value: number | undefined) => (value === undefined || !peak ? undefined : (value / (peak.tflops * 1000)) * 100);

console.log('| case | GEMM | ours ms | ours GPU ms | ORT WebGPU ms | ORT CPU ms | WebGPU/ours | CPU/ours | GFLOPS ours | % fp32 peak | GFLOPS ORT WebGPU | max rel. err |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const benchRows: BenchRow[] = [];
const figures: Figure[] = [];
for (const row of rows) {
  const { benchCase } = row;
  const webgpuRatio = ratioOf(row.webgpu?.medianMs, row.ours.medianMs);
  const cpuRatio = ratioOf(row.cpu.medianMs, row.ours.medianMs);
  const oursGflops = gflopsOf(benchCase.flops, row.ours.medianMs);
  const share = peakShare(oursGflops);
  console.log(`| ${[
    benchCase.name, row.algorithm, ms(row.ours.medianMs), ms(row.ours.gpuMs), ms(row.webgpu?.medianMs), ms(row.cpu.medianMs),
    ratio(webgpuRatio), ratio(cpuRatio), gflops(oursGflops), share === undefined ? '—' : `${share.toFixed(1)}%`,
    gflops(gflopsOf(benchCase.flops, row.webgpu?.medianMs)), row.error.toExponential(1),
  ].join(' | ')} |`);
  benchRows.push({
    case: benchCase.name, id: benchCase.id, gemm: row.algorithm, oursMs: cell(row.ours.medianMs), oursGpuMs: cell(row.ours.gpuMs),
    ortWebGpuMs: cell(row.webgpu?.medianMs), ortCpuMs: cell(row.cpu.medianMs), webgpuOverOurs: cell(webgpuRatio), cpuOverOurs: cell(cpuRatio),
    gflopsOurs: cell(oursGflops), fp32PeakPercent: cell(share), gflopsOrtWebGpu: cell(gflopsOf(benchCase.flops, row.webgpu?.medianMs)),
    maxRelativeError: cell(row.error),
  });
  if (row.webgpu && row.algorithm === defaultAlgorithm) {
    // Round by round, the two engines ran minutes apart at most: the median of those ratios
    // holds up better on a shared machine than the ratio of the overall medians.
    const perRound = row.webgpu.roundMs.map((webgpuMs, round) => webgpuMs / row.ours.roundMs[round]);
    figures.push({ id: `kernels.${benchCase.id}.webgpu_over_ours`, value: median(perRound), unit: 'x', better: 'higher', label: `${benchCase.name}: ORT WebGPU ms / ours` });
    benchRows.at(-1)!.webgpuOverOursPerRound = perRound.map((value) => value.toFixed(2)).join(' ');
  }
}
console.log('');
notes.push(
  `Medians of ${ROUNDS} blocks of ${RUNS} runs (1024³: ${Math.max(3, Math.ceil(RUNS / 2))}; cases of a few ms: as many as make ${MIN_BLOCK_MS} ms, `
  + `at most ${MAX_BLOCK_RUNS}) after ${WARMUP} warm-up runs, ours and the WebGPU EP `
  + 'taking turns, then the CPU EP; ms columns are the wall time of a whole run (inputs in, outputs back); ours GPU ms is our compute pass '
  + 'between timestamp queries.',
  `onnxruntime-node ${ort.env.versions.common}: the WebGPU EP ${ortWebGpuProblem ? 'could not run (below)' : 'runs its own Dawn'}; the CPU EP uses its default threads.`,
  'max rel. err: largest |ours − ORT CPU| / (1 + |ORT CPU|) over the output.',
  peak ? `% fp32 peak: ours GFLOPS over ${peak.tflops} TFLOPS (${peak.source}).` : `% fp32 peak: no peak known for ${gpu.description}; pass --peak-tflops.`,
);
if (!ortWebGpuProblem && gpu.isSoftware) {
  notes.push(`Dawn offered ${gpu.description} for a high-performance adapter, so no GPU is visible to Vulkan here: onnxruntime's Dawn runs on the same software adapter.`);
}
if (ortWebGpuProblem) notes.push(ortWebGpuProblem);
for (const note of notes) console.log(`- ${note}`);
publish({ suite: 'kernels', rows: benchRows, figures, notes });
gpu.destroy();
process.exit(0);

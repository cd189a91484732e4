/**
 * The executor's kernels and two whole models against onnxruntime-node on the same machine:
 * its WebGPU execution provider (which brings its own Dawn, so it runs on the same Vulkan
 * adapter as ours when there is only one) and its CPU provider.
 *
 *   node bench/executor.bench.ts [--runs 5] [--warmup 2] [--only matmul]
 *
 * Every case is an ONNX model built in code and run whole by each engine: inputs uploaded,
 * outputs read back, so the three columns time the same work. Each engine is warmed up, then
 * ours and the WebGPU EP take turns running blocks of `--runs` runs (fewer for the 1024³
 * product, which takes seconds on a software GPU), then the CPU EP runs its blocks; the table
 * shows medians, all measured in this one run. Ours also
 * reports the GPU time of its compute pass (timestamp queries) when the device has them.
 *
 * Prints one markdown table, then notes (adapter, what could not run and why).
 */
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { openGpu } from '../services/executor/gpu/index.ts';
import { compileOnnxModel, type CompiledModel } from '../services/executor/runtime/index.ts';
import { buildResNetStyle, buildTransformerEncoder, type ExampleModel } from '../services/examples/models/index.ts';
import { GraphBuilder, type HostTensor } from '../services/onnx/index.ts';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    only: { type: 'string' },
  },
});
const RUNS = Number(args.runs);
const WARMUP = Number(args.warmup);

/** One benchmark row: a model, its inputs, and the work it does (for GFLOPS). */
interface BenchCase {
  name: string;
  onnx: Uint8Array;
  inputs: Map<string, HostTensor>;
  /** Floating-point operations of one run (2 per multiply-add); undefined where not counted. */
  flops?: number;
  /**
   * Divides the run count for cases that take seconds per run on a software GPU, so the
   * defaults finish in minutes; at least 3 runs are kept for a median.
   */
  heavy?: boolean;
}

const random = (count: number, scale: number) => Float32Array.from({ length: count }, () => (Math.random() * 2 - 1) * scale);
const fp32 = (shape: number[], scale = 1): HostTensor => ({ datatype: 'FP32', shape, data: random(shape.reduce((a, b) => a * b, 1), scale) });

/** y = x @ W with W a [K, N] initializer: a dense layer's product, the shape models have. */
function matmulCase(m: number, k: number, n: number): BenchCase {
  const graph = new GraphBuilder(`matmul_${m}x${k}x${n}`)
    .input('x', 'FP32', [m, k])
    .initializer('w', 'FP32', [k, n], random(k * n, 1 / Math.sqrt(k)))
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'FP32', [m, n]);
  return {
    name: `matmul ${m}×${k}×${n}`, onnx: graph.toBytes(), inputs: new Map([['x', fp32([m, k])]]),
    flops: 2 * m * n * k, heavy: m * n * k >= 1024 ** 3,
  };
}

/** A 3×3 convolution, pad 1, stride 1, with bias, NCHW. */
function convCase(batch: number, channelsIn: number, channelsOut: number, size: number): BenchCase {
  const k = channelsIn * 9;
  const graph = new GraphBuilder(`conv3x3_${channelsIn}_${channelsOut}_${size}`)
    .input('x', 'FP32', [batch, channelsIn, size, size])
    .initializer('w', 'FP32', [channelsOut, channelsIn, 3, 3], random(channelsOut * k, 1 / Math.sqrt(k)))
    .initializer('b', 'FP32', [channelsOut], random(channelsOut, 0.1))
    .node('Conv', ['x', 'w', 'b'], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })
    .output('y', 'FP32', [batch, channelsOut, size, size]);
  return {
    name: `conv 3×3 ${channelsIn}→${channelsOut} @ ${size}×${size}, batch ${batch}`, onnx: graph.toBytes(),
    inputs: new Map([['x', fp32([batch, channelsIn, size, size])]]), flops: 2 * batch * size * size * channelsOut * k,
  };
}

/** A whole example model at one batch size (fixed seeds: every run benchmarks the same weights). */
function modelCase(model: ExampleModel, batch: number): BenchCase {
  return {
    name: `${model.name}, input ${model.inputShape(batch).join('×')}`, onnx: model.onnx,
    inputs: new Map([[model.input.name, fp32(model.inputShape(batch))]]), flops: model.flopsPerSample * batch,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

interface Timing {
  medianMs: number;
  /** Ours only: the median GPU time of the compute pass (timestamp queries). */
  gpuMs?: number;
  output?: Float32Array;
}

function runsFor(benchCase: BenchCase): number {
  return benchCase.heavy ? Math.max(3, Math.ceil(RUNS / 2)) : RUNS;
}

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

/** Timed blocks per engine, alternating between the engines (see timeInBlocks). */
const ROUNDS = 2;

/**
 * Warms every engine up, then times each in blocks of `runs` back-to-back runs, the engines
 * taking turns for ROUNDS blocks each. Back to back, each engine runs in its steady state (one
 * run right after another engine's is slowed by that engine's threads winding down, so each
 * block starts with an untimed run); taking turns, a machine that is busier for a while (it is
 * shared) slows the engines alike.
 */
async function timeInBlocks(runners: Runner[], runs: number): Promise<Timing[]> {
  const outputs: Float32Array[] = [];
  for (const [index, runner] of runners.entries()) {
    for (let run = 0; run < WARMUP; run++) outputs[index] = (await runner()).output;
  }
  const wall = runners.map((): number[] => []);
  const gpu = runners.map((): number[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, runner] of runners.entries()) {
      outputs[index] ??= (await runner()).output;
      if (runners.length > 1) await runner();
      for (let run = 0; run < runs; run++) {
        const start = performance.now();
        const result = await runner();
        wall[index].push(performance.now() - start);
        if (result.gpuMs !== undefined) gpu[index].push(result.gpuMs);
      }
    }
  }
  return runners.map((_, index) => ({
    medianMs: median(wall[index]), gpuMs: gpu[index].length ? median(gpu[index]) : undefined, output: outputs[index],
  }));
}

/** Largest |a - b| / (1 + |b|): how far ours is from onnxruntime's CPU result. */
function maxRelativeError(ours: Float32Array, reference: Float32Array): number {
  let worst = 0;
  for (let index = 0; index < reference.length; index++) worst = Math.max(worst, Math.abs(ours[index] - reference[index]) / (1 + Math.abs(reference[index])));
  return worst;
}

// ---------------------------------------------------------------------------------------------

const cases: Array<() => BenchCase | Promise<BenchCase>> = [
  () => matmulCase(256, 1024, 1024),
  () => matmulCase(1024, 1024, 1024),
  () => convCase(1, 64, 64, 56),
  () => modelCase(buildResNetStyle({ seed: 1 }), 1),
  () => modelCase(buildResNetStyle({ seed: 1 }), 32),
  () => modelCase(buildTransformerEncoder({ seed: 2 }), 1),
  () => modelCase(buildTransformerEncoder({ seed: 2 }), 32),
];

const gpu = await openGpu();
const notes: string[] = [`Our adapter: ${gpu.description}; timestamp queries: ${gpu.hasTimestamps ? 'yes' : 'no'}.`];

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
  name: string;
  ours: Timing;
  webgpu?: Timing;
  cpu: Timing;
  flops?: number;
  error: number;
}

const rows: Row[] = [];
for (const make of cases) {
  const benchCase = await make();
  if (args.only && !benchCase.name.includes(args.only)) continue;
  console.error(`${benchCase.name}: compiling`);
  const model = await compileOnnxModel(gpu, benchCase.onnx, { precision: 'fp32' });
  const webgpuSession = await ortSession(benchCase.onnx, 'webgpu');
  const cpuSession = (await ortSession(benchCase.onnx, 'cpu'))!;
  const gpuRunners = [oursRunner(model, benchCase)];
  if (webgpuSession) gpuRunners.push(ortRunner(webgpuSession, benchCase));
  console.error(`${benchCase.name}: timing`);
  const [ours, webgpu] = await timeInBlocks(gpuRunners, runsFor(benchCase));
  // The CPU EP runs on its own: its thread pool keeps spinning for a while after each run,
  // which would slow whichever GPU engine ran next on the same cores.
  const [cpu] = await timeInBlocks([ortRunner(cpuSession, benchCase)], runsFor(benchCase));
  model.dispose();
  await webgpuSession?.release();
  await cpuSession.release();

  rows.push({ name: benchCase.name, ours, webgpu, cpu, flops: benchCase.flops, error: maxRelativeError(ours.output!, cpu.output!) });
}

const ms = (value: number | undefined) => (value === undefined ? '—' : value < 10 ? value.toFixed(2) : value.toFixed(1));
const ratio = (slower: number | undefined, ours: number) => (slower === undefined ? '—' : `${(slower / ours).toFixed(2)}×`);
const gflops = (flops: number | undefined, milliseconds: number | undefined) =>
  flops === undefined || milliseconds === undefined ? '—' : (flops / milliseconds / 1e6).toFixed(2);

console.log('| case | ours ms | ours GPU ms | ORT WebGPU ms | ORT CPU ms | WebGPU/ours | CPU/ours | GFLOPS ours | GFLOPS ORT WebGPU | max rel. err |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const row of rows) {
  console.log(`| ${[
    row.name, ms(row.ours.medianMs), ms(row.ours.gpuMs), ms(row.webgpu?.medianMs), ms(row.cpu.medianMs),
    ratio(row.webgpu?.medianMs, row.ours.medianMs), ratio(row.cpu.medianMs, row.ours.medianMs),
    gflops(row.flops, row.ours.medianMs), gflops(row.flops, row.webgpu?.medianMs), row.error.toExponential(1),
  ].join(' | ')} |`);
}
console.log('');
notes.push(
  `Medians of ${ROUNDS} blocks of ${RUNS} runs (1024³: ${Math.max(3, Math.ceil(RUNS / 2))}) after ${WARMUP} warm-up runs, ours and the WebGPU EP `
  + 'taking turns, then the CPU EP; ms columns are the wall time of a whole run (inputs in, outputs back); ours GPU ms is our compute pass '
  + 'between timestamp queries.',
  `onnxruntime-node ${ort.env.versions.common}: the WebGPU EP ${ortWebGpuProblem ? 'could not run (below)' : 'runs its own Dawn'}; the CPU EP uses its default threads.`,
  'max rel. err: largest |ours − ORT CPU| / (1 + |ORT CPU|) over the output.',
);
if (!ortWebGpuProblem && gpu.isSoftware) {
  notes.push(`Dawn offered ${gpu.description} for a high-performance adapter, so no GPU is visible to Vulkan here: onnxruntime's Dawn runs on the same software adapter.`);
}
if (ortWebGpuProblem) notes.push(ortWebGpuProblem);
for (const note of notes) console.log(`- ${note}`);
gpu.destroy();
process.exit(0);

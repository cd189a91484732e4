/**
 * One large tensor through every layer, interleaved in one run: a 256×1024 @ 1024×1024 fp32
 * matmul (1 MiB in, 1 MiB out, the weight an initializer) run
 *  - in process: services/executor/runtime's compiled model, Float32Array in and out;
 *  - by the executor service alone: a client speaking the executor proto (ExecuteBatch on its own
 *    Connect stream, with the router's certificate) to an executor process of the deployment's
 *    configuration;
 *  - through the router: KServe v2 ModelInfer with raw_input_contents, `nexus up` as a child
 *    process, as bench/e2e-load.bench.ts deploys it;
 *  - by onnxruntime's WebGPU execution provider in this process.
 *
 *   node bench/large-tensor.bench.ts [--runs 5] [--rounds 5] [--warmup 3] [--rows 256] [--quick]
 *                                    [--paths process,executor,router,webgpu] [--executor-node-args=--cpu-prof]
 *
 * The engines take turns running blocks of `--runs` runs for `--rounds` rounds (a machine that
 * is busier for a while slows them alike); each block starts with an untimed run. The table
 * shows wall-time medians, the GPU time each one reports (compute pass between timestamp
 * queries), and the ratios: router over executor alone (the transport's cost) and ORT WebGPU
 * over ours through the router. --quick: 3 rounds of 3. --paths runs some of them only (for a
 * profile of one service: its ratios are then left out); --executor-node-args starts the
 * bench's executor process with those Node flags (--cpu-prof, --trace-gc).
 */
import { Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { openGpu } from '../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../services/executor/runtime/index.ts';
import { GraphBuilder, type HostTensor } from '../services/onnx/index.ts';
import type { ModelInferRequest } from '../services/protocol/generated/inference/grpc_service.ts';
import {
  ExecutorClient, type BatchResult, type ExecutorMessage, type ModelLoadResult, type RouterMessage,
} from '../services/protocol/generated/nexus/executor/v1/executor.ts';
import { GetVersionRequest, RegistryClient, type ModelVersion } from '../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ResultAssembly } from '../services/router/fleet/result-assembly.ts';
import { loadServiceTls, type ServiceTls } from '../services/tls/service-tls.ts';
import { send } from './e2e/load.ts';
import { cell, publish, type Figure } from './lib/report.ts';
import { median } from './lib/stats.ts';
import { routerClient, startUp, stopUp, storeModel } from './nexus-up.ts';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string', default: '3' },
    rows: { type: 'string', default: '256' },
    paths: { type: 'string', default: 'process,executor,router,webgpu' },
    'executor-node-args': { type: 'string', default: '' },
    quick: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs ?? (args.quick ? 3 : 5));
const ROUNDS = Number(args.rounds ?? (args.quick ? 3 : 5));
const WARMUP = Number(args.warmup);
const ROWS = Number(args.rows);
const K = 1024;
const N = 1024;
const MODEL_NAME = 'large_matmul';
const PATHS = new Set(args.paths.split(','));
const EXECUTOR_ENTRY = resolve(import.meta.dirname, '../services/executor/main.ts');

/** One path's run: its wall time is measured around it; it reports the output and its GPU ms. */
interface Runner {
  /** What --paths calls it. */
  path: string;
  name: string;
  run(): Promise<{ output: Float32Array; gpuMs?: number }>;
}

const weights = Float32Array.from({ length: K * N }, () => (Math.random() * 2 - 1) / Math.sqrt(K));
const onnx = new GraphBuilder(MODEL_NAME)
  .input('x', 'FP32', [ROWS, K])
  .initializer('w', 'FP32', [K, N], weights)
  .node('MatMul', ['x', 'w'], ['y'])
  .output('y', 'FP32', [ROWS, N])
  .toBytes();
const x = Float32Array.from({ length: ROWS * K }, () => Math.random() * 2 - 1);
const xBytes = new Uint8Array(x.buffer);

const floatsOf = (bytes: Uint8Array) => new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));

/** A router's side of an executor's Connect stream, enough to run batches of a loaded model. */
class DirectExecutor {
  private readonly client: ExecutorClient;
  private readonly call: ClientDuplexStream<RouterMessage, ExecutorMessage>;
  private readonly waiting = new Map<number, (message: ExecutorMessage) => void>();
  private readonly assemblies = new Map<number, ResultAssembly>();
  private nextId = 1;
  readonly hello: Promise<void>;

  constructor(address: string, tls: ServiceTls) {
    this.client = new ExecutorClient(address, tls.dial('executor'), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024,
    });
    this.call = this.client.connect(new Metadata());
    let greeted: () => void;
    this.hello = new Promise((done) => (greeted = done));
    this.call.on('error', (error) => console.error(`executor stream: ${error.message}`));
    this.call.on('data', (message: ExecutorMessage) => {
      if (message.hello) greeted();
      if (message.modelLoadResult) this.waiting.get(message.modelLoadResult.requestId)?.(message);
      if (message.batchResult) {
        let result: BatchResult | undefined = message.batchResult;
        if (result.chunk) {
          const assembly = this.assemblies.get(result.batchId) ?? new ResultAssembly(result.batchId);
          this.assemblies.set(result.batchId, assembly);
          result = assembly.add(result);
          if (result) this.assemblies.delete(result.batchId);
        }
        if (result) this.waiting.get(result.batchId)?.({ batchResult: result });
      }
    });
  }

  private ask(id: number, message: RouterMessage): Promise<ExecutorMessage> {
    return new Promise((done) => {
      this.waiting.set(id, (answer) => {
        this.waiting.delete(id);
        done(answer);
      });
      this.call.write(message);
    });
  }

  async load(version: ModelVersion): Promise<ModelLoadResult> {
    const requestId = this.nextId++;
    return (await this.ask(requestId, { loadModel: { requestId, version, traceContext: {}, maxBatchSize: 0 } })).modelLoadResult!;
  }

  async execute(inputs: BatchResult['outputs']): Promise<BatchResult> {
    const batchId = this.nextId++;
    const message = { executeBatch: { batchId, modelName: MODEL_NAME, version: 1, inputs, deadlineUnixMs: 0, traceContext: {} } };
    return (await this.ask(batchId, message)).batchResult!;
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

/** Starts an executor process like `nexus up`'s (same TLS directory and registry); resolves with its address. */
function startExecutorProcess(registry: string, tlsDir: string, cacheDir: string): Promise<{ child: ChildProcess; address: string }> {
  const nodeArgs = args['executor-node-args'].split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, EXECUTOR_ENTRY, '--address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0',
    '--registry', registry, '--cache-dir', cacheDir, '--tls-dir', tlsDir],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NEXUS_LOG_LEVEL: process.env.NEXUS_LOG_LEVEL ?? 'warn' } });
  process.once('exit', () => child.kill('SIGKILL'));
  return new Promise((resolveAddress, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const message = JSON.parse(line) as { event?: string; address?: string };
        if (message.event === 'listening' && message.address) resolveAddress({ child, address: message.address });
      } catch {
        // Not the announcement: shown (node's --trace-gc, say).
        console.error(`executor: ${line}`);
      }
    });
    child.once('exit', (code) => reject(new Error(`the executor exited with ${code} before it listened`)));
  });
}

function registryRecord(address: string, tls: ServiceTls): Promise<ModelVersion> {
  const client = new RegistryClient(address, tls.dial('registry'));
  return new Promise((resolveVersion, reject) => client.getVersion(GetVersionRequest.fromPartial({ modelName: MODEL_NAME, version: 1 }), (error, response) => {
    client.close();
    if (error) reject(error);
    else resolveVersion(response.version!);
  }));
}

/** Linux's clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = 100;

/**
 * CPU seconds this process and `pids` have used so far (/proc/<pid>/stat, every thread: the
 * lavapipe threads that run shaders included). On a shared machine the CPU a path costs moves
 * far less with the load than its wall time does.
 */
function cpuSecondsSoFar(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Not Linux, or gone: counted as nothing.
    }
  }
  const own = process.cpuUsage();
  return ticks / CLOCK_TICKS + (own.user + own.system) / 1e6;
}

/** The deployment's service processes (`nexus up` writes their pids to <data dir>/run). */
function servicePids(dataDir: string): number[] {
  const runDir = join(dataDir, 'run');
  return readdirSync(runDir).filter((file) => file.endsWith('.pid')).map((file) => Number(readFileSync(join(runDir, file), 'utf8').trim()));
}

interface Timing {
  path: string;
  name: string;
  wallMs: number[];
  /** CPU milliseconds per run of every process, block by block. */
  cpuMs: number[];
  gpuMs: number[];
  /** Each round's block median. */
  roundMs: number[];
  output?: Float32Array;
}

async function timeInterleaved(runners: Runner[], pids: readonly number[]): Promise<Timing[]> {
  const timings: Timing[] = runners.map(({ path, name }) => ({ path, name, wallMs: [], cpuMs: [], gpuMs: [], roundMs: [] }));
  for (const [index, runner] of runners.entries()) {
    for (let run = 0; run < WARMUP; run++) timings[index].output = (await runner.run()).output;
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, { name, run: runOnce }] of runners.entries()) {
      await runOnce();
      const block: number[] = [];
      const cpuBefore = cpuSecondsSoFar(pids);
      for (let run = 0; run < RUNS; run++) {
        const started = performance.now();
        const result = await runOnce();
        block.push(performance.now() - started);
        if (result.gpuMs !== undefined) timings[index].gpuMs.push(result.gpuMs);
      }
      timings[index].cpuMs.push(((cpuSecondsSoFar(pids) - cpuBefore) * 1000) / RUNS);
      timings[index].wallMs.push(...block);
      timings[index].roundMs.push(median(block));
      console.error(`round ${round + 1}/${ROUNDS} ${name}: ${median(block).toFixed(1)} ms`);
    }
  }
  return timings;
}

async function webgpuSessionOf(): Promise<{ session?: ort.InferenceSession; problem?: string }> {
  try {
    return { session: await ort.InferenceSession.create(onnx, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' }) };
  } catch (error) {
    return { problem: `onnxruntime-node ${ort.env.versions.common} WebGPU EP failed: ${(error as Error).message}` };
  }
}

const maxDifference = (a: Float32Array, b: Float32Array) => a.reduce((worst, value, index) => Math.max(worst, Math.abs(value - b[index])), 0);

const dataDir = await mkdtemp(join(tmpdir(), 'nexus-large-tensor-'));
const cluster = await startUp(dataDir);
const client = routerClient(cluster);
let executor: { child: ChildProcess; address: string } | undefined;
let direct: DirectExecutor | undefined;
const gpu = await openGpu();
try {
  await storeModel(cluster, MODEL_NAME, onnx, dataDir);
  const tls = (await loadServiceTls('router', join(dataDir, 'tls'), 'required'))!;
  executor = await startExecutorProcess(cluster.registry, join(dataDir, 'tls'), join(dataDir, 'bench-executor-cache'));
  direct = new DirectExecutor(executor.address, tls);
  await direct.hello;
  const loaded = await direct.load(await registryRecord(cluster.registry, tls));
  if (loaded.errorCode !== 0) throw new Error(`the executor did not load ${MODEL_NAME}: ${loaded.errorMessage}`);

  const model = await compileOnnxModel(gpu, onnx, { precision: 'fp32', isolate: false });
  const inputs = new Map<string, HostTensor>([['x', { datatype: 'FP32', shape: [ROWS, K], data: x }]]);
  const { session: webgpuSession, problem: webgpuProblem } = PATHS.has('webgpu') ? await webgpuSessionOf() : {};
  const request: ModelInferRequest = {
    modelName: MODEL_NAME, modelVersion: '', id: '', parameters: {}, outputs: [],
    inputs: [{ name: 'x', datatype: 'FP32', shape: [ROWS, K], parameters: {}, contents: undefined }],
    rawInputContents: [xBytes],
  };
  const executorAlone = direct;
  const runners: Runner[] = [
    { path: 'process', name: 'in process (compiled model)', run: async () => {
      const result = await model.run(inputs);
      return { output: result.outputs.get('y')!.data as Float32Array, gpuMs: result.gpuNs === undefined ? undefined : result.gpuNs / 1e6 };
    } },
    { path: 'executor', name: 'executor service alone', run: async () => {
      const result = await executorAlone.execute([{ name: 'x', datatype: 'FP32', shape: [ROWS, K], data: xBytes }]);
      if (result.errorCode !== 0) throw new Error(`batch failed (${result.errorCode}): ${result.errorMessage}`);
      return { output: floatsOf(result.outputs[0].data), gpuMs: result.gpuNs / 1e6 };
    } },
    { path: 'router', name: 'through the router (ModelInfer, raw contents)', run: async () => {
      const response = await send(client, request);
      return { output: floatsOf(response.rawOutputContents[0]), gpuMs: (response.parameters.nexus_gpu_us?.int64Param ?? 0) / 1000 };
    } },
  ];
  if (webgpuSession) {
    const session = webgpuSession;
    const feeds = { x: new ort.Tensor('float32', x, [ROWS, K]) };
    runners.push({ path: 'webgpu', name: 'onnxruntime WebGPU EP, in process', run: async () => ({ output: (await session.run(feeds))[session.outputNames[0]].data as Float32Array }) });
  }
  const timings = await timeInterleaved(runners.filter((runner) => PATHS.has(runner.path)), [...servicePids(dataDir), executor.child.pid!]);
  const timingOf = (path: string) => timings.find((timing) => timing.path === path);
  const [inProcess, alone, routed, webgpu] = ['process', 'executor', 'router', 'webgpu'].map(timingOf);
  const p50 = (timing: Timing | undefined) => (timing ? median(timing.wallMs) : undefined);
  const cpuPerRun = (timing: Timing | undefined) => (timing ? median(timing.cpuMs) : undefined);
  const gpuP50 = (timing: Timing) => (timing.gpuMs.length ? median(timing.gpuMs) : undefined);
  const ms = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '—' : value.toFixed(2));
  /** The median over rounds of `slower`'s block over `faster`'s, by `of` (wall or CPU per run). */
  const perRound = (slower: Timing | undefined, faster: Timing | undefined, of: 'roundMs' | 'cpuMs') =>
    (slower && faster ? median(slower[of].map((value, round) => value / faster[of][round])) : undefined);
  const ratio = (value: number | undefined) => (value === undefined ? '—' : `${value.toFixed(2)}×`);
  const routerOverAlone = perRound(routed, alone, 'roundMs');
  const webgpuOverRouted = perRound(webgpu, routed, 'roundMs');
  const reference = inProcess ?? timings[0];

  console.log(`\n| path (${ROWS}×${K} @ ${K}×${N} fp32, 1 MiB in, 1 MiB out) | ms p50 | GPU ms p50 | CPU ms per run, all processes | max abs. difference vs ${reference.name} |`);
  console.log('|---|---:|---:|---:|---:|');
  for (const timing of timings) {
    console.log(`| ${timing.name} | ${ms(p50(timing))} | ${ms(gpuP50(timing))} | ${ms(cpuPerRun(timing))} | ${maxDifference(timing.output!, reference.output!).toExponential(1)} |`);
  }
  console.log(`| router / executor alone | ${ratio(routerOverAlone)} | | ${ratio(perRound(routed, alone, 'cpuMs'))} | |`);
  console.log(`| ORT WebGPU / ours through the router | ${ratio(webgpuOverRouted)} | | ${ratio(perRound(webgpu, routed, 'cpuMs'))} | |`);
  const notes = [
    `Adapter: ${gpu.description}. Medians of ${ROUNDS} rounds of ${RUNS} runs after ${WARMUP} warm-up runs, the engines taking turns; ratios are medians of the per-round ratios.`,
    'GPU ms: our compute pass between timestamp queries (in process: RunResult.gpuNs; executor: BatchResult.gpu_ns; router: nexus_gpu_us).',
    'CPU ms per run: what this process and every service process used (/proc/<pid>/stat, every thread; on a software adapter the shaders run on the CPU too), over each block, per run.',
  ];
  if (webgpuProblem) notes.push(webgpuProblem);
  console.log('');
  for (const note of notes) console.log(`- ${note}`);
  const figures: Figure[] = [];
  if (routerOverAlone !== undefined) {
    figures.push({ id: 'large_tensor.router_over_executor', value: routerOverAlone, unit: 'x', better: 'lower', label: 'large matmul: router ms / executor alone ms' });
  }
  if (webgpuOverRouted !== undefined) {
    figures.push({ id: 'large_tensor.webgpu_over_router', value: webgpuOverRouted, unit: 'x', better: 'higher', label: 'large matmul: ORT WebGPU ms / ours through the router' });
  }
  publish({
    suite: 'large-tensor',
    rows: timings.map((timing) => ({
      path: timing.path, name: timing.name, p50Ms: cell(p50(timing)), gpuP50Ms: cell(gpuP50(timing)), cpuMsPerRun: cell(cpuPerRun(timing)),
    })),
    figures, notes,
  });
  model.dispose();
  await webgpuSession?.release();
} finally {
  direct?.close();
  executor?.child.kill('SIGTERM');
  client.close();
  await stopUp(cluster);
  await rm(dataDir, { recursive: true, force: true });
  gpu.destroy();
}
process.exit(0);

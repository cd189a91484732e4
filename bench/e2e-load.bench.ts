/**
 * End-to-end load through the router: closed loop at a chosen concurrency and open loop at a
 * chosen rate, with batching on and off, on the Iris example, a heavier MLP and a small
 * ResNet-style convolutional network. Services run as their own processes (`nexus up`); this
 * process is only the client.
 *
 *   node bench/e2e-load.bench.ts [--seconds 8] [--concurrency 64] [--rate 400] [--models iris,mlp,resnet]
 *
 * Prints one table: throughput, latency percentiles, mean batch size, the router+executor
 * overhead per request (end to end minus the GPU time of the batch it ran in), and the CPU time
 * each process spent per request in the closed loop (router and executor from their
 * nexus_process_process_cpu_seconds_total, the client from process.cpuUsage): on a machine with few
 * cores the processes share them, so CPU per request bounds the closed-loop throughput.
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { GRPCInferenceServiceClient, type ModelInferRequest, type ModelInferResponse } from '../services/protocol/generated/inference/grpc_service.ts';
import { trainIrisModel } from '../services/examples/iris/train.ts';
import { GraphBuilder } from '../services/onnx/index.ts';
import { startUp, stopUp, storeModel, type UpCluster } from './nexus-up.ts';


const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '64' },
    rate: { type: 'string', default: '400' },
    models: { type: 'string', default: 'iris,mlp,resnet' },
    'max-batch-size': { type: 'string', default: '32' },
    'max-queue-delay-us': { type: 'string', default: '2000' },
  },
});
const SECONDS = Number(args.seconds);
const CONCURRENCY = Number(args.concurrency);
const RATE = Number(args.rate);
const MAX_BATCH = Number(args['max-batch-size']);
const MAX_DELAY_US = Number(args['max-queue-delay-us']);

interface BenchModel {
  name: string;
  onnx: Uint8Array;
  inputName: string;
  /** One request's input shape, batch dimension (1) first. */
  shape: number[];
}

/** A dense 256→1024→1024→256 network: ~3 MFLOP a row, enough GPU work for batching to matter. */
function heavyMlp(): BenchModel {
  const widths = [256, 1024, 1024, 256];
  const graph = new GraphBuilder('mlp').input('x', 'FP32', [-1, widths[0]]);
  let current = 'x';
  for (let layer = 0; layer < widths.length - 1; layer++) {
    const [inWidth, outWidth] = [widths[layer], widths[layer + 1]];
    const weights = Float32Array.from({ length: inWidth * outWidth }, () => (Math.random() - 0.5) / Math.sqrt(inWidth));
    graph.initializer(`w${layer}`, 'FP32', [inWidth, outWidth], weights)
      .initializer(`b${layer}`, 'FP32', [outWidth], new Float32Array(outWidth).fill(0.01))
      .node('Gemm', [current, `w${layer}`, `b${layer}`], [`h${layer}`]);
    current = `h${layer}`;
    if (layer < widths.length - 2) {
      graph.node('Relu', [current], [`r${layer}`]);
      current = `r${layer}`;
    }
  }
  graph.node('Identity', [current], ['y']).output('y', 'FP32', [-1, widths.at(-1)!]);
  return { name: 'mlp', onnx: graph.toBytes(), inputName: 'x', shape: [1, widths[0]] };
}

const randomWeights = (count: number, fanIn: number) => Float32Array.from({ length: count }, () => (Math.random() - 0.5) * 2 / Math.sqrt(fanIn));

/**
 * A small ResNet for 3×32×32 images: a 3×3 stem to 16 channels, two residual blocks of two 3×3
 * convolutions each (Conv → BatchNormalization → Relu, the block's input added back before the
 * last Relu), GlobalAveragePool, Flatten and a 16→10 Gemm. About 20 MFLOP a row: convolution
 * work rather than the MLP's matrix products.
 */
function smallResnet(): BenchModel {
  const channels = 16;
  const graph = new GraphBuilder('resnet').input('image', 'FP32', [-1, 3, 32, 32]);
  let convs = 0;
  /** Conv 3×3 (padding 1) → BatchNormalization, from `input` to a new value; returns its name. */
  const convBn = (input: string, inChannels: number): string => {
    const id = convs++;
    graph.initializer(`conv${id}.w`, 'FP32', [channels, inChannels, 3, 3], randomWeights(channels * inChannels * 9, inChannels * 9))
      .initializer(`conv${id}.b`, 'FP32', [channels], new Float32Array(channels))
      .initializer(`bn${id}.scale`, 'FP32', [channels], Float32Array.from({ length: channels }, () => 0.8 + Math.random() * 0.4))
      .initializer(`bn${id}.shift`, 'FP32', [channels], Float32Array.from({ length: channels }, () => (Math.random() - 0.5) * 0.1))
      .initializer(`bn${id}.mean`, 'FP32', [channels], Float32Array.from({ length: channels }, () => (Math.random() - 0.5) * 0.1))
      .initializer(`bn${id}.var`, 'FP32', [channels], Float32Array.from({ length: channels }, () => 0.9 + Math.random() * 0.2))
      .node('Conv', [input, `conv${id}.w`, `conv${id}.b`], [`conv${id}`], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] })
      .node('BatchNormalization', [`conv${id}`, `bn${id}.scale`, `bn${id}.shift`, `bn${id}.mean`, `bn${id}.var`], [`bn${id}`], { epsilon: { kind: 'float', value: 1e-5 } });
    return `bn${id}`;
  };
  graph.node('Relu', [convBn('image', 3)], ['stem']);
  let current = 'stem';
  for (let block = 0; block < 2; block++) {
    graph.node('Relu', [convBn(current, channels)], [`block${block}.a`]);
    graph.node('Add', [convBn(`block${block}.a`, channels), current], [`block${block}.sum`])
      .node('Relu', [`block${block}.sum`], [`block${block}`]);
    current = `block${block}`;
  }
  graph.node('GlobalAveragePool', [current], ['pooled'])
    .node('Flatten', ['pooled'], ['features'], { axis: 1 })
    .initializer('fc.w', 'FP32', [channels, 10], randomWeights(channels * 10, channels))
    .initializer('fc.b', 'FP32', [10], new Float32Array(10))
    .node('Gemm', ['features', 'fc.w', 'fc.b'], ['logits'])
    .output('logits', 'FP32', [-1, 10]);
  return { name: 'resnet', onnx: graph.toBytes(), inputName: 'image', shape: [1, 3, 32, 32] };
}

const MODELS: Record<string, () => BenchModel> = {
  iris: () => ({ name: 'iris', onnx: trainIrisModel().onnx, inputName: 'features', shape: [1, 4] }),
  mlp: heavyMlp,
  resnet: smallResnet,
};

interface Sample {
  latencyMs: number;
  gpuMs: number;
  batch: number;
}

function requestFor(model: BenchModel): ModelInferRequest {
  const values = Float32Array.from({ length: model.shape.reduce((product, dim) => product * dim, 1) }, () => Math.random() * 5);
  return {
    modelName: model.name, modelVersion: '', id: '', parameters: {}, outputs: [],
    inputs: [{ name: model.inputName, datatype: 'FP32', shape: model.shape, parameters: {}, contents: undefined }],
    rawInputContents: [new Uint8Array(values.buffer)],
  };
}

function send(client: GRPCInferenceServiceClient, request: ModelInferRequest): Promise<ModelInferResponse> {
  return new Promise((resolveResponse, reject) =>
    client.modelInfer(request, new Metadata(), { deadline: Date.now() + 60_000 }, (error, response) => (error ? reject(error) : resolveResponse(response))));
}

async function measureOne(client: GRPCInferenceServiceClient, model: BenchModel, startedAt: number, samples: Sample[], errors: { count: number }) {
  try {
    const response = await send(client, requestFor(model));
    samples.push({
      latencyMs: performance.now() - startedAt,
      gpuMs: (response.parameters.nexus_gpu_us?.int64Param ?? 0) / 1000,
      batch: response.parameters.nexus_batch_size?.int64Param ?? 1,
    });
  } catch {
    errors.count += 1;
  }
}

async function closedLoop(client: GRPCInferenceServiceClient, model: BenchModel) {
  const samples: Sample[] = [];
  const errors = { count: 0 };
  const stopAt = performance.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < stopAt) await measureOne(client, model, performance.now(), samples, errors);
  }));
  return { samples, errors: errors.count, seconds: SECONDS };
}

async function openLoop(client: GRPCInferenceServiceClient, model: BenchModel) {
  const samples: Sample[] = [];
  const errors = { count: 0 };
  const total = Math.round(RATE * SECONDS);
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let index = 0; index < total; index++) {
    const scheduled = start + (index * 1000) / RATE;
    const wait = scheduled - performance.now();
    if (wait > 0) await new Promise((wake) => setTimeout(wake, wait));
    // Latency counts from the scheduled time, so a client that falls behind is charged for it.
    pending.push(measureOne(client, model, scheduled, samples, errors));
  }
  await Promise.all(pending);
  return { samples, errors: errors.count, seconds: (performance.now() - start) / 1000 };
}

/** CPU seconds used so far by the router, the executors (summed) and this client. */
async function cpuSeconds(cluster: UpCluster): Promise<{ router: number; executor: number; client: number }> {
  const read = async (url: string) => {
    const text = await (await fetch(url)).text();
    return Number(/^nexus_process_process_cpu_seconds_total (\S+)$/m.exec(text)?.[1] ?? NaN);
  };
  let executor = 0;
  for (const [name, url] of cluster.metrics) if (name.startsWith('executor')) executor += await read(url);
  const { user, system } = process.cpuUsage();
  return { router: await read(cluster.metrics.get('router')!), executor, client: (user + system) / 1e6 };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 0.5);

interface Row {
  model: string; load: string; batching: string; throughput: number; p50: number; p95: number; p99: number;
  meanBatch: number; overheadP50: number; gpuP50: number; errors: number;
  /** CPU microseconds per request by process, closed loop only. */
  cpuUs?: { router: number; executor: number; client: number };
}

function summarise(model: string, load: string, batching: string, result: { samples: Sample[]; errors: number; seconds: number }): Row {
  const latencies = result.samples.map((sample) => sample.latencyMs).sort((a, b) => a - b);
  return {
    model, load, batching,
    throughput: result.samples.length / result.seconds,
    p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99),
    meanBatch: result.samples.reduce((sum, sample) => sum + sample.batch, 0) / Math.max(1, result.samples.length),
    overheadP50: median(result.samples.map((sample) => sample.latencyMs - sample.gpuMs)),
    gpuP50: median(result.samples.map((sample) => sample.gpuMs)),
    errors: result.errors,
  };
}

const rows: Row[] = [];
const modelNames = args.models.split(',');
for (const [batching, maxBatchSize] of [['on', MAX_BATCH], ['off', 1]] as const) {
  const dataDir = await mkdtemp(join(tmpdir(), 'nexus-bench-'));
  const cluster = await startUp(dataDir, ['--max-batch-size', String(maxBatchSize), '--max-queue-delay-us', String(maxBatchSize === 1 ? 0 : MAX_DELAY_US)]);
  const client = new GRPCInferenceServiceClient(cluster.router, credentials.createInsecure());
  try {
    for (const name of modelNames) {
      const model = MODELS[name]();
      await storeModel(cluster, model.name, model.onnx, dataDir);
      for (let warm = 0; warm < 20; warm++) await send(client, requestFor(model));
      console.error(`${name}, batching ${batching}: closed loop at concurrency ${CONCURRENCY} for ${SECONDS}s`);
      const cpuBefore = await cpuSeconds(cluster);
      const closed = summarise(name, `closed c=${CONCURRENCY}`, batching, await closedLoop(client, model));
      const cpuAfter = await cpuSeconds(cluster);
      const perRequestUs = (key: 'router' | 'executor' | 'client') => ((cpuAfter[key] - cpuBefore[key]) * 1e6) / Math.max(1, closed.throughput * SECONDS);
      closed.cpuUs = { router: perRequestUs('router'), executor: perRequestUs('executor'), client: perRequestUs('client') };
      rows.push(closed);
      console.error(`${name}, batching ${batching}: open loop at ${RATE} req/s for ${SECONDS}s`);
      rows.push(summarise(name, `open ${RATE}/s`, batching, await openLoop(client, model)));
    }
  } finally {
    client.close();
    await stopUp(cluster);
    await rm(dataDir, { recursive: true, force: true });
  }
}

const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const table = new Table({
  head: ['model', 'load', 'batching', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'mean batch', 'GPU p50 ms', 'overhead p50 ms', 'errors'],
});
for (const row of rows) {
  table.push([row.model, row.load, row.batching, fixed(row.throughput, 0), fixed(row.p50), fixed(row.p95), fixed(row.p99),
    fixed(row.meanBatch), fixed(row.gpuP50, 2), fixed(row.overheadP50), row.errors]);
}
console.log(table.toString());

const ratios = new Table({ head: ['model', 'closed-loop req/s, batching on', 'off', 'ratio on/off', 'p99 on (ms)', 'bound: delay + 2 x batch GPU (ms)',
  'CPU us/req on: router / executor / client', 'off'] });
const cpuText = (row: Row) => (row.cpuUs ? `${fixed(row.cpuUs.router, 0)} / ${fixed(row.cpuUs.executor, 0)} / ${fixed(row.cpuUs.client, 0)}` : '-');
for (const name of modelNames) {
  const on = rows.find((row) => row.model === name && row.batching === 'on' && row.load.startsWith('closed'))!;
  const off = rows.find((row) => row.model === name && row.batching === 'off' && row.load.startsWith('closed'))!;
  ratios.push([name, fixed(on.throughput, 0), fixed(off.throughput, 0), `${fixed(on.throughput / off.throughput, 2)}x`, fixed(on.p99),
    fixed(MAX_DELAY_US / 1000 + 2 * on.gpuP50), cpuText(on), cpuText(off)]);
}
console.log(ratios.toString());
process.exit(0);

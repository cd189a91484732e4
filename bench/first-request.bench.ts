#!/usr/bin/env node
/**
 * What the first request of each batch size costs after a model reports ready, against the
 * steady state of the same size: warm-up is meant to build every kernel variant and plan the
 * version's batch sizes use, so the two columns should be close. Through `nexus up` (router,
 * executor, registry as their own processes), one client, no queue delay.
 *
 *   node bench/first-request.bench.ts [--models iris,resnet,transformer] [--max-batch-size 32] [--repeats 30]
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { GRPCInferenceServiceClient, type ModelInferRequest } from '../services/protocol/generated/inference/grpc_service.ts';
import { trainIrisModel } from '../services/examples/iris/train.ts';
import { buildResNetStyle, buildTransformerEncoder } from '../services/examples/models/index.ts';
import { startUp, stopUp, storeModel } from './nexus-up.ts';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'iris,resnet,transformer' },
    'max-batch-size': { type: 'string', default: '32' },
    repeats: { type: 'string', default: '30' },
  },
});
const MAX_BATCH = Number(args['max-batch-size']);
const REPEATS = Number(args.repeats);

interface BenchModel {
  name: string;
  onnx: Uint8Array;
  inputName: string;
  /** The input's shape for `rows` rows. */
  shape(rows: number): number[];
}

const MODELS: Record<string, () => BenchModel> = {
  iris: () => ({ name: 'iris', onnx: trainIrisModel().onnx, inputName: 'features', shape: (rows) => [rows, 4] }),
  resnet: () => {
    const model = buildResNetStyle();
    return { name: 'resnet', onnx: model.onnx, inputName: model.input.name, shape: (rows) => model.inputShape(rows) };
  },
  transformer: () => {
    const model = buildTransformerEncoder();
    return { name: 'transformer', onnx: model.onnx, inputName: model.input.name, shape: (rows) => model.inputShape(rows) };
  },
};

function requestFor(model: BenchModel, rows: number): ModelInferRequest {
  const shape = model.shape(rows);
  const values = Float32Array.from({ length: shape.reduce((product, dim) => product * dim, 1) }, () => Math.random());
  return {
    modelName: model.name, modelVersion: '', id: '', parameters: {}, outputs: [],
    inputs: [{ name: model.inputName, datatype: 'FP32', shape, parameters: {}, contents: undefined }],
    rawInputContents: [new Uint8Array(values.buffer)],
  };
}

/** Milliseconds one request takes from send to answer. */
function timed(client: GRPCInferenceServiceClient, request: ModelInferRequest): Promise<number> {
  const started = performance.now();
  return new Promise((resolveTime, reject) => client.modelInfer(request, new Metadata(), { deadline: Date.now() + 60_000 },
    (error) => (error ? reject(error) : resolveTime(performance.now() - started))));
}

async function waitUntilReady(client: GRPCInferenceServiceClient, name: string): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 120_000;) {
    const ready = await new Promise<boolean>((resolveReady) =>
      client.modelReady({ name, version: '' }, (error, response) => resolveReady(!error && response.ready)));
    if (ready) return;
    await new Promise((wake) => setTimeout(wake, 100));
  }
  throw new Error(`${name} did not become ready`);
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};

const dataDir = await mkdtemp(join(tmpdir(), 'nexus-first-request-'));
const cluster = await startUp(dataDir, ['--max-batch-size', String(MAX_BATCH), '--max-queue-delay-us', '0']);
try {
  const client = new GRPCInferenceServiceClient(cluster.router, credentials.createInsecure());
  for (const name of args.models!.split(',')) {
    const model = MODELS[name]();
    await storeModel(cluster, model.name, model.onnx, dataDir);
    await waitUntilReady(client, model.name);
    const sizes = Array.from({ length: MAX_BATCH }, (_, index) => index + 1);
    // Every size's first request, in one pass, before any size repeats.
    const first = new Map<number, number>();
    for (const rows of sizes) first.set(rows, await timed(client, requestFor(model, rows)));
    const table = new Table({ head: ['rows', 'first ms', 'steady p50 ms', 'steady p99 ms', 'first / steady p99'] });
    const ratios: number[] = [];
    for (const rows of sizes) {
      const steady: number[] = [];
      for (let repeat = 0; repeat < REPEATS; repeat++) steady.push(await timed(client, requestFor(model, rows)));
      const p99 = percentile(steady, 99);
      ratios.push(first.get(rows)! / p99);
      table.push([rows, first.get(rows)!.toFixed(2), percentile(steady, 50).toFixed(2), p99.toFixed(2), `${(first.get(rows)! / p99).toFixed(2)}×`]);
    }
    const firsts = [...first.values()];
    console.log(`\n${model.name}: first request of each batch size 1..${MAX_BATCH} after ModelReady, then ${REPEATS} more of each`);
    console.log(table.toString());
    console.log(`p99 over the first requests: ${percentile(firsts, 99).toFixed(2)} ms; worst first / steady p99: ${Math.max(...ratios).toFixed(2)}×`);
  }
  client.close();
} finally {
  await stopUp(cluster);
  if (!process.env.NEXUS_KEEP) await rm(dataDir, { recursive: true, force: true });
}

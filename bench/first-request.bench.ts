#!/usr/bin/env node
/**
 * What the first request of each batch size costs after a model reports ready, against the
 * steady state of the same size: warm-up is meant to build every kernel variant and plan the
 * version's batch sizes use, so the two columns should be close. Through `nexus up` (router,
 * executor, registry as their own processes), one client, no queue delay.
 *
 *   node bench/first-request.bench.ts [--models iris,resnet,transformer] [--max-batch-size 32] [--repeats 30] [--quick]
 *
 * --quick: iris and resnet, batch sizes up to 8, 10 repeats.
 */
import { Metadata } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import type { GRPCInferenceServiceClient, ModelInferRequest } from '../services/protocol/generated/inference/grpc_service.ts';
import { trainIrisModel } from '../services/examples/iris/train.ts';
import { buildResNetStyle, buildTransformerEncoder } from '../services/examples/models/index.ts';
import { cell, publish, type BenchRow, type Figure } from './lib/report.ts';
import { routerClient, startUp, stopUp, storeModel } from './nexus-up.ts';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string' },
    'max-batch-size': { type: 'string' },
    repeats: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const MAX_BATCH = Number(args['max-batch-size'] ?? (args.quick ? 8 : 32));
const REPEATS = Number(args.repeats ?? (args.quick ? 10 : 30));
const modelNames = (args.models ?? (args.quick ? 'iris,resnet' : 'iris,resnet,transformer')).split(',');

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

const benchRows: BenchRow[] = [];
const figures: Figure[] = [];
const dataDir = await mkdtemp(join(tmpdir(), 'nexus-first-request-'));
const cluster = await startUp(dataDir, ['--max-batch-size', String(MAX_BATCH), '--max-queue-delay-us', '0']);
try {
  const client = routerClient(cluster);
  for (const name of modelNames) {
    const model = MODELS[name]();
    await storeModel(cluster, model.name, model.onnx, dataDir);
    await waitUntilReady(client, model.name);
    const sizes = Array.from({ length: MAX_BATCH }, (_, index) => index + 1);
    // Every size's first request, in one pass, before any size repeats.
    const first = new Map<number, number>();
    for (const rows of sizes) first.set(rows, await timed(client, requestFor(model, rows)));
    const table = new Table({ head: ['rows', 'first ms', 'steady p50 ms', 'steady p99 ms', 'first / steady p99'], style: { head: [], border: [] } });
    const ratios: number[] = [];
    for (const rows of sizes) {
      const steady: number[] = [];
      for (let repeat = 0; repeat < REPEATS; repeat++) steady.push(await timed(client, requestFor(model, rows)));
      const p99 = percentile(steady, 99);
      ratios.push(first.get(rows)! / p99);
      table.push([rows, first.get(rows)!.toFixed(2), percentile(steady, 50).toFixed(2), p99.toFixed(2), `${(first.get(rows)! / p99).toFixed(2)}×`]);
      benchRows.push({
        model: model.name, rows, firstMs: cell(first.get(rows)), steadyP50Ms: cell(percentile(steady, 50)), steadyP99Ms: cell(p99),
        firstOverSteadyP99: cell(first.get(rows)! / p99),
      });
    }
    const firsts = [...first.values()];
    console.log(`\n${model.name}: first request of each batch size 1..${MAX_BATCH} after ModelReady, then ${REPEATS} more of each`);
    console.log(table.toString());
    console.log(`p99 over the first requests: ${percentile(firsts, 99).toFixed(2)} ms; worst first / steady p99: ${Math.max(...ratios).toFixed(2)}×`);
    figures.push({
      id: `first_request.${model.name}.worst_first_over_steady_p99`, value: Math.max(...ratios), unit: 'x', better: 'lower',
      label: `${model.name}: worst first request / steady p99 over batch sizes 1..${MAX_BATCH}`,
    });
  }
  client.close();
  publish({ suite: 'first-request', rows: benchRows, figures, notes: [`batch sizes 1..${MAX_BATCH}, ${REPEATS} steady requests of each`] });
} finally {
  await stopUp(cluster);
  if (!process.env.NEXUS_KEEP) await rm(dataDir, { recursive: true, force: true });
}

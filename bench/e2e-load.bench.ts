/**
 * End-to-end load through the router: closed loops at several concurrencies and an open loop at
 * a chosen rate, with batching on and off, on the Iris example, a heavier MLP and a small
 * ResNet-style convolutional network. Services run as their own processes (`nexus up`); this
 * process is only the client.
 *
 *   node bench/e2e-load.bench.ts [--seconds 8] [--concurrency 1,16,64] [--rate 400] [--models iris,mlp,resnet] [--quick]
 *
 * Prints two tables. The first: throughput, latency percentiles, mean batch size, the
 * router+executor overhead per request (end to end minus the GPU time of the batch it ran in),
 * the executors' GPU busy share (GPU seconds their timestamp queries measured over the row's wall
 * time; beside it nexus_executor_gpu_busy_ratio read at the row's end, which covers the last
 * 10 s, so the two agree for rows of 10 s and more), and the CPU time each process spent per
 * request in closed loops (router and executor from their nexus_process_process_cpu_seconds_total,
 * the client from process.cpuUsage): on a machine with few cores the processes share them, so CPU
 * per request bounds the closed-loop throughput. The second: batching on against off per model
 * and concurrency, measured in this run, beside what batching saves on the GPU alone (a batch-1
 * run's GPU time over a batched row's: the ceiling of that ratio where the GPU is the work).
 * --quick: 2 s per row, iris and mlp at concurrency 16, open loop at 200/s.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { closedLoop, openLoop, requestFor, send, spentSoFar, summarise, type LoadSummary, type Spent } from './e2e/load.ts';
import { MODELS } from './e2e/models.ts';
import { cell, publish, type BenchRow, type Figure } from './lib/report.ts';
import { routerClient, startUp, stopUp, storeModel } from './nexus-up.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string' },
    concurrency: { type: 'string' },
    rate: { type: 'string' },
    models: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'max-batch-size': { type: 'string', default: '32' },
    'max-queue-delay-us': { type: 'string', default: '2000' },
  },
});
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 8));
const CONCURRENCIES = (args.concurrency ?? (args.quick ? '16' : '1,16,64')).split(',').map(Number);
/** Requests a second of the open loop; 0 leaves it out. */
const RATE = Number(args.rate ?? (args.quick ? 200 : 400));
const MAX_BATCH = Number(args['max-batch-size']);
const MAX_DELAY_US = Number(args['max-queue-delay-us']);
const modelNames = (args.models ?? (args.quick ? 'iris,mlp' : 'iris,mlp,resnet')).split(',');

interface Row extends LoadSummary {
  model: string;
  load: string;
  batching: 'on' | 'off';
  /** Closed loops only. */
  concurrency?: number;
  /** GPU seconds over wall seconds, in percent, summed over executors. */
  gpuBusyPercent: number;
  /** nexus_executor_gpu_busy_ratio at the row's end (its last 10 s), in percent. */
  gpuBusyGaugePercent: number;
  /** CPU microseconds per request by process, closed loops only. */
  cpuUs?: { router: number; executor: number; client: number };
}

const gpuBusy = (before: Spent, after: Spent) => ({
  gpuBusyPercent: ((after.executorGpu - before.executorGpu) / ((after.atMs - before.atMs) / 1000)) * 100,
  gpuBusyGaugePercent: after.gpuBusyGauge * 100,
});

const rows: Row[] = [];
for (const [batching, maxBatchSize] of [['on', MAX_BATCH], ['off', 1]] as const) {
  const dataDir = await mkdtemp(join(tmpdir(), 'nexus-bench-'));
  const cluster = await startUp(dataDir, ['--max-batch-size', String(maxBatchSize), '--max-queue-delay-us', String(maxBatchSize === 1 ? 0 : MAX_DELAY_US)]);
  const client = routerClient(cluster);
  try {
    for (const name of modelNames) {
      const model = MODELS[name]();
      await storeModel(cluster, model.name, model.onnx, dataDir);
      for (let warm = 0; warm < 20; warm++) await send(client, requestFor(model));
      for (const concurrency of CONCURRENCIES) {
        console.error(`${name}, batching ${batching}: closed loop at concurrency ${concurrency} for ${SECONDS}s`);
        const before = await spentSoFar(cluster);
        const result = await closedLoop(client, model, concurrency, SECONDS);
        const after = await spentSoFar(cluster);
        const answered = Math.max(1, result.samples.length);
        const perRequestUs = (seconds: number) => (seconds * 1e6) / answered;
        rows.push({
          ...summarise(result), ...gpuBusy(before, after), model: name, load: `closed c=${concurrency}`, batching, concurrency,
          cpuUs: {
            router: perRequestUs(after.routerCpu - before.routerCpu), executor: perRequestUs(after.executorCpu - before.executorCpu),
            client: perRequestUs(after.clientCpu - before.clientCpu),
          },
        });
      }
      if (RATE > 0) {
        console.error(`${name}, batching ${batching}: open loop at ${RATE} req/s for ${SECONDS}s`);
        const before = await spentSoFar(cluster);
        const result = await openLoop(client, model, RATE, SECONDS);
        rows.push({ ...summarise(result), ...gpuBusy(before, await spentSoFar(cluster)), model: name, load: `open ${RATE}/s`, batching });
      }
    }
  } finally {
    client.close();
    await stopUp(cluster);
    await rm(dataDir, { recursive: true, force: true });
  }
}

const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const table = new Table({
  style: { head: [], border: [] },
  head: ['model', 'load', 'batching', 'req/s', 'mean ms', 'p50 ms', 'p95 ms', 'p99 ms', 'mean batch', 'GPU p50 ms', 'overhead p50 ms', 'GPU busy %', 'gauge %', 'errors'],
});
for (const row of rows) {
  table.push([row.model, row.load, row.batching, fixed(row.throughput, 0), fixed(row.meanMs), fixed(row.p50), fixed(row.p95), fixed(row.p99),
    fixed(row.meanBatch), fixed(row.gpuP50, 2), fixed(row.overheadP50), fixed(row.gpuBusyPercent), fixed(row.gpuBusyGaugePercent), row.errors]);
}
console.log(table.toString());

const ratios = new Table({ style: { head: [], border: [] }, head: ['model', 'concurrency', 'req/s, batching on', 'off', 'ratio on/off', 'GPU ms a row, off / on', 'p99 on (ms)', 'p99 off (ms)',
  'bound: delay + 2 x batch GPU (ms)', 'CPU us/req on: router / executor / client', 'off'] });
const cpuText = (row: Row) => (row.cpuUs ? `${fixed(row.cpuUs.router, 0)} / ${fixed(row.cpuUs.executor, 0)} / ${fixed(row.cpuUs.client, 0)}` : '-');
const figures: Figure[] = [];
for (const name of modelNames) {
  for (const concurrency of CONCURRENCIES) {
    const closed = (batching: 'on' | 'off') => rows.find((row) => row.model === name && row.batching === batching && row.concurrency === concurrency)!;
    const [on, off] = [closed('on'), closed('off')];
    // What batching can save on the GPU alone: a batch-1 run's GPU time over a batched row's. Where
    // every process shares the cores with a software GPU, the ratio of req/s stays below it.
    const gpuRowRatio = off.gpuP50 / (on.gpuP50 / on.meanBatch);
    ratios.push([name, concurrency, fixed(on.throughput, 0), fixed(off.throughput, 0), `${fixed(on.throughput / off.throughput, 2)}x`, `${fixed(gpuRowRatio, 2)}x`, fixed(on.p99),
      fixed(off.p99), fixed(MAX_DELAY_US / 1000 + 2 * on.gpuP50), cpuText(on), cpuText(off)]);
    figures.push({
      id: `e2e.${name}.c${concurrency}.gpu_row_off_over_on`, value: gpuRowRatio, unit: 'x', better: 'higher',
      label: `${name} closed loop c=${concurrency}: GPU ms of a batch-1 run / of a batched row`,
    }, {
      id: `e2e.${name}.c${concurrency}.batching_on_over_off`, value: on.throughput / off.throughput, unit: 'x', better: 'higher',
      label: `${name} closed loop c=${concurrency}: req/s batching on / off`,
    });
  }
}
console.log(ratios.toString());

const benchRows: BenchRow[] = rows.map((row) => ({
  model: row.model, load: row.load, batching: row.batching, concurrency: row.concurrency ?? null, reqPerSecond: cell(row.throughput),
  meanMs: cell(row.meanMs), p50Ms: cell(row.p50), p95Ms: cell(row.p95), p99Ms: cell(row.p99), meanBatch: cell(row.meanBatch),
  gpuP50Ms: cell(row.gpuP50), overheadP50Ms: cell(row.overheadP50), gpuBusyPercent: cell(row.gpuBusyPercent),
  gpuBusyGaugePercent: cell(row.gpuBusyGaugePercent), errors: row.errors,
  routerCpuUsPerRequest: cell(row.cpuUs?.router), executorCpuUsPerRequest: cell(row.cpuUs?.executor), clientCpuUsPerRequest: cell(row.cpuUs?.client),
}));
publish({
  suite: 'e2e', rows: benchRows, figures,
  notes: [`${SECONDS} s per row; batching on: max batch ${MAX_BATCH}, max queue delay ${MAX_DELAY_US} us; off: max batch 1, no delay.`],
});
process.exit(0);

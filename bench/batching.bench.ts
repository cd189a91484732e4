/**
 * Batching on against off, and the Iris latency budget, as the CI gate measures them: two
 * `nexus up` deployments run side by side, one with the default batching (max batch 32, 2 ms
 * queue delay) and one without (max batch 1, no delay), and take turns under the same closed
 * loop in short slices, so a machine that is busier for a while (CI machines are shared) slows
 * both alike; the figure is the median of the per-pair throughput ratios. Then Iris on the
 * batching deployment, a fixed closed loop, for the latency budget.
 *
 *   node bench/batching.bench.ts [--model mlp] [--concurrency 16] [--pairs 6] [--slice 1]
 *                                [--latency-concurrency 4] [--latency-seconds 3] [--quick]
 *
 * --quick changes nothing (this bench is already the gate's size).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { closedLoop, requestFor, send, summarise } from './e2e/load.ts';
import { MODELS } from './e2e/models.ts';
import { cell, publish, type Figure } from './lib/report.ts';
import { median } from './lib/stats.ts';
import { routerClient, startUp, stopUp, storeModel, type UpCluster } from './nexus-up.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'mlp' },
    concurrency: { type: 'string', default: '16' },
    pairs: { type: 'string', default: '6' },
    slice: { type: 'string', default: '1' },
    'latency-concurrency': { type: 'string', default: '4' },
    'latency-seconds': { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
  },
});
const CONCURRENCY = Number(args.concurrency);
const PAIRS = Number(args.pairs);
const SLICE_SECONDS = Number(args.slice);
const LATENCY_CONCURRENCY = Number(args['latency-concurrency']);
const LATENCY_SECONDS = Number(args['latency-seconds']);

interface Deployment {
  name: 'on' | 'off';
  cluster: UpCluster;
  dataDir: string;
}

async function deploy(name: 'on' | 'off', flags: string[]): Promise<Deployment> {
  const dataDir = await mkdtemp(join(tmpdir(), `nexus-batching-${name}-`));
  return { name, cluster: await startUp(dataDir, flags), dataDir };
}

const deployments = await Promise.all([deploy('on', []), deploy('off', ['--max-batch-size', '1', '--max-queue-delay-us', '0'])]);
const [on, off] = deployments;
const clients = new Map(deployments.map((deployment) => [deployment.name, routerClient(deployment.cluster)]));
try {
  const model = MODELS[args.model]();
  const iris = MODELS.iris();
  for (const deployment of deployments) {
    await storeModel(deployment.cluster, model.name, model.onnx, deployment.dataDir);
    await storeModel(deployment.cluster, iris.name, iris.onnx, deployment.dataDir);
    const client = clients.get(deployment.name)!;
    for (let warm = 0; warm < 20; warm++) await Promise.all([send(client, requestFor(model)), send(client, requestFor(iris))]);
    // A first slice each, untimed: the loops and the JIT reach their steady state.
    await closedLoop(client, model, CONCURRENCY, SLICE_SECONDS / 2);
  }

  const throughput = { on: [] as number[], off: [] as number[] };
  for (let pair = 0; pair < PAIRS; pair++) {
    // on, off, then off, on: a drift in the machine's load favours neither.
    for (const deployment of pair % 2 === 0 ? [on, off] : [off, on]) {
      const result = summarise(await closedLoop(clients.get(deployment.name)!, model, CONCURRENCY, SLICE_SECONDS));
      throughput[deployment.name].push(result.throughput);
      console.error(`batching ${deployment.name}, pair ${pair + 1}/${PAIRS}: ${result.throughput.toFixed(0)} req/s`);
    }
  }
  const ratios = throughput.on.map((value, index) => value / throughput.off[index]);
  const latency = summarise(await closedLoop(clients.get('on')!, iris, LATENCY_CONCURRENCY, LATENCY_SECONDS));

  const table = new Table({ style: { head: [], border: [] }, head: ['measure', 'batching on', 'off', 'on / off'] });
  table.push([`${model.name} req/s, closed loop c=${CONCURRENCY}, ${PAIRS} pairs of ${SLICE_SECONDS} s (each)`,
    throughput.on.map((value) => value.toFixed(0)).join(' '), throughput.off.map((value) => value.toFixed(0)).join(' '),
    ratios.map((value) => value.toFixed(2)).join(' ')]);
  table.push([`${model.name} req/s, medians`, median(throughput.on).toFixed(0), median(throughput.off).toFixed(0), `${median(ratios).toFixed(2)}x (median of pairs)`]);
  console.log(table.toString());
  const latencyTable = new Table({ style: { head: [], border: [] }, head: ['iris, batching on', 'req/s', 'mean ms', 'p50 ms', 'p95 ms', 'p99 ms', 'errors'] });
  latencyTable.push([`closed loop c=${LATENCY_CONCURRENCY}, ${LATENCY_SECONDS} s`, latency.throughput.toFixed(0), latency.meanMs.toFixed(2),
    latency.p50.toFixed(2), latency.p95.toFixed(2), latency.p99.toFixed(2), latency.errors]);
  console.log(latencyTable.toString());

  const figures: Figure[] = [
    { id: `batching.${model.name}.c${CONCURRENCY}.on_over_off`, value: median(ratios), unit: 'x', better: 'higher',
      label: `${model.name} c=${CONCURRENCY}: req/s batching on / off (interleaved)` },
    { id: `latency.iris.c${LATENCY_CONCURRENCY}.mean_ms`, value: latency.meanMs, unit: 'ms', better: 'lower', label: `iris c=${LATENCY_CONCURRENCY}, ${LATENCY_SECONDS} s: mean latency` },
    { id: `latency.iris.c${LATENCY_CONCURRENCY}.p95_ms`, value: latency.p95, unit: 'ms', better: 'lower', label: `iris c=${LATENCY_CONCURRENCY}, ${LATENCY_SECONDS} s: p95 latency` },
  ];
  // A failed request would make a latency figure look better than it is.
  if (latency.errors > 0) figures.push({ id: 'latency.iris.errors', value: latency.errors, unit: 'requests', better: 'lower', label: 'iris requests that failed' });
  publish({
    suite: 'batching',
    rows: [
      ...throughput.on.map((value, index) => ({ model: model.name, pair: index + 1, onReqPerSecond: cell(value), offReqPerSecond: cell(throughput.off[index]), ratio: cell(ratios[index]) })),
      { model: 'iris', concurrency: LATENCY_CONCURRENCY, reqPerSecond: cell(latency.throughput), meanMs: cell(latency.meanMs), p50Ms: cell(latency.p50),
        p95Ms: cell(latency.p95), p99Ms: cell(latency.p99), errors: latency.errors },
    ],
    figures,
    notes: ['batching on: nexus up defaults (max batch 32, 2 ms queue delay); off: --max-batch-size 1 --max-queue-delay-us 0'],
  });
} finally {
  for (const client of clients.values()) client.close();
  await Promise.all(deployments.map(async (deployment) => {
    await stopUp(deployment.cluster);
    await rm(deployment.dataDir, { recursive: true, force: true });
  }));
}
process.exit(0);

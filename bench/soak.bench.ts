/**
 * Soak: a steady load through `nexus up` for a long while, printing the resident memory (VmRSS)
 * of every service process over time, so a leak or an unbounded buffer shows as a column that
 * only grows. The load mixes calls with short deadlines (they expire and are cancelled), calls
 * with long ones, and a ModelStreamInfer client that never reads its answers.
 *
 *   node bench/soak.bench.ts [--minutes 10] [--sample-seconds 30] [--concurrency 64]
 *
 * Not run in CI.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { GRPCInferenceServiceClient, type ModelInferRequest } from '../services/protocol/generated/inference/grpc_service.ts';
import { trainIrisModel } from '../services/examples/iris/train.ts';
import { startUp, storeModel } from './nexus-up.ts';


const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    'sample-seconds': { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '64' },
  },
});
const MINUTES = Number(args.minutes);
const SAMPLE_SECONDS = Number(args['sample-seconds']);
const CONCURRENCY = Number(args.concurrency);

/** The process ids under `pid` (its children, theirs, …), read from /proc. */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/** A service's name from its command line (services/<name>/main.ts), or undefined for other processes. */
function serviceOf(pid: number): string | undefined {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /services\/(\w+)\/main\.ts/.exec(cmdline)?.[1];
  } catch {
    return undefined;
  }
}

/** VmRSS of a process in MiB; NaN once it is gone. */
async function rssMiB(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
    return kib / 1024;
  } catch {
    return NaN;
  }
}

const request = (rows: number): ModelInferRequest => ({
  modelName: 'iris', modelVersion: '', id: '', parameters: {}, outputs: [], rawInputContents: [],
  inputs: [{
    name: 'features', datatype: 'FP32', shape: [rows, 4], parameters: {},
    contents: { boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [], fp64Contents: [], bytesContents: [], fp32Contents: new Array(rows * 4).fill(5) },
  }],
});

const dataDir = await mkdtemp(join(tmpdir(), 'nexus-soak-'));
const up = await startUp(dataDir);
try {
  await storeModel(up, 'iris', trainIrisModel().onnx, dataDir);

  const services = new Map<string, number>();
  for (const pid of descendants(up.process.pid!)) {
    const name = serviceOf(pid);
    if (name) services.set(services.has(name) ? `${name}-${pid}` : name, pid);
  }
  const client = new GRPCInferenceServiceClient(up.router, credentials.createInsecure());
  const outcomes = new Map<string, number>();
  const count = (error: ServiceError | null) => {
    const key = error ? String(error.code) : 'OK';
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  };
  const stopAt = Date.now() + MINUTES * 60_000;
  const worker = async (index: number) => {
    while (Date.now() < stopAt) {
      // Every fourth client asks for answers within 20 ms: under load they expire and are cancelled.
      const deadlineMs = index % 4 === 0 ? 20 : 5_000;
      await new Promise<void>((done) => client.modelInfer(request(1 + (index % 8)), new Metadata(), { deadline: Date.now() + deadlineMs }, (error) => {
        count(error);
        done();
      }));
    }
  };
  // A stream client that writes and never reads: the router must stop reading it, not buffer its answers.
  const streamClient = new GRPCInferenceServiceClient(up.router, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const unread = streamClient.modelStreamInfer(new Metadata());
  let unreadOutcome = 'open';
  unread.on('error', (error: ServiceError) => { unreadOutcome = `closed with code ${error.code}: ${error.details}`; });
  unread.pause();
  for (let index = 0; index < 5_000; index++) unread.write(request(16));

  const table = new Table({ head: ['minute', ...services.keys(), 'answered OK', 'other outcomes'] });
  const sample = async (startedAt: number) => {
    const rss = await Promise.all([...services.values()].map(rssMiB));
    const others = [...outcomes].filter(([key]) => key !== 'OK').map(([key, value]) => `${key}:${value}`).join(' ');
    table.push([((Date.now() - startedAt) / 60_000).toFixed(1), ...rss.map((value) => `${value.toFixed(0)} MiB`), outcomes.get('OK') ?? 0, others]);
  };
  const startedAt = Date.now();
  await sample(startedAt);
  const sampler = setInterval(() => void sample(startedAt), SAMPLE_SECONDS * 1000);
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, index) => worker(index)));
  clearInterval(sampler);
  await sample(startedAt);
  unread.cancel();
  client.close();
  streamClient.close();
  console.log(`The stream client that never read: ${unreadOutcome}.`);
  console.log(`Resident memory (VmRSS) of each service, ${CONCURRENCY} clients for ${MINUTES} min (status codes by number):`);
  console.log(table.toString());
} finally {
  await new Promise<void>((done) => {
    up.process.once('exit', () => done());
    up.process.kill('SIGINT');
  });
  await rm(dataDir, { recursive: true, force: true });
}

/**
 * Instructions the router and the executor execute per Iris request, counted by callgrind.
 *
 * A registry runs in this process; the router (`services/router/main.ts`, the real process) and
 * an executor on Dawn's null backend (null-executor.ts: the real executor service, no GPU) run
 * as their own processes under callgrind, beside a bare grpc-js server of the same API
 * (echo-server.ts, the peer); this process is the client. Requests go one at a time (each its
 * own batch, so batching cannot differ between runs) through real gRPC, each to the router and
 * then the same to the echo server. After `warmup` of them (the JIT settles), each of `samples`
 * parts of `requests` is counted between two marks (see callgrind.ts) and divided by the
 * requests in it.
 *
 * Some work is paid per second rather than per request: prom-client's event-loop delay monitor
 * wakes every 10 ms, gRPC keepalive pings, the router's sweeps. Under callgrind a part lasts from
 * ten seconds to minutes, depending on how busy the machine is, so that work would move the
 * counts by several per cent. A part of `idleSeconds` with no requests, first, measures each
 * process's instructions per second at rest, and each part has that rate times its own
 * duration taken out. The router runs with authentication off (NEXUS_INSECURE=1), since nothing
 * here issues keys; the e2e bench measures it as `nexus up` deploys it.
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GRPCInferenceServiceClient, type ModelInferRequest } from '../../services/protocol/generated/inference/grpc_service.ts';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { startRegistry } from '../../services/registry/index.ts';
import { storeWithCli } from '../nexus-up.ts';
import { startMeasured, type MeasuredProcess, type PartCount } from './callgrind.ts';
import { ECHO_SERVER_SCRIPT } from './echo-server.ts';
import { NULL_EXECUTOR_SCRIPT } from './null-executor.ts';

const ROOT = resolve(import.meta.dirname, '../..');

export interface InstructionOptions {
  /** Requests before the first mark. */
  warmup: number;
  /** Requests in each measured part. */
  requests: number;
  /** Measured parts, one after another in the same processes. */
  samples: number;
  /** Length of the part at rest that measures the per-second work (see above). */
  idleSeconds: number;
  /** Run without valgrind: checks the harness in seconds, counts nothing. */
  plain?: boolean;
  /** Progress lines go here. */
  log?: (line: string) => void;
}

/** Instructions per request of one process, one value per measured part. */
export interface PerRequest {
  /** Outside V8's compilers (see callgrind.ts), per-second work taken out: the cost the gate holds. */
  work: number[];
  /** Everything, compiling and per-second work included. */
  total: number[];
  /** Instructions per second at rest (the idle part). */
  idlePerSecond: number;
}

export interface InstructionCounts {
  router: PerRequest;
  /** The executor runs each request as its own batch of one row. */
  executor: PerRequest;
  /** The bare grpc-js server of the same API (echo-server.ts). */
  echo: PerRequest;
  /** Wall seconds the whole measurement took. */
  seconds: number;
}

/** One Iris flower as the router receives it. */
export const IRIS_REQUEST: ModelInferRequest = {
  modelName: 'iris', modelVersion: '', id: '', parameters: {}, outputs: [],
  inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: undefined }],
  rawInputContents: [new Uint8Array(Float32Array.of(5.1, 3.5, 1.4, 0.2).buffer)],
};

function infer(client: GRPCInferenceServiceClient): Promise<void> {
  return new Promise((done, reject) => client.modelInfer(IRIS_REQUEST, new Metadata(), { deadline: Date.now() + 120_000 },
    (error) => (error ? reject(error) : done())));
}

/** The address a service process announces in its `listening` line. */
async function listeningAddress(measured: MeasuredProcess, name: string): Promise<string> {
  for (const started = Date.now(); Date.now() - started < 300_000;) {
    const line = measured.stdout().split('\n').find((candidate) => candidate.includes('"listening"'));
    if (line) return JSON.parse(line).address as string;
    if (measured.process.exitCode !== null) throw new Error(`${name} exited with ${measured.process.exitCode} before listening`);
    await new Promise((wake) => setTimeout(wake, 50));
  }
  throw new Error(`${name} did not start listening within 300 s`);
}

export async function measureRequestInstructions(options: InstructionOptions): Promise<InstructionCounts> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'nexus-instructions-'));
  const registry = await startRegistry({ dataDir: join(dataDir, 'registry') });
  const processes: MeasuredProcess[] = [];
  let client: GRPCInferenceServiceClient | undefined;
  let echoClient: GRPCInferenceServiceClient | undefined;
  try {
    await storeWithCli(registry.address, 'iris', trainIrisModel().onnx, dataDir);
    // Logging at warn: a log line per request would be measured too, and it is off in production.
    const env = { NEXUS_LOG_LEVEL: 'warn', NEXUS_DRAIN_DELAY_MS: '0', NEXUS_INSECURE: '1' };
    const executor = startMeasured({
      name: 'executor', outDir: dataDir, env, plain: options.plain,
      args: [NULL_EXECUTOR_SCRIPT, '--registry', registry.address, '--cache-dir', join(dataDir, 'cache')],
    });
    processes.push(executor);
    const echo = startMeasured({ name: 'echo', outDir: dataDir, plain: options.plain, args: [ECHO_SERVER_SCRIPT] });
    processes.push(echo);
    const executorAddress = await listeningAddress(executor, 'executor');
    const router = startMeasured({
      name: 'router', outDir: dataDir, env, plain: options.plain,
      args: [join(ROOT, 'services/router/main.ts'), '--address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0',
        '--registry', registry.address, '--executor', executorAddress, '--max-queue-delay-us', '0', '--http-address', 'none'],
    });
    processes.push(router);
    client = new GRPCInferenceServiceClient(await listeningAddress(router, 'router'), credentials.createInsecure());
    echoClient = new GRPCInferenceServiceClient(await listeningAddress(echo, 'echo'), credentials.createInsecure());
    log(`services up after ${((performance.now() - started) / 1000).toFixed(0)} s; ${options.warmup} warm-up requests`);
    const both = async (count: number) => {
      for (let request = 0; request < count; request++) {
        await infer(client!);
        await infer(echoClient!);
      }
    };
    await both(options.warmup);
    await Promise.all(processes.map((measured) => measured.begin()));
    /** Wall seconds of each part, the idle one first, from one round of marks to the next. */
    const seconds: number[] = [];
    let partStarted = performance.now();
    const markAll = async () => {
      await Promise.all(processes.map((measured) => measured.mark()));
      seconds.push((performance.now() - partStarted) / 1000);
      partStarted = performance.now();
    };
    await new Promise((wake) => setTimeout(wake, options.idleSeconds * 1000));
    await markAll();
    for (let sample = 0; sample < options.samples; sample++) {
      await both(options.requests);
      await markAll();
      log(`part ${sample + 1}/${options.samples}: ${options.requests} requests in ${seconds.at(-1)!.toFixed(1)} s`);
    }
    client.close();
    echoClient.close();
    client = echoClient = undefined;
    const [routerParts, executorParts, echoParts] = [await router.stop(), await executor.stop(), await echo.stop()];
    const perRequest = ([idle, ...parts]: PartCount[]): PerRequest => {
      // Subtracting the compilers' inclusive cost can overshoot by a little: never below zero.
      const idlePerSecond = Math.max(0, (idle.instructions - idle.compilerInstructions) / seconds[0]);
      return {
        work: parts.map((part, index) => (part.instructions - part.compilerInstructions - idlePerSecond * seconds[index + 1]) / options.requests),
        total: parts.map((part) => part.instructions / options.requests),
        idlePerSecond,
      };
    };
    return {
      router: perRequest(routerParts), executor: perRequest(executorParts), echo: perRequest(echoParts), seconds: (performance.now() - started) / 1000,
    };
  } finally {
    client?.close();
    echoClient?.close();
    for (const measured of processes) if (measured.process.exitCode === null) measured.process.kill('SIGKILL');
    await registry.shutdown(100);
    // NEXUS_KEEP=1 keeps the callgrind files (callgrind_annotate shows where the instructions went).
    if (process.env.NEXUS_KEEP) log(`callgrind files kept in ${dataDir}`);
    else await rm(dataDir, { recursive: true, force: true });
  }
}

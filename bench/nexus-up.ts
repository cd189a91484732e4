/** `nexus up` as a child process for the benches: start it, store a model through the CLI, stop it. */
import { credentials, InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GRPCInferenceServiceClient } from '../services/protocol/generated/inference/grpc_service.ts';
import { exitOnSignals } from './lib/exit.ts';

const CLI = join(resolve(import.meta.dirname, '..'), 'services/cli/main.ts');

export interface UpCluster {
  router: string;
  registry: string;
  /** /metrics URL of each service process, by name (router, executor-0, …). */
  metrics: Map<string, string>;
  process: ChildProcess;
  /** The --data-dir it was started with (its TLS directory and admin key live there). */
  dataDir: string;
}

/** Every `nexus up` started and not yet stopped, stopped with this process however it ends. */
const running = new Set<ChildProcess>();
let stopsWithProcess = false;

function stopWithProcess(): void {
  if (stopsWithProcess) return;
  stopsWithProcess = true;
  exitOnSignals();
  process.once('exit', () => {
    for (const child of running) child.kill('SIGINT');
  });
}

/** Starts `nexus up` on free ports with `flags` added, and resolves once it is serving. */
export function startUp(dataDir: string, flags: string[] = []): Promise<UpCluster> {
  stopWithProcess();
  const child = spawn(process.execPath, [CLI, 'up', '--port', '0', '--registry-port', '0', '--data-dir', dataDir, ...flags],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NEXUS_LOG_LEVEL: process.env.NEXUS_LOG_LEVEL ?? 'warn' } });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  return new Promise((resolveCluster, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const router = /router \(Open Inference Protocol over gRPC\): (\S+)/.exec(output)?.[1];
      const registry = /registry\s+(\S+)/.exec(output)?.[1];
      if (router && registry && output.includes('press Ctrl-C to stop')) {
        const metrics = new Map([...output.matchAll(/^\s+(\S+)\s+\S+\s+metrics (http:\/\/\S+)$/gm)].map((match) => [match[1], match[2]]));
        resolveCluster({ router, registry, metrics, process: child, dataDir });
      }
    });
    child.once('exit', (code) => reject(new Error(`nexus up exited with ${code}:\n${output}`)));
  });
}

/** Stops it as Ctrl-C would, and resolves once it has exited. */
export function stopUp(cluster: UpCluster): Promise<void> {
  return new Promise<void>((done) => {
    cluster.process.once('exit', () => done());
    cluster.process.kill('SIGINT');
  });
}

/** `nexus store` of ONNX bytes as model `name`, written to `dataDir` first. */
export function storeModel(cluster: UpCluster, name: string, onnx: Uint8Array, dataDir: string): Promise<void> {
  return storeWithCli(cluster.registry, name, onnx, dataDir);
}

/**
 * `nexus store` of ONNX bytes as model `name` into the registry at `registry` (host:port), with
 * `dataDir` as NEXUS_HOME: the CLI presents the admin key and trusts the CA `nexus up` keeps there.
 */
export async function storeWithCli(registry: string, name: string, onnx: Uint8Array, dataDir: string): Promise<void> {
  const path = join(dataDir, `${name}.onnx`);
  await writeFile(path, onnx);
  const store = spawn(process.execPath, [CLI, 'store', path, name, '--registry', registry],
    { stdio: 'ignore', env: { ...process.env, NEXUS_HOME: dataDir } });
  const code = await new Promise((done) => store.once('exit', done));
  if (code !== 0) throw new Error(`storing ${name} failed (${code})`);
}

/** The admin key `nexus up` had the registry write into its data directory; undefined without one. */
function adminKey(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, 'credentials', 'admin.key'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Adds `authorization: Bearer <token>` to every call. */
function bearer(token: string): Interceptor {
  return (options, nextCall) => new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('authorization', `Bearer ${token}`);
      next(metadata, listener);
    },
  });
}

/** A client of the cluster's router that authenticates with the admin key when there is one. */
export function routerClient(cluster: UpCluster): GRPCInferenceServiceClient {
  const token = adminKey(cluster.dataDir);
  return new GRPCInferenceServiceClient(cluster.router, credentials.createInsecure(), token ? { interceptors: [bearer(token)] } : {});
}

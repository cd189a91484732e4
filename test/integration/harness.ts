/**
 * Starts a registry, executors and a router on free ports in this process, each with its own
 * temporary directory, and gives clients for them. Used by the integration tests.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { GRPCInferenceServiceClient, type ModelInferRequest, type ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { ExecutorClient, type GetStatsResponse } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { startExecutor, type RunningExecutor } from '../../services/executor/service/index.ts';
import { startRegistry } from '../../services/registry/index.ts';
import { DEFAULT_SERVING_CONFIG, startRouter, type BatchingPolicy, type RouterConfig, type RunningRouter } from '../../services/router/index.ts';
import type { RunningServer } from '../../services/rpc/server.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface Cluster {
  registry: RunningServer;
  executors: RunningExecutor[];
  executorProcesses: ExecutorProcess[];
  router: RunningRouter;
  inference: GRPCInferenceServiceClient;
  dataDir: string;
  /** Runs the nexus CLI as a separate process; resolves with its exit code and output. */
  cli(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  infer(request: Partial<ModelInferRequest>, deadlineMs?: number): Promise<ModelInferResponse>;
  /** Stores ONNX bytes as a new version of `name` through the CLI; throws with its stderr if it fails. */
  store(name: string, onnx: Uint8Array): Promise<void>;
  /** Polls ModelReady (which loads the model on first touch) until it says ready. */
  waitUntilReady(model: string, timeoutMs?: number): Promise<void>;
  executorStats(index?: number): Promise<GetStatsResponse>;
  stop(): Promise<void>;
}

export async function startCluster(options: {
  executors?: number;
  /** Executors in child processes (killable), instead of in this process. */
  executorProcesses?: number;
  policy?: BatchingPolicy;
  /** Full router config; `policy` is a shorthand for its defaults. */
  config?: RouterConfig;
  /** The router's least NOT_SERVING time on shutdown, in milliseconds. */
  drainDelayMs?: number;
  /** Options of the executors in this process (a GPU budget, say). */
  executorOptions?: Partial<Omit<Parameters<typeof startExecutor>[0], 'registryAddress' | 'cacheDir'>>;
} = {}): Promise<Cluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'nexus-it-'));
  const executors: RunningExecutor[] = [];
  const executorProcesses: ExecutorProcess[] = [];
  let registry: RunningServer | undefined;
  let router: RunningRouter;
  try {
    registry = await startRegistry({ dataDir: join(dataDir, 'registry') });
    for (let index = 0; index < (options.executorProcesses ?? 0); index++) {
      executorProcesses.push(await startExecutorProcess(registry.address, join(dataDir, `process-cache-${index}`)));
    }
    for (let index = 0; index < (options.executors ?? (executorProcesses.length > 0 ? 0 : 1)); index++) {
      executors.push(await startExecutor({ ...options.executorOptions, registryAddress: registry.address, cacheDir: join(dataDir, `cache-${index}`) }));
    }
    router = await startRouter({
      address: '127.0.0.1:0',
      // These tests are not about authentication (test/integration/router-auth.test.ts is).
      insecure: true,
      registryAddress: registry.address,
      executorAddresses: [...executors, ...executorProcesses].map((executor) => executor.address),
      drainDelayMs: options.drainDelayMs,
      config: options.config ?? (options.policy ? { defaults: { ...DEFAULT_SERVING_CONFIG, ...options.policy }, models: {} } : undefined),
    });
  } catch (error) {
    // A half-started cluster must not leave processes behind (they would keep the test run alive).
    for (const child of executorProcesses) child.process.kill('SIGKILL');
    for (const executor of executors) await executor.shutdown(100);
    await registry?.shutdown(100);
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const inference = new GRPCInferenceServiceClient(router.address, credentials.createInsecure());
  const executorClients = [...executors, ...executorProcesses].map((executor) => new ExecutorClient(executor.address, credentials.createInsecure()));

  const cluster: Cluster = {
    registry, executors, executorProcesses, router, inference, dataDir,
    async cli(args, cwd = REPO_ROOT) {
      try {
        const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), ...args], {
          cwd, env: { ...process.env, NEXUS_REGISTRY: registry.address, NEXUS_ROUTER: router.address },
        });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const failed = error as { code: number; stdout: string; stderr: string };
        return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
      }
    },
    infer(request, deadlineMs = 60_000) {
      const full: ModelInferRequest = {
        modelName: '', modelVersion: '', id: '', parameters: {}, inputs: [], outputs: [], rawInputContents: [], ...request,
      };
      return new Promise((resolveResponse, reject) => {
        inference.modelInfer(full, new Metadata(), { deadline: Date.now() + deadlineMs }, (error: ServiceError | null, response: ModelInferResponse) =>
          (error ? reject(error) : resolveResponse(response)));
      });
    },
    async store(name, onnx) {
      const path = join(dataDir, `${name}-${randomUUID()}.onnx`);
      await writeFile(path, onnx);
      const result = await cluster.cli(['store', path, name]);
      if (result.code !== 0) throw new Error(`nexus store ${name} exited with ${result.code}: ${result.stderr}`);
    },
    async waitUntilReady(model, timeoutMs = 60_000) {
      const isReady = () => new Promise<boolean>((resolveReady, reject) =>
        inference.modelReady({ name: model, version: '' }, (error, response) => (error ? reject(error) : resolveReady(response.ready))));
      for (const started = Date.now(); !(await isReady());) {
        if (Date.now() - started > timeoutMs) throw new Error(`${model} did not become ready in ${timeoutMs} ms`);
        await new Promise((wake) => setTimeout(wake, 50));
      }
    },
    executorStats(index = 0) {
      return new Promise((resolveStats, reject) => {
        executorClients[index].getStats({}, (error, response) => (error ? reject(error) : resolveStats(response)));
      });
    },
    async stop() {
      inference.close();
      for (const client of executorClients) client.close();
      await router.shutdown(1000);
      for (const executor of executors) await executor.shutdown(1000);
      for (const child of executorProcesses) if (child.process.exitCode === null) child.process.kill('SIGKILL');
      await registry.shutdown(1000);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** An executor in its own process, so a test can kill it. */
export interface ExecutorProcess {
  address: string;
  process: ChildProcess;
}

/** Starts `services/executor/main.ts` as a child process and waits until it listens. */
export async function startExecutorProcess(registryAddress: string, cacheDir: string): Promise<ExecutorProcess> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'services/executor/main.ts'),
    '--address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0', '--registry', registryAddress, '--cache-dir', cacheDir],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  const address = await new Promise<string>((resolveAddress, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const line = output.split('\n').find((candidate) => candidate.includes('"listening"'));
      if (line) resolveAddress(JSON.parse(line).address);
    });
    child.once('exit', (code) => reject(new Error(`executor exited with ${code} before listening`)));
  });
  return { address, process: child };
}

/** `nexus up` as a process tree, with the addresses it printed. */
export interface NexusUp {
  process: ChildProcess;
  router: string;
  registry: string;
  /** host:port of each service's /metrics, by the name `nexus up` gives it (registry, executor-0, router). */
  metrics: Record<string, string>;
  stop(): Promise<number | null>;
}

/** Starts `nexus up` on free ports with `env` added, and waits for its summary. */
export async function startNexusUp(dataDir: string, env: Record<string, string> = {}, args: string[] = []): Promise<NexusUp> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), 'up', '--port', '0', '--registry-port', '0', '--data-dir', dataDir, ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  await new Promise<void>((resolveUp, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      if (output.includes('press Ctrl-C to stop')) resolveUp();
    });
    child.once('exit', (code) => reject(new Error(`nexus up exited with ${code}:\n${output}`)));
  });
  const metrics: Record<string, string> = {};
  for (const match of output.matchAll(/^\s+(\S+)\s+(\S+)\s+metrics http:\/\/(\S+)\/metrics$/gm)) metrics[match[1]] = match[3];
  return {
    process: child,
    router: /router \(Open Inference Protocol over gRPC\): (\S+)/.exec(output)![1],
    registry: /^\s+registry\s+(\S+)/m.exec(output)![1],
    metrics,
    stop: () => new Promise((resolveExit) => {
      if (child.exitCode !== null) return resolveExit(child.exitCode);
      child.once('exit', (code) => resolveExit(code));
      child.kill('SIGINT');
    }),
  };
}

/** Typed contents holding FP32 values only. */
export function fp32Contents(values: number[]) {
  return {
    boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [],
    fp32Contents: values, fp64Contents: [], bytesContents: [],
  };
}

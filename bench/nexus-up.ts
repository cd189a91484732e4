/** `nexus up` as a child process for the benches: start it, store a model through the CLI, stop it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const CLI = join(resolve(import.meta.dirname, '..'), 'services/cli/main.ts');

export interface UpCluster {
  router: string;
  registry: string;
  /** /metrics URL of each service process, by name (router, executor-0, …). */
  metrics: Map<string, string>;
  process: ChildProcess;
}

/** Starts `nexus up` on free ports with `flags` added, and resolves once it is serving. */
export function startUp(dataDir: string, flags: string[] = []): Promise<UpCluster> {
  const child = spawn(process.execPath, [CLI, 'up', '--port', '0', '--registry-port', '0', '--data-dir', dataDir, ...flags],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NEXUS_LOG_LEVEL: process.env.NEXUS_LOG_LEVEL ?? 'warn' } });
  let output = '';
  return new Promise((resolveCluster, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const router = /router \(Open Inference Protocol over gRPC\): (\S+)/.exec(output)?.[1];
      const registry = /registry\s+(\S+)/.exec(output)?.[1];
      if (router && registry && output.includes('press Ctrl-C to stop')) {
        const metrics = new Map([...output.matchAll(/^\s+(\S+)\s+\S+\s+metrics (http:\/\/\S+)$/gm)].map((match) => [match[1], match[2]]));
        resolveCluster({ router, registry, metrics, process: child });
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
export async function storeModel(cluster: UpCluster, name: string, onnx: Uint8Array, dataDir: string): Promise<void> {
  const path = join(dataDir, `${name}.onnx`);
  await writeFile(path, onnx);
  const store = spawn(process.execPath, [CLI, 'store', path, name, '--registry', cluster.registry], { stdio: 'ignore' });
  const code = await new Promise((done) => store.once('exit', done));
  if (code !== 0) throw new Error(`storing ${name} failed (${code})`);
}

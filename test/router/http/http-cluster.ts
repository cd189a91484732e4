/**
 * A registry, an executor and a router with its HTTP port, on free ports in this process, with
 * authentication on (keys made through the registry's key store) or off, and helpers to store
 * models through the CLI and to call the HTTP port with fetch. Used by the HTTP API, OpenAI and
 * browser tests.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Role } from '../../../services/auth/roles.ts';
import type { PrincipalLimits } from '../../../services/auth/principal.ts';
import { startExecutor, type RunningExecutor } from '../../../services/executor/service/index.ts';
import { startRegistry, type RunningRegistry } from '../../../services/registry/index.ts';
import { startRouter, type RouterConfig, type RunningRouter } from '../../../services/router/index.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');

const NO_LIMITS: PrincipalLimits = { requestsPerSecond: 0, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 };

export interface HttpCluster {
  registry: RunningRegistry;
  executor: RunningExecutor | undefined;
  router: RunningRouter;
  /** http://host:port of the router's HTTP port. */
  baseUrl: string;
  dataDir: string;
  /** Creates an API key and waits until the router knows it (authentication on only). */
  key(role: Role, options?: { models?: string[]; limits?: Partial<PrincipalLimits> }): Promise<string>;
  /** `nexus <args>` against this cluster, from the repository (so stored versions carry its git lineage). */
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /**
   * Stores ONNX bytes as a new version of `name` with `nexus store`, from a git repository of its
   * own (one commit on branch `main` with `message`, plus an uncommitted change when `dirty`), so
   * the version carries that lineage. Resolves with the commit.
   */
  store(name: string, onnx: Uint8Array, lineage?: { message?: string; dirty?: boolean }): Promise<string>;
  /** Stores a directory of `files` (a checkpoint) as a new version of `name` with `nexus store`. */
  storeDirectory(name: string, files: Record<string, string | Buffer>): Promise<void>;
  stop(): Promise<void>;
}

export interface HttpClusterOptions {
  /** Authentication on: the router follows the registry's keys. Default false (--insecure). */
  auth?: boolean;
  /** Start a real executor. Default true. */
  executor?: boolean;
  /** Executors to dial instead (a fake one's address). */
  executorAddresses?: string[];
  config?: RouterConfig;
  corsOrigin?: string;
}

export async function startHttpCluster(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'nexus-http-'));
  const registry = await startRegistry({ dataDir: join(dataDir, 'registry'), keyPollIntervalMs: 100 });
  const executor = options.executor === false ? undefined : await startExecutor({ registryAddress: registry.address, cacheDir: join(dataDir, 'cache') });
  const router = await startRouter({
    address: '127.0.0.1:0', insecure: !options.auth, registryAddress: registry.address, config: options.config,
    executorAddresses: [...(executor ? [executor.address] : []), ...(options.executorAddresses ?? [])],
    http: { address: '127.0.0.1:0', corsOrigin: options.corsOrigin },
  });
  const baseUrl = `http://${router.httpAddress}`;
  const cluster: HttpCluster = {
    registry, executor, router, baseUrl, dataDir,
    async key(role, { models = [], limits = {} } = {}) {
      const created = await registry.keys.create({ name: `test-${role}`, role, models, limits: { ...NO_LIMITS, ...limits } }, 'test');
      // The router hears of keys through WatchKeys: poll until it stops answering 401.
      for (const started = Date.now(); Date.now() - started < 10_000;) {
        const response = await fetch(`${baseUrl}/api/dashboard/session`, { headers: { authorization: `Bearer ${created.key}` } });
        await response.arrayBuffer();
        if (response.status !== 401) return created.key;
        await new Promise((wake) => setTimeout(wake, 50));
      }
      throw new Error('the router never learned of the key');
    },
    async cli(args) {
      try {
        const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), ...args], {
          cwd: REPO_ROOT, env: { ...process.env, NEXUS_HOME: dataDir, NEXUS_REGISTRY: registry.address, NEXUS_ROUTER: router.address },
        });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const failed = error as { code: number; stdout: string; stderr: string };
        return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
      }
    },
    async store(name, onnx, { message = `train ${name}`, dirty = false } = {}) {
      const repo = join(dataDir, `repo-${randomUUID()}`);
      const git = (...args: string[]) => promisify(execFile)('git', ['-C', repo, '-c', 'user.name=Ada', '-c', 'user.email=ada@example.com', ...args]);
      await mkdir(repo);
      await promisify(execFile)('git', ['init', '-q', '-b', 'main', repo]);
      await writeFile(join(repo, 'train.py'), `# trains ${name}\n`);
      await writeFile(join(repo, '.gitignore'), '*.onnx\n');
      await git('add', 'train.py', '.gitignore');
      await git('commit', '-q', '-m', message);
      if (dirty) await writeFile(join(repo, 'train.py'), `# trains ${name}, changed\n`);
      const path = join(repo, `${name}.onnx`);
      await writeFile(path, onnx);
      const result = await cluster.cli(['store', path, name, ...(dirty ? ['--allow-dirty'] : [])]);
      if (result.code !== 0) throw new Error(`nexus store ${name} exited with ${result.code}: ${result.stderr}`);
      return (await git('rev-parse', 'HEAD')).stdout.trim();
    },
    async storeDirectory(name, files) {
      const dir = join(dataDir, `${name}-${randomUUID()}`);
      await mkdir(dir);
      for (const [path, content] of Object.entries(files)) await writeFile(join(dir, path), content);
      const result = await cluster.cli(['store', dir, name, '--allow-dirty']);
      if (result.code !== 0) throw new Error(`nexus store ${name} exited with ${result.code}: ${result.stderr}`);
    },
    async stop() {
      await router.shutdown(500);
      await executor?.shutdown(500);
      await registry.shutdown(500);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return cluster;
}

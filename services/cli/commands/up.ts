/**
 * nexus up: registry, executor(s) and router on this machine, each its own process, on the
 * embedded defaults. With --example it also trains the Iris classifier and serves it, and serves
 * the committed WordNet GPT language model (services/examples/wordnet-gpt/) beside it.
 *
 * The children are supervised: one that exits unexpectedly is restarted on the address it had,
 * with backoff (see ../supervision/), while the others keep running. That is safe because the
 * registry's store is the only state; executors reload models and the router reconnects. Each
 * child's pid is in `<data dir>/run/<name>.pid`.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { ListeningMessage } from '../../rpc/service-process.ts';
import { IRIS_EXAMPLE_DIR, trainIrisModel, WORDNET_GPT_EXAMPLE } from '../../examples/index.ts';
import type { ModelReadyResponse } from '../../protocol/generated/inference/grpc_service.ts';
import { GetVersionRequest, type GetVersionResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ensureServiceMaterial } from '../../tls/index.ts';
import { adminKeyPath, inferenceClient, registryClient, sha256OfFile, unaryCall, useLocalDeployment } from '../remote/index.ts';
import { Supervisor } from '../supervision/index.ts';
import { ExitCode } from '../terminal/index.ts';
import { storeModel } from './store.ts';

const SERVICES_DIR = resolve(import.meta.dirname, '../..');
/**
 * Each service's process entry point, relative to services/: `nexus up` forks these, so the CLI
 * depends on how a service is started, never on its modules.
 */
const SERVICE_ENTRY_POINTS = { registry: 'registry/main.ts', executor: 'executor/main.ts', router: 'router/main.ts' } as const;
/** How long a service may take to start listening, in milliseconds. */
const START_TIMEOUT_MS = 120_000;

export interface UpOptions {
  host: string;
  port: string;
  registryPort: string;
  executors: string;
  /** One executor per adapter: 'all' or indices ('0,2'), each pinned with --adapter. */
  gpus?: string;
  dataDir: string;
  example?: boolean;
  maxBatchSize?: string;
  maxQueueDelayUs?: string;
}

interface Child {
  name: string;
  process: ChildProcess;
  address: string;
  metricsAddress: string;
  /** Where the router's HTTP port listens (its REST API, OpenAI API and dashboard); undefined for the other services. */
  httpAddress?: string;
}

/** Where `nexus up` keeps its children's logs and pid files. */
interface RunDirs {
  logDir: string;
  pidDir: string;
}

/**
 * The TLS directory and the names its certificates carry beyond localhost, 127.0.0.1 and ::1:
 * NEXUS_TLS_DIR or <data dir>/tls; the --host the services listen on when it names one interface
 * (they are dialed by it), and NEXUS_TLS_EXTRA_NAMES (comma-separated host names or IPs that
 * clients on other machines dial).
 */
function tlsSettings(dataDir: string, host: string): { dir: string; extraNames: string[] } {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
  const extraNames = [...(wildcard ? [] : [host.replace(/^\[|\]$/g, '')]), ...(process.env.NEXUS_TLS_EXTRA_NAMES ?? '').split(',')]
    .map((name) => name.trim()).filter((name) => name !== '');
  return { dir: resolve(process.env.NEXUS_TLS_DIR || join(dataDir, 'tls')), extraNames };
}

/**
 * The adapters `--gpus` names, asked of the executor's own entry point (it lists what dawn.node
 * sees, and refuses an index that is not there); throws its message.
 */
async function adaptersNamed(gpus: string): Promise<number[]> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [join(SERVICES_DIR, SERVICE_ENTRY_POINTS.executor), '--list-adapters', '--gpus', gpus]);
    return (JSON.parse(stdout) as { selected: number[] }).selected;
  } catch (error) {
    throw new Error(((error as { stderr?: string }).stderr ?? '').trim() || (error as Error).message);
  }
}

/** The metrics port beside a service port (8001 → 8002, as Triton does); 0 stays 0. */
const metricsPortBeside = (port: string) => (Number(port) === 0 ? 0 : Number(port) + 1);
/** The router's HTTP port beside its gRPC port (8001 → 8000, as Triton has them); 0 stays 0. */
const httpPortBeside = (port: string) => (Number(port) <= 1 ? 0 : Number(port) - 1);

/** Removes a pid file; one that cannot be removed is left for the next `nexus up` to overwrite. */
function removePidFile(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // An exit handler must not throw; a stale pid file is harmless.
  }
}

/** Starts a service, writes its pid file, and waits until it listens. */
async function startChild(name: string, script: string, args: string[], dirs: RunDirs): Promise<Child> {
  const logPath = join(dirs.logDir, `${name}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = fork(join(SERVICES_DIR, script), args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  child.stderr!.pipe(log);
  const pidPath = join(dirs.pidDir, `${name}.pid`);
  // Both synchronous: no exit can come between writing and watching, and the file is gone
  // before anything else hears the exit (stop() resolves on it, and `nexus up` then exits).
  writeFileSync(pidPath, `${child.pid}\n`);
  child.once('exit', () => removePidFile(pidPath));
  let onMessage: ((message: ListeningMessage) => void) | undefined;
  let onExit: ((code: number | null) => void) | undefined;
  try {
    let httpAddress: string | undefined;
    const listening = await new Promise<ListeningMessage>((resolveAddress, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name} did not start within ${START_TIMEOUT_MS / 1000}s; see ${logPath}`));
      }, START_TIMEOUT_MS);
      onMessage = (message) => {
        // The router announces its HTTP port (services/router/main.ts) just before it says it listens.
        if ((message as { event: string }).event === 'http-listening') httpAddress = message.address;
        if (message.event !== 'listening') return;
        clearTimeout(timer);
        resolveAddress(message);
      };
      onExit = (code) => {
        clearTimeout(timer);
        void readFile(logPath, 'utf8').catch(() => '').then((text) => {
          const tail = text.trim().split('\n').slice(-5).join('\n');
          reject(new Error(`${name} exited with code ${code} while starting; last log lines (${logPath}):\n${tail}`));
        });
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    return { name, process: child, address: listening.address, metricsAddress: listening.metricsAddress, httpAddress };
  } finally {
    child.off('message', onMessage!);
    child.off('exit', onExit!);
  }
}

/**
 * Starts a service and supervises it: a restart binds the addresses the first start got, so the
 * processes that call it (and people who read the banner) need no update.
 */
async function startSupervised(
  supervisor: Supervisor, name: string, script: string, args: (address: string, metricsAddress: string, httpAddress?: string) => string[],
  first: { address: string; metricsAddress: string; httpAddress?: string }, dirs: RunDirs,
): Promise<Child> {
  const child = await startChild(name, script, args(first.address, first.metricsAddress, first.httpAddress), dirs);
  supervisor.supervise(name, child.process, async () =>
    (await startChild(name, script, args(child.address, child.metricsAddress, child.httpAddress), dirs)).process);
  return child;
}

/** Trains the Iris example and stores it, unless the latest stored version has the same bytes. */
async function serveExample(dataDir: string, registry: string): Promise<void> {
  const path = join(dataDir, 'examples', 'iris.onnx');
  await mkdir(join(dataDir, 'examples'), { recursive: true });
  const trained = trainIrisModel();
  await writeFile(path, trained.onnx);
  const client = registryClient(registry);
  try {
    const latest = await unaryCall<GetVersionResponse>((done) => client.getVersion(GetVersionRequest.fromPartial({ modelName: 'iris', version: 0 }), done))
      .catch(() => undefined);
    if (latest?.version?.sha256 === (await sha256OfFile(path))) return;
  } finally {
    client.close();
  }
  // The version's lineage is the commit of the code that trained it.
  const code = await storeModel(path, 'iris', {
    registry, format: 'onnx', tag: [`test_accuracy=${trained.testAccuracy.toFixed(4)}`],
    lineagePath: IRIS_EXAMPLE_DIR,
  });
  if (code !== ExitCode.OK) throw new Error('could not store the example model');
}

/** The tag that says which checkpoint files a stored version of the example language model holds. */
const CHECKPOINT_TAG = 'checkpoint_sha256';

/** One digest over the example checkpoint's files, names included, in name order. */
async function checkpointDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(dir)).sort()) hash.update(`${name}\0${await sha256OfFile(join(dir, name))}\n`);
  return hash.digest('hex');
}

/** Stores the committed WordNet GPT checkpoint as one version, unless the latest one holds the same files. */
async function serveExampleLanguageModel(registry: string): Promise<void> {
  const { modelName, checkpointDir, sourceDir } = WORDNET_GPT_EXAMPLE;
  const digest = await checkpointDigest(checkpointDir);
  const client = registryClient(registry);
  try {
    const latest = await unaryCall<GetVersionResponse>((done) => client.getVersion(GetVersionRequest.fromPartial({ modelName, version: 0 }), done))
      .catch(() => undefined);
    if (latest?.version?.tags[CHECKPOINT_TAG] === digest) return;
  } finally {
    client.close();
  }
  const code = await storeModel(checkpointDir, modelName, { registry, tag: [`${CHECKPOINT_TAG}=${digest}`], lineagePath: sourceDir, writeMeta: false });
  if (code !== ExitCode.OK) throw new Error('could not store the example language model');
}

/** Waits until the router says the model is ready (it loads on the first ModelReady). */
async function warmUp(router: string, model: string): Promise<void> {
  const client = inferenceClient(router);
  try {
    for (const started = Date.now(); Date.now() - started < START_TIMEOUT_MS;) {
      const { ready } = await unaryCall<ModelReadyResponse>((done) => client.modelReady({ name: model, version: '' }, done));
      if (ready) return;
      await new Promise((wake) => setTimeout(wake, 200));
    }
    throw new Error(`${model} did not become ready within ${START_TIMEOUT_MS / 1000}s`);
  } finally {
    client.close();
  }
}

export async function up(options: UpOptions): Promise<number> {
  const dataDir = resolve(options.dataDir);
  const dirs: RunDirs = { logDir: join(dataDir, 'logs'), pidDir: join(dataDir, 'run') };
  const { logDir } = dirs;
  await mkdir(logDir, { recursive: true });
  await mkdir(dirs.pidDir, { recursive: true });
  const children: Child[] = [];
  let servingLanguageModel = false;
  const supervisor = new Supervisor({
    notice: (line) => console.error(`${line}; logs in ${logDir}`),
  });

  const tls = tlsSettings(dataDir, options.host);
  try {
    // The CA and each service's certificate: created on the first start, kept on later ones, issued
    // again near expiry. The services link over mutual TLS; the router's public port stays plaintext.
    const material = await ensureServiceMaterial(tls.dir, ['registry', 'executor', 'router'], tls.extraNames);
    if (material.createdAuthority) console.error(`tls: created a CA and the services' certificates in ${tls.dir}`);
    else for (const { service, reason } of material.issued) console.error(`tls: issued ${service}.crt in ${tls.dir} again (${reason})`);
    const tlsArgs = ['--tls-dir', tls.dir];
    // The registry writes the first admin key here; this command's own calls present it.
    const adminKeyFile = adminKeyPath(dataDir);
    useLocalDeployment({ adminKeyFile, caFile: join(tls.dir, 'ca.crt') });
    const registry = await startSupervised(supervisor, 'registry', SERVICE_ENTRY_POINTS.registry, (address, metricsAddress) =>
      ['--address', address, '--data-dir', join(dataDir, 'registry'), '--metrics-address', metricsAddress, ...tlsArgs, '--bootstrap-admin-key-file', adminKeyFile],
    { address: `${options.host}:${options.registryPort}`, metricsAddress: `${options.host}:${metricsPortBeside(options.registryPort)}` }, dirs);
    children.push(registry);
    if (options.gpus !== undefined && Number(options.executors) !== 1) throw new Error('give --gpus (one executor per adapter) or --executors N, not both');
    // With --gpus, one executor per adapter, each pinned to it; otherwise --executors on Dawn's first choice.
    const adapters: Array<number | undefined> = options.gpus !== undefined ? await adaptersNamed(options.gpus)
      : Array.from({ length: Math.max(1, Number(options.executors)) }, () => undefined);
    for (const [index, adapter] of adapters.entries()) {
      const adapterArgs = adapter === undefined ? [] : ['--adapter', String(adapter)];
      children.push(await startSupervised(supervisor, adapter === undefined ? `executor-${index}` : `executor-gpu${adapter}`, SERVICE_ENTRY_POINTS.executor, (address, metricsAddress) =>
        ['--address', address, '--registry', registry.address, '--cache-dir', join(dataDir, 'cache'), '--metrics-address', metricsAddress, ...adapterArgs, ...tlsArgs],
      { address: '127.0.0.1:0', metricsAddress: '127.0.0.1:0' }, dirs));
    }
    const executorArgs = children.filter((child) => child.name.startsWith('executor')).flatMap((child) => ['--executor', child.address]);
    const batchingArgs = [
      ...(options.maxBatchSize ? ['--max-batch-size', options.maxBatchSize] : []),
      ...(options.maxQueueDelayUs ? ['--max-queue-delay-us', options.maxQueueDelayUs] : []),
    ];
    // A restart binds the HTTP port the first start got, as it does the others.
    const router = await startSupervised(supervisor, 'router', SERVICE_ENTRY_POINTS.router, (address, metricsAddress, httpAddress) =>
      ['--address', address, '--http-address', httpAddress ?? 'none', '--registry', registry.address, '--metrics-address', metricsAddress, ...executorArgs, ...batchingArgs, ...tlsArgs],
    { address: `${options.host}:${options.port}`, metricsAddress: `${options.host}:${metricsPortBeside(options.port)}`, httpAddress: `${options.host}:${httpPortBeside(options.port)}` }, dirs);
    children.push(router);

    if (options.example) {
      await serveExample(dataDir, registry.address);
      await warmUp(router.address, 'iris');
      // The language model is the second example; one that cannot load leaves iris served.
      try {
        await serveExampleLanguageModel(registry.address);
        await warmUp(router.address, WORDNET_GPT_EXAMPLE.modelName);
        servingLanguageModel = true;
      } catch (error) {
        console.error(`the example language model is not served: ${(error as Error).message}`);
      }
    }

    console.log('NexusML is up');
    for (const child of children) console.log(`  ${child.name.padEnd(11)} ${child.address.padEnd(21)} metrics http://${child.metricsAddress}/metrics`);
    console.log(`  data        ${dataDir}`);
    console.log(`  logs        ${logDir}`);
    console.log(`  pids        ${dirs.pidDir}`);
    console.log(`  credentials ${adminKeyFile}`);
    console.log(`  tls         ${tls.dir}`);
    console.log(`router (Open Inference Protocol over gRPC): ${router.address}`);
    if (router.httpAddress) {
      console.log(`router (REST, OpenAI API and dashboard over HTTP): http://${router.httpAddress}`);
      console.log(`dashboard: http://${router.httpAddress}/ (log in with the key in ${adminKeyFile})`);
    }
    if (options.example) {
      console.log('serving the example model "iris" (Iris flower classifier: setosa, versicolor, virginica)');
      console.log(`try: npx nexus infer iris --router ${router.address} --data '[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]'`);
      if (servingLanguageModel) {
        const { modelName, description, samplePrompt } = WORDNET_GPT_EXAMPLE;
        console.log(`serving the example language model "${modelName}" (${description})`);
        console.log(`try: npx nexus generate ${modelName} --router ${router.address} "${samplePrompt}" --max-tokens 24`);
      }
    }
    console.log('a service that exits is restarted; press Ctrl-C to stop');
  } catch (error) {
    console.error((error as Error).message);
    await supervisor.stop();
    return ExitCode.FAILURE;
  }

  await new Promise<void>((done) => {
    const shutdown = () => void supervisor.stop().then(done);
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });
  return ExitCode.OK;
}

/**
 * NexusML across hosts, on one machine: each executor and each router in its own network
 * namespace with its own address (10.77.0.0/24), the registry on this process's side of the
 * bridge, every link mutual TLS as in a cluster. Two routers find the executors through a DNS name
 * served by a DNS server in this test (--executors-dns, resolved by getaddrinfo through each
 * namespace's resolv.conf), as a headless Service's name resolves to its ready pods. Under load
 * from clients of both routers, an executor is added (its record appears) and another removed (its
 * record goes and it gets SIGTERM at once, as Kubernetes does), and no request fails. The
 * executors' certificates name none of their addresses: the routers dial them by IP and verify
 * their identity. Their plaintext health port answers probes.
 */
import { credentials, loadPackageDefinition, Metadata, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { GRPCInferenceServiceClient, type ModelInferRequest } from '../../services/protocol/generated/inference/grpc_service.ts';
import { ExecutorClient, type GetStatsResponse } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { channelCredentials } from '../../services/tls/credentials.ts';
import { ensureServiceMaterial, loadServiceMaterial } from '../../services/tls/material.ts';
import { startDnsServer, type DnsServer } from './multi-host-dns.ts';
import { HOST_ADDRESS, listeningMessage, netnsUnavailable, TestNetwork, type Host, type HostProcess } from './multi-host-network.ts';
import { fp32Contents, REPO_ROOT } from './harness.ts';

const EXECUTORS_NAME = 'executors.nexus.test';
const ROUTER_ADDRESSES = ['10.77.0.100', '10.77.0.101'];
const unavailable = await netnsUnavailable();

const network = new TestNetwork();
let dataDir: string;
let registryProcess: ChildProcess | undefined;
let registryAddress: string;
let dns: DnsServer | undefined;
let adminKey: string;
const executors = new Map<string, { host: Host; running: HostProcess }>();
const routers: Array<{ host: Host; running: HostProcess; client: GRPCInferenceServiceClient }> = [];
const executorHosts = new Map<string, Host>();

const service = (name: string) => join(REPO_ROOT, 'services', name, 'main.ts');
const tlsDir = () => join(dataDir, 'tls');

async function startExecutor(name: string): Promise<void> {
  const host = executorHosts.get(name)!;
  const running = network.spawnNode(host, [service('executor'), '--address', '0.0.0.0:8021', '--metrics-address', '127.0.0.1:0',
    '--health-address', '0.0.0.0:8023', '--registry', registryAddress, '--cache-dir', join(dataDir, `cache-${name}`), '--tls-dir', tlsDir()],
  // Long enough for every router to drain it after its record goes (they re-resolve every 300 ms).
  { NEXUS_DRAIN_DELAY_MS: '3000', NEXUS_LOG_LEVEL: 'info' });
  await listeningMessage(running.process, `executor ${name}`);
  executors.set(name, { host, running });
}

function inferRequest(): ModelInferRequest {
  return {
    modelName: 'iris', modelVersion: '', id: '', parameters: {}, outputs: [], rawInputContents: [],
    inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 4], parameters: {}, contents: fp32Contents([5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]) }],
  };
}

function infer(client: GRPCInferenceServiceClient): Promise<void> {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${adminKey}`);
  return new Promise((resolve, reject) => client.modelInfer(inferRequest(), metadata, { deadline: Date.now() + 15_000 },
    (error: ServiceError | null) => (error ? reject(error) : resolve())));
}

/** The executor's statistics, asked with the router's certificate (the only one it lets in). */
async function statsOf(address: string): Promise<GetStatsResponse> {
  const material = await loadServiceMaterial(tlsDir(), 'router');
  const client = new ExecutorClient(address, channelCredentials(material, 'executor', { verify: 'identity' }));
  try {
    return await new Promise((resolve, reject) => client.getStats({}, (error, stats) => (error ? reject(error) : resolve(stats))));
  } finally {
    client.close();
  }
}

const loaded = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as GrpcObject;
const HealthClient = ((loaded.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;
function healthOf(address: string, serviceName: string): Promise<string> {
  const client = new (HealthClient.Health as ServiceClientConstructor)(address, credentials.createInsecure());
  return new Promise((resolve, reject) => client.check({ service: serviceName }, (error: ServiceError | null, response: { status: string }) => {
    client.close();
    if (error) reject(error);
    else resolve(response.status);
  }));
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  for (const started = Date.now(); !(await condition());) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether a router's log has a line about `executor` whose message is `message`. */
const routerSaid = (router: { running: HostProcess }, executor: string, message: string) =>
  router.running.log().split('\n').some((line) => line.includes(`"executor":"${executor}"`) && line.includes(`"msg":"${message}"`));

describe.skipIf(unavailable !== undefined)(`executors on several hosts${unavailable ? ` (not run: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'nexus-multi-host-'));
    await network.create();
    for (const [index, name] of ['e0', 'e1', 'e2'].entries()) executorHosts.set(name, await network.addHost(name, 10 + index));
    // The registry and the routers are dialed by address; the executors' addresses are in no certificate.
    await ensureServiceMaterial(tlsDir(), ['registry', 'executor', 'router'], [HOST_ADDRESS, ...ROUTER_ADDRESSES]);
    registryProcess = spawn(process.execPath, [service('registry'), '--address', `${HOST_ADDRESS}:0`, '--metrics-address', '127.0.0.1:0',
      '--data-dir', join(dataDir, 'registry'), '--tls-dir', tlsDir(), '--bootstrap-admin-key-file', join(dataDir, 'admin.key')], { stdio: ['ignore', 'pipe', 'inherit'] });
    registryAddress = (await listeningMessage(registryProcess, 'registry')).address;
    adminKey = (await readFile(join(dataDir, 'admin.key'), 'utf8')).trim();
    const model = join(dataDir, 'iris.onnx');
    await writeFile(model, trainIrisModel().onnx);
    const stored = spawn(process.execPath, [service('cli'), '--ca-file', join(tlsDir(), 'ca.crt'), '--token', adminKey, 'store', model, 'iris', '--registry', registryAddress],
      { stdio: ['ignore', 'ignore', 'inherit'] });
    expect(await new Promise((resolve) => stored.once('exit', resolve))).toBe(0);
    dns = await startDnsServer(HOST_ADDRESS, EXECUTORS_NAME, ['10.77.0.10', '10.77.0.11']);
    await Promise.all([startExecutor('e0'), startExecutor('e1')]);
    await Promise.all(ROUTER_ADDRESSES.map(async (address, index) => {
      const host = await network.addHost(`r${index}`, Number(address.split('.')[3]));
      const running = network.spawnNode(host, [service('router'), '--address', '0.0.0.0:8001', '--metrics-address', '127.0.0.1:0',
        '--registry', registryAddress, '--executors-dns', `${EXECUTORS_NAME}:8021`, '--executors-dns-interval-ms', '300', '--tls-dir', tlsDir(),
        '--tls-cert', join(tlsDir(), 'router.crt'), '--tls-key', join(tlsDir(), 'router.key')], { NEXUS_LOG_LEVEL: 'info', NEXUS_HTTP_ADDRESS: 'none' });
      await listeningMessage(running.process, `router ${index}`);
      const client = new GRPCInferenceServiceClient(`${address}:8001`, credentials.createSsl(await readFile(join(tlsDir(), 'ca.crt'))));
      routers.push({ host, running, client });
    }));
    // The first request loads the model on every executor a router knows.
    for (const router of routers) await waitFor('a first answer', () => infer(router.client).then(() => true, () => false), 40_000);
  }, 120_000);

  afterAll(async () => {
    for (const router of routers) router.client.close();
    await dns?.close();
    registryProcess?.kill('SIGKILL');
    await network.cleanup();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('serves through an executor added and one removed under load, two routers sharing them, with no failed request', async () => {
    const failures: string[] = [];
    const answered = routers.map(() => 0);
    let loading = true;
    const workers = routers.flatMap((router, index) => Array.from({ length: 3 }, async () => {
      while (loading) {
        await infer(router.client).then(() => { answered[index] += 1; }, (error: ServiceError) => { failures.push(`router ${index}: ${error.code} ${error.details}`); });
      }
    }));
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // e2 comes up and, once it listens (ready), its record appears.
      await startExecutor('e2');
      dns!.addresses = [...dns!.addresses, '10.77.0.12'];
      await waitFor('both routers to connect to e2', () => routers.every((router) => routerSaid(router, '10.77.0.12:8021', 'executor connected')));
      await waitFor('e2 to run batches', async () => Object.values((await statsOf('10.77.0.12:8021')).batchesBySize).reduce((sum, count) => sum + count, 0) > 0);
      // e0's record goes and it is told to stop, together, as a pod being deleted is.
      const e0 = executors.get('e0')!.running.process;
      const e0Exit = new Promise<number | null>((resolve) => e0.once('exit', resolve));
      dns!.addresses = dns!.addresses.filter((address) => address !== '10.77.0.10');
      e0.kill('SIGTERM');
      await waitFor('both routers to drop e0', () => routers.every((router) => routerSaid(router, '10.77.0.10:8021', 'executor dropped')));
      expect(await e0Exit).toBe(0);
      const before = [...answered];
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(answered.every((count, index) => count > before[index]), 'both routers still answer after e0 left').toBe(true);
    } finally {
      loading = false;
      await Promise.all(workers);
    }
    expect(failures).toEqual([]);
    for (const count of answered) expect(count).toBeGreaterThan(20);
    // Every router found the executors by DNS, and both shared e1 all along.
    for (const router of routers) expect(routerSaid(router, '10.77.0.11:8021', 'executor connected')).toBe(true);
    expect(dns!.queries.A).toBeGreaterThan(4);
  }, 60_000);

  it('lets probes read the executors\' health in plaintext, while their gRPC port takes only a router\'s certificate', async () => {
    expect(await healthOf('10.77.0.11:8023', 'readiness')).toBe('SERVING');
    expect(await healthOf('10.77.0.11:8023', 'liveness')).toBe('SERVING');
    await expect(healthOf('10.77.0.11:8021', 'readiness')).rejects.toMatchObject({ code: 14 });
    expect((await statsOf('10.77.0.11:8021')).models.map((entry) => entry.model?.modelName)).toContain('iris');
  });
});

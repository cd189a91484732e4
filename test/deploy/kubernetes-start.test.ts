/**
 * The cpu overlay's containers started here as processes, with what the pods would have: each
 * container's own arguments and environment, its volume mounts as directories (the Secrets'
 * files as docs/kubernetes.md makes them, the ConfigMaps' keys as files), only the bucket swapped
 * for a local directory and the Services' names for this machine's addresses. Then the docs' first
 * steps: the bootstrap admin key read from the registry's /credentials, a model stored with it, an
 * inference over TLS through the router, which found the executor by DNS; and every health port
 * answering the probes' services in plaintext.
 */
import { credentials, loadPackageDefinition, Metadata, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { GRPCInferenceServiceClient, type ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { ensureServiceMaterial } from '../../services/tls/material.ts';
import { fp32Contents, REPO_ROOT } from '../integration/harness.ts';
import { containersOf, flagOf, named, render, type Container, type KubeObject } from './kubernetes-manifests.ts';

let dir: string;
let objects: KubeObject[];
const processes: ChildProcess[] = [];
const started = new Map<string, { address: string; healthAddress: string; container: Container }>();

/** Where each container's mount points are here, by service. */
const mountDir = (service: string, mountPath: string) => join(dir, service, mountPath.replace(/^\//, ''));

/** Fills the pod's volumes: Secrets with the files their docs list, ConfigMaps with their keys, the rest empty. */
async function prepareVolumes(service: string, workload: KubeObject): Promise<void> {
  const pod = workload.spec.template.spec;
  const [container] = containersOf(workload);
  for (const mount of container.volumeMounts ?? []) {
    const target = mountDir(service, mount.mountPath);
    await mkdir(target, { recursive: true });
    const volume = pod.volumes.find((candidate: { name: string }) => candidate.name === mount.name);
    const secret: string | undefined = volume.secret?.secretName;
    if (secret?.startsWith('nexus-tls-')) {
      const owner = secret.slice('nexus-tls-'.length);
      for (const file of ['ca.crt', `${owner}.crt`, `${owner}.key`]) await copyFile(join(dir, 'nexus-tls', file), join(target, file));
    } else if (secret === 'nexus-router-public-tls') {
      await copyFile(join(dir, 'nexus-tls/router.crt'), join(target, 'tls.crt'));
      await copyFile(join(dir, 'nexus-tls/router.key'), join(target, 'tls.key'));
    } else if (volume.configMap) {
      const map = named(objects, 'ConfigMap', volume.configMap.name);
      for (const [key, value] of Object.entries(map.data ?? {})) await writeFile(join(target, key), value);
    }
  }
}

/** The container's arguments with its mount points and the Services' names made local. */
function localArgs(service: string, container: Container, names: Record<string, string>): string[] {
  return container.args!.map((arg, index) => {
    if (index === 0) return join(REPO_ROOT, arg);
    let local = arg.replace(/=0\.0\.0\.0:\d+$/, '=0.0.0.0:0');
    for (const [name, address] of Object.entries(names)) local = local.replace(`=${name}`, `=${address}`);
    // A path under a mount point moves with it (once: the local directories are under /tmp too).
    const [flag, value] = local.split(/=(.*)/s);
    const mount = (container.volumeMounts ?? []).find((candidate) => value === candidate.mountPath || value?.startsWith(`${candidate.mountPath}/`));
    return mount ? `${flag}=${mountDir(service, mount.mountPath)}${value.slice(mount.mountPath.length)}` : local;
  });
}

/** The container's environment: its ConfigMaps' keys and its own values, the bucket made a directory. */
function localEnv(service: string, container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, named(objects, 'ConfigMap', source.configMapRef.name).data);
  }
  for (const variable of container.env ?? []) if (variable.value !== undefined) env[variable.name] = variable.value;
  if (env.NEXUS_STORE_PROVIDER) Object.assign(env, { NEXUS_STORE_PROVIDER: 'local', NEXUS_STORE_PATH: join(dir, 'bucket') });
  return { ...env, HOME: mountDir(service, '/tmp'), XDG_RUNTIME_DIR: mountDir(service, '/tmp') };
}

async function start(service: string, names: Record<string, string> = {}): Promise<void> {
  const workload = named(objects, 'Deployment', `nexus-${service}`);
  await prepareVolumes(service, workload);
  const [container] = containersOf(workload);
  const child = spawn(process.execPath, localArgs(service, container, names), {
    env: { ...process.env, ...localEnv(service, container) }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  processes.push(child);
  let log = '';
  child.stderr!.on('data', (chunk) => (log += chunk));
  const listening = await new Promise<{ address: string; healthAddress: string }>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const line = output.split('\n').find((candidate) => candidate.includes('"event":"listening"'));
      if (line) resolve(JSON.parse(line));
    });
    child.once('exit', (code) => reject(new Error(`${service} exited with ${code}: ${log}`)));
  });
  started.set(service, { ...listening, container });
}

const loaded = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as GrpcObject;
const HealthClient = ((loaded.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;
function healthOf(address: string, service: string): Promise<string> {
  const client = new (HealthClient.Health as ServiceClientConstructor)(address, credentials.createInsecure());
  return new Promise((resolve, reject) => client.check({ service }, (error: ServiceError | null, response: { status: string }) => {
    client.close();
    if (error) reject(error);
    else resolve(response.status);
  }));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-k8s-start-'));
  objects = await render('overlays/cpu');
  // docs/kubernetes.md, step 3 (names as the Services have them; localhost is in every certificate).
  await ensureServiceMaterial(join(dir, 'nexus-tls'), ['registry', 'executor', 'router'], ['nexus-registry', 'nexus-router']);
  await start('registry');
  const registry = started.get('registry')!.address;
  await start('executor', { 'nexus-registry:8011': registry });
  const executorPort = started.get('executor')!.address.split(':').pop();
  await start('router', { 'nexus-registry:8011': registry, 'nexus-executor:8021': `localhost:${executorPort}` });
}, 120_000);

afterAll(async () => {
  for (const child of processes) child.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the cpu overlay\'s containers, started as their pods would start them', () => {
  it('answer every probe the manifests make, in plaintext on the health port', async () => {
    for (const [service, { healthAddress, container }] of started) {
      expect(healthAddress, service).toMatch(/:\d+$/);
      for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
        expect(await healthOf(healthAddress, probe.grpc.service), `${service} ${probe.grpc.service}`).toBe('SERVING');
      }
    }
  });

  it('serve a model stored with the bootstrap admin key, through the router\'s TLS port, on the executor found by DNS', async () => {
    const credentialsDir = mountDir('registry', '/credentials');
    const key = (await readFile(join(credentialsDir, 'admin.key'), 'utf8')).trim();
    expect(flagOf(started.get('registry')!.container, '--bootstrap-admin-key-file')).toBe('/credentials/admin.key');
    const model = join(dir, 'iris.onnx');
    const iris = trainIrisModel();
    await writeFile(model, iris.onnx);
    const store = spawn(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), '--ca-file', join(dir, 'nexus-tls/ca.crt'), '--token', key,
      'store', model, 'iris', '--registry', started.get('registry')!.address], { stdio: ['ignore', 'ignore', 'inherit'] });
    expect(await new Promise((resolve) => store.once('exit', resolve))).toBe(0);
    const client = new GRPCInferenceServiceClient(started.get('router')!.address, credentials.createSsl(await readFile(join(dir, 'nexus-tls/ca.crt'))));
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${key}`);
    const row = [5.1, 3.5, 1.4, 0.2];
    try {
      const response = await new Promise<ModelInferResponse>((resolve, reject) => client.modelInfer({
        modelName: 'iris', modelVersion: '', id: '', parameters: {}, outputs: [], rawInputContents: [],
        inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(row) }],
      }, metadata, { deadline: Date.now() + 60_000 }, (error: ServiceError | null, answer) => (error ? reject(error) : resolve(answer))));
      // Typed contents in, typed contents out.
      const scores = response.outputs[0].contents!.fp32Contents;
      iris.predict([row])[0].forEach((expected, index) => expect(scores[index]).toBeCloseTo(expected, 4));
    } finally {
      client.close();
    }
  }, 90_000);
});

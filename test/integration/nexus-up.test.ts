/**
 * The README's first command in miniature: `nexus up --example` as its own process tree, then a
 * ModelInfer from another process (`nexus infer` with no flag but the router's address, presenting
 * the admin key that `nexus up` had the registry write under the same NEXUS_HOME) returns the
 * right answer, while a client without a token is refused and the services' own ports take only
 * TLS (the executor's only with a certificate from the deployment's CA); Ctrl-C stops all.
 */
import { credentials, Metadata, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { GRPCInferenceServiceClient, ModelInferRequest } from '../../services/protocol/generated/inference/grpc_service.ts';
import { ExecutorClient } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { RegistryClient } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { fp32Contents, REPO_ROOT } from './harness.ts';

let up: ChildProcess | undefined;
let home: string | undefined;

afterAll(async () => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  if (home) await rm(home, { recursive: true, force: true });
});

it('serves the example model to another process, and stops on SIGINT', async () => {
  home = await mkdtemp(join(tmpdir(), 'nexus-up-'));
  const cli = join(REPO_ROOT, 'services/cli/main.ts');
  up = spawn(process.execPath, [cli, 'up', '--example', '--port', '0', '--registry-port', '0'], {
    env: { ...process.env, NEXUS_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  up.stderr!.on('data', (chunk) => (output += chunk));
  const routerAddress = await new Promise<string>((resolve, reject) => {
    up!.stdout!.on('data', (chunk) => {
      output += chunk;
      const match = /router \(Open Inference Protocol over gRPC\): (\S+)/.exec(output);
      if (match) resolve(match[1]);
    });
    up!.once('exit', (code) => reject(new Error(`nexus up exited with ${code}:\n${output}`)));
  });

  const { stdout } = await promisify(execFile)(process.execPath, [
    cli, 'infer', 'iris', '--router', routerAddress, '--json', '--data', '[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]',
  ], { env: { ...process.env, NEXUS_HOME: home } });
  const result = JSON.parse(stdout);
  expect(result.model_name).toBe('iris');
  const probabilities: number[] = result.outputs[0].values;
  expect(result.outputs[0].shape).toEqual([2, 3]);
  expect(probabilities[0]).toBeGreaterThan(0.9); // the first flower is a setosa
  expect(probabilities[5]).toBeGreaterThan(0.9); // the second a virginica

  // `--version` after the command is the model version, not the CLI's own.
  const pinned = await promisify(execFile)(process.execPath, [
    cli, 'infer', 'iris', '--version', '1', '--router', routerAddress, '--json', '--data', '[[5.1,3.5,1.4,0.2]]',
  ], { env: { ...process.env, NEXUS_HOME: home } });
  expect(JSON.parse(pinned.stdout).model_version).toBe('1');

  // A plain gRPC client without a token is refused: authentication is on by default.
  const anonymous = new GRPCInferenceServiceClient(routerAddress, credentials.createInsecure());
  const refused = await new Promise<ServiceError | null>((resolve) => anonymous.modelInfer(ModelInferRequest.fromPartial({
    modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }],
  }), new Metadata(), { deadline: Date.now() + 10_000 }, (error) => resolve(error)));
  anonymous.close();
  expect(refused).toMatchObject({ code: status.UNAUTHENTICATED, details: "missing credentials: send 'authorization: Bearer <API key or JWT>'" });

  // The links between the services are mutual TLS: the executor takes only a certificate from the deployment's CA.
  const executorAddress = /^\s+executor-0\s+(\S+)/m.exec(output)![1];
  const registryAddress = /^\s+registry\s+(\S+)/m.exec(output)![1];
  const tls = (name: string) => readFile(join(home!, 'tls', name));
  const getStats = (channel: ChannelCredentials) => {
    const client = new ExecutorClient(executorAddress, channel);
    return new Promise<number>((resolve) => client.getStats({}, new Metadata(), { deadline: Date.now() + 5_000 }, (error) => {
      client.close();
      resolve(error ? error.code : status.OK);
    }));
  };
  expect(await getStats(credentials.createInsecure())).toBe(status.UNAVAILABLE);
  expect(await getStats(credentials.createSsl(await tls('ca.crt')))).toBe(status.UNAVAILABLE);
  expect(await getStats(credentials.createSsl(await tls('ca.crt'), await tls('router.key'), await tls('router.crt')))).toBe(status.OK);
  const plaintextRegistry = new RegistryClient(registryAddress, credentials.createInsecure());
  const registryCode = await new Promise<number>((resolve) => plaintextRegistry.listModels({}, new Metadata(), { deadline: Date.now() + 5_000 },
    (error) => resolve(error ? error.code : status.OK)));
  plaintextRegistry.close();
  expect(registryCode).toBe(status.UNAVAILABLE);

  const exited = new Promise<number | null>((resolve) => up!.once('exit', resolve));
  up.kill('SIGINT');
  expect(await exited).toBe(0);
}, 180_000);

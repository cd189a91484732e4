/**
 * No key or token is ever written down: `nexus up` runs the services as processes with debug
 * logging, traces exported to an OTLP receiver and JWTs accepted; keys are created, used (to
 * store a model and run it), rate-limited, revoked and used again, and keys and JWTs that look
 * real but are wrong are refused. Then everything the deployment wrote is searched for every
 * secret that crossed it: the services' logs, every file under the data directory (version
 * records, audit records, key records, events; only the bootstrap admin key's own file is left
 * out), every byte of every exported trace, each service's /metrics, and what the CLI printed
 * (but for the one line `nexus keys create` prints the key on, by design).
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { GRPCInferenceServiceClient, ModelInferRequest } from '../../services/protocol/generated/inference/grpc_service.ts';
import { RegistryClient } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { fp32Contents, REPO_ROOT } from './harness.ts';

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'nexusml';
const CLI = join(REPO_ROOT, 'services/cli/main.ts');

let home: string;
let dataDir: string;
let up: ChildProcess;
let upOutput = '';
let router: string;
let registry: string;
const metricsAddresses: string[] = [];
/** Every OTLP export body, as sent. */
const exports: Buffer[] = [];
let receiver: Server;
let jwtSecret: Buffer;
/** What the CLI printed, but for the key `nexus keys create` prints by design. */
let cliOutput = '';

async function startReceiver(): Promise<string> {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method === 'POST' && request.url === '/v1/traces') exports.push(Buffer.concat(chunks));
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'nexus-secrets-'));
  dataDir = join(home, 'nexus');
  jwtSecret = randomBytes(32);
  await writeFile(join(home, 'jwt.secret'), jwtSecret);
  const endpoint = await startReceiver();
  up = spawn(process.execPath, [CLI, 'up', '--port', '0', '--registry-port', '0', '--data-dir', dataDir], {
    env: {
      ...process.env, NEXUS_HOME: dataDir, NEXUS_LOG_LEVEL: 'debug',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_BSP_SCHEDULE_DELAY: '100',
      NEXUS_JWT_ISSUER: ISSUER, NEXUS_JWT_AUDIENCE: AUDIENCE, NEXUS_JWT_KEY_FILE: join(home, 'jwt.secret'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  up.stderr!.on('data', (chunk) => (upOutput += chunk));
  await new Promise<void>((resolve, reject) => {
    up.stdout!.on('data', (chunk) => {
      upOutput += chunk;
      if (upOutput.includes('press Ctrl-C to stop')) resolve();
    });
    up.once('exit', (code) => reject(new Error(`nexus up exited with ${code}:\n${upOutput}`)));
  });
  router = /router \(Open Inference Protocol over gRPC\): (\S+)/.exec(upOutput)![1];
  registry = /^\s+registry\s+(\S+)/m.exec(upOutput)![1];
  for (const match of upOutput.matchAll(/metrics http:\/\/(\S+)\/metrics$/gm)) metricsAddresses.push(match[1]);
}, 120_000);

afterAll(async () => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  await new Promise((resolve) => receiver?.close(resolve));
  if (home) await rm(home, { recursive: true, force: true });
});

/** Runs the CLI under the deployment's NEXUS_HOME; its output joins `cliOutput` unless `secretOutput`. */
async function cli(args: string[], options: { token?: string; secretOutput?: boolean } = {}): Promise<{ code: number; stdout: string }> {
  const env = { ...process.env, NEXUS_HOME: dataDir, NEXUS_REGISTRY: registry, NEXUS_ROUTER: router, ...(options.token ? { NEXUS_TOKEN: options.token } : {}) };
  const result = await promisify(execFile)(process.execPath, [CLI, ...args], { env }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
  cliOutput += `${result.stderr}\n${options.secretOutput ? '' : result.stdout}\n`;
  return result;
}

async function createKey(...flags: string[]): Promise<{ key: string; id: string }> {
  const { code, stdout } = await cli(['keys', 'create', ...flags, '--json'], { secretOutput: true });
  expect(code).toBe(0);
  return JSON.parse(stdout);
}

const bearer = (token: string) => {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
};

function infer(token: string): Promise<{ code: number; details: string }> {
  const client = new GRPCInferenceServiceClient(router, credentials.createInsecure());
  const request = ModelInferRequest.fromPartial({
    modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }],
  });
  return new Promise((resolve) => client.modelInfer(request, bearer(token), { deadline: Date.now() + 60_000 }, (error: ServiceError | null) => {
    client.close();
    resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '' });
  }));
}

async function listModelsAtRegistry(token: string): Promise<number> {
  const client = new RegistryClient(registry, credentials.createSsl(await readFile(join(dataDir, 'tls', 'ca.crt'))));
  return new Promise((resolve) => client.listModels({}, bearer(token), (error) => {
    client.close();
    resolve(error ? error.code : status.OK);
  }));
}

const jwt = (secret: Uint8Array, expiresAt: number | string = '5m') => new SignJWT({ nexus_role: 'infer' }).setProtectedHeader({ alg: 'HS256' })
  .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('ada').setExpirationTime(expiresAt).sign(secret);

/** Every file under `dir` with its path, but for `skip`. */
async function filesUnder(dir: string, skip: string): Promise<Array<{ path: string; bytes: Buffer }>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name)).filter((path) => path !== skip);
  return Promise.all(files.map(async (path) => ({ path: relative(dir, path), bytes: await readFile(path) })));
}

it('writes no key, secret or token to logs, traces, metrics, stored records or the CLI\'s output', async () => {
  const adminKeyFile = join(dataDir, 'credentials', 'admin.key');
  const adminKey = (await readFile(adminKeyFile, 'utf8')).trim();
  const writer = await createKey('--role', 'write', '--name', 'ci');
  const reader = await createKey('--role', 'infer', '--models', 'iris');
  const limited = await createKey('--role', 'infer', '--rate', '1/s', '--burst', '1');

  // A key stores a model (the version record names its principal) and another runs it.
  const modelPath = join(home, 'iris.onnx');
  await writeFile(modelPath, trainIrisModel().onnx);
  expect((await cli(['store', modelPath, 'iris'], { token: writer.key })).code).toBe(0);
  expect((await cli(['infer', 'iris', '--data', '[[5.1,3.5,1.4,0.2]]', '--json'], { token: reader.key })).code).toBe(0);
  for (let attempt = 0; (await infer(reader.key)).code !== status.OK; attempt++) {
    // The router hears of new keys through a stream: the first calls may come before the key.
    expect(attempt).toBeLessThan(100);
    await new Promise((wake) => setTimeout(wake, 50));
  }
  const goodJwt = await jwt(jwtSecret);
  expect(await infer(goodJwt)).toEqual({ code: status.OK, details: '' });

  // Refusals: a rate limit, keys and tokens that look real but are wrong, a revoked key.
  const limitedOutcomes = [await infer(limited.key), await infer(limited.key), await infer(limited.key)];
  expect(limitedOutcomes.map((outcome) => outcome.code)).toContain(status.RESOURCE_EXHAUSTED);
  const wrongSecret = `nxk_${reader.id}_${randomBytes(32).toString('base64url')}`;
  const unknownKey = `nxk_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;
  const forgedJwt = await jwt(randomBytes(32));
  const expiredJwt = await jwt(jwtSecret, Math.floor(Date.now() / 1000) - 3600);
  for (const token of [wrongSecret, unknownKey, forgedJwt, expiredJwt]) {
    expect((await infer(token)).code).toBe(status.UNAUTHENTICATED);
    expect(await listModelsAtRegistry(token)).toBe(status.UNAUTHENTICATED);
  }
  expect((await cli(['infer', 'iris', '--data', '[[5.1,3.5,1.4,0.2]]'], { token: wrongSecret })).code).not.toBe(0);
  expect((await cli(['keys', 'revoke', writer.id])).code).toBe(0);
  expect((await cli(['store', modelPath, 'iris'], { token: writer.key })).code).not.toBe(0);
  expect((await cli(['audit', '--limit', '100', '--json'])).code).toBe(0);

  // Traces are exported in batches every 100 ms; wait for the spans of the calls made.
  for (const started = Date.now(); !Buffer.concat(exports).includes('UploadVersion') || !Buffer.concat(exports).includes('ModelInfer');) {
    expect(Date.now() - started, 'spans of UploadVersion and ModelInfer exported').toBeLessThan(15_000);
    await new Promise((wake) => setTimeout(wake, 100));
  }
  const metrics = await Promise.all(metricsAddresses.map(async (address) => (await fetch(`http://${address}/metrics`)).text()));
  const stopped = new Promise((resolve) => up.once('exit', resolve));
  up.kill('SIGINT');
  await stopped;

  const files = await filesUnder(dataDir, adminKeyFile);
  const written: Array<{ where: string; text: Buffer }> = [
    ...files.map(({ path, bytes }) => ({ where: path, text: bytes })),
    ...exports.map((body, index) => ({ where: `trace export ${index}`, text: body })),
    ...metrics.map((text, index) => ({ where: `${metricsAddresses[index]}/metrics`, text: Buffer.from(text) })),
    { where: 'the output of nexus up', text: Buffer.from(upOutput) },
    { where: 'the output of the CLI', text: Buffer.from(cliOutput) },
  ];

  // The search had something to search: the logs say what was refused, records and metrics name principals by id.
  const all = Buffer.concat(written.map((entry) => entry.text)).toString();
  expect(all).toContain('call refused');
  expect(all).toContain(`key:${writer.id}`);
  expect(all).toContain(`key:${limited.id}`);
  expect(files.map((file) => file.path)).toEqual(expect.arrayContaining([expect.stringMatching(/^logs\/router\.log$/), expect.stringMatching(/^registry\/auth\/keys\//)]));

  const secretOf = (key: string) => key.slice(17);
  const signatureOf = (token: string) => token.split('.')[2]!;
  const secrets: Record<string, string> = {
    'the admin key': adminKey, "the admin key's secret": secretOf(adminKey),
    ...Object.fromEntries([['writer', writer.key], ['reader', reader.key], ['limited', limited.key], ['wrong secret', wrongSecret], ['unknown', unknownKey]]
      .flatMap(([name, key]) => [[`the ${name} key`, key], [`the ${name} key's secret`, secretOf(key)]])),
    ...Object.fromEntries([['good', goodJwt], ['forged', forgedJwt], ['expired', expiredJwt]]
      .flatMap(([name, token]) => [[`the ${name} JWT`, token], [`the ${name} JWT's signature`, signatureOf(token)]])),
    'the JWT secret (base64url)': jwtSecret.toString('base64url'), 'the JWT secret (hex)': jwtSecret.toString('hex'),
  };
  const found = written.flatMap(({ where, text }) => Object.entries(secrets).filter(([, secret]) => text.includes(secret)).map(([what]) => `${what} in ${where}`));
  expect(found).toEqual([]);
}, 180_000);

/**
 * A router with authentication on, following a real registry's keys: API keys the registry
 * creates are accepted once they reach the router, a revocation is refused within moments,
 * roles and model globs hold for unary calls and each ModelStreamInfer message, JWTs are
 * accepted beside keys, and liveness needs no credentials.
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Role } from '../../services/auth/roles.ts';
import {
  GRPCInferenceServiceClient, ModelInferRequest, type ModelStreamInferResponse,
} from '../../services/protocol/generated/inference/grpc_service.ts';
import { ExperimentsClient } from '../../services/protocol/generated/nexus/router/v1/experiments.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { startRouter, type RunningRouter } from '../../services/router/index.ts';

const ISSUER = 'https://id.example.com/';
const secret = randomBytes(32);
let dir: string;
let registry: RunningRegistry;
let router: RunningRouter;
let inference: GRPCInferenceServiceClient;
let experiments: ExperimentsClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-router-auth-'));
  await writeFile(join(dir, 'jwt.secret'), secret);
  registry = await startRegistry({ dataDir: join(dir, 'registry'), keyPollIntervalMs: 100 });
  router = await startRouter({
    address: '127.0.0.1:0', registryAddress: registry.address, executorAddresses: [],
    jwt: { issuer: ISSUER, audience: 'nexusml', keyFile: join(dir, 'jwt.secret') },
  });
  inference = new GRPCInferenceServiceClient(router.address, credentials.createInsecure());
  experiments = new ExperimentsClient(router.address, credentials.createInsecure());
});

afterAll(async () => {
  inference?.close();
  experiments?.close();
  await router?.shutdown(100);
  await registry?.shutdown(100);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const createKey = async (role: Role, models: string[] = []) =>
  (await registry.keys.create({ name: 'test', role, models, limits: { requestsPerSecond: 0, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 } }, 'test'));

const bearer = (token?: string) => {
  const metadata = new Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
};

function infer(token: string | undefined, modelName: string): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    inference.modelInfer(ModelInferRequest.fromPartial({ modelName }), bearer(token), { deadline: Date.now() + 10_000 }, (error: ServiceError | null) =>
      resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '' }));
  });
}

/** Retries `probe` until it answers `code` (the router hears of keys through a stream). */
async function eventually(probe: () => Promise<{ code: number; details: string }>, code: number) {
  let last = await probe();
  for (const started = Date.now(); last.code !== code && Date.now() - started < 10_000;) {
    await new Promise((wake) => setTimeout(wake, 50));
    last = await probe();
  }
  return last;
}

it('refuses a call without credentials and answers liveness without them', async () => {
  expect(await infer(undefined, 'iris')).toEqual({ code: status.UNAUTHENTICATED, details: "missing credentials: send 'authorization: Bearer <API key or JWT>'" });
  const live = await new Promise<boolean>((resolve, reject) => inference.serverLive({}, (error, response) => (error ? reject(error) : resolve(response.live))));
  expect(live).toBe(true);
});

it('accepts a key the registry created, within its model globs, and refuses it once revoked', async () => {
  const created = await createKey('infer', ['iris*']);
  // Past authentication and authorization: the router looks for the model, which does not exist.
  expect((await eventually(() => infer(created.key, 'iris'), status.NOT_FOUND)).code).toBe(status.NOT_FOUND);
  expect(await infer(created.key, 'resnet')).toEqual({ code: status.PERMISSION_DENIED, details: "this credential may not use model 'resnet'" });
  await registry.keys.revoke(created.verifier.info!.id);
  expect(await eventually(() => infer(created.key, 'iris'), status.UNAUTHENTICATED)).toEqual({
    code: status.UNAUTHENTICATED, details: 'invalid credentials: the key was revoked',
  });
});

it("refuses a role below the method's", async () => {
  const created = await createKey('infer');
  await eventually(() => infer(created.key, 'iris'), status.NOT_FOUND);
  const outcome = await new Promise<{ code: number; details: string }>((resolve) => experiments.reportOutcome(
    { modelName: 'iris', alias: 'prod', modelVersion: 1, value: 1 }, bearer(created.key),
    (error) => resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '' })));
  expect(outcome).toEqual({ code: status.PERMISSION_DENIED, details: "ReportOutcome needs the 'write' role" });
});

it('checks the model of each ModelStreamInfer message, answering a refused one and going on', async () => {
  const created = await createKey('infer', ['iris']);
  await eventually(() => infer(created.key, 'iris'), status.NOT_FOUND);
  const answers = await new Promise<string[]>((resolve, reject) => {
    const call = inference.modelStreamInfer(bearer(created.key));
    const messages: string[] = [];
    call.on('data', (message: ModelStreamInferResponse) => messages.push(`${message.inferResponse?.id}: ${message.errorMessage.split(':')[0]}`));
    call.on('error', reject);
    call.on('end', () => resolve(messages.sort()));
    call.write(ModelInferRequest.fromPartial({ modelName: 'resnet', id: 'a' }));
    call.write(ModelInferRequest.fromPartial({ modelName: 'iris', id: 'b' }));
    call.end();
  });
  expect(answers).toEqual(['a: PERMISSION_DENIED', 'b: NOT_FOUND']);
});

it('accepts a JWT from the configured issuer beside API keys', async () => {
  const token = await new SignJWT({ nexus_role: 'infer', nexus_models: ['bert'] }).setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER).setAudience('nexusml').setSubject('alice').setExpirationTime('5m').sign(secret);
  expect((await infer(token, 'bert')).code).toBe(status.NOT_FOUND);
  expect(await infer(token, 'iris')).toEqual({ code: status.PERMISSION_DENIED, details: "this credential may not use model 'iris'" });
});

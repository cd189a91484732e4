/**
 * A real grpc-js server that authenticates, called by real clients: every kind of method (unary,
 * client-, server- and bidirectional streaming) is refused without valid credentials or the
 * right role or model, runs with them (its handler seeing the principal), and open methods,
 * health and reflection answer anyone.
 */
import { credentials, loadPackageDefinition, Metadata, status, type GrpcObject, type ServerDuplexStream, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { SignJWT, type JWTPayload } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceAccess } from '../../services/auth/access.ts';
import { generateApiKey } from '../../services/auth/api-keys.ts';
import { createAuthenticator } from '../../services/auth/authenticator.ts';
import { JwtVerifier } from '../../services/auth/jwt.ts';
import { KeyDirectory } from '../../services/auth/key-directory.ts';
import {
  GRPCInferenceServiceClient, GRPCInferenceServiceService, ModelInferRequest, type ModelInferResponse, type ModelStreamInferResponse,
} from '../../services/protocol/generated/inference/grpc_service.ts';
import { KeyVerifier } from '../../services/protocol/generated/nexus/auth/v1/keys.ts';
import { ModelVersion, RegistryClient, RegistryService, type UploadVersionRequest } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { TasksClient, TasksService, WatchTaskResponse } from '../../services/protocol/generated/nexus/router/v1/tasks.ts';
import { principalOf } from '../../services/rpc/call-principal.ts';
import { clientStream, serverStream, unary } from '../../services/rpc/handlers.ts';
import { startGrpcServer, type RunningServer } from '../../services/rpc/server.ts';
import { createLogger } from '../../services/telemetry/logger.ts';
import { metrics } from '../../services/telemetry/metrics.ts';

const logger = createLogger('auth-test');
const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'nexusml';
const secret = randomBytes(32);

const INFERENCE_ACCESS: ServiceAccess = {
  serverLive: { open: true },
  serverReady: { open: true },
  modelReady: { role: 'infer', modelOf: (request: { name: string }) => request.name },
  modelInfer: { role: 'infer', modelOf: (request: ModelInferRequest) => request.modelName },
  modelStreamInfer: { role: 'infer' },
  modelMetadata: { role: 'admin', services: ['router'] },
  // serverMetadata has no entry: refused whoever calls.
};
const TASKS_ACCESS: ServiceAccess = { watchTask: { role: 'write' } };
const REGISTRY_ACCESS: ServiceAccess = { uploadVersion: { role: 'write' } };

function makeKey(role: string, models: string[] = [], revoked = false) {
  const generated = generateApiKey();
  return {
    key: generated.key,
    id: generated.id,
    verifier: KeyVerifier.fromPartial({ info: { id: generated.id, role, models, revokedAtUnixMs: revoked ? 5 : 0 }, secretSha256: generated.secretSha256 }),
  };
}
const inferKey = makeKey('infer', ['iris-*']);
const writeKey = makeKey('write');
const adminKey = makeKey('admin');
const revokedKey = makeKey('admin', [], true);

let dir: string;
let server: RunningServer;
let inference: GRPCInferenceServiceClient;
let tasks: TasksClient;
let registry: RegistryClient;

const emptyResponse = (request: ModelInferRequest, id: string): ModelInferResponse => ({
  modelName: request.modelName, modelVersion: '', id, parameters: {}, outputs: [], rawOutputContents: [],
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-auth-server-'));
  const keyFile = join(dir, 'jwt.secret');
  await writeFile(keyFile, secret);
  const keys = new KeyDirectory();
  keys.replace([inferKey.verifier, writeKey.verifier, adminKey.verifier, revokedKey.verifier]);
  const authenticator = createAuthenticator({ apiKeys: keys, jwt: await JwtVerifier.create({ issuer: ISSUER, audience: AUDIENCE, keyFile }) });
  server = await startGrpcServer({
    address: '127.0.0.1:0',
    auth: { authenticator, logger },
    services: [{
      name: 'inference.GRPCInferenceService',
      protoFile: 'inference/grpc_service.proto',
      definition: GRPCInferenceServiceService,
      access: INFERENCE_ACCESS,
      implementation: {
        serverLive: unary('ServerLive', logger, async () => ({ live: true })),
        serverReady: unary('ServerReady', logger, async () => ({ ready: true })),
        serverMetadata: unary('ServerMetadata', logger, async () => ({ name: 'test', version: '0', extensions: [] })),
        modelReady: unary('ModelReady', logger, async () => ({ ready: true })),
        modelMetadata: unary('ModelMetadata', logger, async () => ({ name: 'm', versions: [], platform: '', inputs: [], outputs: [], properties: {} })),
        modelInfer: unary('ModelInfer', logger, async (request: ModelInferRequest, call) => emptyResponse(request, principalOf(call).id)),
        modelStreamInfer(call: ServerDuplexStream<ModelInferRequest, ModelStreamInferResponse>) {
          const principal = principalOf(call);
          call.on('data', (request: ModelInferRequest) => call.write({ errorMessage: '', inferResponse: emptyResponse(request, principal.id) }));
          call.on('end', () => call.end());
        },
      },
    }, {
      name: 'nexus.router.v1.Tasks',
      protoFile: 'nexus/router/v1/tasks.proto',
      definition: TasksService,
      access: TASKS_ACCESS,
      implementation: {
        watchTask: serverStream('WatchTask', logger, async (_request: unknown, call) => {
          call.write(WatchTaskResponse.fromPartial({ status: { taskId: principalOf(call).id } }));
        }),
      },
    }, {
      name: 'nexus.registry.v1.Registry',
      protoFile: 'nexus/registry/v1/registry.proto',
      definition: RegistryService,
      access: REGISTRY_ACCESS,
      implementation: {
        uploadVersion: clientStream('UploadVersion', logger, async (call) => {
          for await (const _message of call as AsyncIterable<UploadVersionRequest>) { /* read to the end */ }
          return { version: ModelVersion.fromPartial({ creator: principalOf(call).id }), deduplicated: false };
        }),
      },
    }],
  });
  inference = new GRPCInferenceServiceClient(server.address, credentials.createInsecure());
  tasks = new TasksClient(server.address, credentials.createInsecure());
  registry = new RegistryClient(server.address, credentials.createInsecure());
});

afterAll(async () => {
  inference?.close();
  tasks?.close();
  registry?.close();
  await server?.shutdown(0);
  await rm(dir, { recursive: true, force: true });
});

const bearer = (token?: string) => {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
};

const jwt = (claims: JWTPayload = {}) => new SignJWT({
  iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600, nexus_role: 'infer', ...claims,
}).setProtectedHeader({ alg: 'HS256' }).sign(secret);

type Outcome = { code: number; details: string; id?: string };

function infer(token: string | undefined, modelName = 'iris-a'): Promise<Outcome> {
  return new Promise((resolve) => {
    inference.modelInfer(ModelInferRequest.fromPartial({ modelName }), bearer(token), (error, response) =>
      resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '', id: response.id }));
  });
}

function callUnary(method: 'serverLive' | 'serverMetadata' | 'modelMetadata' | 'modelReady', token?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    (inference[method] as (request: unknown, metadata: Metadata, callback: (error: ServiceError | null) => void) => void)(
      { name: 'iris-a', version: '' }, bearer(token), (error) => resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '' }));
  });
}

function streamInfer(token: string | undefined, models: string[]): Promise<Outcome & { ids: string[] }> {
  return new Promise((resolve) => {
    const call = inference.modelStreamInfer(bearer(token));
    const ids: string[] = [];
    call.on('data', (message: ModelStreamInferResponse) => ids.push(message.inferResponse!.id));
    call.on('error', (error: ServiceError) => resolve({ code: error.code, details: error.details, ids }));
    call.on('end', () => resolve({ code: status.OK, details: '', ids }));
    for (const modelName of models) call.write(ModelInferRequest.fromPartial({ modelName }));
    call.end();
  });
}

function watchTask(token: string | undefined): Promise<Outcome & { ids: string[] }> {
  return new Promise((resolve) => {
    const call = tasks.watchTask({ taskId: 't' }, bearer(token));
    const ids: string[] = [];
    call.on('data', (message: WatchTaskResponse) => ids.push(message.status!.taskId));
    call.on('error', (error: ServiceError) => resolve({ code: error.code, details: error.details, ids }));
    call.on('end', () => resolve({ code: status.OK, details: '', ids }));
  });
}

function upload(token: string | undefined): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = registry.uploadVersion(bearer(token), (error, response) =>
      resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '', id: response.version!.creator }));
    call.write({ chunk: new Uint8Array([1, 2, 3]) });
    call.end();
  });
}

const MISSING = "missing credentials: send 'authorization: Bearer <API key or JWT>'";

describe('authentication', () => {
  it('refuses a call without credentials, of every kind of method', async () => {
    expect(await infer(undefined)).toEqual({ code: status.UNAUTHENTICATED, details: MISSING });
    expect(await streamInfer(undefined, ['iris-a'])).toEqual({ code: status.UNAUTHENTICATED, details: MISSING, ids: [] });
    expect(await watchTask(undefined)).toEqual({ code: status.UNAUTHENTICATED, details: MISSING, ids: [] });
    expect(await upload(undefined)).toEqual({ code: status.UNAUTHENTICATED, details: MISSING });
  });

  it('refuses an unknown key, a wrong secret and a revoked key', async () => {
    const stranger = generateApiKey().key;
    expect(await infer(stranger)).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid credentials' });
    const wrongSecret = `nxk_${inferKey.id}_${generateApiKey().key.slice(-43)}`;
    expect(await infer(wrongSecret)).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid credentials' });
    expect(await infer(revokedKey.key)).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid credentials: the key was revoked' });
  });

  it('refuses an expired JWT and one for another audience', async () => {
    expect(await infer(await jwt({ exp: Math.floor(Date.now() / 1000) - 120 }))).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid credentials: token expired' });
    expect(await infer(await jwt({ aud: 'other' }))).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid credentials: wrong audience' });
    expect(await streamInfer(await jwt({ aud: 'other' }), ['iris-a'])).toMatchObject({ code: status.UNAUTHENTICATED, details: 'invalid credentials: wrong audience' });
  });

  it('runs the handler with the principal of a valid key or JWT', async () => {
    expect(await infer(inferKey.key)).toEqual({ code: status.OK, details: '', id: `key:${inferKey.id}` });
    expect(await infer(await jwt())).toEqual({ code: status.OK, details: '', id: `jwt:${ISSUER}#alice` });
    expect(await streamInfer(await jwt({ sub: 'bob' }), ['iris-a', 'iris-b'])).toEqual({ code: status.OK, details: '', ids: [`jwt:${ISSUER}#bob`, `jwt:${ISSUER}#bob`] });
    expect(await watchTask(writeKey.key)).toEqual({ code: status.OK, details: '', ids: [`key:${writeKey.id}`] });
    expect(await upload(adminKey.key)).toEqual({ code: status.OK, details: '', id: `key:${adminKey.id}` });
  });
});

describe('authorization', () => {
  it("refuses a role below the method's, naming the role, on every kind of method", async () => {
    expect(await watchTask(inferKey.key)).toEqual({ code: status.PERMISSION_DENIED, details: "WatchTask needs the 'write' role", ids: [] });
    expect(await upload(await jwt({ nexus_role: 'infer' }))).toEqual({ code: status.PERMISSION_DENIED, details: "UploadVersion needs the 'write' role" });
    expect(await callUnary('modelMetadata', writeKey.key)).toEqual({ code: status.PERMISSION_DENIED, details: "ModelMetadata needs the 'admin' role" });
    expect(await callUnary('modelMetadata', adminKey.key)).toEqual({ code: status.OK, details: '' });
  });

  it("refuses a model outside the credential's globs", async () => {
    expect(await infer(inferKey.key, 'resnet')).toEqual({ code: status.PERMISSION_DENIED, details: "this credential may not use model 'resnet'" });
    expect(await callUnary('modelReady', inferKey.key)).toEqual({ code: status.OK, details: '' });
    expect(await infer(await jwt({ nexus_models: ['bert'] }), 'iris-a')).toEqual({ code: status.PERMISSION_DENIED, details: "this credential may not use model 'iris-a'" });
  });

  it('refuses a method its table does not list, whatever the role', async () => {
    expect(await callUnary('serverMetadata', adminKey.key)).toEqual({
      code: status.PERMISSION_DENIED, details: "ServerMetadata is refused: it has no entry in inference.GRPCInferenceService's access table",
    });
    expect((await callUnary('serverMetadata')).code).toBe(status.UNAUTHENTICATED);
  });

  it('counts refusals in the rpc metrics', async () => {
    const count = async (code: string) => (await metrics.rpcRequests.get()).values
      .find((value) => value.labels.service === 'auth-test' && value.labels.method === 'ModelInfer' && value.labels.code === code)?.value ?? 0;
    const before = await count('PERMISSION_DENIED');
    await infer(inferKey.key, 'resnet');
    expect(await count('PERMISSION_DENIED')).toBe(before + 1);
    expect(await count('UNAUTHENTICATED')).toBeGreaterThan(0);
  });
});

describe('open methods', () => {
  it('answers ServerLive, health and reflection without credentials', async () => {
    expect(await callUnary('serverLive')).toEqual({ code: status.OK, details: '' });
    const loaded = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true })) as GrpcObject;
    const Health = (((loaded.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject).Health as ServiceClientConstructor;
    const health = new Health(server.address, credentials.createInsecure());
    const serving = await new Promise<string>((resolve, reject) => (health as unknown as {
      Check(request: object, callback: (error: ServiceError | null, response: { status: string }) => void): void;
    }).Check({ service: 'inference.GRPCInferenceService' }, (error, response) => (error ? reject(error) : resolve(response.status))));
    health.close();
    expect(serving).toBe('SERVING');
  });
});

describe('start-up', () => {
  it('refuses to mount a service without an access table on an authenticating server', async () => {
    await expect(startGrpcServer({
      address: '127.0.0.1:0',
      auth: { authenticator: createAuthenticator({}), logger },
      services: [{ name: 'nexus.router.v1.Tasks', protoFile: 'nexus/router/v1/tasks.proto', definition: TasksService, implementation: {} }],
    })).rejects.toThrow('nexus.router.v1.Tasks is mounted on an authenticating server without an access table');
  });
});

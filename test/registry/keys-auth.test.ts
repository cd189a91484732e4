/**
 * The registry with authentication on, through real gRPC clients: the bootstrap admin key file,
 * who may call what (roles, model globs), versions and alias moves recorded as made by the
 * authenticated principal whatever the client claims, audit records of successes and failures
 * with that principal, JWTs, and keys created or revoked through another registry process over
 * the same store taking effect here.
 */
import { credentials, status, type Client } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateKeyRequest, KeysClient, type CreateKeyResponse } from '../../services/protocol/generated/nexus/auth/v1/keys.ts';
import {
  RegistryClient, SetAliasRequest, type ListAuditResponse, type ListModelsResponse, type SetAliasResponse,
} from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { bearerInterceptor, unaryCall, uploadModelDirectory, uploadModelFile } from '../../services/cli/remote/index.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { tinyModel } from './fixtures.ts';

const ISSUER = 'https://id.example.com';
const AUDIENCE = 'nexusml';

let work: string;
let registry: RunningRegistry;
let other: RunningRegistry;
let adminKey: string;
let jwtSecret: Buffer;
const clients: Client[] = [];

function clientsFor(token: string | undefined, address = registry.address) {
  const options = token ? { interceptors: [bearerInterceptor(token)] } : {};
  const made = { registry: new RegistryClient(address, credentials.createInsecure(), options), keys: new KeysClient(address, credentials.createInsecure(), options) };
  clients.push(made.registry, made.keys);
  return made;
}

const createKey = (token: string, request: Partial<CreateKeyRequest>, address?: string) =>
  unaryCall<CreateKeyResponse>((done) => clientsFor(token, address).keys.createKey(CreateKeyRequest.fromPartial(request), done));
const listModels = (token: string | undefined, address?: string) =>
  unaryCall<ListModelsResponse>((done) => clientsFor(token, address).registry.listModels({}, done));
const listAudit = (token: string, limit = 20) =>
  unaryCall<ListAuditResponse>((done) => clientsFor(token).registry.listAudit({ limit, beforeUnixMs: 0 }, done));

async function upload(token: string, name: string, seed: number, creator = 'mallory') {
  const path = join(work, `model-${seed}.onnx`);
  await writeFile(path, tinyModel(seed));
  return uploadModelFile(clientsFor(token).registry, path, { modelName: name, format: 'onnx', lineage: undefined, tags: {}, creator, batching: undefined });
}

async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  for (const started = Date.now(); !(await check()); await new Promise((wake) => setTimeout(wake, 20))) {
    if (Date.now() - started > ms) throw new Error('condition not reached in time');
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-keys-auth-'));
  jwtSecret = randomBytes(32);
  await writeFile(join(work, 'jwt.secret'), jwtSecret);
  const auth = { jwt: { issuer: ISSUER, audience: AUDIENCE, keyFile: join(work, 'jwt.secret') } };
  const bootstrapAdminKeyFile = join(work, 'home', 'credentials', 'admin.key');
  registry = await startRegistry({ dataDir: join(work, 'store'), auth, bootstrapAdminKeyFile, keyPollIntervalMs: 100 });
  other = await startRegistry({ dataDir: join(work, 'store'), auth, keyPollIntervalMs: 100 });
  adminKey = (await readFile(bootstrapAdminKeyFile, 'utf8')).trim();
});

afterAll(async () => {
  for (const client of clients) client.close();
  await registry?.shutdown(1000);
  await other?.shutdown(1000);
  await rm(work, { recursive: true, force: true });
});

describe('registry with authentication', () => {
  it('writes the bootstrap admin key to a file only its owner can read, in a private directory', async () => {
    expect(adminKey).toMatch(/^nxk_[0-9a-f]{12}_/);
    expect((await stat(join(work, 'home', 'credentials', 'admin.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(work, 'home', 'credentials'))).mode & 0o777).toBe(0o700);
    const [bootstrap] = (await registry.keys.list()).filter((key) => key.info!.createdBy === 'bootstrap');
    expect(bootstrap.info).toMatchObject({ id: adminKey.slice(4, 16), role: 'admin', revokedAtUnixMs: 0 });
  });

  it('refuses calls without credentials, with a bad key, and with a revoked key', async () => {
    await expect(listModels(undefined)).rejects.toMatchObject({
      code: status.UNAUTHENTICATED, details: "missing credentials: send 'authorization: Bearer <API key or JWT>'",
    });
    const forged = `${adminKey.slice(0, 17)}${'A'.repeat(43)}`;
    await expect(listModels(forged)).rejects.toMatchObject({ code: status.UNAUTHENTICATED, details: 'invalid credentials' });
    const { key, info } = await createKey(adminKey, { role: 'infer' });
    await listModels(key);
    await unaryCall((done) => clientsFor(adminKey).keys.revokeKey({ id: info!.id }, done));
    await expect(listModels(key)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  });

  it('holds each role to its methods and each key to its model globs', async () => {
    const reader = await createKey(adminKey, { role: 'infer', name: 'reader' });
    await expect(createKey(reader.key, { role: 'admin' })).rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: "CreateKey needs the 'admin' role" });
    await expect(listAudit(reader.key)).rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: "ListAudit needs the 'admin' role" });
    await expect(upload(reader.key, 'iris', 1)).rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: "UploadVersion needs the 'write' role" });

    const writer = await createKey(adminKey, { role: 'write', models: ['iris*'] });
    await upload(writer.key, 'iris-small', 2);
    await expect(upload(writer.key, 'resnet', 3)).rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: "this credential may not use model 'resnet'" });
    await expect(unaryCall((done) => clientsFor(writer.key).registry.getVersion({ modelName: 'resnet', version: 0, alias: '' }, done)))
      .rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: "this credential may not use model 'resnet'" });
    await expect(unaryCall((done) => clientsFor(writer.key).registry.rollbackAlias({ modelName: 'iris-small', alias: 'production', reason: '', actor: '' }, done)))
      .rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: "RollbackAlias needs the 'admin' role" });
  });

  it('records the authenticated principal as creator and actor, whatever the client claims', async () => {
    const writer = await createKey(adminKey, { role: 'write', name: 'ci' });
    const { version } = await upload(writer.key, 'claims', 4, 'mallory');
    expect(version!.creator).toBe(`key:${writer.info!.id}`);
    const moved = await unaryCall<SetAliasResponse>((done) => clientsFor(writer.key).registry.setAlias(SetAliasRequest.fromPartial({
      modelName: 'claims', alias: 'production', version: version!.version, actor: 'mallory',
    }), done));
    expect(moved.move!.actor).toBe(`key:${writer.info!.id}`);
    expect(moved.alias!.updatedBy).toBe(`key:${writer.info!.id}`);
  });

  it('audits writes with their principal and outcome, failures included', async () => {
    const writer = await createKey(adminKey, { role: 'write', models: ['audited*'] });
    const principal = `key:${writer.info!.id}`;
    const { version } = await upload(writer.key, 'audited', 5);
    await expect(unaryCall((done) => clientsFor(writer.key).registry.setAlias(SetAliasRequest.fromPartial({
      modelName: 'audited', alias: 'production', version: 99,
    }), done))).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(upload(writer.key, 'elsewhere', 6)).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    const { records } = await listAudit(adminKey, 4);
    expect(records.map((record) => [record.principal, record.action, record.target, record.outcome])).toEqual([
      [principal, 'UploadVersion', 'elsewhere', 'PERMISSION_DENIED'],
      [principal, 'SetAlias', 'audited@production', 'NOT_FOUND'],
      [principal, 'UploadVersion', `audited:${version!.version}`, 'OK'],
      [`key:${adminKey.slice(4, 16)}`, 'CreateKey', `key:${writer.info!.id}`, 'OK'],
    ]);
    expect(records[2].detail).toContain(version!.sha256);
  });

  it('audits write and admin calls refused before their handler: a wrong role, no credentials', async () => {
    const reader = await createKey(adminKey, { role: 'infer', name: 'refused-reader' });
    await expect(unaryCall((done) => clientsFor(reader.key).registry.garbageCollect({ dryRun: true, minAgeSeconds: 0 } as never, done)))
      .rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    await expect(unaryCall((done) => clientsFor(undefined).registry.setAlias(SetAliasRequest.fromPartial({ modelName: 'iris', alias: 'production', version: 1 }), done)))
      .rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    // Reads are not audited, refused or not.
    await expect(listModels(undefined)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    // The refusal's record is written beside the answer, not before it: give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { records } = await listAudit(adminKey, 3);
    expect(records.map((record) => [record.principal, record.action, record.outcome])).toEqual([
      ['unauthenticated', 'SetAlias', 'UNAUTHENTICATED'],
      [`key:${reader.info!.id}`, 'GarbageCollect', 'PERMISSION_DENIED'],
      [`key:${adminKey.slice(4, 16)}`, 'CreateKey', 'OK'],
    ]);
    expect(records[1].detail).toBe("GarbageCollect needs the 'admin' role");
  });

  it('audits blob uploads, rollbacks and garbage collection too', async () => {
    const dir = join(work, 'directory-model');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), '{"layers": 2}');
    const writerClients = clientsFor(adminKey);
    const { version } = await uploadModelDirectory(writerClients.registry, dir, {
      modelName: 'dir-model', format: 'directory', lineage: undefined, tags: {}, creator: '', batching: undefined,
    });
    await expect(unaryCall((done) => writerClients.registry.rollbackAlias({ modelName: 'dir-model', alias: 'production', reason: '', actor: '' }, done)))
      .rejects.toMatchObject({ code: status.NOT_FOUND });
    await unaryCall((done) => writerClients.registry.garbageCollect({ delete: false }, done));
    const { records } = await listAudit(adminKey, 4);
    const admin = `key:${adminKey.slice(4, 16)}`;
    expect(records.map((record) => [record.principal, record.action, record.target, record.outcome])).toEqual([
      [admin, 'GarbageCollect', 'dry run', 'OK'],
      [admin, 'RollbackAlias', 'dir-model@production', 'NOT_FOUND'],
      [admin, 'UploadVersion', `dir-model:${version!.version}`, 'OK'],
      [admin, 'UploadBlob', `sha256:${version!.files[0].sha256}`, 'OK'],
    ]);
    expect(records[0].detail).toMatch(/^found \d+ unreferenced objects, \d+ bytes \(min age 3600 s\)$/);
  });

  it('accepts a JWT from the configured issuer and records it as jwt:<iss>#<sub>', async () => {
    const token = await new SignJWT({ nexus_role: 'write', nexus_models: ['jwt-*'] }).setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('ada').setExpirationTime('5m').sign(jwtSecret);
    const { version } = await upload(token, 'jwt-model', 7);
    expect(version!.creator).toBe(`jwt:${ISSUER}#ada`);
    const wrongAudience = await new SignJWT({ nexus_role: 'write' }).setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER).setAudience('someone-else').setSubject('ada').setExpirationTime('5m').sign(jwtSecret);
    await expect(listModels(wrongAudience)).rejects.toMatchObject({ code: status.UNAUTHENTICATED, details: 'invalid credentials: wrong audience' });
  });

  it('accepts a key created through another registry process at once, and refuses it once revoked there', async () => {
    const { key, info } = await createKey(adminKey, { role: 'infer' }, other.address);
    await listModels(key);
    await unaryCall((done) => clientsFor(adminKey, other.address).keys.revokeKey({ id: info!.id }, done));
    await eventually(() => listModels(key).then(() => false, (error: { code: number }) => error.code === status.UNAUTHENTICATED));
  });
});

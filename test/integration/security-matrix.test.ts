/**
 * Who may call what, for every RPC of every service, through real grpc-js clients built from each
 * service's own definition against a registry, a router and an executor started with
 * authentication and TLS on. The rows below say what each RPC requires; every method of every
 * definition must have one, and every service a server lists through reflection its rows, so a
 * new RPC or service without them fails here. Each row is checked three
 * ways: against the access table the service mounts, against what the running service answers
 * to every kind of caller (none, a wrong, revoked or expired credential, each role, each service
 * certificate, a key limited to other models), and against the roles table in docs/security.md,
 * which is generated from the rows.
 *
 * Request bodies are minimal (empty, or naming a model), so a caller who is let in gets whatever
 * the handler answers (NOT_FOUND, INVALID_ARGUMENT, OK …): "not refused" is any status other than
 * UNAUTHENTICATED, PERMISSION_DENIED and UNAVAILABLE.
 */
import {
  Client, credentials, loadPackageDefinition, Metadata, status, type ChannelCredentials, type ClientDuplexStream, type ClientReadableStream,
  type GrpcObject, type ServiceClientConstructor, type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MethodAccess } from '../../services/auth/access.ts';
import { roleAllows, ROLES, SERVICE_IDENTITIES, type Role, type ServiceIdentity } from '../../services/auth/roles.ts';
import { startExecutor, type RunningExecutor } from '../../services/executor/service/index.ts';
import { GRPCInferenceServiceService } from '../../services/protocol/generated/inference/grpc_service.ts';
import { KeysService } from '../../services/protocol/generated/nexus/auth/v1/keys.ts';
import { ExecutorService } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { RegistryService, UploadVersionRequest } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { ExperimentsService } from '../../services/protocol/generated/nexus/router/v1/experiments.ts';
import { SubmitTaskRequest, TasksService } from '../../services/protocol/generated/nexus/router/v1/tasks.ts';
import { GenerationService } from '../../services/protocol/generated/nexus/llm/v1/llm.ts';
import { KEYS_ACCESS, REGISTRY_ACCESS } from '../../services/registry/grpc/access.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { EXPERIMENTS_ACCESS, GENERATION_ACCESS, INFERENCE_ACCESS, TASKS_ACCESS } from '../../services/router/grpc/access.ts';
import { startRouter, type RunningRouter } from '../../services/router/index.ts';
import { channelCredentials, serverCredentials } from '../../services/tls/credentials.ts';
import { ensureServiceMaterial, loadServiceMaterial, type ServiceMaterial } from '../../services/tls/material.ts';
import { createCertificateAuthority, issueServiceCertificate } from '../../services/tls/pki.ts';
import { REPO_ROOT } from './harness.ts';

// ---- the rows: what each RPC requires -------------------------------------------------------

type Requirement =
  | { open: true }
  | { role: Role; services: readonly ServiceIdentity[] }
  | { servicesOnly: readonly ServiceIdentity[] };

interface Row {
  needs: Requirement;
  /**
   * The request (or, for a client or bidirectional stream, its first message) naming `model`,
   * when the RPC is held to the caller's model globs. `empty` is the request with every field at
   * its default.
   */
  naming?: (model: string, empty: Record<string, unknown>) => unknown;
  /** How the model globs apply, for the docs table, when it is not "checked". */
  globs?: string;
}

const OPEN: Row = { needs: { open: true } };
const role = (needed: Role, extra: Omit<Row, 'needs'> = {}, services: readonly ServiceIdentity[] = []): Row => ({ needs: { role: needed, services }, ...extra });
const READ_SERVICES = ['router', 'executor'] as const;
const read = (extra: Omit<Row, 'needs'> = {}) => role('infer', extra, READ_SERVICES);
/** The request with `field` naming the model. */
const field = (name: string) => (model: string, empty: Record<string, unknown>) => ({ ...empty, [name]: model });

/** A method of a grpc-js service definition, whatever its request and response types. */
interface AnyMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize(value: never): Buffer;
  requestDeserialize(bytes: Buffer): unknown;
  responseDeserialize(bytes: Buffer): unknown;
}

interface ServiceRows {
  service: string;
  definition: Record<string, AnyMethod>;
  rows: Record<string, Row>;
  /** The table the running service mounts; the executor's is private to it, and checked only by behaviour. */
  access?: Record<string, MethodAccess>;
}

const ROUTER_SERVICES: ServiceRows[] = [{
  service: 'inference.GRPCInferenceService', definition: GRPCInferenceServiceService, access: INFERENCE_ACCESS,
  rows: {
    serverLive: OPEN, serverReady: OPEN, serverMetadata: role('infer'),
    modelReady: role('infer', { naming: field('name') }), modelMetadata: role('infer', { naming: field('name') }),
    modelInfer: role('infer', { naming: field('modelName') }),
    modelStreamInfer: role('infer', { naming: field('modelName'), globs: 'checked per message' }),
  },
}, {
  service: 'nexus.llm.v1.Generation', definition: GenerationService, access: GENERATION_ACCESS,
  rows: { generate: role('infer', { naming: field('modelName') }), tokenize: role('infer', { naming: field('modelName') }) },
}, {
  service: 'nexus.router.v1.Tasks', definition: TasksService, access: TASKS_ACCESS,
  rows: {
    submitTask: role('infer', { naming: (model) => SubmitTaskRequest.fromPartial({ request: { modelName: model } }) }),
    getTask: role('infer', { globs: 'tasks are their owner\'s' }), watchTask: role('infer', { globs: 'tasks are their owner\'s' }),
    cancelTask: role('infer', { globs: 'tasks are their owner\'s' }),
  },
}, {
  service: 'nexus.router.v1.Experiments', definition: ExperimentsService, access: EXPERIMENTS_ACCESS,
  rows: { getExperiment: role('infer', { naming: field('modelName') }), reportOutcome: role('write', { naming: field('modelName') }) },
}];

const REGISTRY_SERVICES: ServiceRows[] = [{
  service: 'nexus.registry.v1.Registry', definition: RegistryService, access: REGISTRY_ACCESS,
  rows: {
    getVersion: read({ naming: field('modelName') }), listVersions: read({ naming: field('modelName') }),
    listModels: read({ globs: 'the answer lists only models they cover' }),
    downloadArtifact: read({ globs: 'by digest: not checked' }), statBlobs: read({ globs: 'by digest: not checked' }),
    getAlias: read({ naming: field('modelName') }), listAliases: read({ naming: field('modelName') }),
    getAliasHistory: read({ naming: field('modelName') }),
    watch: read({ naming: field('modelName'), globs: 'checked; without a model, only events of models they cover' }),
    uploadVersion: role('write', { naming: (model) => UploadVersionRequest.fromPartial({ header: { modelName: model, format: 'onnx' } }), globs: 'checked on the header' }),
    uploadBlob: role('write', { globs: 'by digest: not checked' }),
    setAlias: role('write', { naming: field('modelName') }),
    rollbackAlias: role('admin', { naming: field('modelName') }),
    garbageCollect: role('admin'), listAudit: role('admin'),
  },
}, {
  service: 'nexus.auth.v1.Keys', definition: KeysService, access: KEYS_ACCESS,
  rows: { createKey: role('admin'), listKeys: role('admin'), revokeKey: role('admin'), watchKeys: role('admin', {}, ['router']) },
}];

const EXECUTOR_SERVICES: ServiceRows[] = [{
  service: 'nexus.executor.v1.Executor', definition: ExecutorService,
  rows: { connect: { needs: { servicesOnly: ['router'] } }, getStats: { needs: { servicesOnly: ['router'] } } },
}];

const ALL_SERVICES = [...ROUTER_SERVICES, ...REGISTRY_SERVICES, ...EXECUTOR_SERVICES];

// ---- calling any method with a generic grpc-js client ---------------------------------------

interface Outcome { code: number; details: string }
const NOT_REFUSED = 'not refused';

/** What a caller would notice: the refusal with its message, UNAVAILABLE (no connection), or not refused. */
function verdict({ code, details }: Outcome): string {
  if (code === status.UNAUTHENTICATED || code === status.PERMISSION_DENIED) return `${status[code]}: ${details}`;
  return code === status.UNAVAILABLE ? 'UNAVAILABLE' : NOT_REFUSED;
}

/** A ModelStreamInfer answer refusing one message carries the status in its error_message. */
function outcomeOfMessage(message: unknown): Outcome {
  const refused = /^(UNAUTHENTICATED|PERMISSION_DENIED): (.*)$/s.exec((message as { errorMessage?: string }).errorMessage ?? '');
  return refused ? { code: status[refused[1] as 'UNAUTHENTICATED'], details: refused[2] } : { code: status.OK, details: '' };
}

/** Calls `method` once with `request` (written as the only message of a client stream); the first answer or status decides. */
function callOnce(client: Client, method: AnyMethod, request: unknown, metadata: Metadata): Promise<Outcome> {
  const options = { deadline: Date.now() + 10_000 };
  const { path, responseDeserialize } = method;
  const requestSerialize = method.requestSerialize as (value: unknown) => Buffer;
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    const done = (error: ServiceError | null) => settle(error ? { code: error.code, details: error.details } : { code: status.OK, details: '' });
    if (!method.requestStream && !method.responseStream) {
      client.makeUnaryRequest(path, requestSerialize, responseDeserialize, request, metadata, options, done);
      return;
    }
    if (method.requestStream && !method.responseStream) {
      const stream = client.makeClientStreamRequest(path, requestSerialize, responseDeserialize, metadata, options, done);
      if (request !== undefined) stream.write(request);
      stream.end();
      return;
    }
    const stream: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown> = method.requestStream
      ? client.makeBidiStreamRequest(path, requestSerialize, responseDeserialize, metadata, options)
      : client.makeServerStreamRequest(path, requestSerialize, responseDeserialize, request, metadata, options);
    stream.on('data', (message: unknown) => {
      settle(outcomeOfMessage(message));
      stream.cancel();
    });
    stream.on('error', (error: ServiceError) => done(error));
    stream.on('status', (ended: { code: number; details: string }) => settle(ended));
    if (method.requestStream) {
      const duplex = stream as ClientDuplexStream<unknown, unknown>;
      if (request !== undefined) duplex.write(request);
      duplex.end();
    }
  });
}

// ---- the services, their keys and tokens ----------------------------------------------------

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'nexusml';
const PERMITTED = 'permitted-model';
const FORBIDDEN = 'forbidden-model';
const NO_LIMITS = { requestsPerSecond: 0, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 };
const MISSING = "UNAUTHENTICATED: missing credentials: send 'authorization: Bearer <API key or JWT>'";

let dir: string;
let jwtSecret: Uint8Array;
let registry: RunningRegistry;
let router: RunningRouter;
let executor: RunningExecutor;
const material = {} as Record<ServiceIdentity, ServiceMaterial>;
const keyOf = {} as Record<Role | 'revoked' | 'limited', string>;
const clients: Client[] = [];

const jwt = (claims: Record<string, unknown>, audience = AUDIENCE, expiresAt: number | string = '5m') =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience(audience).setSubject('ada')
    .setExpirationTime(expiresAt).sign(jwtSecret);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-security-matrix-'));
  await ensureServiceMaterial(join(dir, 'tls'), SERVICE_IDENTITIES);
  for (const service of SERVICE_IDENTITIES) material[service] = await loadServiceMaterial(join(dir, 'tls'), service);
  jwtSecret = randomBytes(32);
  await writeFile(join(dir, 'jwt.secret'), jwtSecret);
  const jwtOptions = { issuer: ISSUER, audience: AUDIENCE, keyFile: join(dir, 'jwt.secret') };
  registry = await startRegistry({
    dataDir: join(dir, 'registry'), credentials: serverCredentials(material.registry, { clientCertificate: 'optional' }),
    auth: { jwt: jwtOptions }, keyPollIntervalMs: 100,
  });
  for (const held of ROLES) keyOf[held] = (await registry.keys.create({ name: held, role: held, models: [], limits: NO_LIMITS }, 'test')).key;
  keyOf.limited = (await registry.keys.create({ name: 'limited', role: 'admin', models: ['permitted-*'], limits: NO_LIMITS }, 'test')).key;
  const revoked = await registry.keys.create({ name: 'revoked', role: 'admin', models: [], limits: NO_LIMITS }, 'test');
  await registry.keys.revoke(revoked.verifier.info!.id);
  keyOf.revoked = revoked.key;
  router = await startRouter({
    address: '127.0.0.1:0', registryAddress: registry.address, executorAddresses: [], jwt: jwtOptions,
    registryCredentials: channelCredentials(material.router, 'registry'),
  });
  executor = await startExecutor({
    registryAddress: registry.address, cacheDir: join(dir, 'cache'),
    credentials: serverCredentials(material.executor, { clientCertificate: 'required' }), registryCredentials: channelCredentials(material.executor, 'registry'),
  });
  // The router checks keys from the registry's WatchKeys stream: wait for its first snapshot.
  const probe = new Client(router.address, credentials.createInsecure());
  clients.push(probe);
  const bearer = new Metadata();
  bearer.set('authorization', `Bearer ${keyOf.infer}`);
  for (const started = Date.now(); ;) {
    const { code } = await callOnce(probe, GRPCInferenceServiceService.serverMetadata, {}, bearer);
    if (code === status.OK) break;
    if (Date.now() - started > 10_000) throw new Error(`the router did not accept a key within 10 s (status ${code})`);
    await new Promise((wake) => setTimeout(wake, 50));
  }
});

afterAll(async () => {
  for (const client of clients) client.close();
  await router?.shutdown(100);
  await executor?.shutdown(100);
  await registry?.shutdown(100);
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- the callers, and what each row says they get -------------------------------------------

const labelOf = (method: AnyMethod) => method.path.slice(method.path.lastIndexOf('/') + 1);

interface Caller {
  name: string;
  /** The bearer token, when the caller sends one. */
  token?: () => Promise<string> | string;
  /** How the channel is secured; default: the service's ordinary client channel. */
  channel?: () => ChannelCredentials;
  /** Asks for the model PERMITTED or FORBIDDEN where the row names one. */
  model?: string;
  expected(row: Row, label: string): string;
}

/** What a token-bearing caller holding `held` gets from `row`. */
function forRole(held: Role | undefined, row: Row, label: string): string {
  const { needs } = row;
  if ('open' in needs) return NOT_REFUSED;
  if ('servicesOnly' in needs) throw new Error('token callers are not asked of certificate-only methods');
  if (held === undefined || roleAllows(held, needs.role)) return NOT_REFUSED;
  return `PERMISSION_DENIED: ${label} needs the '${needs.role}' role`;
}

const refusedAlways = (message: string) => (row: Row) => ('open' in row.needs ? NOT_REFUSED : message);

const article = (held: Role) => (held === 'write' ? 'a' : 'an');

const TOKEN_CALLERS: Caller[] = [
  { name: 'no credentials', expected: refusedAlways(MISSING) },
  { name: 'an unknown key', token: () => `nxk_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`, expected: refusedAlways('UNAUTHENTICATED: invalid credentials') },
  { name: 'a real key id with a wrong secret', token: () => `${keyOf.admin.slice(0, 17)}${randomBytes(32).toString('base64url')}`, expected: refusedAlways('UNAUTHENTICATED: invalid credentials') },
  { name: 'a revoked admin key', token: () => keyOf.revoked, expected: refusedAlways('UNAUTHENTICATED: invalid credentials: the key was revoked') },
  { name: 'an expired JWT', token: () => jwt({ nexus_role: 'admin' }, AUDIENCE, Math.floor(Date.now() / 1000) - 3600), expected: refusedAlways('UNAUTHENTICATED: invalid credentials: token expired') },
  { name: 'a JWT for another audience', token: () => jwt({ nexus_role: 'admin' }, 'someone-else'), expected: refusedAlways('UNAUTHENTICATED: invalid credentials: wrong audience') },
  ...ROLES.map((held): Caller => ({ name: `${article(held)} ${held} key`, token: () => keyOf[held], expected: (row, label) => forRole(held, row, label) })),
  ...ROLES.map((held): Caller => ({ name: `a JWT with nexus_role ${held}`, token: () => jwt({ nexus_role: held }), expected: (row, label) => forRole(held, row, label) })),
  {
    name: `an admin key limited to permitted-*, naming ${FORBIDDEN}`, token: () => keyOf.limited, model: FORBIDDEN,
    expected: (row) => ('open' in row.needs || !row.naming ? NOT_REFUSED : `PERMISSION_DENIED: this credential may not use model '${FORBIDDEN}'`),
  },
  { name: `an admin key limited to permitted-*, naming ${PERMITTED}`, token: () => keyOf.limited, model: PERMITTED, expected: () => NOT_REFUSED },
];

/** The registry's callers by certificate alone (it asks every client for one). */
const CERTIFICATE_CALLERS: Caller[] = SERVICE_IDENTITIES.map((service): Caller => ({
  name: `the ${service} service's certificate`,
  channel: () => channelCredentials(material[service], 'registry'),
  expected: ({ needs }, label) => {
    if ('open' in needs) return NOT_REFUSED;
    if ('servicesOnly' in needs) throw new Error('the registry has no certificate-only methods');
    return needs.services.includes(service) ? NOT_REFUSED : `PERMISSION_DENIED: ${label} needs the '${needs.role}' role; the '${service}' service's certificate does not grant it`;
  },
}));

const routerOnly = (label: string) => `PERMISSION_DENIED: ${label} may be called only by the 'router' service, by its certificate`;
let foreignRouter: ChannelCredentials;
const EXECUTOR_CALLERS: Caller[] = [
  { name: "the router service's certificate", channel: () => channelCredentials(material.router, 'executor'), expected: () => NOT_REFUSED },
  { name: "the executor service's certificate", channel: () => channelCredentials(material.executor, 'executor'), expected: (_, label) => routerOnly(label) },
  { name: "the registry service's certificate", channel: () => channelCredentials(material.registry, 'executor'), expected: (_, label) => routerOnly(label) },
  { name: 'an admin key over a certificate that is not the router\'s', token: () => keyOf.admin, channel: () => channelCredentials(material.registry, 'executor'), expected: () => 'UNAUTHENTICATED: invalid credentials' },
  { name: 'TLS without a client certificate', channel: () => credentials.createSsl(material.router.caPem), expected: () => 'UNAVAILABLE' },
  { name: 'a router certificate from another CA', channel: () => foreignRouter, expected: () => 'UNAVAILABLE' },
  { name: 'plaintext', channel: () => credentials.createInsecure(), expected: () => 'UNAVAILABLE' },
];

/** Every caller's verdict on one method, as {caller: verdict}: what the row expects, and what the service answered. */
async function judge(address: string, defaultChannel: () => ChannelCredentials, callers: Caller[], method: AnyMethod, row: Row) {
  const label = labelOf(method);
  const empty = method.requestDeserialize(Buffer.alloc(0)) as Record<string, unknown>;
  const expected: Record<string, string> = {};
  const answered: Record<string, string> = {};
  await Promise.all(callers.map(async (caller) => {
    expected[caller.name] = caller.expected(row, label);
    const client = new Client(address, (caller.channel ?? defaultChannel)());
    clients.push(client);
    const metadata = new Metadata();
    if (caller.token) metadata.set('authorization', `Bearer ${await caller.token()}`);
    const named = caller.model !== undefined && row.naming ? row.naming(caller.model, empty) : undefined;
    // A stream that names no model sends nothing; any other call sends its (empty or named) request.
    const request = named ?? (method.requestStream ? undefined : empty);
    answered[caller.name] = verdict(await callOnce(client, method, request, metadata));
  }));
  return { expected, answered };
}

/** The services a server lists through reflection, but for health and reflection themselves. */
async function mountedServices(address: string, channel: ChannelCredentials): Promise<string[]> {
  const reflectionProto = createRequire(import.meta.url).resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const loaded = loadPackageDefinition(loadSync(reflectionProto, { keepCase: true, defaults: true })) as GrpcObject;
  const Reflection = (((loaded.grpc as GrpcObject).reflection as GrpcObject).v1 as GrpcObject).ServerReflection as ServiceClientConstructor;
  const client = new Reflection(address, channel);
  clients.push(client);
  const listed = await new Promise<Array<{ name: string }>>((resolve, reject) => {
    const stream = (client as unknown as { ServerReflectionInfo(): ClientDuplexStream<unknown, { list_services_response: { service: Array<{ name: string }> } }> }).ServerReflectionInfo();
    stream.on('data', (response) => {
      resolve(response.list_services_response.service);
      stream.end();
    });
    stream.on('error', reject);
    stream.write({ list_services: '' });
  });
  return listed.map((service) => service.name).filter((name) => !name.startsWith('grpc.health.') && !name.startsWith('grpc.reflection.')).sort();
}

// ---- the tests ------------------------------------------------------------------------------

const SERVERS = [
  { server: 'router', address: () => router.address, channel: () => credentials.createInsecure(), services: ROUTER_SERVICES },
  { server: 'registry', address: () => registry.address, channel: () => credentials.createSsl(material.registry.caPem), services: REGISTRY_SERVICES },
  { server: 'executor', address: () => executor.address, channel: () => channelCredentials(material.router, 'executor'), services: EXECUTOR_SERVICES },
];

describe.each(SERVERS)('the $server', ({ address, channel, services }) => {
  it('mounts only services with rows here: a new service fails this test until it has them', async () => {
    expect(await mountedServices(address(), channel())).toEqual(services.map(({ service }) => service).sort());
  });
});

describe.each(ALL_SERVICES)('$service', ({ definition, rows }) => {
  it('has a row for every RPC of its grpc-js definition, and no other', () => {
    expect(Object.keys(rows).sort()).toEqual(Object.keys(definition).sort());
  });
});

describe.each(ALL_SERVICES.filter((service) => service.access))('$service', ({ rows, access }) => {
  it('agrees with the access table the service mounts', () => {
    const requirementOf = (entry: MethodAccess): Requirement => ('open' in entry ? { open: true }
      : 'servicesOnly' in entry ? { servicesOnly: entry.servicesOnly } : { role: entry.role, services: entry.services ?? [] });
    expect(Object.fromEntries(Object.entries(access!).map(([name, entry]) => [name, requirementOf(entry)])))
      .toEqual(Object.fromEntries(Object.entries(rows).map(([name, row]) => [name, row.needs])));
  });
});

describe.each(ROUTER_SERVICES)('the router: $service', ({ definition, rows }) => {
  it.each(Object.keys(definition))('%s answers each caller as its row says', async (name) => {
    expect(rows[name], `${name} has no row`).toBeDefined();
    const { expected, answered } = await judge(router.address, () => credentials.createInsecure(), TOKEN_CALLERS, definition[name]!, rows[name]!);
    expect(answered).toEqual(expected);
  });
});

describe.each(REGISTRY_SERVICES)('the registry: $service', ({ definition, rows }) => {
  it.each(Object.keys(definition))('%s answers each caller as its row says', async (name) => {
    expect(rows[name], `${name} has no row`).toBeDefined();
    const { expected, answered } = await judge(registry.address, () => credentials.createSsl(material.registry.caPem),
      [...TOKEN_CALLERS, ...CERTIFICATE_CALLERS], definition[name]!, rows[name]!);
    expect(answered).toEqual(expected);
  });
});

describe.each(EXECUTOR_SERVICES)('the executor: $service', ({ definition, rows }) => {
  beforeAll(async () => {
    const foreign = await issueServiceCertificate(await createCertificateAuthority(), 'router');
    foreignRouter = credentials.createSsl(material.router.caPem, Buffer.from(foreign.keyPem), Buffer.from(foreign.certPem));
  });

  it.each(Object.keys(definition))("%s refuses everyone but the router's certificate", async (name) => {
    expect(rows[name], `${name} has no row`).toBeDefined();
    const { expected, answered } = await judge(executor.address, () => credentials.createInsecure(), EXECUTOR_CALLERS, definition[name]!, rows[name]!);
    expect(answered).toEqual(expected);
  });
});

// ---- the roles table in docs/security.md ----------------------------------------------------

const ROLES_TABLE_START = '<!-- roles table: generated from test/integration/security-matrix.test.ts -->';
const ROLES_TABLE_END = '<!-- end of roles table -->';

/** The table: one line per RPC, a column per role (roles include the ones before them), and the certificates that let a service in. */
function rolesTable(): string {
  const yes = '✓';
  const lines = [
    '| RPC | no credentials | infer | write | admin | by certificate alone | model globs |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const { service, definition, rows } of ALL_SERVICES) {
    for (const [name, method] of Object.entries(definition)) {
      const { needs, naming, globs } = rows[name]!;
      const rpc = `\`${service}/${labelOf(method)}\``;
      if ('open' in needs) {
        lines.push(`| ${rpc} | ${yes} | ${yes} | ${yes} | ${yes} | anyone | not checked |`);
      } else if ('servicesOnly' in needs) {
        lines.push(`| ${rpc} | | | | | ${needs.servicesOnly.join(', ')} only | not checked |`);
      } else {
        const roleCells = ROLES.map((held) => (roleAllows(held, needs.role) ? yes : '')).join(' | ');
        lines.push(`| ${rpc} | | ${roleCells} | ${needs.services.join(', ') || '-'} | ${globs ?? (naming ? 'checked' : 'not checked')} |`);
      }
    }
  }
  // An empty cell is written '| |', not '|  |'.
  return lines.map((line) => line.replace(/ {2,}/g, ' ')).join('\n');
}

it('docs/security.md holds the roles table these rows make', async () => {
  const docs = await readFile(join(REPO_ROOT, 'docs/security.md'), 'utf8');
  const start = docs.indexOf(ROLES_TABLE_START);
  const end = docs.indexOf(ROLES_TABLE_END);
  expect(start, `docs/security.md lacks the line ${ROLES_TABLE_START}`).toBeGreaterThanOrEqual(0);
  expect(end, `docs/security.md lacks the line ${ROLES_TABLE_END}`).toBeGreaterThan(start);
  const documented = docs.slice(start + ROLES_TABLE_START.length, end).trim();
  expect(documented, `replace the table in docs/security.md with:\n${rolesTable()}\n`).toBe(rolesTable());
});

/**
 * The service links over TLS, through real grpc-js servers and clients with certificates from
 * one CA: the executor requires a client certificate, the registry asks for one without requiring
 * it, each verified certificate names its service, and a router, an executor and a registry
 * started with the credentials their mains give them serve a model end to end.
 */
import {
  credentials, makeGenericClientConstructor, Metadata, Server, ServerCredentials, status, type ChannelCredentials,
  type ServiceDefinition, type ServiceError,
} from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_IDENTITIES, type ServiceIdentity } from '../../services/auth/roles.ts';
import { startExecutor, type RunningExecutor } from '../../services/executor/service/index.ts';
import { GRPCInferenceServiceClient } from '../../services/protocol/generated/inference/grpc_service.ts';
import { ExecutorClient } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { RegistryClient, UploadHeader } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { startRouter, type RunningRouter } from '../../services/router/index.ts';
import { channelCredentials, serverCredentials, type ClientCertificatePolicy } from '../../services/tls/credentials.ts';
import { ensureServiceMaterial, loadServiceMaterial, type ServiceMaterial } from '../../services/tls/material.ts';
import { peerServiceIdentity } from '../../services/tls/peer.ts';
import { createCertificateAuthority, issueServiceCertificate } from '../../services/tls/pki.ts';
import { tinyModel } from '../registry/fixtures.ts';

let dir: string;
const material = {} as Record<ServiceIdentity, ServiceMaterial>;
/** A router certificate from another CA: valid, but not this deployment's. */
let foreignRouter: ChannelCredentials;
/** Only trusts the CA; presents no certificate (what a person's CLI does). */
let certless: ChannelCredentials;
/** A server with a registry certificate from another CA. */
let impostorServer: ServerCredentials;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-mtls-'));
  await ensureServiceMaterial(dir, SERVICE_IDENTITIES);
  for (const service of SERVICE_IDENTITIES) material[service] = await loadServiceMaterial(dir, service);
  const foreign = await issueServiceCertificate(await createCertificateAuthority(), 'router');
  foreignRouter = credentials.createSsl(material.router.caPem, Buffer.from(foreign.keyPem), Buffer.from(foreign.certPem));
  certless = credentials.createSsl(material.router.caPem);
  const impostor = await issueServiceCertificate(await createCertificateAuthority(), 'registry');
  impostorServer = ServerCredentials.createSsl(null, [{ private_key: Buffer.from(impostor.keyPem), cert_chain: Buffer.from(impostor.certPem) }], false);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The caller's service as the server read it from the verified certificate ('' when none). */
const WHOAMI: ServiceDefinition = {
  who: {
    path: '/nexus.test.Whoami/Who',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (bytes: Buffer) => bytes,
  },
};
const WhoamiClient = makeGenericClientConstructor(WHOAMI, 'Whoami');

async function startWhoami(serverSide: ServerCredentials): Promise<{ address: string; stop(): void }> {
  const server = new Server();
  server.addService(WHOAMI, {
    who: (call: { getAuthContext(): Parameters<typeof peerServiceIdentity>[0] }, done: (error: null, value: Buffer) => void) =>
      done(null, Buffer.from(peerServiceIdentity(call.getAuthContext()) ?? '')),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverSide, (error, bound) => (error ? reject(error) : resolve(bound))));
  return { address: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

/** Who the server says called, or the status the call failed with. */
function whoCalls(address: string, clientSide: ChannelCredentials): Promise<string | { code: number; details: string }> {
  const client = new WhoamiClient(address, clientSide);
  return new Promise((resolve) => {
    client.makeUnaryRequest('/nexus.test.Whoami/Who', (value: Buffer) => value, (bytes: Buffer) => bytes, Buffer.alloc(0), new Metadata(),
      { deadline: Date.now() + 5_000 }, (error: ServiceError | null, response?: Buffer) => {
        client.close();
        resolve(error ? { code: error.code, details: error.details } : response!.toString());
      });
  });
}

const policies: ClientCertificatePolicy[] = ['required', 'optional', 'none'];

describe('the identity a server reads from the client certificate', () => {
  it.each(policies)('with client certificates %s: each service certificate names its service; none and a foreign one name nobody', async (policy) => {
    const server = await startWhoami(serverCredentials(material.registry, { clientCertificate: policy }));
    try {
      for (const service of SERVICE_IDENTITIES) {
        // 'none' never asks for a certificate, so it cannot name the caller.
        expect(await whoCalls(server.address, channelCredentials(material[service], 'registry')), `${policy}, ${service}`).toBe(policy === 'none' ? '' : service);
      }
      const withoutCertificate = await whoCalls(server.address, certless);
      const foreign = await whoCalls(server.address, foreignRouter);
      if (policy === 'required') {
        expect(withoutCertificate).toMatchObject({ code: status.UNAVAILABLE });
        expect(foreign).toMatchObject({ code: status.UNAVAILABLE });
      } else {
        // Connected, but identified as nobody: such a caller must send a token.
        expect(withoutCertificate).toBe('');
        expect(foreign).toBe('');
      }
      // A plaintext client is never served by a TLS port.
      expect(await whoCalls(server.address, credentials.createInsecure())).toMatchObject({ code: status.UNAVAILABLE });
    } finally {
      server.stop();
    }
  });

  it('verifies the server against the CA by the address dialed: 127.0.0.1 and localhost, not a name the certificate lacks', async () => {
    const server = await startWhoami(serverCredentials(material.registry, { clientCertificate: 'optional' }));
    try {
      const port = server.address.split(':')[1];
      expect(await whoCalls(`localhost:${port}`, channelCredentials(material.router, 'registry'))).toBe('router');
      const client = new WhoamiClient(server.address, channelCredentials(material.router, 'registry'), { 'grpc.ssl_target_name_override': 'registry.example.com' });
      const refused = await new Promise<ServiceError | null>((resolve) =>
        client.makeUnaryRequest('/nexus.test.Whoami/Who', (value: Buffer) => value, (bytes: Buffer) => bytes, Buffer.alloc(0), new Metadata(),
          { deadline: Date.now() + 5_000 }, (error: ServiceError | null) => resolve(error)));
      client.close();
      expect(refused?.code).toBe(status.UNAVAILABLE);
      // A server certificate from another CA is refused by the client.
      const impostor = await startWhoami(impostorServer);
      try {
        expect(await whoCalls(impostor.address, channelCredentials(material.router, 'registry'))).toMatchObject({ code: status.UNAVAILABLE });
      } finally {
        impostor.stop();
      }
    } finally {
      server.stop();
    }
  });

  it('refuses a server with another service\'s certificate from the same CA: an executor cannot stand in for the registry', async () => {
    const executorPosingAsRegistry = await startWhoami(serverCredentials(material.executor, { clientCertificate: 'optional' }));
    try {
      expect(await whoCalls(executorPosingAsRegistry.address, channelCredentials(material.router, 'registry'))).toMatchObject({ code: status.UNAVAILABLE });
      expect(await whoCalls(executorPosingAsRegistry.address, channelCredentials(material.router, 'executor'))).toBe('router');
    } finally {
      executorPosingAsRegistry.stop();
    }
  });
});

describe('the executor with mutual TLS', () => {
  let executor: RunningExecutor;

  beforeAll(async () => {
    executor = await startExecutor({
      registryAddress: '127.0.0.1:1', cacheDir: join(dir, 'executor-cache'),
      credentials: serverCredentials(material.executor, { clientCertificate: 'required' }), registryCredentials: channelCredentials(material.executor, 'registry'),
    });
  });

  afterAll(async () => {
    await executor?.shutdown(100);
  });

  const getStats = (clientSide: ChannelCredentials) => {
    const client = new ExecutorClient(executor.address, clientSide);
    return new Promise<{ code: number } | 'answered'>((resolve) => {
      client.getStats({}, new Metadata(), { deadline: Date.now() + 5_000 }, (error) => {
        client.close();
        resolve(error ? { code: error.code } : 'answered');
      });
    });
  };

  /** Opens Connect: 'hello' when the executor speaks first, as it does to a router, or the status that ended it. */
  const connect = (clientSide: ChannelCredentials) => {
    const client = new ExecutorClient(executor.address, clientSide);
    const stream = client.connect(new Metadata(), { deadline: Date.now() + 5_000 });
    return new Promise<{ code: number; details: string } | 'hello'>((resolve) => {
      stream.on('data', (message: { hello?: unknown }) => {
        if (message.hello) resolve('hello');
        stream.cancel();
      });
      stream.on('error', (error: ServiceError) => resolve({ code: error.code, details: error.details }));
    }).finally(() => client.close());
  };

  it('answers the router certificate', async () => {
    expect(await getStats(channelCredentials(material.router, 'executor'))).toBe('answered');
    expect(await connect(channelCredentials(material.router, 'executor'))).toBe('hello');
  });

  it('refuses, PERMISSION_DENIED, another service\'s certificate from the same CA', async () => {
    for (const service of ['executor', 'registry'] as const) {
      expect(await getStats(channelCredentials(material[service], 'executor')), service).toEqual({ code: status.PERMISSION_DENIED });
      expect(await connect(channelCredentials(material[service], 'executor')), service).toEqual({
        code: status.PERMISSION_DENIED, details: "Connect may be called only by the 'router' service, by its certificate",
      });
    }
  });

  it('refuses a client without a certificate, one from another CA, and plaintext, before any call reaches it', async () => {
    expect(await getStats(certless)).toEqual({ code: status.UNAVAILABLE });
    expect(await connect(certless)).toMatchObject({ code: status.UNAVAILABLE });
    expect(await getStats(foreignRouter)).toEqual({ code: status.UNAVAILABLE });
    expect(await getStats(credentials.createInsecure())).toEqual({ code: status.UNAVAILABLE });
  });
});

describe('a registry, an executor and a router linked by their certificates', () => {
  let registry: RunningRegistry;
  let executor: RunningExecutor;
  let router: RunningRouter;

  beforeAll(async () => {
    // With authentication: the router and the executor are let in by their certificates alone.
    registry = await startRegistry({
      dataDir: join(dir, 'registry'), credentials: serverCredentials(material.registry, { clientCertificate: 'optional' }), auth: {},
    });
    executor = await startExecutor({
      registryAddress: registry.address, cacheDir: join(dir, 'linked-cache'),
      credentials: serverCredentials(material.executor, { clientCertificate: 'required' }), registryCredentials: channelCredentials(material.executor, 'registry'),
    });
    router = await startRouter({
      // The public port's authentication is not what this tests.
      address: '127.0.0.1:0', insecure: true, registryAddress: registry.address, executorAddresses: [executor.address],
      registryCredentials: channelCredentials(material.router, 'registry'), executorCredentials: channelCredentials(material.router, 'executor'),
    });
    const bytes = tinyModel(7);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await registry.registry.upload(UploadHeader.fromPartial({ modelName: 'tiny', format: 'onnx', creator: 'test', sha256, sizeBytes: bytes.byteLength }),
      (async function* () { yield bytes; })());
  });

  afterAll(async () => {
    await router?.shutdown(100);
    await executor?.shutdown(100);
    await registry?.shutdown(100);
  });

  it('serves a model: the router follows the registry and loads on the executor, which downloads it from the registry', async () => {
    const inference = new GRPCInferenceServiceClient(router.address, credentials.createInsecure());
    try {
      const ready = () => new Promise<boolean>((resolve, reject) =>
        inference.modelReady({ name: 'tiny', version: '' }, (error, response) => (error ? reject(error) : resolve(response.ready))));
      const started = Date.now();
      while (!(await ready())) {
        if (Date.now() - started > 30_000) throw new Error('tiny did not become ready over TLS within 30 s');
        await new Promise((wake) => setTimeout(wake, 50));
      }
      expect(executor.state.stats().models.map((entry) => entry.model?.modelName)).toContain('tiny');
    } finally {
      inference.close();
    }
  });

  it('the registry lets in the router certificate alone, and asks a client with only the CA for a token', async () => {
    const listModels = (clientSide: ChannelCredentials) => {
      const client = new RegistryClient(registry.address, clientSide);
      return new Promise<string[] | { code: number; details: string }>((resolve) => client.listModels({}, (error, response) => {
        client.close();
        resolve(error ? { code: error.code, details: error.details } : response.latest.map((version) => version.modelName));
      }));
    };
    expect(await listModels(channelCredentials(material.router, 'registry'))).toEqual(['tiny']);
    expect(await listModels(certless)).toEqual({ code: status.UNAUTHENTICATED, details: expect.stringMatching(/^missing credentials/) });
  });
});

/** Debian's python3, which has grpcio (python3-grpcio); another python3 on PATH may not. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

describe('a Python grpcio client over TLS', () => {
  let registry: RunningRegistry;

  beforeAll(async () => {
    registry = await startRegistry({
      dataDir: join(dir, 'python-registry'), credentials: serverCredentials(material.registry, { clientCertificate: 'optional' }),
    });
  });

  afterAll(async () => {
    await registry?.shutdown(100);
  });

  /** grpc.health.v1.Health/Check for the whole server, as raw bytes: the answer's hex, or the failure's status name. */
  const PYTHON_HEALTH_CHECK = [
    'import grpc, sys',
    'roots = open(sys.argv[2], "rb").read() if len(sys.argv) > 2 else None',
    'channel = grpc.secure_channel(sys.argv[1], grpc.ssl_channel_credentials(root_certificates=roots))',
    'check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b, response_deserializer=lambda b: b)',
    'try:',
    '    print(check(b"", timeout=10).hex())',
    'except grpc.RpcError as error:',
    '    print(error.code().name)',
  ].join('\n');

  const pythonCheck = async (...args: string[]) =>
    (await promisify(execFile)(PYTHON, ['-c', PYTHON_HEALTH_CHECK, registry.address, ...args])).stdout.trim();

  it('has grpcio to run with (deploy/bootstrap.sh installs python3-grpcio)', async () => {
    await expect(promisify(execFile)(PYTHON, ['-c', 'import grpc'])).resolves.toBeDefined();
  });

  it('checks the registry\'s health trusting ca.crt, without a client certificate, and is refused without trusting it', async () => {
    // HealthCheckResponse{status: SERVING (1)}: field 1, varint 1.
    expect(await pythonCheck(join(dir, 'ca.crt'))).toBe('0801');
    // The system's roots do not include the deployment's CA, so the registry's certificate is refused.
    expect(await pythonCheck()).toBe('UNAVAILABLE');
  });
});

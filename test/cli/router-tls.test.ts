/**
 * The CLI dials the router's public port over TLS when --router-ca names the CA that signed its
 * certificate (a router started with --tls-cert, as docker-compose.yml runs it), and in plaintext
 * otherwise; either way with its bearer token.
 */
import { Metadata, Server, type ServiceError } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GRPCInferenceServiceService, type ServerLiveResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { configureConnection, inferenceClient, unaryCall } from '../../services/cli/remote/index.ts';
import { ensureServiceMaterial, publicServerCredentials } from '../../services/tls/index.ts';

let dir: string;
let server: Server;
let port: number;
const seenTokens: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-cli-router-tls-'));
  await ensureServiceMaterial(dir, ['router']);
  server = new Server();
  server.addService(GRPCInferenceServiceService, {
    serverLive: (call: { metadata: Metadata }, done: (error: null, response: ServerLiveResponse) => void) => {
      seenTokens.push(String(call.metadata.get('authorization')[0] ?? ''));
      done(null, { live: true });
    },
  });
  port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0',
    publicServerCredentials(join(dir, 'router.crt'), join(dir, 'router.key')), (error, bound) => (error ? reject(error) : resolve(bound))));
});

afterAll(async () => {
  server?.forceShutdown();
  configureConnection({});
  if (dir) await rm(dir, { recursive: true, force: true });
});

const serverLive = () => {
  const client = inferenceClient(`127.0.0.1:${port}`);
  return unaryCall<ServerLiveResponse>((done) => client.serverLive({}, new Metadata(), { deadline: Date.now() + 5_000 }, done)).finally(() => client.close());
};

it('dials the router over TLS with --router-ca, sending its token', async () => {
  configureConnection({ token: 'nxk_000000000000_test', routerCa: join(dir, 'ca.crt') });
  expect(await serverLive()).toEqual({ live: true });
  expect(seenTokens.at(-1)).toBe('Bearer nxk_000000000000_test');
});

it('cannot reach a TLS router in plaintext, as without --router-ca', async () => {
  configureConnection({ token: 'nxk_000000000000_test' });
  const error = await serverLive().then(() => undefined, (failure: ServiceError) => failure);
  expect(error?.code).toBe(14); // UNAVAILABLE
});

/**
 * The router's public port: TLS from the operator's own files (--tls-cert/--tls-key), mutual
 * with --tls-client-ca, each problem with a file named; and the service mains refusing to listen
 * beyond loopback without TLS and authentication, started as the processes they are.
 */
import { credentials, makeGenericClientConstructor, Metadata, Server, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicServerCredentials } from '../../services/tls/credentials.ts';
import { createCertificateAuthority, issueServiceCertificate, type PemPair } from '../../services/tls/pki.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
let dir: string;
let serverCa: PemPair;
let clientCa: PemPair;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-public-tls-'));
  // The operator's certificate for the public port: from their own CA, here made with ours.
  serverCa = await createCertificateAuthority({ name: 'Example Public CA' });
  const server = await issueServiceCertificate(serverCa, 'router', { extraNames: ['inference.example.com'] });
  clientCa = await createCertificateAuthority({ name: 'Example Client CA' });
  const client = await issueServiceCertificate(clientCa, 'router');
  await writeFile(file('server-ca.crt'), serverCa.certPem);
  await writeFile(file('public.crt'), server.certPem);
  await writeFile(file('public.key'), server.keyPem);
  await writeFile(file('client-ca.crt'), clientCa.certPem);
  await writeFile(file('client.crt'), client.certPem);
  await writeFile(file('client.key'), client.keyPem);
  await writeFile(file('other.key'), (await issueServiceCertificate(serverCa, 'router')).keyPem);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PING: Parameters<typeof makeGenericClientConstructor>[0] = {
  ping: {
    path: '/nexus.test.Ping/Ping', requestStream: false, responseStream: false,
    requestSerialize: (value: Buffer) => value, requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (value: Buffer) => value, responseDeserialize: (bytes: Buffer) => bytes,
  },
};
const PingClient = makeGenericClientConstructor(PING, 'Ping');

/** Serves Ping with `serverSide`, calls it once with `clientSide`: 'pong' or the failure's code. */
async function ping(serverSide: ReturnType<typeof publicServerCredentials>, clientSide: ChannelCredentials): Promise<string | number> {
  const server = new Server();
  server.addService(PING, { ping: (_call: unknown, done: (error: null, value: Buffer) => void) => done(null, Buffer.from('pong')) });
  const port = await new Promise<number>((done, reject) => server.bindAsync('127.0.0.1:0', serverSide, (error, bound) => (error ? reject(error) : done(bound))));
  const client = new PingClient(`127.0.0.1:${port}`, clientSide);
  try {
    return await new Promise((done) => client.makeUnaryRequest('/nexus.test.Ping/Ping', (value: Buffer) => value, (bytes: Buffer) => bytes,
      Buffer.alloc(0), new Metadata(), { deadline: Date.now() + 5_000 }, (error: ServiceError | null, response?: Buffer) =>
        done(error ? error.code : response!.toString())));
  } finally {
    client.close();
    server.forceShutdown();
  }
}

const trusting = () => credentials.createSsl(Buffer.from(serverCa.certPem));

describe('publicServerCredentials', () => {
  it('serves TLS to any client that trusts the certificate, without asking for one of its own (--grpc-use-ssl)', async () => {
    expect(await ping(publicServerCredentials(file('public.crt'), file('public.key')), trusting())).toBe('pong');
    expect(await ping(publicServerCredentials(file('public.crt'), file('public.key')), credentials.createInsecure())).toBe(status.UNAVAILABLE);
  });

  it('with a client CA, requires a client certificate that CA signed (--grpc-use-ssl-mutual)', async () => {
    const mutual = () => publicServerCredentials(file('public.crt'), file('public.key'), file('client-ca.crt'));
    const client = await issueServiceCertificate(clientCa, 'router');
    const stranger = await issueServiceCertificate(serverCa, 'router');
    expect(await ping(mutual(), credentials.createSsl(Buffer.from(serverCa.certPem), Buffer.from(client.keyPem), Buffer.from(client.certPem)))).toBe('pong');
    expect(await ping(mutual(), trusting())).toBe(status.UNAVAILABLE);
    expect(await ping(mutual(), credentials.createSsl(Buffer.from(serverCa.certPem), Buffer.from(stranger.keyPem), Buffer.from(stranger.certPem))))
      .toBe(status.UNAVAILABLE);
  });

  it('names the file it cannot read, and a key that is not the certificate\'s', () => {
    expect(() => publicServerCredentials(file('missing.crt'), file('public.key')))
      .toThrow(`cannot read the TLS certificate (--tls-cert, NEXUS_TLS_CERT) ${file('missing.crt')} (ENOENT)`);
    expect(() => publicServerCredentials(file('public.crt'), file('missing.key')))
      .toThrow(`cannot read the TLS private key (--tls-key, NEXUS_TLS_KEY) ${file('missing.key')} (ENOENT)`);
    expect(() => publicServerCredentials(file('public.crt'), file('public.key'), file('missing-ca.crt')))
      .toThrow(`cannot read the client CA (--tls-client-ca, NEXUS_TLS_CLIENT_CA) ${file('missing-ca.crt')} (ENOENT)`);
    expect(() => publicServerCredentials(file('public.crt'), file('other.key'))).toThrow(`${file('other.key')} is not the private key of ${file('public.crt')}`);
    expect(() => publicServerCredentials(file('public.key'), file('public.key'))).toThrow(`cannot use ${file('public.key')} with ${file('public.key')} for TLS`);
  });
});

/** Runs a service main until it exits, or until it listens and is then stopped: its exit code and output. */
function runMain(service: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, `services/${service}/main.ts`), ...args], {
    env: { ...process.env, NEXUS_TLS_DIR: '', NEXUS_INSECURE: '', NEXUS_DRAIN_DELAY_MS: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (stdout.includes('"event":"listening"')) child.kill('SIGTERM');
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((done) => child.once('exit', (code) => {
    clearTimeout(killer);
    done({ code, stdout, stderr });
  }));
}

describe('the service mains and the bind policy', () => {
  it('the registry refuses 0.0.0.0 without --tls-dir, saying what to pass', async () => {
    const result = await runMain('registry', ['--address', '0.0.0.0:0', '--metrics-address', '127.0.0.1:0', '--data-dir', file('registry')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('registry failed to start: registry will not listen on 0.0.0.0:0 without TLS');
    expect(result.stderr).toContain('Pass --tls-dir DIR, listen on a loopback address such as 127.0.0.1, or pass --insecure (NEXUS_INSECURE=1)');
  });

  it('the executor refuses [::] without TLS, before it opens a GPU', async () => {
    const result = await runMain('executor', ['--address', '[::]:0', '--metrics-address', '127.0.0.1:0', '--cache-dir', file('cache')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('executor failed to start: executor will not listen on [::]:0 without TLS or authentication');
  });

  it('the router refuses 0.0.0.0 for its public port without --tls-cert, and names a missing --tls-key', async () => {
    const refused = await runMain('router', ['--address', '0.0.0.0:0', '--metrics-address', '127.0.0.1:0', '--registry', '127.0.0.1:1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('router will not listen on 0.0.0.0:0 without TLS');
    expect(refused.stderr).toContain('Pass --tls-cert FILE and --tls-key FILE, listen on a loopback address');
    const halfConfigured = await runMain('router', ['--address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0', '--registry', '127.0.0.1:1'],
      { NEXUS_TLS_CERT: file('public.crt') });
    expect(halfConfigured.stderr).toContain('TLS on the public port needs --tls-cert and --tls-key; missing --tls-key (NEXUS_TLS_KEY)');
    const served = await runMain('router', [
      '--address', '0.0.0.0:0', '--metrics-address', '127.0.0.1:0', '--registry', '127.0.0.1:1', '--tls-cert', file('public.crt'), '--tls-key', file('public.key'),
    ]);
    expect(served.stdout, served.stderr).toContain('"event":"listening"');
  });

  it('--insecure lets the registry listen on 0.0.0.0 with a warning', async () => {
    const result = await runMain('registry', ['--address', '0.0.0.0:0', '--metrics-address', '127.0.0.1:0', '--data-dir', file('insecure-registry'), '--insecure']);
    expect(result.stdout).toContain('"event":"listening"');
    expect(result.stderr).toContain('registry: warning: registry listens on 0.0.0.0:0 without TLS or authentication (--insecure)');
  });
});

/** Logs are JSON lines, at the level NEXUS_LOG_LEVEL sets, carrying the trace id of the call. */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { GetVersionRequest, RegistryClient } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { REPO_ROOT } from '../integration/harness.ts';

let registry: ChildProcess | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  registry?.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('writes each failed call as a JSON line with the caller\'s trace id', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nexus-logs-'));
  registry = spawn(process.execPath, [join(REPO_ROOT, 'services/registry/main.ts'), '--address', '127.0.0.1:0',
    '--metrics-address', '127.0.0.1:0', '--data-dir', dataDir, '--insecure'], { env: { ...process.env, NEXUS_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  registry.stderr!.on('data', (chunk) => (stderr += chunk));
  const address = await new Promise<string>((resolve) => {
    let stdout = '';
    registry!.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const line = stdout.split('\n').find((candidate) => candidate.includes('"listening"'));
      if (line) resolve(JSON.parse(line).address);
    });
  });

  const traceId = randomBytes(16).toString('hex');
  const metadata = new Metadata();
  metadata.set('traceparent', `00-${traceId}-${randomBytes(8).toString('hex')}-01`);
  const client = new RegistryClient(address, credentials.createInsecure());
  const error = await new Promise<ServiceError>((resolve) =>
    client.getVersion(GetVersionRequest.fromPartial({ modelName: 'missing', version: 0 }), metadata, (failure) => resolve(failure!)));
  client.close();
  expect(error.code).toBe(status.NOT_FOUND);

  for (const started = Date.now(); !stderr.includes(traceId) && Date.now() - started < 5000;) {
    await new Promise((wake) => setTimeout(wake, 20));
  }
  const lines = stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
  const failed = lines.find((line) => line.msg === 'request failed');
  expect(failed).toMatchObject({ service: 'registry', method: 'GetVersion', trace_id: traceId, level: 20 });
  expect(lines.every((line) => typeof line.time === 'number' && typeof line.level === 'number')).toBe(true);
});

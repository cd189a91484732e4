/**
 * The HTTP port as `nexus up` starts it: the router process (services/router/main.ts) announces
 * its HTTP address, `nexus up` prints it and the dashboard's address, and it serves REST with the
 * admin key `nexus up` had the registry write, refusing a request without one; an HTTP request is
 * a server span continuing the caller's traceparent, with the request path's spans under it, exported
 * to a real OTLP receiver; after the router is killed, the supervisor's restart serves HTTP on the
 * same address again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { REPO_ROOT } from './harness.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../observability/otlp-receiver.ts';

let up: ChildProcess | undefined;
let home: string | undefined;
let receiver: OtlpReceiver | undefined;

afterAll(async () => {
  await receiver?.close();
  if (up && up.exitCode === null) up.kill('SIGKILL');
  if (home) await rm(home, { recursive: true, force: true });
});

const FLOWER = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] };

it('prints the HTTP address, serves REST with the admin key on it, traces it under the caller\'s traceparent, and keeps it across a router restart', async () => {
  home = await mkdtemp(join(tmpdir(), 'nexus-up-http-'));
  receiver = await startOtlpReceiver();
  up = spawn(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), 'up', '--example', '--port', '0', '--registry-port', '0'], {
    env: { ...process.env, NEXUS_HOME: home, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_BSP_SCHEDULE_DELAY: '100' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  up.stderr!.on('data', (chunk) => (output += chunk));
  await new Promise<void>((resolve, reject) => {
    up!.stdout!.on('data', (chunk) => {
      output += chunk;
      if (output.includes('press Ctrl-C to stop')) resolve();
    });
    up!.once('exit', (code) => reject(new Error(`nexus up exited with ${code}:\n${output}`)));
  });
  const base = /router \(REST, OpenAI API and dashboard over HTTP\): (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
  expect(base, output).toBeDefined();
  expect(output).toContain(`dashboard: ${base}/ (log in with the key in ${join(home, 'credentials', 'admin.key')})`);
  const key = (await readFile(join(home, 'credentials', 'admin.key'), 'utf8')).trim();
  const traceId = randomBytes(16).toString('hex');
  const clientSpanId = randomBytes(8).toString('hex');
  const infer = () => fetch(`${base}/v2/models/iris/infer`, {
    method: 'POST', body: JSON.stringify(FLOWER),
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', traceparent: `00-${traceId}-${clientSpanId}-01` },
  });

  const answer = await infer();
  expect(answer.status).toBe(200);
  const json = await answer.json() as { outputs: Array<{ data: number[] }> };
  expect(json.outputs[0].data[0]).toBeGreaterThan(0.9);
  expect((await fetch(`${base}/v2/models/iris`)).status).toBe(401);
  expect((await fetch(`${base}/`)).headers.get('content-type')).toContain('text/html');

  const inTrace = (name: string) => receiver!.spans.find((span) => span.traceId === traceId && span.service === 'nexus-router' && span.name === name);
  await expect.poll(() => inTrace('batch'), { timeout: 20_000 }).toBeDefined();
  const server = inTrace('POST /v2/models/:model/infer')!;
  expect(server.parentSpanId).toBe(clientSpanId);
  expect(server.attributes).toMatchObject({ 'http.route': '/v2/models/:model/infer', 'http.response.status_code': 200 });
  expect(inTrace('validate')!.parentSpanId).toBe(server.spanId);
  expect(inTrace('batch')!.parentSpanId).toBe(server.spanId);

  const routerPid = Number(await readFile(join(home, 'run', 'router.pid'), 'utf8'));
  process.kill(routerPid, 'SIGKILL');
  await expect.poll(async () => {
    try {
      return (await infer()).status;
    } catch {
      return 0;
    }
  }, { timeout: 60_000, interval: 250 }).toBe(200);
  expect(Number(await readFile(join(home, 'run', 'router.pid'), 'utf8'))).not.toBe(routerPid);

  const exited = new Promise((resolve) => up!.once('exit', resolve));
  up.kill('SIGINT');
  expect(await exited).toBe(0);
}, 180_000);

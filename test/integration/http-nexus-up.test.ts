/**
 * The HTTP port as `nexus up` starts it: the router process (services/router/main.ts) announces
 * its HTTP address, `nexus up` prints it and the dashboard's address, and it serves REST with the
 * admin key `nexus up` had the registry write, refusing a request without one; after the router
 * is killed, the supervisor's restart serves HTTP on the same address again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { REPO_ROOT } from './harness.ts';

let up: ChildProcess | undefined;
let home: string | undefined;

afterAll(async () => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  if (home) await rm(home, { recursive: true, force: true });
});

const FLOWER = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] };

it('prints the HTTP address, serves REST with the admin key on it, and keeps it across a router restart', async () => {
  home = await mkdtemp(join(tmpdir(), 'nexus-up-http-'));
  up = spawn(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), 'up', '--example', '--port', '0', '--registry-port', '0'], {
    env: { ...process.env, NEXUS_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'],
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
  const infer = () => fetch(`${base}/v2/models/iris/infer`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(FLOWER),
  });

  const answer = await infer();
  expect(answer.status).toBe(200);
  const json = await answer.json() as { outputs: Array<{ data: number[] }> };
  expect(json.outputs[0].data[0]).toBeGreaterThan(0.9);
  expect((await fetch(`${base}/v2/models/iris`)).status).toBe(401);
  expect((await fetch(`${base}/`)).headers.get('content-type')).toContain('text/html');

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

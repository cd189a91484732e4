/**
 * `nexus up` keeps serving when one of its services dies: the executor is killed with SIGKILL,
 * `up` says so and restarts it on the same address, the registry and router keep running, an
 * inference works again, and Ctrl-C still stops everything and leaves no pid file behind.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../registry/fixtures.ts';

let up: ChildProcess | undefined;
let home: string | undefined;

afterAll(async () => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  if (home) await rm(home, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('restarts an executor killed with SIGKILL, keeps the others, and serves again', async () => {
  home = await mkdtemp(join(tmpdir(), 'nexus-up-supervise-'));
  const cli = join(REPO_ROOT, 'services/cli/main.ts');
  up = spawn(process.execPath, [cli, 'up', '--example', '--port', '0', '--registry-port', '0'], {
    env: { ...process.env, NEXUS_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const waitFor = (pattern: RegExp, timeoutMs = 120_000) => new Promise<RegExpExecArray>((resolve, reject) => {
    const check = () => {
      const match = pattern.exec(output);
      if (!match && up!.exitCode !== null) {
        clearInterval(poll);
        clearTimeout(timer);
        reject(new Error(`nexus up exited with ${up!.exitCode} before ${pattern}:\n${output}`));
      }
      if (!match) return false;
      clearInterval(poll);
      clearTimeout(timer);
      resolve(match);
      return true;
    };
    const poll = setInterval(check, 50);
    const timer = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`no ${pattern} within ${timeoutMs} ms in:\n${output}`));
    }, timeoutMs);
    check();
  });
  up.stdout!.on('data', (chunk) => (output += chunk));
  up.stderr!.on('data', (chunk) => (output += chunk));
  const routerAddress = (await waitFor(/router \(Open Inference Protocol over gRPC\): (\S+)/))[1];

  const infer = async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      cli, 'infer', 'iris', '--router', routerAddress, '--json', '--data', '[[5.1,3.5,1.4,0.2]]',
      // The same NEXUS_HOME: it presents the admin key `nexus up` created.
    ], { env: { ...process.env, NEXUS_HOME: home } });
    return JSON.parse(stdout).outputs[0].values as number[];
  };
  expect((await infer())[0]).toBeGreaterThan(0.9);

  const pidOf = async (name: string) => Number((await readFile(join(home!, 'run', `${name}.pid`), 'utf8')).trim());
  const [executorPid, registryPid, routerPid] = [await pidOf('executor-0'), await pidOf('registry'), await pidOf('router')];
  process.kill(executorPid, 'SIGKILL');
  await waitFor(/executor-0 was killed by SIGKILL; restarting in 0\.5 s \(restart 1\)/);
  const restartedPid = Number((await waitFor(/executor-0 restarted \(pid (\d+)\)/))[1]);
  expect(restartedPid).not.toBe(executorPid);
  expect(await pidOf('executor-0')).toBe(restartedPid);
  expect([alive(registryPid), alive(routerPid), alive(restartedPid), up.exitCode]).toEqual([true, true, true, null]);

  // The router reconnects to the executor at its old address; the executor loads the model again.
  let probabilities: number[] | undefined;
  for (const started = Date.now(); !probabilities && Date.now() - started < 60_000;) {
    probabilities = await infer().catch(() => undefined);
    if (!probabilities) await new Promise((wake) => setTimeout(wake, 500));
  }
  expect(probabilities?.[0]).toBeGreaterThan(0.9);

  const exited = new Promise<number | null>((resolve) => up!.once('exit', resolve));
  up.kill('SIGINT');
  expect(await exited).toBe(0);
  expect([alive(registryPid), alive(routerPid), alive(restartedPid)]).toEqual([false, false, false]);
  expect(await readdir(join(home, 'run'))).toEqual([]);
}, 240_000);

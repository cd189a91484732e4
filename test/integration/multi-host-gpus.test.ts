/**
 * One executor per GPU: `nexus up --gpus all` starts an executor pinned to each adapter
 * (--adapter), and each says which in its hello (the router logs it), its metrics (label
 * adapter) and its log. Here the adapters are those of this machine (lavapipe alone in CI, so
 * `all` is one executor on it); an index that is not there is refused before anything starts.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listAdapters } from '../../services/executor/gpu/index.ts';
import { startNexusUp, type NexusUp } from './harness.ts';

const dirs: string[] = [];
let up: NexusUp | undefined;

afterAll(async () => {
  await up?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Waits until the log file (written by nexus up as its child writes) has a line matching `pattern`. */
async function logSays(path: string, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  let text = '';
  for (const started = Date.now(); Date.now() - started < timeoutMs; await new Promise((resolve) => setTimeout(resolve, 100))) {
    text = await readFile(path, 'utf8').catch(() => '');
    if (pattern.test(text)) return;
  }
  expect(text, path).toMatch(pattern);
}

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nexus-gpus-'));
  dirs.push(dir);
  return dir;
}

describe('nexus up --gpus', () => {
  it('starts one executor per adapter, each saying which in its hello, metrics and log', async () => {
    const adapters = await listAdapters();
    const hardware = adapters.filter((adapter) => !adapter.software);
    const expected = (hardware.length > 0 ? hardware : adapters).map((adapter) => adapter.index);
    const dir = await dataDir();
    // Info level: the lines that say which adapter are info lines (tests run at warn).
    up = await startNexusUp(dir, { NEXUS_LOG_LEVEL: 'info' }, ['--gpus', 'all']);
    expect(Object.keys(up.metrics).filter((name) => name.startsWith('executor')).sort()).toEqual(expected.map((index) => `executor-gpu${index}`).sort());
    for (const index of expected) {
      const metrics = await (await fetch(`http://${up.metrics[`executor-gpu${index}`]}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^nexus_process_process_cpu_user_seconds_total\\{adapter="${index}"\\} `, 'm'));
      await logSays(join(dir, 'logs', `executor-gpu${index}.log`), new RegExp(`"device":"[^"]*\\[adapter ${index}\\]".*"msg":"executor listening"`));
      // The router hears each executor's hello, device and adapter included.
      await logSays(join(dir, 'logs', 'router.log'), new RegExp(`"device":"[^"]*\\[adapter ${index}\\]".*"msg":"executor connected"`));
    }
    expect(await up.stop()).toBe(0);
    up = undefined;
  }, 120_000);

  it('refuses an adapter that is not there, listing the ones that are, and starts nothing', async () => {
    const count = (await listAdapters()).length;
    const started = startNexusUp(await dataDir(), {}, ['--gpus', `0,${count}`]);
    await expect(started).rejects.toThrow(new RegExp(`exited with 1:[\\s\\S]*--gpus '0,${count}': there is no adapter ${count}; the adapters are 0: `));
  }, 60_000);
});

/**
 * The CLI dials a registry that serves TLS (as `nexus up` starts it) by finding the CA itself:
 * $NEXUS_HOME/tls/ca.crt, or --ca-file / NEXUS_TLS_CA; without a CA it speaks plaintext, which a
 * TLS port refuses.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { ensureServiceMaterial, loadServiceTls } from '../../services/tls/index.ts';
import { REPO_ROOT } from '../registry/fixtures.ts';

let work: string;
let home: string;
let registry: RunningRegistry;

async function nexus(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), ...args], {
      env: { ...process.env, NEXUS_TOKEN: '', NEXUS_TLS_CA: '', NEXUS_REGISTRY: registry.address, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    return error as { code: number; stdout: string; stderr: string };
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-cli-tls-'));
  home = join(work, 'home');
  await mkdir(home, { recursive: true });
  await ensureServiceMaterial(join(home, 'tls'), ['registry']);
  const tls = await loadServiceTls('registry', join(home, 'tls'), 'optional');
  registry = await startRegistry({
    dataDir: join(work, 'store'), credentials: tls!.server, auth: {}, bootstrapAdminKeyFile: join(home, 'credentials', 'admin.key'),
  });
});

afterAll(async () => {
  await registry?.shutdown(1000);
  await rm(work, { recursive: true, force: true });
});

it('verifies the registry with $NEXUS_HOME/tls/ca.crt and authenticates with $NEXUS_HOME/credentials/admin.key', async () => {
  const run = await nexus(['keys', 'list', '--json'], { NEXUS_HOME: home });
  expect(run.code, run.stderr).toBe(0);
  expect(JSON.parse(run.stdout)).toEqual([expect.objectContaining({ role: 'admin', createdBy: 'bootstrap' })]);
});

it('takes the CA from --ca-file, and fails without one', async () => {
  const elsewhere = join(work, 'elsewhere');
  await mkdir(elsewhere, { recursive: true });
  const token = (await readFile(join(home, 'credentials', 'admin.key'), 'utf8')).trim();
  const withFlag = await nexus(['--ca-file', join(home, 'tls', 'ca.crt'), '--token', token, 'audit', '--json'], { NEXUS_HOME: elsewhere });
  expect(withFlag.code, withFlag.stderr).toBe(0);
  const plaintext = await nexus(['--token', token, 'audit'], { NEXUS_HOME: elsewhere });
  expect(plaintext.code).not.toBe(0);
  expect(plaintext.stderr).toContain('UNAVAILABLE');
});

/**
 * nexus keys create|list|revoke and nexus audit, each run as its own process against a registry
 * with authentication on: the CLI finds the admin key `nexus up` leaves in $NEXUS_HOME, and
 * NEXUS_TOKEN and --token come before it; a created key is printed once and works at once; a
 * revoked one is refused; the audit log shows who did what; refusals have their exit codes.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { REPO_ROOT } from '../registry/fixtures.ts';

const USAGE = 2;
const FAILURE = 1;
const INVALID_INPUT = 4;

let work: string;
let home: string;
let registry: RunningRegistry;
let adminKey: string;

interface Run { code: number; stdout: string; stderr: string }

const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '');

async function nexus(args: string[], env: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), ...args], {
      env: { ...process.env, NEXUS_TOKEN: '', NEXUS_TLS_CA: '', NEXUS_HOME: home, NEXUS_REGISTRY: registry.address, ...env },
    });
    return { code: 0, stdout: plain(stdout), stderr };
  } catch (error) {
    const failed = error as Run;
    return { code: failed.code, stdout: plain(failed.stdout), stderr: failed.stderr };
  }
}

const json = (run: Run) => {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-cli-keys-'));
  home = join(work, 'home');
  await mkdir(home, { recursive: true });
  registry = await startRegistry({ dataDir: join(work, 'store'), auth: {}, bootstrapAdminKeyFile: join(home, 'credentials', 'admin.key') });
  adminKey = (await readFile(join(home, 'credentials', 'admin.key'), 'utf8')).trim();
});

afterAll(async () => {
  await registry?.shutdown(1000);
  await rm(work, { recursive: true, force: true });
});

describe('nexus keys', () => {
  it('creates a key with the admin key from $NEXUS_HOME, prints it once, and lists it without its secret', async () => {
    const created = json(await nexus(['keys', 'create', '--role', 'write', '--models', 'iris*', 'resnet', '--rate', '10/s', '--burst', '20',
      '--rows', '500', '--quota', '5000/day', '--concurrent', '4', '--name', 'ci', '--json']));
    expect(created.key).toMatch(new RegExp(`^nxk_${created.id}_`));
    expect(Object.keys(created).sort()).toEqual(['id', 'key']);

    const listed = json(await nexus(['keys', 'list', '--json'])) as Array<Record<string, unknown>>;
    const entry = listed.find((key) => key.id === created.id)!;
    expect(entry).toMatchObject({
      name: 'ci', role: 'write', models: ['iris*', 'resnet'], createdBy: `key:${adminKey.slice(4, 16)}`, revokedAtUnixMs: 0,
      limits: { requestsPerSecond: 10, burst: 20, rowsPerSecond: 500, dailyQuota: 5000, maxConcurrent: 4 },
    });
    const table = await nexus(['keys', 'list']);
    expect(table.stdout).toContain(created.id);
    expect(table.stdout).toContain('10/s burst 20, 500 rows/s, 5000/day, 4 at once');
    expect(table.stdout).not.toContain(created.key.slice(17));
  });

  it('prints a created key for people with the warning that it is shown once', async () => {
    const run = await nexus(['keys', 'create', '--role', 'infer']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^created key [0-9a-f]{12}: role infer, models all, limits none$/);
    expect(lines[1]).toMatch(/^nxk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(lines[2]).toContain('only time the key is shown');
  });

  it('sends --token before NEXUS_TOKEN before the admin key file, and a revoked key stops working', async () => {
    const reader = json(await nexus(['keys', 'create', '--role', 'infer', '--json']));
    // The infer key may read but not manage keys, whichever way it is given.
    expect((await nexus(['--token', reader.key, 'models'])).code).toBe(0);
    const byFlag = await nexus(['--token', reader.key, 'keys', 'list']);
    expect(byFlag.code).toBe(FAILURE);
    expect(byFlag.stderr).toContain("ListKeys needs the 'admin' role (PERMISSION_DENIED)");
    expect((await nexus(['keys', 'list'], { NEXUS_TOKEN: reader.key })).stderr).toContain('PERMISSION_DENIED');
    // --token wins over NEXUS_TOKEN.
    expect((await nexus(['--token', adminKey, 'keys', 'list'], { NEXUS_TOKEN: reader.key })).code).toBe(0);

    const revoked = await nexus(['keys', 'revoke', reader.id]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`key ${reader.id} is revoked`);
    const refused = await nexus(['--token', reader.key, 'models']);
    expect(refused.code).toBe(FAILURE);
    expect(refused.stderr).toContain('invalid credentials: the key was revoked (UNAUTHENTICATED)');
  });

  it('says what is missing when no credentials are found, and refuses bad flags and ids', async () => {
    const empty = join(work, 'empty-home');
    await mkdir(empty, { recursive: true });
    const missing = await nexus(['models'], { NEXUS_HOME: empty });
    expect(missing.code).toBe(FAILURE);
    expect(missing.stderr).toContain("missing credentials: send 'authorization: Bearer <API key or JWT>'");
    const badRate = await nexus(['keys', 'create', '--role', 'infer', '--rate', 'fast']);
    expect(badRate.code).toBe(USAGE);
    expect(badRate.stderr).toContain("--rate 'fast' must be a number");
    const badRole = await nexus(['keys', 'create', '--role', 'root']);
    expect(badRole.code).toBe(INVALID_INPUT);
    expect(badRole.stderr).toContain("role 'root' is invalid");
    expect((await nexus(['keys', 'revoke', 'not-an-id'])).code).toBe(INVALID_INPUT);
  });
});

describe('nexus audit', () => {
  it('lists the newest records first, with who did what and how it ended', async () => {
    const created = json(await nexus(['keys', 'create', '--role', 'infer', '--name', 'audited', '--json']));
    await nexus(['keys', 'revoke', created.id]);
    await nexus(['keys', 'revoke', 'ffffffffffff']);
    const records = json(await nexus(['audit', '--limit', '3', '--json'])) as Array<Record<string, unknown>>;
    const admin = `key:${adminKey.slice(4, 16)}`;
    expect(records.map((record) => [record.principal, record.action, record.target, record.outcome])).toEqual([
      [admin, 'RevokeKey', 'key:ffffffffffff', 'NOT_FOUND'],
      [admin, 'RevokeKey', `key:${created.id}`, 'OK'],
      [admin, 'CreateKey', `key:${created.id}`, 'OK'],
    ]);
    const table = await nexus(['audit', '--limit', '3']);
    expect(table.stdout).toContain('NOT_FOUND');
    expect(table.stdout).toContain(admin);
    expect((await nexus(['audit', '--limit', '0'])).code).toBe(USAGE);
  });
});

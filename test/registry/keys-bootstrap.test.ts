/**
 * The bootstrap admin key: created with its file (0600) on a fresh store, kept while the file's
 * key is valid, not made again while a bootstrap key is valid but its file is gone, and made anew
 * once that key is revoked.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../services/telemetry/logger.ts';
import { decideBootstrap, ensureBootstrapAdminKey } from '../../services/registry/bootstrap-admin-key.ts';
import { KeyStore } from '../../services/registry/core/index.ts';
import { LocalObjectStore } from '../../services/registry/store/index.ts';
import { NO_LIMITS } from '../../services/registry/validation/index.ts';
import { parseApiKey } from '../../services/auth/api-keys.ts';

let work: string;
const logger = createLogger('registry');

async function fresh(): Promise<{ keys: KeyStore; file: string }> {
  const dir = await mkdtemp(join(work, 'case-'));
  return { keys: new KeyStore(await new LocalObjectStore(join(dir, 'store')).init()), file: join(dir, 'home', 'credentials', 'admin.key') };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-bootstrap-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('bootstrap admin key', () => {
  it('creates an admin key on a fresh store and writes it with mode 0600; a restart keeps it', async () => {
    const { keys, file } = await fresh();
    expect((await ensureBootstrapAdminKey(keys, file, logger)).action).toBe('create');
    const key = (await readFile(file, 'utf8')).trim();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const record = await keys.get(parseApiKey(key)!.id);
    expect(record!.info).toMatchObject({ role: 'admin', createdBy: 'bootstrap', revokedAtUnixMs: 0 });
    expect(await ensureBootstrapAdminKey(keys, file, logger)).toEqual({ action: 'keep', keyId: record!.info!.id });
    expect((await readFile(file, 'utf8')).trim()).toBe(key);
    expect(await keys.list()).toHaveLength(1);
  });

  it('makes no second admin key when the file is gone but its key is still valid', async () => {
    const { keys, file } = await fresh();
    await ensureBootstrapAdminKey(keys, file, logger);
    const id = parseApiKey((await readFile(file, 'utf8')).trim())!.id;
    await rm(file);
    expect(await ensureBootstrapAdminKey(keys, file, logger)).toEqual({ action: 'leave', existingKeyId: id });
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await keys.list()).toHaveLength(1);
  });

  it('makes a new key, replacing the file, once the bootstrap key is revoked', async () => {
    const { keys, file } = await fresh();
    await ensureBootstrapAdminKey(keys, file, logger);
    const old = (await readFile(file, 'utf8')).trim();
    await keys.revoke(parseApiKey(old)!.id);
    expect((await ensureBootstrapAdminKey(keys, file, logger)).action).toBe('create');
    const replaced = (await readFile(file, 'utf8')).trim();
    expect(replaced).not.toBe(old);
    expect((await keys.get(parseApiKey(replaced)!.id))!.info!.revokedAtUnixMs).toBe(0);
  });

  it('makes a key, replacing the file, when the file holds no key and the store no bootstrap key', async () => {
    const { keys, file } = await fresh();
    // An admin key someone made is not the bootstrap key.
    await keys.create({ name: 'ops', role: 'admin', models: [], limits: { ...NO_LIMITS } }, 'key:0123456789ab');
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, 'not a key\n', { mode: 0o644 });
    expect((await ensureBootstrapAdminKey(keys, file, logger)).action).toBe('create');
    expect(parseApiKey((await readFile(file, 'utf8')).trim())).toBeDefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});

describe('the bootstrap decision', () => {
  const verifier = (overrides: { role?: string; createdBy?: string; revokedAtUnixMs?: number; hash?: number } = {}) => ({
    info: {
      id: 'aaaaaaaaaaaa', name: '', role: overrides.role ?? 'admin', models: [], limits: undefined, createdBy: overrides.createdBy ?? 'bootstrap',
      createdAtUnixMs: 1, revokedAtUnixMs: overrides.revokedAtUnixMs ?? 0,
    },
    secretSha256: new Uint8Array(32).fill(overrides.hash ?? 1),
  });
  const presented = { id: 'aaaaaaaaaaaa', secretSha256: new Uint8Array(32).fill(1) };

  it('keeps a file whose key is a valid admin key whose secret matches', () => {
    expect(decideBootstrap({ fileKey: presented, fileKeyRecord: verifier(), bootstrapKeys: [verifier()] })).toEqual({ action: 'keep', keyId: 'aaaaaaaaaaaa' });
  });

  it('does not keep a file whose key is revoked, not admin, or whose secret differs', () => {
    for (const record of [verifier({ revokedAtUnixMs: 5 }), verifier({ role: 'write' }), verifier({ hash: 2 })]) {
      expect(decideBootstrap({ fileKey: presented, fileKeyRecord: record, bootstrapKeys: [] })).toEqual({ action: 'create' });
    }
  });

  it('leaves things be while a valid bootstrap admin key exists, and only a bootstrap one counts', () => {
    expect(decideBootstrap({ fileKey: undefined, fileKeyRecord: undefined, bootstrapKeys: [verifier()] })).toEqual({ action: 'leave', existingKeyId: 'aaaaaaaaaaaa' });
    expect(decideBootstrap({ fileKey: undefined, fileKeyRecord: undefined, bootstrapKeys: [verifier({ revokedAtUnixMs: 5 })] })).toEqual({ action: 'create' });
    expect(decideBootstrap({ fileKey: undefined, fileKeyRecord: undefined, bootstrapKeys: [verifier({ createdBy: 'key:0123456789ab' })] })).toEqual({ action: 'create' });
  });
});

/**
 * The key store over a real local store: records hold the secret's hash and never the secret,
 * creation is create-only, revocation is a compare-and-swap that never loses to a concurrent one
 * and is idempotent, requests are validated field by field, and subscribers hear of changes made
 * here at once and of changes made by another registry process through the poll.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyVerifier } from '../../services/protocol/generated/nexus/auth/v1/keys.ts';
import { ErrorCode, NexusError } from '../../services/domain/index.ts';
import { KeyStore } from '../../services/registry/core/index.ts';
import { LocalObjectStore, type ObjectStore } from '../../services/registry/store/index.ts';
import { checkKeyRequest, NO_LIMITS, type CheckedKeyRequest } from '../../services/registry/validation/index.ts';

let work: string;
let store: ObjectStore;

const request = (overrides: Partial<CheckedKeyRequest> = {}): CheckedKeyRequest =>
  ({ name: 'ci', role: 'write', models: ['iris-*'], limits: { ...NO_LIMITS, requestsPerSecond: 5 }, ...overrides });

async function freshStore(): Promise<{ dir: string; store: ObjectStore }> {
  const dir = await mkdtemp(join(work, 'store-'));
  return { dir, store: await new LocalObjectStore(dir).init() };
}

/** Resolves once `predicate` holds for what `seen` collected, or fails after `ms`. */
async function eventually(predicate: () => boolean, ms = 5000): Promise<void> {
  for (const started = Date.now(); !predicate(); await new Promise((wake) => setTimeout(wake, 10))) {
    if (Date.now() - started > ms) throw new Error('condition not reached in time');
  }
}

function codeOf(run: () => unknown): number | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof NexusError ? error.code : -1;
  }
  return undefined;
}

function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-keys-'));
  store = await new LocalObjectStore(join(work, 'main')).init();
});

afterAll(async () => {
  await store?.close();
  await rm(work, { recursive: true, force: true });
});

describe('key store', () => {
  it('stores the sha256 of the secret under auth/keys/<id>.json, never the secret', async () => {
    const keys = new KeyStore(store);
    const created = await keys.create(request(), 'key:000000000000');
    const match = /^nxk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(created.key);
    expect(match).not.toBeNull();
    const [, id, secret] = match!;
    expect(created.verifier.info).toMatchObject({ id, name: 'ci', role: 'write', models: ['iris-*'], createdBy: 'key:000000000000', revokedAtUnixMs: 0 });
    const text = await readFile(join(work, 'main', 'auth', 'keys', `${id}.json`), 'utf8');
    expect(text).not.toContain(secret);
    expect(JSON.parse(text)).toMatchObject({ id, role: 'write', secretSha256: createHash('sha256').update(secret).digest('hex') });
    expect(await keys.get(id)).toEqual(created.verifier);
  });

  it('lists every key oldest first, revoked ones included', async () => {
    const { store: own } = await freshStore();
    const keys = new KeyStore(own);
    const first = await keys.create(request({ name: 'first' }), 'bootstrap');
    const second = await keys.create(request({ name: 'second', role: 'admin' }), 'bootstrap');
    await keys.revoke(first.verifier.info!.id);
    const listed = await keys.list();
    expect(listed.map((verifier) => verifier.info!.name)).toEqual(['first', 'second']);
    expect(listed[0].info!.revokedAtUnixMs).toBeGreaterThan(0);
    expect(listed[1].info!.id).toBe(second.verifier.info!.id);
    await own.close();
  });

  it('revokes once: revoking again returns the first revocation unchanged', async () => {
    const keys = new KeyStore(store);
    const { verifier } = await keys.create(request(), 'bootstrap');
    const first = await keys.revoke(verifier.info!.id);
    expect(first.revokedNow).toBe(true);
    expect(first.info.revokedAtUnixMs).toBeGreaterThan(0);
    await new Promise((wake) => setTimeout(wake, 5));
    const again = await keys.revoke(verifier.info!.id);
    expect(again).toEqual({ info: first.info, revokedNow: false });
  });

  it('refuses unknown and malformed ids', async () => {
    const keys = new KeyStore(store);
    await expect(keys.revoke('0123456789ab')).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    await expect(keys.revoke('../../etc')).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining('id') });
    expect(await keys.get('0123456789ab')).toBeUndefined();
  });

  it('keeps one revocation when another process revokes between the read and the swap', async () => {
    const { dir, store: own } = await freshStore();
    const other = new KeyStore(await new LocalObjectStore(dir).init());
    let raced = false;
    // The first swap of the record finds it already revoked by the other process.
    const racing: ObjectStore = Object.assign(Object.create(own) as ObjectStore, {
      put: async (key: string, body: Uint8Array, condition?: Parameters<ObjectStore['put']>[2]) => {
        if (!raced && condition && 'ifMatch' in condition) {
          raced = true;
          await other.revoke(/([0-9a-f]{12})\.json$/.exec(key)![1]);
        }
        return own.put(key, body, condition);
      },
    });
    const keys = new KeyStore(racing);
    const { verifier } = await keys.create(request(), 'bootstrap');
    const byOther = (await other.get(verifier.info!.id))!;
    expect(byOther.info!.revokedAtUnixMs).toBe(0);
    const result = await keys.revoke(verifier.info!.id);
    expect(raced).toBe(true);
    expect(result.revokedNow).toBe(false);
    const stored = (await other.get(verifier.info!.id))!;
    expect(result.info.revokedAtUnixMs).toBe(stored.info!.revokedAtUnixMs);
    await own.close();
  });

  it('gives two concurrent revocations from two processes the same revocation time', async () => {
    const { dir, store: own } = await freshStore();
    const here = new KeyStore(own);
    const there = new KeyStore(await new LocalObjectStore(dir).init());
    const { verifier } = await here.create(request(), 'bootstrap');
    const results = await Promise.all([here.revoke(verifier.info!.id), there.revoke(verifier.info!.id)]);
    expect(results.filter((result) => result.revokedNow)).toHaveLength(1);
    expect(results[0].info.revokedAtUnixMs).toBe(results[1].info.revokedAtUnixMs);
    await own.close();
  });

  it('tells subscribers of changes made here at once, and of another process\'s within the poll interval', async () => {
    const { dir, store: own } = await freshStore();
    const here = new KeyStore(own, { pollIntervalMs: 50 });
    const there = new KeyStore(await new LocalObjectStore(dir).init());
    const heard: KeyVerifier[] = [];
    const unsubscribe = await here.subscribe((verifier) => heard.push(verifier));

    const local = await here.create(request({ name: 'local' }), 'bootstrap');
    expect(heard.map((verifier) => verifier.info!.name)).toEqual(['local']);

    const remote = await there.create(request({ name: 'remote' }), 'bootstrap');
    await eventually(() => heard.some((verifier) => verifier.info!.id === remote.verifier.info!.id));
    await there.revoke(remote.verifier.info!.id);
    await eventually(() => heard.some((verifier) => verifier.info!.id === remote.verifier.info!.id && verifier.info!.revokedAtUnixMs > 0));
    // The poll does not announce again what this process announced itself.
    await new Promise((wake) => setTimeout(wake, 200));
    expect(heard.filter((verifier) => verifier.info!.id === local.verifier.info!.id)).toHaveLength(1);

    unsubscribe();
    await there.create(request({ name: 'unheard' }), 'bootstrap');
    await new Promise((wake) => setTimeout(wake, 200));
    expect(heard.some((verifier) => verifier.info!.name === 'unheard')).toBe(false);
    await own.close();
  });

  it('does not take a key created here while a poll lists the store for one that vanished', async () => {
    const { store: own } = await freshStore();
    let hold: { reached: () => void; release: Promise<void> } | undefined;
    // A listing that has read the store, then waits: a key created meanwhile is not in it.
    const slowLister: ObjectStore = Object.assign(Object.create(own) as ObjectStore, {
      list: async function* (prefix: string, options?: { startAfter?: string }) {
        const infos = [];
        for await (const info of own.list(prefix, options)) infos.push(info);
        const pending = hold;
        hold = undefined;
        if (pending) {
          pending.reached();
          await pending.release;
        }
        yield* infos;
      },
    });
    const keys = new KeyStore(slowLister, { pollIntervalMs: 20 });
    const heard: KeyVerifier[] = [];
    const unsubscribe = await keys.subscribe((verifier) => heard.push(verifier));
    let release!: () => void;
    const reached = new Promise<void>((resolve) => {
      hold = { reached: resolve, release: new Promise<void>((done) => (release = done)) };
    });
    await reached;
    const { verifier } = await keys.create(request(), 'bootstrap');
    release();
    await new Promise((wake) => setTimeout(wake, 200));
    unsubscribe();
    expect(heard.filter((change) => change.info!.id === verifier.info!.id).map((change) => change.info!.revokedAtUnixMs)).toEqual([0]);
    await own.close();
  });

  it('announces a key whose record vanished from the store as revoked', async () => {
    const { store: own } = await freshStore();
    const keys = new KeyStore(own, { pollIntervalMs: 50 });
    const { verifier } = await keys.create(request(), 'bootstrap');
    const heard: KeyVerifier[] = [];
    const unsubscribe = await keys.subscribe((change) => heard.push(change));
    await own.delete(`auth/keys/${verifier.info!.id}.json`);
    await eventually(() => heard.some((change) => change.info!.id === verifier.info!.id && change.info!.revokedAtUnixMs > 0));
    unsubscribe();
    await own.close();
  });

  it('follows with a snapshot of every key, then each change', async () => {
    const { store: own } = await freshStore();
    const keys = new KeyStore(own);
    const before = await keys.create(request({ name: 'before' }), 'bootstrap');
    const snapshots: KeyVerifier[][] = [];
    const changes: KeyVerifier[] = [];
    const unsubscribe = await keys.follow((snapshot) => snapshots.push(snapshot), (change) => changes.push(change));
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0].map((verifier) => verifier.info!.id)).toEqual([before.verifier.info!.id]);
    await keys.revoke(before.verifier.info!.id);
    expect(changes.map((change) => [change.info!.id, change.info!.revokedAtUnixMs > 0])).toEqual([[before.verifier.info!.id, true]]);
    unsubscribe();
    await own.close();
  });
});

describe('key requests', () => {
  const valid = { name: 'ci bot', role: 'infer', models: ['iris', 'resnet-*'], limits: { ...NO_LIMITS, requestsPerSecond: 2.5, burst: 10 } };

  it('accepts a valid request and fills absent limits with none', () => {
    expect(checkKeyRequest(valid)).toEqual(valid);
    expect(checkKeyRequest({ ...valid, name: '', models: [], limits: undefined }).limits).toEqual(NO_LIMITS);
  });

  it('refuses each bad field with INVALID_ARGUMENT naming it', () => {
    const cases: Array<[Partial<typeof valid> & Record<string, unknown>, string]> = [
      [{ role: 'root' }, "role 'root' is invalid"],
      [{ role: '' }, 'role'],
      [{ name: 'x'.repeat(65) }, 'name'],
      [{ name: 'bad/name' }, 'name'],
      [{ name: ' leading' }, 'name'],
      [{ models: [''] }, 'models[0] is empty'],
      [{ models: ['iris', 'x'.repeat(257)] }, 'models[1] is longer than 256'],
      [{ models: ['Iris/*'] }, "models[0] 'Iris/*' is invalid"],
      [{ models: Array.from({ length: 65 }, (_, index) => `m${index}`) }, 'models has 65 globs; at most 64'],
      [{ limits: { ...NO_LIMITS, requestsPerSecond: Number.NaN } }, 'limits.requests_per_second'],
      [{ limits: { ...NO_LIMITS, rowsPerSecond: Number.POSITIVE_INFINITY } }, 'limits.rows_per_second'],
      [{ limits: { ...NO_LIMITS, dailyQuota: -1 } }, 'limits.daily_quota'],
      [{ limits: { ...NO_LIMITS, burst: 1.5 } }, 'limits.burst 1.5 must be a whole number'],
      [{ limits: { ...NO_LIMITS, maxConcurrent: 10_000_000 } }, 'limits.max_concurrent 10000000 is over the largest allowed'],
      [{ limits: { ...NO_LIMITS, requestsPerSecond: 1e7 } }, 'limits.requests_per_second'],
    ];
    for (const [change, field] of cases) {
      const run = () => checkKeyRequest({ ...valid, ...change } as typeof valid);
      expect(codeOf(run), field).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(messageOf(run)).toContain(field);
    }
  });
});

/**
 * nexus.auth.v1.Keys through a real gRPC client, on a registry without authentication (who may
 * call it is keys-auth.test.ts): CreateKey shows the key once, ListKeys and RevokeKey never carry
 * a secret or its hash, revocation is idempotent, WatchKeys sends a snapshot and then each change,
 * and every creation and revocation, failed ones included, is in the audit log (ListAudit).
 */
import { credentials, status, type ClientReadableStream } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateKeyRequest, KeysClient, type CreateKeyResponse, type ListKeysResponse, type RevokeKeyResponse, type WatchKeysResponse,
} from '../../services/protocol/generated/nexus/auth/v1/keys.ts';
import { RegistryClient, type ListAuditResponse } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { unaryCall } from '../../services/cli/remote/index.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';

let work: string;
let registry: RunningRegistry;
let keys: KeysClient;
let registryClient: RegistryClient;

const create = (request: Partial<CreateKeyRequest>) =>
  unaryCall<CreateKeyResponse>((done) => keys.createKey(CreateKeyRequest.fromPartial(request), done));
const list = () => unaryCall<ListKeysResponse>((done) => keys.listKeys({}, done));
const revoke = (id: string) => unaryCall<RevokeKeyResponse>((done) => keys.revokeKey({ id }, done));
const audit = (limit = 10) => unaryCall<ListAuditResponse>((done) => registryClient.listAudit({ limit, beforeUnixMs: 0 }, done));

/** The messages of a WatchKeys stream as they arrive. */
function watch(): { messages: WatchKeysResponse[]; stream: ClientReadableStream<WatchKeysResponse>; next(count: number): Promise<void> } {
  const messages: WatchKeysResponse[] = [];
  const stream = keys.watchKeys({});
  stream.on('data', (message: WatchKeysResponse) => messages.push(message));
  stream.on('error', () => undefined);
  return {
    messages,
    stream,
    async next(count) {
      for (const started = Date.now(); messages.length < count; await new Promise((wake) => setTimeout(wake, 10))) {
        if (Date.now() - started > 5000) throw new Error(`only ${messages.length} of ${count} WatchKeys messages arrived`);
      }
    },
  };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-keys-service-'));
  registry = await startRegistry({ dataDir: join(work, 'store') });
  keys = new KeysClient(registry.address, credentials.createInsecure());
  registryClient = new RegistryClient(registry.address, credentials.createInsecure());
});

afterAll(async () => {
  keys?.close();
  registryClient?.close();
  await registry?.shutdown(1000);
  await rm(work, { recursive: true, force: true });
});

describe('Keys service', () => {
  it('returns the whole key once; lists and revocations carry neither the secret nor its hash', async () => {
    const created = await create({ name: 'ci', role: 'write', models: ['iris*'], limits: { requestsPerSecond: 10, burst: 20, rowsPerSecond: 0, dailyQuota: 1000, maxConcurrent: 4 } });
    const [, id, secret] = /^nxk_([0-9a-f]{12})_(.{43})$/.exec(created.key)!;
    expect(created.info).toMatchObject({ id, name: 'ci', role: 'write', models: ['iris*'], createdBy: 'anonymous', revokedAtUnixMs: 0 });
    expect(created.info!.limits).toEqual({ requestsPerSecond: 10, burst: 20, rowsPerSecond: 0, dailyQuota: 1000, maxConcurrent: 4 });

    const hash = createHash('sha256').update(secret).digest('hex');
    const listed = await list();
    const text = JSON.stringify(listed);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(hash);
    expect(listed.keys.find((key) => key.id === id)).toEqual(created.info);

    const revoked = await revoke(id);
    expect(revoked.info!.revokedAtUnixMs).toBeGreaterThan(0);
    expect(JSON.stringify(revoked)).not.toContain(hash);
    // Revoking again keeps the first revocation.
    expect((await revoke(id)).info).toEqual(revoked.info);
    expect((await list()).keys.find((key) => key.id === id)!.revokedAtUnixMs).toBe(revoked.info!.revokedAtUnixMs);
  });

  it('refuses bad requests with INVALID_ARGUMENT naming the field, and unknown ids with NOT_FOUND', async () => {
    await expect(create({ role: 'superuser' })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining("role 'superuser'") });
    await expect(create({ role: 'infer', models: [''] })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('models[0]') });
    await expect(create({ role: 'infer', limits: { requestsPerSecond: -1, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 } }))
      .rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('limits.requests_per_second') });
    await expect(revoke('nope')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('id') });
    await expect(revoke('0123456789ab')).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('streams every verifier first, then each creation and revocation', async () => {
    const before = await create({ role: 'infer', name: 'before' });
    const watcher = watch();
    await watcher.next(1);
    const [snapshot] = watcher.messages;
    expect(snapshot.snapshot).toBe(true);
    const verifier = snapshot.keys.find((key) => key.info!.id === before.info!.id)!;
    const secret = before.key.slice('nxk_'.length + 13);
    expect(Buffer.from(verifier.secretSha256).equals(createHash('sha256').update(secret).digest())).toBe(true);

    const later = await create({ role: 'admin', name: 'later' });
    await watcher.next(2);
    expect(watcher.messages[1]).toMatchObject({ snapshot: false, keys: [{ info: { id: later.info!.id, role: 'admin', revokedAtUnixMs: 0 } }] });
    await revoke(later.info!.id);
    await watcher.next(3);
    expect(watcher.messages[2].keys[0].info!.id).toBe(later.info!.id);
    expect(watcher.messages[2].keys[0].info!.revokedAtUnixMs).toBeGreaterThan(0);
    watcher.stream.cancel();
  });

  it('records creations and revocations in the audit log, failures with their status', async () => {
    const created = await create({ role: 'infer', name: 'audited' });
    await revoke(created.info!.id);
    await create({ role: 'root' }).catch(() => undefined);
    await revoke('ffffffffffff').catch(() => undefined);
    const { records } = await audit(4);
    expect(records.map((record) => [record.action, record.target, record.outcome])).toEqual([
      ['RevokeKey', 'key:ffffffffffff', 'NOT_FOUND'],
      ['CreateKey', '', 'INVALID_ARGUMENT'],
      ['RevokeKey', `key:${created.info!.id}`, 'OK'],
      ['CreateKey', `key:${created.info!.id}`, 'OK'],
    ]);
    expect(records.every((record) => record.principal === 'anonymous')).toBe(true);
    expect(records[1].detail).toContain("role 'root'");
    expect(records[3].detail).toContain('role infer');
    expect(JSON.stringify(records)).not.toContain(created.key);
  });
});

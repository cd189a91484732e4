/** The keys a router accepts, as the registry's WatchKeys stream sends them. */
import { describe, expect, it } from 'vitest';
import { generateApiKey, parseApiKey } from '../../services/auth/api-keys.ts';
import { KeyDirectory } from '../../services/auth/key-directory.ts';
import { UNLIMITED } from '../../services/auth/principal.ts';
import { ErrorCode } from '../../services/domain/index.ts';
import { KeyVerifier } from '../../services/protocol/generated/nexus/auth/v1/keys.ts';

function newKey(role = 'infer', extra: Partial<KeyVerifier['info']> = {}) {
  const generated = generateApiKey();
  const verifier = KeyVerifier.fromPartial({
    info: { id: generated.id, name: 'test', role, createdBy: 'bootstrap', createdAtUnixMs: 1, ...extra },
    secretSha256: generated.secretSha256,
  });
  return { key: generated.key, parsed: parseApiKey(generated.key)!, verifier };
}

const failure = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return { code: (error as { code: number }).code, message: (error as Error).message };
  }
  return undefined;
};

describe('KeyDirectory', () => {
  it('is not ready, and answers UNAVAILABLE, until its first snapshot', () => {
    const directory = new KeyDirectory();
    const { parsed } = newKey();
    expect(directory.ready).toBe(false);
    expect(failure(() => directory.authenticate(parsed))).toEqual({
      code: ErrorCode.UNAVAILABLE, message: "credentials cannot be checked yet: the registry's key list has not arrived",
    });
    directory.replace([]);
    expect(directory.ready).toBe(true);
    expect(failure(() => directory.authenticate(parsed))).toEqual({ code: ErrorCode.UNAUTHENTICATED, message: 'invalid credentials' });
  });

  it("answers a known key's principal, the same object every time", () => {
    const directory = new KeyDirectory();
    const first = newKey('write', { models: ['iris-*'], limits: { requestsPerSecond: 5, burst: 10, rowsPerSecond: 0, dailyQuota: 1000, maxConcurrent: 2 } });
    const second = newKey('admin');
    directory.replace([first.verifier, second.verifier]);
    const principal = directory.authenticate(first.parsed);
    expect(principal).toEqual({
      kind: 'key', id: `key:${first.verifier.info!.id}`, role: 'write', models: ['iris-*'],
      limits: { requestsPerSecond: 5, burst: 10, rowsPerSecond: 0, dailyQuota: 1000, maxConcurrent: 2 },
    });
    expect(directory.authenticate(first.parsed)).toBe(principal);
    expect(directory.authenticate(second.parsed)).toMatchObject({ role: 'admin', models: [], limits: UNLIMITED });
  });

  it('refuses a wrong secret for a known id without saying more', () => {
    const directory = new KeyDirectory();
    const { key, verifier } = newKey();
    directory.replace([verifier]);
    const tampered = parseApiKey(`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`)!;
    expect(tampered.id).toBe(verifier.info!.id);
    expect(failure(() => directory.authenticate(tampered))).toEqual({ code: ErrorCode.UNAUTHENTICATED, message: 'invalid credentials' });
  });

  it('refuses a revoked key at once, telling only its holder why', () => {
    const directory = new KeyDirectory();
    const { key, parsed, verifier } = newKey();
    directory.replace([verifier]);
    expect(directory.authenticate(parsed).kind).toBe('key');
    directory.apply({ ...verifier, info: { ...verifier.info!, revokedAtUnixMs: 2 } });
    expect(failure(() => directory.authenticate(parsed))).toEqual({ code: ErrorCode.UNAUTHENTICATED, message: 'invalid credentials: the key was revoked' });
    const guessed = parseApiKey(`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`)!;
    expect(failure(() => directory.authenticate(guessed))?.message).toBe('invalid credentials');
  });

  it('adds keys one change at a time, and a snapshot replaces them all', () => {
    const directory = new KeyDirectory();
    const first = newKey();
    const later = newKey();
    directory.replace([first.verifier]);
    directory.apply(later.verifier);
    expect(directory.size).toBe(2);
    expect(directory.authenticate(later.parsed).kind).toBe('key');
    directory.replace([later.verifier]);
    expect(failure(() => directory.authenticate(first.parsed))?.message).toBe('invalid credentials');
    expect(directory.authenticate(later.parsed).kind).toBe('key');
  });

  it('grants nothing for a record whose role it does not know, or that has no id', () => {
    const directory = new KeyDirectory();
    const odd = newKey('superuser');
    directory.replace([odd.verifier, KeyVerifier.fromPartial({ secretSha256: new Uint8Array(32) })]);
    expect(directory.size).toBe(1);
    expect(failure(() => directory.authenticate(odd.parsed))).toEqual({
      code: ErrorCode.UNAUTHENTICATED, message: "invalid credentials: the key's record names no role this server knows",
    });
  });
});

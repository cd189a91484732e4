/** Which credential a call's principal comes from, and what a call without one hears. */
import { describe, expect, it, vi } from 'vitest';
import { generateApiKey } from '../../services/auth/api-keys.ts';
import { createAuthenticator, type CallCredentials } from '../../services/auth/authenticator.ts';
import type { TokenVerifier, VerifiedToken } from '../../services/auth/credentials.ts';
import { KeyDirectory } from '../../services/auth/key-directory.ts';
import { ANONYMOUS, UNLIMITED, type Principal } from '../../services/auth/principal.ts';
import { ErrorCode } from '../../services/domain/index.ts';
import { KeyVerifier } from '../../services/protocol/generated/nexus/auth/v1/keys.ts';

const call = (authorization?: string, certificateService?: string): CallCredentials => ({
  metadata: { get: (name: string) => (name === 'authorization' && authorization !== undefined ? [authorization] : []) },
  getAuthContext: () => (certificateService ? { sslPeerCertificate: { subjectaltname: `URI:spiffe://nexusml/${certificateService}` } as never } : {}),
});
const fromCertificate = (context: { sslPeerCertificate?: { subjectaltname?: string } }) =>
  (context.sslPeerCertificate?.subjectaltname === 'URI:spiffe://nexusml/router' ? 'router' as const : undefined);

const failure = async (run: () => unknown) => {
  try {
    await run();
  } catch (error) {
    return { code: (error as { code: number }).code, message: (error as Error).message };
  }
  return undefined;
};

const jwtPrincipal: Principal = { kind: 'jwt', id: 'jwt:issuer#alice', role: 'write', models: [], limits: UNLIMITED };

describe('createAuthenticator', () => {
  const generated = generateApiKey();
  const keys = new KeyDirectory();
  keys.replace([KeyVerifier.fromPartial({ info: { id: generated.id, role: 'infer' }, secretSha256: generated.secretSha256 })]);

  it('answers ANONYMOUS for every call in insecure mode', () => {
    expect(createAuthenticator({ insecure: true }).authenticate(call())).toBe(ANONYMOUS);
  });

  it('asks for credentials when a call has none', async () => {
    const authenticator = createAuthenticator({ apiKeys: keys });
    expect(await failure(() => authenticator.authenticate(call()))).toEqual({
      code: ErrorCode.UNAUTHENTICATED, message: "missing credentials: send 'authorization: Bearer <API key or JWT>'",
    });
    expect((await failure(() => authenticator.authenticate(call('Bearer   '))))?.message).toMatch(/^missing credentials/);
  });

  it('reads an API key synchronously, whatever the case of "Bearer"', () => {
    const authenticator = createAuthenticator({ apiKeys: keys });
    expect(authenticator.authenticate(call(`Bearer ${generated.key}`))).toMatchObject({ kind: 'key', id: `key:${generated.id}` });
    expect(authenticator.authenticate(call(`bearer ${generated.key}`))).toMatchObject({ kind: 'key' });
  });

  it('refuses another scheme, a malformed key, and a JWT it cannot check', async () => {
    const authenticator = createAuthenticator({ apiKeys: keys });
    expect(await failure(() => authenticator.authenticate(call(`Basic ${generated.key}`)))).toEqual({
      code: ErrorCode.UNAUTHENTICATED, message: "invalid credentials: the authorization metadata must be 'Bearer <API key or JWT>'",
    });
    expect((await failure(() => authenticator.authenticate(call('Bearer nxk_short'))))?.message).toBe('invalid credentials');
    expect((await failure(() => authenticator.authenticate(call('Bearer a.b.c'))))?.message).toBe('invalid credentials: this server accepts API keys, not JWTs');
  });

  it('knows a NexusML service by its certificate when the call carries no token', async () => {
    const authenticator = createAuthenticator({ apiKeys: keys, serviceIdentityOf: fromCertificate });
    expect(authenticator.authenticate(call(undefined, 'router'))).toEqual({ kind: 'service', id: 'service:router', service: 'router' });
    expect((await failure(() => authenticator.authenticate(call(undefined, 'stranger'))))?.message).toMatch(/^missing credentials/);
    // A token names the principal even beside a certificate.
    expect(authenticator.authenticate(call(`Bearer ${generated.key}`, 'router'))).toMatchObject({ kind: 'key' });
  });

  it('verifies a JWT once and remembers it until it expires', async () => {
    let clock = 1_000_000;
    const verify = vi.fn(async (): Promise<VerifiedToken> => ({ principal: jwtPrincipal, expiresAtMs: clock + 60_000 }));
    const authenticator = createAuthenticator({ jwt: { verify } satisfies TokenVerifier, now: () => clock });
    const token = 'header.payload.signature';
    const [first, second] = await Promise.all([authenticator.authenticate(call(`Bearer ${token}`)), authenticator.authenticate(call(`Bearer ${token}`))]);
    expect(first).toBe(jwtPrincipal);
    expect(second).toBe(jwtPrincipal);
    expect(verify).toHaveBeenCalledTimes(1);
    // Cached: answered without a promise.
    expect(authenticator.authenticate(call(`Bearer ${token}`))).toBe(jwtPrincipal);
    clock += 60_000;
    expect(authenticator.authenticate(call(`Bearer ${token}`))).toBeInstanceOf(Promise);
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it('keeps at most jwtCacheSize tokens, forgetting the least recently used', async () => {
    const verify = vi.fn(async (): Promise<VerifiedToken> => ({ principal: jwtPrincipal, expiresAtMs: Date.now() + 60_000 }));
    const authenticator = createAuthenticator({ jwt: { verify }, jwtCacheSize: 2 });
    for (const token of ['a.a.a', 'b.b.b']) await authenticator.authenticate(call(`Bearer ${token}`));
    authenticator.authenticate(call('Bearer a.a.a'));
    await authenticator.authenticate(call('Bearer c.c.c'));
    expect(authenticator.authenticate(call('Bearer a.a.a'))).toBe(jwtPrincipal);
    expect(authenticator.authenticate(call('Bearer b.b.b'))).toBeInstanceOf(Promise);
  });

  it('does not remember a refused JWT', async () => {
    const verify = vi.fn(async (): Promise<VerifiedToken> => {
      throw new Error('refused');
    });
    const authenticator = createAuthenticator({ jwt: { verify } });
    await expect(authenticator.authenticate(call('Bearer x.y.z'))).rejects.toThrow('refused');
    await expect(authenticator.authenticate(call('Bearer x.y.z'))).rejects.toThrow('refused');
    expect(verify).toHaveBeenCalledTimes(2);
  });
});

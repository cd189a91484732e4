/**
 * JWTs signed here with jose, verified by the JwtVerifier from each kind of key file and from a
 * JWKS served over HTTP: accepted with the right claims, refused with a reason class otherwise.
 */
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtOptionsFrom, JwtVerifier } from '../../services/auth/jwt.ts';
import type { Principal } from '../../services/auth/principal.ts';
import { ErrorCode } from '../../services/domain/index.ts';

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'nexusml';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-jwt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const now = () => Math.floor(Date.now() / 1000);

/** A token with sensible defaults; `claims` replace or (as undefined) drop them. */
function sign(key: CryptoKey | Uint8Array, alg: string, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  const payload: JWTPayload = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: now() + 600, nexus_role: 'infer', ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg, ...header }).sign(key);
}

async function verifierFor(contents: string | Uint8Array): Promise<JwtVerifier> {
  const path = join(dir, `key-${randomBytes(4).toString('hex')}`);
  await writeFile(path, contents);
  return JwtVerifier.create({ issuer: ISSUER, audience: AUDIENCE, keyFile: path });
}

/** The role a verified token grants. */
const roleOf = (verified: { principal: Principal }) => (verified.principal.kind === 'jwt' ? verified.principal.role : undefined);

/** The code and message a refused token gets. */
async function refusal(verifier: JwtVerifier, token: string) {
  try {
    await verifier.verify(token);
  } catch (error) {
    return { code: (error as { code: number }).code, message: (error as Error).message };
  }
  return undefined;
}

describe.each(['RS256', 'ES256', 'EdDSA'] as const)('%s', (alg) => {
  let privateKey: CryptoKey;
  let pem: string;
  beforeAll(async () => {
    const pair = await generateKeyPair(alg, { extractable: true });
    privateKey = pair.privateKey;
    pem = await exportSPKI(pair.publicKey);
  });

  it('accepts a token signed by the PEM key, as the principal its claims describe', async () => {
    const verifier = await verifierFor(`${pem}\n`);
    const exp = now() + 300;
    const verified = await verifier.verify(await sign(privateKey, alg, {
      exp, nexus_role: 'write', nexus_models: ['iris-*'], nexus_limits: { requestsPerSecond: 10, dailyQuota: 500 },
    }));
    expect(verified).toEqual({
      principal: {
        kind: 'jwt', id: `jwt:${ISSUER}#alice`, role: 'write', models: ['iris-*'],
        limits: { requestsPerSecond: 10, burst: 0, rowsPerSecond: 0, dailyQuota: 500, maxConcurrent: 0 },
      },
      expiresAtMs: exp * 1000,
    });
  });

  it('accepts it from a JWK file and a JWKS file too', async () => {
    const jwk = await exportJWK(createPublicKey(pem));
    const token = await sign(privateKey, alg, {}, { kid: 'k1' });
    expect(roleOf(await (await verifierFor(JSON.stringify(jwk))).verify(token))).toBe('infer');
    const set = JSON.stringify({ keys: [{ ...jwk, kid: 'other' }, { ...jwk, kid: 'k1' }] });
    expect(roleOf(await (await verifierFor(set)).verify(token))).toBe('infer');
  });

  it('refuses a token signed by another key: bad signature', async () => {
    const other = await generateKeyPair(alg);
    const verifier = await verifierFor(pem);
    expect(await refusal(verifier, await sign(other.privateKey, alg))).toEqual({ code: ErrorCode.UNAUTHENTICATED, message: 'invalid credentials: bad signature' });
  });
});

describe('HS256', () => {
  const secret = randomBytes(32);

  it('accepts a token signed with the secret in the file', async () => {
    const verifier = await verifierFor(secret);
    expect((await verifier.verify(await sign(secret, 'HS256'))).principal).toMatchObject({ kind: 'jwt', role: 'infer', models: [] });
  });

  it('accepts it from an "oct" JWK', async () => {
    const verifier = await verifierFor(JSON.stringify({ kty: 'oct', k: secret.toString('base64url') }));
    expect(roleOf(await verifier.verify(await sign(secret, 'HS256')))).toBe('infer');
  });

  it('takes random secret bytes exactly, even starting with "{" or ending in a newline', async () => {
    for (const bytes of [Buffer.concat([Buffer.from('{'), randomBytes(31)]), Buffer.concat([Buffer.from([0xff, 0x00]), randomBytes(29), Buffer.from('\n')])]) {
      const verifier = await verifierFor(bytes);
      expect(roleOf(await verifier.verify(await sign(bytes, 'HS256')))).toBe('infer');
    }
  });

  it('accepts a text secret with its trailing newline ignored', async () => {
    const text = randomBytes(32).toString('base64');
    const verifier = await verifierFor(`${text}\n`);
    expect(roleOf(await verifier.verify(await sign(Buffer.from(text), 'HS256')))).toBe('infer');
  });

  it('refuses a secret too short to be safe when it starts', async () => {
    await expect(verifierFor('short secret')).rejects.toThrow(/a 12-byte HS256 secret; use at least 32 random bytes/);
  });
});

describe('claims', () => {
  const secret = randomBytes(32);
  let verifier: JwtVerifier;
  beforeAll(async () => {
    verifier = await verifierFor(secret);
  });

  it.each<[string, JWTPayload, string]>([
    ['expired', { exp: now() - 60 }, 'invalid credentials: token expired'],
    ['not valid yet', { nbf: now() + 120 }, 'invalid credentials: token not yet valid'],
    ['for another audience', { aud: 'someone-else' }, 'invalid credentials: wrong audience'],
    ['from another issuer', { iss: 'https://evil.example.com/' }, 'invalid credentials: wrong issuer'],
    ['without nexus_role', { nexus_role: undefined }, "invalid credentials: the token has no 'nexus_role' claim"],
    ['with an unknown role', { nexus_role: 'root' }, "invalid credentials: the token's nexus_role claim must be one of infer, write, admin"],
    ['without exp', { exp: undefined }, "invalid credentials: the token has no 'exp' claim"],
    ['without sub', { sub: undefined }, "invalid credentials: the token has no 'sub' claim"],
    ['with nexus_models not a list', { nexus_models: 'iris' }, 'invalid credentials: the nexus_models claim must be a list of at most 64 model-name globs'],
    ['with a misspelt limit', { nexus_limits: { requests_per_second: 1 } }, "invalid credentials: the nexus_limits claim has an unknown field 'requests_per_second' (known: requestsPerSecond, burst, rowsPerSecond, dailyQuota, maxConcurrent)"],
    ['with a negative limit', { nexus_limits: { burst: -1 } }, 'invalid credentials: nexus_limits.burst must be a number of 0 or more'],
  ])('refuses a token %s', async (_name, claims, message) => {
    expect(await refusal(verifier, await sign(secret, 'HS256', claims))).toEqual({ code: ErrorCode.UNAUTHENTICATED, message });
  });

  it('allows 30 s of clock skew either way', async () => {
    expect(roleOf(await verifier.verify(await sign(secret, 'HS256', { exp: now() - 20, nbf: now() + 20 })))).toBe('infer');
  });

  it('refuses what is not a JWT', async () => {
    expect(await refusal(verifier, 'not.a.jwt')).toEqual({ code: ErrorCode.UNAUTHENTICATED, message: 'invalid credentials: malformed token' });
  });
});

describe('algorithm and key confusion', () => {
  it('refuses an HS256 token made with the public key as its secret', async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const pem = await exportSPKI(pair.publicKey);
    const verifier = await verifierFor(pem);
    const forged = await sign(new TextEncoder().encode(pem), 'HS256');
    expect(await refusal(verifier, forged)).toEqual({ code: ErrorCode.UNAUTHENTICATED, message: 'invalid credentials: signing algorithm not accepted' });
  });

  it('refuses an algorithm outside the four, and an unsigned token', async () => {
    const secret = randomBytes(64);
    const verifier = await verifierFor(secret);
    expect((await refusal(verifier, await sign(secret, 'HS512')))?.message).toBe('invalid credentials: signing algorithm not accepted');
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'a', exp: now() + 60, nexus_role: 'admin' })).toString('base64url');
    expect((await refusal(verifier, `${header}.${body}.`))?.code).toBe(ErrorCode.UNAUTHENTICATED);
  });

  it('refuses an ES256 token when the key is RSA', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256');
    const verifier = await verifierFor(await exportSPKI(rsa.publicKey));
    expect((await refusal(verifier, await sign(ec.privateKey, 'ES256')))?.message).toBe('invalid credentials: signing algorithm not accepted');
  });
});

describe('a JWKS URL', () => {
  let server: Server;
  let url: string;
  let fetches = 0;
  let privateKey: CryptoKey;
  let available = true;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    const jwks = JSON.stringify({ keys: [{ ...await exportJWK(pair.publicKey), kid: 'current', alg: 'ES256' }] });
    server = createServer((_request, response) => {
      fetches += 1;
      if (!available) {
        response.writeHead(503).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('verifies tokens with the keys it fetches, fetching them once', async () => {
    const verifier = await JwtVerifier.create({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: url });
    const token = await sign(privateKey, 'ES256', {}, { kid: 'current' });
    expect((await verifier.verify(token)).principal.id).toBe(`jwt:${ISSUER}#alice`);
    expect((await verifier.verify(await sign(privateKey, 'ES256', { sub: 'bob' }, { kid: 'current' }))).principal.id).toBe(`jwt:${ISSUER}#bob`);
    expect(fetches).toBe(1);
    const stranger = await generateKeyPair('ES256');
    expect((await refusal(verifier, await sign(stranger.privateKey, 'ES256', {}, { kid: 'current' })))?.message).toBe('invalid credentials: bad signature');
  });

  it('answers UNAVAILABLE when the key set cannot be fetched', async () => {
    available = false;
    const verifier = await JwtVerifier.create({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: url });
    expect(await refusal(verifier, await sign(privateKey, 'ES256', {}, { kid: 'current' }))).toEqual({
      code: ErrorCode.UNAVAILABLE, message: 'credentials cannot be checked now: the JWT key set could not be fetched',
    });
    available = true;
  });

  it('must be https unless it is on loopback', async () => {
    await expect(JwtVerifier.create({ issuer: ISSUER, audience: AUDIENCE, jwksUrl: 'http://id.example.com/jwks' })).rejects.toThrow(/must be https/);
  });
});

describe('jwtOptionsFrom', () => {
  it('is undefined when nothing is set, and complete or refused otherwise', () => {
    expect(jwtOptionsFrom({})).toBeUndefined();
    expect(jwtOptionsFrom({ issuer: 'i', audience: 'a', keyFile: 'k' })).toEqual({ issuer: 'i', audience: 'a', keyFile: 'k' });
    expect(() => jwtOptionsFrom({ issuer: 'i', keyFile: 'k' })).toThrow('JWT authentication is half configured: missing --jwt-audience (NEXUS_JWT_AUDIENCE)');
    expect(() => jwtOptionsFrom({ issuer: 'i', audience: 'a' })).toThrow(/missing --jwt-key-file \(NEXUS_JWT_KEY_FILE\) or --jwt-jwks-url/);
    expect(() => jwtOptionsFrom({ issuer: 'i', audience: 'a', keyFile: 'k', jwksUrl: 'https://x' })).toThrow('give --jwt-key-file or --jwt-jwks-url, not both');
  });
});

/**
 * JSON Web Tokens from an identity provider the deployment trusts. A token is accepted when its
 * signature verifies against the configured key (a PEM public key or certificate, a JWK, a JWKS,
 * an HS256 secret, or a JWKS URL that jose fetches and caches), its algorithm is one of HS256,
 * RS256, ES256 and EdDSA and fits that key, its `iss` and `aud` are the configured ones, and its
 * `exp` and `nbf` hold within 30 s of clock skew. Its `nexus_role` claim (required),
 * `nexus_models` and `nexus_limits` say what it may do. A refused token is answered with a reason
 * class ("token expired", "wrong audience") that names nothing from the token.
 */
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWK, type JWSAlgorithm, type JWTPayload, type JWTVerifyGetKey, type KeyInput } from 'jose';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { ErrorCode, NexusError } from '../domain/index.ts';
import { invalidCredentials, type TokenVerifier, type VerifiedToken } from './credentials.ts';
import { UNLIMITED, type Principal, type PrincipalLimits } from './principal.ts';
import { isRole, ROLES } from './roles.ts';

/** Allowed clock skew between us and the token's issuer, in seconds. */
export const JWT_CLOCK_TOLERANCE_S = 30;
const PUBLIC_KEY_ALGORITHMS: JWSAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];
/** A shared secret shorter than the hash (RFC 7518 §3.2) is refused at start. */
const MIN_SECRET_BYTES = 32;
const MAX_MODEL_GLOBS = 64;

export interface JwtVerifierOptions {
  /** The `iss` every token must carry (--jwt-issuer, NEXUS_JWT_ISSUER). */
  issuer: string;
  /** The `aud` every token must include (--jwt-audience, NEXUS_JWT_AUDIENCE). */
  audience: string;
  /**
   * A file with the verification key (--jwt-key-file, NEXUS_JWT_KEY_FILE): a PEM public key or
   * certificate, a JWK or JWKS as JSON, or else the raw HS256 secret (one trailing newline ignored).
   */
  keyFile?: string;
  /** Where the issuer publishes its JWKS (--jwt-jwks-url, NEXUS_JWT_JWKS_URL); https unless loopback. */
  jwksUrl?: string;
}

/** A key to verify with, and the algorithms that key can verify. */
interface VerificationKey {
  key: KeyInput | JWTVerifyGetKey;
  algorithms: JWSAlgorithm[];
}

const startError = (message: string) => new NexusError(ErrorCode.INVALID_ARGUMENT, message);

/**
 * The JWT settings from the four flags (each may be undefined), checked: all or nothing, and one
 * key source. Undefined when none is set (JWTs are not accepted).
 */
export function jwtOptionsFrom(flags: { issuer?: string; audience?: string; keyFile?: string; jwksUrl?: string }): JwtVerifierOptions | undefined {
  const { issuer, audience, keyFile, jwksUrl } = flags;
  if (!issuer && !audience && !keyFile && !jwksUrl) return undefined;
  const missing = [!issuer && '--jwt-issuer (NEXUS_JWT_ISSUER)', !audience && '--jwt-audience (NEXUS_JWT_AUDIENCE)',
    !keyFile && !jwksUrl && '--jwt-key-file (NEXUS_JWT_KEY_FILE) or --jwt-jwks-url (NEXUS_JWT_JWKS_URL)'].filter(Boolean);
  if (missing.length > 0) throw startError(`JWT authentication is half configured: missing ${missing.join(', ')}`);
  if (keyFile && jwksUrl) throw startError('give --jwt-key-file or --jwt-jwks-url, not both');
  return { issuer: issuer!, audience: audience!, ...(keyFile ? { keyFile } : { jwksUrl: jwksUrl! }) };
}

/** The algorithm a PEM key verifies; one per key type, so a token cannot choose another. */
function algorithmOfPublicKey(key: ReturnType<typeof createPublicKey>): JWSAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw startError(`the JWT key is a ${bits}-bit RSA key; RS256 needs 2048 bits or more`);
    return 'RS256';
  }
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  throw startError(`the JWT key is ${type}${curve ? ` (${curve})` : ''}; use an RSA, EC P-256 or Ed25519 public key, or an HS256 secret`);
}

/** The key in a --jwt-key-file, by its contents. Pure apart from parsing. */
function verificationKeyOf(contents: Buffer, path: string): VerificationKey {
  const text = contents.toString('utf8').trim();
  if (text.startsWith('-----BEGIN')) {
    let key: ReturnType<typeof createPublicKey>;
    try {
      key = createPublicKey(text);
    } catch (error) {
      throw startError(`${path} holds PEM that is not a public key, certificate or private key: ${(error as Error).message}`);
    }
    return { key, algorithms: [algorithmOfPublicKey(key)] };
  }
  // JSON is text; random secret bytes that happen to start with '{' are a secret, not a bad JWK.
  const isText = isUtf8(contents) && !/[\u0000-\u0008\u000e-\u001f]/.test(text);
  if (text.startsWith('{') && isText) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw startError(`${path} starts with '{' but is not JSON (a JWK or JWKS): ${(error as Error).message}`);
    }
    const keys = (parsed as { keys?: unknown }).keys;
    // jose's key sets hold public keys only: a shared secret goes in a file of its own or one JWK.
    if (Array.isArray(keys)) return { key: createLocalJWKSet({ keys }), algorithms: PUBLIC_KEY_ALGORITHMS };
    const jwk = parsed as JWK;
    if (jwk.kty === 'oct' && typeof jwk.k === 'string') return secretKey(Buffer.from(jwk.k, 'base64url'), path);
    if (typeof jwk.kty !== 'string') throw startError(`${path} is JSON but neither a JWK (with "kty") nor a JWKS (with "keys")`);
    let key: ReturnType<typeof createPublicKey>;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch (error) {
      throw startError(`${path} holds a JWK that is not a usable public key: ${(error as Error).message}`);
    }
    return { key, algorithms: [algorithmOfPublicKey(key)] };
  }
  // A text secret written with `echo` ends in a newline that is not part of it; random bytes are
  // taken exactly, whatever their last byte.
  const newline = isText && contents.at(-1) === 0x0a ? (contents.at(-2) === 0x0d ? 2 : 1) : 0;
  return secretKey(contents.subarray(0, contents.length - newline), path);
}

function secretKey(secret: Uint8Array, path: string): VerificationKey {
  if (secret.length < MIN_SECRET_BYTES) {
    throw startError(`${path} holds a ${secret.length}-byte HS256 secret; use at least ${MIN_SECRET_BYTES} random bytes`);
  }
  return { key: new Uint8Array(secret), algorithms: ['HS256'] };
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function remoteKeySet(url: string): VerificationKey {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw startError(`--jwt-jwks-url '${url}' is not a URL`);
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && LOOPBACK_HOSTS.has(parsed.hostname))) {
    throw startError(`--jwt-jwks-url '${url}' must be https (plain http only on loopback): keys fetched in the clear could be replaced`);
  }
  // jose caches the set, refetching it at most every 30 s when a token names a key it lacks.
  return { key: createRemoteJWKSet(parsed), algorithms: PUBLIC_KEY_ALGORITHMS };
}

/** The reason class of a refused token: what kind of check failed, never what the token held. */
function refusalOf(error: unknown, remote: boolean): NexusError {
  const code = (error as { code?: unknown }).code;
  const claim = (error as { claim?: unknown }).claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED': return invalidCredentials('token expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'aud') return invalidCredentials('wrong audience');
      if (claim === 'iss') return invalidCredentials('wrong issuer');
      if (claim === 'nbf') return invalidCredentials('token not yet valid');
      if ((error as { reason?: unknown }).reason === 'missing') return invalidCredentials(`the token has no '${String(claim)}' claim`);
      return invalidCredentials(`the token's '${String(claim)}' claim is invalid`);
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return invalidCredentials('bad signature');
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS': return invalidCredentials('no key of this server verifies the token');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED': return invalidCredentials('signing algorithm not accepted');
    case 'ERR_JWKS_TIMEOUT':
      return new NexusError(ErrorCode.UNAVAILABLE, 'credentials cannot be checked now: fetching the JWT key set timed out', { cause: error });
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID': return invalidCredentials('malformed token');
    default:
      // fetch failures (TypeError) and a bad JWKS response (JOSEError): the issuer, not the caller.
      if (remote && (error instanceof TypeError || code === 'ERR_JOSE_GENERIC' || code === 'ERR_JWKS_INVALID')) {
        return new NexusError(ErrorCode.UNAVAILABLE, 'credentials cannot be checked now: the JWT key set could not be fetched', { cause: error });
      }
      return new NexusError(ErrorCode.UNAUTHENTICATED, 'invalid credentials: token not accepted', { cause: error });
  }
}

const LIMIT_NAMES = Object.keys(UNLIMITED) as Array<keyof PrincipalLimits>;

/** `nexus_limits`, checked: known fields only (a misspelt limit must not mean unlimited), numbers of 0 or more. */
function limitsClaim(value: unknown): PrincipalLimits {
  if (value === undefined) return UNLIMITED;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidCredentials('the nexus_limits claim must be an object');
  const limits: PrincipalLimits = { ...UNLIMITED };
  for (const [name, limit] of Object.entries(value)) {
    if (!(LIMIT_NAMES as string[]).includes(name)) throw invalidCredentials(`the nexus_limits claim has an unknown field '${name.slice(0, 40)}' (known: ${LIMIT_NAMES.join(', ')})`);
    if (typeof limit !== 'number' || !Number.isFinite(limit) || limit < 0) throw invalidCredentials(`nexus_limits.${name} must be a number of 0 or more`);
    limits[name as keyof PrincipalLimits] = limit;
  }
  return Object.freeze(limits);
}

function modelsClaim(value: unknown): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value) || value.length > MAX_MODEL_GLOBS || !value.every((glob) => typeof glob === 'string' && glob.length > 0 && glob.length <= 256)) {
    throw invalidCredentials(`the nexus_models claim must be a list of at most ${MAX_MODEL_GLOBS} model-name globs`);
  }
  return Object.freeze([...value as string[]]);
}

/** The principal a verified payload stands for. Pure. */
function principalOfClaims(payload: JWTPayload): Principal {
  const role = payload.nexus_role;
  if (role === undefined) throw invalidCredentials("the token has no 'nexus_role' claim");
  if (typeof role !== 'string' || !isRole(role)) throw invalidCredentials(`the token's nexus_role claim must be one of ${ROLES.join(', ')}`);
  return Object.freeze({
    kind: 'jwt', id: `jwt:${payload.iss}#${payload.sub}`, role, models: modelsClaim(payload.nexus_models), limits: limitsClaim(payload.nexus_limits),
  });
}

export class JwtVerifier implements TokenVerifier {
  private readonly options: JwtVerifierOptions;
  private readonly verification: VerificationKey;

  private constructor(options: JwtVerifierOptions, verification: VerificationKey) {
    this.options = options;
    this.verification = verification;
  }

  /** Reads the key file (or sets up the JWKS URL); throws INVALID_ARGUMENT naming what is wrong. */
  static async create(options: JwtVerifierOptions): Promise<JwtVerifier> {
    if (options.jwksUrl) return new JwtVerifier(options, remoteKeySet(options.jwksUrl));
    if (!options.keyFile) throw startError('JWT authentication needs --jwt-key-file or --jwt-jwks-url');
    let contents: Buffer;
    try {
      contents = await readFile(options.keyFile);
    } catch (error) {
      throw startError(`cannot read the JWT key file ${options.keyFile}: ${(error as Error).message}`);
    }
    return new JwtVerifier(options, verificationKeyOf(contents, options.keyFile));
  }

  async verify(token: string): Promise<VerifiedToken> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.verification.key, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: this.verification.algorithms,
        clockTolerance: JWT_CLOCK_TOLERANCE_S,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      throw refusalOf(error, this.options.jwksUrl !== undefined);
    }
    return { principal: principalOfClaims(payload), expiresAtMs: payload.exp! * 1000 };
  }
}

/**
 * Who made a call. A call that carries `authorization: Bearer <token>` is the token's principal:
 * an API key (`nxk_…`, checked by an ApiKeyVerifier such as the KeyDirectory) or else a JWT
 * (checked by a TokenVerifier such as the JwtVerifier). A call without one is the NexusML service
 * its verified client certificate names, if any; otherwise it is refused. In insecure mode every
 * call is ANONYMOUS.
 *
 * The API-key path is one regular-expression test, one sha256 and one map lookup, with no
 * promise, because it runs before every inference call. A verified JWT is remembered (by its
 * text, until it expires, in a bounded LRU) so only its first use pays for the signature.
 */
import type { PeerCertificate } from 'node:tls';
import { parseApiKey } from './api-keys.ts';
import { invalidCredentials, missingCredentials, type ApiKeyVerifier, type TokenVerifier, type VerifiedToken } from './credentials.ts';
import { ANONYMOUS, type Principal } from './principal.ts';
import { SERVICE_IDENTITIES, type ServiceIdentity } from './roles.ts';

/** What grpc-js's call.getAuthContext() gives: the peer's certificate when TLS verified one. */
export interface PeerAuthContext {
  sslPeerCertificate?: PeerCertificate;
}

/** The parts of a call authentication reads; a grpc-js server call has both. */
export interface CallCredentials {
  metadata: { get(key: string): unknown[] };
  getAuthContext(): PeerAuthContext;
}

export interface Authenticator {
  /**
   * The call's principal. Throws (synchronously) UNAUTHENTICATED for missing or invalid
   * credentials, UNAVAILABLE when they cannot be checked yet; a promise only while an uncached
   * JWT is verified.
   */
  authenticate(call: CallCredentials): Principal | Promise<Principal>;
}

export interface AuthenticatorOptions {
  /** Authentication off: every call is ANONYMOUS (a development server, --insecure). Default false. */
  insecure?: boolean;
  /** Checks `nxk_…` keys; without it API keys are refused. */
  apiKeys?: ApiKeyVerifier;
  /** Checks JWTs; without it JWTs are refused. */
  jwt?: TokenVerifier;
  /**
   * The NexusML service a verified client certificate names (services/tls/peer.ts's
   * peerServiceIdentity); without it certificates identify nobody.
   */
  serviceIdentityOf?: (authContext: PeerAuthContext) => ServiceIdentity | undefined;
  /** Verified JWTs remembered at once. Default 10 000. */
  jwtCacheSize?: number;
  /** The clock, in Unix milliseconds. Default Date.now. */
  now?: () => number;
}

const BEARER = /^bearer /i;

const SERVICE_PRINCIPALS = new Map<ServiceIdentity, Principal>(SERVICE_IDENTITIES.map((service) =>
  [service, Object.freeze({ kind: 'service', id: `service:${service}`, service } as const)]));

/** The bearer token of a call; undefined when it sends none. Throws for another scheme. */
function bearerToken(metadata: CallCredentials['metadata']): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string' || value === '') return undefined;
  if (!BEARER.test(value)) throw invalidCredentials("the authorization metadata must be 'Bearer <API key or JWT>'");
  const token = value.slice(7).trim();
  return token === '' ? undefined : token;
}

/** Verified JWTs by their text, least recently used first, each until it expires. */
class TokenCache {
  private readonly entries = new Map<string, VerifiedToken>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(token: string, now: number): Principal | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    if (entry.expiresAtMs <= now) return undefined;
    this.entries.set(token, entry);
    return entry.principal;
  }

  set(token: string, verified: VerifiedToken): void {
    this.entries.set(token, verified);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}

/** An authenticator over the given verifiers (see the module comment for the order of checks). */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  if (options.insecure) return { authenticate: () => ANONYMOUS };
  const { apiKeys, jwt, serviceIdentityOf } = options;
  const now = options.now ?? Date.now;
  const cache = new TokenCache(options.jwtCacheSize ?? 10_000);
  // A token presented by many calls at once is verified once.
  const verifying = new Map<string, Promise<Principal>>();

  const verifyJwt = (verifier: TokenVerifier, token: string): Principal | Promise<Principal> => {
    const cached = cache.get(token, now());
    if (cached) return cached;
    let pending = verifying.get(token);
    if (!pending) {
      pending = verifier.verify(token).then((verified) => {
        if (verified.expiresAtMs > now()) cache.set(token, verified);
        return verified.principal;
      }).finally(() => verifying.delete(token));
      verifying.set(token, pending);
    }
    return pending;
  };

  return {
    authenticate(call) {
      const token = bearerToken(call.metadata);
      if (token !== undefined) {
        if (token.startsWith('nxk_')) {
          const key = parseApiKey(token);
          if (!key || !apiKeys) throw invalidCredentials();
          return apiKeys.authenticate(key);
        }
        if (!jwt) throw invalidCredentials('this server accepts API keys, not JWTs');
        return verifyJwt(jwt, token);
      }
      // Read only without a token: reading the peer certificate costs every call on a TLS port.
      const service = serviceIdentityOf?.(call.getAuthContext());
      if (service) return SERVICE_PRINCIPALS.get(service)!;
      throw missingCredentials();
    },
  };
}

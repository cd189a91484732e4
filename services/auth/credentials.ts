/**
 * What the pieces of authentication share: the errors a caller sees (never naming a token or a
 * secret) and the interfaces through which the authenticator asks a verifier who a token is.
 */
import { ErrorCode, NexusError } from '../domain/index.ts';
import type { parseApiKey } from './api-keys.ts';
import type { Principal } from './principal.ts';

const MISSING_CREDENTIALS = "missing credentials: send 'authorization: Bearer <API key or JWT>'";

/** UNAUTHENTICATED "missing credentials: …". */
export const missingCredentials = () => new NexusError(ErrorCode.UNAUTHENTICATED, MISSING_CREDENTIALS);

/** UNAUTHENTICATED "invalid credentials", with a reason class ("token expired") that reveals nothing secret. */
export const invalidCredentials = (reason?: string) =>
  new NexusError(ErrorCode.UNAUTHENTICATED, reason ? `invalid credentials: ${reason}` : 'invalid credentials');

/** An API key as presented: its public id and the sha256 of its secret. */
export type PresentedApiKey = NonNullable<ReturnType<typeof parseApiKey>>;

/** Who an API key is. Synchronous where it can be: it runs on every inference call. */
export interface ApiKeyVerifier {
  /** The key's principal; throws UNAUTHENTICATED (or UNAVAILABLE when keys cannot be checked yet). */
  authenticate(key: PresentedApiKey): Principal | Promise<Principal>;
}

/** A verified bearer token: whom it stands for, and until when. */
export interface VerifiedToken {
  principal: Principal;
  /** When the token stops being valid, in Unix milliseconds. */
  expiresAtMs: number;
}

/** Who a JWT is. */
export interface TokenVerifier {
  /** Throws UNAUTHENTICATED with a reason class for a token it does not accept. */
  verify(token: string): Promise<VerifiedToken>;
}

/**
 * The API keys a server accepts, held in memory: one verifier per key id, as the registry's
 * nexus.auth.v1.Keys/WatchKeys stream sends them (a snapshot, then one change at a time). Checking
 * a presented key is one map lookup and one constant-time comparison, so it costs next to nothing
 * on every inference call; the principal each key stands for is built once, when its record
 * arrives.
 */
import { ErrorCode, NexusError } from '../domain/index.ts';
import type { KeyLimits, KeyVerifier } from '../protocol/generated/nexus/auth/v1/keys.ts';
import { secretMatches } from './api-keys.ts';
import { invalidCredentials, type ApiKeyVerifier, type PresentedApiKey } from './credentials.ts';
import { UNLIMITED, type Principal, type PrincipalLimits } from './principal.ts';
import { isRole } from './roles.ts';

/** What a directory needs of each key: the stored hash, and whom it stands for while valid. */
interface KeyEntry {
  secretSha256: Uint8Array;
  /** Undefined for a key that may not be used: revoked, or a record this server cannot read. */
  principal: Principal | undefined;
  revoked: boolean;
}

/** Compared against when a presented id is unknown, so a miss costs what a hit does. */
const UNKNOWN_KEY_HASH = new Uint8Array(32);

function limitsOf(limits: KeyLimits | undefined): PrincipalLimits {
  if (!limits) return UNLIMITED;
  return Object.freeze({
    requestsPerSecond: limits.requestsPerSecond, burst: limits.burst, rowsPerSecond: limits.rowsPerSecond,
    dailyQuota: limits.dailyQuota, maxConcurrent: limits.maxConcurrent,
  });
}

/** The entry of one verifier record; undefined for a record without an id. */
function entryOf(verifier: KeyVerifier): [string, KeyEntry] | undefined {
  const info = verifier.info;
  if (!info || info.id === '') return undefined;
  const revoked = info.revokedAtUnixMs !== 0;
  // A role this server does not know (a newer registry's) grants nothing rather than something.
  const principal: Principal | undefined = revoked || !isRole(info.role) ? undefined : Object.freeze({
    kind: 'key', id: `key:${info.id}`, role: info.role, models: Object.freeze([...info.models]), limits: limitsOf(info.limits),
  });
  return [info.id, { secretSha256: verifier.secretSha256, principal, revoked }];
}

export class KeyDirectory implements ApiKeyVerifier {
  private entries = new Map<string, KeyEntry>();
  private hasSnapshot = false;

  /** False until the first snapshot arrived: until then no key can be judged. */
  get ready(): boolean {
    return this.hasSnapshot;
  }

  /** Number of keys known, revoked ones included. */
  get size(): number {
    return this.entries.size;
  }

  /** Replaces every key with `verifiers` (the registry's snapshot). */
  replace(verifiers: readonly KeyVerifier[]): void {
    const entries = new Map<string, KeyEntry>();
    for (const verifier of verifiers) {
      const entry = entryOf(verifier);
      if (entry) entries.set(...entry);
    }
    this.entries = entries;
    this.hasSnapshot = true;
  }

  /** Adds or replaces one key (a creation or a revocation). */
  apply(verifier: KeyVerifier): void {
    const entry = entryOf(verifier);
    if (entry) this.entries.set(...entry);
  }

  /**
   * The principal `key` stands for. Throws UNAVAILABLE before the first snapshot, UNAUTHENTICATED
   * "invalid credentials" for an unknown id or a wrong secret, and says "revoked" only to a caller
   * who holds the whole key.
   */
  authenticate(key: PresentedApiKey): Principal {
    if (!this.hasSnapshot) {
      throw new NexusError(ErrorCode.UNAVAILABLE, "credentials cannot be checked yet: the registry's key list has not arrived");
    }
    const entry = this.entries.get(key.id);
    const matches = secretMatches(key.secretSha256, entry?.secretSha256 ?? UNKNOWN_KEY_HASH);
    if (!entry || !matches) throw invalidCredentials();
    if (entry.revoked) throw invalidCredentials('the key was revoked');
    if (!entry.principal) throw invalidCredentials("the key's record names no role this server knows");
    return entry.principal;
  }
}

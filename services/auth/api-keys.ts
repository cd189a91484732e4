/**
 * API keys: `nxk_<id>_<secret>`, where the id (12 hex characters) is public and names the key in
 * lists, logs and audit records, and the secret (32 random bytes, base64url) is shown once and
 * stored only as its sha256. A presented key is checked by its id's record and a constant-time
 * comparison of hashes, so neither timing nor a stolen record reveals a usable key. (A slow hash
 * buys nothing here: the secret has 256 bits of entropy, unlike a password.)
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_PATTERN = /^nxk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedKey {
  /** The whole key, to show once. */
  key: string;
  id: string;
  secretSha256: Uint8Array;
}

/** A new random key. */
export function generateApiKey(): GeneratedKey {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { key: `nxk_${id}_${secret}`, id, secretSha256: sha256(secret) };
}

/** The id and secret hash of something that looks like a key; undefined for anything else. */
export function parseApiKey(token: string): { id: string; secretSha256: Uint8Array } | undefined {
  const match = KEY_PATTERN.exec(token);
  return match ? { id: match[1]!, secretSha256: sha256(match[2]!) } : undefined;
}

/** True when the presented hash equals the stored one, in time independent of where they differ. */
export function secretMatches(presented: Uint8Array, stored: Uint8Array): boolean {
  return presented.length === stored.length && stored.length === 32 && timingSafeEqual(presented, stored);
}

const sha256 = (text: string): Uint8Array => createHash('sha256').update(text).digest();

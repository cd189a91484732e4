/**
 * Digests as the executor accepts them from its stream: exactly 64 lower-case hex characters,
 * checked before a digest names a file, a registry blob or a cache key.
 */
import { invalidArgument } from '../../domain/index.ts';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Returns `value` when it is a sha256 in lower-case hex; throws INVALID_ARGUMENT naming `field`
 * and the value (control characters escaped) otherwise.
 */
export function checkSha256(field: string, value: string): string {
  if (typeof value === 'string' && SHA256_HEX.test(value)) return value;
  const shown = JSON.stringify(String(value).slice(0, 80));
  throw invalidArgument(`${field} ${shown} is not a sha256 digest; expected exactly 64 lower-case hex characters [0-9a-f]`);
}

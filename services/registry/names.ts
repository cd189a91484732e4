/** Validation of user-chosen names, so none can escape the store's directory or bucket prefix. */
import { invalidArgument } from '../rpc/errors.ts';

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Throws INVALID_ARGUMENT unless `name` is 1–128 of [a-z0-9._-], starting with a letter or digit. */
export function checkModelName(name: string, field = 'model_name'): string {
  if (!MODEL_NAME.test(name) || name.includes('..')) {
    throw invalidArgument(
      `${field} '${name.slice(0, 200)}' is invalid: use 1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'`,
    );
  }
  return name;
}

/** Throws INVALID_ARGUMENT unless `digest` is 64 lower-case hex characters. */
export function checkSha256(digest: string, field = 'sha256'): string {
  if (!SHA256_HEX.test(digest)) {
    throw invalidArgument(`${field} '${digest.slice(0, 100)}' is not a sha256 digest (64 lower-case hex characters)`);
  }
  return digest;
}

/** Validation of user-chosen names, so none can escape the store's directory or bucket prefix. */
import { invalidArgument } from '../../domain/index.ts';

const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const ALIAS_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const TAG_KEY = /^[A-Za-z0-9_.:/-]{1,128}$/;
/** One segment of a file path inside a directory model. */
const PATH_SEGMENT = /^[^/\\\0]{1,255}$/;

/** Longest tag value, in characters. */
export const MAX_TAG_VALUE_CHARS = 1024;
/** Most tags on one version. */
export const MAX_TAGS = 64;
/** Most files in one directory model. */
export const MAX_MANIFEST_FILES = 10_000;
/** Longest relative path of a file in a directory model, in characters. */
export const MAX_PATH_CHARS = 1024;

/** Throws INVALID_ARGUMENT unless `name` is 1–128 of [a-z0-9._-], starting with a letter or digit. */
export function checkModelName(name: string, field = 'model_name'): string {
  if (!MODEL_NAME.test(name) || name.includes('..')) {
    throw invalidArgument(
      `${field} '${name.slice(0, 200)}' is invalid: use 1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'`,
    );
  }
  return name;
}

/**
 * Throws INVALID_ARGUMENT unless `alias` is 1–64 of [a-z0-9_-] starting with a letter. "latest"
 * and v<digits> are reserved, so `name@latest` and `name@v3` can never be ambiguous.
 */
export function checkAliasName(alias: string, field = 'alias'): string {
  if (!ALIAS_NAME.test(alias)) {
    throw invalidArgument(`${field} '${alias.slice(0, 100)}' is invalid: use 1-64 lower-case letters, digits, '_' or '-', starting with a letter`);
  }
  if (alias === 'latest' || /^v\d+$/.test(alias)) throw invalidArgument(`${field} '${alias}' is reserved; choose another name`);
  return alias;
}

/** Throws INVALID_ARGUMENT unless `digest` is 64 lower-case hex characters. */
export function checkSha256(digest: string, field = 'sha256'): string {
  if (!SHA256_HEX.test(digest)) {
    throw invalidArgument(`${field} '${digest.slice(0, 100)}' is not a sha256 digest (64 lower-case hex characters)`);
  }
  return digest;
}

/** Tag keys that name a JavaScript object's own machinery, which a tag must never shadow. */
const RESERVED_TAG_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Throws INVALID_ARGUMENT unless the tags are few, with simple keys (none reserved) and bounded values. */
export function checkTags(tags: Record<string, string>, field = 'tags'): Record<string, string> {
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS) throw invalidArgument(`${field} has ${entries.length} entries; at most ${MAX_TAGS} are allowed`);
  for (const [key, value] of entries) {
    if (RESERVED_TAG_KEYS.has(key)) throw invalidArgument(`${field} key '${key}' is reserved; choose another name`);
    if (!TAG_KEY.test(key)) throw invalidArgument(`${field} key '${key.slice(0, 200)}' is invalid: use 1-128 letters, digits, '_', '.', ':', '/' or '-'`);
    if (value.length > MAX_TAG_VALUE_CHARS) throw invalidArgument(`${field} '${key}' is longer than ${MAX_TAG_VALUE_CHARS} characters`);
  }
  return tags;
}

/**
 * Throws INVALID_ARGUMENT unless `path` is a relative path that stays inside the model's
 * directory: '/' separators, no '.' or '..' segments, no empty segments, no backslashes.
 */
export function checkManifestPath(path: string, field = 'path'): string {
  const segments = path.split('/');
  if (path.length === 0 || path.length > MAX_PATH_CHARS || segments.some((segment) => !PATH_SEGMENT.test(segment) || segment === '.' || segment === '..')) {
    throw invalidArgument(`${field} '${path.slice(0, 200)}' is invalid: use a relative path with '/' separators, without '.', '..', empty segments or backslashes`);
  }
  return path;
}

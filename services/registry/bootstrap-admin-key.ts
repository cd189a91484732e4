/**
 * The first admin key of a fresh deployment. `nexus up` starts the registry with
 * --bootstrap-admin-key-file $NEXUS_HOME/credentials/admin.key; at start the registry looks at it:
 *
 * - the file holds a key that is valid in the store (an admin key, not revoked): nothing to do;
 * - otherwise, when the store holds no valid admin key created by 'bootstrap', it creates one and
 *   writes the file (mode 0600, its directory 0700 when created), replacing what was there;
 * - otherwise (the file is gone or stale but a bootstrap key is still valid) it creates nothing:
 *   a second admin key nobody asked for would widen access; the log says what to do.
 *
 * The log names the file and the key's id, never the key.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { parseApiKey, secretMatches } from '../auth/api-keys.ts';
import type { KeyVerifier } from '../protocol/generated/nexus/auth/v1/keys.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { KeyStore } from './core/index.ts';
import { NO_LIMITS } from './validation/index.ts';

/** Who the bootstrap key's record names as its creator. */
export const BOOTSTRAP_CREATOR = 'bootstrap';

export type BootstrapDecision =
  | { action: 'keep'; keyId: string }
  | { action: 'create' }
  | { action: 'leave'; existingKeyId: string };

const isValidAdmin = (verifier: KeyVerifier | undefined) => verifier?.info?.role === 'admin' && verifier.info.revokedAtUnixMs === 0;

/**
 * What to do, from facts alone: the key the file holds (undefined when missing or not a key),
 * its record in the store, and the store's valid bootstrap admin keys.
 */
export function decideBootstrap(facts: {
  fileKey: { id: string; secretSha256: Uint8Array } | undefined;
  fileKeyRecord: KeyVerifier | undefined;
  bootstrapKeys: readonly KeyVerifier[];
}): BootstrapDecision {
  const { fileKey, fileKeyRecord } = facts;
  if (fileKey && isValidAdmin(fileKeyRecord) && secretMatches(fileKey.secretSha256, fileKeyRecord!.secretSha256)) {
    return { action: 'keep', keyId: fileKey.id };
  }
  const existing = facts.bootstrapKeys.find((verifier) => isValidAdmin(verifier) && verifier.info!.createdBy === BOOTSTRAP_CREATOR);
  return existing ? { action: 'leave', existingKeyId: existing.info!.id } : { action: 'create' };
}

/** Writes `text` to `path` readable by its owner only, whole or not at all. */
async function writePrivateFile(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Applies the rule above to the file at `path`; returns what it did. */
export async function ensureBootstrapAdminKey(keys: KeyStore, path: string, logger: Logger): Promise<BootstrapDecision> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new Error(`cannot read the bootstrap admin key file ${path}: ${error.message}`, { cause: error });
  });
  const fileKey = text === undefined ? undefined : parseApiKey(text.trim());
  const fileKeyRecord = fileKey ? await keys.get(fileKey.id) : undefined;
  const decision = decideBootstrap({
    fileKey, fileKeyRecord,
    bootstrapKeys: (await keys.list()).filter((verifier) => verifier.info!.createdBy === BOOTSTRAP_CREATOR),
  });
  switch (decision.action) {
    case 'keep':
      logger.info({ path, key_id: decision.keyId }, 'bootstrap admin key file holds a valid admin key');
      break;
    case 'leave': {
      const problem = text === undefined ? 'is missing' : 'does not hold a valid admin key';
      logger.warn({ path, key_id: decision.existingKeyId }, `bootstrap admin key file ${problem}, but the bootstrap admin key `
        + `${decision.existingKeyId} is still valid, so no new one is made: use another admin key, or revoke that one `
        + `(nexus keys revoke ${decision.existingKeyId}) and restart to have a new file written`);
      break;
    }
    case 'create': {
      const created = await keys.create({ name: 'bootstrap admin', role: 'admin', models: [], limits: { ...NO_LIMITS } }, BOOTSTRAP_CREATOR);
      try {
        await writePrivateFile(path, `${created.key}\n`);
      } catch (error) {
        // A bootstrap key nobody holds would stop every later start from writing a new one.
        await keys.revoke(created.verifier.info!.id);
        throw new Error(`cannot write the bootstrap admin key file ${path}: ${(error as Error).message}`, { cause: error });
      }
      logger.info({ path, key_id: created.verifier.info!.id }, 'bootstrap admin key created and written to its file (mode 0600)');
      break;
    }
  }
  return decision;
}

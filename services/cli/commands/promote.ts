/**
 * nexus promote <name> <version> <alias>: points an alias at a version by compare-and-swap. The
 * expected current target is --expect, or what the alias pointed at when this command read it,
 * so a move made by somebody else in between is never overwritten: it fails with exit code 6.
 */
import { status } from '@grpc/grpc-js';
import type { GetAliasResponse, SetAliasResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { isServiceError } from '../../rpc/errors.ts';
import { registryClient, unaryCall } from '../clients.ts';
import { ExitCode, printJson, reportError } from '../output.ts';
import { currentUser } from './store.ts';

export interface PromoteOptions {
  registry: string;
  reason?: string;
  /** The version the alias must point at now (0: must not exist yet). */
  expect?: string;
  json?: boolean;
}

/** Parses a positive version number, or a non-negative one when `allowZero`. */
export function parseVersionNumber(text: string, what: string, allowZero = false): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || (!allowZero && value < 1)) throw new Error(`${what} '${text}' is not a version number (${allowZero ? '0, ' : ''}1, 2, ...)`);
  return value;
}

export async function promote(name: string, versionText: string, alias: string, options: PromoteOptions): Promise<number> {
  let version: number;
  let expected: number | undefined;
  try {
    version = parseVersionNumber(versionText, 'version');
    if (options.expect !== undefined) expected = parseVersionNumber(options.expect, '--expect', true);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const client = registryClient(options.registry);
  try {
    expected ??= await unaryCall<GetAliasResponse>((done) => client.getAlias({ modelName: name, alias }, done)).then(
      (reply) => reply.alias?.version ?? 0,
      (error: unknown) => {
        if (isServiceError(error) && error.code === status.NOT_FOUND) return 0; // not set yet
        throw error;
      },
    );
    const response = await unaryCall<SetAliasResponse>((done) => client.setAlias({
      modelName: name, alias, version, expectedVersion: expected, reason: options.reason ?? '', actor: currentUser(),
    }, done));
    if (options.json) printJson(response);
    else if (response.move?.revision && response.move.toVersion === version && response.move.fromVersion !== version) {
      console.log(`${name}@${alias}: ${response.move.fromVersion || 'unset'} -> ${version} (revision ${response.move.revision})`);
    } else {
      console.log(`${name}@${alias} already points at version ${version}; nothing changed`);
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not point ${name}@${alias} at version ${versionText}`);
  } finally {
    client.close();
  }
}

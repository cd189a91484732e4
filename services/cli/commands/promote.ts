/**
 * nexus promote <name> <target> <alias>: points an alias at a version (`3`), or splits its
 * traffic between versions by weight (`3=90,4=10`, the control first), by compare-and-swap. The
 * expectation is --expect (a version), or the alias exactly as this command read it (its
 * revision), so a move made by somebody else in between, weights included, is never overwritten:
 * it fails with exit code 6.
 */
import { status } from '@grpc/grpc-js';
import {
  SetAliasRequest, type AliasTarget, type GetAliasResponse, type SetAliasResponse,
} from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { isCodedRemoteError, parseSplitTarget, parseVersionNumber } from '../../domain/index.ts';
import { registryClient, unaryCall } from '../remote/index.ts';
import { ExitCode, formatDestination, printJson, reportError } from '../terminal/index.ts';
import { currentUser } from './store.ts';

export interface PromoteOptions {
  registry: string;
  reason?: string;
  /** The version the alias must point at now (0: must not exist yet). */
  expect?: string;
  /** With a split: the request parameter that keeps a client on one arm. */
  sticky?: string;
  json?: boolean;
}

export async function promote(name: string, targetText: string, alias: string, options: PromoteOptions): Promise<number> {
  let target: { version: number; split: AliasTarget[] };
  let expectedVersion: number | undefined;
  try {
    target = parseSplitTarget(targetText);
    if (options.expect !== undefined) expectedVersion = parseVersionNumber(options.expect, '--expect', true);
    if (options.sticky !== undefined && target.split.length === 0) throw new Error('--sticky needs a split target, e.g. 3=90,4=10');
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const client = registryClient(options.registry);
  const described = formatDestination(target.version, target.split, options.sticky ?? '');
  try {
    // The revision read here is the expectation unless --expect names a version; either way it
    // tells a real move from "already there" afterwards.
    const readRevision = await unaryCall<GetAliasResponse>((done) => client.getAlias({ modelName: name, alias }, done)).then(
      (reply) => reply.alias?.revision ?? 0,
      (error: unknown) => {
        if (isCodedRemoteError(error) && error.code === status.NOT_FOUND) return 0; // not set yet
        throw error;
      },
    );
    const response = await unaryCall<SetAliasResponse>((done) => client.setAlias(SetAliasRequest.fromPartial({
      modelName: name, alias, version: target.version, split: target.split, stickyParameter: options.sticky ?? '',
      expectedVersion, expectedRevision: expectedVersion === undefined ? readRevision : undefined,
      reason: options.reason ?? '', actor: currentUser(),
    }), done));
    const move = response.move;
    if (options.json) printJson(response);
    else if (move && move.revision > readRevision) {
      const from = move.fromVersion ? formatDestination(move.fromVersion, move.fromSplit, move.fromStickyParameter) : 'unset';
      console.log(`${name}@${alias}: ${from} -> ${described} (revision ${move.revision})`);
    } else {
      console.log(`${name}@${alias} already points at ${described}; nothing changed`);
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not point ${name}@${alias} at ${described}`);
  } finally {
    client.close();
  }
}

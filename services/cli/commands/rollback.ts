/**
 * nexus rollback <name> <alias>: moves an alias back to its target before the latest promotion
 * still in effect (rolling back twice walks back two promotions), recorded in its history.
 */
import type { RollbackAliasResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { registryClient, unaryCall } from '../remote/index.ts';
import { parseVersionNumber } from '../../domain/index.ts';
import { ExitCode, formatDestination, printJson, reportError } from '../terminal/index.ts';
import { currentUser } from './store.ts';

export async function rollback(name: string, alias: string, options: { registry: string; reason?: string; expect?: string; json?: boolean }): Promise<number> {
  let expected: number | undefined;
  try {
    if (options.expect !== undefined) expected = parseVersionNumber(options.expect, '--expect');
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const client = registryClient(options.registry);
  try {
    const response = await unaryCall<RollbackAliasResponse>((done) => client.rollbackAlias({
      modelName: name, alias, expectedVersion: expected, reason: options.reason ?? '', actor: currentUser(),
    }, done));
    if (options.json) printJson(response);
    else {
      const move = response.move!;
      const from = formatDestination(move.fromVersion, move.fromSplit, move.fromStickyParameter);
      console.log(`${name}@${alias}: ${from} -> ${formatDestination(move.toVersion, move.toSplit, move.toStickyParameter)} (rolled back, revision ${move.revision})`);
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not roll back ${name}@${alias}`);
  } finally {
    client.close();
  }
}

/** nexus history <name> <alias>: every move of an alias, oldest first: who, when, from, to, why. */
import type { GetAliasHistoryResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { registryClient, unaryCall } from '../remote/index.ts';
import { ExitCode, formatDestination, printJson, printTable, reportError } from '../terminal/index.ts';
import { formatTime } from './show.ts';

export async function aliasHistory(name: string, alias: string, options: { registry: string; json?: boolean }): Promise<number> {
  const client = registryClient(options.registry);
  try {
    const { moves } = await unaryCall<GetAliasHistoryResponse>((done) => client.getAliasHistory({ modelName: name, alias }, done));
    if (options.json) {
      printJson(moves);
      return ExitCode.OK;
    }
    printTable(
      ['revision', 'when', 'who', 'from', 'to', 'kind', 'reason'],
      moves.map((move) => [
        move.revision, formatTime(move.movedAtUnixMs), move.actor,
        move.fromVersion ? formatDestination(move.fromVersion, move.fromSplit, move.fromStickyParameter) : '-',
        formatDestination(move.toVersion, move.toSplit, move.toStickyParameter),
        move.rollback ? 'rollback' : move.fromVersion === 0 ? 'created' : 'promote', move.reason || '',
      ]),
    );
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not read the history of ${name}@${alias}`);
  } finally {
    client.close();
  }
}

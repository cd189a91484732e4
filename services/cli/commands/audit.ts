/** nexus audit: the registry's audit log, newest first: who did which write or admin call, to what, and how it ended. */
import type { ListAuditResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { registryClient, unaryCall } from '../remote/index.ts';
import { ExitCode, printJson, printTable, reportError } from '../terminal/index.ts';
import { formatTime } from './show.ts';

export async function listAudit(options: { registry: string; limit?: string; json?: boolean }): Promise<number> {
  const limit = options.limit === undefined ? 50 : Number(options.limit);
  if (!/^\d+$/.test(options.limit ?? '50') || limit < 1 || limit > 1000) {
    console.error(`--limit '${options.limit}' must be a whole number from 1 to 1000`);
    return ExitCode.USAGE;
  }
  const client = registryClient(options.registry);
  try {
    const { records } = await unaryCall<ListAuditResponse>((done) => client.listAudit({ limit, beforeUnixMs: 0 }, done));
    if (options.json) {
      printJson(records);
    } else if (records.length === 0) {
      console.log('the audit log is empty');
    } else {
      printTable(['time (UTC)', 'principal', 'action', 'target', 'outcome', 'detail'], records.map((record) => [
        formatTime(record.timeUnixMs), record.principal, record.action, record.target || '-', record.outcome, record.detail,
      ]));
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, 'could not read the audit log');
  } finally {
    client.close();
  }
}

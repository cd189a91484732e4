/**
 * nexus gc: lists the blobs no version refers to and abandoned uploads (dry run); with --delete,
 * removes them. Versions are never deleted, so nothing a version points at is ever collected.
 */
import type { GarbageCollectResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { registryClient, unaryCall } from '../remote/index.ts';
import { ExitCode, formatBytes, printJson, printTable, reportError } from '../terminal/index.ts';
import { formatTime } from './show.ts';

export async function collectGarbage(options: { registry: string; delete?: boolean; minAgeSeconds?: string; json?: boolean }): Promise<number> {
  let minAgeSeconds: number | undefined;
  if (options.minAgeSeconds !== undefined) {
    minAgeSeconds = Number(options.minAgeSeconds);
    if (!/^\d+$/.test(options.minAgeSeconds)) {
      console.error(`--min-age-seconds '${options.minAgeSeconds}' must be a whole number of seconds`);
      return ExitCode.USAGE;
    }
  }
  const client = registryClient(options.registry);
  try {
    const report = await unaryCall<GarbageCollectResponse>((done) => client.garbageCollect({ delete: Boolean(options.delete), minAgeSeconds }, done));
    if (options.json) {
      printJson(report);
      return ExitCode.OK;
    }
    if (report.minAgeRaised) {
      console.error(`--min-age-seconds ${minAgeSeconds} is below the registry's minimum; objects younger than ${report.minAgeSeconds} s were kept`);
    }
    if (report.garbage.length > 0) {
      printTable(['object', 'size', 'modified'], report.garbage.map((object) => [object.key, formatBytes(object.sizeBytes), formatTime(object.modifiedAtUnixMs)]));
    }
    const summary = `${report.garbage.length} unreferenced object${report.garbage.length === 1 ? '' : 's'}, ${formatBytes(report.garbageBytes)}`;
    if (report.deleted) console.log(`deleted ${summary}; ${report.referencedBlobs} referenced blobs kept`);
    else console.log(`${summary} would be deleted (${report.referencedBlobs} referenced blobs are kept); run \`nexus gc --delete\` to delete them`);
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, 'could not collect garbage');
  } finally {
    client.close();
  }
}

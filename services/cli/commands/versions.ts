/** nexus versions <name>: every version of a model, with the aliases pointing at each. */
import type { ListVersionsResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { registryClient, unaryCall } from '../remote/index.ts';
import { ExitCode, formatBytes, printJson, printTable, reportError } from '../terminal/index.ts';
import { formatCommit, formatTime } from './show.ts';

export async function listVersions(name: string, options: { registry: string; json?: boolean }): Promise<number> {
  const client = registryClient(options.registry);
  try {
    const { versions, aliases } = await unaryCall<ListVersionsResponse>((done) => client.listVersions({ modelName: name }, done));
    if (options.json) {
      printJson({ versions, aliases });
      return ExitCode.OK;
    }
    printTable(
      ['version', 'aliases', 'format', 'size', 'sha256', 'commit', 'creator', 'stored'],
      versions.map((version) => [
        version.version,
        // A split alias is listed on each of its arms, with that arm's weight.
        aliases.flatMap((alias) => {
          if (alias.split.length === 0) return alias.version === version.version ? [alias.alias] : [];
          const arm = alias.split.find((entry) => entry.version === version.version);
          return arm ? [`${alias.alias} (weight ${arm.weight})`] : [];
        }).join(', '),
        version.format,
        formatBytes(version.files.length > 1 ? version.files.reduce((sum, file) => sum + file.sizeBytes, 0) : version.sizeBytes),
        version.sha256.slice(0, 12),
        formatCommit(version),
        version.creator || '-',
        formatTime(version.createdAtUnixMs),
      ]),
    );
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not list the versions of ${name}`);
  } finally {
    client.close();
  }
}

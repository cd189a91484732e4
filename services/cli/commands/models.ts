/** nexus models: every model with its latest version. */
import type { ListModelsResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { registryClient, unaryCall } from '../remote/index.ts';
import { ExitCode, formatBytes, printJson, printTable, reportError } from '../terminal/index.ts';

export async function listModels(options: { registry: string; json?: boolean }): Promise<number> {
  const client = registryClient(options.registry);
  try {
    const { latest } = await unaryCall<ListModelsResponse>((done) => client.listModels({}, done));
    if (options.json) {
      printJson(latest);
    } else if (latest.length === 0) {
      console.log('no models yet: store one with `nexus store <file> <name>`');
    } else {
      printTable(
        ['model', 'latest', 'format', 'size', 'sha256', 'commit', 'stored'],
        latest.map((version) => [
          version.modelName, version.version, version.format, formatBytes(version.sizeBytes), version.sha256.slice(0, 12),
          version.lineage?.commit ? `${version.lineage.commit.slice(0, 10)}${version.lineage.dirty ? '+dirty' : ''}` : '-',
          new Date(version.createdAtUnixMs).toISOString().replace('T', ' ').slice(0, 19),
        ]),
      );
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, 'could not list models');
  } finally {
    client.close();
  }
}

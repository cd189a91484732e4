/**
 * nexus pull <name>[@alias|:version] <dir>: restores a version's files into a directory. Each file
 * is downloaded to `<file>.partial`, resumed from there if interrupted, verified against its
 * sha256 and only then renamed into place; files already present with the right digest are kept.
 */
import { MultiBar } from 'cli-progress';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ManifestEntry } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { checkManifestPath } from '../../registry/validation/index.ts';
import { downloadBlob, registryClient, sha256OfFile } from '../remote/index.ts';
import { ExitCode, formatBytes, printJson, reportError } from '../terminal/index.ts';
import { parseModelRef, resolveRef, type ModelRef } from './show.ts';

export async function pull(refText: string, dir: string, options: { registry: string; json?: boolean }): Promise<number> {
  let ref: ModelRef;
  try {
    ref = parseModelRef(refText);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const target = resolve(dir);
  const client = registryClient(options.registry);
  try {
    const { version } = await resolveRef(options.registry, ref);
    const record = version!;
    const files: ManifestEntry[] = record.files.length > 0
      ? record.files
      : [{ path: `${record.modelName}.${record.format}`, sha256: record.sha256, sizeBytes: record.sizeBytes }];
    // The registry checked these paths; a client checks again before writing anywhere.
    for (const file of files) checkManifestPath(file.path, 'file path');
    const total = files.reduce((sum, file) => sum + file.sizeBytes, 0);
    const bars = process.stderr.isTTY && !options.json
      ? new MultiBar({ format: 'pulling [{bar}] {percentage}% {value}/{total} bytes', stream: process.stderr, hideCursor: true })
      : undefined;
    const bar = bars?.create(total, 0);
    let downloaded = 0;
    let kept = 0;
    try {
      for (const file of files) {
        const path = join(target, ...file.path.split('/'));
        const existing = await stat(path).catch(() => undefined);
        if (existing?.isFile() && existing.size === file.sizeBytes && (await sha256OfFile(path)) === file.sha256) {
          kept += 1;
          bar?.increment(file.sizeBytes);
          continue;
        }
        await downloadBlob(client, file.sha256, path, (bytes) => bar?.increment(bytes));
        downloaded += 1;
      }
    } finally {
      bars?.stop();
    }
    if (options.json) {
      printJson({ modelName: record.modelName, version: record.version, sha256: record.sha256, directory: target, files, downloaded, kept });
    } else {
      console.log(`pulled ${record.modelName} version ${record.version} into ${target}: ${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(total)}${kept ? ` (${kept} already up to date)` : ''}`);
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not pull ${refText}`);
  } finally {
    client.close();
  }
}

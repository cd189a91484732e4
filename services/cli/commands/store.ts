/** nexus store <file> <name>: uploads a model, recording the git commit it came from. */
import { SingleBar } from 'cli-progress';
import { resolve } from 'node:path';
import type { ModelVersion, UploadHeader } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { registryClient } from '../clients.ts';
import { readGitLineage } from '../git-lineage.ts';
import { ExitCode, formatBytes, printJson, reportError } from '../output.ts';
import { uploadModelFile } from '../upload.ts';
import { userInfo } from 'node:os';

export interface StoreOptions {
  registry: string;
  format: string;
  tag: string[];
  maxBatchSize?: string;
  maxQueueDelayUs?: string;
  json?: boolean;
  /** Where to read git lineage from, when not from the file's own location. */
  lineagePath?: string;
}

/** Parses repeated --tag key=value flags. */
export function parseTags(tags: string[]): Record<string, string> {
  return Object.fromEntries(tags.map((tag) => {
    const at = tag.indexOf('=');
    if (at <= 0) throw new Error(`--tag '${tag}' must look like key=value`);
    return [tag.slice(0, at), tag.slice(at + 1)];
  }));
}

export async function storeModel(file: string, name: string, options: StoreOptions): Promise<number> {
  const path = resolve(file);
  const lineageResult = await readGitLineage(options.lineagePath ?? path);
  if (lineageResult.kind === 'no-repository') {
    console.error(`note: ${file} is not inside a git repository; the version will carry no commit`);
  } else if (lineageResult.kind === 'no-commits') {
    console.error(`note: the repository at ${lineageResult.root} has no commits yet; the version will carry no commit`);
  }
  const lineage = lineageResult.kind === 'found' ? lineageResult.lineage : undefined;
  let tags: Record<string, string>;
  try {
    tags = parseTags(options.tag);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const header: Omit<UploadHeader, 'sizeBytes' | 'sha256'> = {
    modelName: name,
    format: options.format,
    lineage,
    tags,
    creator: userInfo().username,
    batching: options.maxBatchSize || options.maxQueueDelayUs
      ? { maxBatchSize: Number(options.maxBatchSize ?? 0), maxQueueDelayUs: Number(options.maxQueueDelayUs ?? 0) }
      : undefined,
  };
  const client = registryClient(options.registry);
  const bar = process.stderr.isTTY && !options.json
    ? new SingleBar({ format: 'uploading [{bar}] {percentage}% {value}/{total} bytes', stream: process.stderr })
    : undefined;
  try {
    const response = await uploadModelFile(client, path, header, (sent, total) => {
      if (!bar) return;
      if (sent === 0 || !bar.isActive) bar.start(total, 0);
      bar.update(sent);
    });
    bar?.stop();
    const version = response.version as ModelVersion;
    if (options.json) {
      printJson({ ...version, deduplicated: response.deduplicated });
    } else {
      const commit = version.lineage?.commit ? ` from commit ${version.lineage.commit.slice(0, 10)}${version.lineage.dirty ? ' (dirty)' : ''}` : '';
      console.log(`stored ${version.modelName} version ${version.version} (${formatBytes(version.sizeBytes)}, sha256 ${version.sha256.slice(0, 12)})${commit}`);
      if (response.deduplicated) console.log('the same bytes were already stored; they are kept once');
    }
    return ExitCode.OK;
  } catch (error) {
    bar?.stop();
    return reportError(error, `could not store ${file}`);
  } finally {
    client.close();
  }
}
